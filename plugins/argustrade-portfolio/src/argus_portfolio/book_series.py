"""A strategy book's equity series from the ledger's stored book rows.

The core stores a book's row only when its cash or equity moved since its last row (a
flat book stores none until it trades again), in ``book_equity_changes``; a book's value
at any time is its last row at or before it. The ledger's view ``book_equity`` carries
every book onto every equity row for SQL readers; it costs a look-up per row, so the
readers here read the stored rows and carry them forward themselves, onto the
``equity`` rows' stamps and the book's own rows' stamps (the view's rule): a book's
series has a value at every equity row from its first row on, exactly the rows a ledger
that wrote every book at every equity row holds (such ledgers read the same).
"""

from __future__ import annotations

from typing import Any

import apsw
import numpy as np
from numpy.typing import NDArray

#: The table of stored book rows in a ledger migrated by core m009.
CHANGES = "book_equity_changes"

#: ``slot``'s equity carried onto each ``equity`` row's and each of its own rows' stamps
#: in (after, before) (``?1`` slot, ``?2`` after, ``?3`` before), stamps before the
#: book's first row left out (their equity is NULL); one seek on the (slot, ts_ns) key
#: per row, for the few rows an online reader asks for at a time.
CARRIED_ROWS_SQL = (
    f"select t.ts_ns as ts_ns, (select c.equity from {CHANGES} c where c.slot = ?1 and "
    "c.ts_ns <= t.ts_ns order by c.ts_ns desc limit 1) as equity from (select ts_ns from "
    f"equity where ts_ns > ?2 and ts_ns < ?3 union select ts_ns from {CHANGES} where "
    "slot = ?1 and ts_ns > ?2 and ts_ns < ?3) t order by t.ts_ns")


def book_table(conn: apsw.Connection) -> str | None:
    """The table holding ``conn``'s stored book rows: ``book_equity_changes`` (core m009
    on), the table ``book_equity`` in a ledger from before it (opened read-only, never
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
