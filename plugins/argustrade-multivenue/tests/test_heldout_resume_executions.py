"""Held-out red team of the composite venue's live path: restarts and executions.

What was found (each test failed before its fix):

* ``resume`` handed every inner venue the ledger's one ``newest_fill_ts_ns``, the newest
  fill of *any* inner venue.  A venue whose own last booked fill was older started its
  history backfill (Kraken's TradesHistory, Kalshi's and Polymarket's fill reads) after
  the fills it made while the run was down: they were never booked;
* ``executions`` merged the inner streams and went on when one of them ended after it
  had worked.  The core treats its venue's executions stream ending as an error (what
  follows would go unbooked); merged, the other venues kept it alive and the ended
  venue's later fills were silently lost.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_multivenue import MultiVenue
from argus_multivenue.testing import ScriptedInner as Inner

from argus_core import (
    Fill,
    Ledger,
    Liquidity,
    Order,
    OrderStatus,
    Side,
    VenueError,
    VenueResume,
)

S = 10**9


def _fill(fid: str, coid: str, venue: str, ts_s: int) -> Fill:
    return Fill(fid, coid, "multivenue", f"{venue}:X", Side.BUY, Decimal(1), Decimal(1),
                Decimal(0), Liquidity.TAKER, ts_s * S)


def test_each_inner_venue_backfills_from_no_later_than_its_own_newest_fill(
        tmp_path: Path) -> None:
    """Venue a's last booked fill is at 100 s, venue b's at 200 s (a restart at 300 s).
    Before: both were told 200 s, so a's fills between 100 s and 200 s were never asked
    for.  Now each start is at or before that venue's own newest fill; c, which never
    traded, starts at its first order."""
    with Ledger.in_dir(tmp_path / "run") as ledger, ledger.transaction():
        for coid, venue, ts_s in (("oa", "a", 50), ("ob", "b", 150), ("oc", "c", 250)):
            ledger.insert_order(Order(coid, "multivenue", f"{venue}:X", Side.BUY, Decimal(5),
                                      ts_ns=ts_s * S, status=OrderStatus.OPEN), "r")
        ledger.insert_fill(_fill("fa", "oa", "a", 100))
        ledger.insert_fill(_fill("fb", "ob", "b", 200))
        known = ledger.venue_resume("multivenue")
    assert known.newest_fill_ts_ns == 200 * S
    inner = {v: Inner(v) for v in "abc"}
    MultiVenue(inner=inner).resume(known)
    since = {v: i.known.newest_fill_ts_ns for v, i in inner.items() if i.known}
    assert since["a"] is not None and since["a"] <= 100 * S, since
    assert since["b"] is not None and since["b"] <= 200 * S, since
    assert since["c"] == 250 * S
    # the fills each venue must not report again are still its own
    assert {v: set(i.known.fill_ids) for v, i in inner.items() if i.known} == {
        "a": {"fa"}, "b": {"fb"}, "c": set()}


def test_a_lone_inner_venue_with_fills_keeps_the_ledgers_exact_start() -> None:
    """Only b has booked fills: the ledger's newest fill is b's own, handed on as is."""
    def known(coid: str, venue: str, ts_s: int) -> Any:
        from argus_core import KnownOrder
        return KnownOrder(Order(coid, "multivenue", f"{venue}:X", Side.BUY, Decimal(1),
                                ts_ns=ts_s * S))

    inner = {v: Inner(v) for v in "ab"}
    MultiVenue(inner=inner).resume(VenueResume(
        (known("oa", "a", 10), known("ob", "b", 20)), {"fb": "ob"}, 90 * S))
    assert inner["b"].known is not None and inner["b"].known.newest_fill_ts_ns == 90 * S
    assert inner["a"].known is not None and inner["a"].known.newest_fill_ts_ns == 10 * S


def test_an_inner_executions_stream_that_ends_after_working_is_an_error() -> None:
    """Venue a's private stream gives one fill and ends (a dropped websocket that its
    adapter did not reconnect) while b's keeps running.  Before: the merge went on with
    b alone (here: waited on b for good), and a's later fills were never booked."""
    fill = _fill("fa", "oa", "a", 1)
    venue = MultiVenue(inner={"a": Inner("a", [fill]), "b": Inner("b", then_wait=True)})
    got: list[Any] = []

    async def go() -> None:
        async for item in venue.executions():
            got.append(item)

    with pytest.raises(VenueError, match=re.escape("venue 'a's stream ended")):
        asyncio.run(asyncio.wait_for(go(), 5))
    assert got == [fill]


def test_an_inner_venue_without_an_executions_stream_is_not_an_error() -> None:
    """A venue with no private stream (the contract's default: it ends at once, having
    said nothing) beside one that reports fills and runs on: the fills come through and
    nothing is raised; two silent venues simply end."""
    fill = _fill("fb", "ob", "b", 1)
    venue = MultiVenue(inner={"a": Inner("a"), "b": Inner("b", [fill], then_wait=True)})

    async def first() -> Any:
        stream = venue.executions()
        try:
            return await anext(stream)
        finally:
            await stream.aclose()

    assert asyncio.run(asyncio.wait_for(first(), 5)) == fill

    async def drain() -> list[Any]:
        silent = MultiVenue(inner={"a": Inner("a"), "b": Inner("b")})
        return [item async for item in silent.executions()]

    assert asyncio.run(asyncio.wait_for(drain(), 5)) == []
