"""Read-only views of run ledgers, one page at a time in a stable order.

Every read opens its own read-only apsw connection on the run's ``argus.db`` and
closes it, so a request never holds a lock a running loop needs, no connection is
shared between the server's threads, and none can write.  It is apsw's, like the
ledger's, never the standard library's ``sqlite3`` (two copies of SQLite in one
process do not see each other's POSIX locks; see ``argus_monitor.ledger_view``).

Pages are keyset pages: rows come in the order of a unique key (``equity``: its
``ts_ns`` primary key; ``opportunities``: ``(ts_ns, opportunity_id)``; ``signals``:
``(ts_ns, name, instrument_id)``) and the cursor is the last row's key, so a walk visits
every row exactly once even while a running loop appends rows behind it.  Money stays
the ledger's exact decimal text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apsw
import attrs

from argus_core import LEDGER_FILE, DataError, LedgerError, loads_frame, read_untouched


def encode_cursor(key: Sequence[Any], scope: str | None = None) -> str:
    """An opaque cursor for the row key ``key`` (URL-safe base64 of its JSON); ``scope``
    (the listing it pages, e.g. ``equity:<run id>``) goes first, so that a cursor of
    one listing is refused by another instead of paging it from a foreign position."""
    payload = [scope, *key] if scope is not None else list(key)
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type], scope: str | None = None) -> list[Any]:
    """The row key in ``cursor``, one value of each type of ``kinds`` (``int`` or ``str``);
    ``DataError`` when it is not one of ours: a value of another type (text for a time
    read an empty page), an integer outside 0 .. 2**63 (10**30 overflowed the ledger's
    query, -2 read rows from the end), JSON nested deep (read by ``loads_frame``: a
    RecursionError was a 500), or a cursor of another listing than ``scope`` (an equity
    cursor paged a run's bars)."""
    try:
        key = loads_frame(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # not base64, not UTF-8, not JSON, nested too deep
        key = None
    if scope is not None:
        key = key[1:] if isinstance(key, list) and key[:1] == [scope] else None
    if not isinstance(key, list) or len(key) != len(kinds) or not all(
            (type(k) is int and kind is int and 0 <= k < 2**63)
            or (type(k) is str and kind is str) for k, kind in zip(key, kinds, strict=False)):
        shown = cursor if len(cursor) <= 80 else f"{cursor[:80]}…"  # not 64 KB echoed
        raise DataError(f"cursor {shown!r} is not a cursor this API handed out for this "
                        f"listing; pass the 'next_cursor' of the previous page, or none "
                        f"for the first")
    return key


@attrs.frozen
class Page:
    """One page of rows and the cursor of the next (None: this was the last)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None


@attrs.frozen
class Table:
    """How to page one ledger table: its columns, its unique order key and filters."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    filters: tuple[str, ...] = ()

    @property
    def key_kinds(self) -> tuple[type, ...]:
        """The type of each key column: the ledger's times (``*_ns``) are integers, every
        other key (ids, names) text."""
        return tuple(int if column.endswith("_ns") else str for column in self.key)


EQUITY = Table("equity", ("ts_ns", "cash", "equity", "gross_exposure"), ("ts_ns",))
OPPORTUNITIES = Table(
    "opportunities", ("opportunity_id", "scanner", "ts_ns", "kind", "expected_profit",
                      "risk_free", "status", "body_json"),
    ("ts_ns", "opportunity_id"), ("scanner", "kind", "status"))
SIGNALS = Table("signals", ("name", "instrument_id", "ts_ns", "value"),
                ("ts_ns", "name", "instrument_id"), ("name", "instrument_id"))


@attrs.frozen
class RunLedger:
    """One run directory's ledger, read-only."""

    run_dir: Path

    @property
    def path(self) -> Path:
        """``run_dir/argus.db``."""
        return self.run_dir / LEDGER_FILE

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts, in one read transaction (a finished run's folder left
        as it was: the core's ``read_untouched``)."""
        if not self.path.is_file():
            raise LedgerError(f"{self.run_dir}: no {LEDGER_FILE} here; pass a directory "
                              f"`argus run` or `argus backtest` wrote")

        def read(conn: apsw.Connection) -> list[dict[str, Any]]:
            cursor = conn.execute(sql, params)
            try:
                names = [d[0] for d in cursor.get_description()]
            except apsw.ExecutionCompleteError:
                return []
            return [dict(zip(names, row, strict=True)) for row in cursor]

        try:
            return read_untouched(self.path, read, 2000)
        except apsw.SQLError as exc:
            raise LedgerError(f"{self.path}: {exc} (a ledger older than this plugin?)") \
                from None
        except apsw.ReadOnlyError:
            raise  # a write through this read-only view: a bug, never a client's doing
        except apsw.Error as exc:  # damaged, replaced or locked while served: 503, not 500
            raise LedgerError(f"{self.path} cannot be read: {type(exc).__name__}: {exc} "
                              f"(a damaged ledger, or one a writer holds locked)") from None

    def run(self) -> dict[str, Any]:
        """The ``runs`` row (one run per directory)."""
        rows = self.query("select run_id, mode, seed, config_json, config_hash, status, "
                          "started_ns, ended_ns from runs")
        if not rows:
            raise LedgerError(f"{self.path} has no run recorded")
        return rows[0]

    def config(self) -> dict[str, Any]:
        """The run's recorded config (``runs.config_json``, decoded)."""
        config = self.json_column(str(self.run()["config_json"]), "runs.config_json")
        if not isinstance(config, dict):
            raise LedgerError(f"{self.path}: runs.config_json is {type(config).__name__}, "
                              f"not a table (a damaged ledger)")
        return config

    def json_column(self, text: str, where: str) -> Any:
        """``text``, a JSON column of this ledger, decoded; ``where`` names the column (and
        row) in the ``LedgerError`` a damaged value gives."""
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise LedgerError(f"{self.path}: {where} is not JSON ({exc}; a damaged "
                              f"ledger)") from None

    def counts(self) -> dict[str, int]:
        """Rows per table the API serves."""
        out: dict[str, int] = {}
        for table in ("orders", "fills", "equity", "opportunities", "signals"):
            out[table] = int(self.query(f"select count(*) as n from {table}")[0]["n"])
        return out

    def page(self, table: Table, limit: int, cursor: str | None = None,
             where: dict[str, Any] | None = None, scope: str | None = None) -> Page:
        """Up to ``limit`` rows of ``table`` after ``cursor``, in key order; the cursors
        are bound to ``scope`` (default: the table's name; the API adds the run id)."""
        scope = table.name if scope is None else scope
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (where or {}).items():
            if column not in table.filters:
                raise DataError(f"{table.name} cannot be filtered by {column!r}")
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if cursor is not None:
            after = decode_cursor(cursor, table.key_kinds, scope)
            cols = ", ".join(table.key)
            marks = ", ".join("?" for _ in table.key)
            clauses.append(f"({cols}) > ({marks})")  # row values: SQLite >= 3.15
            params.extend(after)
        sql = (f"select {', '.join(table.columns)} from {table.name}"
               + (f" where {' and '.join(clauses)}" if clauses else "")
               + f" order by {', '.join(table.key)} limit ?")
        rows = self.query(sql, [*params, limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = encode_cursor([rows[-1][k] for k in table.key], scope) if more and rows \
            else None
        return Page(rows, nxt)
