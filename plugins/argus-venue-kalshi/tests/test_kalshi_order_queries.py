"""Order lists asked with Kalshi's documented filters, and paged lists that shift.

Before: every poll and every look-up read ``GET /portfolio/orders`` unfiltered, the
account's whole history; past ``rest.MAX_PAGES`` pages every poll failed (no update, no
fill booked) and every unclear send became ``OrderUnknown``.  Now the poll reads
``status=resting`` and asks each working order of ours that left it by id, and a
look-up reads the order's market (``ticker``) from its creation (``min_ts``), whole.
And ``KalshiRest.pages`` refused a page equal to one already read, which a healthy
newest-first list answers when a page of new orders arrives between two reads.
"""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest
from argus_venue_kalshi import rest as kalshi_rest
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.testing.engine import _iso
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)

from .conftest import MARKET

TICKER = MARKET["ticker"]
IID = f"kalshi:{TICKER}/YES"
OTHER = "KXHIGHNY-24JAN01-T70"


def order(coid: str, limit: str = "0.30", *, age_s: float = 0.0,
          tif: TimeInForce = TimeInForce.GTC) -> Order:
    return Order(coid, "kalshi", IID, Side.BUY, D(2), D(limit), OrderType.LIMIT, tif, "t",
                 ts_ns=time.time_ns() - int(age_s * 1e9))


def body(coid: str, ticker: str = TICKER, cents: int = 30) -> dict:
    return {"ticker": ticker, "client_order_id": coid, "side": "yes", "action": "buy",
            "count": 1, "type": "limit", "yes_price": cents,
            "time_in_force": "good_till_canceled"}


def history(exchange, n_other: int = 10, n_old: int = 4) -> None:
    """Closed orders the account placed before: ``n_other`` in another market, ``n_old``
    in this one two days ago (no fills)."""
    exchange.add_market({**MARKET, "ticker": OTHER})
    for k in range(n_other):
        exchange.engine.cancel(exchange.engine.create(body(f"old-o{k}", OTHER))["order_id"])
    two_days_ago = _iso(time.time_ns() - 2 * 86_400 * 10**9)
    for k in range(n_old):
        placed = exchange.engine.create(body(f"old-t{k}"))
        exchange.engine.cancel(placed["order_id"])
        placed.update(created_time=two_days_ago, last_update_time=two_days_ago)


def order_lists(exchange) -> list[dict[str, str]]:
    return [r.query for r in exchange.rest.requests
            if r.method == "GET" and r.path.endswith("/portfolio/orders")]


@pytest.mark.parametrize("ts_field", ["created_time", "last_update_time"])
async def test_polls_and_look_ups_do_not_read_the_order_history(
        exchange, local_settings, monkeypatch, ts_field) -> None:
    """A history longer than MAX_PAGES pages: the poll still books the fill and the
    cancel made at Kalshi, a lost answer is resolved by look-up (not OrderUnknown), and
    a never-placed order is concluded absent from its market's whole list.  Whichever
    time ``min_ts`` compares (the documentation does not say), the result is the same."""
    monkeypatch.setattr(kalshi_rest, "MAX_PAGES", 3)  # 3 pages of 2: history is 14 orders
    history(exchange)
    exchange.rest.orders_ts_field = ts_field
    venue = KalshiVenue(local_settings(page_limit=2))
    ex = venue.execution
    try:
        await venue.submit(order("q-rest"))  # rests
        exchange.rest.inject("POST /portfolio/orders", Fault("lost"))
        await venue.submit(order("q-lost"))  # placed, answer lost: found by look-up
        assert "q-lost" in ex.venue_ids
        # Kalshi cancels one (not through us); another trader fills the other whole
        exchange.engine.cancel(ex.venue_ids["q-rest"])
        exchange.engine.fill_resting(ex.venue_ids["q-lost"], 2)
        while not ex._queue.empty():
            ex._queue.get_nowait()
        items = await ex._poll()
        cancels = [i for i in items if isinstance(i, OrderUpdate)
                   and i.status is OrderStatus.CANCELLED]
        assert [c.client_order_id for c in cancels] == ["q-rest"]
        assert [(f.client_order_id, f.quantity) for f in items if isinstance(f, Fill)] == \
            [("q-lost", D(2))]
        assert ex.working == {}  # both ended: nothing more to ask
        # a look-up of an order Kalshi never had: its market's list, read whole
        gone = await venue.lookup(order("q-never", age_s=3600))
        assert gone is not None and gone.status is OrderStatus.CANCELLED
        for query in order_lists(exchange):  # never the whole history
            assert query.get("status") == "resting" or (
                query.get("ticker") == TICKER and int(query["min_ts"]) > time.time() - 7200)
    finally:
        await venue.close()


async def test_a_basket_look_up_reads_its_legs_market_not_the_history(
        exchange, local_settings, monkeypatch) -> None:
    monkeypatch.setattr(kalshi_rest, "MAX_PAGES", 3)
    history(exchange)
    venue = KalshiVenue(local_settings(page_limit=2))
    try:
        exchange.rest.inject("POST /portfolio/orders/batched", Fault("lost"))
        legs = [Order(f"bq-{s}", "kalshi", f"kalshi:{TICKER}/{s.upper()}", Side.BUY, D(2),
                      D(p), OrderType.LIMIT, TimeInForce.IOC, "t", basket_id="bq",
                      ts_ns=time.time_ns()) for s, p in (("yes", "0.45"), ("no", "0.61"))]
        fills = await venue.submit_basket(legs)
        assert {f.client_order_id for f in fills} == {"bq-yes", "bq-no"}
    finally:
        await venue.close()


async def test_a_list_shifted_by_a_page_of_new_orders_is_read_whole(
        exchange, local_settings) -> None:
    """Exactly a page of orders placed between two page reads: the next page repeats the
    one before (offset cursor, newest first).  Before: ``KalshiPagingError`` ("a page it
    had already read"), so the start-up's open orders could not be read."""
    venue = KalshiVenue(local_settings(page_limit=2))
    try:
        for k in range(5):
            await venue.submit(order(f"sh-{k}"))
        exchange.rest.place_between_pages([body("sh-new-0"), body("sh-new-1")], after=1)
        listed = [o.client_order_id for o in await venue.open_orders()]
        assert len(listed) == len(set(listed))
        assert {f"sh-{k}" for k in range(5)} <= set(listed)
        pages = [q for q in order_lists(exchange) if q.get("status") == "resting"]
        assert len(pages) == 4  # the repeated page was read past, not refused
    finally:
        await venue.close()


async def test_the_local_exchange_filters_orders_and_fills_as_documented(
        exchange, local_settings) -> None:
    """``GET /portfolio/orders``: ticker, event_ticker, status, min_ts, max_ts, with
    cursor paging over the filtered list; ``GET /portfolio/fills``: ticker, max_ts."""
    exchange.add_market({**MARKET, "ticker": OTHER, "event_ticker": "KXOTHER-1"})
    old = _iso(time.time_ns() - 86_400 * 10**9)
    for k in range(3):
        placed = exchange.engine.create(body(f"f-old-{k}"))
        placed.update(created_time=old, last_update_time=old)
    for k in range(3):
        exchange.engine.create(body(f"f-new-{k}"))
        exchange.engine.create(body(f"f-other-{k}", OTHER))
    exchange.engine.create({**body("f-take"), "yes_price": 45,
                            "time_in_force": "immediate_or_cancel"})
    venue = KalshiVenue(local_settings(page_limit=1))

    async def coids(**params) -> list[str]:
        rows = await venue.rest.pages("/portfolio/orders", "orders", params, signed=True)
        return sorted(r["client_order_id"] for r in rows)

    try:
        since = int(time.time()) - 3600
        assert await coids(ticker=TICKER, min_ts=since) == \
            ["f-new-0", "f-new-1", "f-new-2", "f-take"]
        assert await coids(ticker=TICKER, max_ts=since) == ["f-old-0", "f-old-1", "f-old-2"]
        assert await coids(event_ticker="KXOTHER-1") == ["f-other-0", "f-other-1",
                                                          "f-other-2"]
        assert await coids(status="executed") == ["f-take"]
        fills = await venue.rest.pages("/portfolio/fills", "fills", {"ticker": OTHER},
                                       signed=True)
        assert fills == []
        fills = await venue.rest.pages("/portfolio/fills", "fills", {"max_ts": since},
                                       signed=True)
        assert fills == []
    finally:
        await venue.close()
