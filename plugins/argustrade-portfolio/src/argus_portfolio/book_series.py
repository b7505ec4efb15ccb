"""A strategy book's equity series from the ledger's stored book rows.

The core stores a book's row only when its cash or equity moved since its last row (a
flat book stores none until it trades again): the books that moved at one time are one
JSON row of ``book_rows`` (core m010), read as one row per book through the view
``book_equity_changes`` (in a ledger of core m009, a table of that name); a book's value
at any time is its last row at or before it. The ledger's view ``book_equity`` carries
every book onto every equity row for SQL readers; the readers here read the stored rows
and carry them forward themselves, onto the ``equity`` rows' stamps and the book's own
rows' stamps (the view's rule): a book's series has a value at every equity row from its
first row on, exactly the rows a ledger that wrote every book at every equity row holds
(such ledgers read the same).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import apsw
import numpy as np
from numpy.typing import NDArray

from argus_core import LedgerError, read_untouched

_T = TypeVar("_T")

#: The stored book rows, one per book and time it moved (``ts_ns, slot, cash, equity``).
CHANGES = "book_equity_changes"

Query = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


def carried_rows(query: Query, slot: str, after: int, before: int) -> list[tuple[int, str]]:
    """``slot``'s equity text carried onto each ``equity`` row's and each of its own rows'
    stamps in (after, before), stamps before the book's first row left out; ``query``
    runs SQL with parameters (a core ``Ledger.query``).  Three range reads: the window's
    book rows and stamps, and the book's last row at or before ``after`` (read back from
    there: as far as the book has not moved), for the few rows an online reader asks
    for at a time."""
    own = [(int(r["ts_ns"]), str(r["equity"])) for r in query(
        f"select ts_ns, equity from {CHANGES} where slot = ? and ts_ns > ? and ts_ns < ?"
        " order by ts_ns", (slot, after, before))]
    start = [(int(r["ts_ns"]), str(r["equity"])) for r in query(
        f"select ts_ns, equity from {CHANGES} where slot = ? and ts_ns <= ? order by ts_ns"
        " desc limit 1", (slot, after))]
    stamps = {int(r["ts_ns"]) for r in query(
        "select ts_ns from equity where ts_ns > ? and ts_ns < ?", (after, before))}
    rows = start + own
    if not rows:
        return []
    at = np.array([t for t, _ in rows], dtype=np.int64)
    times, index = carry_forward(np.array(sorted(stamps), dtype=np.int64), at,
                                 np.arange(len(rows)))
    return [(int(t), rows[int(k)][1]) for t, k in zip(times, index, strict=True)
            if t > after]


def book_table(conn: apsw.Connection) -> str | None:
    """Where ``conn``'s stored book rows read as one row per book and time it moved:
    ``book_equity_changes`` (a view of ``book_rows`` from core m010, a table in m009),
    the table ``book_equity`` in a ledger from before m009 (opened read-only, never
    migrated: every book at every equity row), or None (no book rows kept)."""
    kinds = {str(name): str(kind) for name, kind in conn.execute(
        "select name, type from sqlite_master where name in (?, ?)", (CHANGES, "book_equity"))}
    if CHANGES in kinds:
        return CHANGES
    return "book_equity" if kinds.get("book_equity") == "table" else None


def carry_forward(stamps: NDArray[np.int64], row_ts: NDArray[np.int64],
                  *columns: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """The union of ``stamps`` and ``row_ts`` from the first row's on, and each column's
    value at its last row at or before each of them (``row_ts`` ascending, the columns
    aligned with it)."""
    stamps = np.union1d(stamps, row_ts)
    at = np.searchsorted(row_ts, stamps, side="right") - 1
    keep = at >= 0
    at = at[keep]
    return (stamps[keep], *(c[at] for c in columns))


def read_with_path(path: Path, read: Callable[[apsw.Connection], _T]) -> _T:
    """:func:`argus_core.read_untouched`, a damaged ledger's errors naming ``path`` (a
    damaged book row, or SQLite's "malformed JSON" from a damaged ``book_rows``, said
    "the ledger cannot be used" without saying which one)."""
    try:
        return read_untouched(path, read)
    except apsw.Error as exc:
        raise LedgerError(f"{path}: cannot be read: {type(exc).__name__}: {exc} (a damaged "
                          f"ledger)") from None
    except LedgerError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise LedgerError(f"{path}: {exc}") from None
