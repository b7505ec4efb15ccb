"""Returns per session segment on hourly bars: one log return per segment instance,
then the mean and t-statistic per segment.

A bar's return is ``log(close / previous close)``; it belongs to the segment of its
*open* time (an hourly bar lies inside one segment, see :mod:`argus_overnight.sessions`).
A segment instance's return is the sum of its bars' returns, i.e. the close of its last
bar over the close just before it started: what a position bought at the segment's start
and sold at its end earns before costs.  Across a gap in the data the return of the bar
after the gap spans the gap and is booked to that bar's segment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs
import numpy as np

from argus_core import DataError
from argus_overnight.sessions import SEGMENTS, segment_of


@attrs.frozen
class SegmentReturns:
    """One row per segment instance, in time order."""

    segment: np.ndarray  # str labels
    key_day: np.ndarray  # int64: the unix day the instance began (a weekend's Friday)
    start_s: np.ndarray  # int64: open time of the instance's first bar
    log_return: np.ndarray  # float64: sum of its bars' log returns
    n_bars: np.ndarray  # int64


@attrs.frozen
class SegmentStats:
    """Mean and t-statistic of one segment's instance returns."""

    segment: str
    n: int
    mean_log: float
    std_log: float
    t_stat: float  # mean / (std / sqrt(n)); NaN below two instances
    mean_simple: float  # mean of exp(log_return) - 1: what a holder earns before costs

    @property
    def mean_simple_bps(self) -> float:
        """``mean_simple`` in basis points."""
        return self.mean_simple * 1e4


def segment_returns(open_s: np.ndarray, close: np.ndarray) -> SegmentReturns:
    """Group bars (open times in UTC seconds, strictly increasing) into segment instances.

    The first bar has no previous close, so it only anchors the next bar's return.
    """
    open_s = np.asarray(open_s, dtype=np.int64)
    close = np.asarray(close, dtype=np.float64)
    if open_s.shape != close.shape or open_s.ndim != 1:
        raise DataError("segment_returns needs two 1-D arrays of equal length")
    if open_s.size and (np.any(np.diff(open_s) <= 0) or not np.all(np.isfinite(close))
                        or np.any(close <= 0)):
        raise DataError("segment_returns needs increasing times and positive, finite closes")
    labels: list[str] = []
    keys: list[int] = []
    starts: list[int] = []
    sums: list[float] = []
    counts: list[int] = []
    log_close = np.log(close)
    for i in range(1, open_s.size):
        seg, key = segment_of(int(open_s[i]))
        r = float(log_close[i] - log_close[i - 1])
        if labels and labels[-1] == seg and keys[-1] == key:
            sums[-1] += r
            counts[-1] += 1
        else:
            labels.append(seg)
            keys.append(key)
            starts.append(int(open_s[i]))
            sums.append(r)
            counts.append(1)
    return SegmentReturns(np.array(labels, dtype=object), np.array(keys, dtype=np.int64),
                          np.array(starts, dtype=np.int64), np.array(sums, dtype=np.float64),
                          np.array(counts, dtype=np.int64))


def stats_of(segment: str, log_returns: Iterable[float]) -> SegmentStats:
    """Mean, sample standard deviation (ddof 1) and t-statistic of one segment's returns."""
    x = np.fromiter(log_returns, dtype=np.float64)
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    t = mean / (std / math.sqrt(n)) if n > 1 and std > 0 else math.nan
    simple = float(np.expm1(x).mean()) if n else math.nan
    return SegmentStats(segment, n, mean, std, t, simple)


def segment_stats(rets: SegmentReturns, start_s: int | None = None,
                  end_s: int | None = None) -> dict[str, SegmentStats]:
    """Per-segment statistics of the instances that *start* in ``[start_s, end_s)``."""
    keep = np.ones(rets.start_s.size, dtype=bool)
    if start_s is not None:
        keep &= rets.start_s >= start_s
    if end_s is not None:
        keep &= rets.start_s < end_s
    return {seg: stats_of(seg, rets.log_return[keep & (rets.segment == seg)])
            for seg in SEGMENTS}


def read_kraken_bars(path: str, start_s: int | None = None,
                     end_s: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Open times (UTC seconds) and closes of a Kraken OHLCVT CSV (no header), bars whose
    open time lies in ``[start_s, end_s)``."""
    raw = np.loadtxt(path, delimiter=",", usecols=(0, 4), ndmin=2)
    open_s = raw[:, 0].astype(np.int64)
    keep = np.ones(open_s.size, dtype=bool)
    if start_s is not None:
        keep &= open_s >= start_s
    if end_s is not None:
        keep &= open_s < end_s
    return open_s[keep], raw[keep, 1]


def format_table(stats: dict[str, SegmentStats]) -> str:
    """A plain-text table (the README's figures come from this)."""
    lines = [f"{'segment':<26}{'n':>6}{'mean bps':>10}{'t':>8}{'mean simple bps':>17}"]
    for s in stats.values():
        lines.append(f"{s.segment:<26}{s.n:>6}{s.mean_log * 1e4:>10.1f}{s.t_stat:>8.2f}"
                     f"{s.mean_simple_bps:>17.1f}")
    return "\n".join(lines)
