"""Third held-out audit of the run's guarantees: the kill switch, settlements, the one
order path's risk pass, marks, and restarts (live and paper runs on the scripted venue of
``test_heldout_run_kill``).

Found and fixed (each test failed before its fix):

* a fill reported after its instrument settled was booked on top of the settlement: a
  position on a market that trades no more, held for ever (every exit vetoed as settled);
* a paper order resting on a market that settled filled on a later book (a settlement
  now cancels the working orders of its instrument);
* a venue refusing the flatten's reduce-only orders got one refused order per market
  event and the position was never closed (now: 2 s later, without the venue's flag);
* a risk check returning None took the run down at the first order, the flatten
  included (now a broken check: entries vetoed, exits pass); a broken check's veto was
  written twice;
* a bar far from a live book (a bad print) marked a held position and tripped the
  drawdown kill switch (a live book's mid marks; a bar only without one).

Held: a bust of the flatten's fill while HALTED is flattened again; ``argus kill
--flatten`` twice while the first flatten works sends one flatten (probed, not pinned);
orders left pending are looked up, never re-sent, over two quick restarts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
from test_heldout_run_kill import (  # the scripted venue and its helpers
    BuyFirst,
    S,
    ScriptVenue,
    X,
    Y,
    _bar,
    _book,
    _cli,
    _position,
    _runner,
    venue,
)

from argus_core.errors import VenueError
from argus_core.hookspecs import hookimpl
from argus_core.interfaces import RiskCheck, RiskContext, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import (
    Fill,
    FillCorrection,
    Intent,
    MarketEvent,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Portfolio,
    RiskDecision,
    Settlement,
    Side,
    TimeInForce,
)

__all__ = ["venue"]  # the fixture, imported for pytest


class BustVenue(ScriptVenue):
    """The scripted venue whose last instance a script step can reach (to send a bust)."""

    last: ClassVar[BustVenue | None] = None

    def __init__(self, settings: object) -> None:
        super().__init__(settings)
        BustVenue.last = self


def _bust_flatten_fill(ts: int) -> None:
    """The venue says the flatten's fill did not happen (the trade failed)."""
    (sell,) = [o for o in ScriptVenue.submitted if o.strategy == "flatten"]
    assert BustVenue.last is not None
    BustVenue.last._queue.put_nowait(FillCorrection(
        f"F2-{sell.client_order_id}", ts * S, "trade FAILED", bust=True))


def test_a_bust_of_the_flattens_fill_while_halted_is_flattened_again(
        tmp_path: Path, venue: type[ScriptVenue], monkeypatch: pytest.MonkeyPatch) -> None:
    """Held: the flatten's sell filled (flat, the flatten done), then the venue busted
    that fill: the position re-opened while HALTED is flattened again."""
    monkeypatch.setattr(sys.modules["argus_test_h7_venue"], "register_venues",
                        hookimpl(lambda register: register("h7", BustVenue)))
    run_dir = tmp_path / "run"
    venue.script = [_bar(X, 1), _bar(X, 2),
                    lambda: _cli("kill", "--run-dir", str(run_dir), "--flatten"),
                    _bar(X, 3), _bar(X, 4),  # the flatten's sell fills: flat
                    lambda: _bust_flatten_fill(5),
                    *[_bar(X, t) for t in range(6, 10)]]
    runner = _runner(tmp_path, "live", BuyFirst())
    runner.run_sync()
    assert runner.trading_state.value == "halted"
    with Ledger.in_dir(run_dir) as ledger:
        busts = ledger.query("select * from fill_corrections")
    assert len(busts) == 1  # the bust was booked
    flattens = [o for o in venue.submitted if o.strategy == "flatten"]
    assert [(o.side, o.quantity) for o in flattens] == [(Side.SELL, Decimal(2))] * 2
    assert _position(run_dir) == 0


class TooLate(ScriptVenue):
    """Its cancels come too late: the order traded already (its fill not yet reported)."""

    async def cancel(self, client_order_id: str) -> None:
        ScriptVenue.cancelled.append(client_order_id)
        raise VenueError("order already filled")


def test_a_fill_reported_after_its_instrument_settled_leaves_no_position(
        tmp_path: Path, venue: type[ScriptVenue], monkeypatch: pytest.MonkeyPatch) -> None:
    """The flatten's sell traded just before the market resolved; its fill was reported
    after the settlement had closed the position (at 1): the sell was booked on top, a
    short of 2 on a market that trades no more, held for ever while HALTED (every flatten
    attempt vetoed: "has settled").  What the late fill leaves settles too."""
    monkeypatch.setattr(sys.modules["argus_test_h7_venue"], "register_venues",
                        hookimpl(lambda register: register("h7", TooLate)))
    run_dir = tmp_path / "run"
    venue.fill_at_once = False  # the venue works orders a while before they fill
    venue.script = [_bar(X, 1), "fill", _bar(X, 2),
                    lambda: _cli("kill", "--run-dir", str(run_dir), "--flatten"),
                    _bar(Y, 3),  # the flatten's sell goes out and works
                    Settlement(X, 4 * S, Decimal(1), "resolved"),
                    "fill",      # the sell's fill, reported late
                    *[_bar(Y, t) for t in range(5, 9)]]
    runner = _runner(tmp_path, "live", BuyFirst())
    runner.run_sync()
    assert runner.trading_state.value == "halted"
    assert _position(run_dir) == 0
    with Ledger.in_dir(run_dir) as ledger:
        fills = ledger.query("select side, price, quantity from fills order by rowid")
        cash = Decimal(ledger.query("select cash from equity order by ts_ns desc")[0]["cash"])
    assert [(f["side"], Decimal(f["quantity"])) for f in fills] == [
        ("buy", 2), ("sell", 2), ("sell", 2), ("buy", 2)]  # bought, settled, sold, settled
    bought, sold = (Decimal(fills[k]["price"]) * 2 for k in (0, 2))
    assert cash == Decimal(10000) - bought + sold  # what truly happened: bought, then sold


class RefusesReduceOnly(ScriptVenue):
    """A venue that refuses reduce-only orders with ``why``: at once (``submit`` raises)
    or, with ``later``, through its executions stream (acknowledged, then REJECTED)."""

    later: ClassVar[bool] = False
    why: ClassVar[str] = "400 reduce-only is not supported for this market"

    async def submit(self, order: Order) -> list[Fill]:
        if not order.reduce_only:
            return await super().submit(order)
        ScriptVenue.submitted.append(order)
        if not self.later:
            raise VenueError(self.why)
        self._queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.REJECTED, 1,
                                           reason=self.why))
        return []


def kill_against_refusals(tmp_path: Path, venue: type[ScriptVenue],
                          monkeypatch: pytest.MonkeyPatch, later: bool,
                          why: str | None = None) -> Path:
    """A live run on :class:`RefusesReduceOnly` (refusing with ``why`` when given) that
    buys, is killed with ``--flatten`` and goes on for 27 book events; its run dir."""
    monkeypatch.setattr(RefusesReduceOnly, "later", later)
    if why is not None:
        monkeypatch.setattr(RefusesReduceOnly, "why", why)
    monkeypatch.setattr(sys.modules["argus_test_h7_venue"], "register_venues",
                        hookimpl(lambda register: register("h7", RefusesReduceOnly)))
    run_dir = tmp_path / "run"
    book = ([(99.0, 10.0)], [(101.0, 10.0)])
    venue.script = [_book(X, 1, *book), _book(X, 2, *book),
                    lambda: _cli("kill", "--run-dir", str(run_dir), "--flatten"),
                    *[_book(X if t % 2 else Y, t, *book) for t in range(3, 30)]]
    runner = _runner(tmp_path, "live", BuyFirst())
    runner.run_sync()
    assert runner.trading_state.value == "halted"
    return run_dir


@pytest.mark.parametrize("later", [False, True], ids=["raised", "rejected-later"])
def test_a_flatten_the_venue_refuses_as_reduce_only_is_sent_plain_not_every_event(
        tmp_path: Path, venue: type[ScriptVenue], monkeypatch: pytest.MonkeyPatch,
        later: bool) -> None:
    """The venue refuses reduce-only: the flatten sent one refused order per market
    event (27 in 27 events; hundreds a second on a live feed, a venue's rate limit) and
    the position was never closed.  Now a refused flatten waits 2 s and goes without the
    venue's flag (the engine sizes it to the position, less exits working)."""
    run_dir = kill_against_refusals(tmp_path, venue, monkeypatch, later)
    assert _position(run_dir) == 0
    flattens = [o for o in venue.submitted if o.strategy == "flatten"]
    assert [o.reduce_only for o in flattens] == [True, False]
    with Ledger.in_dir(run_dir) as ledger:
        (refused,) = ledger.query("select reason from risk_events where action = 'refused'")
        rows = ledger.query("select reduce_only from orders where strategy = 'flatten'")
    assert "reduce-only" in refused["reason"]
    assert [r["reduce_only"] for r in rows] == [1, 1]  # still exits, for the HALTED gate


class ReturnsNothing(RiskCheck):
    """A check with a bug: it forgets to return its decision (guards exits too)."""

    name = "returns_nothing"
    checks_exits = True

    def check(self, intent: Intent, quantity: Decimal, price: Decimal, portfolio: Portfolio,
              ctx: RiskContext) -> RiskDecision:
        return None  # type: ignore[return-value]  # the bug under test


def test_a_check_that_returns_no_decision_vetoes_entries_and_never_holds_the_flatten(
        tmp_path: Path, venue: type[ScriptVenue]) -> None:
    """A check returning None (not raising) took the run down with an AttributeError at
    the first order, the kill switch's flatten included: the position stayed open.  It
    is a broken check like one that raises: entries vetoed, exits pass, the run goes on.
    (A broken check's veto was also written to risk_events twice.)"""
    run_dir = tmp_path / "run"
    book = ([(99.0, 10.0)], [(101.0, 10.0)])
    venue.script = [_book(X, 1, *book), _book(X, 2, *book),
                    lambda: runner.risk.checks.append(ReturnsNothing()),
                    _book(X, 3, *book),
                    lambda: _cli("kill", "--run-dir", str(run_dir), "--flatten"),
                    _book(X, 4, *book), _book(X, 5, *book)]

    class BuyEvery(BuyFirst):
        def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
            if ctx.trading_state == "active" and event.ts_ns == 3 * S:  # type: ignore[attr-defined]
                self.bought = False  # a second entry, after the check was added
            return super().on_event(event, ctx)

    runner = _runner(tmp_path, "live", BuyEvery())
    runner.run_sync()
    assert _position(run_dir) == 0
    assert [(o.strategy, o.side) for o in venue.submitted] == [
        ("buyer", Side.BUY), ("flatten", Side.SELL)]
    with Ledger.in_dir(run_dir) as ledger:
        events = ledger.query("select action, reason from risk_events "
                              "where check_name = 'returns_nothing'")
    assert [e["action"] for e in events] == ["veto", "allow"]  # the entry; the flatten
    assert "returned None, not a RiskDecision" in events[0]["reason"]


class RestLow(BuyFirst):
    """A GTC buy of 1 at 50, far below the market, on the first X event: it rests."""

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if getattr(event, "instrument_id", None) != X or self.bought:
            return ()
        self.bought = True
        return (Intent(self.name, X, Side.BUY, quantity=Decimal(1), order_type=OrderType.LIMIT,
                       limit_price=Decimal(50), time_in_force=TimeInForce.GTC),)


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_an_order_resting_on_a_market_that_settles_is_cancelled_not_filled_later(
        tmp_path: Path, venue: type[ScriptVenue], mode: str) -> None:
    """Paper: a GTC buy at 50 rested when its market resolved (at 0); a later book at 40
    filled it: a position bought on a market that no longer trades (held for ever, every
    exit vetoed as settled), its fill dated after the settlement.  A settlement cancels
    the working orders of its instrument (a venue does the same)."""
    run_dir = tmp_path / "run"
    venue.fill_at_once = False
    book, low = ([(99.0, 10.0)], [(101.0, 10.0)]), ([(39.0, 10.0)], [(40.0, 10.0)])
    venue.script = [_book(X, 1, *book), _book(X, 2, *book),
                    Settlement(X, 3 * S, Decimal(0), "resolved NO"),
                    _book(X, 4, *low), _bar(X, 5, 40.0), _book(Y, 6, *book)]
    _runner(tmp_path, mode, RestLow()).run_sync()
    with Ledger.in_dir(run_dir) as ledger:
        (order,) = ledger.query("select status, status_reason from orders")
        fills = ledger.query("select * from fills")
    assert fills == [] and _position(run_dir) == 0
    assert (order["status"], order["status_reason"]) == ("cancelled", f"market settled: {X}")
    if mode == "live":
        assert len(venue.cancelled) == 1 and venue.held == []


def test_a_bar_far_from_a_live_book_does_not_mark_a_held_position(
        tmp_path: Path, venue: type[ScriptVenue]) -> None:
    """A feed that streams bars beside the book (Kraken's OHLC channel): a bar whose close
    was a bad print (10 against a live 99/101 book) marked the held position at 10, the
    equity curve dropped 45% for one row and the drawdown kill switch flattened a sound
    position.  As for prints: a live two-sided book marks at its mid, a bar only without
    one."""
    run_dir = tmp_path / "run"
    book = ([(99.0, 100.0)], [(101.0, 100.0)])
    venue.script = [_book(X, 1, *book), _book(X, 2, *book), _bar(X, 3, 10.0),
                    _book(X, 4, *book), _bar(X, 5, 100.5), _book(X, 6, *book)]
    runner = _runner(tmp_path, "live", BuyFirst("50"), checks=["max_drawdown"],
                     extra={"plugins": {"risk": {"max_drawdown_fraction": "0.05"}}})
    runner.run_sync()
    assert runner.trading_state.value == "active"
    assert _position(run_dir) == 50
    with Ledger.in_dir(run_dir) as ledger:
        equity = [Decimal(r["equity"]) for r in ledger.query("select equity from equity")]
    assert min(equity) > Decimal(9900), equity  # bought 50 at 101, marked at the mid 100


def test_orders_left_pending_are_looked_up_never_resent_over_two_quick_restarts(
        tmp_path: Path, venue: type[ScriptVenue]) -> None:
    """Held: a run died with two orders pending (one the venue holds open, one it cannot
    tell about); two restarts in a row each ask, none sends either again."""
    run_dir = tmp_path / "run"
    venue.fill_at_once = False
    venue.script = [_bar(X, 1), _bar(X, 2)]
    _runner(tmp_path, "live", RestLow()).run_sync()
    (held,) = venue.submitted
    with Ledger.in_dir(run_dir) as ledger:  # as if SIGKILLed before the acknowledgements
        ledger.conn.execute("update orders set status = 'pending', venue_order_id = null")
        ledger.conn.execute(
            "insert into orders select replace(client_order_id, '-1-', '-2-'), run_id, "
            "venue, instrument_id, side, quantity, limit_price, order_type, time_in_force, "
            "strategy, ts_ns + 1, status, basket_id, reduce_only, filled_quantity, "
            "venue_order_id, status_reason, reason, decision_price, arrival_price, "
            "arrival_spread from orders")  # a second order, which the venue never saw
    for t in (3, 5):
        venue.script = [_bar(X, t), _bar(X, t + 1)]
        _runner(tmp_path, "live", RestLow()).run_sync()
    assert venue.submitted == [held]  # nothing re-sent
    with Ledger.in_dir(run_dir) as ledger:
        rows = {r["client_order_id"]: r["status"] for r in
                ledger.query("select client_order_id, status from orders")}
        waiting = ledger.query("select count(*) as n from risk_events "
                               "where action = 'awaiting_venue'")[0]["n"]
    assert rows[held.client_order_id] == "open"
    assert sorted(rows.values()) == ["open", "pending"] and waiting == 2  # asked each time
