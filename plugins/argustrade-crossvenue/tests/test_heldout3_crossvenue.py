"""The composite's restart and executions, as the generic composite's red team found them
(``argus_multivenue``'s ``test_heldout_resume_executions``): both failed before.

* ``resume`` handed both venues the ledger's one ``newest_fill_ts_ns`` (the newest fill of
  either venue): the venue whose own last fill was older started its backfill after the
  fills it made while the run was down, and they were never booked;
* a venue's executions stream that ended after it worked was followed no further, with no
  word: the other venue kept the merged stream alive and the first one's later fills
  were lost (the core raises when its venue's own stream ends so).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from argus_crossvenue.venue import CrossVenue
from argus_multivenue.testing import ScriptedInner as Inner

from argus_core import (
    Fill,
    KnownOrder,
    Liquidity,
    Order,
    Side,
    VenueError,
    VenueResume,
)

S = 10**9


def _order(coid: str, venue: str, ts_s: int) -> KnownOrder:
    return KnownOrder(Order(coid, "crossvenue", f"{venue}:X", Side.BUY, Decimal(1),
                            Decimal("0.5"), ts_ns=ts_s * S))


def test_each_venue_backfills_from_no_later_than_its_own_newest_fill() -> None:
    """Kalshi's order was sent at 50 s (its fill at 100 s), Polymarket's fill is the newest
    (200 s): Kalshi must not be told 200 s."""
    inner = {"kalshi": Inner("kalshi"), "polymarket": Inner("polymarket")}
    CrossVenue(inner=inner).resume(VenueResume(  # type: ignore[arg-type]
        (_order("ok", "kalshi", 50), _order("op", "polymarket", 150)),
        {"fk": "ok", "fp": "op"}, 200 * S))
    kalshi, poly = inner["kalshi"].known, inner["polymarket"].known
    assert kalshi is not None and poly is not None
    assert kalshi.newest_fill_ts_ns is not None and kalshi.newest_fill_ts_ns <= 100 * S
    assert poly.newest_fill_ts_ns is not None and poly.newest_fill_ts_ns <= 200 * S
    assert (set(kalshi.fill_ids), set(poly.fill_ids)) == ({"fk"}, {"fp"})
    assert [k.order.client_order_id for k in kalshi.orders] == ["ok"]


def test_a_venue_whose_executions_end_after_working_is_an_error() -> None:
    fill = Fill("fk", "ok", "crossvenue", "kalshi:X", Side.BUY, Decimal(1), Decimal("0.5"),
                Decimal(0), Liquidity.TAKER, S)
    venue = CrossVenue(inner={"kalshi": Inner("kalshi", [fill]),  # type: ignore[dict-item]
                              "polymarket": Inner("polymarket", then_wait=True)})
    got: list[Any] = []

    async def go() -> None:
        async for item in venue.executions():
            got.append(item)

    with pytest.raises(VenueError, match="the kalshi venue's executions stream ended"):
        asyncio.run(asyncio.wait_for(go(), 5))
    assert got == [fill]
