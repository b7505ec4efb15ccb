"""Argus hooks of the Polymarket scanner suite (entry point ``pmscanners``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from argus_core import Register, Scanner, hookimpl
from argus_scanners_polymarket.config import PmScannersSettings

#: Registered name -> (module, class); modules import on first use (scikit-learn is heavy).
SCANNERS: dict[str, tuple[str, str]] = {
    "resolution": ("argus_scanners_polymarket.resolution", "ResolutionScanner"),
    "correlation": ("argus_scanners_polymarket.correlation", "CorrelationScanner"),
    "stale": ("argus_scanners_polymarket.stale", "StaleQuoteScanner"),
    "spike": ("argus_scanners_polymarket.stale", "SpikeScanner"),
}


@hookimpl
def config_class() -> type:
    """``[plugins.pmscanners]`` is validated by :class:`PmScannersSettings`."""
    return PmScannersSettings


def _factory(module: str, cls: str) -> Callable[[PmScannersSettings | None], Scanner]:
    def factory(settings: PmScannersSettings | None) -> Scanner:
        scanner_cls = getattr(importlib.import_module(module), cls)
        scanner: Scanner = scanner_cls(settings or PmScannersSettings())
        return scanner

    return factory


@hookimpl
def register_scanners(register: Register) -> None:
    """Register every scanner of this plugin under its own name."""
    for name, (module, cls) in SCANNERS.items():
        register(name, _factory(module, cls))
