"""Reduce-only orders on Kalshi never open the reverse position: Kalshi nets YES and NO
in a market (selling YES it does not hold buys NO), so an exit is sized to the position
Kalshi states (``GET /portfolio/positions``) and refused unsent when Kalshi holds nothing
it would reduce; the order carries Kalshi's own ``reduce_only`` guard too."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import Order, OrderStatus, OrderType, Side, TimeInForce, VenueError

TICKER = "KXHIGHNY-24JAN01-T60"
YES = f"kalshi:{TICKER}/YES"
NO = f"kalshi:{TICKER}/NO"


def exit_order(coid: str, side: Side, qty: int, iid: str = YES, limit: str = "0.01",
               reduce_only: bool = True) -> Order:
    if side is Side.BUY:
        limit = "0.99"
    return Order(coid, "kalshi", iid, side, D(qty), D(limit), OrderType.LIMIT,
                 TimeInForce.IOC, "flatten", reduce_only=reduce_only)


def sent(exchange) -> list[dict]:
    return [r.body for r in exchange.rest.requests
            if r.method == "POST" and r.path.endswith("/portfolio/orders")]


def position_reads(exchange) -> int:
    return sum(1 for r in exchange.rest.requests if r.path.endswith("/portfolio/positions"))


async def _filled(venue: KalshiVenue, exchange, coid: str) -> int:
    (order,) = exchange.engine.by_client_id(wire_client_id(coid))
    return order["fill_count"]


@pytest.mark.parametrize(("held", "side", "iid", "want"), [
    (7, Side.SELL, YES, 7),     # YES held, 10 to sell: cut to the 7 held
    (12, Side.SELL, YES, 10),   # more held than the exit: sent whole
    (-3, Side.BUY, YES, 3),     # NO held: buying YES reduces it (Kalshi nets the two)
    (-4, Side.SELL, NO, 4),     # NO held, selling NO
    (5, Side.BUY, NO, 5),       # YES held: buying NO reduces it
])
async def test_an_exit_is_cut_to_the_position_kalshi_holds(exchange, local_settings, held,
                                                           side, iid, want) -> None:
    exchange.engine.outside[TICKER] = held
    venue = KalshiVenue(local_settings())
    try:
        assert await venue.submit(exit_order("ro-1", side, 10, iid)) == []
        (body,) = sent(exchange)
        assert body["count"] == want and body["reduce_only"] is True
        assert await _filled(venue, exchange, "ro-1") == want
        assert abs(exchange.engine.position(TICKER)) == abs(held) - want  # never flipped
    finally:
        await venue.close()


@pytest.mark.parametrize(("held", "side", "iid"), [
    (0, Side.SELL, YES),    # the ledger's long that Kalshi does not hold
    (-3, Side.SELL, YES),   # NO held: selling YES would buy more NO
    (6, Side.BUY, YES),     # YES held: a reduce-only buy of YES would add to it
    (6, Side.SELL, NO),     # YES held: selling NO buys YES
])
async def test_an_exit_with_nothing_to_reduce_is_refused_unsent(exchange, local_settings,
                                                                held, side, iid) -> None:
    exchange.engine.outside[TICKER] = held
    venue = KalshiVenue(local_settings())
    try:
        with pytest.raises(VenueError, match="nothing to reduce"):
            await venue.submit(exit_order("ro-2", side, 4, iid))
        assert sent(exchange) == [] and exchange.engine.position(TICKER) == held
        update = venue.execution._queue.get_nowait()
        assert (update.client_order_id, update.status) == ("ro-2", OrderStatus.REJECTED)
    finally:
        await venue.close()


async def test_an_exit_whose_position_cannot_be_read_is_refused_unsent(
        exchange, local_settings) -> None:
    exchange.engine.outside[TICKER] = 5
    for _ in range(3):  # the first read and its max_retries (2)
        exchange.rest.inject("GET /portfolio/positions", Fault("refuse", 503))
    venue = KalshiVenue(local_settings())
    try:
        with pytest.raises(VenueError, match="could not be read"):
            await venue.submit(exit_order("ro-3", Side.SELL, 4))
        assert sent(exchange) == [] and position_reads(exchange) == 3
    finally:
        await venue.close()


async def test_orders_that_are_not_exits_read_no_position(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        await venue.submit(exit_order("open-1", Side.SELL, 3, reduce_only=False))
        (body,) = sent(exchange)
        assert "reduce_only" not in body and position_reads(exchange) == 0
        assert exchange.engine.position(TICKER) == -3  # selling YES not held: NO bought
    finally:
        await venue.close()


def test_the_exchange_caps_a_reduce_only_order_at_the_position(exchange) -> None:
    """Kalshi's own guard (the position moved between the read and the order): a
    reduce-only order trades at most what the position holds, the rest is cancelled."""
    exchange.engine.outside[TICKER] = 2
    order = exchange.engine.create({
        "ticker": TICKER, "client_order_id": "race-1", "side": "yes", "action": "sell",
        "count": 5, "type": "limit", "yes_price_dollars": "0.0100",
        "time_in_force": "good_till_canceled", "reduce_only": True})
    assert (order["fill_count"], order["status"]) == (2, "canceled")
    assert exchange.engine.position(TICKER) == 0
