"""The Argus entry point of argus-gpu-heston: settings class and pricer (the ``argus heston``
commands are :mod:`argus_gpu_heston.cli`, entry point group ``argus.commands``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from argus_core import hookimpl
from argus_gpu_heston.pricer import HestonPricer, HestonSettings


@hookimpl
def config_class() -> type:
    """``[plugins.heston]`` is validated by :class:`HestonSettings`."""
    return HestonSettings


@hookimpl
def register_pricers(register: Callable[[str, Callable[[Any], Any]], None]) -> None:
    """Register the ``heston`` pricer factory (``factory(settings)`` -> HestonPricer)."""
    register("heston", HestonPricer)
