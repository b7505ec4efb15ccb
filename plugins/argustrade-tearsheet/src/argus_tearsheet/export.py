"""``argus export``: a run's trades, orders, fills and equity as CSV or Parquet files.

The ledger is opened read-only (apsw, ``SQLITE_OPEN_READONLY``, as the monitor does):
exporting never migrates or writes a run.  Money and quantities are exact decimal text
in the ledger and stay exact: **strings** in both formats (CSV cells, Parquet
``string`` columns), never floats; integer columns (``ts_ns``, ``seed``...) are
``int64`` in Parquet.  ``None`` is an empty CSV cell and a Parquet null.

CSV is UTF-8 whatever the locale.  A text cell a spreadsheet would run as a formula
(starting ``=``, ``+``, ``-``, ``@``, tab or carriage return, and not a number: a
strategy's reason, an instrument's name) is written with a leading ``'`` (OWASP's
CSV-injection rule), so a spreadsheet shows it as text; numbers such as ``-5.235`` are
written as they are.  Parquet keeps every text as it is.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import apsw

from argus_core import ArgusError, LedgerError, read_untouched, write_atomically
from argus_tearsheet.run_data import RUNNER_CHECKPOINT, final_marks, ledger_path
from argus_tearsheet.trades import Trade, build_books

#: What ``argus export`` writes, one file each.
TABLES = ("trades", "orders", "fills", "equity")
FORMATS = ("csv", "parquet")
#: The ledger tables exported as they are, with the order their rows are written in.
_LEDGER_TABLES = {"orders": "ts_ns, client_order_id", "fills": "ts_ns, rowid",
                  "equity": "ts_ns"}
TRADE_COLUMNS = ("strategy", "instrument_id", "side", "quantity", "entry_price",
                 "exit_price", "opened_ns", "closed_ns", "holding_ns", "return", "pnl",
                 "fees", "entry_reason", "exit_reason")
_TRADE_INT_COLUMNS = {"opened_ns", "closed_ns", "holding_ns"}
#: What a spreadsheet reads as the start of a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Table:
    """Named columns, each ``int`` (int64) or ``str`` (exact text), and their rows."""

    def __init__(self, columns: Sequence[tuple[str, type]], rows: list[tuple[Any, ...]]):
        self.columns = list(columns)
        self.rows = rows

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [name for name, _ in self.columns]


def export_run(run_dir: Path, out_dir: Path | None = None, fmt: str = "csv") -> list[Path]:
    """Write ``trades``, ``orders``, ``fills`` and ``equity`` of ``run_dir`` to ``out_dir``
    (default ``run_dir/export``) as ``fmt`` ("csv" or "parquet"); the paths written."""
    if fmt not in FORMATS:
        raise ArgusError(f"export format {fmt!r}: use one of {', '.join(FORMATS)}")
    path = ledger_path(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "export"
    tables = read_tables(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgusError(f"{out}: cannot create the export folder: {exc.strerror}") from None
    written = []
    for name in TABLES:
        target = out / f"{name}.{fmt}"
        _replace(target, tables[name], _write_csv if fmt == "csv" else _write_parquet)
        written.append(target)
    return written


def _replace(target: Path, table: Table, write: Callable[[Table, Path], None]) -> None:
    """``write`` the table to ``target`` through the core's atomic write (a full disk or a
    crash leaves the previous export whole, never a truncated table, which reads as a
    complete, shorter one).  A failure names the file."""
    try:
        write_atomically(target, lambda part: write(table, part))
    except OSError as exc:
        raise ArgusError(f"{target}: cannot write the export: {exc.strerror or exc}") from None


def read_tables(path: Path) -> dict[str, Table]:
    """The four tables of the ledger at ``path`` (read-only, one read transaction; a
    finished run's folder left as it was: no ``-wal`` or ``-shm`` file made there)."""
    def read(conn: apsw.Connection) -> tuple[dict[str, Table], Any]:
        conn.execute("begin")  # every table from the same commit
        try:
            return ({name: _ledger_table(conn, name, order)
                     for name, order in _LEDGER_TABLES.items()},
                    conn.execute("select state_json from checkpoints where name = ?",
                                 (RUNNER_CHECKPOINT,)).fetchone())
        finally:
            conn.execute("commit")

    try:
        tables, saved = read_untouched(path, read)
    except apsw.Error as exc:  # damaged, or SQLite but not a run ledger: the core's words
        raise LedgerError(f"{path} cannot be used: {type(exc).__name__}: {exc} (a damaged "
                          f"file, or not an Argus ledger)") from None
    marks = final_marks(None if saved is None else str(saved[0]), path)
    orders = _dicts(tables["orders"])
    book = build_books(_dicts(tables["fills"]), {str(o["client_order_id"]): o
                                                 for o in orders}, marks)
    tables["trades"] = trades_table(book.trades)
    return tables


def trades_table(trades: Iterable[Trade]) -> Table:
    """Closed trades as a table (Decimals as exact text)."""
    rows = [(t.strategy, t.instrument_id, t.side, str(t.quantity), str(t.entry_price),
             str(t.exit_price), t.opened_ns, t.closed_ns, t.holding_ns,
             str(t.return_fraction), str(t.pnl), str(t.fees), t.entry_reason, t.exit_reason)
            for t in trades]
    return Table([(c, int if c in _TRADE_INT_COLUMNS else str) for c in TRADE_COLUMNS], rows)


def _ledger_table(conn: apsw.Connection, name: str, order: str) -> Table:
    info = list(conn.execute(f"pragma table_info({name})"))
    # SQLite declared types: integer columns stay int64; everything else is exact text.
    columns = [(str(col[1]), int if str(col[2]).lower() == "integer" else str)
               for col in info]
    rows = list(conn.execute(f"select * from {name} order by {order}"))
    return Table(columns, [tuple(r) for r in rows])


def _dicts(table: Table) -> list[dict[str, Any]]:
    names = table.names
    return [dict(zip(names, row, strict=True)) for row in table.rows]


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: text a spreadsheet would run as a formula gets a leading
    ``'`` (numbers, ``-5.235``, stay as they are); everything else is unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        Decimal(value)
    except InvalidOperation:
        return f"'{value}"
    return value


def _write_csv(table: Table, target: Path) -> None:
    with open(target, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_cell(name) for name in table.names])
        writer.writerows([csv_cell(v) for v in row] for row in table.rows)


def _write_parquet(table: Table, target: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {int: pa.int64(), str: pa.string()}
    schema = pa.schema([(name, types[kind]) for name, kind in table.columns])
    columns = list(zip(*table.rows, strict=True)) if table.rows else [()] * len(schema)
    arrays = [pa.array([None if v is None else kind(v) for v in col], type=types[kind])
              for col, (_, kind) in zip(columns, table.columns, strict=True)]
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), target)
