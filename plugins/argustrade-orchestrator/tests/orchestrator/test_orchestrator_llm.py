"""The real anthropic SDK through the recorded transport: retries, errors, overlong output,
budgets, secret refusal and the thought spool."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import anthropic
import httpx2
import pytest
from argus_orchestrator import BudgetExceeded, OrchestratorError
from argus_orchestrator import plugin as orchestrator_plugin
from argus_orchestrator.config import (
    DEFAULT_GENERATE_MODEL,
    DEFAULT_REVIEW_MODEL,
    orchestrator_settings,
)
from argus_orchestrator.llm import ModelClient
from argus_orchestrator.prompts import extract_code, parse_review
from argus_orchestrator.spool import ThoughtSpool
from argus_orchestrator.transport import RecordedTransport

from argus_core.config import parse_config
from argus_core.ledger import Ledger
from argus_core.migrations import Migrations

MODEL = DEFAULT_GENERATE_MODEL


def _msg(text: str, stop: str = "end_turn", tin: int = 100, tout: int = 50) -> dict:
    return {"response": {"status": 200, "headers": {"request-id": "req_1"}, "json": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": text}], "stop_reason": stop,
        "stop_sequence": None, "usage": {"input_tokens": tin, "output_tokens": tout}}}}


def _err(status: int, kind: str, headers: dict | None = None) -> dict:
    return {"response": {"status": status, "headers": headers or {"retry-after-ms": "5"},
                         "json": {"type": "error", "error": {"type": kind, "message": kind}}}}


def _client(tmp_path: Path, interactions: list[dict], **orch: object):
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    ledger = Ledger(tmp_path / "argus.db", migrations)
    with ledger.transaction():
        ledger.insert("orchestrator_cycles", {"cycle_id": "c1", "slot": "ma_cross",
                                              "started_ns": 0, "status": "running"})
    settings = orchestrator_settings(parse_config(
        {"run": {"strategies": ["ma_cross"]},
         "plugins": {"orchestrator": {"transport": "recorded:x", "max_retries": 2, **orch}}}))
    transport = RecordedTransport({"interactions": interactions})
    sdk = anthropic.Anthropic(api_key="recorded-transport-no-key", max_retries=2,
                              http_client=httpx2.Client(transport=transport))
    return ModelClient(settings, ledger, sdk, clock=lambda: 1_700_000_000_000_000_000), \
        transport, ledger


def _call(client: ModelClient, prompt: str = "improve it", max_tokens: int = 1000):
    return client.call(cycle_id="c1", purpose="generate", model=MODEL, system="sys",
                       prompt=prompt, max_tokens=max_tokens)


def test_retry_after_429_then_success_is_spooled(tmp_path: Path) -> None:
    client, transport, ledger = _client(tmp_path, [_err(429, "rate_limit_error"),
                                                   _msg("hello")])
    reply = _call(client)
    assert reply.text == "hello" and transport.position == 2
    assert len(transport.requests) == 2  # the SDK retried after the 429
    body = transport.requests[-1]["json"]
    assert body["model"] == MODEL and body["messages"][0]["content"] == "improve it"
    rows = ThoughtSpool(ledger).thoughts("c1")
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert rows[0]["input_tokens"] == 100 and rows[0]["output_tokens"] == 50
    # Opus 5.5: $4/MTok in, $20/MTok out (Anthropic's published base rates)
    assert Decimal(rows[0]["cost_usd"]) == Decimal(100 * 4 + 50 * 20) / 1_000_000
    assert ledger.query("select tokens from budgets")[0]["tokens"] == 150


@pytest.mark.parametrize(("status", "kind", "exc_name"), [
    (529, "overloaded_error", "OverloadedError"),
    (429, "rate_limit_error", "RateLimitError"),
])
def test_persistent_retryable_errors_fail_the_call(tmp_path: Path, status: int, kind: str,
                                                   exc_name: str) -> None:
    client, transport, ledger = _client(tmp_path, [_err(status, kind)] * 3)
    with pytest.raises(OrchestratorError, match=kind):
        _call(client)
    assert len(transport.requests) == 3  # first try + max_retries
    row = ThoughtSpool(ledger).thoughts("c1")[0]
    assert row["status"] == "error" and exc_name in row["error"]


def test_bad_request_is_not_retried(tmp_path: Path) -> None:
    client, transport, _ = _client(tmp_path, [_err(400, "invalid_request_error", {}),
                                              _msg("never")])
    with pytest.raises(OrchestratorError, match="invalid_request_error"):
        _call(client)
    assert len(transport.requests) == 1


def test_overlong_output_is_refused(tmp_path: Path) -> None:
    client, _, _ = _client(tmp_path, [_msg("```python\nclass Strategy:\n    def on_ev",
                                           stop="max_tokens")])
    reply = _call(client)
    extracted = extract_code(reply.text, reply.stop_reason)
    assert extracted.code is None and "max_tokens" in (extracted.problem or "")


def test_budget_stops_the_call_before_it_is_made(tmp_path: Path) -> None:
    client, transport, ledger = _client(tmp_path, [_msg("x")],
                                        budget={"cycle_max_tokens": 500},
                                        max_tokens_generate=400, max_tokens_review=400)
    with pytest.raises(BudgetExceeded, match="cycle tokens"):
        _call(client, max_tokens=1000)
    assert transport.requests == []
    assert ThoughtSpool(ledger).thoughts("c1")[0]["status"] == "budget"


def test_key_shaped_prompt_is_refused_and_never_stored(tmp_path: Path) -> None:
    secret = "sk-ant-api03-" + "A" * 40
    client, transport, ledger = _client(tmp_path, [_msg("x")])
    with pytest.raises(OrchestratorError, match="key-shaped"):
        _call(client, prompt=f"use key {secret}")
    assert transport.requests == []
    dump = str(ledger.query("select * from thoughts"))
    assert secret not in dump and "[REDACTED]" in dump


def test_key_shaped_response_is_redacted_in_the_spool(tmp_path: Path) -> None:
    secret = "sk-ant-api03-" + "B" * 40
    client, _, ledger = _client(tmp_path, [_msg(f"here: {secret}")])
    _call(client)
    assert secret not in str(ledger.query("select * from thoughts"))


def test_cassette_mismatch_fails_loudly(tmp_path: Path) -> None:
    client, transport, _ = _client(tmp_path, [{"request": {"model": "other"}, **_msg("x")}])
    with pytest.raises(OrchestratorError):
        _call(client)
    assert transport.mismatches and "model" in transport.mismatches[0]


@pytest.mark.parametrize(("text", "approved"), [
    ('{"verdict": "approve", "reasons": ["ok"]}', True),
    ('Sure! {"verdict": "reject", "reasons": ["bad"]}', False),
    ("looks fine to me", False),
    ('{"verdict": "maybe"}', False),
    ('{"verdict": "approve", ', False),
])
def test_review_parsing_fails_closed(text: str, approved: bool) -> None:
    assert parse_review(text, "end_turn").approved is approved


def test_extract_code_requires_exactly_one_block() -> None:
    assert extract_code("no code", "end_turn").code is None
    two = "```python\na = 1\n```\n```python\nb = 2\n```"
    assert extract_code(two, "end_turn").code is None
    one = extract_code("why\n```python\nX = 1\n```", "end_turn")
    assert one.code == "X = 1\n" and one.rationale == "why"


def test_default_models_are_current_for_the_installed_sdk(tmp_path: Path) -> None:
    """The defaults are not on the SDK's deprecation list, and a call with them raises no
    DeprecationWarning (the SDK warns per call for deprecated ids)."""
    import warnings

    from anthropic.resources.messages.messages import DEPRECATED_MODELS

    settings = orchestrator_settings(parse_config({"run": {"strategies": ["ma_cross"]}}))
    assert (settings.generate_model, settings.review_model) == (DEFAULT_GENERATE_MODEL,
                                                                DEFAULT_REVIEW_MODEL)
    assert settings.generate_model != settings.review_model  # an independent reviewer
    for model in (settings.generate_model, settings.review_model):
        assert model not in DEPRECATED_MODELS
        assert settings.price(model) != (Decimal("15"), Decimal("75"))  # a priced model
    client, _, _ = _client(tmp_path, [_msg("ok")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        reply = _call(client)
    assert reply.text == "ok"
