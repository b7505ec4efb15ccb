"""A book's rows stored only when it moved (the core's runner, ``book_equity_changes``)
read as the rows of a ledger that wrote every book at every equity row: the books
section, ``book_rows`` (the league's reference), the league's online read and the core's
``book_equity`` view, each against the same ledger written in full, and against that
ledger as it was before core m009 (the table ``book_equity``, opened read-only)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import apsw
import numpy as np
import pytest
from argus_portfolio.book_series import CHANGES, carried_rows, carry_forward
from argus_portfolio.books import read_books
from argus_portfolio.league import book_rows

from argus_core.ledger import Ledger, core_migrations
from argus_core.migrations import Migrations

HOUR_NS = 3600 * 10**9
T0 = 1_700_000_000 * 10**9


def _books(n: int, seed: int) -> tuple[list[int], dict[str, list[tuple[int, str, str]]]]:
    """Equity stamps and each book's full rows (ts, cash, equity): values that sit still
    for stretches (a flat book), a book that starts at the middle row."""
    rng = np.random.default_rng(seed)
    ts = [T0 + HOUR_NS * int(k) for k in np.cumsum(rng.integers(1, 4, n))]
    books: dict[str, list[tuple[int, str, str]]] = {}
    for slot, start, p_move in (("fast", 0, 0.6), ("slow", 0, 0.1), ("late", n // 2, 0.3)):
        value, cash, rows = Decimal(50_000), Decimal(50_000), []
        for t in ts[start:]:
            if rng.random() < p_move:
                value = (value * Decimal(repr(float(rng.normal(1, 2e-3))))).quantize(
                    Decimal("1e-8"))
                if rng.random() < 0.2:  # a fill moves the cash too
                    cash = value
            rows.append((t, str(cash), str(value)))
        books[slot] = rows
    return ts, books


def _ledger(run_dir: Path, ts: list[int], books: dict[str, list[tuple[int, str, str]]],
            changed_only: bool) -> Path:
    total: dict[int, Decimal] = {}
    for rows in books.values():
        for t, _cash, equity in rows:
            total[t] = total.get(t, Decimal(0)) + Decimal(equity)
    kept = []
    for slot, rows in books.items():
        last = None
        for t, cash, equity in rows:
            if not changed_only or (cash, equity) != last:
                kept.append((t, slot, cash, equity))
            last = (cash, equity)
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("books", "replay", 5, json.dumps(
            {"argus": {"plugins": ["portfolio"]}, "run": {"starting_cash": "100000"}}))
        with ledger.transaction():
            ledger.append_equity([(t, "0", str(total[t]), "0") for t in ts])
            ledger.append_book_equity(kept)
        assert ledger.query(f"select count(*) as n from {CHANGES}")[0]["n"] == len(kept)
    return run_dir


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_changed_rows_read_as_every_row(tmp_path: Path, seed: int) -> None:
    ts, books = _books(600, seed)
    full = _ledger(tmp_path / "full", ts, books, changed_only=False)
    sparse = _ledger(tmp_path / "sparse", ts, books, changed_only=True)
    with Ledger.in_dir(sparse) as ledger:
        stored = ledger.query(f"select count(*) as n from {CHANGES}")[0]["n"]
    assert stored < 0.7 * sum(len(r) for r in books.values())  # the rows left out
    assert read_books(sparse) == read_books(full)  # every figure, exactly
    for slot in books:
        assert book_rows(sparse, slot) == book_rows(full, slot)
        assert book_rows(full, slot)[0] == [t for t, _, _ in books[slot]]
    with Ledger.in_dir(full) as a, Ledger.in_dir(sparse) as b:
        every = a.query(f"select * from {CHANGES} order by slot, ts_ns")
        assert b.query("select * from book_equity order by slot, ts_ns") == every  # the view
        assert a.query("select * from book_equity order by slot, ts_ns") == every
        rng = np.random.default_rng(seed)
        for _ in range(30):  # the league's online read over windows (after, before)
            after, before = sorted(int(x) for x in rng.choice(ts, 2))
            for slot in books:
                want = carried_rows(a.query, slot, after - 1, before + 1)
                got = carried_rows(b.query, slot, after - 1, before + 1)
                assert got == want == [(r["ts_ns"], r["equity"]) for r in b.query(
                    "select ts_ns, equity from book_equity where slot = ? and ts_ns >= ? "
                    "and ts_ns <= ? order by ts_ns", (slot, after, before))]
                assert [t for t, _ in got] == [
                    t for t, _, _ in books[slot] if after <= t <= before]


def _before_m009(conn: apsw.Connection) -> None:
    """The book rows back in the table ``book_equity`` (core m007's clustered table), as
    before core m009 and m010."""
    conn.execute("create table t (ts_ns integer not null, slot text not null, cash text not"
                 " null, equity text not null, primary key (slot, ts_ns)) without rowid;"
                 f"insert into t select ts_ns, slot, cash, equity from {CHANGES};"
                 f"drop view book_equity; drop view {CHANGES}; drop table book_rows;"
                 "alter table t rename to book_equity;"
                 "delete from _argus_migrations where name in"
                 " ('m009_book_equity_changes', 'm010_book_rows')")


def test_a_ledger_from_before_m009_reads_the_same(tmp_path: Path) -> None:
    """The table ``book_equity`` of every row, as before core m009, opened read-only (a
    report never migrates): the same books; a writer that opens it migrates it."""
    ts, books = _books(300, 4)
    full = _ledger(tmp_path / "full", ts, books, changed_only=False)
    sparse = _ledger(tmp_path / "sparse", ts, books, changed_only=True)
    want = read_books(sparse)
    conn = apsw.Connection(str(full / "argus.db"))
    with conn:
        _before_m009(conn)
    conn.close()
    assert read_books(full) == want
    assert all(book_rows(full, slot) == book_rows(sparse, slot) for slot in books)
    with Ledger.in_dir(full) as ledger:
        assert ledger.applied == ["core.m009_book_equity_changes", "core.m010_book_rows"]
    assert read_books(full) == want


def test_a_ledger_of_m009_reads_the_same_and_migrates_every_row(tmp_path: Path) -> None:
    """A ledger of core m009 (a row per book and time in the table
    ``book_equity_changes``) opened read-only reads the same books; a writer packs its
    rows one per time (m010) and every view reads exactly the rows it held."""
    ts, books = _books(300, 5)
    sparse = _ledger(tmp_path / "sparse", ts, books, changed_only=True)
    want = read_books(sparse)
    with Ledger.in_dir(sparse) as ledger:
        rows = {t: ledger.query(f"select * from {t} order by slot, ts_ns")
                for t in (CHANGES, "book_equity")}
    m = Migrations()
    core_migrations(m)
    m009 = dict(m.set("core").migrations)["m009_book_equity_changes"]
    conn = apsw.Connection(str(sparse / "argus.db"))
    with conn:
        _before_m009(conn)
        m009(conn)
        conn.execute("insert into _argus_migrations values ('core', "
                     "'m009_book_equity_changes')")
    assert conn.execute(f"select type from sqlite_master where name = '{CHANGES}'"
                        ).fetchall() == [("table",)]
    conn.close()
    assert read_books(sparse) == want
    assert all(book_rows(sparse, slot)[0] == [t for t, _, _ in books[slot]] for slot in books)
    with Ledger.in_dir(sparse) as ledger:
        assert ledger.applied == ["core.m010_book_rows"]
        assert {t: ledger.query(f"select * from {t} order by slot, ts_ns")
                for t in (CHANGES, "book_equity")} == rows
        assert ledger.query("select count(*) as n from book_rows")[0]["n"] == len(
            {r["ts_ns"] for r in rows[CHANGES]})
    assert read_books(sparse) == want


def test_book_rows_without_equity_rows_are_their_own_stamps(tmp_path: Path) -> None:
    """Book rows written by hand with no ``equity`` rows (a test's ledger, a tool's) read
    as themselves: a book's own rows' stamps are on its timeline too."""
    with Ledger.in_dir(tmp_path) as ledger:
        ledger.append_book_equity([(T0 + k * HOUR_NS, "a", "1", str(100 + k)) for k in range(5)])
        ledger.append_book_equity([(T0 + k * HOUR_NS, "b", "1", "7") for k in range(0, 5, 2)])
        assert carried_rows(ledger.query, "a", T0 - 1, T0 + 10 * HOUR_NS) == [
            (T0 + k * HOUR_NS, str(100 + k)) for k in range(5)]
        assert len(ledger.query("select * from book_equity where slot = 'b'")) == 3
        # written through the view, as into the table it was: stored, and read back
        ledger.conn.execute("insert into book_equity values (?, 'c', '2', '9')", (T0,))
        assert ledger.query("select * from book_equity_changes where slot = 'c'") == [
            {"ts_ns": T0, "slot": "c", "cash": "2", "equity": "9"}]
    assert book_rows(tmp_path, "a") == ([T0 + k * HOUR_NS for k in range(5)],
                                        [float(100 + k) for k in range(5)])


def test_carry_forward_takes_the_last_row_at_or_before_each_stamp() -> None:
    stamps = np.array([1, 2, 3, 5, 8, 9], dtype=np.int64)
    ts, values = carry_forward(stamps, np.array([2, 5, 6], dtype=np.int64),
                               np.array([20.0, 50.0, 60.0]))
    assert ts.tolist() == [2, 3, 5, 6, 8, 9]  # from the first row on, its own stamps too
    assert values.tolist() == [20.0, 20.0, 50.0, 60.0, 60.0, 60.0]
