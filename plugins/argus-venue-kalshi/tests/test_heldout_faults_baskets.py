"""Basket faults the basket tests do not script: a batch answer that arrives whole but
cannot be read, a 5xx after the engine acted with the legs listed late, a 5xx without
acting, and 429s every time.  Each leg is placed at most once and ends found, unknown
(``OrderUnknown``: ``executions()`` looks for it) or provably rejected."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.execution import wire_client_id
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
BATCH = "POST /portfolio/orders/batched"


def basket(tag: str) -> list[Order]:
    # YES asks 42 (20), 43, 45; NO asks 60 (13), 61 (10), 62 (25)
    return [Order(f"{tag}-y", "kalshi", YES, Side.BUY, D(2), D("0.45"), OrderType.LIMIT,
                  TimeInForce.IOC, "t", basket_id="b-1"),
            Order(f"{tag}-n", "kalshi", NO, Side.BUY, D(2), D("0.61"), OrderType.LIMIT,
                  TimeInForce.IOC, "t", basket_id="b-1")]


def batches(exchange: Any) -> int:
    return sum(1 for r in exchange.rest.requests
               if r.method == "POST" and r.path.endswith("/batched"))


def held(exchange: Any, coid: str) -> int:
    return len(exchange.engine.by_client_id(wire_client_id(coid)))


def rejected(venue: KalshiVenue) -> list[str]:
    out = []
    while not venue.execution._queue.empty():
        item = venue.execution._queue.get_nowait()
        if isinstance(item, OrderUpdate) and item.status is OrderStatus.REJECTED:
            out.append(item.client_order_id)
    return out


@pytest.fixture
async def venue(local_settings: Any) -> Any:
    v = KalshiVenue(local_settings(ws_fills=False))
    yield v
    await v.close()


@pytest.mark.parametrize("fault", [Fault("truncated", 201), Fault("shape", 201)],
                         ids=["truncated-201", "wrong-shape-201"])
async def test_an_unreadable_batch_answer_finds_the_legs_instead_of_rejecting_them(
        exchange, venue, fault) -> None:
    """Both legs executed; the answer cannot be read.  Before: every leg REJECTED ("no
    answer for this leg") and the basket refused while its fills stood at Kalshi."""
    exchange.rest.inject(BATCH, fault)
    fills = await venue.submit_basket(basket("cut"))
    assert sorted((f.client_order_id, f.quantity) for f in fills) == [
        ("cut-n", 2), ("cut-y", 2)]
    assert batches(exchange) == 1 and rejected(venue) == []
    assert held(exchange, "cut-y") == 1 and held(exchange, "cut-n") == 1


@pytest.mark.parametrize("status", [502, 503])
async def test_a_5xx_after_acting_with_legs_listed_late_is_not_resent(exchange, venue,
                                                                      status) -> None:
    exchange.rest.visible_after_s = 1.0  # listed late (a margin for loaded boxes)
    exchange.rest.inject(BATCH, Fault("after", status))
    with pytest.raises(OrderUnknown) as info:
        await venue.submit_basket(basket("lag"))
    assert sorted(info.value.client_order_ids) == ["lag-n", "lag-y"]
    assert batches(exchange) == 1 and held(exchange, "lag-y") == 1
    assert set(venue.execution.awaiting) == {"lag-n", "lag-y"}


async def test_a_503_without_acting_is_not_resent(exchange, venue) -> None:
    exchange.rest.inject(BATCH, Fault("refuse", 503))
    with pytest.raises(OrderUnknown):
        await venue.submit_basket(basket("ref"))
    assert batches(exchange) == 1 and held(exchange, "ref-y") == 0


async def test_429_every_time_rejects_the_legs_instead_of_leaving_them_pending(
        exchange, venue) -> None:
    for _ in range(3):  # max_retries = 2: three sends
        exchange.rest.inject(BATCH, Fault("refuse", 429, retry_after=0.01))
    with pytest.raises(VenueError, match="refused before acting") as info:
        await venue.submit_basket(basket("rl"))
    assert not isinstance(info.value, OrderUnknown)
    assert batches(exchange) == 3 and held(exchange, "rl-y") == 0
    assert sorted(rejected(venue)) == ["rl-n", "rl-y"]
