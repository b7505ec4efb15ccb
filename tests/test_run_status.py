"""A run's row says how it ended (``finished``, ``stopped``, ``failed``), and a run that
fails while starting gives back its ledger and its run-directory lock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner


def _runner(tmp_path: Path, **kw: str) -> Runner:
    cfg = tmp_path / "run.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, **kw))
    return Runner(load_config(cfg), tmp_path / "run")


def _status(tmp_path: Path) -> str:
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (row,) = ledger.query("select status, ended_ns from runs")
    assert row["ended_ns"] is not None
    return str(row["status"])


def test_a_run_that_gets_to_the_end_is_finished(tmp_path: Path) -> None:
    _runner(tmp_path, end="2022-01-05").run_sync()
    assert _status(tmp_path) == "finished"


def test_a_failing_start_records_failed_and_frees_the_directory(tmp_path: Path) -> None:
    runner = _runner(tmp_path, end="2022-01-05")

    async def broken() -> list[object]:
        raise ConnectionError("venue unreachable")

    runner.asm.venue.instruments = broken  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        runner.run_sync()
    assert _status(tmp_path) == "failed"
    # The lock went with it: the same directory runs again in this process (it stayed
    # "running" and locked until the process exited).
    _runner(tmp_path, end="2022-01-05").run_sync()
    assert _status(tmp_path) == "finished"


def test_a_cancelled_run_is_stopped_and_resumes(tmp_path: Path) -> None:
    runner = _runner(tmp_path, end="2022-03-01")
    seen: list[int] = []
    runner.progress = seen.append

    async def cancel_after_first_report() -> None:
        task = asyncio.ensure_future(runner.run())
        while not seen:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_after_first_report())
    assert _status(tmp_path) == "stopped"
    summary = _runner(tmp_path, end="2022-03-01").run_sync()
    assert summary.events > seen[0] and _status(tmp_path) == "finished"
