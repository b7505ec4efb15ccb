"""The ExecutionEngine and what guards it: ids per slot, duplicates, the kill switch that
flattens, HALTED exits, untradeable books, one writer per run directory, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml
from click.testing import CliRunner

from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.cli import cli
from argus_core.config import Config, load_config
from argus_core.errors import LedgerError
from argus_core.interfaces import RiskContext, Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    BookStatus,
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Portfolio,
    Position,
    Side,
)
from argus_core.risk import RiskEngine, TradingState
from argus_core.runlock import RunDirLock
from argus_core.runner import Runner

IID = "kraken:XBT/USD"


def _config(tmp_path: Path, *, own_strategies: bool = False, **kw: str) -> Path:
    """The demo-like config; ``own_strategies``: only the strategies a test hands in."""
    text = demo_toml(BUNDLED_BARS, **kw)
    if own_strategies:
        text = text.replace('strategies = ["ma_cross"]', "strategies = []")
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    return cfg


class BuyOnceAndHold(Strategy):
    """Buys ``quantity`` on the first bar, then never proposes another order."""

    name = "hold"

    def __init__(self, quantity: str = "1.5") -> None:
        self.quantity = Decimal(quantity)
        self.bought = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar or self.bought:
            return ()
        self.bought = True
        return (Intent(self.name, event.instrument_id, Side.BUY, quantity=self.quantity,
                       order_type=OrderType.MARKET),)

    def get_state(self) -> dict[str, object]:
        return {"bought": self.bought}

    def set_state(self, state: dict[str, object]) -> None:
        self.bought = bool(state.get("bought"))


class TwoAtOnce(Strategy):
    """Two independent single orders in one event (no basket)."""

    name = "two"

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar or event.ts_ns % 7 != 0:
            return ()
        return (Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal("0.001")),
                Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal("0.002")))


# -- client order ids ----------------------------------------------------------------------
def test_two_slots_of_one_strategy_each_get_every_order(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, end="2022-06-01"))
    single = Runner(cfg, tmp_path / "one").run_sync()
    settings = ExampleSettings(fast=5, slow=20)
    cfg = load_config(_config(tmp_path, own_strategies=True, end="2022-06-01"))
    both = Runner(cfg, tmp_path / "two", strategies={
        "ma_cross": MovingAverageCross(settings),
        "ma_cross_b": MovingAverageCross(settings)}).run_sync()
    assert single.orders > 10 and both.orders > single.orders

    def buys(run: str) -> dict[str, int]:
        with Ledger.in_dir(tmp_path / run) as ledger:
            assert not ledger.query("select * from risk_events where check_name = 'order_id'")
            return {r["strategy"]: r["n"] for r in ledger.query(
                "select strategy, count(*) as n from orders where side = 'buy' "
                "group by strategy")}

    # Every entry of both slots is an order of its own (the slots share one account, so
    # one slot's exit may leave the other nothing to sell: compare the entries).
    n = buys("one")["ma_cross"]
    assert buys("two") == {"ma_cross": n, "ma_cross_b": n}


def test_two_orders_of_one_slot_in_one_event_both_go_out(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, own_strategies=True, end="2022-01-10"))
    summary = Runner(cfg, tmp_path / "run", strategies={"two": TwoAtOnce()}).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        quantities = sorted({r["quantity"] for r in ledger.query("select quantity from orders")})
        assert quantities == ["0.001", "0.002"]
        assert summary.orders % 2 == 0 and summary.orders > 0


def test_a_client_order_id_that_exists_is_a_risk_event_never_a_silent_ignore(
        tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, own_strategies=True, end="2022-01-10"))
    runner = Runner(cfg, tmp_path / "run", strategies={"hold": BuyOnceAndHold("0.1")})
    # The first bar's order id, taken by a row nothing in this run wrote.
    taken = f"{runner.ctx.run_id}-1-hold-0"
    runner.ledger.conn.execute(
        "insert into orders (client_order_id, run_id, venue, instrument_id, side, quantity, "
        "order_type, time_in_force, strategy, ts_ns, status) values "
        "(?, 'other', 'replay', ?, 'sell', '9', 'market', 'ioc', 'x', 0, 'filled')",
        (taken, IID))
    runner.run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        events = ledger.query("select * from risk_events where check_name = 'order_id'")
        assert len(events) == 1 and taken in events[0]["reason"]
        assert events[0]["action"] == "veto"
        assert ledger.query("select quantity from orders where client_order_id = ?",
                            (taken,))[0]["quantity"] == "9"  # the existing row is untouched
        assert not ledger.query("select * from fills")


# -- the kill switch -----------------------------------------------------------------------
def _hold_config(tmp_path: Path, drawdown: str) -> Path:
    cfg = _config(tmp_path, own_strategies=True, start="2022-01-01", end="2022-03-01")
    cfg.write_text(cfg.read_text().replace(
        'max_drawdown_fraction = "0.9"', f'max_drawdown_fraction = "{drawdown}"\n'
        'per_play_fraction = "1"'))
    return cfg


def test_the_drawdown_switch_trips_on_marks_and_flattens_before_it_latches(
        tmp_path: Path) -> None:
    # Bought once (1.5 BTC at ~47k: 70% of equity), never another order proposed: the
    # switch must see the marks, not wait for an order that never comes.
    cfg = load_config(_hold_config(tmp_path, "0.05"))
    summary = Runner(cfg, tmp_path / "run", strategies={"hold": BuyOnceAndHold()}).run_sync()
    assert summary.trading_state == "halted"
    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = ledger.query("select * from orders order by ts_ns, client_order_id")
        assert [o["strategy"] for o in orders][:1] == ["hold"]
        flatten = [o for o in orders if o["strategy"] == "flatten"]
        assert flatten and all(o["reduce_only"] == 1 and o["side"] == "sell" for o in flatten)
        position = ledger.query("select quantity from positions")[0]["quantity"]
        assert Decimal(position) == 0  # flat: the halt did not freeze the position
        tripped = ledger.query("select * from risk_events where check_name = 'max_drawdown'")
        assert tripped and "flattening" in tripped[0]["reason"]
        # Flattened soon after the limit: the loss is bounded near 5%, not the whole slide.
        equity = [Decimal(r["equity"]) for r in ledger.query(
            "select equity from equity order by ts_ns")]
        assert min(equity) > Decimal("100000") * Decimal("0.93")
        assert equity[-1] == equity[-2]  # nothing held after the flatten
        state = json.loads(ledger.get_control("trading_state") or "{}")
        assert state["state"] == "halted"


def test_a_halted_run_exits_6_after_its_summary(tmp_path: Path) -> None:
    cfg = _config(tmp_path, start="2022-01-01", end="2022-03-01")
    cfg.write_text(cfg.read_text().replace('max_drawdown_fraction = "0.9"',
                                           'max_drawdown_fraction = "0.01"'))
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                      str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 6, result.output
    assert "halted" in result.output.lower()


def test_argus_kill_flatten_closes_positions_through_the_engine(tmp_path: Path) -> None:
    cfg = load_config(_hold_config(tmp_path, "0.9"))
    run_dir = tmp_path / "run"
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=50).run_sync()
    with Ledger.in_dir(run_dir) as ledger:
        assert Decimal(ledger.query("select quantity from positions")[0]["quantity"]) == \
            Decimal("1.5")
    result = CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir), "--flatten"])
    assert result.exit_code == 0, result.output
    summary = Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}).run_sync()
    assert summary.trading_state == "halted"
    with Ledger.in_dir(run_dir) as ledger:
        assert Decimal(ledger.query("select quantity from positions")[0]["quantity"]) == 0
        flatten = ledger.query("select * from orders where strategy = 'flatten'")
        assert flatten and flatten[0]["reduce_only"] == 1 and flatten[0]["status"] == "filled"


def _flatten_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, events: int
                     ) -> tuple[Config, Path]:
    """A held position, `argus kill --flatten`, then ``events`` more events while its
    market takes no orders (the flatten waits): ``(config, run dir)``."""
    from argus_core.models import Instrument

    cfg = load_config(_hold_config(tmp_path, "0.9"))
    run_dir = tmp_path / "run"
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=50).run_sync()
    assert CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir), "--flatten"]
                              ).exit_code == 0
    monkeypatch.setattr(Instrument, "takes_orders", property(lambda self: False))
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=events).run_sync()
    return cfg, run_dir


def test_a_flatten_waits_on_a_market_that_takes_no_orders_without_a_veto_per_event(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The venue lists the held market as closed (``takes_orders`` False) when a kill
    asks for a flatten.  Before: the flatten routed an order on every event and the risk
    gate vetoed each one (a ``market_state`` row per event for as long as the market
    stayed closed).  Now the position waits, said once; once the market takes orders
    again the flatten goes out."""
    cfg, run_dir = _flatten_waiting(tmp_path, monkeypatch, events=200)
    with Ledger.in_dir(run_dir) as ledger:
        assert Decimal(ledger.query("select quantity from positions")[0]["quantity"]) == \
            Decimal("1.5")
        assert not ledger.query("select * from orders where strategy = 'flatten'")
        assert not ledger.query("select * from risk_events where action = 'veto'")
        waiting = ledger.query("select reason from risk_events where action = 'waiting'")
        assert len(waiting) == 1 and "takes no orders" in waiting[0]["reason"]
    monkeypatch.undo()  # the market takes orders again: the flatten closes the position
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}).run_sync()
    with Ledger.in_dir(run_dir) as ledger:
        assert Decimal(ledger.query("select quantity from positions")[0]["quantity"]) == 0


def test_a_plain_kill_does_not_flatten(tmp_path: Path) -> None:
    cfg = load_config(_hold_config(tmp_path, "0.9"))
    run_dir = tmp_path / "run"
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=50).run_sync()
    assert CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir)]).exit_code == 0
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}).run_sync()
    with Ledger.in_dir(run_dir) as ledger:
        assert Decimal(ledger.query("select quantity from positions")[0]["quantity"]) == \
            Decimal("1.5")
        assert not ledger.query("select * from orders where strategy = 'flatten'")


# -- the risk engine's gates ---------------------------------------------------------------
def _market_with_bar() -> MarketState:
    market = MarketState()
    market.apply(Bar(IID, 10**9, 100.0, 100.0, 100.0, 100.0, 1.0))
    return market


def test_halted_passes_reduce_only_exits_and_nothing_else() -> None:
    engine = RiskEngine([], RiskContext(market=_market_with_bar(), trading_state="halted",
                                        state_reason="test"))
    held = Portfolio(Decimal(0), {IID: Position(IID, Decimal(2), Decimal(100))})
    exit_ = Intent("s", IID, Side.SELL, reduce_only=True)
    assert engine.evaluate(exit_, Decimal(2), Decimal(100), held).allowed
    # The input that should get past it: a "reduce-only" order larger than the position
    # (it would open a short), a sell not marked reduce-only, and a buy.
    assert not engine.evaluate(exit_, Decimal(3), Decimal(100), held).allowed
    assert not engine.evaluate(Intent("s", IID, Side.SELL), Decimal(1), Decimal(100),
                               held).allowed
    assert not engine.evaluate(Intent("s", IID, Side.BUY, reduce_only=True), Decimal(1),
                               Decimal(100), held).allowed
    assert engine.state is TradingState.HALTED


def test_an_untradeable_book_vetoes_every_order() -> None:
    market = MarketState(stale_after_ns=5 * 10**9)
    market.apply(OrderBook(IID, 10**9, bids=((99.0, 1.0),), asks=((101.0, 1.0),)))
    engine = RiskEngine([], RiskContext(market=market))
    buy = Intent("s", IID, Side.BUY, quantity=Decimal(1))
    flat = Portfolio(Decimal(1000))
    assert engine.evaluate(buy, Decimal(1), Decimal(101), flat).allowed
    market.now_ns = 7 * 10**9  # 6 s without an update
    verdict = engine.evaluate(buy, Decimal(1), Decimal(101), flat)
    assert not verdict.allowed and "stale" in verdict.decisions[0].reason
    market.apply(OrderBook(IID, 8 * 10**9, bids=((99.0, 1.0),), asks=((101.0, 1.0),)))
    assert engine.evaluate(buy, Decimal(1), Decimal(101), flat).allowed
    market.apply(BookStatus(IID, 9 * 10**9, live=False, reason="checksum mismatch"))
    verdict = engine.evaluate(buy, Decimal(1), Decimal(101), flat)
    assert not verdict.allowed and "checksum" in verdict.decisions[0].reason
    # No book and no bar: nothing to trade against.
    other = Intent("s", "kraken:ETH/USD", Side.BUY, quantity=Decimal(1), limit_price=Decimal(1))
    assert not engine.evaluate(other, Decimal(1), Decimal(1), flat).allowed


def test_the_books_staleness_defaults_to_the_venues_not_to_never(tmp_path: Path) -> None:
    runner = Runner(load_config(_config(tmp_path)), tmp_path / "run")
    try:
        assert runner.market.stale_after_ns > 0
        assert runner.market.stale_after_ns == int(
            runner.asm.venue.default_stale_after_s * 1e9) or \
            runner.config.run.stale_after_s is not None
    finally:
        runner.ledger.close()
        runner._lock.release()


# -- one writer per run directory ----------------------------------------------------------
def test_a_second_writer_is_refused_and_control_commands_still_work(tmp_path: Path) -> None:
    cfg = _config(tmp_path, end="2022-02-01")
    run_dir = tmp_path / "run"
    Runner(load_config(cfg), run_dir, max_events=10).run_sync()
    holder = RunDirLock.acquire(run_dir)  # as a running `argus run` holds it
    try:
        with pytest.raises(LedgerError, match="another process"):
            Runner(load_config(cfg), run_dir)
        result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                          str(run_dir), "--no-progress"])
        assert result.exit_code == 7 and "another process" in result.output
        for args in (["kill", "--run-dir", str(run_dir)], ["resume", "--run-dir", str(run_dir)],
                     ["report", str(run_dir)]):
            assert CliRunner().invoke(cli, args).exit_code == 0, args
    finally:
        holder.release()
    with Ledger.in_dir(run_dir) as ledger:  # the refused writer wrote nothing
        assert ledger.query("select count(*) as n from checkpoints")[0]["n"] == 1


def test_the_lock_dies_with_its_process_even_on_sigkill(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code = ("import sys, time; from pathlib import Path; "
            "from argus_core.runlock import RunDirLock; "
            "RunDirLock.acquire(Path(sys.argv[1])); print('locked', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LedgerError, match=f"pid {proc.pid}"):
            RunDirLock.acquire(run_dir)
    finally:
        proc.kill()
        proc.wait()
    RunDirLock.acquire(run_dir).release()  # free again: the kernel dropped it


def test_two_argus_runs_on_one_directory_one_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path, start="2016-01-01")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-c", "from argus_core.cli import main; main()", "run",
           "--config", str(cfg), "--run-dir", str(run_dir), "--no-progress"]
    env = {**os.environ, "ARGUS_BLOCK_PLUGINS": ""}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (run_dir / "argus.lock").exists() or not _locked(run_dir):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 7, second.stderr
        assert "another process" in second.stderr
    finally:
        first.kill()
        first.wait()


def _locked(run_dir: Path) -> bool:
    try:
        RunDirLock.acquire(run_dir).release()
    except LedgerError:
        return True
    return False


class PersonActsMidRun(Strategy):
    """Trades every bar; the loop is REDUCING from bar 3 (a check's escalation); at bar 6
    a person's ``argus kill`` (or ``resume``) lands in the ledger, not yet read by the
    loop (between its reads, as from another process); with ``escalate_to`` the loop
    escalates again at bar 8."""

    name = "probe"

    def __init__(self, written: str, escalate_to: TradingState | None = None) -> None:
        self.runner: Runner | None = None
        self.written, self.escalate_to, self.bars = written, escalate_to, 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if not isinstance(event, Bar) or self.runner is None:
            return ()
        self.bars += 1
        if self.bars == 3:
            self.runner.set_trading_state(TradingState.REDUCING, "a check escalated")
        if self.bars == 6:
            self.runner.ledger.put_control("trading_state", json.dumps(
                {"state": self.written, "reason": "a person", "flatten": False}), 1)
        if self.bars == 8 and self.escalate_to is not None:
            self.runner.set_trading_state(self.escalate_to, "a later escalation")
        side = Side.BUY if self.bars % 2 else Side.SELL
        return [Intent(self.name, event.instrument_id, side, Decimal("0.01"))]


@pytest.mark.parametrize(("written", "escalate_to", "final"), [
    ("halted", None, "halted"),        # the kill is never overwritten by the older REDUCING
    ("active", None, "active"),        # nor the person's resume
    ("active", TradingState.HALTED, "halted"),  # a fresh escalation after it still counts
    ("halted", TradingState.REDUCING, "halted"),  # a milder one does not undo the kill
])
def test_a_persons_kill_or_resume_is_never_overwritten_by_the_loops_older_state(
        tmp_path: Path, written: str, escalate_to: TradingState | None, final: str) -> None:
    cfg = load_config(_config(tmp_path, own_strategies=True, end="2022-01-03"))
    probe = PersonActsMidRun(written, escalate_to)
    runner = Runner(cfg, tmp_path / "run", strategies={"probe": probe})
    probe.runner = runner
    summary = runner.run_sync()
    assert summary.trading_state == final
    with Ledger.in_dir(tmp_path / "run") as ledger:
        assert json.loads(ledger.get_control("trading_state") or "{}")["state"] == final


def test_a_persons_kill_and_resume_are_audited_once_with_who_and_why(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, own_strategies=True))
    run_dir = tmp_path / "run"
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=50).run_sync()
    result = CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir), "--reason",
                                      "spreads blew out", "--flatten"])
    assert result.exit_code == 0, result.output
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=100).run_sync()
    # A second restart adopts the same kill again: still one audit row.
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=150).run_sync()
    assert CliRunner().invoke(cli, ["resume", "--run-dir", str(run_dir)]).exit_code == 0
    Runner(cfg, run_dir, strategies={"hold": BuyOnceAndHold()}, max_events=200).run_sync()
    with Ledger.in_dir(run_dir) as ledger:
        audit = ledger.query("select action, reason from risk_events "
                             "where check_name = 'control' order by id")
        latch = json.loads(ledger.get_control("trading_state") or "{}")
    assert [a["action"] for a in audit] == ["halted", "active"]
    assert audit[0]["reason"].startswith("cli") and "spreads blew out (and flatten)" in \
        audit[0]["reason"]
    assert latch["state"] == "active" and latch["by"].startswith("cli")


def test_a_settled_instrument_trades_no_more_even_while_its_book_looks_live() -> None:
    """A resolved market whose book is still quoted (a venue that keeps serving it) must
    not be bought again: its positions were closed at the settlement, a new one would
    never settle (found by the Polymarket suite example: 17 orders, -26 USD)."""
    from argus_core.models import Settlement

    market = MarketState(stale_after_ns=0)
    market.apply(OrderBook(IID, 10**9, bids=((0.98, 10.0),), asks=((0.99, 10.0),)))
    engine = RiskEngine([], RiskContext(market=market))
    buy = Intent("s", IID, Side.BUY, quantity=Decimal(1))
    flat = Portfolio(Decimal(1000))
    assert engine.evaluate(buy, Decimal(1), Decimal("0.99"), flat).allowed
    market.apply(Settlement(IID, 2 * 10**9, Decimal(1), "resolved YES"))
    market.apply(OrderBook(IID, 3 * 10**9, bids=((0.98, 10.0),), asks=((0.99, 10.0),)))
    verdict = engine.evaluate(buy, Decimal(1), Decimal("0.99"), flat)
    assert not verdict.allowed
    assert "has settled at 1 (resolved YES)" in verdict.decisions[0].reason


def test_an_instrument_whose_market_takes_no_orders_is_vetoed_once_the_venue_says_so(
        ) -> None:
    """A venue that lists a market as closed, or no longer accepting orders (at the start,
    or mid-run by an ``Instrument`` event: Polymarket's rediscovery), vetoes every order on
    it before it is sent; in a paper run its still-quoted book would otherwise fill it."""
    from argus_core.models import Instrument

    market = MarketState(stale_after_ns=0)
    market.apply(OrderBook("pm:1", 10**9, bids=((0.48, 10.0),), asks=((0.5, 10.0),)))
    open_, closed = ({"tradeable": True}, {"tradeable": False})
    market.apply(Instrument("pm", "1", "binary", "0.01", "1", meta=open_))
    engine = RiskEngine([], RiskContext(market=market))
    buy = Intent("s", "pm:1", Side.BUY, quantity=Decimal(1))
    sell = Intent("s", "pm:1", Side.SELL, quantity=Decimal(1), reduce_only=True)
    held = Portfolio(Decimal(1000), {"pm:1": Position("pm:1", Decimal(1), Decimal("0.5"))})
    assert engine.evaluate(buy, Decimal(1), Decimal("0.5"), held).allowed
    for meta in (closed, {"accepting_orders": False}, {"acceptingOrders": False},
                 {"closed": True}):
        market.apply(Instrument("pm", "1", "binary", "0.01", "1", meta=meta))
        for intent in (buy, sell):  # an exit too: no venue would take it
            verdict = engine.evaluate(intent, Decimal(1), Decimal("0.5"), held)
            assert not verdict.allowed
            assert "takes no orders" in verdict.decisions[0].reason
    # open again (a market reopened, or a meta value that is not exactly False / True)
    for meta in (open_, {"tradeable": 0}, {"closed": "false"}, {}):
        market.apply(Instrument("pm", "1", "binary", "0.01", "1", meta=meta))
        assert engine.evaluate(buy, Decimal(1), Decimal("0.5"), held).allowed


# -- absurd intents and failing sizers (held-out sandbox audit) ---------------------------
class OneIntent(Strategy):
    """One intent on the first bar, as given."""

    name = "one"

    def __init__(self, **intent: object) -> None:
        self.intent = intent
        self.sent = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar or self.sent:
            return ()
        self.sent = True
        return (Intent(self.name, event.instrument_id, Side.BUY, order_type=OrderType.MARKET,
                       **self.intent),)  # type: ignore[arg-type]  # the test's fields


@pytest.mark.parametrize("quantity, status, reason", [
    ("0.123456789123", "0.12345678", None),  # onto the 1e-8 lot grid, down
    ("1E-300", None, "below one lot"),  # was an order of 1E-300
    ("1E+999999", None, "cannot be put on the lot grid"),  # was an ArithmeticError escaping
])
def test_an_explicit_quantity_goes_onto_the_lot_grid(
        tmp_path: Path, quantity: str, status: str | None, reason: str | None) -> None:
    cfg = load_config(_config(tmp_path, own_strategies=True, end="2022-01-03"))
    Runner(cfg, tmp_path / "run", strategies={"one": OneIntent(
        quantity=Decimal(quantity))}).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = ledger.query("select quantity from orders")
        events = ledger.query("select reason from risk_events where check_name = 'sizing'")
    if status is not None:
        assert [o["quantity"] for o in orders] == [status] and not events
    else:
        assert orders == [] and len(events) == 1 and reason in events[0]["reason"]
        assert len(events[0]["reason"]) < 200  # no million-digit reason


def test_a_failing_sizer_vetoes_the_intent_and_the_run_goes_on(tmp_path: Path) -> None:
    """A sizer raising (here kelly on a forecast whose sigma**2 underflowed, which used
    to raise ZeroDivisionError out of the loop) is a risk event, not the end of the run."""
    from argus_core.models import Forecast

    cfg = load_config(_config(tmp_path, own_strategies=True, end="2022-01-03"))
    runner = Runner(cfg, tmp_path / "run", strategies={"one": OneIntent(
        forecast=Forecast(mu=0.01, sigma=0.02))})

    def broken(*args: object, **kw: object) -> Decimal:
        raise ZeroDivisionError("float division by zero")

    runner.engine.sizer.size = broken  # type: ignore[method-assign]
    summary = runner.run_sync()
    assert summary.events > 10 and summary.orders == 0
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (event,) = ledger.query("select action, reason from risk_events where check_name = "
                                "'sizing'")
    assert event["action"] == "veto" and "ZeroDivisionError" in event["reason"]


def test_a_resume_that_stops_a_flatten_under_way_says_what_stays_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume while a flatten waits (its market takes no orders) stops the flatten: it
    said only "trading ACTIVE", and the person read the positions as closed."""
    _, run_dir = _flatten_waiting(tmp_path, monkeypatch, events=100)
    result = CliRunner().invoke(cli, ["resume", "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "the flatten under way stops: 1 position(s) stay open (replay:BTC/USD)" \
        in result.output
    again = CliRunner().invoke(cli, ["resume", "--run-dir", str(run_dir)])
    assert "nothing changed" in again.output and "flatten" not in again.output
