"""Min/max decimation of a time series for plotting: draw no more points than pixels.

A line plot can show at most one vertical stroke per pixel column.  For each of
``columns`` equal slices of the x range, :func:`envelope_indices` keeps the first,
last, lowest and highest point, so the drawn stroke of every column spans exactly
the values the full series has there: every peak, trough and one-bar spike stays
visible, which plain striding (every k-th point) does not promise.
"""

from __future__ import annotations

import numpy as np

#: Points per slice of the column pass: the n-sized temporaries of the plain formula
#: (float offsets, scaled offsets, column numbers, their differences) cost ~40 MB on a
#: 700k-point series; in slices they stay under a megabyte each.
_SLICE = 1 << 16


def _column_of(x: np.ndarray, columns: int) -> np.ndarray:
    """Each point's pixel column, ``min(int((x - x[0]) * columns / span), columns - 1)``
    with the offsets as float64 (int64 ns would lose precision as float), computed a
    slice at a time into one int32 array (the same values as the whole-array formula)."""
    n = len(x)
    span = float(x[-1] - x[0])
    scale = columns / span if span > 0 else 0.0
    column = np.empty(n, dtype=np.int32)
    for lo in range(0, n, _SLICE):
        part = (x[lo:lo + _SLICE] - x[0]).astype(np.float64)
        part *= scale
        column[lo:lo + _SLICE] = np.minimum(part.astype(np.int64), columns - 1)
    return column


def envelope_indices(x: np.ndarray, y: np.ndarray, columns: int) -> np.ndarray:
    """Sorted indices of the points of ``y`` (over sorted ``x``) to draw in ``columns``
    pixel columns: all of them when there are no more than four per column, else each
    column's first, last, minimum and maximum (the first of ties)."""
    n = len(y)
    if n <= 4 * columns:
        return np.arange(n)
    column = _column_of(x, columns)
    # x is sorted, so each column is one run of consecutive indices.
    starts = np.flatnonzero(column[1:] != column[:-1]) + 1
    starts = np.concatenate(([0], starts))
    sizes = np.diff(starts, append=n)
    keep = [starts, starts + sizes - 1]
    for reduce in (np.minimum, np.maximum):
        extreme = np.repeat(reduce.reduceat(y, starts), sizes)
        hits = np.flatnonzero(y == extreme)
        del extreme
        keep.append(hits[np.diff(column[hits], prepend=-1) != 0])  # first hit per column
    return np.unique(np.concatenate(keep))
