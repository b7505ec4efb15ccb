"""Second held-out audit of the orchestrator's cycle, budget and hot-swap path.

Was (each failed before its fix):

* ``[plugins.orchestrator] backtest`` overrides of a *plugin's* table
  (``plugins.replay.strat``, a start that is no date, a plugin not loaded) were accepted
  at start: ``[plugins.X]`` tables are free-form to the core's config, so only the first
  cycle's proving backtest refused them, hours into the run, and every cycle after it;
* an answer that came after the client's timeout was charged nothing: the server did
  (and billed) the work, so a timed-out call, or one timed-out attempt before the SDK's
  retry was answered (a new request: the SDK sends no idempotency key), lifted the day's
  budget by what it cost;
* a rollback while a paper/live cycle ran set the ladder idle and never read that
  cycle's result: a second cycle started beside the first at the next tick, and the
  first one's candidate, proven against the rolled-back version, stayed ``candidate``
  ("passed the gates") for ever.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from argus_orchestrator import plugin as orchestrator_plugin
from argus_orchestrator.config import orchestrator_settings
from argus_orchestrator.cycle import CycleResult
from argus_orchestrator.errors import OrchestratorError
from argus_orchestrator.ladder import Orchestrator
from argus_orchestrator.llm import ModelClient, estimate_tokens
from argus_orchestrator.transport import RecordedTransport
from argus_orchestrator.versions import VersionStore

from argus_core import Bar, ConfigError, Ledger, Migrations, TradingState
from argus_core.config import parse_config

ROOT = Path(__file__).parents[4]
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
MODEL = "claude-opus-5-5"
DAY = "2023-11-14"  # the day of the clock below


def _settings(**orchestrator: Any) -> Any:
    return orchestrator_settings(parse_config({
        "run": {"venue": "replay", "strategies": ["ma_cross"]},
        "plugins": {"replay": {"bars_csv": str(BARS), "symbol": "BTC/USD",
                               "start": "2022-01-01", "end": "2022-01-02"},
                    "orchestrator": {"transport": "recorded:x", **orchestrator}}}))


def _ledger(tmp_path: Path) -> Ledger:
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    return Ledger(tmp_path / "argus.db", migrations)


# -- configuration --------------------------------------------------------------------------
@pytest.mark.parametrize(("override", "said"), [
    ({"plugins.replay.strat": "2021-12-20"}, "unknown key(s) (strat) @ plugins.replay"),
    ({"plugins.replay.start": "notadate"}, "is not an ISO date"),
    ({"plugins.nosuch.x": 1}, "[plugins.nosuch] configures a plugin that is not loaded"),
])
def test_backtest_overrides_of_a_plugin_table_are_checked_at_start(
        override: dict[str, Any], said: str) -> None:
    """Before: all three were accepted by ``orchestrator_settings`` (the start) and raised
    only in the first cycle's proving backtest."""
    with pytest.raises(ConfigError) as caught:
        _settings(backtest=override)
    message = str(caught.value)
    assert said in message and "plugins.orchestrator.backtest" in message, message
    assert _settings(backtest={"plugins.replay.start": "2021-12-20"}).backtest  # good: kept


# -- an answer after the timeout --------------------------------------------------------------
def _answer() -> dict[str, Any]:
    return {"response": {"status": 200, "json": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "the retry's answer"}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5}}}}


TIMED_OUT = {"response": {"timeout": True}}


def _model(tmp_path: Path, interactions: list[dict[str, Any]], retries: int
           ) -> tuple[ModelClient, Ledger]:
    ledger = _ledger(tmp_path)
    with ledger.transaction():
        ledger.insert("orchestrator_cycles", {"cycle_id": "c1", "slot": "ma_cross",
                                              "started_ns": 0, "status": "running"})
    sdk = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=retries,
                              http_client=httpx2.Client(transport=RecordedTransport(
                                  {"interactions": interactions})))
    client = ModelClient(_settings(), ledger, sdk, clock=lambda: 1_700_000_000_000_000_000)
    return client, ledger


def _call(client: ModelClient) -> Any:
    return client.call(cycle_id="c1", purpose="generate", model=MODEL, system="sys",
                       prompt="improve it", max_tokens=1000)


def test_an_answer_after_the_timeout_is_charged_its_worst_case_once(tmp_path: Path) -> None:
    """Before: the timed-out call's row was charged 0 tokens and $0 (the day's totals
    unchanged), and a timed-out attempt before an answered retry was not charged at all;
    the server had billed both."""
    settings = _settings()
    worst_in = estimate_tokens("sys" + "improve it")
    worst = settings.cost(MODEL, worst_in, 1000)
    answered = settings.cost(MODEL, 10, 5)

    client, ledger = _model(tmp_path / "a", [TIMED_OUT, _answer()], retries=0)
    with pytest.raises(OrchestratorError, match=r"timed out.*1 attempt"):
        _call(client)
    (row,) = ledger.query("select * from thoughts")
    assert row["status"] == "error" and row["response_text"] is None  # nothing applied
    assert client.spool.day_totals(DAY) == (worst_in + 1000, worst)

    client, ledger = _model(tmp_path / "b", [TIMED_OUT, _answer()], retries=1)
    reply = _call(client)
    assert reply.text == "the retry's answer" and reply.cost_usd == answered
    rows = ledger.query("select status, cost_usd from thoughts order by seq")
    assert [(r["status"], Decimal(r["cost_usd"])) for r in rows] == [
        ("error", worst), ("ok", answered)]
    assert client.spool.day_totals(DAY) == (worst_in + 1000 + 15, worst + answered)


# -- a rollback while a cycle runs ------------------------------------------------------------
class _SlowCycles:
    """A cycle runner whose cycle waits for the test, then proves a candidate."""

    def __init__(self, store: VersionStore) -> None:
        self.store = store
        self.gate = threading.Event()
        self.asked: list[tuple[str, str]] = []
        self.feedback: list[str] = []

    def run(self, cycle_id: str, **kw: Any) -> CycleResult:
        self.asked.append((cycle_id, kw["incumbent_id"]))
        self.gate.wait(10)
        source = f"# proven in {cycle_id}\n"
        candidate = self.store.add(slot="ma_cross", source=source,
                                   parent_id=kw["incumbent_id"], status="candidate",
                                   reason="passed the gates")
        return CycleResult(cycle_id, "deploy", "passed", candidate, source, {})


class _Runner:
    """The runner's surface the orchestrator uses between events."""

    def __init__(self) -> None:
        state = types.SimpleNamespace(get_state=dict)
        self.asm = types.SimpleNamespace(strategies={"ma_cross": state})
        self.trading_state = TradingState.ACTIVE
        self.risk_trigger_listeners: list[Any] = []
        self.versions: dict[str, str] = {}

    def set_trading_state(self, state: TradingState, reason: str = "") -> None:
        self.trading_state = state

    def request_commit(self) -> None:
        pass

    def request_swap(self, slot: str, strategy: Any, version_id: str
                     ) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        future.set_result(None)
        return future


def test_a_cycle_running_across_a_rollback_is_collected_and_its_candidate_rejected(
        tmp_path: Path) -> None:
    """Before: after the rollback and a person's resume, the next tick started cycle 2
    while cycle 1 still ran, and cycle 1's candidate (proven against the rolled-back
    version) was never read: ``candidate``, "passed the gates", for ever."""
    ledger = _ledger(tmp_path)
    store = VersionStore(ledger)
    seed = store.add(slot="ma_cross", source="# seed\n", parent_id=None, status="retired",
                     reason="seed")
    ai = store.add(slot="ma_cross", source="# ai\n", parent_id=seed, status="full",
                   reason="swapped in")
    cycles = _SlowCycles(store)
    orch = Orchestrator(_settings(first_cycle_after_events=1, cycle_every_events=1), store,
                        cycles, incumbent_id=ai, incumbent_source="# ai\n",  # type: ignore[arg-type]
                        build=lambda source: types.SimpleNamespace(get_state=dict),  # type: ignore[arg-type,return-value]
                        max_cycles=None, blocking=False)
    runner = _Runner()
    orch.attach(runner)
    orch.live_ai_id = ai
    ctx: Any = types.SimpleNamespace(ts_ns=1, portfolio=types.SimpleNamespace(
        equity=Decimal(100), positions={}))
    bar = Bar(instrument_id="replay:BTC/USD", ts_ns=1, open=1, high=1, low=1, close=1,
              volume=1)
    try:
        orch.before_event(bar, ctx)
        assert orch.stage == "cycle"
        orch.rollback("risk trigger: the AI incumbent failed")  # while cycle 1 runs
        runner.trading_state = TradingState.ACTIVE  # a person's 'argus resume'
        orch.before_event(bar, ctx)
        assert orch.cycles_done == 1  # no second cycle beside the first
        cycles.gate.set()
        deadline = time.monotonic() + 10
        while orch._future is not None and time.monotonic() < deadline:
            if orch._future.done():
                orch.before_event(bar, ctx)
            time.sleep(0.01)
        assert cycles.asked == [("cycle-0001", ai)]
        (candidate,) = [r for r in store.list() if r["parent_id"] == ai]
        assert candidate["status"] == "rejected" and "stale" in candidate["reason"]
        assert orch.stage == "idle" and orch.candidate_id is None
    finally:
        cycles.gate.set()
        orch.close()
