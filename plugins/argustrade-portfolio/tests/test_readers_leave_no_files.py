"""The portfolio's readers leave a finished run's folder as they found it: SQLite's
read-only connection to a WAL ledger whose writer has closed makes ``-wal`` and ``-shm``
files and never removes them (every `argus portfolio` command, report section and TCA
left two files in the run's folder); they read through the core's ``read_untouched``."""

from __future__ import annotations

from pathlib import Path

from argus_portfolio import books, league, tca

from argus_core import Ledger


def _finished_run(folder: Path) -> Path:
    with Ledger.in_dir(folder) as ledger:
        ledger.start_run("run-1", "replay", 7, "{}")
        with ledger.transaction():
            ledger.append_equity([(1, "100", "100", "0"), (2, "101", "101", "0")])
    return folder


def test_every_portfolio_reader_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    run = _finished_run(tmp_path / "run")
    assert sorted(p.name for p in run.iterdir()) == ["argus.db"]
    assert books.read_books(run)[-1].slot == "portfolio"
    assert not books._keeps_books(run)
    assert league.book_rows(run, "any") == ([1, 2], [100.0, 101.0])
    assert league.read_league_events(run) == []
    assert league.stored_verdict(run, "family") is None  # (no lab ledger there)
    assert tca.read_run(run).orders == []
    assert sorted(p.name for p in run.iterdir()) == ["argus.db"]
