"""A basket unwind the market did not take is sent again, never left as a naked leg.

Before: an unwind's whole quantity counted as done once it was sent, so an IOC unwind
that the market did not take (the book moved past its limit) ended CANCELLED and the
leg it was to even out stayed naked for the rest of the run.  Now what an ended unwind
left is sent again, priced through the market's price (the leg's fill price may be far
away by then), ``HALT_CANCEL_RETRY_NS`` after the last unwind and twice as long each
time; after ``UNWIND_TRIES`` unwinds of one instrument the rest is said once
(``unwind_abandoned``) and trading goes REDUCING.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from order_path_kit import (
    RTVenue,
    Scripted,
    X,
    Y,
    bar,
    buy,
    position,
    q,
    register,
    runner,
    sell,
    venue_position,
)

from argus_core.execution import HALT_CANCEL_RETRY_NS, UNWIND_TRIES
from argus_core.models import Fill, Order, OrderStatus, OrderUpdate

S = 10**9


class ThinUnwinds(RTVenue):
    """A basket's leg on Y finds no liquidity (CANCELLED); the first ``refuse`` unwinds
    find none either (IOC cancelled unfilled), later ones fill at their limit."""

    refuse: ClassVar[int] = 0
    unwinds: ClassVar[list[tuple[Order, int]]] = []  # (order, bar time when it came)
    now_s: ClassVar[int] = 0

    async def submit(self, order: Order) -> list[Fill]:
        if order.instrument_id == Y and not order.reduce_only:
            RTVenue.submitted.append(order)
            self.queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED,
                                              1, "V-y", "IOC: no liquidity"))
            return []
        if order.reduce_only:
            ThinUnwinds.unwinds.append((order, ThinUnwinds.now_s))
            if ThinUnwinds.refuse > 0:
                ThinUnwinds.refuse -= 1
                RTVenue.submitted.append(order)
                self.queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED,
                                                  1, "V-u", "IOC: no liquidity"))
                return []
        return await super().submit(order)


def _bars(first: int, last: int, price: float) -> list[Any]:
    out: list[Any] = []
    for t in range(first, last + 1):
        out += [lambda t=t: setattr(ThinUnwinds, "now_s", t), bar(X, t, price), bar(Y, t)]
    return out


def _legs(e: object, c: object) -> list[object]:
    return [buy(X, "1", basket_id="b1"), sell(Y, "1", basket_id="b1")]


def _setup(monkeypatch: Any, refuse: int) -> None:
    register(monkeypatch, ThinUnwinds)
    ThinUnwinds.refuse, ThinUnwinds.unwinds, ThinUnwinds.now_s = refuse, [], 0


def test_an_unwind_the_market_did_not_take_is_sent_again_from_the_market_price(
        tmp_path, monkeypatch) -> None:
    _setup(monkeypatch, refuse=2)
    run = tmp_path / "run"
    # X is bought at 101, then trades at 80: the leg's fill price is far from the market
    ThinUnwinds.script = [*_bars(1, 2, 100.0), *_bars(3, 40, 80.0)]
    runner(tmp_path, {"s": Scripted({2: _legs})}).run_sync()
    assert position(run, X) == venue_position(X) == 0, "the leg was left naked"
    sent = ThinUnwinds.unwinds
    assert [o.client_order_id.rsplit("-", 2)[-2:] for o, _ in sent][1:] == \
        [["unwind", "2"], ["unwind", "3"]]
    assert sent[0][0].client_order_id.endswith("-unwind")
    times = [t for _, t in sent]
    base = HALT_CANCEL_RETRY_NS // S
    assert times[1] - times[0] >= base and times[2] - times[1] >= 2 * base, times
    # the first through the leg's fill price (101 less 5 %), later ones through the market
    assert sent[0][0].limit_price == Decimal("95.95")
    assert all(o.limit_price == Decimal(76) for o, _ in sent[1:]), [o.limit_price for o, _ in sent]
    assert not q(run, "select 1 from risk_events where action = 'unwind_abandoned'")


def test_unwinds_the_market_never_takes_are_given_up_loudly(tmp_path, monkeypatch) -> None:
    _setup(monkeypatch, refuse=10**6)
    run = tmp_path / "run"
    ThinUnwinds.script = _bars(1, 200, 100.0)
    r = runner(tmp_path, {"s": Scripted({2: _legs})})
    r.run_sync()
    assert len(ThinUnwinds.unwinds) == UNWIND_TRIES  # then no more
    (said,) = q(run, "select reason from risk_events where action = 'unwind_abandoned'")
    assert "b1" in said["reason"] and "1 of rt:X/USD still unhedged" in said["reason"]
    assert r.trading_state.value == "reducing"
    assert position(run, X) == venue_position(X) == 1


def test_an_unwind_that_fills_is_not_sent_again(tmp_path, monkeypatch) -> None:
    _setup(monkeypatch, refuse=0)
    run = tmp_path / "run"
    ThinUnwinds.script = _bars(1, 40, 100.0)
    runner(tmp_path, {"s": Scripted({2: _legs})}).run_sync()
    assert len(ThinUnwinds.unwinds) == 1
    assert position(run, X) == venue_position(X) == 0
