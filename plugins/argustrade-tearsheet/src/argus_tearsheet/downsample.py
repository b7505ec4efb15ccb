"""Min/max envelope decimation for the charts: a few thousand points from 700k rows.

The x range is cut into ``buckets`` equal slices (a chart's pixel columns); each slice
keeps its first, last, lowest and highest point, so every peak, trough and one-bar
spike stays on the chart, and the first and last points of the series always do.
Everything is numpy: no Python loop over points.  Only the charts are decimated; every
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
    offset = (x - x[0]).astype(np.float64)
    scale = buckets / offset[-1] if offset[-1] > 0 else 0.0
    bucket = np.minimum((offset * scale).astype(np.int64), buckets - 1)
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))  # x sorted: runs of one bucket
    ends = np.append(starts[1:], n) - 1
    sizes = ends - starts + 1
    # Each bucket's extremes (reduceat per run of one bucket), then the first row hitting each.
    lows = np.repeat(np.minimum.reduceat(y, starts), sizes)
    highs = np.repeat(np.maximum.reduceat(y, starts), sizes)
    keep = [starts, ends]
    for extreme in (lows, highs):
        hits = np.flatnonzero(y == extreme)
        keep.append(hits[np.diff(bucket[hits], prepend=-1) != 0])
    return np.unique(np.concatenate(keep))
