"""Red team of the indicators' limits: huge periods, damaged states, signalling NaNs,
extreme magnitudes and offsets.

Found and fixed (each test below failed before):

* a period of ``2**70`` built a streaming indicator that raised a bare ``OverflowError``
  on its first bar (``deque(maxlen=...)``) and made the batch functions raise numba's
  ``TypingError``, not a ``ConfigError`` naming the parameter;
* ``set_state`` on a damaged state (a key missing, ``None`` or text where a number
  belongs, a list instead of a dict, a count past the period, a window longer than the
  period) raised ``KeyError``/``TypeError``/``AttributeError`` -- or, worse, was taken
  and left the indicator warming up forever -- and a half-loaded MACD kept the parts that
  loaded; now a ``DataError`` names the indicator and the field, and nothing changes;
* ``Decimal('sNaN')`` raised ``ValueError`` where every other NaN is a skipped row;
* Bollinger bands on prices near 1e200 were infinite (the squared deviations overflow)
  and on prices near 1e-200 had a width of 0 (they underflow);
* ``RollingVolatility`` raised ``ValueError: math domain error`` when a close was more
  than 1e308 times smaller than the previous one (the ratio is 0), and the batch
  function returned infinities and NaNs for ratios beyond the float range;
* ``vwap`` with a ``session_offset_ns`` near 2**63 wrapped around in the compiled
  kernel (the stream, in Python ints, did not): the two disagreed on sessions.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import argus_indicators as ai
import numpy as np
import pytest

from argus_core import ConfigError, DataError

HOUR_NS = 3600 * 10**9


def _bar(close: Any, ts_ns: int = 1, volume: Any = 1.0) -> SimpleNamespace:
    return SimpleNamespace(ts_ns=ts_ns, high=close, low=close, close=close, volume=volume)


# ---- periods beyond any machine integer ------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: ai.EMA(2**70), lambda: ai.RSI(2**70), lambda: ai.BollingerBands(2**70),
    lambda: ai.ATR(2**70), lambda: ai.RollingVolatility(2**70),
    lambda: ai.MACD(12, 2**70), lambda: ai.VWAP(session_ns=2**70),
    lambda: ai.ema(np.ones(5), 2**70), lambda: ai.rsi(np.ones(5), 2**70),
    lambda: ai.bollinger(np.ones(5), 2**70), lambda: ai.atr(np.ones(5), np.ones(5),
                                                           np.ones(5), 2**70),
    lambda: ai.rolling_volatility(np.ones(5), 2**70),
    lambda: ai.vwap(np.arange(5), np.ones(5), np.ones(5), np.ones(5), np.ones(5),
                    session_ns=2**70),
])
def test_a_period_too_large_for_a_machine_integer_is_a_config_error(make) -> None:
    with pytest.raises(ConfigError, match=r"(period|slow|session_ns) must be an integer "
                                          r">= \d+ \(and at most 2\*\*62\), got 118"):
        make()


def test_the_largest_period_still_works_and_warms_up_forever() -> None:
    bands = ai.BollingerBands(2**62)
    assert bands.update_value(1.0) is None
    assert np.isnan(ai.ema(np.ones(3), 2**62)).all()


@pytest.mark.parametrize("offset", [2**70, -(2**63 - 100)])
def test_a_session_offset_beyond_int64_room_is_refused_by_both_shapes(offset) -> None:
    with pytest.raises(ConfigError, match="session_offset_ns must be an integer"):
        ai.VWAP(session_offset_ns=offset)
    with pytest.raises(ConfigError, match="session_offset_ns must be an integer"):
        ai.vwap([1], [1.0], [1.0], [1.0], [1.0], session_offset_ns=offset)


def test_batch_timestamps_beyond_int64_are_a_data_error() -> None:
    with pytest.raises(DataError, match="ts_ns"):
        ai.vwap(np.array([2**70, 2**70], dtype=object), np.ones(2), np.ones(2), np.ones(2),
                np.ones(2))


# ---- damaged states ---------------------------------------------------------------------

def _warm(indicator: Any, n: int = 40) -> Any:
    for i in range(n):
        price = 100.0 + (i * 7 % 11)
        indicator.update(SimpleNamespace(ts_ns=(i + 1) * HOUR_NS, high=price + 1,
                                         low=price - 1, close=price, volume=1.0 + i % 3))
    return indicator


MAKERS: dict[str, Any] = {
    "ema": lambda: ai.EMA(5), "rsi": lambda: ai.RSI(5), "macd": lambda: ai.MACD(3, 6, 4),
    "bollinger": lambda: ai.BollingerBands(5), "atr": lambda: ai.ATR(5),
    "vwap": lambda: ai.VWAP(), "rolling_volatility": lambda: ai.RollingVolatility(5),
}

# (indicator, dotted path in the state, damaged value, word the error must name)
DAMAGE = [
    ("ema", "count", "x", "count"), ("ema", "count", None, "count"),
    ("ema", "count", 99, "count"), ("ema", "count", True, "count"),
    ("ema", "seed_sum", None, "seed_sum"), ("ema", "value", "1.0", "value"),
    ("ema", "value", math.nan, "value"), ("ema", "count", -1, "count"),
    ("rsi", "avg_gain", -1.0, "avg_gain"), ("rsi", "prev_close", [], "prev_close"),
    ("rsi", "count", 6, "count"),
    ("macd", "slow_ema", None, "slow_ema"), ("macd", "signal_ema.count", "2", "count"),
    ("bollinger", "window", None, "window"), ("bollinger", "window", [1.0] * 6, "window"),
    ("bollinger", "window", [1.0, "a"], "window"),
    ("atr", "value", math.inf, "value"), ("atr", "prev_close", None, "prev_close"),
    ("vwap", "session", 1.5, "session"), ("vwap", "volume", -1.0, "volume"),
    ("vwap", "last_ts_ns", None, "last_ts_ns"),
    ("rolling_volatility", "returns", [0.1] * 6, "returns"),
    ("rolling_volatility", "prev_close", 0.0, "prev_close"),
]


def _damage(state: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    state = copy.deepcopy(state)
    *parents, key = path.split(".")
    target = state
    for parent in parents:
        target = target[parent]
    target[key] = value
    return state


@pytest.mark.parametrize(("name", "path", "value", "word"), DAMAGE)
def test_a_damaged_state_is_a_data_error_naming_the_field_and_changes_nothing(
        name, path, value, word) -> None:
    indicator = _warm(MAKERS[name]())
    before = json.dumps(indicator.get_state())
    with pytest.raises(DataError, match=rf"{word}"):
        indicator.set_state(_damage(json.loads(before), path, value))
    assert json.dumps(indicator.get_state()) == before


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("missing", ["count", "window", "value", "session", "returns",
                                     "fast_ema", "prev_close"])
def test_a_state_missing_a_field_names_it(name, missing) -> None:
    indicator = _warm(MAKERS[name]())
    state = indicator.get_state()
    if missing not in state:
        pytest.skip(f"{name} has no {missing}")
    del state[missing]
    with pytest.raises(DataError, match=rf"{name}: state has no '{missing}'"):
        indicator.set_state(state)


@pytest.mark.parametrize("state", [None, [], "ema", 3])
def test_a_state_that_is_not_a_dict_is_a_data_error(state) -> None:
    with pytest.raises(DataError, match="ema: a state is a dict"):
        ai.EMA(3).set_state(state)


def test_a_macd_whose_signal_state_is_damaged_keeps_its_fast_and_slow() -> None:
    macd = _warm(ai.MACD(3, 6, 4))
    good = macd.get_state()
    fresh = ai.MACD(3, 6, 4)
    with pytest.raises(DataError):
        fresh.set_state(_damage(good, "signal_ema.value", "bad"))
    assert fresh.get_state() == ai.MACD(3, 6, 4).get_state()  # nothing half-loaded


@pytest.mark.parametrize("name", MAKERS)
def test_good_states_still_round_trip_through_json_exactly(name) -> None:
    whole, first = _warm(MAKERS[name](), 60), _warm(MAKERS[name](), 30)
    resumed = MAKERS[name]()
    resumed.set_state(json.loads(json.dumps(first.get_state())))
    assert json.dumps(resumed.get_state()) == json.dumps(first.get_state())
    # the remaining 30 bars from the restored state equal the uninterrupted stream's
    for i in range(30, 60):
        price = 100.0 + (i * 7 % 11)
        bar = SimpleNamespace(ts_ns=(i + 1) * HOUR_NS, high=price + 1, low=price - 1,
                              close=price, volume=1.0 + i % 3)
        resumed.update(bar)
    assert json.dumps(resumed.get_state()) == json.dumps(whole.get_state())


def test_a_fresh_state_loads() -> None:
    for make in MAKERS.values():
        indicator = make()
        indicator.set_state(make().get_state())


# ---- signalling NaNs ----------------------------------------------------------------------

@pytest.mark.parametrize("name", MAKERS)
def test_a_signalling_nan_is_a_skipped_bar_like_any_nan(name) -> None:
    indicator = _warm(MAKERS[name]())
    before = indicator.get_state()
    assert indicator.update(_bar(Decimal("sNaN"), ts_ns=10**15)) is None
    assert indicator.get_state() == before


def test_batch_skips_a_signalling_nan_row() -> None:
    closes = [Decimal("sNaN"), Decimal("1"), 2.0, Decimal("3.5")]
    out = ai.ema(closes, 2)
    np.testing.assert_array_equal(out, ai.ema([math.nan, 1.0, 2.0, 3.5], 2))


def test_text_or_none_as_a_price_is_a_data_error_naming_it() -> None:
    with pytest.raises(DataError, match="ema: close must be a number, got None"):
        ai.EMA(3).update(_bar(None))
    with pytest.raises(DataError, match="vwap: volume must be a number"):
        ai.VWAP().update(_bar(1.0, volume=object()))


# ---- extreme magnitudes -------------------------------------------------------------------

def _population_std(window: list[float]) -> float:
    """Exact rational population variance, rounded once, then its square root."""
    exact = [Fraction(v) for v in window]
    mean = sum(exact, Fraction(0)) / len(exact)
    variance = sum(((v - mean) ** 2 for v in exact), Fraction(0)) / len(exact)
    # sqrt of a rational: scale into float range by an even power of two first
    shift = (variance.numerator.bit_length() - variance.denominator.bit_length()) // 2
    scaled = variance / Fraction(4) ** shift
    return math.ldexp(math.sqrt(float(scaled)), shift)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300, 1e307])
def test_bollinger_at_extreme_magnitudes_matches_exact_arithmetic(scale) -> None:
    base = [1.0, -1.0, 1.0, 0.5, 3.0, 2.0]
    closes = np.array(base) * scale
    result = ai.bollinger(closes, 3, 1.0)
    bands = ai.BollingerBands(3, 1.0)
    streamed = [bands.update_value(x) for x in closes]
    for i in range(2, len(closes)):
        window = closes[i - 2:i + 1].tolist()
        ref_mean = float(sum(Fraction(v) for v in window) / 3)
        ref_std = _population_std(window)
        assert result.middle[i] == pytest.approx(ref_mean, rel=1e-15, abs=0)
        assert result.upper[i] - result.middle[i] == pytest.approx(ref_std, rel=1e-14, abs=0)
        assert math.isfinite(result.upper[i]) and math.isfinite(result.lower[i])
        value = streamed[i]
        assert value is not None
        assert (value.middle, value.upper, value.lower) == (
            result.middle[i], result.upper[i], result.lower[i])


def test_bollinger_on_ordinary_prices_is_bit_for_bit_unchanged() -> None:
    # the rescaling only happens outside [2**-400, 2**400]: pinned values by hand
    result = ai.bollinger(np.array([1.0, 2.0, 3.0, 4.0]), 4, 2.0)
    assert result.middle[3] == 2.5
    assert result.upper[3] == 2.5 + 2.0 * math.sqrt(1.25)


def test_rolling_volatility_survives_ratios_beyond_the_float_range() -> None:
    closes = np.array([1e300, 1e-300, 1.0, 2.0, 1e-300])
    ref = [math.log(b) - math.log(a) for a, b in itertools.pairwise(closes)]
    batch = ai.rolling_volatility(closes, 2)
    vol = ai.RollingVolatility(2)
    streamed = [vol.update_value(x) for x in closes]
    for i in range(2, len(closes)):
        r = ref[i - 2:i]
        expected = abs(r[0] - r[1]) / math.sqrt(2)  # sample std of two numbers
        assert batch[i] == pytest.approx(expected, rel=1e-12, abs=0)
        assert streamed[i] == batch[i]


def test_vwap_sessions_agree_between_shapes_with_a_large_legal_offset() -> None:
    offset = -(2**62)
    ts = np.array([10**18, 10**18 + HOUR_NS, 10**18 + 30 * HOUR_NS], np.int64)
    price = np.array([1.0, 2.0, 4.0])
    batch = ai.vwap(ts, price, price, price, np.ones(3), session_offset_ns=offset)
    stream = ai.VWAP(session_offset_ns=offset)
    streamed = [stream.update(SimpleNamespace(ts_ns=int(t), high=p, low=p, close=p,
                                              volume=1.0))
                for t, p in zip(ts, price, strict=True)]
    np.testing.assert_array_equal(batch, streamed)
