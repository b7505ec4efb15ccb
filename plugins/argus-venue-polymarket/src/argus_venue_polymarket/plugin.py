"""Argus hooks of the Polymarket venue plugin (entry point ``polymarket``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from argus_core.hookspecs import Register, hookimpl
from argus_venue_polymarket.config import PolymarketSettings

if TYPE_CHECKING:
    from argus_core.runtime import RunContext


@hookimpl
def config_class() -> type:
    """``[plugins.polymarket]`` is validated by :class:`PolymarketSettings`."""
    return PolymarketSettings


@hookimpl
def register_venues(register: Register) -> None:
    """Register the ``polymarket`` venue."""

    def factory(settings: PolymarketSettings | None):  # type: ignore[no-untyped-def]
        from argus_venue_polymarket.venue import PolymarketVenue

        return PolymarketVenue(settings)

    register("polymarket", factory)


@hookimpl
def on_startup(ctx: RunContext) -> None:
    """Teach the run's Polymarket venue the orders and fills in the run's ledger.

    Runs before the core reconciles unacknowledged orders with ``open_orders()``:
    after a restart that is how the venue maps open orders and trades placed by the
    previous process back to core client order ids, and knows which fills are booked.
    """
    from argus_venue_polymarket.venue import PolymarketVenue

    if ctx.ledger is not None and ctx.mode == "live" and isinstance(ctx.venue, PolymarketVenue):
        ctx.venue.adopt_run_ledger(ctx.ledger)
