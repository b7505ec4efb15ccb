"""Third red team of the budgets and the watchdog (items left by the earlier ones).

Each test names what it found before the fix: settings that could never hold (a poll
cadence of 10**12, a day budget smaller than one call), a canary promoted on no
evidence, the watchdog's losing-exit count and a failed rollback forgotten at a restart,
and a replay's spend lost when the process stopped in the middle of a cycle.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import sys
import threading
import time
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from argus_orchestrator import ladder
from argus_orchestrator.ladder import Orchestrator
from argus_orchestrator.llm import ModelClient
from argus_orchestrator.session import run_orchestrated
from argus_orchestrator.versions import VersionStore
from test_heldout2_orchestrator import _ledger, _Runner, _settings
from test_orchestrator_live_control import (
    BUY_AND_HOLD,
    _message,
    gated,  # noqa: F401  (a fixture, used by name)
)
from test_orchestrator_live_control import _config as _live_config

from argus_core import ConfigError, Ledger, Portfolio, Position

#: argus_orchestrator.config.MAX_POLL_EVERY_EVENTS (written out: the test ran before it was)
MAX_POLL_EVERY_EVENTS = 10_000


# -- settings that can never hold ---------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -1, MAX_POLL_EVERY_EVENTS + 1, 10**12])
def test_poll_every_events_is_bounded(value: int) -> None:
    """10**12 was accepted: a person's rollback was never read in the run."""
    said = (f"poll_every_events = {value} is outside the allowed range "
            f"[1, {MAX_POLL_EVERY_EVENTS}]")
    with pytest.raises(ConfigError, match=re.escape(said)):
        _settings(poll_every_events=value)


def test_poll_every_events_at_its_bounds_is_accepted() -> None:
    assert _settings(poll_every_events=1).poll_every_events == 1
    assert _settings(poll_every_events=MAX_POLL_EVERY_EVENTS).poll_every_events \
        == MAX_POLL_EVERY_EVENTS


@pytest.mark.parametrize(("settings", "said"), [
    ({"budget": {"day_max_tokens": 5000}},
     "max_tokens_generate (8000) exceeds budget.day_max_tokens (5000): no day could pay"),
    ({"max_tokens_generate": 1000, "budget": {"day_max_tokens": 1200},
      "max_tokens_review": 1500},
     "max_tokens_review (1500) exceeds budget.day_max_tokens (1200)"),
])
def test_a_day_budget_smaller_than_one_call_is_refused(settings: dict[str, Any],
                                                       said: str) -> None:
    """Accepted before: every cycle of every day failed on its budget, unseen at start."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        _settings(**settings)


def test_a_day_budget_that_holds_one_call_is_accepted() -> None:
    settings = _settings(budget={"day_max_tokens": 8000, "cycle_max_tokens": 8000})
    assert settings.budget.day_max_tokens == 8000


# -- the watchdog across a restart ---------------------------------------------------------------
def _look(orch: Orchestrator, held: dict[str, tuple[str, str]], fees: str) -> None:
    """One monitor look at a book with ``held`` {instrument: (quantity, realised)}."""
    positions = {iid: Position(iid, Decimal(q), Decimal(100), Decimal(r))
                 for iid, (q, r) in held.items()}
    portfolio = Portfolio(Decimal(10_000), positions, {iid: Decimal(100) for iid in held},
                          Decimal(fees))
    orch._monitor(types.SimpleNamespace(portfolio=portfolio))  # type: ignore[arg-type]


def _resumed(ledger: Ledger, ai: str, **ladder: Any) -> tuple[Orchestrator, list[str]]:
    """A resumed orchestrator over ``ledger`` trading ``ai``, its rollbacks recorded."""
    orch = Orchestrator(_settings(ladder=ladder), VersionStore(ledger, clock=lambda: 20),
                        None, incumbent_id=ai, incumbent_source="# ai\n",  # type: ignore[arg-type]
                        build=lambda source: types.SimpleNamespace(),  # type: ignore[arg-type,return-value]
                        max_cycles=0, blocking=True)
    orch.attach(_Runner())
    orch.resume_from_ledger()
    rollbacks: list[str] = []
    setattr(orch, "rollback", rollbacks.append)  # noqa: B010  (a method replaced)
    return orch, rollbacks


def _two_versions(ledger: Ledger) -> tuple[str, str]:
    store = VersionStore(ledger, clock=lambda: 10)
    seed = store.add(slot="ma_cross", source="# seed\n", parent_id=None, status="retired",
                     reason="seed")
    ai = store.add(slot="ma_cross", source="# ai\n", parent_id=seed, status="candidate",
                   reason="proven")
    store.set_status(ai, "full", "swapped in")
    return seed, ai


def test_a_resumed_run_keeps_the_count_of_losing_exits(tmp_path: Path) -> None:
    """Two losing exits (net of fees), a restart, one more: a trigger of 3 fires.  Before,
    the count started at 0 at every restart (as the drawdown peak once did), so a version
    restarted often enough was never rolled back for its losses."""
    ledger = _ledger(tmp_path)
    _, ai = _two_versions(ledger)
    first, rollbacks = _resumed(ledger, ai, rollback_consecutive_losses=3)
    _look(first, {}, "0")
    _look(first, {"X": ("1", "0")}, "1")
    _look(first, {"X": ("0", "-1")}, "2")  # exit: -1 and 2 in fees
    _look(first, {"X": ("1", "-1")}, "3")
    _look(first, {"X": ("0", "-2")}, "4")  # exit
    _look(first, {"X": ("1", "-2")}, "5")  # an entry, its fee paid: then the restart
    assert first.monitor_losses == 2 and not rollbacks
    first.close()
    second, rollbacks = _resumed(ledger, ai, rollback_consecutive_losses=3)
    assert second.monitor_losses == 2
    _look(second, {"X": ("1", "-2")}, "5")  # the books as the checkpoint left them
    _look(second, {"X": ("0", "-2")}, "6")  # closed at its entry: only the fees moved
    assert second.monitor_losses == 3
    assert rollbacks == ["3 consecutive losing exits (net of fees)"]
    second.close()


def test_a_restart_does_not_read_another_versions_count(tmp_path: Path) -> None:
    """The count stored for one version is not the next one's (a swap starts it afresh)."""
    ledger = _ledger(tmp_path)
    seed, ai = _two_versions(ledger)
    first, _ = _resumed(ledger, ai, rollback_consecutive_losses=5)
    _look(first, {"X": ("1", "0")}, "1")
    _look(first, {"X": ("0", "-1")}, "2")
    assert first.monitor_losses == 1
    first.close()
    store = VersionStore(ledger, clock=lambda: 30)
    other = store.add(slot="ma_cross", source="# other\n", parent_id=seed,
                      status="candidate", reason="proven")
    store.set_status(other, "full", "swapped in")
    second, _ = _resumed(ledger, other, rollback_consecutive_losses=5)
    assert second.monitor_losses == 0
    second.close()


# -- a replay stopped in the middle of a cycle ----------------------------------------------------
@pytest.mark.usefixtures("gated")
def test_a_replay_stopped_during_its_cycle_keeps_the_cycles_spend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (a second one, or SIGTERM twice: KeyboardInterrupt in the loop's thread)
    arrives while the cycle's generate call has been made and paid.  Before: the loop
    rolled back its open transaction, which held the call's spool and budget rows; the
    resumed run's day budget did not count it, and it made the same cycle (``cycle-0001``)
    again.  Now the call is written again once the loop has rolled back, the cycle is
    recorded as failed, and the cycle makes no call after the interrupt."""
    answer = "Hold.\n\n```python\n" + BUY_AND_HOLD + "```\n"
    review = json.dumps({"verdict": "approve", "reasons": ["follows the contract"]})
    config = _live_config(tmp_path, mode="replay", start="2020-12-01", end="2020-12-05",
                          cassette=[_message(1, answer), _message(2, review)],
                          orchestrator="first_cycle_after_events = 30\nlab_gates = false")
    paid = threading.Event()
    real_call, real_futures = ModelClient.call, concurrent.futures

    def call(client: ModelClient, **kwargs: Any) -> Any:
        reply = real_call(client, **kwargs)
        paid.set()
        for _ in range(1000):  # the interrupt lands before the next call (as it may)
            if getattr(client, "stopping", False):
                break
            time.sleep(0.01)
        return reply

    waits: list[int] = []

    def interrupted(futures: Any) -> Any:
        waits.append(1)
        if len(waits) > 1:  # the orchestrator's wait for the call in flight
            return real_futures.wait(futures)
        assert paid.wait(60)
        raise KeyboardInterrupt

    monkeypatch.setattr(ModelClient, "call", call)
    monkeypatch.setattr(ladder, "concurrent", types.SimpleNamespace(futures=types.SimpleNamespace(
        wait=interrupted, ThreadPoolExecutor=real_futures.ThreadPoolExecutor,
        Future=real_futures.Future)))
    with pytest.raises(KeyboardInterrupt):
        run_orchestrated(config, run_dir=tmp_path / "run", max_cycles=1,
                         echo=lambda _: None)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        thoughts = ledger.query("select purpose, input_tokens + output_tokens as n "
                                "from thoughts")
        budget = ledger.query("select calls, tokens from budgets")
        cycles = ledger.query("select cycle_id, status, outcome, reason, tokens "
                              "from orchestrator_cycles")
    assert [t["purpose"] for t in thoughts] == ["generate"], thoughts  # no review after it
    assert budget == [{"calls": 1, "tokens": thoughts[0]["n"]}], budget
    assert [(c["cycle_id"], c["outcome"], c["tokens"]) for c in cycles] == [
        ("cycle-0001", "failed", thoughts[0]["n"])], cycles
    assert cycles[0]["reason"] == "the process stopped during the cycle"
