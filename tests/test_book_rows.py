"""The ledger's book rows (core m010): the books that moved at one time are one JSON row
of ``book_rows``; the views ``book_equity_changes`` (a row per book and time it moved)
and ``book_equity`` (every book carried onto every equity row) read them, and take
inserts as the tables they replaced did."""

from __future__ import annotations

import random
from pathlib import Path

import apsw
import pytest

from argus_core.ledger import Ledger


def _carried(stamps: list[int], rows: dict[str, list[tuple[int, str, str]]]
             ) -> list[tuple[int, str, str, str]]:
    """The plain rule, written out: a book at every equity stamp and each of its own
    rows' stamps from its first row on, valued at its last row at or before it."""
    out = []
    for slot, own in rows.items():
        own = sorted(own)
        first = own[0][0]
        for t in sorted({s for s in stamps if s >= first} | {r[0] for r in own}):
            last = [r for r in own if r[0] <= t][-1]
            out.append((t, slot, last[1], last[2]))
    return sorted(out, key=lambda r: (r[1], r[0]))


@pytest.mark.parametrize("seed", range(4))
def test_the_book_equity_view_is_the_plain_carry(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    stamps = sorted(rng.sample(range(1, 400), 120))
    rows: dict[str, list[tuple[int, str, str]]] = {}
    for slot in ("a", "b", "c", "late"):
        times = sorted(rng.sample(range(1 if slot != "late" else 200, 420), 30))
        # some at equity stamps, some between them (a hand-written row), some after
        rows[slot] = [(t, str(rng.randint(0, 9)), f"{rng.random() * 100:.8f}") for t in times]
    with Ledger.in_dir(tmp_path) as ledger, ledger.transaction():
        ledger.append_equity([(t, "0", "0", "0") for t in stamps])
        ledger.append_book_equity([(t, slot, c, e) for slot, own in rows.items()
                                   for t, c, e in own])
        got = [tuple(r.values()) for r in ledger.query(
            "select ts_ns, slot, cash, equity from book_equity order by slot, ts_ns")]
        stored = ledger.query("select count(*) as n from book_rows")[0]["n"]
    assert got == _carried(stamps, rows)
    assert stored == len({t for own in rows.values() for t, _, _ in own})  # one per time


def test_inserts_through_the_views_merge_into_a_time_s_row(tmp_path: Path) -> None:
    with Ledger.in_dir(tmp_path) as ledger, ledger.transaction():
        conn = ledger.conn
        conn.execute("insert into book_equity_changes values (5, 'a', '1', '10')")
        conn.execute("insert into book_equity values (5, 'b', '2', '20')")  # the same time
        conn.execute("insert into book_equity_changes values (5, 'a', '1', '11')")  # replaced
        conn.execute("insert into book_equity values (7, 'c', 3, 1.5)")  # numbers: as text
        assert ledger.query("select * from book_equity_changes order by ts_ns, slot") == [
            {"ts_ns": 5, "slot": "a", "cash": "1", "equity": "11"},
            {"ts_ns": 5, "slot": "b", "cash": "2", "equity": "20"},
            {"ts_ns": 7, "slot": "c", "cash": "3", "equity": "1.5"}]
        assert ledger.query("select count(*) as n from book_rows")[0]["n"] == 2
        assert ledger.last_book_rows(["a", "c", "nobody"]) == {"a": ("1", "11"),
                                                               "c": ("3", "1.5")}
        for view in ("book_equity", "book_equity_changes"):
            with pytest.raises(apsw.ConstraintError, match=f"NOT NULL.*{view}"):
                conn.execute(f"insert into {view} values (9, 'a', null, '1')")


def test_the_runner_s_rows_merge_as_a_resumed_run_rewrites_them(tmp_path: Path) -> None:
    """``append_book_rows`` merges a time's JSON into the row it has (a resumed run
    rewrites its own rows: the same books, the same texts)."""
    with Ledger.in_dir(tmp_path) as ledger, ledger.transaction():
        ledger.append_book_rows([(1, '{"a":["1","10"],"b":["2","20"]}')])
        ledger.append_book_rows([(1, '{"a":["1","10"],"b":["2","20"]}'),
                                 (2, '{"b":["2","21"]}')])
        assert [tuple(r.values()) for r in ledger.query(
            "select * from book_equity_changes order by ts_ns, slot")] == [
            (1, "a", "1", "10"), (1, "b", "2", "20"), (2, "b", "2", "21")]
        assert ledger.last_book_rows(["a", "b"]) == {"a": ("1", "10"), "b": ("2", "21")}
        assert ledger.last_book_rows([]) == {}
