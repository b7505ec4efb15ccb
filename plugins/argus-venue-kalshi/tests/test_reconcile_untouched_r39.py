"""Reading a finished Kalshi run's settlements leaves its folder as it was: a plain
read-only connection left ``argus.db-wal`` and ``argus.db-shm`` there for good (it
failed so)."""

from __future__ import annotations

from pathlib import Path

from argus_venue_kalshi.reconcile import ledger_settled

from argus_core import Ledger


def test_reading_settlements_leaves_a_finished_runs_folder_untouched(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("r", "live", 0, "{}")
    assert sorted(p.name for p in run_dir.iterdir()) == ["argus.db"]
    assert ledger_settled(run_dir) == ({}, set())
    assert sorted(p.name for p in run_dir.iterdir()) == ["argus.db"]
