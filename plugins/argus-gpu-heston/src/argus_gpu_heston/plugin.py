"""The Argus entry point of argus-gpu-heston: settings class, pricer and CLI commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

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


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``argus heston price|pop|calibrate``."""
    from argus_gpu_heston.cli import heston

    cli.add_command(heston)
