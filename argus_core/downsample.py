"""Min/max decimation of a time series for plotting: draw no more points than pixels.

A line plot can show at most one vertical stroke per pixel column.  For each of
``columns`` equal slices of the x range, :func:`envelope_indices` keeps the first,
last, lowest and highest point, so the drawn stroke of every column spans exactly
the values the full series has there: every peak, trough and one-bar spike stays
visible, which plain striding (every k-th point) does not promise.
"""

from __future__ import annotations

import numpy as np


def envelope_indices(x: np.ndarray, y: np.ndarray, columns: int) -> np.ndarray:
    """Sorted indices of the points of ``y`` (over sorted ``x``) to draw in ``columns``
    pixel columns: all of them when there are no more than four per column, else each
    column's first, last, minimum and maximum (the first of ties)."""
    n = len(y)
    if n <= 4 * columns:
        return np.arange(n)
    offset = (x - x[0]).astype(np.float64)  # int64 ns would lose precision as float
    scale = columns / offset[-1] if offset[-1] > 0 else 0.0
    column = np.minimum((offset * scale).astype(np.int64), columns - 1)
    # x is sorted, so each column is one run of consecutive indices.
    starts = np.flatnonzero(np.diff(column, prepend=-1))
    sizes = np.diff(starts, append=n)
    keep = [starts, starts + sizes - 1]
    for reduce in (np.minimum, np.maximum):
        extreme = np.repeat(reduce.reduceat(y, starts), sizes)
        hits = np.flatnonzero(y == extreme)
        keep.append(hits[np.diff(column[hits], prepend=-1) != 0])  # first hit per column
    return np.unique(np.concatenate(keep))
