"""Batch indicators: whole numpy arrays in, arrays of the same length out.

Every function returns NaN where the indicator is not yet defined (the warm-up) and at
rows whose inputs hold a NaN (or an infinity).  Such a row is *skipped*: the result at
every other row is exactly what it would be had the row not been there, which is also
what the streaming class gives when it never sees that bar.  The exact definitions are in
the README; the loops are in :mod:`argus_indicators._kernels`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from argus_core import ConfigError, DataError
from argus_indicators import _kernels

F64 = NDArray[np.float64]
#: One UTC day in nanoseconds: the default VWAP session.
DAY_NS = 86_400 * 10**9


class MACDResult(NamedTuple):
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram (line - signal)."""

    macd: F64
    signal: F64
    histogram: F64


class BollingerResult(NamedTuple):
    """Middle band (SMA), upper and lower band (middle +/- ``num_std`` population std)."""

    middle: F64
    upper: F64
    lower: F64


#: The largest period, session length or |offset| accepted: room to spare in the compiled
#: kernels' int64 (a bigger Python int raised a bare OverflowError or numba's TypingError).
MAX_INT = 2**62


def check_period(name: str, period: int, minimum: int = 1) -> int:
    """``period`` as an int, refusing bools, fractions and values outside
    ``minimum..2**62``."""
    if isinstance(period, bool) or not isinstance(period, int | np.integer) \
            or not minimum <= period <= MAX_INT:
        raise ConfigError(f"{name} must be an integer >= {minimum} (and at most 2**62), "
                          f"got {period!r}")
    return int(period)


def check_number(name: str, value: float, *, positive: bool = False) -> float:
    """``value`` as a finite float (``> 0`` with ``positive``, else ``>= 0``), refusing
    bools, text and None with a :class:`ConfigError` that names the parameter."""
    bound = "> 0" if positive else ">= 0"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer
                                                     | np.floating):
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    number = float(value)
    if not np.isfinite(number) or number < 0 or (positive and number == 0):
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def check_offset(name: str, value: int) -> int:
    """``value`` as an int (any sign, at most 2**62 either way), refusing bools,
    fractions and text."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) \
            or not -MAX_INT <= value <= MAX_INT:
        raise ConfigError(f"{name} must be an integer (nanoseconds) from -2**62 to 2**62, "
                          f"got {value!r}")
    return int(value)


def as_float(value: object, kind: str, field: str) -> float:
    """``float(value)`` for one input number; a signalling NaN (``Decimal('sNaN')``,
    which ``float`` refuses) is a NaN like any other, so its row is skipped; anything
    that is not a number is a :class:`DataError` naming the indicator and the field."""
    try:
        return float(value)  # type: ignore[arg-type]  # anything float() takes
    except (TypeError, ValueError):
        if isinstance(value, Decimal) and value.is_nan():
            return math.nan
        raise DataError(f"{kind}: {field} must be a number, got {value!r}") from None


def _timestamps(ts_ns: ArrayLike) -> NDArray[np.int64]:
    """``ts_ns`` as int64, refusing floats that are not whole (a cast would truncate 1.5
    to 1 and turn NaN into -2**63 without a word)."""
    raw = np.asarray(ts_ns)
    if raw.dtype.kind == "O":  # Python ints beyond int64 (or text): say so, not OverflowError
        try:
            raw = np.asarray(raw.tolist(), dtype=np.int64)
        except (OverflowError, TypeError, ValueError):
            raise DataError("vwap: ts_ns must be whole nanoseconds within int64") from None
    if raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.floor(raw))):
        raise DataError("vwap: ts_ns must be whole nanoseconds; got a fraction, NaN or "
                        "infinity")
    return np.ascontiguousarray(raw, dtype=np.int64)


def _column(values: ArrayLike) -> F64:
    try:
        return np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # e.g. a Decimal('sNaN') among Decimals: NaN, skipped
        raw = np.asarray(values, dtype=object)
        flat = [as_float(v, "indicator", "input") for v in raw.ravel().tolist()]
        return np.ascontiguousarray(np.reshape(np.array(flat, dtype=np.float64), raw.shape))


def _columns(*arrays: ArrayLike) -> list[F64]:
    cols = [_column(a) for a in arrays]
    if any(c.ndim != 1 for c in cols):
        raise DataError("indicator inputs must be one-dimensional arrays")
    if len({c.shape[0] for c in cols}) > 1:
        raise DataError(f"indicator inputs differ in length: {[c.shape[0] for c in cols]}")
    return cols


def _skipping_nan(cols: list[F64], kernel: Callable[..., F64]) -> F64:
    """Run ``kernel`` on the rows where every column is finite; NaN elsewhere."""
    finite = np.logical_and.reduce([np.isfinite(c) for c in cols])
    if finite.all():
        return kernel(*cols)
    out = np.full(cols[0].shape[0], np.nan)
    out[finite] = kernel(*(c[finite] for c in cols))
    return out


def ema(close: ArrayLike, period: int) -> F64:
    """Exponential moving average, ``alpha = 2 / (period + 1)``, seeded with the simple
    average of the first ``period`` values (first value at index ``period - 1``)."""
    n = check_period("period", period)
    return _skipping_nan(_columns(close), lambda x: _kernels.ema(x, n))


def rsi(close: ArrayLike, period: int = 14) -> F64:
    """Wilder's relative strength index, 0..100 (first value at index ``period``)."""
    n = check_period("period", period)
    return _skipping_nan(_columns(close), lambda x: _kernels.rsi(x, n))


def macd(close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> MACDResult:
    """MACD: line from index ``slow - 1``, signal and histogram from ``slow + signal - 2``."""
    f, s = check_period("fast", fast), check_period("slow", slow)
    g = check_period("signal", signal)
    if f >= s:
        raise ConfigError(f"MACD fast period ({f}) must be shorter than slow ({s})")
    (x,) = _columns(close)
    line = ema(x, f) - ema(x, s)
    sig = np.full(x.shape[0], np.nan)
    defined = np.flatnonzero(np.isfinite(line))
    sig[defined] = _kernels.ema(np.ascontiguousarray(line[defined]), g)
    return MACDResult(line, sig, line - sig)


def bollinger(close: ArrayLike, period: int = 20, num_std: float = 2.0) -> BollingerResult:
    """Bollinger bands over ``period`` closes with the *population* standard deviation."""
    n = check_period("period", period)
    k = check_number("num_std", num_std)
    (x,) = _columns(close)
    finite = np.isfinite(x)
    mid = np.full(x.shape[0], np.nan)
    std = np.full(x.shape[0], np.nan)
    mid[finite], std[finite] = _kernels.rolling_mean_std(np.ascontiguousarray(x[finite]),
                                                         n, 0)
    return BollingerResult(mid, mid + k * std, mid - k * std)


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> F64:
    """``max(high - low, |high - prev close|, |low - prev close|)``; ``high - low`` on the
    first bar, which has no previous close."""
    return _skipping_nan(_bounded(_columns(high, low, close), "true_range"),
                         _kernels.true_range)


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> F64:
    """Wilder's average true range: the mean of the first ``period`` true ranges at index
    ``period - 1``, then ``(prev * (period - 1) + tr) / period``."""
    n = check_period("period", period)
    return _skipping_nan(_bounded(_columns(high, low, close), "atr"),
                         lambda h, lo, c: _kernels.atr(h, lo, c, n))


def _bounded(cols: list[F64], name: str) -> list[F64]:
    """``cols`` (high, low, ...) unchanged, refusing a row whose high is below its low:
    its range would be negative and drag the average down (``argus_core.Bar`` refuses
    such a bar; arrays come from anywhere, e.g. swapped columns)."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(cols[0] < cols[1])  # NaN rows compare False: skipped later
    if bad.size:
        i = int(bad[0])
        high, low = float(cols[0][i]), float(cols[1][i])
        raise DataError(f"{name}: high {high!r} < low {low!r} at row {i} ({bad.size} such "
                        f"rows); are the columns swapped?")
    return cols


def vwap(ts_ns: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike,
         volume: ArrayLike, session_offset_ns: int = 0, session_ns: int = DAY_NS) -> F64:
    """Session VWAP of the typical price ``(high + low + close) / 3``, weighted by volume.

    ``ts_ns`` is each bar's close time (as :class:`argus_core.Bar` has it).  A bar belongs
    to session ``(ts_ns - 1 - session_offset_ns) // session_ns``, so with the defaults a
    session is a UTC day and the bar closing at midnight is the day's last.  NaN while the
    session's volume is still zero.
    """
    length = check_period("session_ns", session_ns)
    offset = check_offset("session_offset_ns", session_offset_ns)
    ts = _timestamps(ts_ns)
    cols = _columns(high, low, close, volume)
    if ts.ndim != 1 or ts.shape[0] != cols[0].shape[0]:
        raise DataError("ts_ns must be a one-dimensional array as long as the prices")
    # Checked on the finite rows only: a skipped row must not stop the rest (as the
    # streaming class never looks at a non-finite bar's time or volume).
    finite = np.logical_and.reduce([np.isfinite(c) for c in cols])
    if np.any(np.diff(ts[finite]) < 0):
        raise DataError("vwap: ts_ns must be non-decreasing (sort the bars first)")
    if np.any(cols[3][finite] < 0):
        raise DataError("vwap: negative volume")
    kept = ts[finite]
    # the kernel's ts - 1 - offset is int64 arithmetic: refuse what would wrap round
    if kept.size and not (int(kept.min()) - 1 - offset >= -2**63
                          and int(kept.max()) - 1 - offset < 2**63):
        raise DataError(f"vwap: ts_ns - 1 - session_offset_ns leaves int64 for offset "
                        f"{offset}; are the timestamps in nanoseconds?")
    out = np.full(ts.shape[0], np.nan)
    h, lo, c, v = (np.ascontiguousarray(col[finite]) for col in cols)
    out[finite] = _kernels.vwap(np.ascontiguousarray(ts[finite]), h, lo, c, v, offset, length)
    return out


def rolling_volatility(close: ArrayLike, period: int = 20,
                       periods_per_year: float = 1.0) -> F64:
    """Sample (``ddof=1``) standard deviation of the last ``period`` log returns, times
    ``sqrt(periods_per_year)`` (1.0: per bar).  First value at index ``period``."""
    n = check_period("period", period, minimum=2)
    scale = _check_scale(periods_per_year)
    (x,) = _columns(close)
    if np.any(x[np.isfinite(x)] <= 0):
        raise DataError("rolling_volatility: prices must be > 0 (log returns)")

    def kernel(c: F64) -> F64:
        returns = _kernels.log_returns(c)
        std = np.full(c.shape[0], np.nan)
        std[1:] = _kernels.rolling_mean_std(np.ascontiguousarray(returns[1:]), n, 1)[1]
        return std * scale

    return _skipping_nan([x], kernel)


def _check_scale(periods_per_year: float) -> float:
    return float(np.sqrt(check_number("periods_per_year", periods_per_year, positive=True)))
