"""Each indicator on a few bars worked out by hand, batch and streaming alike."""

from __future__ import annotations

import math

import argus_indicators as ai
import numpy as np
import pytest

from argus_core import Bar

nan = math.nan


def _bars(high: list[float], low: list[float], close: list[float],
          volume: list[float] | None = None, ts_ns: list[int] | None = None) -> list[Bar]:
    volume = volume or [1.0] * len(close)
    ts_ns = ts_ns or list(range(1, len(close) + 1))
    return [Bar("T", t, c, h, lo, c, v)
            for t, h, lo, c, v in zip(ts_ns, high, low, close, volume, strict=True)]


def _check(batch: np.ndarray, streamed: list[float | None], expected: list[float]) -> None:
    np.testing.assert_allclose(batch, expected, rtol=1e-15, atol=1e-15)
    assert [nan if v is None else v for v in streamed] == pytest.approx(
        expected, rel=1e-15, abs=1e-15, nan_ok=True)


def test_ema_seeds_with_the_simple_average() -> None:
    close = [1.0, 2.0, 3.0, 4.0, 8.0]
    # seed mean(1, 2, 3) = 2; alpha = 2 / (3 + 1) = 0.5; 2 + .5 * 2 = 3; 3 + .5 * 5 = 5.5
    ema = ai.EMA(3)
    _check(ai.ema(close, 3), [ema.update_value(x) for x in close], [nan, nan, 2.0, 3.0, 5.5])


def test_rsi_wilder_smoothing() -> None:
    close = [1.0, 2.0, 1.0, 2.0, 3.0, 3.0]
    # changes +1 -1 +1 +1 0; seed gains (1 + 0) / 2, losses (0 + 1) / 2 -> 50
    # then gain (.5 + 1) / 2 = .75, loss .25 -> 75; .875 / .125 -> 87.5;
    # flat: gain .4375, loss .0625 -> 87.5
    rsi = ai.RSI(2)
    _check(ai.rsi(close, 2), [rsi.update_value(x) for x in close],
           [nan, nan, 50.0, 75.0, 87.5, 87.5])


def test_rsi_of_a_flat_series_is_50_and_of_a_rising_one_100() -> None:
    np.testing.assert_array_equal(ai.rsi([5.0] * 4, 2), [nan, nan, 50.0, 50.0])
    np.testing.assert_array_equal(ai.rsi([1.0, 2.0, 3.0, 4.0], 2), [nan, nan, 100.0, 100.0])


def test_macd_line_signal_histogram() -> None:
    close = [1.0, 2.0, 4.0, 8.0, 16.0]
    # EMA2: seed 1.5 at 1, alpha 2/3: 1.5 + 2/3 * 2.5 = 19/6, 19/6 + 2/3 * (8 - 19/6) = 65/18,
    # ... EMA3: seed 7/3 at 2, alpha .5: 31/6 at 3, 127/12 at 4.
    fast = [nan, 1.5, 19 / 6, 19 / 6 + 2 / 3 * (8 - 19 / 6)]
    fast.append(fast[3] + 2 / 3 * (16 - fast[3]))
    slow = [nan, nan, 7 / 3, 31 / 6, 127 / 12]
    line = [f - s for f, s in zip(fast, slow, strict=True)]
    signal = [nan, nan, nan, (line[2] + line[3]) / 2]
    signal.append(signal[3] + 2 / 3 * (line[4] - signal[3]))
    got = ai.macd(close, 2, 3, 2)
    np.testing.assert_allclose(got.macd, line, rtol=1e-14)
    np.testing.assert_allclose(got.signal, signal, rtol=1e-14)
    np.testing.assert_allclose(got.histogram, np.subtract(line, signal), rtol=1e-14)
    macd = ai.MACD(2, 3, 2)
    streamed = [macd.update_value(x) for x in close]
    assert streamed[:3] == [None, None, None]
    assert streamed[4] == pytest.approx((line[4], signal[4], line[4] - signal[4]), rel=1e-14)


def test_bollinger_uses_the_population_std() -> None:
    close = [1.0, 2.0, 3.0, 5.0]
    # window (1, 2, 3): mean 2, var (1 + 0 + 1) / 3; window (2, 3, 5): mean 10/3,
    # var ((4/3)^2 + (1/3)^2 + (5/3)^2) / 3 = 14/9
    bands = ai.bollinger(close, 3, 2.0)
    bb = ai.BollingerBands(3, 2.0)
    streamed = [bb.update_value(x) for x in close]
    mid, sd = [nan, nan, 2.0, 10 / 3], [nan, nan, math.sqrt(2 / 3), math.sqrt(14 / 9)]
    for field, k in (("middle", 0), ("upper", 2), ("lower", -2)):
        want = [m + k * s for m, s in zip(mid, sd, strict=True)]
        _check(getattr(bands, field), [v and getattr(v, field) for v in streamed], want)


def test_true_range_and_atr_with_a_gap_up() -> None:
    high, low, close = [10.0, 11.0, 15.0, 15.0], [8.0, 9.0, 13.0, 14.0], [9.0, 10.0, 14.0, 14.5]
    # TR: 2 (high - low, no previous close), max(2, |11-9|, |9-9|) = 2,
    # max(2, |15-10|, |13-10|) = 5 (the gap), max(1, |15-14|, |14-14|) = 1
    np.testing.assert_array_equal(ai.true_range(high, low, close), [2.0, 2.0, 5.0, 1.0])
    # ATR(2): (2 + 2) / 2 = 2 at index 1, (2 * 1 + 5) / 2 = 3.5, (3.5 + 1) / 2 = 2.25
    atr = ai.ATR(2)
    _check(ai.atr(high, low, close, 2), [atr.update(b) for b in _bars(high, low, close)],
           [nan, 2.0, 3.5, 2.25])


def test_vwap_resets_at_the_session_boundary() -> None:
    hour = 3_600 * 10**9
    # bars closing 23:00, 00:00 (the day's last: ts - 1 is still that day), 01:00, 02:00
    ts = [23 * hour, 24 * hour, 25 * hour, 26 * hour]
    high, low, close = [12.0, 15.0, 30.0, 33.0], [9.0, 12.0, 27.0, 27.0], [9.0, 12.0, 27.0, 30.0]
    volume = [1.0, 3.0, 0.0, 2.0]
    # typical prices 10, 13, 28, 30; day 0: (10 + 3 * 13) / 4 = 12.25;
    # day 1: no volume yet -> undefined, then 30
    vwap = ai.VWAP()
    _check(ai.vwap(ts, high, low, close, volume),
           [vwap.update(b) for b in _bars(high, low, close, volume, ts)],
           [10.0, 12.25, nan, 30.0])
    # an offset moves the boundary: sessions starting 01:00 put 00:00 and 01:00 together
    np.testing.assert_allclose(
        ai.vwap(ts, high, low, close, volume, session_offset_ns=hour), [10.0, 12.25, 12.25, 30.0])


def test_rolling_volatility_is_the_sample_std_of_log_returns() -> None:
    close = [100.0, 110.0, 99.0, 99.0]
    r = [math.log(1.1), math.log(0.9), 0.0]
    # two returns per window, ddof=1: |a - b| / sqrt(2)
    expected = [nan, nan, abs(r[0] - r[1]) / math.sqrt(2), abs(r[1] - r[2]) / math.sqrt(2)]
    rv = ai.RollingVolatility(2)
    _check(ai.rolling_volatility(close, 2), [rv.update_value(x) for x in close], expected)
    annual = ai.rolling_volatility(close, 2, periods_per_year=252.0)
    np.testing.assert_allclose(annual, np.multiply(expected, math.sqrt(252)), rtol=1e-15)


def test_too_few_bars_give_only_nan() -> None:
    assert np.isnan(ai.ema([1.0, 2.0], 3)).all()
    assert np.isnan(ai.rsi([1.0, 2.0], 2)).all()
    assert np.isnan(ai.atr([2.0], [1.0], [1.5], 2)).all()
    assert ai.ema([], 3).shape == (0,)
