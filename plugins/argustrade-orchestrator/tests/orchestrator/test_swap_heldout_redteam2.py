"""Second held-out red team of the hot-swap, the watchdog and the budgets.

Was (each failed before its fix):

* two promotions read in one poll: the second's swap overwrote the first's pending swap,
  so a first hand-over that failed in the runner went unread ("Future exception was never
  retrieved"): the ledger said the first version had traded and was ``retired``, and a
  rollback of the second reinstated it.  A promotion read while a swap is pending now
  waits for the next tick (``requested:`` meanwhile), when the first's outcome is known;
* a rollback's own swap was never tracked: when the reinstated version could not take
  the rolled-back one's state, the rolled-back version traded on for the rest of the run
  while the ledger said the reinstated one was full.  Now the loop HALTS, the version left
  in the slot is muted and the reinstated one is ``retired`` saying why;
* a swapped-out version's sandbox worker was stopped only by the garbage collector: after
  a promotion the old version's worker process ran until the run ended;
* another slot's strategy error rolled the AI version back (the runner's listeners hear
  every slot's failure);
* losing exits were counted gross of fees (a round trip that lost its fees, or closed at
  its entry price, was no loss); the exits of the version before a swap counted against
  the new one;
* a canary rejected at a restart left its resting orders working for the resumed version;
* ``ladder.canary_notional`` past ~1e20 made every capped buy raise (Decimal's 28 digits),
  rolling the canary back for a setting; NaN shadow P&L passed the shadow judgement;
* with the installed (trusted) plugin as the seed, a cycle's proving backtest ran the very
  object trading in the slot, leaving its state at the proving window's prices;
* a replay's cycle wrote its model calls through the loop's connection, committed at the
  next checkpoint (every 500 events in the example): a kill before it lost them, and a
  resumed run paid for the same cycle again, its budgets blind to the first;
* the SDK's retries inside one call were checked against the budget as one attempt: a
  call whose attempts timed out spent up to ``1 + max_retries`` times the room it had;
  ``max_retries`` had no bound (a 529 retried for ever); a live transport's day budget
  followed the replay's clock (every replayed day a new budget); ``--cycles`` counted per
  process (a crash loop under a supervisor started N more cycles at each restart).
"""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import swap_campaign as sc
from argus_orchestrator.config import MAX_CANARY_NOTIONAL
from argus_orchestrator.cycle import CycleRunner
from argus_orchestrator.errors import OrchestratorError
from argus_orchestrator.ladder import CanaryCap, Orchestrator, ShadowBook
from argus_orchestrator.llm import ModelClient, estimate_tokens
from argus_orchestrator.sandbox.host import WorkerProcess
from argus_orchestrator.session import run_orchestrated
from argus_orchestrator.transport import RecordedTransport
from argus_orchestrator.versions import VersionStore
from test_heldout2_orchestrator import (
    TIMED_OUT,
    _answer,
    _call,
    _ledger,
    _Runner,
    _settings,
)
from test_orchestrator_live_control import (
    BUY_AND_HOLD,
    _message,
    gated,  # noqa: F401  (a fixture, used by name)
)
from test_orchestrator_live_control import _config as _live_config
from test_swap_heldout_redteam import _RestingVersion

from argus_core import (
    Bar,
    ConfigError,
    Intent,
    Ledger,
    MarketEvent,
    Portfolio,
    Position,
    Side,
    Strategy,
    StrategyContext,
    TradingState,
)


class _Version(_RestingVersion):
    """The campaign's in-process versions, and two more: ``fake_late`` takes the state
    when it starts and fails the runner's hand-over (its second ``set_state``);
    ``fake_big_state`` hands over a state past the sandbox's limit; ``fake_idle`` never
    trades."""

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Any]:
        if self.kind == "fake_idle":
            return ()
        return super().on_event(event, ctx)

    def set_state(self, state: dict[str, Any]) -> None:
        if self.kind == "fake_late":
            self.sets = getattr(self, "sets", 0) + 1
            if self.sets >= 2:
                raise ValueError("cannot take the hand-over")
        super().set_state(state)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.kind == "fake_big_state":
            state["pad"] = "x" * 400_000
        return state


@pytest.fixture
def campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    sc.install(monkeypatch)
    monkeypatch.setattr(sc, "FakeVersion", _Version)


def _run(plan: sc.Plan, workdir: Path) -> sc.Campaign:
    workdir.mkdir(parents=True, exist_ok=True)
    c = sc.Campaign(plan, workdir)
    config = sc._config(c)
    with sc._current(c):
        for i, _seg in enumerate(plan.segments):
            c.segment_index, c.base_calls, c.director_calls = i, 0, 0
            sc._run_segment(c, config)
            c.run_person_commands()
    c.problems += sc.check(c)
    return c


def _versions(workdir: Path) -> dict[str, dict[str, Any]]:
    """Each version's row by its number (``v001``...)."""
    with Ledger.in_dir(workdir / "run") as ledger:
        rows = ledger.query("select * from strategy_versions order by rowid")
    return {r["version_id"].split("-")[1]: r for r in rows}


def _latch(workdir: Path) -> dict[str, Any]:
    with Ledger.in_dir(workdir / "run") as ledger:
        latch: dict[str, Any] = json.loads(ledger.get_control("trading_state") or "{}")
    return latch


# -- one swap per tick --------------------------------------------------------------------------
def test_a_second_promotion_waits_and_the_firsts_failed_hand_over_is_reported(
        tmp_path: Path, campaign: None, caplog: pytest.LogCaptureFixture) -> None:
    """v002 and v003 are asked full in one poll; the runner cannot hand the state to v002.
    Before: v003's swap replaced v002's pending one, v002's failure was never read (asyncio
    logged "Future exception was never retrieved"), v002 was ``retired`` "replaced by
    v003" though it never traded, and the rollback of v003 reinstated v002."""
    plan = sc.Plan(8001, (sc.Segment(20, ((3, sc.Act("promote", "full", "fake_late", 1)),
                                          (3, sc.Act("promote", "full", "fake_good", 1)),
                                          (10, sc.Act("rollback")))),), True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    rows = _versions(tmp_path)
    assert {k: r["status"] for k, r in rows.items()} == {
        "v001": "full", "v002": "rejected", "v003": "rolled_back"}
    assert "hot-swap of" in rows["v002"]["reason"]
    assert "cannot take the hand-over" in rows["v002"]["reason"]
    assert rows["v003"]["replaced_id"] == rows["v001"]["version_id"]  # not v002
    assert any("waits for the swap of" in line for line in c.log_lines), c.log_lines
    assert "never retrieved" not in caplog.text


def test_a_rollback_whose_version_cannot_take_the_state_halts_and_sends_nothing_more(
        tmp_path: Path, campaign: None) -> None:
    """v003 (whose state is past the sandbox's limit) is rolled back to v002, a sandboxed
    version: the runner cannot hand v003's state over.  Before: nothing read the rollback's
    swap, v003 traded on (three orders after the rollback) while the ledger said v002 was
    full.  Now v002 is retired saying why, the loop is HALTED, v003 sends nothing, and
    neither the ledger nor the checkpoint names a live version."""
    plan = sc.Plan(8003, (sc.Segment(24, ((3, sc.Act("promote", "full", "good", 1)),
                                          (6, sc.Act("promote", "full", "fake_big_state", 1)),
                                          (10, sc.Act("rollback")))),), True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems  # (every order by the version the ledger names)
    rows = _versions(tmp_path)
    assert {k: r["status"] for k, r in rows.items()} == {
        "v001": "retired", "v002": "retired", "v003": "rolled_back"}
    assert "could not reinstate" in rows["v002"]["reason"]
    assert "state hand-over" in rows["v002"]["reason"]
    assert _latch(tmp_path).get("state") == TradingState.HALTED.value
    sends = [e for e in c.read() if e["kind"] == "send" and e["strategy"] == sc.SLOT]
    tag3 = sc.tag_of(rows["v003"]["source"])[0]
    assert sends and sends[-1]["reason"] == f"v:{tag3}"  # v003 traded before...
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rollback_ts = ledger.query("select ts_ns from strategy_events where to_status = "
                                   "'rolled_back'")[0]["ts_ns"]
    assert all(e["ts"] < rollback_ts for e in sends), sends  # ...and nothing after


def test_a_restart_after_a_failed_rollback_stays_halted_and_muted(
        tmp_path: Path, campaign: None) -> None:
    """The failed rollback above, then a restart.  Before: no version was full, so the
    restart wrote a new seed row ``full`` and traded the seed (trusted) in the slot, a
    version nobody reinstated.  Now the slot stays muted (no seed row, nothing sent, no
    version named), HALTED, until a person promotes a version."""
    plan = sc.Plan(8003, (sc.Segment(24, ((3, sc.Act("promote", "full", "good", 1)),
                                          (6, sc.Act("promote", "full", "fake_big_state", 1)),
                                          (10, sc.Act("rollback")))),
                          sc.Segment(12, ())), True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    rows = _versions(tmp_path)
    assert {k: r["status"] for k, r in rows.items()} == {
        "v001": "retired", "v002": "retired", "v003": "rolled_back"}  # no seed row again
    assert _latch(tmp_path).get("state") == TradingState.HALTED.value
    assert not [e for e in c.read() if e["kind"] == "send" and e["strategy"] == sc.SLOT
                and e["segment"] == 1]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        saved = ledger.load_checkpoint("runner")
    assert saved is not None and sc.SLOT not in saved[2].get("versions", {}), saved


# -- workers ------------------------------------------------------------------------------------
class _Spawned:
    """Every sandbox worker started (tag, pid), and at each director event the ones alive."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.workers: list[tuple[str, int]] = []
        self.alive: list[tuple[int, set[str]]] = []
        real_init, real_event = WorkerProcess.__init__, sc.Director.on_event
        spawned = self

        def init(worker: WorkerProcess, source: str, *args: Any, **kwargs: Any) -> None:
            real_init(worker, source, *args, **kwargs)
            spawned.workers.append((sc.tag_of(source)[0], worker.pid or 0))

        def on_event(director: sc.Director, event: MarketEvent, ctx: StrategyContext
                     ) -> Sequence[Any]:
            spawned.alive.append((director.events + 1, {
                f"{tag}:{pid}" for tag, pid in spawned.workers if sc.process_alive(pid)}))
            return real_event(director, event, ctx)

        monkeypatch.setattr(WorkerProcess, "__init__", init)
        monkeypatch.setattr(sc.Director, "on_event", on_event)


@pytest.fixture
def no_gc() -> Iterator[None]:
    """The garbage collector off: what is stopped is stopped by the code, not by chance."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_swapped_out_versions_worker_is_stopped_at_once(
        tmp_path: Path, campaign: None, no_gc: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandboxed seed, a sandboxed version promoted at event 3 and rolled back at 8.
    Before: the seed's worker ran to the end of the run beside its replacements (it was
    left to the garbage collector).  Now each swapped-out worker has ended by the second
    event after its swap (stopped at the slot's next tick, after the director's look)."""
    spawned = _Spawned(monkeypatch)
    plan = sc.Plan(8004, (sc.Segment(16, ((3, sc.Act("promote", "full", "good", 1)),
                                          (8, sc.Act("rollback")))),), False)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    (first_seed, version, second_seed) = spawned.workers
    pids = {tag: f"{tag}:{pid}" for tag, pid in (first_seed, version)}
    alive_at = dict(spawned.alive)
    assert pids["seed"] in alive_at[3]
    assert pids["seed"] not in alive_at[6] and pids[version[0]] in alive_at[6]
    assert pids[version[0]] not in alive_at[11]
    assert all(len(alive) <= 2 for _, alive in spawned.alive[1:]), spawned.alive
    assert not any(sc.process_alive(pid) for _, pid in spawned.workers)
    assert second_seed[0] == "seed"


# -- the watchdog -------------------------------------------------------------------------------
def test_another_slots_failure_does_not_roll_back_the_ai_version(
        tmp_path: Path, campaign: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trusted slot beside raises: the runner goes REDUCING (its rule), and the AI
    version trading in the supervised slot stays full; it was rolled back for it."""
    real = sc.Base.on_event

    def on_event(base: sc.Base, event: MarketEvent, ctx: StrategyContext) -> Sequence[Any]:
        if base.n == 6:
            base.n += 1
            assert sc.Campaign.current is not None
            sc.Campaign.current.base_calls += 1  # (it saw the event)
            raise RuntimeError("the trusted slot's own bug")
        return real(base, event, ctx)

    monkeypatch.setattr(sc.Base, "on_event", on_event)
    plan = sc.Plan(8006, (sc.Segment(24, ((3, sc.Act("promote", "full", "fake_good", 1)),)),),
                   True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    assert {k: r["status"] for k, r in _versions(tmp_path).items()} == {
        "v001": "retired", "v002": "full"}
    assert _latch(tmp_path).get("state") == TradingState.REDUCING.value


def test_a_canary_rejected_at_a_restart_has_its_working_orders_cancelled(
        tmp_path: Path, campaign: None) -> None:
    """v002 rests a far bid as canary; the process is SIGKILLed; the restart rejects the
    canary.  Before: its bid stayed working for the resumed version, which never placed
    it (a rollback cancels a rolled-back version's orders; a restart did not)."""
    plan = sc.Plan(8005, (sc.Segment(30, ((3, sc.Act("promote", "canary", "fake_rest", 1)),),
                                     sigkill_at=6),
                          sc.Segment(12, ())), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    assert _versions(tmp_path)["v002"]["status"] == "rejected"
    with Ledger.in_dir(tmp_path / "run") as ledger:
        bids = ledger.query("select status from orders where strategy = ? and order_type = "
                            "'limit'", (sc.SLOT,))
    assert [b["status"] for b in bids] == ["cancelled"], bids


def test_a_canary_that_never_traded_is_not_promoted(tmp_path: Path, campaign: None) -> None:
    """Its canary events proved nothing by trading.  First its promotion said "without a
    risk trigger", as if the version had been tried; then it said "it never traded" and
    promoted it anyway (no evidence is not good evidence).  Now it is rejected, saying
    why, and the incumbent trades on (``ladder.canary_min_fills``, default 1)."""
    plan = sc.Plan(8007, (sc.Segment(20, ((3, sc.Act("promote", "canary", "fake_idle", 1)),
                                          (4, sc.Act("promote", "canary", "fake_good", 1)))),),
                   True, canary_min_fills=1)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    rows = _versions(tmp_path)
    assert rows["v002"]["status"] == "rejected", rows["v002"]
    assert "0 fill(s) in 4 canary events (0 order(s) asked), fewer than canary_min_fills 1" \
        in rows["v002"]["reason"]
    assert rows["v001"]["status"] == "full"  # the incumbent, swapped back in
    assert rows["v003"]["status"] == "candidate"  # (refused: the ladder was busy)
    assert _latch(tmp_path).get("state", TradingState.ACTIVE.value) \
        == TradingState.ACTIVE.value  # no risk event: the loop was not made REDUCING


def test_a_canary_that_traded_goes_full_under_the_evidence_rule(tmp_path: Path,
                                                                campaign: None) -> None:
    plan = sc.Plan(8007, (sc.Segment(20, ((3, sc.Act("promote", "canary", "fake_good", 1)),)),),
                   True, canary_min_fills=1)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    v002 = _versions(tmp_path)["v002"]
    assert v002["status"] == "full" and "order(s) asked" in v002["reason"], v002


def _watching(tmp_path: Path, **ladder: Any) -> tuple[Orchestrator, list[str]]:
    """An orchestrator watching an AI version, its rollbacks recorded, not done."""
    store = VersionStore(_ledger(tmp_path))
    seed = store.add(slot="ma_cross", source="# seed\n", parent_id=None, status="retired",
                     reason="seed")
    ai = store.add(slot="ma_cross", source="# ai\n", parent_id=seed, status="full",
                   reason="swapped in")
    orch = Orchestrator(_settings(ladder=ladder), store, None,  # type: ignore[arg-type]
                        incumbent_id=ai, incumbent_source="# ai\n",
                        build=lambda source: types.SimpleNamespace(),  # type: ignore[arg-type,return-value]
                        max_cycles=0, blocking=True)
    orch.live_ai_id = ai
    rollbacks: list[str] = []
    setattr(orch, "rollback", rollbacks.append)  # noqa: B010  (a method replaced)
    return orch, rollbacks


def _look(orch: Orchestrator, held: dict[str, tuple[str, str]], fees: str) -> None:
    """One monitor look at a book with ``held`` {instrument: (quantity, realised)}."""
    positions = {iid: Position(iid, Decimal(q), Decimal(100), Decimal(r))
                 for iid, (q, r) in held.items()}
    portfolio = Portfolio(Decimal(10_000), positions, {iid: Decimal(100) for iid in held},
                          Decimal(fees))
    orch._monitor(types.SimpleNamespace(portfolio=portfolio))  # type: ignore[arg-type]


def test_losing_exits_are_counted_net_of_fees(tmp_path: Path) -> None:
    """Two round trips, each 0.5 up before fees and 2 in fees; then one closed at its entry
    price.  Counted gross, the first two were wins and the third no exit at all."""
    orch, rollbacks = _watching(tmp_path, rollback_consecutive_losses=3)
    _look(orch, {}, "0")
    _look(orch, {"X": ("1", "0")}, "1")  # entry
    _look(orch, {"X": ("0", "0.5")}, "2")  # exit: +0.5 before fees, -1.5 after
    _look(orch, {"X": ("1", "0.5")}, "3")
    _look(orch, {"X": ("0", "1.0")}, "4")
    assert orch.monitor_losses == 2 and not rollbacks
    _look(orch, {"X": ("1", "1.0")}, "5")
    _look(orch, {"X": ("0", "1.0")}, "6")  # at its entry price: only the fees moved
    assert orch.monitor_losses == 3
    assert rollbacks == ["3 consecutive losing exits (net of fees)"]


def test_a_swap_starts_the_watch_afresh(tmp_path: Path) -> None:
    """The version before the swap exited at a loss at the swap's event: that exit is not
    the new version's.  Before, its realised P&L from before the swap was the baseline."""
    orch, rollbacks = _watching(tmp_path, rollback_consecutive_losses=1)
    _look(orch, {"X": ("1", "0")}, "1")
    orch._reset_monitor()  # what a swap does
    _look(orch, {"X": ("0", "-5")}, "2")  # the old version's exit, seen at the swap
    assert orch.monitor_losses == 0 and not rollbacks
    _look(orch, {"X": ("1", "-5")}, "3")
    _look(orch, {"X": ("0", "-6")}, "4")
    assert rollbacks == ["1 consecutive losing exits (net of fees)"]


def test_a_resumed_run_measures_the_drawdown_from_the_versions_own_peak(
        tmp_path: Path) -> None:
    """An AI version went full at t=10, the slot's equity peaked at 10,000 and fell to
    9,600 (4%); the process stopped.  Resumed, the watch started from 9,600: a fall to
    9,300 (7% from the peak) did not trip a 5% trigger.  The peak is read back from the
    equity rows written since the version's swap."""
    ledger = _ledger(tmp_path)
    store = VersionStore(ledger, clock=lambda: 10)
    seed = store.add(slot="ma_cross", source="# seed\n", parent_id=None, status="retired",
                     reason="seed")
    ai = store.add(slot="ma_cross", source="# ai\n", parent_id=seed, status="candidate",
                   reason="proven")
    store.set_status(ai, "full", "swapped in")
    with ledger.transaction():
        for ts, equity in ((5, "20000"), (10, "9900"), (11, "10000"), (12, "9600")):
            ledger.insert("equity", {"ts_ns": ts, "cash": equity, "equity": equity,
                                     "gross_exposure": "0"})
    orch = Orchestrator(_settings(ladder={"rollback_drawdown_fraction": "0.05"}), store,
                        None, incumbent_id=ai, incumbent_source="# ai\n",  # type: ignore[arg-type]
                        build=lambda source: types.SimpleNamespace(),  # type: ignore[arg-type,return-value]
                        max_cycles=0, blocking=True)
    orch.attach(_Runner())
    orch.resume_from_ledger()
    assert orch.live_ai_id == ai and orch.monitor_peak == 10_000.0  # not the seed's 20,000
    rollbacks: list[str] = []
    setattr(orch, "rollback", rollbacks.append)  # noqa: B010  (a method replaced)
    portfolio = Portfolio(Decimal(9_300), {}, {}, Decimal(0))
    orch._monitor(types.SimpleNamespace(portfolio=portfolio))  # type: ignore[arg-type]
    assert rollbacks and rollbacks[0].startswith("drawdown 7.00% since the swap")
    orch.close()


class _Buys(Strategy):
    name = "buys"

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
        return [Intent(self.name, "replay:BTC/USD", Side.BUY, quantity=None, reason="x")]


@pytest.mark.parametrize("price", [1e-9, 0.5, 90_000.0])
def test_the_canary_cap_holds_for_the_largest_notional(price: float) -> None:
    """At 1e20 and a price of 0.5 the cap raised InvalidOperation at every capped buy."""
    canary = CanaryCap(_Buys(), MAX_CANARY_NOTIONAL)
    bar = Bar("replay:BTC/USD", 1, price, price, price, price, 1.0)
    (intent,) = canary.on_event(bar, None)  # type: ignore[arg-type]
    assert isinstance(intent, Intent) and intent.quantity is not None
    assert abs(intent.quantity * Decimal(repr(price)) - MAX_CANARY_NOTIONAL) < 1


def test_canary_notional_is_bounded_and_a_nan_shadow_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="canary_notional"):
        _settings(ladder={"canary_notional": "1e16"})
    book = ShadowBook(Decimal("1e400"), Decimal(40))  # (no longer a setting: the book's NaN)
    book.on_bar(100.0, [Intent("c", "replay:BTC/USD", Side.BUY, reason="x")])
    orch, _ = _watching(tmp_path)
    orch.candidate_id = orch.live_ai_id
    orch.shadow = {"incumbent": ShadowBook(Decimal(1), Decimal(0)), "candidate": book}
    orch._judge_shadow()
    assert orch.versions.get(orch.live_ai_id)["status"] == "rejected"  # type: ignore[arg-type]
    assert "not a number" in orch.versions.get(orch.live_ai_id)["reason"]  # type: ignore[arg-type]


# -- budgets ------------------------------------------------------------------------------------
def _client(tmp_path: Path, interactions: list[dict[str, Any]], *, retries: int,
            day_clock: Any = None, **settings: Any) -> tuple[ModelClient, RecordedTransport]:
    ledger = _ledger(tmp_path)
    with ledger.transaction():
        ledger.insert("orchestrator_cycles", {"cycle_id": "c1", "slot": "ma_cross",
                                              "started_ns": 0, "status": "running"})
    transport = RecordedTransport({"interactions": interactions})
    sdk = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=retries,
                              http_client=httpx2.Client(transport=transport))
    return ModelClient(_settings(**settings), ledger, sdk, day_clock=day_clock,
                       clock=lambda: 1_700_000_000_000_000_000), transport


def test_the_sdks_retries_are_cut_to_the_budgets_room(tmp_path: Path) -> None:
    """Room for one attempt in the cycle (1,500 tokens, 1,021 a worst case): two timed-out
    attempts and the retry's answer spent 2,057, each attempt charged as it must be."""
    client, transport = _client(tmp_path, [TIMED_OUT, TIMED_OUT, _answer()], retries=2,
                                max_tokens_generate=1000, max_tokens_review=1000,
                                budget={"cycle_max_tokens": 1500})
    with pytest.raises(OrchestratorError, match=r"retries cut to 0 of 2"):
        _call(client)
    assert transport.position == 1
    spent, _ = client.spool.cycle_totals("c1")
    assert spent == estimate_tokens("sys" + "improve it") + 1000 <= 1500

    roomy, transport = _client(tmp_path / "roomy", [TIMED_OUT, TIMED_OUT, _answer()],
                               retries=2)
    assert _call(roomy).text == "the retry's answer" and transport.position == 3
    # A huge (finite) budget is no quotient to compute: every retry fits.
    huge, transport = _client(tmp_path / "huge", [TIMED_OUT, _answer()], retries=1,
                              budget={"cycle_max_cost_usd": "1e400",
                                      "day_max_cost_usd": "1e400",
                                      "day_max_tokens": 10**30})
    assert _call(huge).text == "the retry's answer" and transport.position == 2


def test_a_live_transports_day_is_the_real_day(tmp_path: Path) -> None:
    """The day a call counts against follows ``day_clock`` (the session passes the wall
    clock for a live transport), not the replay's clock."""
    day_ns = 1_800_000_000_000_000_000
    client, _ = _client(tmp_path, [_answer()], retries=0, day_clock=lambda: day_ns)
    _call(client)
    assert client.spool.day_totals("2027-01-15")[0] == 15  # the wall clock's day
    assert client.spool.day_totals("2023-11-14") == (0, Decimal(0))  # not the replay's


@pytest.mark.parametrize(("orchestrator", "said"), [
    ({"max_retries": 11}, "max_retries = 11 is outside the allowed range [0, 10]"),
])
def test_budget_settings_that_cannot_hold_are_refused(orchestrator: dict[str, Any],
                                                       said: str) -> None:
    with pytest.raises(ConfigError, match=said.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)").replace("]", r"\]")):
        _settings(**orchestrator)


def test_cycles_count_the_whole_run(tmp_path: Path) -> None:
    """``--cycles 2`` on a resumed run that has run two cycles starts none (it started two
    more per process)."""
    ledger = _ledger(tmp_path)
    with ledger.transaction():
        for n in (1, 2):
            ledger.insert("orchestrator_cycles", {"cycle_id": f"cycle-000{n}",
                                                  "slot": "ma_cross", "started_ns": n,
                                                  "status": "done"})
    store = VersionStore(ledger)
    seed = store.add(slot="ma_cross", source="# seed\n", parent_id=None, status="full",
                     reason="seed")
    said: list[str] = []
    orch = Orchestrator(_settings(first_cycle_after_events=0), store, None,  # type: ignore[arg-type]
                        incumbent_id=seed, incumbent_source="# seed\n",
                        build=lambda source: types.SimpleNamespace(),  # type: ignore[arg-type,return-value]
                        max_cycles=2, blocking=True, echo=said.append)
    orch.attach(_Runner())
    orch.resume_from_ledger()
    assert orch.cycles_done == 2 and not orch._may_start_cycle()
    assert any("--cycles counts the whole run" in line for line in said)
    orch.max_cycles = 3
    assert orch._may_start_cycle()
    orch.close()


# -- the trusted incumbent's proving ------------------------------------------------------------
@pytest.mark.usefixtures("gated")
def test_a_cycle_never_runs_the_trusted_strategy_trading_in_the_slot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``seed_source``: the seed is the installed ``ma_cross``, the object trading in
    the slot.  Before: the cycle's proving backtest ran that object on the proving window
    (October), and the live strategy's closes were October's when the loop went on in
    December (in paper and live, while the loop called it on the other thread)."""
    answer = "Hold.\n\n```python\n" + BUY_AND_HOLD + "```\n"
    review = json.dumps({"verdict": "approve", "reasons": ["follows the contract"]})
    config = _live_config(tmp_path, mode="replay", start="2020-12-01", end="2020-12-05",
                          cassette=[_message(1, answer), _message(2, review)],
                          orchestrator="""
first_cycle_after_events = 30
min_trades = 0
lab_gates = false

[plugins.orchestrator.backtest]
"plugins.gated.start" = "2020-10-01"
"plugins.gated.end" = "2020-11-01"
""")
    config.write_text(config.read_text().replace("seed_source = ", "# seed_source = "))
    seen: dict[str, Any] = {}
    real_run, real_attach = CycleRunner.run, Orchestrator.attach

    def attach(orch: Orchestrator, runner: Any) -> None:
        seen["runner"] = runner
        real_attach(orch, runner)

    def run(cycles: CycleRunner, cycle_id: str, **kwargs: Any) -> Any:
        live = seen["runner"].asm.strategies["ma_cross"].inner
        seen["before"] = live.get_state()
        try:
            return real_run(cycles, cycle_id, **kwargs)
        finally:
            seen["after"] = live.get_state()

    monkeypatch.setattr(Orchestrator, "attach", attach)
    monkeypatch.setattr(CycleRunner, "run", run)
    said: list[str] = []
    run_orchestrated(config, run_dir=tmp_path / "run", max_cycles=1, echo=said.append)
    assert any("[cycle-0001] deploy" in line for line in said), said  # it was proven
    assert seen["before"]["closes"] and seen["after"] == seen["before"]


#: The child of the test below: runs the example, killing itself at the event after the
#: one that collected its first cycle.  (A fresh interpreter, not a fork: libgomp ends a
#: forked child of a process that has used OpenMP, as a pytest worker may have.)
_KILLED_AFTER_THE_CYCLE = """
import os, signal, sys
from pathlib import Path
from argus_orchestrator.ladder import Orchestrator
from argus_orchestrator.session import run_orchestrated

collected = []
real_finish, real_before = Orchestrator._finish_cycle, Orchestrator.before_event

def finish(orch, result):
    real_finish(orch, result)
    collected.append(orch.events)

def before(orch, event, ctx):
    if collected and orch.events > collected[0]:
        os.kill(os.getpid(), signal.SIGKILL)
    real_before(orch, event, ctx)

Orchestrator._finish_cycle, Orchestrator.before_event = finish, before
run_orchestrated(Path(sys.argv[1]), run_dir=Path(sys.argv[2]), max_cycles=1,
                 echo=lambda _: None)
"""


@pytest.mark.slow
def test_a_replays_model_calls_are_durable_once_its_cycle_is_collected(tmp_path: Path) -> None:
    """The example (a replay: its cycle writes through the loop's connection) is killed at
    the event after its first cycle's.  Before: the loop commits every 500 events, so the
    cycle's two model calls, its budget row and the cycle itself were gone, and a resumed
    run made (with a live transport: paid for) the same cycle again, its budgets blind
    to the first.  (About 75 s: the example's cycle runs the lab's gates.)"""
    example = Path(__file__).parents[4] / "examples" / "orchestrator" / "orchestrate.toml"
    run_dir = tmp_path / "run"
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_AFTER_THE_CYCLE)
    done = subprocess.run([sys.executable, str(script), str(example), str(run_dir)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    with Ledger.in_dir(run_dir) as ledger:
        assert ledger.query("select count(*) as n from thoughts")[0]["n"] == 2
        assert ledger.query("select calls from budgets")[0]["calls"] == 2
        assert ledger.query("select count(*) as n from orchestrator_cycles")[0]["n"] == 1
