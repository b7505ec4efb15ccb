"""Red team 40 of the orchestrator: what a restart or a clock step reset, ids that could
repeat, price keys, unbounded timeouts and a canary's evidence.

Each test names what it found before the fix:

* the day budget of a live transport: a restart with the wall clock stepped back over
  midnight reopened the day before (its unspent budget paid again, within the minute),
  and a restart after a step forward began the next day early (each process anchored
  the day on the wall clock as it read it at its start);
* a cycle that failed before writing its row (a ledger error at its start) left nothing
  in the ledger, so a restart numbered cycles from the rows it found and issued the same
  id again; so did a replay killed while a cycle ran (its rows rolled back, its proving
  backtests left on disk under the id: a backtest into a folder that holds one resumes
  it, so the new candidate would have been judged on the old one's results);
* ``[plugins.orchestrator.prices]``: a user's price for a model prefix
  (``claude-opus``) lost to a longer built-in key (``claude-opus-5-5``) matching the same
  model, so the user's price was silently ignored;
* ``timeout_s`` (the API call timeout), ``sandbox.call_timeout_s`` and
  ``sandbox.cpu_seconds`` had no upper bound: ``timeout_s = 1e12`` passed the start and
  every call failed on the socket's timeout (OverflowError), a stop waited for ever on a
  call in flight; ``call_timeout_s = 1e12`` overflowed the worker's poll at the first
  slow reply; ``cpu_seconds = 1e30`` failed every worker's start (a C long);
* a fill of an order the previous version left working, arriving after the canary's
  first order, counted as the canary's evidence: a canary whose own orders never filled
  went full on its incumbent's fill.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_orchestrator import llm, session
from argus_orchestrator.config import DEFAULT_PRICES, FALLBACK_PRICE
from argus_orchestrator.llm import SteadyWallClock
from argus_orchestrator.session import run_orchestrated
from argus_orchestrator.spool import ThoughtSpool

from argus_core import (
    Bar,
    CancelIntent,
    ConfigError,
    Intent,
    Ledger,
    MarketEvent,
    OrderType,
    Side,
    StrategyContext,
    TimeInForce,
)

sys.path.insert(0, str(Path(__file__).parent / "orchestrator"))
import swap_campaign as sc
import test_orchestrator_live_control as live_control
from test_heldout2_orchestrator import _settings

gated = live_control.gated  # the paused replay feed (a fixture, used by name)

#: 2024-03-02T00:00:00Z.
MIDNIGHT = 1_709_337_600 * 10**9
MINUTE = 60 * 10**9


# -- the day budget across a restart ----------------------------------------------------------
def _answer(n: int, text: str, input_tokens: int) -> dict[str, Any]:
    """A finished Messages API answer billed ``input_tokens`` in and 200 out."""
    message = live_control._message(n, text)
    message["response"]["json"]["usage"] = {"input_tokens": input_tokens,
                                            "output_tokens": 200}
    return message


#: 2022-01-01T00:00:00Z, 2022-01-03T00:00:00Z: the first process's bars end there.
DATA_START, FIRST_END = 1_640_995_200, 1_641_168_000


def _replay_config(tmp_path: Path, until: int, cassette: list[dict[str, Any]],
                   every: int = 10) -> Path:
    """A replay of hourly bars from 2022-01-01 to 2022-01-06 (48 events to FIRST_END, 72
    more after) whose data file holds the bars before ``until`` (unix seconds) only: a
    restart with the same config finds more (a config changed between restarts is
    refused).  A cycle at the 2nd event and every ``every`` after; one generate call of
    at most 1000 tokens per cycle (the answer holds no code: the cycle is rejected after
    it); a day budget of 60,000 tokens."""
    bars = tmp_path / "bars.csv"
    rows = [line for line in live_control.BARS.read_text().splitlines()
            if DATA_START <= int(line.split(",", 1)[0]) < until]
    bars.write_text("\n".join(rows) + "\n")
    (tmp_path / "cassette.json").write_text(json.dumps({"interactions": cassette}))
    path = tmp_path / "orchestrate.toml"
    path.write_text(f"""
[argus]
plugins = ["orchestrator", "lab"]
mode = "replay"
seed = 3

[run]
venue = "gated"
strategies = ["ma_cross"]
sizer = "kelly"
starting_cash = "100000"
checkpoint_every_events = 1

[plugins.gated]
bars_csv = "{bars}"
venue = "replay"
symbol = "BTC/USD"
start = "2022-01-01"
end = "2022-01-06"

[plugins.orchestrator]
slot = "ma_cross"
seed_source = "{live_control.SEED}"
transport = "recorded:cassette.json"
first_cycle_after_events = 2
cycle_every_events = {every}
max_tokens_generate = 1000
max_tokens_review = 100

[plugins.orchestrator.budget]
day_max_tokens = 60000
""")
    return path


class _Wall:
    """The wall clock a test sets (the steady clock is the real one)."""

    now = 0


def _as_live(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the session treat the recorded transport as a live one (the day budget on the
    wall clock, :class:`SteadyWallClock`), with the wall clock read from ``_Wall``."""
    real_build = session.build_client

    def build_client(settings: Any, base_dir: Any = None) -> Any:
        client, _transport = real_build(settings, base_dir)
        return client, None  # no recorded transport: the session's live path

    class Clock(SteadyWallClock):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("wall", None)
            super().__init__(lambda: _Wall.now, *args[1:], **kwargs)

    monkeypatch.setattr(session, "build_client", build_client)
    monkeypatch.setattr(session, "SteadyWallClock", Clock, raising=False)  # (before the fix)
    monkeypatch.setattr(llm, "SteadyWallClock", Clock)


def _calls(run_dir: Path) -> list[dict[str, Any]]:
    with Ledger.in_dir(run_dir) as ledger:
        return ledger.query("select cycle_id, purpose, status, error from thoughts "
                            "order by ts_ns, cycle_id, seq")


def _budgets(run_dir: Path) -> dict[str, int]:
    with Ledger.in_dir(run_dir) as ledger:
        return {r["day"]: int(r["tokens"]) for r in
                ledger.query("select day, tokens from budgets order by day")}


def _two_processes(tmp_path: Path, first_wall: int, second_wall: int
                   ) -> tuple[Path, list[dict[str, Any]]]:
    """One cycle paid at ``first_wall`` (59,200 tokens of a 60,000 day), the process
    stops; a restart at ``second_wall`` runs the next cycle, which has an answer waiting."""
    cassette = [_answer(1, "no code here", 59_000), _answer(2, "no code either", 59_000)]
    run_dir = tmp_path / "run"
    _Wall.now = first_wall
    run_orchestrated(_replay_config(tmp_path, FIRST_END, cassette), run_dir=run_dir,
                     max_cycles=1, echo=lambda _: None)
    _Wall.now = second_wall
    # (the cassette again from its start: the second process serves its first answer)
    run_orchestrated(_replay_config(tmp_path, 2**40, cassette[1:]), run_dir=run_dir,
                     max_cycles=2, echo=lambda _: None, resume=True)
    return run_dir, _calls(run_dir)


def test_a_restart_with_the_clock_stepped_back_over_midnight_keeps_the_days_spend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gated: Any) -> None:
    """Paid 59,200 tokens at 00:00:30; NTP steps the clock back a minute; the process
    restarts at (what it reads as) 23:59:30 the day before.  Before: the day before's
    budget was fresh, and the second cycle spent another 59,200 tokens within the
    minute."""
    _as_live(monkeypatch)
    run_dir, calls = _two_processes(tmp_path, MIDNIGHT + MINUTE // 2, MIDNIGHT - MINUTE // 2)
    assert [(c["cycle_id"], c["status"]) for c in calls] == [
        ("cycle-0001", "ok"), ("cycle-0002", "budget")], calls
    assert re.search(r"day tokens 59200 \+ up to \d+ > 60000", calls[1]["error"]), calls[1]
    assert _budgets(run_dir) == {"2024-03-02": 59_200}


def test_a_restart_on_another_boot_with_the_clock_stepped_back_keeps_the_days_spend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gated: Any) -> None:
    """The same after a reboot (the steady clock starts again, so the first process's
    anchor cannot be carried): the day of the latest spend in the ledger holds, the clock
    is never read earlier than that spend."""
    _as_live(monkeypatch)
    boots = iter(["boot-a", "boot-b"])
    monkeypatch.setattr(llm, "_boot_id", lambda: next(boots, "boot-b"), raising=False)
    run_dir, calls = _two_processes(tmp_path, MIDNIGHT + MINUTE // 2,
                                    MIDNIGHT - 2 * 3600 * 10**9)
    assert [(c["cycle_id"], c["status"]) for c in calls] == [
        ("cycle-0001", "ok"), ("cycle-0002", "budget")], calls
    assert _budgets(run_dir) == {"2024-03-02": 59_200}


def test_a_restart_with_the_clock_stepped_forward_does_not_begin_the_next_day_early(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gated: Any) -> None:
    """Paid at 23:59:00; the clock steps forward two minutes; the restart (seconds of
    elapsed time later, same boot) read 00:01 of the next day and a fresh budget."""
    _as_live(monkeypatch)
    run_dir, calls = _two_processes(tmp_path, MIDNIGHT - MINUTE, MIDNIGHT + MINUTE)
    assert [(c["cycle_id"], c["status"]) for c in calls] == [
        ("cycle-0001", "ok"), ("cycle-0002", "budget")], calls
    assert _budgets(run_dir) == {"2024-03-01": 59_200}


def test_the_day_of_a_restart_follows_the_clock_when_it_is_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gated: Any) -> None:
    """The guard's other side: a restart on another boot a day later pays on its own
    day (the floor is the latest spend, not a frozen day)."""
    _as_live(monkeypatch)
    boots = iter(["boot-a", "boot-b"])
    monkeypatch.setattr(llm, "_boot_id", lambda: next(boots, "boot-b"), raising=False)
    run_dir, calls = _two_processes(tmp_path, MIDNIGHT + MINUTE,
                                    MIDNIGHT + 86_400 * 10**9 + MINUTE)
    assert [(c["cycle_id"], c["status"]) for c in calls] == [
        ("cycle-0001", "ok"), ("cycle-0002", "ok")], calls
    assert _budgets(run_dir) == {"2024-03-02": 59_200, "2024-03-03": 59_200}


# -- cycle ids --------------------------------------------------------------------------------
def _started(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines if (m := re.match(r"\[(cycle-\d+)\] started", line))]


def test_a_cycle_that_failed_before_its_row_does_not_lend_its_id_to_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gated: Any) -> None:
    """cycle-0001 fails at its start (a ledger error writing its row); the process stops.
    Before: the restart counted the cycle rows (none), issued cycle-0001 again and, with
    ``--cycles 2``, started two more cycles."""
    real_start = ThoughtSpool.start_cycle
    failures = iter([OSError("disk I/O error")])

    def start_cycle(self: ThoughtSpool, *args: Any, **kwargs: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_start(self, *args, **kwargs)

    monkeypatch.setattr(ThoughtSpool, "start_cycle", start_cycle)
    run_dir, first, second = tmp_path / "run", [], []
    cassette = [_answer(1, "no code here", 10)]
    run_orchestrated(_replay_config(tmp_path, FIRST_END, cassette), run_dir=run_dir,
                     max_cycles=1, echo=first.append)
    assert _started(first) == ["cycle-0001"]
    run_orchestrated(_replay_config(tmp_path, 2**40, cassette), run_dir=run_dir,
                     max_cycles=2, echo=second.append, resume=True)
    assert _started(second) == ["cycle-0002"], second
    with Ledger.in_dir(run_dir) as ledger:
        rows = ledger.query("select cycle_id, outcome from orchestrator_cycles")
    assert [(r["cycle_id"], r["outcome"]) for r in rows] == [("cycle-0002", "rejected")]


def test_a_cycle_whose_benchmarks_fail_is_recorded_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gated: Any) -> None:
    """A step before the first model call (the truth benchmarks) raising: the cycle has
    its row, ``failed`` with the reason (before: no row at all, only a line on the
    console, and its id free for the next process)."""
    from argus_orchestrator import cycle

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("equity rows unreadable")

    monkeypatch.setattr(cycle, "truth_benchmarks", broken)
    run_dir = tmp_path / "run"
    run_orchestrated(_replay_config(tmp_path, FIRST_END, []), run_dir=run_dir,
                     max_cycles=1, echo=lambda _: None)
    with Ledger.in_dir(run_dir) as ledger:
        rows = ledger.query("select cycle_id, status, outcome, reason from "
                            "orchestrator_cycles")
    assert [(r["cycle_id"], r["status"], r["outcome"]) for r in rows] == [
        ("cycle-0001", "finished", "failed")], rows
    assert "equity rows unreadable" in rows[0]["reason"]


def test_a_restart_keeps_the_cycle_cadence(tmp_path: Path, gated: Any) -> None:
    """``cycle_every_events = 100``: cycle-0001 at event 2, the process stops at event 48.
    Before: the restart began the cadence again and ran cycle-0002 at its 2nd event (50
    events after cycle-0001); a process restarted every 50 events ran a cycle at each
    start.  Now the next cycle waits for the 100 events (the restart's 54th)."""
    run_dir, lines = tmp_path / "run", []
    cassette = [_answer(1, "no code here", 10), _answer(2, "no code either", 10)]
    run_orchestrated(_replay_config(tmp_path, FIRST_END, cassette, every=100),
                     run_dir=run_dir, max_cycles=5, echo=lambda _: None)
    run_orchestrated(_replay_config(tmp_path, 2**40, cassette[1:], every=100),
                     run_dir=run_dir, max_cycles=5, echo=lines.append, resume=True)
    assert [line.split(" (")[0] for line in lines if "started" in line] == [
        "[cycle-0002] started at event 54"], lines


def test_a_killed_cycles_folder_is_not_reused(tmp_path: Path, gated: Any) -> None:
    """A replay killed while cycle-0001 ran: its rows rolled back with the loop's open
    transaction, its proving backtests left in ``orchestrator/cycle-0001``.  Before, the
    restart issued cycle-0001 again, whose proving backtests would resume the old ones
    (a backtest into a folder holding a run continues it) and judge the new candidate on
    the old candidate's results."""
    run_dir, lines = tmp_path / "run", []
    cassette = [_answer(1, "no code here", 10)]
    run_orchestrated(_replay_config(tmp_path, FIRST_END, cassette), run_dir=run_dir,
                     max_cycles=0, echo=lambda _: None)
    (run_dir / "orchestrator" / "cycle-0001" / "candidate").mkdir(parents=True)
    run_orchestrated(_replay_config(tmp_path, 2**40, cassette), run_dir=run_dir,
                     max_cycles=3, echo=lines.append, resume=True)
    # (the killed one counts towards the run's 3)
    assert _started(lines) == ["cycle-0002", "cycle-0003"], lines


# -- prices -----------------------------------------------------------------------------------
def test_a_users_price_for_a_prefix_wins_over_a_longer_default_key() -> None:
    """Before: ``prices = {"claude-opus" = [1, 2]}`` left ``claude-opus-5-5`` at the
    built-in (4, 20): the longest key won across both tables, so a user's price for every
    Opus model was ignored for each model the built-in table names more precisely."""
    settings = _settings(prices={"claude-opus": ["1", "2"]})
    assert settings.price("claude-opus-5-5") == (Decimal(1), Decimal(2))
    assert settings.price("claude-opus-4-6-20260101") == (Decimal(1), Decimal(2))
    # models the user's keys do not match keep the built-in table (longest key wins there)
    assert settings.price("claude-sonnet-5-5") == DEFAULT_PRICES["claude-sonnet-5"]
    assert settings.price("gpt-9") == FALLBACK_PRICE
    # the budget floor at start uses the user's price (8000 tokens at $2 per million)
    assert settings.cost("claude-opus-5-5", 0, 8000) == Decimal("0.016")


def test_among_a_users_keys_the_longest_wins() -> None:
    settings = _settings(prices={"claude": ["7", "7"], "claude-opus-5": ["1", "3"]})
    assert settings.price("claude-opus-5-5") == (Decimal(1), Decimal(3))
    assert settings.price("claude-sonnet-5-5") == (Decimal(7), Decimal(7))


# -- unbounded timeouts -----------------------------------------------------------------------
@pytest.mark.parametrize(("settings", "key"), [
    ({"timeout_s": 1e12}, "timeout_s"),
    ({"timeout_s": 600.5}, "timeout_s"),
    ({"sandbox": {"call_timeout_s": 1e12}}, "call_timeout_s"),
    ({"sandbox": {"call_timeout_s": 60.5}}, "call_timeout_s"),
    ({"sandbox": {"cpu_seconds": 10**30}}, "cpu_seconds"),
    ({"sandbox": {"cpu_seconds": 1_000_001}}, "cpu_seconds"),
])
def test_a_huge_timeout_is_refused_naming_the_setting(settings: dict[str, Any],
                                                      key: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key} = \S+ is outside the allowed range"):
        _settings(**settings)


def test_the_largest_timeouts_are_accepted() -> None:
    settings = _settings(timeout_s=600, sandbox={"call_timeout_s": 60,
                                                 "cpu_seconds": 1_000_000})
    assert settings.timeout_s == 600
    assert settings.sandbox.call_timeout_s == 60 and settings.sandbox.cpu_seconds == 1_000_000


# -- a canary's evidence ----------------------------------------------------------------------
INHERITED_BID = Decimal(95)


class _Versions(sc.FakeVersion):
    """``fake_inherit``: rests a GTC bid at 95 on its first X bar (it fills when X dips);
    ``fake_farbid``: rests a bid at half the price on its first X bar (never fills)."""

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        if self.kind not in ("fake_inherit", "fake_farbid"):
            return super().on_event(event, ctx)
        mine = f"bid:{self.tag}"  # (the hand-over brings the previous version's keys)
        if type(event) is not Bar or event.instrument_id != sc.X or self.state.get(mine):
            return ()
        self.state[mine] = True
        price = INHERITED_BID if self.kind == "fake_inherit" else \
            Decimal(repr(event.close)) / 2
        return (Intent(self.name, sc.X, Side.BUY, quantity=Decimal(1),
                       order_type=OrderType.LIMIT, limit_price=price,
                       time_in_force=TimeInForce.GTC, reason=f"v:{self.tag}"),)


def _flat_bars(seed: int, segment: int, n: int) -> list[Bar]:
    """X at 100 and Y at 50, except X at 90 on event 9 (a bid at 95 fills there)."""
    t0 = (segment + 1) * 10_000 * sc.S
    out = []
    for i in range(n):
        iid = sc.X if i % 2 == 0 else sc.Y
        close = 50.0 if iid == sc.Y else (90.0 if i + 1 == 9 else 100.0)
        out.append(Bar(iid, t0 + (i + 1) * sc.BAR_NS, close, close * 1.001, close * 0.999,
                       close, 1000.0))
    return out


def test_a_fill_of_an_inherited_order_is_not_the_canarys_evidence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """v002 (full) rests a bid at 95 at its first X bar (event 5); v003, asked for at
    event 4, is swapped in as canary after event 5 and rests its own far bid at event 7
    (its first order, which never fills); X dips at event 9 and v002's bid fills.
    Before: that fill counted as the canary's (it came after the canary's first order),
    and v003 went full on v002's trade."""
    sc.install(monkeypatch)
    monkeypatch.setattr(sc, "FakeVersion", _Versions)
    monkeypatch.setattr(sc, "_bars", _flat_bars)
    plan = sc.Plan(4040, (sc.Segment(14, ((2, sc.Act("promote", "full", "fake_inherit")),
                                          (4, sc.Act("promote", "canary", "fake_farbid")))),),
                   True, canary_min_fills=1)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        versions = {r["version_id"].split("-")[1]: r for r in ledger.query(
            "select version_id, status, reason from strategy_versions")}
        bids = ledger.query("select o.reason, o.limit_price, o.status from orders o "
                            "where o.strategy = ? and o.order_type = 'limit' "
                            "order by o.ts_ns", (sc.SLOT,))
    # the inherited bid filled during the canary; the canary's own did not
    assert [(Decimal(b["limit_price"]), b["status"]) for b in bids] == [
        (INHERITED_BID, "filled"), (Decimal(50), "cancelled")], bids
    assert versions["v003"]["status"] == "rejected", versions["v003"]
    assert "0 fill(s) in 4 canary events (1 order(s) asked)" in versions["v003"]["reason"]
    assert versions["v002"]["status"] == "full"


def test_a_fill_of_the_canarys_own_order_is_its_evidence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule's other side: the canary's own bid (at 95 here, placed at event 7) fills
    at event 9 and it goes full."""
    sc.install(monkeypatch)
    monkeypatch.setattr(sc, "FakeVersion", _Versions)
    monkeypatch.setattr(sc, "_bars", _flat_bars)
    plan = sc.Plan(4041, (sc.Segment(14, ((2, sc.Act("promote", "full", "fake_farbid")),
                                          (4, sc.Act("promote", "canary", "fake_inherit")))),),
                   True, canary_min_fills=1)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        v003 = ledger.query("select status, reason from strategy_versions where "
                            "version_id like '%-v003-%'")[0]
    assert v003["status"] == "full", v003


def test_the_orchestrator_counts_only_fills_of_orders_placed_after_the_canary_came_in(
        ) -> None:
    """Unit level, through ``Supervised.on_fill``: an order working when the canary took
    the slot and a fill already booked but not yet heard are the previous version's."""
    import types

    from argus_orchestrator.ladder import Orchestrator, Supervised

    from argus_core import Fill, KnownOrder, Liquidity, Order

    orch = Orchestrator.__new__(Orchestrator)
    orch.s = _settings()
    orch.stage, orch.canary_fills, orch.canary_orders = "canary", 0, 1
    orch._pending_swap, orch._rolled_back, orch._muted = None, False, False
    orch._inherited = None

    def order(coid: str) -> KnownOrder:
        return KnownOrder(Order(coid, "replay", sc.X, Side.BUY, Decimal(1), Decimal(95),
                                OrderType.LIMIT, TimeInForce.GTC, "ma_cross", 1))

    def fill(coid: str) -> Fill:
        return Fill(f"f-{coid}", coid, "replay", sc.X, Side.BUY, Decimal(95), Decimal(1),
                    Decimal(0), Liquidity.MAKER, 2)

    booked = fill("old-2")
    orch.runner = types.SimpleNamespace(engine=types.SimpleNamespace(
        heard=[("ma_cross", booked), ("other", fill("x"))]))
    ctx = types.SimpleNamespace(orders=(order("old-1"),))
    wrapped = Supervised(types.SimpleNamespace(on_fill=lambda f, c: []), orch)  # type: ignore[arg-type]
    for coid in ("old-1", "old-2"):
        wrapped.on_fill(fill(coid), ctx)  # type: ignore[arg-type]
    assert orch.canary_fills == 0
    wrapped.on_fill(fill("new-1"), types.SimpleNamespace(orders=()))  # type: ignore[arg-type]
    assert orch.canary_fills == 1
    assert json.dumps(sorted(orch._inherited)) == '["old-1", "old-2"]'
