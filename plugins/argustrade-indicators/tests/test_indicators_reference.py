"""Batch indicators against independent references on the bundled bars.

Two references, neither sharing code with the library:

* the ``ta`` package (0.11, pandas-based; TA-Lib needs a C library and pandas-ta is not
  on the index): Bollinger bands and ATR use our definitions exactly, so they are
  compared from their first value; ``ta`` seeds EMA (and so MACD) with the first close and
  RSI with a zero change on the first bar, where we seed with the simple average of the
  first ``period`` values (TA-Lib's and Wilder's seed).  A seed's weight decays as
  ``(1 - alpha)**k``, below 1e-12 after the ``BURN_IN`` bars, so from there on the two
  must agree to the same tolerance;
* pandas written out from the README's definitions (seeded ``ewm(adjust=False)``,
  ``rolling``, ``groupby().cumsum()``), compared on every bar, warm-up included.

Tolerance: ``|ours - ref| <= RTOL * |ref| + ATOL_PRICE * price level`` with RTOL = 1e-9;
the absolute part (1e-12 of the median close, or 1e-12 per-bar for volatility) covers
series that cross zero (the MACD line and histogram) or sit at zero (flat early bars).
"""

from __future__ import annotations

import math
from fractions import Fraction

import argus_indicators as ai
import numpy as np
import pandas as pd
import pytest
import ta

RTOL = 1e-9
BURN_IN = 1_000  # bars after which a seed difference has decayed below 1e-12


def assert_close(ours: np.ndarray, ref: np.ndarray, atol: float, start: int = 0) -> None:
    ref = np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    # the warm-up (NaN) must be exactly where the reference has it, from `start` on
    np.testing.assert_array_equal(np.isnan(ours[start:]), np.isnan(ref[start:]))
    np.testing.assert_allclose(ours[start:], ref[start:], rtol=RTOL, atol=atol)


def _atol(bars: dict[str, np.ndarray]) -> float:
    return 1e-12 * float(np.median(bars["close"]))


def _seeded_ewm(x: pd.Series, period: int, alpha: float) -> pd.Series:
    """EMA seeded with the mean of the first `period` values, written with pandas."""
    out = pd.Series(np.nan, index=x.index)
    valid = x.dropna()
    if len(valid) < period:
        return out
    seeded = valid.iloc[period - 1:].copy()
    seeded.iloc[0] = valid.iloc[:period].mean()
    out[seeded.index] = seeded.ewm(alpha=alpha, adjust=False).mean()
    return out


@pytest.mark.parametrize("period", [5, 20, 50])
def test_ema_matches_ta_after_burn_in_and_seeded_pandas_everywhere(bars, period) -> None:
    close = pd.Series(bars["close"])
    ours = ai.ema(bars["close"], period)
    ref = ta.trend.EMAIndicator(close, window=period).ema_indicator()
    assert_close(ours, ref.to_numpy(), _atol(bars), start=BURN_IN)
    assert_close(ours, _seeded_ewm(close, period, 2 / (period + 1)).to_numpy(), _atol(bars))


@pytest.mark.parametrize("period", [2, 14])
def test_rsi_matches_ta_after_burn_in_and_wilder_in_pandas_everywhere(bars, period) -> None:
    close = pd.Series(bars["close"])
    ours = ai.rsi(bars["close"], period)
    ref = ta.momentum.RSIIndicator(close, window=period).rsi().to_numpy()
    assert_close(ours, ref, 1e-12, start=BURN_IN)
    change = close.diff()
    gain = _seeded_ewm(change.clip(lower=0), period, 1 / period)
    loss = _seeded_ewm((-change).clip(lower=0), period, 1 / period)
    wilder = (100 * gain / (gain + loss)).where(gain + loss != 0, 50.0)
    assert_close(ours, wilder.to_numpy(), 1e-12)


def test_macd_matches_ta_after_burn_in(bars) -> None:
    close = pd.Series(bars["close"])
    ours = ai.macd(bars["close"], 12, 26, 9)
    ref = ta.trend.MACD(close, window_slow=26, window_fast=12, window_sign=9)
    for mine, theirs in zip(ours, (ref.macd(), ref.macd_signal(), ref.macd_diff()),
                            strict=True):
        assert_close(mine, theirs.to_numpy(), _atol(bars), start=BURN_IN)
    line = _seeded_ewm(close, 12, 2 / 13) - _seeded_ewm(close, 26, 2 / 27)
    signal = _seeded_ewm(line, 9, 2 / 10)
    assert_close(ours.macd, line.to_numpy(), _atol(bars))
    assert_close(ours.signal, signal.to_numpy(), _atol(bars))
    assert_close(ours.histogram, (line - signal).to_numpy(), _atol(bars))


@pytest.mark.parametrize(("period", "num_std"), [(20, 2.0), (10, 1.5), (5, 2.0)])
def test_bollinger_matches_ta_and_a_two_pass_numpy_std(bars, period, num_std) -> None:
    close = bars["close"]
    ours = ai.bollinger(close, period, num_std)
    ref = ta.volatility.BollingerBands(pd.Series(close), window=period, window_dev=num_std)
    assert_close(ours.middle, ref.bollinger_mavg().to_numpy(), _atol(bars))
    # ta's bands carry the error of pandas' online rolling variance (up to ~4e-7 of the
    # price on 5-hour windows of the XBT bars; see the next test for who is right), so
    # they are held to 1e-6 of the price; the std itself to RTOL against numpy's np.std
    # of each window (pairwise sums, two passes: an independent summation order).
    for mine, theirs in ((ours.upper, ref.bollinger_hband()),
                         (ours.lower, ref.bollinger_lband())):
        assert np.nanmax(np.abs(mine - theirs.to_numpy()) / close) < 1e-6
    windows = np.lib.stride_tricks.sliding_window_view(close, period)
    std = np.full(close.shape[0], np.nan)
    std[period - 1:] = windows.std(axis=1, ddof=0)
    assert_close((ours.upper - ours.middle) / num_std, std, _atol(bars))
    assert_close(ours.lower, ours.middle - num_std * std, _atol(bars))


def test_bollinger_is_exact_where_ta_disagrees_most(xbt) -> None:
    """Where ours and ta differ most, the exact rational std sides with ours."""
    close, period = xbt["close"], 5
    ours = ai.bollinger(close, period, 1.0)
    theirs = ta.volatility.BollingerBands(pd.Series(close), window=period, window_dev=1.0)
    gap = np.nan_to_num(np.abs(ours.upper - theirs.bollinger_hband().to_numpy()))
    for i in np.argsort(gap)[-5:]:
        window = [Fraction(float(v)) for v in close[i - period + 1:i + 1]]
        mean = sum(window, Fraction(0)) / period
        exact = float(mean) + math.sqrt(sum((v - mean) ** 2 for v in window) / period)
        assert ours.upper[i] == pytest.approx(exact, rel=1e-14, abs=1e-12)
        assert gap[i] > 1e3 * abs(ours.upper[i] - exact)


@pytest.mark.parametrize("period", [1, 14])
def test_atr_matches_ta_from_the_first_value(bars, period) -> None:
    h, lo, c = (pd.Series(bars[k]) for k in ("high", "low", "close"))
    ours = ai.atr(bars["high"], bars["low"], bars["close"], period)
    ref = ta.volatility.AverageTrueRange(h, lo, c, window=period).average_true_range()
    ref = ref.to_numpy().copy()
    ref[:period - 1] = np.nan  # ta fills the warm-up with zeros
    assert_close(ours, ref, _atol(bars))


def test_session_vwap_matches_a_pandas_groupby_per_utc_day(bars) -> None:
    frame = pd.DataFrame({k: bars[k] for k in ("high", "low", "close", "volume")})
    session = (bars["ts_ns"] - 1) // ai.DAY_NS
    frame["pv"] = (frame.high + frame.low + frame.close) / 3 * frame.volume
    cum = frame.groupby(session)[["pv", "volume"]].cumsum()
    ref = (cum.pv / cum.volume).where(cum.volume > 0)
    ours = ai.vwap(bars["ts_ns"], bars["high"], bars["low"], bars["close"], bars["volume"])
    assert_close(ours, ref.to_numpy(), _atol(bars))


@pytest.mark.parametrize(("period", "periods_per_year"), [(20, 1.0), (24, 8760.0)])
def test_rolling_volatility_matches_pandas_rolling_std(bars, period, periods_per_year
                                                       ) -> None:
    returns = np.log(pd.Series(bars["close"])).diff()
    ref = returns.rolling(period).std(ddof=1) * np.sqrt(periods_per_year)
    ours = ai.rolling_volatility(bars["close"], period, periods_per_year)
    # pandas' rolling std is an online update: it leaves ~1e-16 residue on flat windows
    assert_close(ours, ref.to_numpy(), 1e-12 * np.sqrt(periods_per_year))
