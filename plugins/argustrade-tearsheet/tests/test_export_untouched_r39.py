"""``argus export`` of a finished run leaves the run's folder as it was: a plain read-only
connection left ``argus.db-wal`` and ``argus.db-shm`` there for good (it failed so)."""

from __future__ import annotations

from pathlib import Path

from argus_tearsheet import export_run


def test_an_export_leaves_a_finished_runs_folder_untouched(constructed_run: Path,
                                                           tmp_path: Path) -> None:
    before = sorted(p.name for p in constructed_run.iterdir())
    assert "argus.db-wal" not in before
    export_run(constructed_run, tmp_path / "out")
    assert sorted(p.name for p in constructed_run.iterdir()) == before
