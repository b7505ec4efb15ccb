"""A ledger is opened only where it is an Argus ledger or nothing yet: a foreign SQLite file
(another program's database named argus.db, a path typed wrong) is refused before anything
is written to it (it was migrated: Argus's tables created inside it), and a damaged file
is a ledger error naming it, not SQLite's bare words."""

from __future__ import annotations

import re
from pathlib import Path

import apsw
import pytest

from argus_core.errors import LedgerError
from argus_core.ledger import Ledger


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "argus.db"
    conn = apsw.Connection(str(db))
    conn.execute("create table customers (id integer primary key, name text)")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(LedgerError, match=r"argus\.db: not an Argus ledger .*customers.*"
                                          r"nothing was changed"):
        Ledger.in_dir(tmp_path)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argus.db"]  # no -wal / -shm


def test_a_damaged_file_is_a_ledger_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "argus.db").write_bytes(b"\x00not sqlite at all" * 512)
    with pytest.raises(LedgerError,
                       match=r"argus\.db cannot be used: .*not a database"):
        Ledger.in_dir(tmp_path)


def test_a_new_and_an_existing_ledger_still_open(tmp_path: Path) -> None:
    """The guard's attack: an empty file (touched, never written) is no foreign database,
    and an Argus ledger opens again without migrating twice."""
    (tmp_path / "argus.db").touch()
    with Ledger.in_dir(tmp_path) as first:
        assert first.applied
    with Ledger.in_dir(tmp_path) as again:
        assert again.applied == []


@pytest.mark.parametrize("content", [b"x", b"my notes\n", b"SQLite format 2\x00",
                                     b"\x00" * 4095])
def test_a_short_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path,
                                                             content: bytes) -> None:
    """A one-byte file named argus.db became a 120 kB ledger (SQLite took it for an empty
    database); every other file without SQLite's header SQLite refuses itself."""
    db = tmp_path / "argus.db"
    db.write_bytes(content)
    with pytest.raises(LedgerError, match=r"argus\.db cannot be used: NotADBError: file is "
                                          r"not a database"):
        Ledger.in_dir(tmp_path)
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argus.db"]


def test_check_run_ledger_reads_without_writing_and_names_what_is_wrong(
        tmp_path: Path) -> None:
    """The plugins' read-only check (``argus_core.check_run_ledger``): every refusal names
    the path and says what to pass; nothing is created or migrated."""
    from argus_core import check_run_ledger

    (tmp_path / "empty").mkdir()
    (tmp_path / "dbdir" / "argus.db").mkdir(parents=True)
    (tmp_path / "onebyte").mkdir()
    (tmp_path / "onebyte" / "argus.db").write_bytes(b"x")
    (tmp_path / "foreign").mkdir()
    conn = apsw.Connection(str(tmp_path / "foreign" / "argus.db"))
    conn.execute("create table t (x)")
    conn.close()
    for where, said in [("nodir", "nodir: no run ledger (argus.db) here; pass X"),
                        ("empty", "empty: no run ledger (argus.db) here; pass X"),
                        ("dbdir", "is a directory, not a ledger file; pass X"),
                        ("onebyte", "NotADBError: file is not a database"),
                        ("foreign", "not an Argus ledger (it has no runs table)")]:
        with pytest.raises(LedgerError, match=re.escape(said)):
            check_run_ledger(tmp_path / where, "pass X")
    assert not (tmp_path / "nodir").exists()
    assert (tmp_path / "onebyte" / "argus.db").read_bytes() == b"x"
    with Ledger.in_dir(tmp_path / "run"):
        pass
    before = (tmp_path / "run" / "argus.db").read_bytes()
    assert {"runs", "orders", "fills"} <= check_run_ledger(tmp_path / "run")
    assert (tmp_path / "run" / "argus.db").read_bytes() == before  # (WAL readers' -shm)


def test_a_ledger_busy_while_it_opens_is_said_busy_not_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: "cannot be used: BusyError: database is locked (a damaged file, or not an
    Argus ledger)" when a writer (a running loop) held the write lock past the wait while
    the ledger opened: the Telegram bot's /kill said a damaged file (the CLI reworded it)."""
    from argus_core import ledger as ledger_mod

    Ledger.in_dir(tmp_path).close()
    monkeypatch.setattr(ledger_mod, "_wait_for_lock", lambda tries: tries < 5)
    holder = apsw.Connection(str(tmp_path / "argus.db"))
    holder.execute("begin immediate")
    try:
        with pytest.raises(LedgerError, match=r"argus\.db is busy: another process held its "
                                              r"write lock.*try again") as info:
            # a migration set the ledger does not have yet makes the open write
            migrations = ledger_mod.Migrations()

            @migrations.set("busy_test")
            def m001_table(conn: apsw.Connection) -> None:
                conn.execute("create table busy_test (x integer)")

            Ledger.in_dir(tmp_path, migrations=migrations)
    finally:
        holder.execute("rollback")
        holder.close()
    assert "damaged" not in str(info.value)
