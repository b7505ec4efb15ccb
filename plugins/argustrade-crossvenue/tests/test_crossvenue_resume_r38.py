"""Red team (round 38): a legged basket's fills are found again on a restart.

Before: the fills left the composite under their inner venue's name (``Fill.venue`` =
``kalshi`` / ``polymarket``, as the real adapters set it), so the ledger booked them
there while the run's orders were booked under ``crossvenue``; the restart's
``venue_resume("crossvenue")`` held no fills, and neither venue learnt which of its fills
were booked (Polymarket's post-answer fill ``<hash>:0`` unknown, its taker trades are
reported again under their trade ids: booked twice).  Each test failed before the fix.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast

import pytest
from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.venue import CrossVenue
from argus_testkit import FakeExchange, FakeLiveVenue

from argus_core import (
    BasketIncomplete,
    FeeSchedule,
    Fill,
    Instrument,
    Ledger,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)

K_YES, P_NO = "kalshi:KX/YES", "polymarket:222"


def exchanges() -> tuple[FakeExchange, FakeExchange]:
    """One Kalshi contract (whole lots) and one Polymarket token (0.01 lots), 50 deep."""
    k = FakeExchange([Instrument("kalshi", "KX/YES", kind="binary", lot_size=D(1))],
                     venue="kalshi", fee=FeeSchedule(),
                     market=[OrderBook(K_YES, 1, [(0.40, 10.0)], [(0.42, 50.0)])])
    p = FakeExchange([Instrument("polymarket", "222", kind="binary", lot_size=D("0.01"))],
                     venue="polymarket", fee=FeeSchedule(),
                     market=[OrderBook(P_NO, 2, [(0.48, 10.0)], [(0.52, 50.0)])])
    for ex in (k, p):
        for event in ex.market:
            ex.observe(event)
    return k, p


def order(coid: str, iid: str, qty: str, limit: str) -> Order:
    """One IOC buy leg of basket ``b1``, as the core persists it (run venue)."""
    return Order(coid, "crossvenue", iid, Side.BUY, D(qty), D(limit), OrderType.LIMIT,
                 TimeInForce.IOC, "crossvenue", 1, basket_id="b1")


def _fills_as(venue: str, qty: str, price: str
              ) -> Callable[[Order], Sequence[Fill | OrderUpdate]]:
    """An exchange script: one fill named by ``venue`` (as its adapter names it), then
    the IOC rest cancelled."""
    def on_order(o: Order) -> list[Fill | OrderUpdate]:
        items: list[Fill | OrderUpdate] = []
        if D(qty) > 0:
            items.append(Fill(f"{venue}-{o.client_order_id}", o.client_order_id, venue,
                              o.instrument_id, o.side, D(price), D(qty), D("0.02"),
                              Liquidity.TAKER, 5))
        if D(qty) < o.quantity:
            items.append(OrderUpdate(o.client_order_id, OrderStatus.CANCELLED, 6))
        return items
    return on_order


def _composite(k: FakeExchange, p: FakeExchange
               ) -> tuple[CrossVenue, dict[str, FakeLiveVenue]]:
    inner = {"kalshi": FakeLiveVenue(exchange=k), "polymarket": FakeLiveVenue(exchange=p)}
    return CrossVenue(CrossVenueSettings(leg_timeout_s=2.0), inner=inner), inner


def _restart(tmp_path: Path, orders: Sequence[Order], fills: Sequence[Fill]
             ) -> dict[str, FakeLiveVenue]:
    """Book ``orders`` and ``fills`` as the core does, restart on fresh inner venues."""
    with Ledger.in_dir(tmp_path / "run") as ledger, ledger.transaction():
        for o in orders:
            ledger.insert_order(o, "r")
        for f in fills:
            ledger.insert_fill(f)
        known = ledger.venue_resume("crossvenue")
    k, p = exchanges()
    venue, inner = _composite(k, p)
    venue.resume(known)
    return inner


async def test_a_legged_baskets_fills_are_handed_back_to_their_venues(
        tmp_path: Path) -> None:
    k, p = exchanges()
    p.on_order = _fills_as("polymarket", "30", "0.52")
    k.on_order = _fills_as("kalshi", "30", "0.42")
    venue, _ = _composite(k, p)
    legs = [order("c-1", P_NO, "40", "0.52"), order("c-2", K_YES, "40", "0.42")]
    try:
        fills = await venue.submit_basket(legs)
    finally:
        await venue.close()
    assert {f.venue for f in fills} == {"crossvenue"}
    inner = _restart(tmp_path, legs, fills)
    assert list(inner["polymarket"].known_fill_ids.values()) == ["c-1"]
    assert list(inner["kalshi"].known_fill_ids.values()) == ["c-2"]


async def test_a_naked_legs_fills_in_basket_incomplete_are_found_again(
        tmp_path: Path) -> None:
    """The unwind path: the second leg is killed unfilled; the first leg's fills that
    ``BasketIncomplete`` carries are booked, and the restart knows them."""
    k, p = exchanges()
    p.on_order = _fills_as("polymarket", "40", "0.52")
    k.on_order = _fills_as("kalshi", "0", "0.42")
    venue, _ = _composite(k, p)
    legs = [order("c-1", P_NO, "40", "0.52"), order("c-2", K_YES, "40", "0.42")]
    try:
        with pytest.raises(BasketIncomplete) as caught:
            await venue.submit_basket(legs)
    finally:
        await venue.close()
    assert [f.venue for f in caught.value.fills] == ["crossvenue"]
    inner = _restart(tmp_path, legs, caught.value.fills)
    assert list(inner["polymarket"].known_fill_ids.values()) == ["c-1"]


async def test_single_orders_and_executions_carry_the_composites_name() -> None:
    k, p = exchanges()
    p.on_order = _fills_as("polymarket", "10", "0.52")
    venue, _ = _composite(k, p)
    try:
        answered = await venue.submit(order("c-9", P_NO, "10", "0.52"))
        stream = cast(AsyncGenerator[Any, None], venue.executions())
        streamed = await anext(stream)
        await stream.aclose()
    finally:
        await venue.close()
    assert [f.venue for f in answered] in ([], ["crossvenue"])
    assert isinstance(streamed, Fill) and streamed.venue == "crossvenue"
