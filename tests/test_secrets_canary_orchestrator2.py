"""Canary sweep of the AI orchestrator (kit: ``test_secrets_canary.py``).

The orchestrator's cycles run against the real ``anthropic`` SDK through its recorded
transport, in a process that has revealed every canary (as venue and bot plugins do at
start-up) and holds the canary Anthropic key as its API key, so the transport sees the
``x-api-key`` header a live call would send.  Secrets are put in front of it the ways a
run can: the incumbent's source (a trusted plugin module that hard-codes a key, pastes a
log line, holds a password in a comment), a model answer whose module or review
reasons hold key-shaped strings, an Anthropic refusal (a proxy's 401) that echoes the
request's headers and body back, and the reasons earlier cycles ended with, fed to the
next prompt.  Scanned: every request body the SDK sent (what reached "Anthropic"; its
headers but ``x-api-key``), the run's ledger (every table: thoughts, versions, events,
cycles, budgets), the cycle results, and what ``argus strategies`` / ``argus thoughts``
print.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from click.testing import CliRunner
from test_secrets_canary import (
    CANARIES,
    assert_no_leaks,
    canary,
    collect,
    file_ref,
    leaks,
    plant,
)

from argus_core import Secret
from argus_core.config import parse_config
from argus_core.ledger import Ledger
from argus_core.migrations import Migrations
from argus_core.secrets import forget_all

orch_cycle = pytest.importorskip("argus_orchestrator.cycle")
from argus_orchestrator import plugin as orchestrator_plugin  # noqa: E402  (after the skip)
from argus_orchestrator.commands import strategies_group, thoughts_cmd  # noqa: E402  (after the skip)
from argus_orchestrator.config import (  # noqa: E402  (after the skip)
    DEFAULT_GENERATE_MODEL,
    DEFAULT_REVIEW_MODEL,
    orchestrator_settings,
)
from argus_orchestrator.llm import ModelClient  # noqa: E402  (after the skip)
from argus_orchestrator.spool import prompt_hash  # noqa: E402  (after the skip)
from argus_orchestrator.transport import RecordedTransport  # noqa: E402  (after the skip)
from argus_orchestrator.versions import VersionStore  # noqa: E402  (after the skip)

#: Every canary but ``short`` (under 8 characters: revealed by its own test, which checks
#: it is hidden as a whole token) is revealed in the process.
REVEALED = [c for c in CANARIES.values() if c.name != "short"]

CLEAN_SOURCE = '''"""A moving-average strategy."""


class Strategy:
    """Buys once."""

    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        return []
'''


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


def _message(text: str, model: str = DEFAULT_GENERATE_MODEL) -> dict[str, Any]:
    return {"request": {"model": model}, "response": {"status": 200, "headers": {
        "request-id": "req_canary"}, "json": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 100, "output_tokens": 50}}}}


def _generate(code: str, why: str = "Tightened the entry.") -> dict[str, Any]:
    return _message(f"{why}\n```python\n{code}```\n")


def _review(verdict: str, reasons: list[str]) -> dict[str, Any]:
    return _message(json.dumps({"verdict": verdict, "reasons": reasons}),
                    DEFAULT_REVIEW_MODEL)


class EchoingTransport(RecordedTransport):
    """The recorded transport, but an interaction marked ``"echo": 401`` answers as a
    misconfigured proxy does: a 401 whose message quotes the request's headers (the API
    key among them) and body."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.position < len(self.interactions) and \
                self.interactions[self.position].get("echo"):
            item = self.interactions[self.position]
            response = super().handle_request(request)  # records the request
            headers = dict(request.headers.items())
            message = (f"invalid credentials for {request.method} {request.url}; headers="
                       f"{headers!r} body={request.content.decode()[:400]}")
            body = {"type": "error", "error": {"type": "authentication_error",
                                               "message": message}}
            del response
            return httpx2.Response(int(item["echo"]), headers={
                "content-type": "application/json", "x-should-retry": "false"},
                content=json.dumps(body).encode(), request=request)
        return super().handle_request(request)


def reveal_everything(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plant every canary and reveal each (``$env:`` and ``$file:``), as the run's
    plugins do at start-up."""
    refs = plant(root, monkeypatch)
    for c in REVEALED:
        Secret(refs[c.name]).reveal()
        Secret(file_ref(root, c.name)).reveal()


def harness(root: Path, interactions: list[dict[str, Any]]
            ) -> tuple[Any, EchoingTransport, Ledger, VersionStore]:
    """A cycle runner on a fresh ledger, its SDK client holding the canary API key and
    talking to the (echoing) recorded transport."""
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    ledger = Ledger(root / "run" / "argus.db", migrations)
    config = parse_config({"run": {"strategies": ["ma_cross"]}, "plugins": {"orchestrator": {
        "transport": "recorded:x", "max_retries": 0,
        "api_key": "$env:ARGUS_CANARY_ANTHROPIC"}}})
    settings = orchestrator_settings(config)
    api_key = settings.api_key.reveal() if settings.api_key else ""
    transport = EchoingTransport({"interactions": interactions})
    sdk = anthropic.Anthropic(api_key=api_key, max_retries=0,
                              http_client=httpx2.Client(transport=transport))
    clock = iter(range(10**18, 10**18 + 10**6, 1000))

    def now() -> int:
        return next(clock)

    model = ModelClient(settings, ledger, sdk, clock=now)
    versions = VersionStore(ledger, now)
    runner = orch_cycle.CycleRunner(config, settings, ledger, model, versions,
                                    root / "run" / "orchestrator", now)
    return runner, transport, ledger, versions


def incumbent_with_secrets() -> str:
    """A trusted plugin module (its source is what a cycle sends as the incumbent) that
    hard-codes credentials, pastes a log line and keeps a password in a comment."""
    return CLEAN_SOURCE + (
        f'\nAPI_KEY = "{canary("anthropic")}"\n'
        f'WALLET = "{canary("pm_private_key")}"\n'
        f"# 2024-01-02 DEBUG HTTP Request: POST https://api.kraken.com/0/private/Balance "
        f"API-Key={canary('kraken_key')} passphrase {canary('pm_passphrase')}\n"
        f"# password: {canary('spaces')} (rotate!)\n")


def cycle(runner: Any, n: int, source: str, incumbent_id: str) -> Any:
    return runner.run(f"cycle-{n:04d}", incumbent_id=incumbent_id, incumbent_source=source,
                      incumbent_factory=lambda: None, handover_state={},
                      instrument_id="replay:BTC/USD")


def sent(transport: RecordedTransport) -> dict[str, str]:
    """Every request the SDK sent, as the far end saw it (its API key header aside)."""
    return {f"request {i}": json.dumps({**r, "headers": {
        k: v for k, v in r["headers"].items() if k not in ("x-api-key", "authorization")}})
        for i, r in enumerate(transport.requests)}


def printed(run_dir: Path, version_ids: list[str]) -> dict[str, str]:
    """What ``argus strategies list|show|diff`` and ``argus thoughts`` print."""
    cli, out = CliRunner(), {}
    out["strategies list"] = cli.invoke(strategies_group, ["list", "--run-dir",
                                                           str(run_dir)]).output
    for vid in version_ids:
        out[f"strategies show {vid}"] = cli.invoke(
            strategies_group, ["show", "--run-dir", str(run_dir), vid]).output
    if len(version_ids) > 1:
        out["strategies diff"] = cli.invoke(strategies_group, [
            "diff", "--run-dir", str(run_dir), version_ids[0], version_ids[-1]]).output
    out["thoughts"] = cli.invoke(thoughts_cmd, ["--run-dir", str(run_dir)]).output
    for n in range(1, 6):
        out[f"thoughts {n}"] = cli.invoke(thoughts_cmd, ["--run-dir", str(run_dir),
                                                         f"cycle-{n:04d}"]).output
    return out


def sweep(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], Any, Any]:
    """Five cycles, each putting secrets in front of the orchestrator a different way."""
    reveal_everything(root, monkeypatch)
    key_in_code = CLEAN_SOURCE + (f'\nTOKEN = "{canary("telegram")}"\n'
                                  f'PASS = "{canary("password_regex")}"\n')
    quoting = [f"it embeds the wallet key {canary('pm_private_key')} in a constant",
               "filler " * 40 + f" the key {canary('kraken_secret')} is revoked"]
    interactions = [
        # cycle 1: the module the model wrote holds a bot token and a password
        _generate(key_in_code),
        # cycle 2: the reviewer quotes key-shaped strings in its reasons
        _generate(CLEAN_SOURCE), _review("reject", quoting),
        # cycle 3: a proxy refuses the call and echoes the request (API key included)
        {"echo": 401, "response": {"status": 401}},
        # cycle 4: (the feedback of cycles 1-3 is in its prompt) the answer is refused
        _generate(CLEAN_SOURCE), _review("reject", ["no improvement"]),
        # cycle 5: the incumbent's own source holds secrets: the call is refused unsent
    ]
    runner, transport, ledger, versions = harness(root, interactions)
    seed = versions.add(slot="ma_cross", source=CLEAN_SOURCE, parent_id=None, status="full",
                        reason="seed incumbent")
    results = [cycle(runner, n, CLEAN_SOURCE, seed) for n in range(1, 5)]
    trusted = versions.add(slot="ma_cross", source=incumbent_with_secrets(), parent_id=None,
                           status="full", reason="seed incumbent (trusted installed plugin)")
    results.append(cycle(runner, 5, incumbent_with_secrets(), trusted))
    ids = [r["version_id"] for r in versions.list()]
    ledger.close()
    assert transport.mismatches == [], transport.mismatches
    artifacts = sent(transport)
    artifacts |= {f"result {r.cycle_id}": repr(r) for r in results}
    artifacts |= {f"feedback {i}": f for i, f in enumerate(runner.feedback)}
    artifacts |= collect(root / "run") | printed(root / "run", ids)
    return artifacts, transport, results


def test_orchestrator_prompts_ledger_and_commands_hold_no_canary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts, transport, results = sweep(tmp_path, monkeypatch)
    found = leaks(artifacts, REVEALED)
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))
    # The sweep reached every path it means to: the live-like key header was sent,
    # every cycle ended and the refused prompt was never sent.
    assert canary("anthropic") in str(transport.requests[0]["headers"])
    assert [r.outcome for r in results] == ["rejected", "rejected", "failed", "rejected",
                                            "failed"], [r.reason for r in results]
    assert "key-shaped" in results[0].reason and "key-shaped" in results[4].reason
    assert "authentication_error" in results[2].reason.lower() or \
        "AuthenticationError" in results[2].reason
    assert len(transport.requests) == 6  # cycle 5's prompt never left


def test_a_reason_holding_a_secret_does_not_stop_every_later_cycle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A cycle's reason is fed to the next prompt; one that held a key-shaped string (a
    # reviewer quoting one) made every later prompt "key-shaped": refused, for ever.
    _, transport, results = sweep(tmp_path, monkeypatch)
    assert results[3].outcome == "rejected", results[3].reason  # cycle 4 was asked
    prompt = transport.requests[4]["json"]["messages"][0]["content"]
    assert "Earlier candidates were refused" in prompt and "[REDACTED]" in prompt


def test_the_spool_keeps_no_hash_of_a_refused_prompts_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The spool stores a refused prompt redacted; its prompt_hash, of the text as it
    # was, beside it made the missing part guessable offline (a weak password: hash the
    # stored prompt with each guess in the [REDACTED] hole).  The hash is of what is
    # stored.
    sweep(tmp_path, monkeypatch)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = ledger.query("select * from thoughts")
    assert any(r["status"] == "refused" for r in rows)
    for r in rows:
        assert r["prompt_hash"] == prompt_hash(r["system_prompt"], r["prompt"]), r["status"]


def test_a_short_secret_in_the_incumbent_is_kept_from_the_prompt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A revealed value under 8 characters (no key shape) is remembered as a whole token:
    # such a password in a trusted plugin's source is hidden from the prompt too.
    reveal_everything(tmp_path, monkeypatch)
    Secret("$env:ARGUS_CANARY_SHORT").reveal()
    runner, transport, ledger, versions = harness(tmp_path, [
        _generate(CLEAN_SOURCE), _review("reject", ["no"])])
    source = CLEAN_SOURCE + f"# db password {canary('short')}\n"
    seed = versions.add(slot="ma_cross", source=source, parent_id=None, status="full",
                        reason="seed")
    cycle(runner, 1, source, seed)
    ledger.close()
    assert not leaks(sent(transport), [CANARIES["short"]])


def test_clean_cycles_are_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The redaction does not touch clean text: the version's source and the prompt hash
    # of a call that was sent are those of the text as it was.
    reveal_everything(tmp_path, monkeypatch)
    runner, transport, ledger, versions = harness(tmp_path, [
        _generate(CLEAN_SOURCE), _review("reject", ["plain"])])
    seed = versions.add(slot="ma_cross", source=CLEAN_SOURCE, parent_id=None, status="full",
                        reason="seed")
    result = cycle(runner, 1, CLEAN_SOURCE, seed)
    rows = {r["version_id"]: r for r in versions.list()}
    cand = rows[result.candidate_id]
    assert cand["source"] == CLEAN_SOURCE and rows[seed]["source"] == CLEAN_SOURCE
    thought = ledger.query("select * from thoughts where purpose = 'generate'")[0]
    body = transport.requests[0]["json"]
    assert cand["prompt_hash"] == thought["prompt_hash"] == prompt_hash(
        body["system"], body["messages"][0]["content"])
    ledger.close()
    assert_no_leaks(collect(tmp_path / "run"), REVEALED)
