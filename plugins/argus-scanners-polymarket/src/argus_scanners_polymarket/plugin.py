"""Argus hooks of the Polymarket scanner suite (entry point ``pmscanners``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from argus_core import (
    Forecaster,
    Register,
    RegisterForecaster,
    RegisterStrategy,
    Scanner,
    Strategy,
    hookimpl,
)
from argus_scanners_polymarket.config import PmScannersSettings

#: Registered name -> (module, class); modules import on first use (scikit-learn is heavy).
SCANNERS: dict[str, tuple[str, str]] = {
    "resolution": ("argus_scanners_polymarket.resolution", "ResolutionScanner"),
    "correlation": ("argus_scanners_polymarket.correlation", "CorrelationScanner"),
    "stale": ("argus_scanners_polymarket.stale", "StaleQuoteScanner"),
    "spike": ("argus_scanners_polymarket.stale", "SpikeScanner"),
    "value": ("argus_scanners_polymarket.value", "ValueScanner"),
    "maker": ("argus_scanners_polymarket.maker", "MakerScanner"),
    "latency": ("argus_scanners_polymarket.latency", "LatencyScanner"),
    "ranked": ("argus_scanners_polymarket.ranking", "RankedScanner"),
}

#: Registered forecaster name -> (module, class).
FORECASTERS: dict[str, tuple[str, str]] = {
    "baseline": ("argus_scanners_polymarket.value", "BaselineForecaster"),
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


def _forecaster(module: str, cls: str) -> Callable[[PmScannersSettings | None], Forecaster]:
    def factory(settings: PmScannersSettings | None) -> Forecaster:
        made: Forecaster = getattr(importlib.import_module(module), cls)(
            settings or PmScannersSettings())
        return made

    return factory


@hookimpl
def register_forecasters(register: RegisterForecaster) -> None:
    """Register ``baseline`` (the market's own price, low confidence; see ``value``)."""
    for name, (module, cls) in FORECASTERS.items():
        register(name, _forecaster(module, cls))


def _maker_strategy(settings: PmScannersSettings | None) -> Strategy:
    from argus_scanners_polymarket.maker_strategy import MakerStrategy

    return MakerStrategy(settings)


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """Register ``pm_maker``, the maker lifecycle (``[plugins.pmscanners.pm_maker]``)."""
    register("pm_maker", _maker_strategy)
