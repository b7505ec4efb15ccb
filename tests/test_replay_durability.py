"""How durable each commit is: a replay's checkpoints are re-derivable, so they do not
fsync one by one (``synchronous=NORMAL``); its final commit and any swap do.  Paper and
live commits always fsync (``FULL``): their orders and fills cannot be replayed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner

FULL, NORMAL = 2, 1  # `pragma synchronous` values


def _sync(ledger: Ledger) -> int:
    return int(ledger.conn.execute("pragma synchronous").fetchall()[0][0])


def _watched(runner: Runner, monkeypatch: pytest.MonkeyPatch
             ) -> tuple[list[int], list[int], list[str]]:
    """The setting at each commit inside the loop, at the run's final row, and the WAL
    syncs asked for."""
    at_commits: list[int] = []
    at_finish: list[int] = []
    synced: list[str] = []
    ledger = runner.ledger
    commit, finish = ledger.commit, ledger.finish_run
    monkeypatch.setattr(ledger, "commit", lambda: (at_commits.append(_sync(ledger)),
                                                   commit())[1])
    monkeypatch.setattr(ledger, "finish_run", lambda *a: (at_finish.append(_sync(ledger)),
                                                          finish(*a))[1])
    sync_wal = ledger.sync_wal
    monkeypatch.setattr(ledger, "sync_wal", lambda: (synced.append("wal"), sync_wal())[1])
    return at_commits, at_finish, synced


def test_replay_commits_do_not_fsync_each_but_the_run_ends_durable(
        demo_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner(load_config(demo_config), tmp_path / "r")
    at_commits, at_finish, synced = _watched(runner, monkeypatch)
    summary = runner.run_sync()
    assert summary.events > 1_000 and len(at_commits) > 5
    assert set(at_commits) == {NORMAL}
    assert at_finish == [FULL]  # the last commit fsyncs the WAL: every frame before it too
    assert synced == []  # no swap, no extra sync
    with Ledger.in_dir(tmp_path / "r") as ledger:
        assert _sync(ledger) == FULL  # a fresh connection (a CLI command) is FULL as ever
        assert ledger.query("select status from runs")[0]["status"] == "finished"


def test_a_swap_in_a_replay_is_made_durable_at_once(
        demo_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner(load_config(demo_config), tmp_path / "r")
    _at_commits, _at_finish, synced = _watched(runner, monkeypatch)

    async def go() -> None:
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0)
        await runner.request_swap("ma_cross", MovingAverageCross(ExampleSettings(5, 20)),
                                  version_id="v2")
        assert synced == ["wal"]  # the swap's commit, before the loop went on
        await task

    asyncio.run(go())
    assert synced == ["wal"]


def test_paper_commits_fsync_every_time(tmp_path: Path, demo_config: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = demo_config.read_text().replace('mode = "replay"', 'mode = "paper"')
    assert 'mode = "paper"' in text
    paper = tmp_path / "paper.toml"
    paper.write_text(text)
    runner = Runner(load_config(paper), tmp_path / "p", max_events=3_000)
    at_commits, at_finish, _synced = _watched(runner, monkeypatch)
    runner.run_sync()
    assert at_commits and set(at_commits) == {FULL}
    assert at_finish == [FULL]
