"""The portfolio plugin's "Strategy books" report section reads each book's equity as
joined texts (no ``Decimal`` per row) and takes the account's series from the core's
read: the books are the very ones the row-by-row read gave, to the bit."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import attrs
import numpy as np
import pytest

argus_portfolio = pytest.importorskip("argus_portfolio")
from argus_portfolio.books import BookSummary, read_books, report_section  # noqa: E402  (after the skip: the plugin may not be installed)
from argus_portfolio.league import drawdowns, period_returns  # noqa: E402  (after the skip above)

from argus_core.ledger import Ledger  # noqa: E402  (after the skip above)
from argus_core.report import read_report_data  # noqa: E402  (after the skip above)

T0 = 1_600_000_000 * 10**9
MINUTE_NS = 60 * 10**9
E8 = Decimal("1E-8")


def _old_summary(slot: str, ts: list[int], equity: list[Decimal], fills: int) -> BookSummary:
    """``books._summary`` row by row: one ``Decimal`` per row, annualised by the core's
    rule (observations per year over the rows' span, as the report's Sharpe)."""
    values = np.array([float(e) for e in equity])
    sharpe = None
    if len(values) > 2:
        r = period_returns(values)
        sd = float(r.std(ddof=1))
        if sd > 0:
            per_year = len(ts[1:]) / ((ts[-1] - ts[0]) / (365.25 * 86_400e9))
            sharpe = float(r.mean() / sd * math.sqrt(per_year))
    return BookSummary(slot, equity[0], equity[-1], sharpe,
                       float(drawdowns(values).max()) if len(values) else 0.0, fills)


def _old_books(ledger: Ledger) -> list[BookSummary]:
    """``books.read_books`` as it was (copied, without the league): row by row."""
    books: dict[str, tuple[list[int], list[Decimal]]] = {}
    for r in ledger.query("select slot, ts_ns, equity from book_equity order by slot, ts_ns"):
        t, e = books.setdefault(r["slot"], ([], []))
        t.append(int(r["ts_ns"]))
        e.append(Decimal(r["equity"]))
    total = ledger.query("select ts_ns, equity from equity order by ts_ns")
    fills = {r["strategy"]: r["n"] for r in ledger.query(
        "select o.strategy, count(*) as n from fills f join orders o using "
        "(client_order_id) group by o.strategy")}
    portfolio = _old_summary("portfolio", [r["ts_ns"] for r in total],
                             [Decimal(r["equity"]) for r in total], sum(fills.values()))
    return [*(_old_summary(slot, *books[slot], fills.get(slot, 0)) for slot in sorted(books)),
            portfolio]


def _books_run(run_dir: Path, n: int = 5_000) -> Path:
    """A run of two strategy books ("fast", "slow") whose equity adds up to the
    account's at every row, stored out of time order, and a few fills each."""
    rng = np.random.default_rng(5)
    walks = {slot: 50_000 * np.exp(np.cumsum(rng.normal(0, 2e-3, n))) for slot in
             ("fast", "slow")}
    steps = np.where(rng.random(n) < 0.01, 30, 1) * MINUTE_NS
    ts = T0 + np.cumsum(steps)
    order = rng.permutation(n)
    books = {slot: [Decimal(repr(float(v))).quantize(E8) for v in w]
             for slot, w in walks.items()}
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("books", "replay", 5, json.dumps(
            {"argus": {"plugins": ["portfolio"]}, "run": {"starting_cash": "100000"}}))
        with ledger.transaction():
            ledger.append_equity([(int(ts[i]), "0", str(books["fast"][i] + books["slow"][i]),
                                   "1") for i in order])
            ledger.append_book_equity([(int(ts[i]), slot, "0", str(books[slot][i]))
                                       for slot in books for i in order])
            for k, slot in enumerate(["fast", "fast", "slow"]):
                ledger.insert("orders", {
                    "client_order_id": f"o{k}", "run_id": "books", "venue": "replay",
                    "instrument_id": "replay:BTC/USD", "side": "buy", "quantity": "1",
                    "order_type": "market", "time_in_force": "ioc", "strategy": slot,
                    "ts_ns": int(ts[k]), "status": "filled", "filled_quantity": "1"})
                ledger.insert("fills", {
                    "fill_id": f"f{k}", "client_order_id": f"o{k}", "venue": "replay",
                    "instrument_id": "replay:BTC/USD", "side": "buy", "price": "100",
                    "quantity": "1", "fee": "0.1", "liquidity": "taker", "ts_ns": int(ts[k])})
    return run_dir


def test_books_are_what_the_row_by_row_read_gave(tmp_path: Path) -> None:
    run_dir = _books_run(tmp_path / "run")
    with Ledger.in_dir(run_dir) as ledger:
        old = _old_books(ledger)
        shared = read_report_data(ledger)
    assert [b.slot for b in old] == ["fast", "slow", "portfolio"]
    assert [b.fills for b in old] == [2, 1, 3] and all(b.sharpe for b in old)
    assert read_books(run_dir) == old  # every figure, exactly
    assert read_books(run_dir, shared) == old  # the account's series from the core's read
    assert old[-1].end_equity == shared.final_equity


def test_the_section_takes_the_core_read(tmp_path: Path) -> None:
    run_dir = _books_run(tmp_path / "run")
    with Ledger.in_dir(run_dir) as ledger:
        shared = read_report_data(ledger)
    section = report_section(run_dir, shared)
    assert section is not None and section == report_section(run_dir)
    # The portfolio row is the core's series: a crash in it shows in the section.
    crashed = shared.equity.copy()
    crashed[len(crashed) // 2] /= 2
    html = report_section(run_dir, attrs.evolve(shared, equity=crashed))
    assert html is not None and html != section
    worst = f"<td>{drawdowns(crashed).max():.2%}</td><td>3</td>"  # the portfolio's max dd
    assert drawdowns(crashed).max() > 0.5 and worst in html["Strategy books"]


def _unmigrate_book_equity(run_dir: Path) -> list[tuple[object, ...]]:
    """Put ``book_equity`` back as migration m004 created it (a rowid table of every book
    at every equity row; its rows kept in a shuffled storage order) and forget m007, m009
    and m010 (which keep the rows in ``book_equity_changes``, then ``book_rows``, behind a
    view of that name), as in a ledger written before them; returns the rows in key
    order."""
    import apsw

    conn = apsw.Connection(str(run_dir / "argus.db"))
    rows = list(conn.execute("select ts_ns, slot, cash, equity from book_equity "
                             "order by slot, ts_ns"))
    shuffled = [rows[i] for i in np.random.default_rng(3).permutation(len(rows))]
    with conn:
        conn.execute("drop view book_equity; drop view book_equity_changes;"
                     "drop table book_rows;"
                     "delete from _argus_migrations where name in"
                     " ('m009_book_equity_changes', 'm010_book_rows');"
                     "create table book_equity (ts_ns integer not null, slot text not null,"
                     " cash text not null, equity text not null, primary key (slot, ts_ns));"
                     "delete from _argus_migrations where name = 'm007_book_equity_clustered'")
        conn.executemany("insert into book_equity values (?,?,?,?)", shuffled)
    assert "without rowid" not in str(conn.execute(
        "select sql from sqlite_master where name = 'book_equity'").fetchall()[0][0]).lower()
    conn.close()
    return rows


def test_books_of_a_ledger_written_before_m007(tmp_path: Path) -> None:
    """A ledger from before the clustered ``book_equity`` (opened read-only: the report
    never migrates) reads the same books; a writer that opens it migrates every row."""
    run_dir = _books_run(tmp_path / "run")
    clustered = read_books(run_dir)
    rows = _unmigrate_book_equity(run_dir)
    assert read_books(run_dir) == clustered  # scanned in storage order, sorted here
    with Ledger.in_dir(run_dir) as ledger:  # a writer: migrations m007 to m010 run
        assert ledger.applied == ["core.m007_book_equity_clustered",
                                  "core.m009_book_equity_changes", "core.m010_book_rows"]
        for table in ("book_equity_changes", "book_equity"):  # the rows, and the view's
            assert [tuple(r.values()) for r in ledger.query(
                f"select ts_ns, slot, cash, equity from {table} order by slot, ts_ns")] == rows
        assert ledger.query("select count(*) as n from book_rows")[0]["n"] == len(
            {r[0] for r in rows})  # one row per time
    assert read_books(run_dir) == clustered
