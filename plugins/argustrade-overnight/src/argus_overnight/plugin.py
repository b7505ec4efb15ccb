"""Argus plugin ``overnight``: settings from ``[plugins.overnight]`` and the
``overnight_session`` strategy."""

from __future__ import annotations

from argus_core import RegisterStrategy, hookimpl
from argus_overnight.config import Settings
from argus_overnight.strategy import OvernightSession


@hookimpl
def config_class() -> type:
    """The attrs class validating ``[plugins.overnight]``."""
    return Settings


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """Register ``overnight_session``; the core builds it as ``OvernightSession(settings)``."""
    register(OvernightSession.name, OvernightSession)
