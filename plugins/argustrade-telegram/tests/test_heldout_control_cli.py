"""Held-out audit of ``argus kill`` / ``argus resume`` (the core's CLI, which the bot's
/kill, /flatten and /resume mirror).  All three write the latch by the core's one rule
(``argus_core.request_trading_state``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from argus_core import Ledger, open_read_only
from argus_core.cli import cli


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A ledger with a running run."""
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, "{}")
    return run_dir


def argus(*args: str) -> Any:
    """``argus ARGS...`` through the core's click group."""
    return CliRunner().invoke(cli, list(args))


def latch(run_dir: Path) -> dict[str, Any] | None:
    """The latch as stored, with ``_writes``: how many control writes there were."""
    conn = open_read_only(run_dir / "argus.db")
    try:
        row = conn.execute("select value from control where key = 'trading_state'").fetchone()
        writes = conn.execute("select count(*) from control_log").fetchone()
    finally:
        conn.close()
    assert writes is not None
    return None if row is None else {**json.loads(row[0]), "_writes": writes[0]}


def test_kill_and_resume_of_a_missing_run_are_refused_in_one_line(tmp_path: Path) -> None:
    for command in (["kill"], ["kill", "--flatten"], ["resume"]):
        result = argus(*command, "--run-dir", str(tmp_path / "nowhere"))
        assert result.exit_code != 0 and "no argus.db" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "nowhere").exists()  # nothing created


def test_a_kill_reason_with_a_secret_is_stored_redacted(run_dir: Path) -> None:
    secret = "sk-ant-api03-" + "C" * 40
    assert argus("kill", "--run-dir", str(run_dir), "--reason", f"leak {secret}"
                 ).exit_code == 0
    stored = latch(run_dir)
    assert stored is not None and secret not in stored["reason"]


def test_a_kill_reason_is_stored_as_one_clean_short_line(run_dir: Path) -> None:
    result = argus("kill", "--run-dir", str(run_dir), "--reason",
                   "red\x1b[31m\nforged line\x00 " + "word " * 1000)
    stored = latch(run_dir)
    assert stored is not None
    assert not any(c in stored["reason"] for c in "\x1b\n\x00")
    assert len(stored["reason"]) <= 500
    assert "\x1b" not in result.output


def test_a_second_kill_never_takes_a_flatten_back(run_dir: Path) -> None:
    assert argus("kill", "--run-dir", str(run_dir), "--flatten", "--reason", "a"
                 ).exit_code == 0
    again = argus("kill", "--run-dir", str(run_dir), "--reason", "b")
    stored = latch(run_dir)
    assert stored is not None and stored["flatten"] is True and stored["_writes"] == 1
    assert "already" in again.output


def test_resume_while_active_writes_nothing(run_dir: Path) -> None:
    result = argus("resume", "--run-dir", str(run_dir))
    assert result.exit_code == 0 and "already" in result.output
    assert latch(run_dir) is None
