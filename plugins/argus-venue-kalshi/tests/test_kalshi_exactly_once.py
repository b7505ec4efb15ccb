"""Exactly-once submission under every ambiguous outcome, rejections, post-only,
look-ups after a restart, and a signed request made with the wrong key."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from argus_venue_kalshi.execution import order_body, wire_client_id
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
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
NO = "kalshi:KXHIGHNY-24JAN01-T60/NO"
ROUTE = "POST /portfolio/orders"


def buy(coid: str, limit: str = "0.45", qty: int = 2, tif: TimeInForce = TimeInForce.IOC,
        iid: str = YES) -> Order:
    return Order(coid, "kalshi", iid, Side.BUY, D(qty), D(limit), OrderType.LIMIT, tif, "t")


def held(exchange, coid: str) -> int:
    return len(exchange.engine.by_client_id(wire_client_id(coid)))


def posts(exchange) -> int:
    return sum(1 for r in exchange.rest.requests
               if r.method == "POST" and r.path.endswith("/portfolio/orders"))


@pytest.mark.parametrize("fault", [
    Fault("lost"),                 # acted, connection dropped: the answer is lost
    Fault("late", delay_s=1.0),    # acted, answered after the client's 0.5 s timeout
    Fault("after", 500),           # acted, then a 5xx
    Fault("after", 503),           # acted, then a 503 (found: never re-sent)
])
async def test_an_ambiguous_outcome_after_acting_is_found_not_resent(exchange, local_settings,
                                                                     fault) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(ROUTE, fault)
        assert await venue.submit(buy("amb-1")) == []
        assert held(exchange, "amb-1") == 1 and posts(exchange) == 1
        assert venue.execution.venue_ids["amb-1"].startswith("ord-")
    finally:
        await venue.close()


# Only a 429 proves Kalshi did not act: a 502 / 503 may follow an engine that acted, so
# it is never re-sent (tests/test_heldout_faults.py).
@pytest.mark.parametrize("status", [429])
async def test_a_refusal_before_acting_is_proven_then_sent_once_more(exchange, local_settings,
                                                                     status) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(ROUTE, Fault("refuse", status))
        await venue.submit(buy("ref-1"))
        assert held(exchange, "ref-1") == 1 and posts(exchange) == 2
        # the look-up came between the two sends (its market's list, then the historical
        # cutoff: the order is older than none, so /historical/orders is not read)
        kinds = [(r.method, r.path.rsplit("/", 1)[-1]) for r in exchange.rest.requests]
        assert kinds == [("POST", "orders"), ("GET", "orders"), ("GET", "cutoff"),
                         ("POST", "orders")]
    finally:
        await venue.close()


async def test_a_reset_with_no_order_found_is_order_unknown_never_resent(exchange,
                                                                         local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(ROUTE, Fault("reset"))
        with pytest.raises(OrderUnknown) as info:
            await venue.submit(buy("reset-1"))
        assert info.value.client_order_ids == ["reset-1"]
        assert held(exchange, "reset-1") == 0 and posts(exchange) == 1
    finally:
        await venue.close()


async def test_a_definite_refusal_is_rejected_without_a_lookup(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        with pytest.raises(VenueError, match="404"):
            await venue.submit(buy("bad-1", iid="kalshi:NOPE-1/YES"))
        assert posts(exchange) == 1 and len(exchange.rest.requests) == 1
        update = venue.execution._queue.get_nowait()
        assert update.status is OrderStatus.REJECTED
    finally:
        await venue.close()


def queued(venue: KalshiVenue) -> list[OrderUpdate]:
    out = []
    while not venue.execution._queue.empty():
        out.append(venue.execution._queue.get_nowait())
    return out


def test_post_only_maps_to_a_gtc_post_only_limit_order() -> None:
    body = order_body(buy("po", tif=TimeInForce.POST_ONLY))
    assert (body["time_in_force"], body["post_only"], body["yes_price"]) == (
        "good_till_canceled", True, 45)
    assert "post_only" not in order_body(buy("gtc", tif=TimeInForce.GTC))
    market = Order("m", "kalshi", YES, Side.BUY, D(1), None, OrderType.MARKET,
                   TimeInForce.POST_ONLY, "t")
    with pytest.raises(VenueError, match="post-only order needs a limit price"):
        order_body(market)
    assert "post_only" in KalshiVenue.time_in_force and KalshiVenue.supports_post_only


async def test_post_only_that_would_cross_is_cancelled_with_the_reason(exchange,
                                                                      local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        # YES asks start at 0.42: a post-only buy at 0.45 would take them
        assert await venue.submit(buy("po-1", tif=TimeInForce.POST_ONLY)) == []
        order = exchange.engine.by_client_id("po-1")[0]
        assert (order["status"], order["fill_count"], order["last_update_reason"]) == (
            "canceled", 0, "PostOnlyCrossCancel")
        assert exchange.engine.fills == [] and exchange.engine.books[
            "KXHIGHNY-24JAN01-T60"]["no"] == {55: 30, 57: 8, 58: 20}  # nothing taken
        updates = queued(venue)
        assert [(u.status, u.reason) for u in updates] == [
            (OrderStatus.OPEN, ""), (OrderStatus.CANCELLED, "PostOnlyCrossCancel")]
        # one below the best ask rests, as a maker
        await venue.submit(buy("po-2", limit="0.41", qty=1, tif=TimeInForce.POST_ONLY))
        order = exchange.engine.by_client_id("po-2")[0]
        assert (order["status"], order["fill_count"]) == ("resting", 0)
        assert [u.status for u in queued(venue)] == [OrderStatus.OPEN]
        sent = [r.body for r in exchange.rest.requests if r.method == "POST"]
        assert all(b["post_only"] is True and b["time_in_force"] == "good_till_canceled"
                   for b in sent)
    finally:
        await venue.close()


@pytest.mark.parametrize("fault", [Fault("lost"), Fault("late", delay_s=1.0),
                                   Fault("after", 500), Fault("refuse", 429)])
@pytest.mark.parametrize("limit,status", [("0.41", "resting"), ("0.45", "canceled")])
async def test_post_only_orders_are_exactly_once_under_faults(exchange, local_settings,
                                                              fault, limit, status) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(ROUTE, fault)
        await venue.submit(buy("po-x", limit=limit, qty=1, tif=TimeInForce.POST_ONLY))
        placed = exchange.engine.by_client_id("po-x")
        assert [o["status"] for o in placed] == [status]  # one order, never a second
        assert posts(exchange) == (2 if fault.kind == "refuse" else 1)
        assert exchange.engine.fills == []
        assert venue.execution.venue_ids["po-x"] == placed[0]["order_id"]
        final = queued(venue)[-1]
        assert final.status is (OrderStatus.OPEN if status == "resting"
                                else OrderStatus.CANCELLED)
    finally:
        await venue.close()


async def test_fok_and_no_side_orders(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        await venue.submit(buy("fok-1", limit="0.42", qty=31, tif=TimeInForce.FOK))
        order = exchange.engine.by_client_id("fok-1")[0]
        assert (order["status"], order["fill_count"]) == ("canceled", 0)
        # NO asks: 1 - YES bids = 0.60 (13), 0.61 (10), 0.62 (25)
        await venue.submit(buy("no-1", limit="0.61", qty=20, iid=NO))
        order = exchange.engine.by_client_id("no-1")[0]
        assert (order["side"], order["fill_count"], order["status"]) == ("no", 20, "executed")
        body = order_body(buy("x", limit="0.61", iid=NO))
        assert (body["side"], body["no_price"], body["action"]) == ("no", 61, "buy")
    finally:
        await venue.close()


async def test_lookup_after_a_restart(exchange, local_settings) -> None:
    first = KalshiVenue(local_settings())
    await first.submit(buy("keep-1", limit="0.30", qty=1, tif=TimeInForce.GTC))
    await first.close()
    venue = KalshiVenue(local_settings())
    try:
        found = await venue.lookup(buy("keep-1", limit="0.30", qty=1, tif=TimeInForce.GTC))
        assert found is not None and found.status is OrderStatus.OPEN
        assert found.venue_order_id == exchange.engine.by_client_id("keep-1")[0]["order_id"]
        never = await venue.lookup(buy("never-1"))
        assert never is not None and never.status is OrderStatus.CANCELLED
    finally:
        await venue.close()


async def test_a_request_signed_with_another_key_is_refused(exchange, local_settings,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("KALSHI_TEST_KEY_ID", "someone-else")
    venue = KalshiVenue(local_settings())
    try:
        with pytest.raises(VenueError, match="401"):
            await venue.submit(buy("auth-1"))
        assert held(exchange, "auth-1") == 0
    finally:
        await venue.close()


def test_wire_client_ids_are_kalshi_safe_and_stable() -> None:
    assert wire_client_id("run1-7-strategy-0") == "run1-7-strategy-0"
    odd = wire_client_id("x" * 80)
    assert odd == wire_client_id("x" * 80) and len(odd) <= 64
    assert wire_client_id("a b") != "a b"


def test_live_problems_name_references_not_values(local_settings, monkeypatch) -> None:
    assert KalshiVenue(local_settings()).live_problems() == []
    from argus_venue_kalshi.config import KalshiSettings
    assert "api_key_id" in KalshiVenue(KalshiSettings()).live_problems()[0]
