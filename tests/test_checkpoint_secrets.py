"""A value read as a secret never reaches the ledger through a checkpoint: a strategy that
keeps its API key in its state (or a risk check, or any checkpointed component) has it
stored as ``[REDACTED]``, in every form JSON writes it, with one warning per checkpoint;
state that merely looks like a credential is stored as written, so it reads back whole."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner
from argus_core.secrets import remember


class KeyKeeper(MovingAverageCross):
    """The demo's crossover, keeping ``extra`` in its state (what a careless strategy
    author does with the key it signs requests with)."""

    def __init__(self, extra: dict[str, Any]) -> None:
        super().__init__(ExampleSettings(5, 20, "replay:XBT/USD"))
        self.extra = extra

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), **self.extra}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state({k: v for k, v in state.items() if k not in self.extra})


def _run(tmp_path: Path, extra: dict[str, Any]) -> Path:
    cfg = tmp_path / "run.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, start="2023-01-01", end="2023-02-01",
                             checkpoint_every=50))
    run_dir = tmp_path / "run"
    runner = Runner(load_config(cfg), run_dir, strategies={"ma_cross": KeyKeeper(extra)})
    runner.run_sync()
    return run_dir


def _ledger_bytes(run_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(run_dir.glob("argus.db*")))


@pytest.mark.parametrize("secret", [
    "sk-live-3f9a8b7c6d5e4f3a2b1c",  # as read from $env:
    'pa"ss\\word-8841x',  # JSON escapes its quote and backslash
    "pässwörd-77120",  # JSON writes it as \\u escapes
])
def test_a_revealed_secret_in_a_strategy_state_is_stored_redacted(
        tmp_path: Path, secret: str, caplog: pytest.LogCaptureFixture) -> None:
    remember(secret)  # what Secret.reveal does for every value it reads
    with caplog.at_level(logging.WARNING, logger="argus_core.ledger"):
        run_dir = _run(tmp_path, {"api": {"key": secret, "note": f"signed with {secret}"}})
    stored = _ledger_bytes(run_dir)
    for form in (secret, secret.encode("unicode_escape").decode(), secret.replace('"', '\\"')):
        assert form.encode() not in stored, form
    with Ledger.in_dir(run_dir) as ledger:
        checkpoint = ledger.load_checkpoint("runner")
    assert checkpoint is not None
    api = checkpoint[2]["strategies"]["ma_cross"]["api"]
    assert api == {"key": "[REDACTED]", "note": "signed with [REDACTED]"}
    warned = [r for r in caplog.records if "held a value read as a secret" in r.getMessage()]
    assert len(warned) == 1  # once per checkpoint name, not once per commit


def test_state_that_only_looks_like_a_credential_is_stored_as_written(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Key-shaped text that was never read as a secret is the strategy's own state: masking
    # it would change what the run resumes from.
    shaped = {"header": "api_key=abcd1234efgh5678", "token": "Bearer 0123456789abcdef"}
    with caplog.at_level(logging.WARNING, logger="argus_core.ledger"):
        run_dir = _run(tmp_path, {"shaped": shaped})
    with Ledger.in_dir(run_dir) as ledger:
        checkpoint = ledger.load_checkpoint("runner")
    assert checkpoint is not None
    assert checkpoint[2]["strategies"]["ma_cross"]["shaped"] == shaped
    assert not [r for r in caplog.records if "read as a secret" in r.getMessage()]
