"""Held-out red team of the indicators: hostile inputs against independent references.

Found and fixed (each test below failed before):

* a stream fed numpy scalars (``for x in closes: ema.update_value(x)`` over a float32
  array, or bars whose fields are numpy values) computed in float32 under NumPy 2's
  promotion rules -- 1e-5 away from the batch function on the same closes -- and its
  ``get_state()`` could not go through ``json`` (``float32``/``int64`` is not JSON
  serializable), so the checkpoint the README promises failed;
* a window of equal closes (a halted stock, a pegged coin: 20 x 101.37) gave a middle
  band 1 ulp off the price and bands 1.7e-13 apart instead of 0, so ``%b`` read 0.75 --
  a signal from a flat market -- where it is undefined; the mean is now corrected by the
  mean of the deviations (the corrected two-pass algorithm), exact on a constant window;
* parameters of the wrong type (``num_std="2"``, ``periods_per_year=None``,
  ``session_offset_ns=1.5``) raised bare ``TypeError``/``ValueError`` or were truncated,
  not a ``ConfigError`` naming the parameter;
* ``vwap`` truncated float timestamps silently (1.5 -> 1, NaN -> -2**63).

Held (no change needed), checked here so they stay held: no lookahead (every value at a
bar is the same when later bars are appended, NaN rows included), integer and
non-contiguous input, windows longer than the data, periods of 1, and rolling
volatility over 1e6 bars against an exact-rational reference.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import argus_indicators as ai
import numpy as np
import pytest

from argus_core import ConfigError, DataError


def _bar(close: Any, ts_ns: Any = 1, volume: Any = 1.0) -> SimpleNamespace:
    return SimpleNamespace(ts_ns=ts_ns, high=close, low=close, close=close, volume=volume)


def _closes(n: int = 300, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))


STREAMS: dict[str, tuple[Any, Any]] = {
    "ema": (lambda: ai.EMA(10), lambda c: ai.ema(c, 10)),
    "rsi": (lambda: ai.RSI(14), lambda c: ai.rsi(c, 14)),
    "macd": (lambda: ai.MACD(3, 6, 4), lambda c: ai.macd(c, 3, 6, 4).signal),
    "bollinger": (lambda: ai.BollingerBands(10), lambda c: ai.bollinger(c, 10).upper),
    "atr": (lambda: ai.ATR(5), lambda c: ai.atr(c, c, c, 5)),
    "vwap": (lambda: ai.VWAP(), lambda c: ai.vwap(np.ones(len(c), np.int64), c, c, c,
                                                 np.ones(len(c)))),
    "rolling_volatility": (lambda: ai.RollingVolatility(10),
                           lambda c: ai.rolling_volatility(c, 10)),
}


def _pick(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    if name == "macd":
        return float(value.signal)
    if name == "bollinger":
        return float(value.upper)
    return float(value)


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_numpy_scalar_bars_stream_like_batch_and_checkpoint_through_json(name, dtype) -> None:
    """Before: float32 closes streamed in float32 (1e-5 off the batch) and the state of
    any indicator fed numpy scalars failed ``json.dumps``."""
    make, batch = STREAMS[name]
    closes = (_closes() * (100 if dtype is np.int64 else 1)).astype(dtype)
    indicator = make()
    streamed = [_pick(indicator.update(_bar(c, ts_ns=np.int64(1), volume=dtype(1)))
                      , name) for c in closes]
    np.testing.assert_allclose(streamed, batch(closes), rtol=1e-12, atol=0)
    state = json.loads(json.dumps(indicator.get_state(), allow_nan=False))
    again = make()
    again.set_state(state)
    assert again.get_state() == state


@pytest.mark.parametrize("price", [0.1, 0.3, 101.37, 1e12 / 3, 7e-13])
@pytest.mark.parametrize("period", [1, 3, 20, 64])
def test_a_constant_window_has_zero_width_bands_centred_on_the_price(price, period) -> None:
    """Before: 20 closes of 101.37 gave middle 101.37000000000002 and bands 1.7e-13
    apart (so ``%b`` = 0.75); 0.1 gave 0.25."""
    close = np.full(period + 5, price)
    bands = ai.bollinger(close, period, 2.0)
    defined = slice(period - 1, None)
    assert (bands.middle[defined] == price).all()
    assert (bands.upper[defined] == price).all() and (bands.lower[defined] == price).all()
    stream = ai.BollingerBands(period, 2.0)
    last = [stream.update_value(float(x)) for x in close][-1]
    assert last == (price, price, price)


def test_bollinger_std_is_exact_to_a_rational_reference_on_hostile_windows() -> None:
    """Near-constant windows at 1e12 and 1e-12: the band width against exact arithmetic."""
    rng = np.random.default_rng(3)
    for level in (1e12, 1e-12, 1.0):
        close = level * (1 + 1e-9 * rng.normal(size=200))
        bands = ai.bollinger(close, 25, 1.0)
        for i in (24, 100, 199):
            window = [Fraction(float(v)) for v in close[i - 24:i + 1]]
            mean = sum(window, Fraction(0)) / 25
            std = math.sqrt(float(sum((v - mean) ** 2 for v in window) / 25))
            assert bands.middle[i] == pytest.approx(float(mean), rel=1e-15)
            # upper - middle cancels at 1e12 (its ulp is 1.2e-4): compare via the middle
            assert bands.upper[i] == pytest.approx(float(mean) + std, rel=1e-15)


#: Wrong-typed parameters, typed Any so the calls below type-check as a user's would not.
TEXT: Any = "2"
NOTHING: Any = None
HALF: Any = 1.5


@pytest.mark.parametrize(("call", "name"), [
    (lambda: ai.bollinger([1.0, 2.0], 2, TEXT), "num_std"),
    (lambda: ai.BollingerBands(2, NOTHING), "num_std"),
    (lambda: ai.rolling_volatility([1.0, 2.0, 3.0], 2, TEXT), "periods_per_year"),
    (lambda: ai.RollingVolatility(2, NOTHING), "periods_per_year"),
    (lambda: ai.VWAP(session_offset_ns=TEXT), "session_offset_ns"),
    (lambda: ai.VWAP(session_offset_ns=HALF), "session_offset_ns"),
    (lambda: ai.vwap([1], [1.0], [1.0], [1.0], [1.0], session_offset_ns=HALF),
     "session_offset_ns"),
])
def test_a_parameter_of_the_wrong_type_is_a_config_error_naming_it(call, name) -> None:
    """Before: TypeError from numpy or math, ValueError from int(), or 1.5 truncated."""
    with pytest.raises(ConfigError, match=name):
        call()


@pytest.mark.parametrize("ts", [[1.5, 2.0], [1.0, math.nan]])
def test_vwap_refuses_timestamps_that_are_not_whole_nanoseconds(ts) -> None:
    """Before: 1.5 became 1 and NaN became -2**63, silently."""
    with pytest.raises(DataError, match="ts_ns"):
        ai.vwap(ts, [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0])
    # whole numbers held as floats are timestamps all the same
    np.testing.assert_array_equal(ai.vwap([1.0, 2.0], [1.0, 3.0], [1.0, 3.0], [1.0, 3.0],
                                          [1.0, 1.0]), [1.0, 2.0])


# -- held: no lookahead, shapes, long series -------------------------------------------
def _all_outputs(c: np.ndarray, h: np.ndarray, lo: np.ndarray, v: np.ndarray,
                 ts: np.ndarray) -> np.ndarray:
    return np.vstack([ai.ema(c, 20), ai.rsi(c, 14), *ai.macd(c), *ai.bollinger(c),
                      ai.true_range(h, lo, c), ai.atr(h, lo, c), ai.vwap(ts, h, lo, c, v),
                      ai.rolling_volatility(c, 20)])


def test_no_value_changes_when_later_bars_are_appended() -> None:
    c = _closes(1_200)
    c[[10, 400, 401]] = np.nan
    h, lo = c * 1.01, c * 0.99
    v = np.random.default_rng(1).random(c.size)
    ts = np.arange(c.size, dtype=np.int64) * 3_600 * 10**9 + 1
    full = _all_outputs(c, h, lo, v, ts)
    for cut in (1, 13, 14, 20, 34, 402, 1_000):
        head = _all_outputs(c[:cut], h[:cut], lo[:cut], v[:cut], ts[:cut])
        np.testing.assert_array_equal(head, full[:, :cut])


def test_int_non_contiguous_and_short_inputs() -> None:
    c = _closes(100)
    frame = np.column_stack([c, 2 * c])
    np.testing.assert_array_equal(ai.ema(frame[:, 0], 9), ai.ema(c, 9))
    ints = np.arange(1, 60)
    np.testing.assert_array_equal(ai.rsi(ints, 5), ai.rsi(ints.astype(float), 5))
    assert np.isnan(ai.bollinger(c[:5], 6).middle).all()
    assert np.isnan(ai.rolling_volatility(c[:6], 6)).all()
    np.testing.assert_array_equal(ai.ema(c, 1), c)
    np.testing.assert_array_equal(ai.bollinger(c, 1).upper, c)


def test_rolling_volatility_over_a_million_bars_matches_exact_arithmetic() -> None:
    rng = np.random.default_rng(5)
    close = 1e6 * np.exp(np.cumsum(rng.normal(0, 1e-4, 1_000_000)))
    ours = ai.rolling_volatility(close, 50)
    for i in (50, 500_000, 999_999):
        returns = [Fraction(math.log(close[j] / close[j - 1])) for j in range(i - 49, i + 1)]
        mean = sum(returns, Fraction(0)) / 50
        exact = math.sqrt(float(sum((r - mean) ** 2 for r in returns) / 49))
        assert ours[i] == pytest.approx(exact, rel=1e-13)
