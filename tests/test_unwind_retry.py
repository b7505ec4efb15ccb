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

import asyncio
from decimal import Decimal
from typing import Any, ClassVar

from order_path_kit import (
    RTVenue,
    Scripted,
    X,
    Y,
    bar,
    buy,
    cli_,
    position,
    q,
    register,
    runner,
    sell,
    venue_position,
)

from argus_core.errors import OrderUnknown, VenueError
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


def _setup(monkeypatch: Any, refuse: int, cls: type[ThinUnwinds] = ThinUnwinds) -> None:
    register(monkeypatch, cls)
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


class FillThenNoAnswer(RTVenue):
    """The basket's first leg trades and its fill reaches the executions stream; the
    send's answer is then lost (OrderUnknown): the engine learns the leg's fate before it
    records the send's outcome and cancels the legs it will not send."""

    async def submit(self, order: Order) -> list[Fill]:
        if order.basket_id and not order.reduce_only:
            RTVenue.submitted.append(order)
            self.queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1,
                                              "V-leg"))
            self.fill(order)
            await asyncio.sleep(0.05)  # the fill is booked before the answer is given up
            raise OrderUnknown("timeout reading the answer", [order.client_order_id])
        return await super().submit(order)


def test_a_leg_filled_before_its_send_was_given_up_is_unwound(tmp_path, monkeypatch) -> None:
    """Found by the run campaign (seeds 5214, 5567): the leg's fill made it final while
    the next leg was still pending (no unwind yet); the next leg was then cancelled unsent
    and nothing looked at the basket again: the first leg stayed naked."""
    register(monkeypatch, FillThenNoAnswer)
    run = tmp_path / "run"
    FillThenNoAnswer.script = [b for t in range(1, 8) for b in (bar(X, t), bar(Y, t))]
    runner(tmp_path, {"s": Scripted({2: _legs})}).run_sync()
    legs = q(run, "select instrument_id, status from orders where reduce_only = 0 "
                  "order by instrument_id")
    assert [(r["instrument_id"], r["status"]) for r in legs] == [(X, "filled"),
                                                                 (Y, "cancelled")]
    assert position(run, X) == venue_position(X) == 0, "the filled leg was left naked"


def test_a_leg_that_closed_part_of_a_held_position_is_not_unwound_every_event(
        tmp_path, monkeypatch) -> None:
    """Long 5 X, then a basket sells 1 X (filled) and 1 Y (no liquidity): taking the X
    leg back is a buy, which a reduce-only unwind cannot do on a long position.  It was
    vetoed again on every later event (an ``unwind`` and a ``reduce_only`` veto each);
    now it is said once."""
    _setup(monkeypatch, refuse=0)
    run = tmp_path / "run"
    ThinUnwinds.script = _bars(1, 30, 100.0)
    plan = {1: lambda e, c: [buy(X, "5")], 4: _legs_selling_x}
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    assert position(run, X) == venue_position(X) == 4
    assert ThinUnwinds.unwinds == []
    (said,) = q(run, "select reason from risk_events where action = 'unwind_skipped'")
    assert "would not reduce the position held (4)" in said["reason"]
    assert not q(run, "select 1 from risk_events where check_name = 'reduce_only'")


def _legs_selling_x(e: object, c: object) -> list[object]:
    return [sell(X, "1", basket_id="b2"), sell(Y, "1", basket_id="b2")]


class FlagRefused(ThinUnwinds):
    """The basket's Y leg finds no liquidity; the venue refuses every order carrying its
    reduce-only flag (a market that takes none) and, while ``refuse_all``, every exit at
    all (a 503); an exit without the flag fills."""

    refuse_all: ClassVar[bool] = False

    async def submit(self, order: Order) -> list[Fill]:
        if order.reduce_only or (order.strategy == "flatten" and FlagRefused.refuse_all):
            ThinUnwinds.unwinds.append((order, ThinUnwinds.now_s))
            RTVenue.submitted.append(order)
            raise VenueError("503 Service Unavailable" if FlagRefused.refuse_all else
                             "reduce-only orders are not accepted on this market")
        return await super().submit(order)


def _kill(run: Any) -> Any:
    return lambda: cli_("kill", "--run-dir", str(run), "--flatten")


def test_under_a_kill_the_flatten_alone_closes_a_naked_leg(tmp_path, monkeypatch) -> None:
    """Run campaign seed 173617: a basket's unwind the venue refused for its reduce-only
    flag kept the flag and was sent again under the kill's flatten, which stood back for it
    (orders working cover the position) each time it went first: the position was still
    held when the stream ended.  Under a kill the flatten alone closes it (it drops a
    refused flag); the unwind stands back, said once."""
    _setup(monkeypatch, refuse=0, cls=FlagRefused)
    FlagRefused.refuse_all = False
    run = tmp_path / "run"
    FlagRefused.script = [*_bars(1, 5, 100.0), _kill(run), *_bars(6, 30, 100.0)]
    runner(tmp_path, {"s": Scripted({2: _legs})}).run_sync()
    assert position(run, X) == venue_position(X) == 0, "the leg was left naked"
    sent = [(o.strategy, t) for o, t in ThinUnwinds.unwinds]
    # the unwinds at 1 s and 3 s (2 s later); none under the kill (the next was due at 7 s)
    assert [t for s, t in sent if s != "flatten"] == [1, 3], sent
    (said,) = q(run, "select reason from risk_events where action = 'unwind_skipped'")
    assert "left to the kill switch's flatten" in said["reason"]


def test_an_unwind_left_to_the_flatten_goes_when_the_kill_is_lifted(tmp_path,
                                                                     monkeypatch) -> None:
    """The flatten refused (503s) until a person lifts the kill: the unwind it stood back
    for is owed and goes again (this venue refuses it every time, so it ends given up and
    said, as outside a kill)."""
    _setup(monkeypatch, refuse=0, cls=FlagRefused)
    FlagRefused.refuse_all = True
    run = tmp_path / "run"
    FlagRefused.script = [*_bars(1, 5, 100.0), _kill(run), *_bars(6, 12, 100.0),
                          lambda: cli_("resume", "--run-dir", str(run)),
                          *_bars(13, 80, 100.0)]
    runner(tmp_path, {"s": Scripted({2: _legs})}).run_sync()
    unwinds = [t for o, t in ThinUnwinds.unwinds if o.strategy != "flatten"]
    assert unwinds[:2] == [1, 3] and not [t for t in unwinds if 5 < t <= 12], unwinds
    assert len(unwinds) == UNWIND_TRIES and unwinds[2] > 12, unwinds
    assert q(run, "select 1 from risk_events where action = 'unwind_abandoned'")
