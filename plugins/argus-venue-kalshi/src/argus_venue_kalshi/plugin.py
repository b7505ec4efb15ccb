"""Argus hooks of the Kalshi venue plugin (entry point ``kalshi``).

No ``on_startup`` hook: a restarted live venue learns the run's orders from the core
through :meth:`KalshiVenue.resume`, never by reading the core's tables.
"""

from __future__ import annotations

from argus_core import RegisterVenue, hookimpl
from argus_venue_kalshi.config import KalshiSettings


@hookimpl
def config_class() -> type:
    """``[plugins.kalshi]`` is validated by :class:`KalshiSettings`."""
    return KalshiSettings


@hookimpl
def register_venues(register: RegisterVenue) -> None:
    """Register the ``kalshi`` venue."""
    from argus_venue_kalshi.venue import KalshiVenue

    register("kalshi", KalshiVenue)
