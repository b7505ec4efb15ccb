"""Baskets through ``POST /portfolio/orders/batched``: one request, legs FOK, per-leg
outcomes (filled, killed, refused), and exactly once when the answer is lost, late or
refused: every leg is looked up by client order id before anything is re-sent."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    BasketIncomplete,
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


def leg(coid: str, iid: str, limit: str, qty: int = 2) -> Order:
    return Order(coid, "kalshi", iid, Side.BUY, D(qty), D(limit), OrderType.LIMIT,
                 TimeInForce.IOC, "t", basket_id="b-1")


def basket(tag: str, yes_qty: int = 2, no_iid: str = NO) -> list[Order]:
    # YES asks 42 (20), 43, 45; NO asks 60 (13), 61 (10), 62 (25)
    return [leg(f"{tag}-y", YES, "0.45", yes_qty), leg(f"{tag}-n", no_iid, "0.61", 2)]


def batches(exchange) -> list[dict]:
    return [r.body for r in exchange.rest.requests
            if r.method == "POST" and r.path.endswith("/batched")]


def held(exchange, coid: str) -> int:
    return len(exchange.engine.by_client_id(wire_client_id(coid)))


def updates(venue) -> list[OrderUpdate]:
    out = []
    while not venue.execution._queue.empty():
        out.append(venue.execution._queue.get_nowait())
    return out


async def test_a_basket_is_one_batch_of_fok_legs_and_returns_their_fills(exchange,
                                                                         local_settings
                                                                         ) -> None:
    venue = KalshiVenue(local_settings())
    try:
        assert KalshiVenue.supports_baskets
        fills = await venue.submit_basket(basket("ok"))
        assert sorted((f.client_order_id, f.price, f.quantity) for f in fills) == [
            ("ok-n", D("0.60"), D(2)), ("ok-y", D("0.42"), D(2))]
        sent = batches(exchange)
        assert len(sent) == 1 and not any(r.path.endswith("/portfolio/orders")
                                          and r.method == "POST"
                                          for r in exchange.rest.requests)
        assert [o["time_in_force"] for o in sent[0]["orders"]] == ["fill_or_kill"] * 2
        # the executions poll does not report the basket's fills a second time
        assert not [i for i in await venue.execution._poll() if hasattr(i, "fill_id")]
    finally:
        await venue.close()


async def test_a_killed_leg_makes_the_basket_incomplete(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        with pytest.raises(BasketIncomplete, match="kill-y filled 0/500") as info:
            await venue.submit_basket(basket("kill", yes_qty=500))  # FOK: not enough asks
        assert {f.client_order_id for f in info.value.fills} == {"kill-n"}
        assert exchange.engine.by_client_id("kill-y")[0]["status"] == "canceled"
        assert ("kill-y", OrderStatus.CANCELLED) in [(u.client_order_id, u.status)
                                                     for u in updates(venue)]
    finally:
        await venue.close()


async def test_a_refused_leg_is_rejected_and_the_rest_stand(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        with pytest.raises(BasketIncomplete, match="market_not_found"):
            await venue.submit_basket(basket("rej", no_iid="kalshi:NOPE-1/NO"))
        assert ("rej-n", OrderStatus.REJECTED) in [(u.client_order_id, u.status)
                                                   for u in updates(venue)]
        assert held(exchange, "rej-y") == 1 and held(exchange, "rej-n") == 0
        with pytest.raises(VenueError, match="refused"):  # every leg refused
            await venue.submit_basket([leg("all-1", "kalshi:NOPE-1/YES", "0.4")])
    finally:
        await venue.close()


@pytest.mark.parametrize("fault", [Fault("lost"), Fault("late", delay_s=1.0),
                                   Fault("after", 500)])
async def test_an_ambiguous_answer_is_resolved_by_lookup_never_resent(exchange, local_settings,
                                                                      fault) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(BATCH, fault)
        fills = await venue.submit_basket(basket("amb"))
        assert {f.client_order_id for f in fills} == {"amb-y", "amb-n"}
        assert len(batches(exchange)) == 1
        assert held(exchange, "amb-y") == 1 and held(exchange, "amb-n") == 1
    finally:
        await venue.close()


# Only a 429 proves Kalshi did not act; a 502 / 503 is resolved by look-up alone
# (tests/test_heldout_faults_baskets.py).
@pytest.mark.parametrize("status", [429])
async def test_a_batch_refused_before_acting_is_looked_up_then_resent(exchange, local_settings,
                                                                      status) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(BATCH, Fault("refuse", status))
        fills = await venue.submit_basket(basket("ref"))
        assert {f.client_order_id for f in fills} == {"ref-y", "ref-n"}
        kinds = [(r.method, r.path.rsplit("/", 1)[-1]) for r in exchange.rest.requests]
        # (the look-up reads the historical cutoff too: before it, /historical/orders)
        assert kinds[:4] == [("POST", "batched"), ("GET", "orders"), ("GET", "cutoff"),
                             ("POST", "batched")]
        assert held(exchange, "ref-y") == 1 and held(exchange, "ref-n") == 1
    finally:
        await venue.close()


async def test_a_lost_answer_after_part_of_the_batch_names_only_the_unknown_leg(
        exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(BATCH, Fault("lost", legs=1))  # only the first leg placed
        with pytest.raises(OrderUnknown) as info:
            await venue.submit_basket(basket("part"))
        assert info.value.client_order_ids == ["part-n"]
        assert len(batches(exchange)) == 1  # nothing re-sent blind
        assert held(exchange, "part-y") == 1 and held(exchange, "part-n") == 0
        assert venue.execution.venue_ids["part-y"].startswith("ord-")  # found: acknowledged
    finally:
        await venue.close()


async def test_a_reset_with_no_leg_found_is_order_unknown(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        exchange.rest.inject(BATCH, Fault("reset"))
        with pytest.raises(OrderUnknown) as info:
            await venue.submit_basket(basket("rst"))
        assert info.value.client_order_ids == ["rst-y", "rst-n"]
        assert len(batches(exchange)) == 1 and held(exchange, "rst-y") == 0
    finally:
        await venue.close()


async def test_a_basket_larger_than_a_batch_is_refused_before_sending(exchange,
                                                                      local_settings) -> None:
    venue = KalshiVenue(local_settings(writes_per_s=30))
    try:
        with pytest.raises(VenueError, match="at most 20 orders"):
            await venue.submit_basket([leg(f"big-{k}", YES, "0.30", 1) for k in range(21)])
        assert batches(exchange) == []
    finally:
        await venue.close()
