"""Held-out audit of everything around the sandbox: model answers of the wrong shape, a
cycle step that raises, bad configuration, and stored versions loaded again.

Was (each failed before its fix):

* a 200 answer of the wrong shape (``usage`` missing or without a field, ``model``
  null, ``content`` null, a text block whose text is null, a body that is a string, a
  lone surrogate in the text) raised a raw ``AttributeError`` / ``TypeError`` /
  ``PydanticSerializationError`` out of ``ModelClient.call``: no thought row (the spend
  unrecorded), and in a running loop the cycle's future re-raised at every later event
  as the slot's strategy failing: the loop went REDUCING and the incumbent never traded
  again, the cycle row stayed ``running``;
* negative ``usage`` was recorded as is: the day's budget was refunded (tokens and
  dollars below zero), so a hostile or broken proxy lifted every ceiling; ``10**20``
  tokens raised ``OverflowError`` from SQLite;
* ``stop_reason`` ``refusal`` / ``tool_use`` / ``pause_turn`` / ``null``: the code of an
  unfinished answer was used and a reviewer's unfinished approval counted;
* fences were matched by a regex: a ```` ```text ```` block before the python one made the
  prose between them the module, an empty block became a candidate (a paid review of
  nothing), a ```` ``` ```` inside a string cut the module there;
* a cycle step raising anything but ``OrchestratorError`` (a proving backtest that
  raises, a worker that cannot start there) took the loop down the same way, and the
  stored candidate stayed ``candidate`` for ever; so did one whose review call failed;
* ``[plugins.orchestrator] backtest`` with an unknown key was accepted at start and
  raised at the first cycle (the loop REDUCING for the rest of the run); a ``base_url``
  that is not a URL was a traceback (exit 1); ``sandbox.memory_mb = 1e14`` a sandbox
  error (exit 8) instead of a config error (exit 2);
* a version whose stored source no longer matches its hash (the ledger changed outside
  Argus) was rebuilt and traded by ``--resume`` and by a rollback, unchecked.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from argus_orchestrator import OrchestratorError
from argus_orchestrator import plugin as orchestrator_plugin
from argus_orchestrator.config import orchestrator_settings
from argus_orchestrator.llm import ModelClient
from argus_orchestrator.prompts import extract_code, parse_review
from argus_orchestrator.session import run_orchestrated
from argus_orchestrator.spool import ThoughtSpool
from argus_orchestrator.transport import RecordedTransport
from argus_test_helpers import error_line, invoke_argus

from argus_core import Ledger, Migrations
from argus_core.config import parse_config

sys.path.insert(0, str(Path(__file__).parent / "orchestrator"))
import test_orchestrator_live_control as live_control  # the paused feed and its config

gated = live_control.gated  # the fixture, for the rollback test

ROOT = Path(__file__).parents[3]
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
SEED = ROOT / "examples" / "orchestrator" / "seed_strategy.py"
EXAMPLE_CASSETTE = ROOT / "examples" / "orchestrator" / "cassettes" / "example.json"
MODEL = "claude-opus-5-5"


def _body(**over: Any) -> dict[str, Any]:
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5}}
    body.update(over)
    return body


def _reply(body: Any, status: int = 200) -> dict[str, Any]:
    return {"response": {"status": status, "headers": {"retry-after-ms": "1"}, "json": body}}


def _client(tmp_path: Path, interactions: list[dict[str, Any]]
            ) -> tuple[ModelClient, Ledger]:
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    ledger = Ledger(tmp_path / "argus.db", migrations)
    with ledger.transaction():
        ledger.insert("orchestrator_cycles", {"cycle_id": "c1", "slot": "ma_cross",
                                              "started_ns": 0, "status": "running"})
    settings = orchestrator_settings(parse_config(
        {"run": {"strategies": ["ma_cross"]},
         "plugins": {"orchestrator": {"transport": "recorded:x", "max_retries": 0}}}))
    sdk = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=0,
                              http_client=httpx2.Client(transport=RecordedTransport(
                                  {"interactions": interactions})))
    return ModelClient(settings, ledger, sdk, clock=lambda: 1_700_000_000_000_000_000), ledger


def _call(client: ModelClient) -> Any:
    return client.call(cycle_id="c1", purpose="generate", model=MODEL, system="sys",
                       prompt="improve it", max_tokens=1000)


MALFORMED = {
    "usage missing": {k: v for k, v in _body().items() if k != "usage"},
    "usage null": _body(usage=None),
    "usage without output_tokens": _body(usage={"input_tokens": 5}),
    "usage a string": _body(usage={"input_tokens": "100", "output_tokens": 5}),
    "usage a float": _body(usage={"input_tokens": 1.5, "output_tokens": 5}),
    "usage a bool": _body(usage={"input_tokens": True, "output_tokens": 5}),
    "usage negative": _body(usage={"input_tokens": -10**6, "output_tokens": -10**6}),
    "usage absurd": _body(usage={"input_tokens": 10**20, "output_tokens": 5}),
    "model null": _body(model=None),
    "content null": _body(content=None),
    "text null": _body(content=[{"type": "text", "text": None}]),
    "body a string": "hello",
    "body a list": [1, 2],
    "lone surrogate": _body(content=[{"type": "text", "text": "```python\nX = '\ud800'\n```"}]),
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
def test_an_answer_of_the_wrong_shape_is_a_spooled_error(tmp_path: Path, body: Any) -> None:
    """Before: a raw AttributeError/TypeError/OverflowError (or, for negative usage, a
    refund of the day's budget), and no thought row."""
    client, ledger = _client(tmp_path, [_reply(body)])
    with pytest.raises(OrchestratorError, match="malformed answer"):
        _call(client)
    (row,) = ThoughtSpool(ledger).thoughts("c1")
    assert row["status"] == "error" and "malformed answer" in row["error"]
    # The call was made: its cost is unknown, so it is charged its worst case (estimated
    # input + max_tokens), never a refund.
    (day,) = ledger.query("select tokens, cost_usd from budgets")
    assert day["tokens"] >= 1000 and Decimal(day["cost_usd"]) > 0


def test_a_tool_use_answer_has_no_code_and_is_not_an_error(tmp_path: Path) -> None:
    """A well-formed answer without a text block is an answer (no code in it)."""
    client, _ = _client(tmp_path, [_reply(_body(content=[
        {"type": "tool_use", "id": "t1", "name": "x", "input": {}}], stop_reason="tool_use"))])
    reply = _call(client)
    assert reply.text == "" and extract_code(reply.text, reply.stop_reason).code is None


@pytest.mark.parametrize("stop", ["refusal", "tool_use", "pause_turn",
                                  "model_context_window_exceeded", None, "max_tokens"])
def test_only_a_finished_answer_is_used(stop: str | None) -> None:
    """Before: only ``max_tokens`` was refused; the code of a refusal or of an answer cut
    by the context window was a candidate, and such a review's approval counted."""
    extracted = extract_code("why\n```python\nX = 1\n```\n", stop)
    assert extracted.code is None and str(stop) in (extracted.problem or "")
    assert not parse_review('{"verdict": "approve", "reasons": []}', stop).approved
    assert extract_code("why\n```python\nX = 1\n```\n", "stop_sequence").code == "X = 1\n"


@pytest.mark.parametrize(("text", "code", "problem"), [
    ("See:\n```text\nnote\n```\nCode:\n```python\nX = 1\n```\n", "X = 1\n", None),
    ("```diff\n- a\n+ b\n```\n```python\nX = 1\n```", "X = 1\n", None),
    ("```python\nS = \"```\"\nX = 1\n```\n", "S = \"```\"\nX = 1\n", None),
    ("```python\n```", None, "empty"),
    ("```python\n   \n\n```", None, "empty"),
    ("```python\nX = 1\n", None, "not closed"),
    ("```python\nX = 1\n```\n```\nY = 2\n```", None, "2 code blocks"),
    ("```javascript\nlet x = 1\n```", None, "no ```python code block"),
    ("```Python3\nX = 1\n```", "X = 1\n", None),
])
def test_code_fences_are_read_line_by_line(text: str, code: str | None,
                                           problem: str | None) -> None:
    """Before: the prose between a ```text block and the python block was the module, an
    empty block was a candidate and a fence inside a string cut the module there."""
    extracted = extract_code(text, "end_turn")
    assert extracted.code == code
    if problem is not None:
        assert problem in (extracted.problem or "")


# -- the running loop ------------------------------------------------------------------------
def _example(i: int) -> dict[str, Any]:
    interaction: dict[str, Any] = json.loads(EXAMPLE_CASSETTE.read_text())["interactions"][i]
    return interaction


def _run(tmp_path: Path, cassette: list[dict[str, Any]], extra: str = "") -> tuple[Path, str]:
    (tmp_path / "cassette.json").write_text(json.dumps({"interactions": cassette}))
    config = tmp_path / "orchestrate.toml"
    config.write_text(f"""
[argus]
plugins = ["orchestrator", "lab"]
mode = "replay"
seed = 3

[run]
venue = "replay"
strategies = ["ma_cross"]
starting_cash = "100000"
checkpoint_every_events = 1

[plugins.replay]
bars_csv = "{BARS}"
symbol = "BTC/USD"
start = "2022-01-01"
end = "2022-01-03"

[plugins.orchestrator]
slot = "ma_cross"
seed_source = "{SEED}"
transport = "recorded:cassette.json"
first_cycle_after_events = 5
lab_gates = false
backtest = {{"plugins.replay.start" = "2021-12-20", "plugins.replay.end" = "2022-01-01"}}
{extra}
""")
    report = run_orchestrated(config, run_dir=tmp_path / "run", max_cycles=1,
                              echo=lambda _: None)
    return tmp_path / "run", report


def _loop_traded_on(run_dir: Path) -> dict[str, Any]:
    with Ledger.in_dir(run_dir) as ledger:
        (cycle,) = ledger.query("select * from orchestrator_cycles")
        assert cycle["status"] == "finished" and cycle["outcome"] in ("failed", "rejected")
        assert ledger.get_control("trading_state") is None  # never REDUCING
        assert ledger.query("select count(*) as n from fills")[0]["n"] > 0
        assert not [r for r in ledger.query("select status from strategy_versions")
                    if r["status"] == "candidate"]  # no half-written version
        return cycle


def test_a_malformed_answer_fails_the_cycle_not_the_loop(tmp_path: Path) -> None:
    """Before: 44 of 48 events 'strategy ma_cross raised TypeError', REDUCING, 0 fills,
    the cycle row 'running' and no thought row."""
    run_dir, report = _run(tmp_path, [_reply(_body(usage={"input_tokens": 5}))])
    cycle = _loop_traded_on(run_dir)
    assert "malformed answer" in cycle["reason"] and "trading state active" in report


def test_a_backtest_that_raises_rejects_the_candidate_and_the_loop_trades_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the RuntimeError left the cycle (only OrchestratorError was an outcome):
    the loop went REDUCING, the candidate stayed 'candidate'."""
    from argus_orchestrator import cycle as cycle_module

    def broken_backtest(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the proving backtest blew up")

    monkeypatch.setattr(cycle_module, "prove", broken_backtest)
    run_dir, _ = _run(tmp_path, [_example(6), _example(7)])
    cycle = _loop_traded_on(run_dir)
    assert "RuntimeError: the proving backtest blew up" in cycle["reason"]
    with Ledger.in_dir(run_dir) as ledger:
        (cand,) = ledger.query("select * from strategy_versions where version_id = ?",
                               (cycle["candidate_id"],))
        assert cand["status"] == "rejected" and "blew up" in cand["reason"]


def test_a_failed_review_call_rejects_the_stored_candidate(tmp_path: Path) -> None:
    """Before: the version written after the generate call stayed 'candidate' for ever."""
    error = _reply({"type": "error", "error": {"type": "invalid_request_error",
                                               "message": "no"}}, status=400)
    run_dir, _ = _run(tmp_path, [_example(6), error])
    cycle = _loop_traded_on(run_dir)
    assert cycle["outcome"] == "failed" and "review call failed" in cycle["reason"]


# -- configuration --------------------------------------------------------------------------
@pytest.mark.parametrize(("setting", "said"), [
    ('backtest = {"nonsense.key" = 1}', "plugins.orchestrator.backtest"),
    ('backtest = {"run.starting_cash" = "-5"}', "plugins.orchestrator.backtest"),
    ('base_url = "::not a url"', "base_url is not an http(s) URL"),
    ('base_url = "ftp://example.com"', "base_url is not an http(s) URL"),
    ("sandbox = {memory_mb = 100000000000000}", "memory_mb = 100000000000000 is outside"),
    # no cycle could make its generate call (accepted before: every cycle failed on budget)
    ("max_tokens_generate = 70000", "max_tokens_generate (70000) exceeds budget."
                                    "cycle_max_tokens (60000)"),
    ("max_tokens_review = 9000\nbudget = {cycle_max_tokens = 8000}",
     "max_tokens_review (9000) exceeds budget.cycle_max_tokens (8000)"),
])
def test_bad_settings_are_refused_at_start(tmp_path: Path, setting: str, said: str) -> None:
    """Before: a bad backtest override raised at the first cycle (the loop REDUCING), a bad
    base_url was a traceback (exit 1), a huge memory limit a sandbox error (exit 8)."""
    (tmp_path / "cassette.json").write_text('{"interactions": []}')
    config = tmp_path / "o.toml"
    config.write_text(f"""
[run]
venue = "replay"
strategies = ["ma_cross"]

[plugins.replay]
bars_csv = "{BARS}"
symbol = "BTC/USD"
start = "2022-01-01"
end = "2022-01-02"

[plugins.orchestrator]
seed_source = "{SEED}"
transport = "recorded:cassette.json"
{setting}
""")
    line = error_line(invoke_argus(["orchestrate", "--config", str(config), "--run-dir",
                                    str(tmp_path / "run")]), 2)
    assert said in line and str(config) in line, line
    assert not (tmp_path / "run").exists()


# -- stored versions loaded again -------------------------------------------------------------
def test_a_tampered_version_is_not_resumed(tmp_path: Path) -> None:
    """Before: --resume rebuilt and traded whatever source the ledger held for the full
    version, its hash unchecked."""
    BUY_AND_HOLD = live_control.BUY_AND_HOLD
    run_dir, _ = _run(tmp_path, [])
    with Ledger.in_dir(run_dir) as ledger:
        from argus_orchestrator.versions import VersionStore

        store = VersionStore(ledger)
        seed = store.list()[0]["version_id"]
        store.set_status(seed, "retired", "replaced")
        ai = store.add(slot="ma_cross", source=BUY_AND_HOLD, parent_id=seed, status="full",
                       reason="traded")
        with ledger.transaction() as conn:
            conn.execute("update strategy_versions set source = source || '\n# changed' "
                         "where version_id = ?", (ai,))
    with pytest.raises(OrchestratorError, match=f"{ai}.*does not match its source_hash"):
        run_orchestrated(tmp_path / "orchestrate.toml", run_dir=run_dir, max_cycles=0,
                         resume=True, echo=lambda _: None)


def test_a_cycle_that_raises_is_a_failed_cycle_not_a_strategy_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``future.result()`` re-raised the cycle's exception at every later event,
    inside the slot's ``on_event``: the loop went REDUCING and the incumbent stopped."""
    from argus_orchestrator.cycle import CycleRunner

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the cycle's own bookkeeping failed")

    monkeypatch.setattr(CycleRunner, "run", broken)
    _, report = _run(tmp_path, [])
    assert "trading state active" in report
    assert "cycle-0001: failed — the cycle raised RuntimeError" in report


def test_a_rollback_to_a_tampered_version_halts_instead_of_loading_it(
        tmp_path: Path, gated: Any) -> None:
    """Before: the reinstated version's source was rebuilt from the ledger unchecked, so
    an edited row traded; now its hash is checked and the loop HALTS for a person."""
    from argus_orchestrator import commands
    from argus_orchestrator.versions import VersionStore
    from click.testing import CliRunner

    run_dir = tmp_path / "run"
    config = live_control._config(tmp_path, mode="replay", start="2022-01-01",
                                  end="2022-01-05", cassette=[], poll="")
    added: dict[str, str] = {}

    def promote_then_tamper_the_seed() -> None:
        with commands._open_ledger(run_dir) as ledger:
            store = VersionStore(ledger)
            added["seed"] = store.list()[0]["version_id"]
            added["v2"] = store.add(slot="ma_cross", source=live_control.BUY_AND_HOLD,
                                    parent_id=added["seed"], status="candidate",
                                    reason="kept")
        CliRunner().invoke(commands.strategies_group, [
            "promote", "--run-dir", str(run_dir), added["v2"], "--to", "full"])

    def tamper_and_roll_back() -> None:
        with commands._open_ledger(run_dir) as ledger, ledger.transaction() as conn:
            conn.execute("update strategy_versions set source = source || '\n# edited' "
                         "where version_id = ?", (added["seed"],))
        CliRunner().invoke(commands.strategies_group, [
            "rollback", "--run-dir", str(run_dir), "ma_cross"])

    gated.hooks = {10: promote_then_tamper_the_seed, 30: tamper_and_roll_back}
    echoes: list[str] = []
    run_orchestrated(config, run_dir=run_dir, max_cycles=0, echo=echoes.append)
    assert any("ROLLBACK FAILED" in e and "does not match its source_hash" in e
               for e in echoes), echoes
    with Ledger.in_dir(run_dir) as ledger:
        control = json.loads(ledger.get_control("trading_state") or "{}")
        assert control["state"] == "halted" and "source_hash" in control["reason"]

