"""A red team of the live order path (scenarios against the real ``Runner`` and a scripted
venue, ``order_path_kit``); each failed before its fix:

* the kill switch's flatten sold beside a resting plain take-profit whose halt cancel had
  failed: both traded and the account went short (exits were sized against reduce-only
  working orders only; now every working order on the reducing side counts, and an exit
  waits for the cancels in flight on its side);
* a print or candle a venue sends again (older than what the loop has seen) marked the
  position: equity fell to the old price and the drawdown kill switch flattened a sound
  position (the market state keeps an instrument's newest bar and print; only they mark);
* a fill id reported again with another quantity was dropped without a word (now a
  ``fill_conflict`` risk event; the first stays booked);
* a cancel whose answer was lost (the venue cancelled, said nothing, and later answered
  "unknown order") kept the order working for ever: a phantom that blocked the flatten's
  room, even after a restart (now the venue's open orders are read after three failed
  cancels, and at a start for every working order they do not list; one not there is
  CANCELLED with a ``not_at_venue`` risk event);
* a start whose read of the venue's open orders failed never read them again: an order
  the ledger had ended stayed open at the venue and filled while HALTED (read again 2 s
  later until it works, with an ``open_orders_unread`` risk event);
* an executions stream that ended without an error was taken for "no stream": the run
  kept trading and never booked what followed (now it HALTs, as a failed stream does);
* a risk check whose ``on_equity`` watch raised ended the live run (now REDUCING with an
  ``error`` risk event, once per check);
* a basket whose second leg's send was lost before a restart was left with a naked leg:
  the unwind made at the start was vetoed (no market data yet) and never tried again,
  and with prices known its client order id was the resumed event's first, the filled
  leg's own, refused as a repeat (now ``<leg id>-unwind``, tried again on later events);
* a fill that came for a basket leg after the venue had said it was cancelled (its
  update and its trade raced), once the other leg was unwound, left that leg naked (a
  basket was evened out once; now net of the unwinds already asked for, again).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from order_path_kit import (
    RTVenue,
    S,
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

from argus_core.errors import ArgusError, OrderUnknown, VenueError
from argus_core.interfaces import RiskCheck
from argus_core.ledger import Ledger
from argus_core.models import (
    CancelIntent,
    OrderStatus,
    OrderUpdate,
    RiskDecision,
    TimeInForce,
    Trade,
)

# -- the kill switch beside a resting plain exit ------------------------------------------
failures: list[Exception] = []


class FlakyCancel(RTVenue):
    async def cancel(self, coid: str) -> None:
        if failures:
            raise failures.pop()
        await super().cancel(coid)


def _lowest_position(run: object) -> Decimal:
    pos = low = Decimal(0)
    for f in q(run, "select side, quantity from fills where instrument_id = ? order by rowid",  # type: ignore[arg-type]
               (X,)):
        pos += Decimal(f["quantity"]) * (1 if f["side"] == "buy" else -1)
        low = min(low, pos)
    return low


def test_the_flatten_never_sells_beside_a_resting_take_profit(tmp_path, monkeypatch) -> None:
    register(monkeypatch, FlakyCancel)
    failures[:] = [VenueError("503 Service Unavailable")]
    run = tmp_path / "run"
    plan = {1: lambda e, c: [buy(X, "2")],
            2: lambda e, c: [sell(X, "2", limit="105", tif=TimeInForce.GTC)]}
    FlakyCancel.script = [bar(X, 1), bar(X, 2), bar(X, 3),
                          lambda: cli_("kill", "--run-dir", str(run), "--flatten"),
                          bar(X, 4), "sleep 0.2", bar(X, 5),
                          "fill",  # the resting take-profit trades at the venue
                          bar(X, 6), bar(X, 7), "sleep 2.5", bar(X, 9), bar(X, 10)]
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    assert position(run) == venue_position(X) == 0
    assert _lowest_position(run) >= 0, "the kill switch took the account short"


# -- stale prints --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["trade", "bar"])
def test_a_print_sent_again_neither_marks_nor_trips_the_kill_switch(tmp_path, monkeypatch,
                                                                     kind: str) -> None:
    def tr(t: float, price: str) -> Trade:
        return Trade(X, int(t * S), Decimal(price), Decimal(1))

    register(monkeypatch)
    run = tmp_path / "run"
    old = tr(1.5, "60") if kind == "trade" else bar(X, 1, 60.0)
    now = (lambda t: tr(t, "100")) if kind == "trade" else (lambda t: bar(X, t, 100.0))
    RTVenue.script = [now(2), now(3), now(4), now(10), now(11), "sleep 0.1",
                      old,  # a print from 9 s ago, sent again after a reconnect
                      now(12), now(13), now(14)]
    r = runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "900", limit="100")]})},
               checks=["max_drawdown"],
               extra={"plugins": {"risk": {"max_drawdown_fraction": "0.2"}}})
    r.run_sync()
    assert r.trading_state.value == "active"
    equities = [Decimal(e["equity"]) for e in q(run, "select equity from equity")]
    assert min(equities, default=Decimal(100000)) > 90000
    assert r.market.bars.get(X, None) is None or r.market.bars[X].close == 100.0
    assert r.market.trades.get(X) is None or r.market.trades[X].price == 100


# -- a fill id reported again with other contents ------------------------------------------
def test_a_fill_id_reported_again_with_another_quantity_is_said(tmp_path, monkeypatch) -> None:
    register(monkeypatch)
    RTVenue.fill_at_once = False
    run = tmp_path / "run"

    def order() -> object:
        return RTVenue.submitted[0]

    RTVenue.script = [bar(X, 1), bar(X, 2),
                      lambda: RTVenue.inst.fill(order(), Decimal(1), fill_id="T1"),  # type: ignore[attr-defined]
                      bar(X, 3),
                      lambda: RTVenue.inst.fill(order(), Decimal(1), fill_id="T1"),  # type: ignore[attr-defined]
                      lambda: RTVenue.inst.fill(order(), Decimal(2), fill_id="T1"),  # type: ignore[attr-defined]
                      bar(X, 4),
                      lambda: RTVenue.inst.fill(order(), Decimal(2), fill_id="T1"),  # type: ignore[attr-defined]
                      bar(X, 5)]
    runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "3", tif=TimeInForce.GTC)]})}
           ).run_sync()
    assert position(run) == 1  # the first report stays booked
    (said,) = q(run, "select reason from risk_events where action = 'fill_conflict'")
    assert "T1" in said["reason"] and "buy 2 @" in said["reason"]  # once, not per repeat


# -- a cancel whose answer was lost ---------------------------------------------------------
lost: list[str] = []


class LostCancel(RTVenue):
    """Cancels the first time but loses the answer (no update either); later cancels of
    the gone order meet "unknown order"."""

    async def cancel(self, coid: str) -> None:
        held = [o for o in RTVenue.held if o.client_order_id == coid]
        if not held:
            raise VenueError("EOrder:Unknown order")
        RTVenue.held.remove(held[0])
        RTVenue.cancelled.append(coid)
        if not lost:
            lost.append(coid)
            raise TimeoutError("cancel: read timed out")


def test_a_cancel_whose_answer_was_lost_ends_the_order_in_the_ledger(tmp_path,
                                                                      monkeypatch) -> None:
    register(monkeypatch, LostCancel)
    lost.clear()
    RTVenue.fill_at_once = False
    run = tmp_path / "run"
    seen: dict[str, list[str]] = {}

    def look(e: object, c: object) -> list[object]:
        seen["orders"] = [k.order.client_order_id for k in c.orders]  # type: ignore[attr-defined]
        return []

    plan = {1: lambda e, c: [buy(X, "3", tif=TimeInForce.GTC)],
            3: lambda e, c: [CancelIntent("s", X)], 12: look}
    RTVenue.script = [bar(X, 1), bar(X, 2),
                      lambda: RTVenue.inst.fill(RTVenue.submitted[0], Decimal(1)),  # type: ignore[attr-defined]
                      bar(X, 3), "sleep 0.1", *[bar(X, t) for t in range(4, 14)]]
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    (row,) = q(run, "select status, filled_quantity from orders")
    assert (row["status"], Decimal(row["filled_quantity"])) == ("cancelled", 1)
    assert position(run) == venue_position(X) == 1
    assert q(run, "select 1 from risk_events where action = 'not_at_venue'")
    assert seen["orders"] == []  # the strategy is no longer told it works


@pytest.mark.parametrize("restart", [False, True])
def test_a_phantom_exit_no_longer_freezes_the_flatten(tmp_path, monkeypatch,
                                                      restart: bool) -> None:
    register(monkeypatch, LostCancel)
    lost.clear()
    run = tmp_path / "run"
    plan = {1: lambda e, c: [buy(X, "2")],
            2: lambda e, c: [sell(X, "2", limit="120", tif=TimeInForce.GTC,
                                  reduce_only=True)],
            4: lambda e, c: [CancelIntent("s", X)]}
    falling = [bar(X, t, 80.0) for t in range(6, 20)]
    if restart:
        RTVenue.script = [bar(X, 1), bar(X, 2), bar(X, 3), bar(X, 4), "sleep 0.1", bar(X, 5)]
        runner(tmp_path, {"s": Scripted(plan)}).run_sync()
        cli_("kill", "--run-dir", str(run), "--flatten")
        RTVenue.script = falling
    else:
        RTVenue.script = [bar(X, 1), bar(X, 2), bar(X, 3), bar(X, 4), "sleep 0.1", bar(X, 5),
                          lambda: cli_("kill", "--run-dir", str(run), "--flatten"), *falling]
    r = runner(tmp_path, {"s": Scripted(plan)})
    r.run_sync()
    assert r.trading_state.value == "halted"
    assert RTVenue.held == []
    assert position(run) == venue_position(X) == 0


# -- a start whose read of the open orders failed -------------------------------------------
open_fails: list[int] = []


class FlakyOpen(RTVenue):
    async def open_orders(self) -> list[object]:  # type: ignore[override]
        if open_fails:
            open_fails.pop()
            raise VenueError("502 Bad Gateway")
        return await super().open_orders()  # type: ignore[return-value]


def test_an_ended_order_open_at_the_venue_is_found_when_the_first_read_failed(
        tmp_path, monkeypatch) -> None:
    register(monkeypatch, FlakyOpen)
    run = tmp_path / "run"
    plan = {1: lambda e, c: [buy(X, "2", limit="90", tif=TimeInForce.GTC)]}
    FlakyOpen.script = [bar(X, 1), bar(X, 2)]
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    assert len(RTVenue.held) == 1
    with Ledger.in_dir(run) as ledger:
        ledger.conn.execute("update orders set status = 'cancelled'")  # ended in the ledger
    cli_("kill", "--run-dir", str(run))
    open_fails[:] = [1]
    FlakyOpen.script = [bar(X, 3), bar(X, 4), "sleep 0.3", bar(X, 5), "fill", bar(X, 6),
                        bar(X, 7)]
    r = runner(tmp_path, {"s": Scripted(plan)})
    r.run_sync()
    assert r.trading_state.value == "halted"
    assert venue_position(X) == 0  # cancelled before it could fill
    assert q(run, "select 1 from risk_events where action = 'open_orders_unread'")
    assert q(run, "select 1 from risk_events where action = 'open_after_end'")


# -- an executions stream that ends ---------------------------------------------------------
ended: list[int] = []


class EndingStream(RTVenue):
    async def executions(self):  # type: ignore[no-untyped-def]
        while True:
            item = await self.queue.get()
            if ended:
                return
            yield item


def test_an_executions_stream_that_ends_halts_the_run(tmp_path, monkeypatch) -> None:
    register(monkeypatch, EndingStream)
    ended.clear()
    run = tmp_path / "run"
    EndingStream.script = [bar(X, 1), "sleep 0.05", bar(X, 2), lambda: ended.append(1),
                           *[x for t in range(3, 10) for x in (bar(X, t), "sleep 0.05")]]
    r = runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "1")],
                                         5: lambda e, c: [buy(X, "1")],
                                         7: lambda e, c: [buy(X, "1")]})})
    with pytest.raises(ArgusError, match="executions stream ended"):
        r.run_sync()
    assert r.trading_state.value == "halted"
    assert len([o for o in RTVenue.submitted if o.side.value == "buy"]) <= 2
    (halt,) = q(run, "select reason from risk_events where check_name = 'fills_stream'")
    assert "ended" in halt["reason"]


# -- a risk check whose watch raises ---------------------------------------------------------
class BrokenWatch(RiskCheck):
    name = "broken"

    def check(self, intent, quantity, price, portfolio, ctx):  # type: ignore[no-untyped-def]
        return RiskDecision.allow(self.name)

    def on_equity(self, equity: Decimal, ctx: object) -> str | None:
        if equity != Decimal(100000):
            raise ZeroDivisionError("boom in on_equity")
        return None


def test_a_watch_that_raises_fails_safe_without_ending_the_run(tmp_path, monkeypatch) -> None:
    register(monkeypatch)
    run = tmp_path / "run"
    plan = {1: lambda e, c: [buy(X, "2")],
            4: lambda e, c: [sell(X, "2", limit="90", reduce_only=True)]}
    RTVenue.script = [bar(X, 1), bar(X, 2, 99.0), bar(X, 3, 98.0), bar(X, 4, 97.0),
                      bar(X, 5), bar(X, 6)]
    r = runner(tmp_path, {"s": Scripted(plan)})
    r.risk.checks.append(BrokenWatch())
    r.run_sync()
    assert r.trading_state.value == "reducing"
    assert position(run) == venue_position(X) == 0  # the exit still went out
    (said,) = q(run, "select reason from risk_events where action = 'error'")
    assert "broken" in said["reason"] and "ZeroDivisionError" in said["reason"]


# -- a basket's unwind after a restart -------------------------------------------------------
lose: list[int] = []


class LookupVenue(RTVenue):
    """Loses the send of a leg on Y (it never reaches the venue); ``lookup`` answers from
    what it received."""

    async def submit(self, order):  # type: ignore[no-untyped-def]
        if order.instrument_id == Y and lose:
            lose.pop()
            raise OrderUnknown("connection reset; cannot ask", [order.client_order_id])
        return await super().submit(order)

    async def lookup(self, order):  # type: ignore[no-untyped-def]
        seen = any(o.client_order_id == order.client_order_id for o in RTVenue.submitted)
        return OrderUpdate(order.client_order_id,
                           OrderStatus.OPEN if seen else OrderStatus.CANCELLED, 1,
                           reason="" if seen else "never received")


@pytest.mark.parametrize("prices_known", [False, True])
def test_a_basket_leg_lost_before_a_restart_is_evened_out(tmp_path, monkeypatch,
                                                          prices_known: bool) -> None:
    register(monkeypatch, LookupVenue)
    lose[:] = [1]
    run = tmp_path / "run"

    def legs(e: object, c: object) -> list[object]:
        return [buy(X, "1", basket_id="b1"), sell(Y, "1", basket_id="b1")]

    LookupVenue.script = [bar(Y, 1), bar(X, 1), bar(Y, 2), bar(X, 2), "sleep 0.1"]
    runner(tmp_path, {"s": Scripted({4: legs})}).run_sync()
    LookupVenue.script = [bar(X, 3), bar(Y, 3), bar(X, 4), bar(Y, 4), "sleep 0.1", bar(X, 5)]
    r = runner(tmp_path, {"s": Scripted({})})
    if prices_known:  # as a venue that sends a snapshot before reconciliation
        r.market.apply(bar(X, 2))
        r.market.apply(bar(Y, 2))
    r.run_sync()
    x, y = position(run, X), position(run, Y)
    assert (x, y) == (venue_position(X), venue_position(Y)) == (0, 0)
    unwinds = q(run, "select client_order_id from orders where reason = 'basket unwind'")
    assert [u["client_order_id"].endswith("-unwind") for u in unwinds] == [True]


class LateLegVenue(RTVenue):
    """Says a basket's leg on Y was cancelled (no liquidity), then trades it after all."""

    y_order: object = None

    async def submit(self, order):  # type: ignore[no-untyped-def]
        if order.instrument_id == Y and not order.reduce_only:
            RTVenue.submitted.append(order)
            self.queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED,
                                              1, "V-y", "IOC: no liquidity"))
            LateLegVenue.y_order = order
            return []
        return await super().submit(order)


def test_a_late_fill_on_a_cancelled_leg_is_unwound_too(tmp_path, monkeypatch) -> None:
    register(monkeypatch, LateLegVenue)
    run = tmp_path / "run"

    def legs(e: object, c: object) -> list[object]:
        return [buy(X, "1", basket_id="b1"), sell(Y, "1", basket_id="b1")]

    LateLegVenue.script = [bar(X, 1), bar(Y, 1), bar(X, 2), bar(Y, 2),
                           lambda: RTVenue.inst.fill(LateLegVenue.y_order),  # type: ignore[attr-defined]
                           bar(X, 3), bar(Y, 3), bar(X, 4), bar(Y, 4), bar(X, 5), bar(Y, 5)]
    runner(tmp_path, {"s": Scripted({2: legs})}).run_sync()
    x, y = position(run, X), position(run, Y)
    assert (x, y) == (venue_position(X), venue_position(Y)) == (0, 0)
    unwinds = q(run, "select client_order_id, instrument_id from orders"
                     " where reason = 'basket unwind' order by ts_ns, client_order_id")
    assert [(u["client_order_id"].rsplit("-", 1)[-1], u["instrument_id"]) for u in unwinds] \
        == [("unwind", X), ("unwind", Y)]
