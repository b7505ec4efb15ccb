"""Argus hooks of the Polymarket venue plugin (entry point ``polymarket``).

No ``on_startup``: after a restart the core hands the venue the run's orders and booked
fills itself (``Venue.resume``); the plugin never reads core tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from argus_core import Register, hookimpl
from argus_venue_polymarket.config import PolymarketSettings

if TYPE_CHECKING:
    from argus_venue_polymarket.venue import PolymarketVenue


@hookimpl
def config_class() -> type:
    """``[plugins.polymarket]`` is validated by :class:`PolymarketSettings`."""
    return PolymarketSettings


@hookimpl
def register_venues(register: Register) -> None:
    """Register the ``polymarket`` venue."""

    def factory(settings: PolymarketSettings | None) -> PolymarketVenue:
        from argus_venue_polymarket.venue import PolymarketVenue

        return PolymarketVenue(settings)

    register("polymarket", factory)
