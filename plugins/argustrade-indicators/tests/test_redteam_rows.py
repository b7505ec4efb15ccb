"""Red team of the indicators' row rules: a skipped row must not change anything else,
and a bar whose high is below its low is refused, not averaged.

Found and fixed (each test failed before):

* ``vwap`` checked time order and negative volume on *every* row, the skipped ones
  included: a row with a NaN price and a stale ``ts_ns`` (a feed's placeholder), or an
  infinite volume of ``-inf``, raised ``DataError`` for the whole array, while the
  README promises such a row is skipped and the streaming ``VWAP`` does skip it;
* ``true_range`` / ``atr`` (batch and streaming) took ``high < low`` (swapped columns)
  and returned a *negative* true range (-1.0 for high 1, low 2), pulling the ATR down
  without a word; ``argus_core.Bar`` refuses such a bar.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import argus_indicators as ai
import numpy as np
import pytest

from argus_core import DataError

HOUR_NS = 3600 * 10**9


def _stream_vwap(ts: np.ndarray, price: np.ndarray, volume: np.ndarray) -> list[float]:
    vwap = ai.VWAP()
    out = []
    for t, p, v in zip(ts.tolist(), price.tolist(), volume.tolist(), strict=True):
        value = vwap.update(SimpleNamespace(ts_ns=t, high=p, low=p, close=p, volume=v))
        out.append(math.nan if value is None else value)
    return out


@pytest.mark.parametrize(("bad_ts", "bad_price", "bad_volume"), [
    (0, math.nan, 1.0),       # a placeholder row stamped before the previous bar
    (3 * HOUR_NS, 10.0, -math.inf),  # a non-finite (negative) volume
])
def test_vwap_skips_a_non_finite_row_whatever_its_time_or_volume(
        bad_ts: int, bad_price: float, bad_volume: float) -> None:
    ts = np.array([HOUR_NS, 2 * HOUR_NS, bad_ts, 4 * HOUR_NS, 5 * HOUR_NS], np.int64)
    price = np.array([10.0, 11.0, bad_price, 13.0, 14.0])
    volume = np.array([1.0, 2.0, bad_volume, 3.0, 4.0])
    batch = ai.vwap(ts, price, price, price, volume)
    keep = [0, 1, 3, 4]
    # as if the row was not there, and equal to the stream
    without = ai.vwap(ts[keep], price[keep], price[keep], price[keep], volume[keep])
    assert math.isnan(batch[2])
    np.testing.assert_array_equal(batch[keep], without)
    np.testing.assert_array_equal(batch, _stream_vwap(ts, price, volume))
    # by hand: (10*1 + 11*2 + 13*3) / 6 at the fourth bar
    assert batch[3] == pytest.approx(71.0 / 6.0, rel=1e-15)


def test_vwap_still_refuses_finite_rows_out_of_order_and_negative_volume() -> None:
    price = np.array([10.0, 11.0])
    with pytest.raises(DataError, match="non-decreasing"):
        ai.vwap(np.array([2, 1]), price, price, price, np.ones(2))
    with pytest.raises(DataError, match="negative volume"):
        ai.vwap(np.array([1, 2]), price, price, price, np.array([1.0, -1.0]))


def test_true_range_and_atr_refuse_a_high_below_the_low() -> None:
    high, low, close = np.array([2.0, 1.0, 3.0]), np.array([1.0, 2.0, 2.0]), \
        np.array([1.5, 1.5, 2.5])
    for name, call in (("true_range", lambda: ai.true_range(high, low, close)),
                       ("atr", lambda: ai.atr(high, low, close, 2))):
        with pytest.raises(DataError, match=rf"{name}: high 1.0 < low 2.0 at row 1"):
            call()
    atr = ai.ATR(2)
    atr.update(SimpleNamespace(ts_ns=1, high=2.0, low=1.0, close=1.5, volume=1.0))
    with pytest.raises(DataError, match=r"atr: high 1.0 < low 2.0 at 2"):
        atr.update(SimpleNamespace(ts_ns=2, high=1.0, low=2.0, close=1.5, volume=1.0))


def test_true_range_still_skips_a_nan_row_and_takes_high_equal_low() -> None:
    high = np.array([2.0, math.nan, 3.0, 3.0])
    low = np.array([1.0, 5.0, 2.0, 3.0])
    close = np.array([1.5, 1.5, 2.5, 3.0])
    out = ai.true_range(high, low, close)
    # by hand: 2-1; skipped; max(1, |3-1.5|, |2-1.5|) = 1.5; max(0, |3-2.5|, ..) = 0.5
    np.testing.assert_array_equal(out, [1.0, math.nan, 1.5, 0.5])
