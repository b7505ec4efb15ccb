"""Argus hooks of the ``crossvenue`` plugin: the composite venue and the scanner, both
configured by ``[plugins.crossvenue]`` (``argus crossvenue suggest`` is a command of the
``argus.commands`` entry-point group, :mod:`argus_crossvenue.commands`)."""

from __future__ import annotations

from argus_core import RegisterScanner, RegisterVenue, hookimpl
from argus_crossvenue.config import CrossVenueSettings


@hookimpl
def config_class() -> type:
    """``[plugins.crossvenue]`` is validated by :class:`CrossVenueSettings`."""
    return CrossVenueSettings


@hookimpl
def register_venues(register: RegisterVenue) -> None:
    """Register the ``crossvenue`` composite venue (Kalshi + Polymarket)."""
    from argus_crossvenue.venue import CrossVenue

    register(CrossVenue.name, CrossVenue)


@hookimpl
def register_scanners(register: RegisterScanner) -> None:
    """Register the ``crossvenue`` scanner (mapped Kalshi x Polymarket pairs)."""
    from argus_crossvenue.scanner import CrossVenueScanner

    register(CrossVenueScanner.name, CrossVenueScanner)
