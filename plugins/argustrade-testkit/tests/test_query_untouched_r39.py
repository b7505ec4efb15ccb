"""``argus_testkit.processes.query`` of a finished run leaves its folder as it was (a plain
read-only connection left ``argus.db-wal`` and ``argus.db-shm`` there: it failed so), and
still sees a writer's commits while the writer is open."""

from __future__ import annotations

from pathlib import Path

from argus_testkit.processes import query

from argus_core import Ledger


def test_query_leaves_a_finished_runs_folder_untouched(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("r", "paper", 0, "{}")
    assert [r["run_id"] for r in query(run_dir, "select run_id from runs")] == ["r"]
    assert query(run_dir, "select * from no_such_table") == []
    assert sorted(p.name for p in run_dir.iterdir()) == ["argus.db"]
    with Ledger.in_dir(run_dir) as writer:  # a running writer: read beside its WAL
        writer.set_control("trading_state", '{"state": "halted"}', 1)
        assert [r["value"] for r in query(run_dir, "select value from control")] == [
            '{"state": "halted"}']
    assert sorted(p.name for p in run_dir.iterdir()) == ["argus.db"]
