"""Fourth held-out red team of the composite venue's legging: what a leg's venue raises,
and how much the second leg may be sent for.

What was found (each test failed before its fix):

* a second leg whose venue adapter failed with an exception other than ``VenueError``
  (a reset connection, a ``KeyError`` on an odd answer: by the core's contract an
  *unknown* outcome, ``argus_core.execution.outcome_unknown``) was taken for a refusal:
  the composite reported the leg CANCELLED and raised ``BasketIncomplete``, so the engine
  unwound the first leg while the second could be working, or filled, at its venue;
* the same failure on the first leg left the second leg (never sent) without a final
  status;
* the second leg was sent for what the first filled even when that was more than the
  second leg's own quantity (the one the risk engine approved and the ledger committed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal as D
from typing import Any

import pytest
from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.venue import CrossVenue
from argus_testkit import FakeExchange, FakeLiveVenue

from argus_core import (
    FeeSchedule,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    Side,
    TimeInForce,
)

K_YES, P_NO = "kalshi:KX/YES", "polymarket:222"


def _exchange(venue: str, iid: str, lot: str) -> FakeExchange:
    symbol = iid.partition(":")[2]
    ex = FakeExchange([Instrument(venue, symbol, kind="binary", lot_size=D(lot))],
                      venue=venue, fee=FeeSchedule(),
                      market=[OrderBook(iid, 1, [(0.40, 10.0)], [(0.45, 500.0)])])
    ex.observe(ex.market[0])
    return ex


class ActsThenFails(FakeLiveVenue):
    """A venue whose adapter sends the order, then fails reading the answer."""

    async def submit(self, order: Order) -> list[Fill]:
        await super().submit(order)
        raise ConnectionResetError("connection reset reading the answer")


def _composite(kalshi: FakeLiveVenue, polymarket: FakeLiveVenue) -> CrossVenue:
    return CrossVenue(CrossVenueSettings(leg_timeout_s=2.0),
                      inner={"kalshi": kalshi, "polymarket": polymarket})


def _order(coid: str, iid: str, qty: str) -> Order:
    return Order(coid, "crossvenue", iid, Side.BUY, D(qty), D("0.5"), OrderType.LIMIT,
                 TimeInForce.IOC, "crossvenue", 1, basket_id="b1")


def _fills(qty: str | None = None) -> Callable[[Order], Sequence[Fill | OrderUpdate]]:
    """An exchange script: fill ``qty`` (default: all) at 0.45, cancel an IOC's rest."""
    def on_order(o: Order) -> list[Fill | OrderUpdate]:
        got = o.quantity if qty is None else D(qty)
        out: list[Fill | OrderUpdate] = [Fill(f"T-{o.client_order_id}", o.client_order_id,
                                              "x", o.instrument_id, o.side, D("0.45"),
                                              got, D(0), Liquidity.TAKER, 5)]
        if got < o.quantity:
            out.append(OrderUpdate(o.client_order_id, OrderStatus.CANCELLED, 6))
        return out
    return on_order


def _tape(venue: CrossVenue) -> list[Any]:
    out = []
    while venue._executions is not None and not venue._executions.empty():
        out.append(venue._executions.get_nowait())
    return out


async def test_a_second_leg_whose_adapter_fails_is_unknown_not_cancelled() -> None:
    """Before: ``BasketIncomplete`` and a CANCELLED update for c-2, which the Kalshi
    exchange had taken (and filled): the engine unwound the Polymarket leg, leaving the
    Kalshi one naked.  Now: ``OrderUnknown`` naming c-2, no status made up for it, and
    the first leg's fills reach the engine through the executions."""
    k, p = _exchange("kalshi", K_YES, "1"), _exchange("polymarket", P_NO, "0.01")
    p.on_order, k.on_order = _fills("40"), _fills("40")
    venue = _composite(ActsThenFails(exchange=k), FakeLiveVenue(exchange=p))
    try:
        with pytest.raises(OrderUnknown) as caught:
            await venue.submit_basket([_order("c-1", P_NO, "40"), _order("c-2", K_YES, "40")])
        tape = _tape(venue)
    finally:
        await venue.close()
    assert caught.value.client_order_ids == ["c-2"]
    assert "ConnectionResetError" in str(caught.value)
    assert k.count("c-2") == 1  # it did reach Kalshi
    assert not [u for u in tape if isinstance(u, OrderUpdate) and u.client_order_id == "c-2"
                and u.status is OrderStatus.CANCELLED]
    assert [f.quantity for f in tape if isinstance(f, Fill) and f.client_order_id == "c-1"]


async def test_a_first_leg_whose_adapter_fails_ends_the_unsent_second_leg() -> None:
    """Before: the ``ConnectionResetError`` went out as it was and c-2, never sent, got no
    final status.  Now: ``OrderUnknown`` naming c-1, and c-2 reported CANCELLED (not sent),
    as for a first leg whose venue raised ``OrderUnknown`` itself."""
    k, p = _exchange("kalshi", K_YES, "1"), _exchange("polymarket", P_NO, "0.01")
    p.on_order = _fills("40")
    venue = _composite(FakeLiveVenue(exchange=k), ActsThenFails(exchange=p))
    try:
        with pytest.raises(OrderUnknown) as caught:
            await venue.submit_basket([_order("c-1", P_NO, "40"), _order("c-2", K_YES, "40")])
        tape = _tape(venue)
    finally:
        await venue.close()
    assert caught.value.client_order_ids == ["c-1"]
    assert k.received == []
    assert [(u.client_order_id, u.status) for u in tape if isinstance(u, OrderUpdate)
            and u.client_order_id == "c-2"] == [("c-2", OrderStatus.CANCELLED)]


async def test_the_second_leg_is_never_sent_for_more_than_its_own_quantity() -> None:
    """Legs of 40 (Polymarket, first) and 30 (Kalshi, e.g. shrunk by a risk check).
    Before: the first filled 40 and the Kalshi leg went out for 40, ten more than the
    ledger committed and risk approved.  Now it goes for 30; the basket is complete on
    the second leg's side and the first leg's extra 10 is the engine's to even out."""
    k, p = _exchange("kalshi", K_YES, "1"), _exchange("polymarket", P_NO, "0.01")
    p.on_order, k.on_order = _fills(), _fills()
    venue = _composite(FakeLiveVenue(exchange=k), FakeLiveVenue(exchange=p))
    try:
        fills = await venue.submit_basket([_order("c-1", P_NO, "40"),
                                           _order("c-2", K_YES, "30")])
    finally:
        await venue.close()
    assert [o.quantity for o in k.received] == [30]
    assert sorted((f.client_order_id, f.quantity) for f in fills) == [("c-1", 40),
                                                                      ("c-2", 30)]
