"""Min/max envelope decimation for the charts: a few thousand points from 700k rows.

The x range is cut into ``buckets`` equal slices (a chart's pixel columns); each slice
keeps its first, last, lowest and highest point, so every peak, trough and one-bar
spike stays on the chart, and the first and last points of the series always do.
:func:`equity_envelope` keeps as well each slice's deepest drawdown and the running peak
it fell from, so the plotted equity falls as far as the real one: a trough that is
neither its slice's lowest nor its highest point (a peak and the fall from it inside a
slice that began lower) was decimated away.  Everything is numpy: no Python loop over
points.  Only the charts are decimated; every
number in the report comes from the full series.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Pixel columns of a chart across a wide page.
DEFAULT_BUCKETS = 1_500


def envelope(x: NDArray[np.int64], y: NDArray[np.float64],
             buckets: int = DEFAULT_BUCKETS) -> NDArray[np.intp]:
    """Sorted indices into ``y`` (over sorted ``x``) to plot: all of them when there are
    at most four per bucket, else each bucket's first, last, minimum and maximum."""
    n = len(y)
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    if n <= 4 * buckets:
        return np.arange(n)
    return np.unique(np.concatenate(_extremes(y, *_buckets(x, buckets))))


def equity_envelope(x: NDArray[np.int64], equity: NDArray[np.float64],
                    buckets: int = DEFAULT_BUCKETS) -> NDArray[np.intp]:
    """:func:`envelope` of ``equity`` plus each bucket's deepest drawdown (from the running
    peak) and that peak's row: the decimated line's max drawdown is the full series' (at
    most six points a bucket)."""
    n = len(equity)
    if buckets < 1 or n <= 4 * buckets:
        return envelope(x, equity, buckets)
    bucket, starts = _buckets(x, buckets)
    peak = np.maximum.accumulate(equity)
    fall = peak - equity  # the depth's order within a bucket is the drawdown's, peak > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(peak > 0, fall / peak, fall)
    troughs = _first_of_each(depth, np.maximum, bucket, starts)
    peak_row = np.maximum.accumulate(np.where(equity == peak, np.arange(n), 0))
    return np.unique(np.concatenate([*_extremes(equity, bucket, starts), troughs,
                                     peak_row[troughs]]))


def _buckets(x: NDArray[np.int64], buckets: int) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """Each row's bucket (equal slices of the x range) and the first row of each run of
    one bucket (x sorted: one run per bucket that has rows)."""
    offset = (x - x[0]).astype(np.float64)
    scale = buckets / offset[-1] if offset[-1] > 0 else 0.0
    bucket = np.minimum((offset * scale).astype(np.int64), buckets - 1)
    return bucket, np.flatnonzero(np.diff(bucket, prepend=-1))


def _extremes(y: NDArray[np.float64], bucket: NDArray[np.int64],
              starts: NDArray[np.intp]) -> list[NDArray[np.intp]]:
    """Each bucket's first, last, lowest and highest row (unsorted, may repeat)."""
    return [starts, np.append(starts[1:], len(y)) - 1,
            _first_of_each(y, np.minimum, bucket, starts),
            _first_of_each(y, np.maximum, bucket, starts)]


def _first_of_each(y: NDArray[np.float64], reduce: np.ufunc, bucket: NDArray[np.int64],
                   starts: NDArray[np.intp]) -> NDArray[np.intp]:
    """The first row of each bucket holding its extreme (``reduce``: ``np.minimum`` or
    ``np.maximum``), found with ``reduceat`` over the buckets' runs."""
    sizes = np.diff(np.append(starts, len(y)))
    extreme = np.repeat(reduce.reduceat(y, starts), sizes)
    hits = np.flatnonzero(y == extreme)
    return hits[np.diff(bucket[hits], prepend=-1) != 0]
