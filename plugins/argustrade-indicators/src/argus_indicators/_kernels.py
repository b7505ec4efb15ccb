"""Compiled loops behind the batch functions.

Each kernel walks the bars in order with exactly the arithmetic of its streaming class in
:mod:`argus_indicators.streaming` (same operations, same order, sequential sums), so batch
and streaming results agree bar for bar.  Kernels see only finite rows: the batch
wrappers drop rows with a NaN before calling them and put NaN back afterwards.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@numba.njit(cache=True)
def ema(x: F64, period: int) -> F64:  # pragma: no cover - compiled
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < period:
        return out
    alpha = 2.0 / (period + 1.0)
    total = 0.0
    for i in range(period):
        total += x[i]
    value = total / period
    out[period - 1] = value
    for i in range(period, x.shape[0]):
        value += alpha * (x[i] - value)
        out[i] = value
    return out


@numba.njit(cache=True)
def rsi(x: F64, period: int) -> F64:  # pragma: no cover - compiled
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < period + 1:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = x[i] - x[i - 1]
        gain += change if change > 0.0 else 0.0
        loss += -change if change < 0.0 else 0.0
    avg_gain = gain / period
    avg_loss = loss / period
    total = avg_gain + avg_loss
    out[period] = 50.0 if total == 0.0 else 100.0 * avg_gain / total
    for i in range(period + 1, x.shape[0]):
        change = x[i] - x[i - 1]
        avg_gain = (avg_gain * (period - 1) + (change if change > 0.0 else 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + (-change if change < 0.0 else 0.0)) / period
        total = avg_gain + avg_loss
        out[i] = 50.0 if total == 0.0 else 100.0 * avg_gain / total
    return out


@numba.njit(cache=True)
def true_range(high: F64, low: F64, close: F64) -> F64:  # pragma: no cover - compiled
    out = np.empty(high.shape[0])
    for i in range(high.shape[0]):
        rng = high[i] - low[i]
        if i > 0:
            rng = max(rng, abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        out[i] = rng
    return out


@numba.njit(cache=True)
def atr(high: F64, low: F64, close: F64, period: int) -> F64:  # pragma: no cover
    out = np.full(high.shape[0], np.nan)
    if high.shape[0] < period:
        return out
    tr = true_range(high, low, close)
    total = 0.0
    for i in range(period):
        total += tr[i]
    value = total / period
    out[period - 1] = value
    for i in range(period, high.shape[0]):
        value = (value * (period - 1) + tr[i]) / period
        out[i] = value
    return out


#: Windows whose largest |value| is outside [2**-400, 2**400] are computed scaled by a
#: power of two (exact), since their squared deviations would overflow to inf (prices
#: near 1e200) or underflow to 0 (near 1e-200).  Inside it nothing changes.
SCALE_ABOVE = 2.0**400
SCALE_BELOW = 2.0**-400
#: The smallest normal float: a ratio of closes below it has lost digits (or is 0).
MIN_NORMAL = 2.2250738585072014e-308


@numba.njit(cache=True)
def window_mean_std(x: F64, start: int, stop: int,
                    ddof: int) -> tuple[float, float]:  # pragma: no cover - compiled
    """Mean and std of ``x[start:stop]`` by the corrected two-pass algorithm (see
    :func:`rolling_mean_std`), rescaled by a power of two when the magnitudes call for it
    (rounding is the same at every binary scale, so the result is what exact-range
    arithmetic would give)."""
    period = stop - start
    largest = 0.0
    for j in range(start, stop):
        largest = max(largest, abs(x[j]))
    shift = 0
    if largest > SCALE_ABOVE or 0.0 < largest < SCALE_BELOW:
        shift = math.frexp(largest)[1]
    total = 0.0
    for j in range(start, stop):
        total += math.ldexp(x[j], -shift)
    m = total / period
    residue = 0.0
    for j in range(start, stop):
        residue += math.ldexp(x[j], -shift) - m
    m += residue / period
    squares = 0.0
    for j in range(start, stop):
        d = math.ldexp(x[j], -shift) - m
        squares += d * d
    return math.ldexp(m, shift), math.ldexp(math.sqrt(squares / (period - ddof)), shift)


@numba.njit(cache=True)
def rolling_mean_std(x: F64, period: int, ddof: int) -> tuple[F64, F64]:  # pragma: no cover
    """Mean and standard deviation of each full window (``ddof`` 0 or 1), by the
    corrected two-pass algorithm: the plain mean is corrected by the mean of the
    deviations from it, which makes it exact on a window of equal values (so its std is
    exactly 0, not a rounding residue that a z-score would blow up)."""
    mean = np.full(x.shape[0], np.nan)
    std = np.full(x.shape[0], np.nan)
    for i in range(period - 1, x.shape[0]):
        mean[i], std[i] = window_mean_std(x, i - period + 1, i + 1, ddof)
    return mean, std


@numba.njit(cache=True)
def log_return(prev: float, x: float) -> float:  # pragma: no cover - compiled
    """``ln(x / prev)``, or ``ln(x) - ln(prev)`` where the ratio leaves the normal float
    range (inf, 0 or subnormal: closes more than 1e308 apart)."""
    ratio = x / prev
    if ratio < MIN_NORMAL or math.isinf(ratio):
        return math.log(x) - math.log(prev)
    return math.log(ratio)


@numba.njit(cache=True)
def log_returns(x: F64) -> F64:  # pragma: no cover - compiled
    out = np.full(x.shape[0], np.nan)
    for i in range(1, x.shape[0]):
        out[i] = log_return(x[i - 1], x[i])
    return out


@numba.njit(cache=True)
def vwap(ts_ns: NDArray[np.int64], high: F64, low: F64, close: F64, volume: F64,
         offset_ns: int, length_ns: int) -> F64:  # pragma: no cover - compiled
    out = np.full(high.shape[0], np.nan)
    session = 0
    price_volume = 0.0
    total_volume = 0.0
    for i in range(high.shape[0]):
        this_session = (ts_ns[i] - 1 - offset_ns) // length_ns
        if i == 0 or this_session != session:
            session = this_session
            price_volume = 0.0
            total_volume = 0.0
        typical = (high[i] + low[i] + close[i]) / 3.0
        price_volume += typical * volume[i]
        total_volume += volume[i]
        if total_volume > 0.0:
            out[i] = price_volume / total_volume
    return out
