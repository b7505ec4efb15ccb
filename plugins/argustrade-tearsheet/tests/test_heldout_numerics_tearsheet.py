"""Held-out audit of the tearsheet's own figures on SPY daily closes (``../shared``: the
weekends and holidays make the rows irregular): the longest drawdown by a plain loop,
monthly returns against pandas, exposure, profit factor and the degenerate series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from argus_tearsheet.analytics import (
    drawdown_duration_ns,
    exposure,
    monthly_returns,
    profit_factor,
)

SPY = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "equity" / \
    "lean_spy_daily.csv"
needs_spy = pytest.mark.skipif(not SPY.exists(), reason="../shared/data is not here")
DAY_NS = 86_400 * 10**9


def spy() -> tuple[np.ndarray, np.ndarray]:
    raw = np.genfromtxt(SPY, delimiter=",", dtype=str, usecols=(0, 4))
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in raw[:, 0]], dtype="datetime64[D]")
    return days.astype("datetime64[ns]").astype(np.int64), raw[:, 1].astype(np.float64) / 1e4


def longest_underwater(ts: np.ndarray, eq: np.ndarray) -> int:
    """Brute force: from the last row at the running peak to the first row back at or
    above it (or the last row), the longest such stretch in time."""
    best, peak, peak_at = 0, eq[0], 0
    for i in range(1, len(eq)):
        if eq[i] >= peak:
            best = max(best, int(ts[i] - ts[peak_at]))
            peak, peak_at = eq[i], i
    return max(best, int(ts[-1] - ts[peak_at]))


@needs_spy
def test_longest_drawdown_on_spy_against_a_loop():
    ts, eq = spy()
    got = drawdown_duration_ns(ts, eq)
    assert got == longest_underwater(ts, eq)
    assert got > 5 * 365 * DAY_NS  # the 2000 peak was regained in 2007


@pytest.mark.parametrize("seed", range(4))
def test_longest_drawdown_on_random_irregular_series(seed):
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(1, 5, 300)).astype(np.int64) * DAY_NS
    eq = 100 * np.cumprod(1 + rng.normal(0.0005, 0.02, 300))
    eq[rng.integers(0, 300, 20)] = eq.max() * 1.0  # equal-to-peak rows count as regained
    assert drawdown_duration_ns(ts, eq) == longest_underwater(ts, eq)


@needs_spy
def test_monthly_returns_against_pandas():
    """Each UTC month's last close over the previous month's last (the first month over
    the first row), as pandas resamples it; compounded, the total return."""
    ts, eq = spy()
    got = monthly_returns(ts, eq)
    s = pd.Series(eq, index=pd.to_datetime(ts, utc=True))
    last = s.resample("ME").last().dropna()
    ref = last.pct_change()
    ref.iloc[0] = last.iloc[0] / eq[0] - 1
    assert len(got.returns) == len(ref)
    np.testing.assert_allclose(got.returns, ref.to_numpy(), rtol=1e-12, atol=1e-15)
    assert np.prod(1 + got.returns) == pytest.approx(eq[-1] / eq[0], rel=1e-10)


def test_exposure_is_time_weighted_over_irregular_rows():
    ts = np.array([0, 1, 5, 6, 10], dtype=np.int64) * DAY_NS
    held = np.array([True, False, True, False, False])
    assert exposure(ts, held) == pytest.approx((1 + 1) / 10)


def test_profit_factor_and_degenerate_series():
    assert profit_factor([3.0, -1.0, 2.0, -4.0]) == pytest.approx(5 / 5)
    assert profit_factor([-1.0, -2.0]) == 0.0  # all losing
    assert profit_factor([]) is None and profit_factor([0.0]) is None
    assert profit_factor([1.0]) == float("inf")
    one = np.array([0], dtype=np.int64)
    assert drawdown_duration_ns(one, np.array([100.0])) == 0
    assert monthly_returns(one, np.array([100.0])).returns.size == 0
    flat_ts = np.arange(10, dtype=np.int64) * DAY_NS
    assert drawdown_duration_ns(flat_ts, np.full(10, 100.0)) == 0  # constant prices
