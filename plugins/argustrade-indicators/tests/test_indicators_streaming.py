"""Streaming classes equal the batch functions bar for bar on the bundled bars; their
state survives a JSON round trip mid-stream; NaN rows and time gaps follow the README."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import argus_indicators as ai
import numpy as np
import pytest

from argus_core import Bar, ConfigError, DataError

Columns = dict[str, np.ndarray]
#: Batch and streaming run the same operations in the same order; they agree exactly in
#: practice, and are held to 1e-12 relative so a compiler's reordering would not fail them.
PARITY_RTOL = 1e-12

#: (streaming factory, batch function giving a tuple of arrays per output field)
CASES: dict[str, tuple[Callable[[], Any], Callable[[Columns], tuple[np.ndarray, ...]]]] = {
    "ema": (lambda: ai.EMA(20), lambda b: (ai.ema(b["close"], 20),)),
    "rsi": (lambda: ai.RSI(14), lambda b: (ai.rsi(b["close"], 14),)),
    "macd": (lambda: ai.MACD(12, 26, 9), lambda b: _macd_both_defined(b["close"])),
    "bollinger": (lambda: ai.BollingerBands(20, 2.0),
                  lambda b: tuple(ai.bollinger(b["close"], 20, 2.0))),
    "atr": (lambda: ai.ATR(14),
            lambda b: (ai.atr(b["high"], b["low"], b["close"], 14),)),
    "vwap": (lambda: ai.VWAP(), lambda b: (ai.vwap(b["ts_ns"], b["high"], b["low"],
                                                  b["close"], b["volume"]),)),
    "rolling_volatility": (lambda: ai.RollingVolatility(24, 8760.0),
                           lambda b: (ai.rolling_volatility(b["close"], 24, 8760.0),)),
}


def _macd_both_defined(close: np.ndarray) -> tuple[np.ndarray, ...]:
    """The batch MACD as the stream reports it: nothing until the signal is defined."""
    line, signal, hist = ai.macd(close, 12, 26, 9)
    return np.where(np.isnan(signal), np.nan, line), signal, hist


def _stream(indicator: Any, bars: list[Bar]) -> np.ndarray:
    """Run bars through ``indicator``; one row per bar, NaN where it returned None."""
    width = 3 if isinstance(indicator, ai.MACD | ai.BollingerBands) else 1
    rows = []
    for bar in bars:
        value = indicator.update(bar)
        rows.append([math.nan] * width if value is None else
                    list(value) if isinstance(value, tuple) else [value])
    return np.array(rows).reshape(len(bars), width)


def _assert_parity(streamed: np.ndarray, batch: tuple[np.ndarray, ...]) -> None:
    for k, column in enumerate(batch):
        np.testing.assert_array_equal(np.isnan(streamed[:, k]), np.isnan(column))
        np.testing.assert_allclose(streamed[:, k], column, rtol=PARITY_RTOL, atol=0)


@pytest.mark.parametrize("name", CASES)
def test_streaming_equals_batch_bar_for_bar(name, bars, bar_objects) -> None:
    make, batch = CASES[name]
    _assert_parity(_stream(make(), bar_objects(bars)), batch(bars))


@pytest.mark.parametrize("name", CASES)
def test_state_round_trip_mid_stream_equals_an_uninterrupted_stream(name, xbt,
                                                                   bar_objects) -> None:
    make, _ = CASES[name]
    all_bars = bar_objects(xbt)[:3_000]
    whole = _stream(make(), all_bars)
    # cuts during warm-up (1, 10), right at its end, and well past it
    for cut in (1, 10, 25, 34, 2_000):
        first = make()
        head = _stream(first, all_bars[:cut])
        state = json.loads(json.dumps(first.get_state(), allow_nan=False))
        second = make()
        second.set_state(state)
        tail = _stream(second, all_bars[cut:])
        np.testing.assert_array_equal(np.vstack([head, tail]), whole)


def test_a_state_refuses_an_indicator_it_was_not_saved_from() -> None:
    state = ai.EMA(20).get_state()
    with pytest.raises(DataError, match=r"ema.*period.*20.*build the indicator"):
        ai.EMA(10).set_state(state)
    with pytest.raises(DataError, match=r"state is for ema"):
        ai.RSI(20).set_state(state)


@pytest.mark.parametrize(("name", "first_value_at"), [
    ("ema", 19), ("rsi", 14), ("macd", 33), ("bollinger", 19), ("atr", 13), ("vwap", 0),
    ("rolling_volatility", 24)])
def test_warm_up_is_none_then_values_every_bar(name, first_value_at, xbt,
                                               bar_objects) -> None:
    make, batch = CASES[name]
    indicator = make()
    values = [indicator.update(b) for b in bar_objects(xbt)[:200]]
    assert all(v is None for v in values[:first_value_at])
    assert all(v is not None for v in values[first_value_at:])
    assert np.isnan(batch(xbt)[0][:first_value_at]).all()


def test_macd_line_is_defined_before_its_signal() -> None:
    close = np.arange(1.0, 41.0)
    line, signal, _ = ai.macd(close, 12, 26, 9)
    assert np.isnan(line[:25]).all() and np.isfinite(line[25:]).all()
    assert np.isnan(signal[:33]).all() and np.isfinite(signal[33:]).all()


@pytest.mark.parametrize("name", CASES)
def test_a_nan_row_is_skipped_by_batch_as_the_stream_skips_the_bar(name, xbt) -> None:
    _, batch = CASES[name]
    cols = {k: v[:1_500].copy() for k, v in xbt.items()}
    holes = np.array([3, 30, 31, 500, 1_000])
    with_nan = {k: v.copy() for k, v in cols.items()}
    with_nan["close"][holes[::2]] = np.nan  # 3, 31, 1_000
    if name in ("atr", "vwap"):  # they read high and volume too
        with_nan["high"][30] = with_nan["volume"][500] = np.nan
    used = {"atr": ("close", "high"), "vwap": ("close", "high", "volume")}.get(name, ("close",))
    skipped = ~np.logical_and.reduce([np.isfinite(with_nan[k]) for k in used])
    kept = {k: v[~skipped] for k, v in cols.items()}
    for got, want in zip(batch(with_nan), batch(kept), strict=True):
        assert np.isnan(got[skipped]).all()
        np.testing.assert_array_equal(got[~skipped], want)


def test_the_stream_ignores_a_non_finite_bar_without_changing_state() -> None:
    class RawBar:  # a BarLike that, unlike argus_core.Bar, lets a NaN through
        def __init__(self, close: float) -> None:
            self.ts_ns, self.high, self.low, self.close, self.volume = 1, close, close, close, 1.0

    ema = ai.EMA(2)
    assert ema.update(RawBar(1.0)) is None
    before = ema.get_state()
    assert ema.update(RawBar(math.nan)) is None
    assert ema.get_state() == before
    assert ema.update(RawBar(3.0)) == 2.0


def test_gaps_count_bars_not_hours_and_vwap_resets_across_a_gap_over_midnight(
        xbt, bar_objects) -> None:
    ts = xbt["ts_ns"]
    gaps = np.flatnonzero(np.diff(ts) > 3_600 * 10**9)
    assert len(gaps) == 3_254  # the bundled hourly bars' missing hours (SOURCES.md)
    ema = ai.ema(xbt["close"], 20)
    assert np.isfinite(ema[19:]).all()  # a gap neither breaks nor restarts the average
    day = (ts - 1) // ai.DAY_NS
    over_midnight = [i for i in gaps if day[i + 1] > day[i]]
    assert over_midnight
    vwap = ai.vwap(ts, xbt["high"], xbt["low"], xbt["close"], xbt["volume"])
    for i in over_midnight[:50]:
        j = i + 1  # the first bar after the gap opens a new session: VWAP = its typical
        typical = (xbt["high"][j] + xbt["low"][j] + xbt["close"][j]) / 3
        assert vwap[j] == pytest.approx(typical, rel=1e-15) or xbt["volume"][j] == 0


def test_bad_parameters_and_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="period must be an integer >= 1"):
        ai.ema([1.0, 2.0], 0)
    with pytest.raises(ConfigError, match="period must be an integer >= 2"):
        ai.RollingVolatility(1)
    with pytest.raises(ConfigError, match=r"fast period .* shorter than slow"):
        ai.MACD(26, 12)
    with pytest.raises(DataError, match="differ in length"):
        ai.atr([1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(DataError, match="non-decreasing"):
        ai.vwap([2, 1], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0])
    vwap = ai.VWAP()
    vwap.update(Bar("X", 10, 1.0, 1.0, 1.0, 1.0, 1.0))
    with pytest.raises(DataError, match="older than the last one"):
        vwap.update(Bar("X", 5, 1.0, 1.0, 1.0, 1.0, 1.0))
