"""Answers that name another order: a ``POST /portfolio/orders`` (or batch) answer, or a
cancel's confirmation, that carries another order's ids (a mixed-up answer: a proxy's, a
cache's, a bug).  Taken at its word, the venue would map another order (one placed by
hand, say) to ours: its fills booked as ours, our cancel sent to it, our fills missed.
Such an answer proves nothing about our order, so it is resolved by asking Kalshi by
client order id, like any other ambiguous answer; never re-sent."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
)

TICKER = "KXHIGHNY-24JAN01-T60"
YES = f"kalshi:{TICKER}/YES"
NO = f"kalshi:{TICKER}/NO"


def buy(coid: str, iid: str = YES, limit: str = "0.30", qty: int = 1,
        tif: TimeInForce = TimeInForce.GTC, basket_id: str | None = None) -> Order:
    return Order(coid, "kalshi", iid, Side.BUY, D(qty), D(limit), OrderType.LIMIT, tif,
                 "t", basket_id=basket_id)


def by_hand(exchange: Any) -> dict[str, Any]:
    """An order placed at Kalshi by a person (resting YES bid at 20 cents)."""
    return exchange.engine.create({
        "ticker": TICKER, "client_order_id": "by-hand", "side": "yes", "action": "buy",
        "count": 2, "yes_price_dollars": "0.2000", "time_in_force": "good_till_canceled"})


def posts(exchange: Any, suffix: str) -> int:
    return sum(1 for r in exchange.rest.requests
               if r.method == "POST" and r.path.endswith(suffix))


@pytest.fixture
async def venue(local_settings: Any) -> Any:
    v = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=5.0))
    yield v
    await v.close()


async def test_an_order_answer_naming_another_order_is_looked_up_not_adopted(
        exchange, venue) -> None:
    """The 201 names the hand-placed order: ours is found by client id (sent once), the
    hand order's fill is not booked as ours, and our cancel cancels ours, not it."""
    hand = by_hand(exchange)
    exchange.rest.inject("POST /portfolio/orders", Fault("other", 201))
    assert await venue.submit(buy("mine-1")) == []
    (mine,) = exchange.engine.by_client_id(wire_client_id("mine-1"))
    assert posts(exchange, "/portfolio/orders") == 1
    assert venue.execution.venue_ids["mine-1"] == mine["order_id"]
    assert hand["order_id"] not in venue.execution.order_ids
    exchange.engine.fill_resting(hand["order_id"], 2)
    items = await venue.execution._poll()
    assert not [i for i in items if isinstance(i, Fill) and i.client_order_id == "mine-1"]
    await venue.cancel("mine-1")
    assert exchange.engine.orders[mine["order_id"]]["status"] == "canceled"


async def test_a_basket_answer_naming_other_orders_looks_every_leg_up(exchange,
                                                                      venue) -> None:
    """Every leg's answer names the hand-placed order: the legs (both filled at Kalshi)
    are found by client id and their fills returned, never the hand order's."""
    hand = by_hand(exchange)
    exchange.rest.inject("POST /portfolio/orders/batched", Fault("other", 201))
    legs = [buy("bk-y", YES, "0.45", 2, TimeInForce.IOC, "b-1"),
            buy("bk-n", NO, "0.61", 2, TimeInForce.IOC, "b-1")]
    fills = await venue.submit_basket(legs)
    assert sorted((f.client_order_id, f.quantity) for f in fills) == [
        ("bk-n", D(2)), ("bk-y", D(2))]
    assert posts(exchange, "/batched") == 1
    assert hand["order_id"] not in venue.execution.order_ids
    for coid in ("bk-y", "bk-n"):
        (placed,) = exchange.engine.by_client_id(wire_client_id(coid))
        assert venue.execution.venue_ids[coid] == placed["order_id"]


async def test_a_cancel_confirmation_naming_another_order_is_not_a_cancel(
        exchange, venue) -> None:
    """A cancel's answer is lost; the look-up (``GET /portfolio/orders/{id}``) answers
    with another order shown cancelled: ours still rests, so the cancel fails naming
    it, and no CANCELLED is reported for it."""
    await venue.submit(buy("cx-9"))
    vid = venue.execution.venue_ids["cx-9"]
    other = by_hand(exchange)
    exchange.engine.cancel(other["order_id"])
    exchange.rest.inject("DELETE /portfolio/orders", Fault("refuse", 503))
    exchange.rest.inject("GET /portfolio/orders/", Fault("other", 200))
    with pytest.raises(VenueError, match="cx-9"):
        await venue.cancel("cx-9")
    assert exchange.engine.orders[vid]["status"] == "resting"
    while not venue.execution._queue.empty():
        item = venue.execution._queue.get_nowait()
        assert not (isinstance(item, OrderUpdate) and item.status is OrderStatus.CANCELLED)
