"""The order path's fault matrix: the classes the other fault tests left out.

Most classes are scripted elsewhere (see ``test_heldout_faults.py``,
``test_kalshi_exactly_once.py``, ``test_heldout_ratelimit.py``, ``test_heldout_fills.py``,
``test_redteam_history_clock.py`` and the seeded campaigns); this file adds:

* a body no client can decode (labelled ``Content-Encoding: gzip`` though it is not: a
  proxy that mislabels) on the send after Kalshi acted, on the fills poll and on a
  cancel -- it used to escape as a bare ``httpx.DecodingError`` naming no venue or order
  (the send unresolved, the poll's task dead);
* 500 / 502 / 504 before acting (503 is in ``test_heldout_faults.py``) and 502 / 504
  after acting: never sent twice;
* Kalshi's clock far *ahead* of ours (behind is in ``test_redteam_history_clock.py``);
* a ``Retry-After`` larger than any sane limit on the send.

Each checks the invariant: at most one order at the exchange per client id, every fill
the exchange made booked once, the ledger-side status as the exchange's, and every error
naming the venue and the order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.rest import RETRY_AFTER_MAX_S, retry_after
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
)

YES = "kalshi:KXHIGHNY-24JAN01-T60/YES"
ROUTE = "POST /portfolio/orders"


def buy(coid: str, limit: str = "0.45", qty: int = 2, tif: TimeInForce = TimeInForce.IOC,
        ts_ns: int = 0) -> Order:
    return Order(coid, "kalshi", YES, Side.BUY, D(qty), D(limit), OrderType.LIMIT, tif, "t",
                 ts_ns=ts_ns)


def held(exchange: Any, coid: str) -> list[dict[str, Any]]:
    return exchange.engine.by_client_id(wire_client_id(coid))


def posts(exchange: Any) -> int:
    return sum(1 for r in exchange.rest.requests
               if r.method == "POST" and r.path.endswith("/portfolio/orders"))


def queued(venue: KalshiVenue) -> list[Fill | OrderUpdate]:
    out = []
    while not venue.execution._queue.empty():
        out.append(venue.execution._queue.get_nowait())
    return out


def exchange_fills(exchange: Any, coid: str) -> dict[str, D]:
    """trade id -> contracts of the exchange's fills of ``coid``'s order."""
    ids = {o["order_id"] for o in held(exchange, coid)}
    return {f["trade_id"]: D(str(f.get("count_fp") or f["count"]))
            for f in exchange.engine.fills if f["order_id"] in ids}


async def collect(venue: KalshiVenue, until: Any, timeout: float = 10.0
                  ) -> list[Fill | OrderUpdate]:
    items: list[Fill | OrderUpdate] = []
    async with contextlib.aclosing(venue.executions()) as stream:
        async with asyncio.timeout(timeout):
            async for item in stream:
                items.append(item)
                if until(items):
                    break
    return items


@pytest.fixture
async def venue(local_settings: Any) -> Any:
    v = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=2.0))
    yield v
    await v.close()


# -- a body no client can decode ----------------------------------------------------------
async def test_an_undecodable_answer_after_acting_is_looked_up_not_raised_bare(
        exchange, venue) -> None:
    """Kalshi placed (and filled) the order; its 201 arrives labelled gzip but is not:
    the order is found by client id and acknowledged, sent once, its fills booked once.
    Before: ``httpx.DecodingError`` escaped ``submit`` ("Error -3 while decompressing
    data"), naming neither Kalshi nor the order, and nothing looked the order up."""
    exchange.rest.inject(ROUTE, Fault("garbled", 201))
    assert await venue.submit(buy("gz-1", qty=5)) == []
    (placed,) = held(exchange, "gz-1")
    assert posts(exchange) == 1
    assert venue.execution.venue_ids["gz-1"] == placed["order_id"]
    made = exchange_fills(exchange, "gz-1")
    assert sum(made.values()) == 5

    def done(items: list[Fill | OrderUpdate]) -> bool:
        return sum(i.quantity for i in items if isinstance(i, Fill)) >= 5

    items = await collect(venue, done)
    fills = [i for i in items if isinstance(i, Fill)]
    assert {f.fill_id: f.quantity for f in fills} == made
    assert posts(exchange) == 1


async def test_an_undecodable_fills_page_is_read_again_and_books_each_fill_once(
        exchange, venue) -> None:
    """The fills poll meets a body it cannot decode: read again (the poll's retries), the
    feed goes on and each fill is booked once.  Before: the bare ``httpx.DecodingError``
    ended ``executions()`` (no fill booked again for the run)."""
    assert await venue.submit(buy("gz-2", qty=4)) == []
    made = exchange_fills(exchange, "gz-2")
    assert sum(made.values()) == 4
    exchange.rest.inject("GET /portfolio/fills", Fault("garbled", 200))
    exchange.rest.inject("GET /portfolio/fills", Fault("garbled", 200))

    def done(items: list[Fill | OrderUpdate]) -> bool:
        return sum(i.quantity for i in items if isinstance(i, Fill)) >= 4

    items = await collect(venue, done)
    fills = [i for i in items if isinstance(i, Fill)]
    assert {f.fill_id: f.quantity for f in fills} == made
    assert not exchange.rest.faults["GET /portfolio/fills"]  # both were met


async def test_an_undecodable_cancel_answer_is_confirmed_by_asking(exchange, venue) -> None:
    await venue.submit(buy("gz-3", limit="0.30", qty=3, tif=TimeInForce.GTC))
    queued(venue)
    venue_id = venue.execution.venue_ids["gz-3"]
    exchange.rest.inject("DELETE /portfolio/orders", Fault("garbled", 200))
    await venue.cancel("gz-3")  # Kalshi did cancel it: asked, confirmed
    assert exchange.engine.orders[venue_id]["status"] == "canceled"
    (update,) = queued(venue)
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.CANCELLED


async def test_an_undecodable_429_still_holds_and_is_looked_up(exchange, venue) -> None:
    """A 429 whose body cannot be decoded is still a 429 (its status is read before the
    body): looked up, then sent once more; one order."""
    exchange.rest.inject(ROUTE, Fault("refuse_garbled", 429))
    await venue.submit(buy("gz-4"))
    assert posts(exchange) == 2 and len(held(exchange, "gz-4")) == 1


# -- 5xx before and after acting ------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_5xx_before_acting_is_never_resent(exchange, venue, status: int) -> None:
    """A 5xx proves nothing (a gateway answers them after the engine acted too): no
    second send; ``OrderUnknown`` naming the order; never listed: CANCELLED."""
    exchange.rest.inject(ROUTE, Fault("refuse", status))
    with pytest.raises(OrderUnknown, match="gx-1") as info:
        await venue.submit(buy("gx-1"))
    assert info.value.client_order_ids == ["gx-1"]
    assert posts(exchange) == 1 and held(exchange, "gx-1") == []
    (update,) = await collect(venue, lambda items: bool(items))
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.CANCELLED
    assert posts(exchange) == 1


@pytest.mark.parametrize("status", [502, 504])
async def test_a_5xx_after_acting_is_found_not_resent(exchange, venue, status: int) -> None:
    exchange.rest.inject(ROUTE, Fault("after", status))
    assert await venue.submit(buy("gy-1", qty=3)) == []
    (placed,) = held(exchange, "gy-1")
    assert posts(exchange) == 1 and venue.execution.venue_ids["gy-1"] == placed["order_id"]


# -- Kalshi's clock far ahead ---------------------------------------------------------------
@pytest.mark.parametrize("skew_s", [900.0, 4 * 3600.0])
async def test_a_venue_clock_far_ahead_finds_the_order_and_books_its_fills_once(
        exchange, local_settings, skew_s: float) -> None:
    """Kalshi's clock is ``skew_s`` ahead: a lost answer is still found (the look-up's
    window on Kalshi's clock), and the fills poll (whose window never passes our now)
    books each fill once."""
    exchange.engine.clock_offset_s = skew_s
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=2.0))
    try:
        await venue.execution.rest.get("/markets", {"tickers": "KXHIGHNY-24JAN01-T60"})
        exchange.rest.inject(ROUTE, Fault("lost"))
        assert await venue.submit(buy("ahead-1", qty=5, ts_ns=time.time_ns())) == []
        made = exchange_fills(exchange, "ahead-1")
        assert sum(made.values()) == 5 and posts(exchange) == 1

        def done(items: list[Fill | OrderUpdate]) -> bool:
            return sum(i.quantity for i in items if isinstance(i, Fill)) >= 5

        items = await collect(venue, done)
        fills = [i for i in items if isinstance(i, Fill)]
        assert {f.fill_id: f.quantity for f in fills} == made
    finally:
        await venue.close()


# -- a Retry-After past any sane limit ---------------------------------------------------
@pytest.mark.parametrize("value", ["99999999999", "1e30",
                                   "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_insane_retry_after_is_capped(value: str) -> None:
    assert retry_after(value, None) == RETRY_AFTER_MAX_S


@pytest.mark.parametrize("value", ["1e999", "nan", "-5", "Fri, 31 Dec 99999 23:59:59 GMT"])
def test_an_unreadable_retry_after_is_none(value: str) -> None:
    assert retry_after(value, None) is None


async def test_a_huge_retry_after_on_the_send_refuses_unsent_naming_the_order(
        exchange, venue) -> None:
    exchange.rest.inject(ROUTE, Fault("refuse", 429, retry_after=1e12))
    with pytest.raises(VenueError, match="hx-1") as info:
        await venue.submit(buy("hx-1"))
    assert not isinstance(info.value, OrderUnknown)
    assert "kalshi" in str(info.value)
    assert posts(exchange) == 1 and held(exchange, "hx-1") == []
    # held for the cap, not for 30,000 years: the next send is refused unsent, saying so
    left = venue.execution.rest.writes.held_for()
    assert 0 < left <= RETRY_AFTER_MAX_S
    with pytest.raises(VenueError, match="hx-2"):
        await venue.submit(buy("hx-2"))
    assert posts(exchange) == 1
