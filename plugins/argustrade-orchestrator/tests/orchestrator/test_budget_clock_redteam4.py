"""Fourth red team of the budgets and the cycle scheduler: the run folder a run leaves,
cost budgets smaller than one call, the wall clock stepping under the day budget, and a
stop while the SDK retries a call.

Each test names what it found before the fix:

* every run left ``argus.db-wal`` and ``argus.db-shm`` beside ``argus.db`` (the persons'
  request reader was still open when the runner closed its ledger, so that close could
  not checkpoint; a read-only connection closing last cannot remove them);
* ``budget.cycle_max_cost_usd = 0.01`` was accepted beside an 8000-token generate call
  whose output alone costs $0.16: every cycle failed on its budget, unseen at start;
* the day budget of a live transport followed the wall clock as it was: an NTP step back
  over midnight reopened the day before, and a step forward began the next day early
  (either way a second day's budget within the hour);
* a stop (Ctrl-C, SIGTERM) while the SDK retried a call let it send every retry left
  (up to 11 attempts of ``timeout_s`` each at the limits, each maybe billed).
"""

from __future__ import annotations

import os
import re
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from argus_orchestrator import OrchestratorError
from argus_orchestrator.config import DEFAULT_PRICES
from argus_orchestrator.llm import ModelClient, SteadyWallClock
from argus_orchestrator.session import run_orchestrated
from argus_orchestrator.spool import Thought, ThoughtSpool
from argus_orchestrator.transport import RecordedTransport
from test_heldout2_orchestrator import _ledger, _settings
from test_orchestrator_live_control import _config as _live_config
from test_orchestrator_live_control import (
    _message,
    gated,  # noqa: F401  (a fixture, used by name)
)

from argus_core import ConfigError

DAY_NS = 86_400 * 10**9
#: 2024-03-01T23:59:00Z and the midnight after it.
BEFORE_MIDNIGHT = 1_709_337_540 * 10**9
MIDNIGHT = 1_709_337_600 * 10**9


# -- the run folder ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["replay", "paper"])
def test_a_whole_run_leaves_no_wal_beside_the_ledger(tmp_path: Path, mode: str,
                                                     gated: Any) -> None:  # noqa: F811  (the fixture)
    """Before: ``argus.db-wal`` and ``argus.db-shm`` stayed in every run folder whose
    last close was the request reader's (a run without a cycle here: a replay's cycle
    happened to remove them when the session wrote its spool again)."""
    config = _live_config(tmp_path, mode=mode, start="2022-01-01", end="2022-01-03",
                          cassette=[], poll="")
    run_dir = tmp_path / "run"
    run_orchestrated(config, run_dir=run_dir, max_cycles=0, echo=lambda _: None)
    left = sorted(os.listdir(run_dir))
    assert not [name for name in left if name.endswith(("-wal", "-shm"))], left
    assert "argus.db" in left


# -- cost budgets smaller than one call -------------------------------------------------------
#: The default models' output alone at their default max_tokens: generate 8000 tokens of
#: claude-opus-5-5 at $20 per million, review 1500 of claude-sonnet-5-5 at $10.
SMALLEST_DEFAULT_BUDGET = "0.16"


@pytest.mark.parametrize(("settings", "said"), [
    ({"budget": {"cycle_max_cost_usd": "0.01"}},
     "budget.cycle_max_cost_usd ($0.01) is less than one call of max_tokens_generate (8000) "
     "at claude-opus-5-5's output price ($20 per million tokens): $0.16 of output alone; no "
     "cycle could pay for that call"),
    ({"budget": {"day_max_cost_usd": "0.159"}},
     "budget.day_max_cost_usd ($0.159) is less than one call of max_tokens_generate (8000)"),
    # the review call too, at the review model's own price
    ({"max_tokens_generate": 100, "budget": {"cycle_max_cost_usd": "0.01"}},
     "budget.cycle_max_cost_usd ($0.01) is less than one call of max_tokens_review (1500) "
     "at claude-sonnet-5-5's output price ($10 per million tokens): $0.015"),
    # the configured prices are the ones held to
    ({"prices": {"claude-opus-5-5": ["1", "1000"]}, "budget": {"cycle_max_cost_usd": "7"}},
     "budget.cycle_max_cost_usd ($7) is less than one call of max_tokens_generate (8000) "
     "at claude-opus-5-5's output price ($1000 per million tokens): $8"),
])
def test_a_cost_budget_smaller_than_one_call_is_refused(settings: dict[str, Any],
                                                        said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        _settings(**settings)


def test_the_smallest_cost_budget_that_holds_one_call_is_accepted() -> None:
    assert DEFAULT_PRICES["claude-opus-5-5"][1] * 8000 / 1_000_000 == \
        Decimal(SMALLEST_DEFAULT_BUDGET)
    budget = _settings(budget={"cycle_max_cost_usd": SMALLEST_DEFAULT_BUDGET,
                               "day_max_cost_usd": SMALLEST_DEFAULT_BUDGET}).budget
    assert str(budget.cycle_max_cost_usd) == str(budget.day_max_cost_usd) == "0.16"
    # free models hold any positive budget
    free = _settings(prices={"claude-opus-5-5": ["0", "0"], "claude-sonnet-5-5": ["0", "0"]},
                     budget={"cycle_max_cost_usd": "0.0001"})
    assert str(free.budget.cycle_max_cost_usd) == "0.0001"


# -- the wall clock stepping under the day budget ---------------------------------------------
class _Clocks:
    """A wall clock that a test steps, and a steady clock that only moves forward."""

    def __init__(self, wall_ns: int) -> None:
        self.wall_ns, self.steady_ns = wall_ns, 5 * 10**9

    def elapse(self, seconds: float) -> None:
        self.wall_ns += int(seconds * 1e9)
        self.steady_ns += int(seconds * 1e9)

    def step(self, seconds: float) -> None:  # NTP steps the wall clock only
        self.wall_ns += int(seconds * 1e9)


def _day_of(client: ModelClient) -> str:
    return client._day()


def _client(tmp_path: Path, clocks: _Clocks, **settings: Any) -> ModelClient:
    client = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=0,
                                 http_client=httpx2.Client(transport=RecordedTransport(
                                     {"interactions": []})))
    return ModelClient(_settings(**settings), _ledger(tmp_path), client, clock=lambda: 1,
                       day_clock=SteadyWallClock(lambda: clocks.wall_ns,
                                                 lambda: clocks.steady_ns))


def test_a_step_back_over_midnight_does_not_reopen_the_day_before(tmp_path: Path) -> None:
    """Before: at 00:00:30 an NTP step back of a minute charged the calls to the day
    before again, with what was left of its budget."""
    clocks = _Clocks(BEFORE_MIDNIGHT)
    model = _client(tmp_path, clocks)
    assert _day_of(model) == "2024-03-01"
    clocks.elapse(90)  # 00:00:30
    assert _day_of(model) == "2024-03-02"
    clocks.step(-60)
    assert _day_of(model) == "2024-03-02"
    clocks.step(-DAY_NS / 1e9)  # a whole day back: still the day it is
    assert _day_of(model) == "2024-03-02"


def test_a_step_forward_does_not_begin_the_next_day_early(tmp_path: Path) -> None:
    """Before: a step forward of an hour at 23:30 began the next day (a second day's
    budget half an hour early)."""
    clocks = _Clocks(BEFORE_MIDNIGHT - 29 * 60 * 10**9)  # 23:30
    model = _client(tmp_path, clocks)
    assert _day_of(model) == "2024-03-01"
    clocks.step(3600)
    assert _day_of(model) == "2024-03-01"
    clocks.elapse(29 * 60)  # 23:59 of elapsed time
    assert _day_of(model) == "2024-03-01"
    clocks.elapse(120)  # and the day turns when 24 hours have elapsed, not before
    assert _day_of(model) == "2024-03-02"


def test_a_step_back_leaves_the_day_budget_spent(tmp_path: Path) -> None:
    """The budget itself: the day's spend still counts after a step back over midnight
    (before, the call was checked against the day before's totals)."""
    clocks = _Clocks(MIDNIGHT + 30 * 10**9)
    model = _client(tmp_path, clocks, max_tokens_generate=100, max_tokens_review=100,
                    budget={"day_max_tokens": 1000})
    model.spool.record(_spent(950), day=_day_of(model))
    clocks.step(-60)
    with pytest.raises(OrchestratorError, match=r"day tokens 950 \+ up to \d+ > 1000"):
        model.call(cycle_id="c1", purpose="generate", model="claude-opus-5-5", system="s",
                   prompt="p", max_tokens=100)


def _spent(tokens: int) -> Thought:
    return Thought(thought_id="c0-01-generate", cycle_id="c0", seq=1, purpose="generate",
                   model="claude-opus-5-5", system_prompt="s", prompt="p",
                   response_text="x", response_json=None, stop_reason="end_turn",
                   input_tokens=tokens, output_tokens=0, cost_usd=Decimal(0), status="ok",
                   error=None, request_id=None, ts_ns=1)


def test_the_steady_clock_reads_the_wall_clock_once() -> None:
    clocks = _Clocks(MIDNIGHT)
    clock = SteadyWallClock(lambda: clocks.wall_ns, lambda: clocks.steady_ns)
    assert clock() == MIDNIGHT
    clocks.elapse(1)
    clocks.step(-3600)
    assert clock() == MIDNIGHT + 10**9
    # a steady clock that went back (it never does) moves nothing back
    clocks.steady_ns -= 10 * 10**9
    assert clock() == MIDNIGHT


def test_the_real_steady_clock_moves_with_elapsed_time() -> None:
    clock = SteadyWallClock()
    first = clock()
    assert abs(first - time.time_ns()) < 5 * 10**9
    time.sleep(0.01)
    assert clock() - first >= 10**7


# -- a stop while the SDK retries a call --------------------------------------------------------
def test_a_stop_during_a_call_sends_no_more_retries(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """max_retries at its limit (10): the run stops while the first attempt is in flight
    (it times out).  Before, the SDK sent the 10 retries left, each charged its worst
    case; now none is sent, the call fails at once, charged for the one attempt."""
    from anthropic import _base_client

    monkeypatch.setattr(_base_client.time, "sleep", lambda _s: None)  # the SDK's back-off
    holder: dict[str, ModelClient] = {}

    class StopOnFirst(RecordedTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            if not self.requests:
                holder["model"].stop()  # Ctrl-C while the first attempt is in flight
            return super().handle_request(request)

    transport = StopOnFirst({"interactions": [
        {"response": {"timeout": True}} for _ in range(11)]})
    client = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=10,
                                 http_client=httpx2.Client(transport=transport))
    settings = _settings(max_retries=10, max_tokens_generate=100,
                         budget={"cycle_max_tokens": 10**6, "day_max_tokens": 10**6})
    model = ModelClient(settings, _ledger(tmp_path), client, clock=lambda: 1)
    holder["model"] = model
    with pytest.raises(OrchestratorError, match="the run is stopping"):
        model.call(cycle_id="c1", purpose="generate", model="claude-opus-5-5", system="s",
                   prompt="p", max_tokens=100)
    assert len(transport.requests) == 1, transport.requests
    (row,) = ThoughtSpool(model.spool.ledger).thoughts("c1")
    assert row["status"] == "error" and "1 attempt(s) unanswered" in row["error"]
    assert row["output_tokens"] == 100  # the one attempt sent, charged its worst case


def test_a_call_not_stopped_still_retries_to_its_limit(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard's other side: without a stop, all 11 attempts are sent and charged."""
    from anthropic import _base_client

    monkeypatch.setattr(_base_client.time, "sleep", lambda _s: None)
    transport = RecordedTransport({"interactions": [
        {"response": {"timeout": True}} for _ in range(11)]})
    client = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=10,
                                 http_client=httpx2.Client(transport=transport))
    settings = _settings(max_retries=10, max_tokens_generate=100,
                         budget={"cycle_max_tokens": 10**6, "day_max_tokens": 10**6})
    model = ModelClient(settings, _ledger(tmp_path), client, clock=lambda: 1)
    with pytest.raises(OrchestratorError, match="APITimeoutError"):
        model.call(cycle_id="c1", purpose="generate", model="claude-opus-5-5", system="s",
                   prompt="p", max_tokens=100)
    assert len(transport.requests) == 11
    (row,) = ThoughtSpool(model.spool.ledger).thoughts("c1")
    assert "11 attempt(s) unanswered" in row["error"] and row["output_tokens"] == 1100


def test_a_stop_between_two_calls_makes_no_call(tmp_path: Path) -> None:
    transport = RecordedTransport({"interactions": [_message(1, "x")]})
    client = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=0,
                                 http_client=httpx2.Client(transport=transport))
    model = ModelClient(_settings(), _ledger(tmp_path), client, clock=lambda: 1)
    model.stop()
    with pytest.raises(OrchestratorError, match="not made: the run is stopping"):
        model.call(cycle_id="c1", purpose="generate", model="claude-opus-5-5", system="s",
                   prompt="p", max_tokens=100)
    assert transport.requests == []
