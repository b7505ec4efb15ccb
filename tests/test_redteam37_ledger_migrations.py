"""Red team (ledger): migration sets apply once, in order, atomically, and a plugin's set
can neither end the transaction, write the core's tables nor run before the core's.

Found: a plugin migration raising anything but an apsw error was a bare traceback (and
left the connection open); one that ran ``commit`` made the core's migrations before it
permanent without the plugin's record (half a migration); a plugin's set could drop
``fills`` or write ``orders`` rows no one sent; a plugin registering into the set
``core`` ran its migration before the core's ``m001_initial``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from argus_core.errors import LedgerError
from argus_core.ledger import LEDGER_FILE, Ledger, core_migrations
from argus_core.migrations import Migration, Migrations


def _plugin(fn: Migration, name: str = "plug") -> Migrations:
    migrations = Migrations()
    migrations.set(name)(fn)
    return migrations


def _tables(path: Path) -> set[str]:
    conn = apsw.Connection(str(path))
    try:
        return {n for (n,) in conn.execute("select name from sqlite_master where type='table'")}
    finally:
        conn.close()


def _applied(path: Path) -> list[tuple[str, str]]:
    conn = apsw.Connection(str(path))
    try:
        return [(s, n) for s, n in conn.execute(
            "select migration_set, name from _argus_migrations order by rowid")]
    finally:
        conn.close()


def test_a_plugin_migration_that_raises_is_a_ledger_error(tmp_path: Path) -> None:
    def m001_bug(conn: apsw.Connection) -> None:
        conn.execute("create table plug_t (x)")
        raise ValueError("plugin bug")

    with pytest.raises(LedgerError, match=r"argus\.db: migration plug\.m001_bug failed: "
                                          r"ValueError: plugin bug"):
        Ledger.in_dir(tmp_path, _plugin(m001_bug))
    assert _tables(tmp_path / LEDGER_FILE) == set()  # nothing committed, the core's neither


@pytest.mark.parametrize("sql", ["commit", "rollback", "commit; begin", "end"])
def test_a_plugin_migration_cannot_end_the_transaction(tmp_path: Path, sql: str) -> None:
    def m001_commits(conn: apsw.Connection) -> None:
        conn.execute(sql)
        conn.execute("create table plug_t (x)")

    with pytest.raises(LedgerError, match="may not begin or end the transaction"):
        Ledger.in_dir(tmp_path, _plugin(m001_commits))
    # All or nothing: the core's migrations were not committed without the plugin's.
    assert _tables(tmp_path / LEDGER_FILE) == set()
    with Ledger.in_dir(tmp_path) as ledger:  # and the file opens as a new ledger
        assert "core.m001_initial" in ledger.applied


@pytest.mark.parametrize("sql", [
    "drop table fills",
    "delete from orders",
    "insert into orders (client_order_id, run_id, venue, instrument_id, side, quantity,"
    " order_type, time_in_force, strategy, ts_ns, status) values"
    " ('x', 'r', 'v', 'i', 'buy', '1', 'limit', 'gtc', 's', 1, 'filled')",
    "update checkpoints set state_json = '{}'",
    "alter table orders add column plug text",
    "create unique index plug_i on fills(client_order_id)",
    "create trigger plug_tr before insert on fills begin select raise(abort, 'no'); end",
    "drop view book_equity",
    "delete from _argus_migrations",
    "pragma writable_schema = 1",
])
def test_a_plugin_migration_cannot_touch_the_core_tables(tmp_path: Path, sql: str) -> None:
    Ledger.in_dir(tmp_path).close()  # the core's schema in place first

    def m001_meddles(conn: apsw.Connection) -> None:
        conn.execute(sql)

    with pytest.raises(LedgerError, match=r"migration plug\.m001_meddles failed: AuthError"):
        Ledger.in_dir(tmp_path, _plugin(m001_meddles))
    assert ("plug", "m001_meddles") not in _applied(tmp_path / LEDGER_FILE)


def test_a_plugin_set_named_core_is_refused(tmp_path: Path) -> None:
    def m000_first(conn: apsw.Connection) -> None:
        conn.execute("create table before_core (x)")

    with pytest.raises(LedgerError, match="set 'core', which is the core's own"):
        Ledger.in_dir(tmp_path, _plugin(m000_first, "core"))
    assert not (tmp_path / LEDGER_FILE).exists() or _tables(tmp_path / LEDGER_FILE) == set()


def test_a_plugin_still_reads_the_core_and_migrates_its_own_tables(tmp_path: Path) -> None:
    """The fence lets a set read the core's tables and make, alter, index and trigger
    its own (each applied once, after the core's, in order)."""
    migrations = Migrations()
    plug = migrations.set("plug")

    @plug
    def m001_tables(conn: apsw.Connection) -> None:
        conn.execute("create table plug_t (x); create index plug_t_x on plug_t(x);"
                     "insert into plug_t select count(*) from orders;"
                     "savepoint s; insert into plug_t values (2); release s")

    @plug
    def m002_alter(conn: apsw.Connection) -> None:
        conn.execute("alter table plug_t add column y; create trigger plug_tr after insert"
                     " on plug_t begin select 1; end; update plug_t set y = 1")

    with Ledger.in_dir(tmp_path, migrations) as ledger:
        assert ledger.applied[-2:] == ["plug.m001_tables", "plug.m002_alter"]
        assert ledger.applied[0] == "core.m001_initial"
        assert ledger.query("select x, y from plug_t order by x") == [
            {"x": 0, "y": 1}, {"x": 2, "y": 1}]
    again = Migrations()
    again.set("plug")(m001_tables)
    again.set("plug")(m002_alter)
    with Ledger.in_dir(tmp_path, again) as ledger:
        assert ledger.applied == []


_OLD_SCHEMA = 5  # core m001..m005: a ledger written by an older Argus


def _old_ledger(path: Path) -> None:
    full = Migrations()
    core_migrations(full)
    old = Migrations()
    for name, fn in full.sets["core"].migrations[:_OLD_SCHEMA]:
        fn.__name__ = name
        old.set("core")(fn)
    conn = apsw.Connection(str(path))
    conn.execute("pragma journal_mode=wal")
    old.apply(conn)
    conn.close()


_KILLED_MID_MIGRATION = """
import os, signal, sys
from pathlib import Path
from argus_core.ledger import Ledger
from argus_core.migrations import Migrations
m = Migrations()
plug = m.set("plug")

@plug
def m001_dies(conn):
    conn.execute("create table plug_t (x)")
    os.kill(os.getpid(), signal.SIGKILL)  # the core's m006.. are done in this transaction

Ledger.in_dir(Path(sys.argv[1]), m)
"""


def test_sigkill_mid_migration_leaves_the_old_schema_usable(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    _old_ledger(path)
    before = _applied(path)
    child = subprocess.run([sys.executable, "-c", _KILLED_MID_MIGRATION, str(tmp_path)],
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                           check=False, timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert _applied(path) == before  # the old schema, whole: nothing of the killed open
    assert "control_log" not in _tables(path) and "plug_t" not in _tables(path)
    with Ledger.in_dir(tmp_path) as ledger:  # then it migrates once, in order
        assert ledger.applied == [f"core.{n}" for n in (
            "m006_control_log", "m007_book_equity_clustered", "m008_fill_corrections",
            "m009_book_equity_changes", "m010_book_rows")]
    with Ledger.in_dir(tmp_path) as ledger:
        assert ledger.applied == []


def test_a_ledger_of_a_newer_argus_is_refused_unchanged(tmp_path: Path) -> None:
    Ledger.in_dir(tmp_path).close()
    path = tmp_path / LEDGER_FILE
    conn = apsw.Connection(str(path))
    conn.execute("insert into _argus_migrations values ('core', 'm999_future')")
    conn.close()
    before = _applied(path), _tables(path)

    def m001_plug(conn: apsw.Connection) -> None:
        conn.execute("create table plug_t (x)")

    with pytest.raises(LedgerError, match=r"newer version \(migration core\.m999_future"):
        Ledger.in_dir(tmp_path, _plugin(m001_plug))
    assert (_applied(path), _tables(path)) == before
