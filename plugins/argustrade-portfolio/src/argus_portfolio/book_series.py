"""A strategy book's equity series from the ledger's ``book_equity`` rows.

The core writes a book's row only when its cash or equity moved since its last row (a
flat book writes none until it trades again), so a book's value at any time is its last
row at or before it. Every reader here carries a book's rows forward onto the ``equity``
rows' stamps, the run's timeline: a book's series has a value at every equity row from
its first row on, exactly the rows a ledger that wrote every book at every equity row
holds (such ledgers read the same).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

#: ``slot``'s equity carried onto each ``equity`` row's stamp in (after, before), stamps
#: before the book's first row left out (their equity is NULL); one seek on the
#: (slot, ts_ns) key per row, for the few rows an online reader asks for at a time.
CARRIED_ROWS_SQL = (
    "select e.ts_ns as ts_ns, (select b.equity from book_equity b where b.slot = ? and "
    "b.ts_ns <= e.ts_ns order by b.ts_ns desc limit 1) as equity from equity e "
    "where e.ts_ns > ? and e.ts_ns < ? order by e.ts_ns")


def carry_forward(stamps: NDArray[np.int64], row_ts: NDArray[np.int64],
                  *columns: NDArray[Any]) -> tuple[NDArray[np.int64], ...]:
    """``stamps`` from the first row's on, and each column's value at its last row at or
    before each of them (``row_ts`` ascending, the columns aligned with it)."""
    at = np.searchsorted(row_ts, stamps, side="right") - 1
    keep = at >= 0
    at = at[keep]
    return (stamps[keep], *(c[at] for c in columns))
