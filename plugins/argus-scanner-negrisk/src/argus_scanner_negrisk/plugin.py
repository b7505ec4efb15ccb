"""Argus hooks of the negRisk scanner plugin (entry point ``negrisk``)."""

from __future__ import annotations

from argus_core import Register, Scanner, hookimpl
from argus_scanner_negrisk.config import NegRiskSettings


@hookimpl
def config_class() -> type:
    """``[plugins.negrisk]`` is validated by :class:`NegRiskSettings`."""
    return NegRiskSettings


@hookimpl
def register_scanners(register: Register) -> None:
    """Register the ``negrisk`` scanner."""

    def factory(settings: NegRiskSettings | None) -> Scanner:
        from argus_scanner_negrisk.scanner import NegRiskScanner

        return NegRiskScanner(settings)

    register("negrisk", factory)
