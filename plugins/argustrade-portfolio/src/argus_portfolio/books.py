"""Per-strategy and portfolio views of a run: each strategy book's equity curve summarised
(start, end, return, Sharpe, maximum drawdown, fills) beside the whole account's, with
the league's standing of each slot — for ``argus league books`` and the run's report.

Read from the run's ledger through a read-only apsw connection (safe beside a running
writer): the stored book rows carried onto the ``equity`` rows' stamps (a book's row is
stored when it moved: :mod:`argus_portfolio.book_series`; a run with one book has none:
its account is the book), the ``equity`` rows, the orders and fills, and the
``league_events`` if any.
"""

from __future__ import annotations

import html
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core import LEDGER_FILE, DataError, LedgerError, metrics, read_untouched
from argus_portfolio.book_series import book_table, carry_forward, read_with_path
from argus_portfolio.league import drawdowns, period_returns


@attrs.frozen
class BookSummary:
    """One book's (or the portfolio's, ``slot`` = "portfolio") figures over the run."""

    slot: str
    start_equity: Decimal
    end_equity: Decimal
    sharpe: float | None
    max_drawdown: float
    fills: int
    status: str = ""  # the league's: active / quarantined / killed / ineligible ("" none)
    reason: str = ""

    @property
    def total_return(self) -> float:
        """End over start equity, minus one."""
        return float(self.end_equity / self.start_equity - 1) if self.start_equity else 0.0


def _summary(slot: str, ts: NDArray[np.int64], values: NDArray[np.float64], start: Decimal,
             end: Decimal, fills: int) -> BookSummary:
    """Annualised with the core's one rule (observations per year measured over the rows'
    span, :func:`argus_core.metrics.observations_per_year`), as the report's own Sharpe:
    the median spacing used before gave daily bars with weekends 365 a year, not ~252,
    and the portfolio's row a Sharpe ratio 1.2x the report's for the same equity."""
    sharpe = None
    if len(values) > 2:
        r = period_returns(values)
        if not metrics.is_flat(r):  # a constant return's rounding noise is not risk
            sharpe = metrics.annualise(float(r.mean()) / float(r.std(ddof=1)),
                                       metrics.observations_per_year(ts))
    return BookSummary(slot, start, end, sharpe,
                       float(drawdowns(values).max()) if len(values) else 0.0, fills)


@attrs.frozen(eq=False)
class _Series:
    """One equity series: stamps, values as float64 (each the correctly rounded
    ``float()`` of its exact text) and its first and last values exact."""

    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    first: Decimal
    last: Decimal


def _read_series(conn: apsw.Connection, table: str, slot: str | None,
                 onto: NDArray[np.int64] | None = None) -> _Series | None:
    """``table``'s equity rows (of ``slot`` in a table of book rows) in time order, or
    None; ``onto``: the run's equity stamps, which a book's rows are carried onto
    (:mod:`argus_portfolio.book_series`).

    SQLite joins each column into one text and numpy parses it in C (no Python object
    per row: 700k rows of ``Decimal`` cost seconds).  A book is one contiguous range of
    its table in time order where the core stored it keyed (slot, ts_ns) without a
    rowid (migrations m007 to m009; other ledgers: :func:`_read_all_series`).  The
    first and last rows, exact, are two seeks on the key."""
    where, args = ("", ()) if slot is None else (" where slot = ?", (slot,))
    n, ts_text, eq_text = conn.execute(
        f"select count(*), group_concat(ts_ns, ','), group_concat(equity, ',') from "
        f"(select ts_ns, equity from {table}{where})", args).fetchall()[0]
    if not n:
        return None
    ts, values = _parse(table, slot, ts_text, eq_text, int(n))
    if len(ts) > 1 and not bool(np.all(ts[1:] > ts[:-1])):  # one scan: both aligned
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
    if onto is not None:
        ts, values = carry_forward(onto, ts, values)
    ends = [conn.execute(f"select equity from {table}{where} order by ts_ns {way} limit 1",
                         args).fetchall()[0][0] for way in ("asc", "desc")]
    return _Series(ts, values, _exact(table, slot, ends[0]), _exact(table, slot, ends[1]))


def _where(table: str, slot: str | None) -> str:
    return f"{table}" + ("" if slot is None else f" of book {slot!r}")


def _parse(table: str, slot: str | None, ts_text: object, eq_text: object, n: int
           ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The stamps and equity values of ``n`` rows from their comma-joined texts; a row
    that is no finite number is a :class:`LedgerError` naming the table and the book
    (a damaged equity text was a traceback from numpy, a NaN one a Sharpe of nan)."""
    try:
        ts = np.fromstring(str(ts_text), dtype=np.int64, sep=",")
        values = metrics.decimal_column(str(eq_text))  # the ledger's 8 decimals: fast
    except ValueError:
        ts, values = np.zeros(0, dtype=np.int64), np.zeros(0)
    if not len(ts) == len(values) == n or not bool(np.all(np.isfinite(values))):
        raise LedgerError(f"{_where(table, slot)}: {n} equity rows could not be read back "
                          f"whole (a stamp or an equity that is no finite number): a "
                          f"damaged ledger")
    return ts, values


def _exact(table: str, slot: str | None, text: object) -> Decimal:
    """A stored equity text as an exact finite Decimal (else a :class:`LedgerError`)."""
    try:
        value = Decimal(str(text))
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite():
        raise LedgerError(f"{_where(table, slot)}: equity {str(text)[:40]!r} is no finite "
                          f"number: a damaged ledger")
    return value


def _read_all_series(conn: apsw.Connection, table: str, onto: NDArray[np.int64]
                     ) -> dict[str, _Series | None]:
    """Every book's series from ``table`` in one pass (through core m010's view a book's
    rows are not a range of their own: a read per book would read every book's rows),
    each carried onto ``onto``; first and last values exact from the texts."""
    books: dict[str, _Series | None] = {}
    for slot, n, ts_text, eq_text in conn.execute(
            "select slot, count(*), group_concat(ts_ns, ','), group_concat(equity, ',') "
            f"from (select slot, ts_ns, equity from {table} order by slot, ts_ns) "
            "group by slot"):
        ts, values = _parse(table, str(slot), ts_text, eq_text, int(n))
        if len(ts) > 1 and not bool(np.all(ts[1:] > ts[:-1])):  # not as ordered: sort
            order = np.argsort(ts, kind="stable")
            ts, values = ts[order], values[order]
            texts = str(eq_text).split(",")
            first, last = texts[int(order[0])], texts[int(order[-1])]
        else:
            first, last = str(eq_text).split(",", 1)[0], str(eq_text).rsplit(",", 1)[-1]
        ts, values = carry_forward(onto, ts, values)
        books[str(slot)] = _Series(ts, values, _exact(table, str(slot), first),
                                   _exact(table, str(slot), last))
    return books


def _clustered(conn: apsw.Connection, table: str) -> bool:
    """Whether the book rows' ``table`` is stored in key order (the core's migration
    m007)."""
    sql = conn.execute("select sql from sqlite_master where type = 'table' and "
                       "name = ?", (table,)).fetchall()
    return bool(sql) and "without rowid" in str(sql[0][0]).lower()


def _slots(conn: apsw.Connection, table: str) -> list[str]:
    """The book slots, each found by one index seek ((slot, ts_ns) is the key)."""
    slots: list[str] = []
    while True:
        after = conn.execute(f"select min(slot) from {table} where slot > ?",
                             (slots[-1] if slots else "",)).fetchall()[0][0]
        if after is None:
            return slots
        slots.append(str(after))


def read_books(run_dir: Path, portfolio: Any = None) -> list[BookSummary]:
    """Each strategy book's summary (sorted by slot), then the portfolio's; empty when
    the run has no equity rows.  ``portfolio``: the core report's ``ReportData`` (its
    ``ts_ns`` and ``equity``, read already), when there is one."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: no ledger ({LEDGER_FILE}) in this folder")

    def read(conn: apsw.Connection) -> tuple[_Series | None, dict[str, _Series | None],
                                              dict[str, int], list[Any]]:
        with conn:  # one read transaction: the books and the account from one commit
            if portfolio is None:
                total = _read_series(conn, "equity", None)
            elif len(portfolio.equity):
                first = conn.execute("select equity from equity order by ts_ns limit 1")
                total = _Series(portfolio.ts_ns, portfolio.equity,
                                _exact("equity", None, first.fetchall()[0][0]),
                                portfolio.final_equity)
            else:
                total = None
            table = book_table(conn)
            onto = total.ts if total is not None else np.zeros(0, dtype=np.int64)
            if table is None:
                books = {}
            elif _clustered(conn, table):  # a range per book, on the key
                books = {slot: _read_series(conn, table, slot, onto)
                         for slot in _slots(conn, table)}
            else:  # core m010's view (or a table of no key order): every book, one pass
                books = _read_all_series(conn, table, onto)
            fills = {str(s): int(n) for s, n in conn.execute(
                "select o.strategy, count(*) from fills f join orders o "
                "using (client_order_id) group by o.strategy")}
            try:
                events = list(conn.execute("select slot, to_status, reason from "
                                           "league_events order by id"))
            except apsw.SQLError:  # the league never ran here
                events = []
        return total, books, fills, events

    total, books, fills, events = read_with_path(path, read)
    if total is None:
        return []
    standing = {str(slot): (str(to), str(why)) for slot, to, why in events}
    out = []
    for slot, book in sorted(books.items()):
        assert book is not None  # a slot is only found where it has rows
        status, reason = standing.get(slot, ("active" if events else "", ""))
        out.append(attrs.evolve(_summary(slot, book.ts, book.values, book.first, book.last,
                                         fills.get(slot, 0)), status=status, reason=reason))
    out.append(_summary("portfolio", total.ts, total.values, total.first, total.last,
                        sum(fills.values())))
    return out


def books_table(books: list[BookSummary]) -> list[list[str]]:
    """Rows of text: slot, start, end, return, Sharpe, max drawdown, fills, league."""
    return [[b.slot, f"{b.start_equity:,.2f}", f"{b.end_equity:,.2f}",
             f"{b.total_return:+.2%}", "-" if b.sharpe is None else f"{b.sharpe:.2f}",
             f"{b.max_drawdown:.2%}", str(b.fills), b.status or "-"] for b in books]


HEADERS = ["book", "start", "end", "return", "sharpe", "max_dd", "fills", "league"]


def books_html(books: list[BookSummary]) -> str:
    """The report section: the table, and each league transition's reason."""
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in books_table(books))
    reasons = "".join(f"<li>{html.escape(b.reason)}</li>" for b in books if b.reason)
    note = ("<p>Each strategy's own book (its <code>[run.capital]</code> share, its "
            "fills, marked at the account's marks); the books sum to the portfolio at "
            "every equity row.  Sharpe is annualised from the rows' spacing; the "
            "portfolio's fills count every book's.</p>")
    return (f"{note}<table><tr>{head}</tr>{body}</table>"
            + (f"<p>League:</p><ul>{reasons}</ul>" if reasons else ""))


def _keeps_books(run_dir: Path) -> bool:
    """Whether the run wrote per-book equity (several books), without reading it all."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.is_file():
        return False
    def keeps(conn: apsw.Connection) -> bool:
        table = book_table(conn)  # None: a ledger from before per-book equity
        return table is not None and bool(
            conn.execute(f"select exists (select 1 from {table})").fetchall()[0][0])

    return read_untouched(path, keeps)


def report_section(run_dir: Path, report: Any = None) -> dict[str, str] | None:
    """``{"Strategy books": html}`` for a run with several books, else None; ``report``
    is the core report's ``ReportData`` (the account's series, read already)."""
    if not _keeps_books(run_dir):  # one book: the report's own figures say it all
        return None
    try:
        books = read_books(run_dir, report)
    except DataError:
        return None
    except LedgerError as exc:  # a damaged book row: say so where the table would be
        return {"Strategy books": f"<p>The strategy books cannot be read: "
                                  f"{html.escape(str(exc))}</p>"}
    if len(books) < 3:  # one book and the portfolio: the report's own figures say it all
        return None
    return {"Strategy books": books_html(books)}


def jsonable(books: list[BookSummary]) -> list[dict[str, Any]]:
    """Books as JSON-able dicts (money as exact strings)."""
    return [{"slot": b.slot, "start_equity": str(b.start_equity),
             "end_equity": str(b.end_equity), "total_return": b.total_return,
             "sharpe": b.sharpe, "max_drawdown": b.max_drawdown, "fills": b.fills,
             "league": b.status or None, "reason": b.reason or None} for b in books]
