"""Argus hooks of the Polymarket venue plugin (entry point ``polymarket``).

After a restart the core hands the venue the run's orders and booked fills itself
(``Venue.resume``); the plugin never reads core tables for that.  ``on_startup`` tells the
venue the run's open positions (from ``Ledger.fills()``, in every mode): a held market
that resolved while no process ran is settled at the stream's start even when discovery
no longer lists it (:mod:`argus_venue_polymarket.resolved`).  The lifecycle hooks
drive redemption of resolved positions (:mod:`argus_venue_polymarket.redemption`):
``on_startup`` starts it (and resumes what a previous process left unfinished),
``on_fill`` hands it each settlement fill, ``on_shutdown`` lets it finish what is under
way; its steps are rows of the plugin's own ``pm_redemptions`` table
(``register_migrations``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from argus_core import Fill, Migrations, Register, hookimpl
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


@hookimpl
def register_migrations(migrations: Migrations) -> None:
    """The ``polymarket`` migration set: the ``pm_redemptions`` table."""
    from argus_venue_polymarket.redemption import register

    register(migrations)


def _venue(ctx: Any) -> PolymarketVenue | None:
    """The run's venue when it is this plugin's (another venue's run has nothing to redeem)."""
    from argus_venue_polymarket.venue import PolymarketVenue

    venue = getattr(ctx, "venue", None)
    return venue if isinstance(venue, PolymarketVenue) else None


@hookimpl
def on_startup(ctx: Any) -> None:
    """Hand the venue the run's open positions (read from its fills: the venue settles a
    held market that resolved while no process ran, see ``PolymarketVenue.hold``) and start
    the run's redemptions: the worker in live mode (resuming unfinished ones), simulated
    records in paper and replay."""
    venue = _venue(ctx)
    if venue is not None and ctx.ledger is not None:
        from argus_venue_polymarket.resolved import held_positions

        venue.hold(held_positions(ctx.ledger.fills()))
        venue.start_redemptions(ctx.mode, ctx.ledger)


@hookimpl
def on_fill(fill: Fill, ctx: Any) -> None:
    """Hand a committed settlement fill to the redemptions (other fills are ignored)."""
    venue = _venue(ctx)
    if venue is not None and venue.redemptions is not None:
        venue.redemptions.on_fill(fill)


@hookimpl
def on_shutdown(ctx: Any) -> None:
    """Wait up to ``redeem_shutdown_wait_s`` for redemptions under way, then stop the
    worker; what is left resumes at the next start of the run."""
    venue = _venue(ctx)
    if venue is not None and venue.redemptions is not None:
        venue.redemptions.close()
