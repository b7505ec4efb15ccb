"""Held-out audit of ``argus_core.metrics`` (a constant return's Sharpe and a ruined
run's ratios were fixed in the core after it) on SPY daily bars, whose weekends
and holidays make the bars irregular in time."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from argus_core import metrics

SPY = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "equity" / \
    "lean_spy_daily.csv"
needs_spy = pytest.mark.skipif(not SPY.exists(), reason="../shared/data is not here")
DAY_NS = 86_400 * 10**9
YEAR_NS = 365.25 * DAY_NS


def spy_equity() -> tuple[np.ndarray, np.ndarray]:
    """(stamps ns, closes) of LEAN's SPY daily bars: an equity curve with gaps."""
    raw = np.genfromtxt(SPY, delimiter=",", dtype=str, usecols=(0, 4))
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in raw[:, 0]], dtype="datetime64[D]")
    return days.astype("datetime64[ns]").astype(np.int64), raw[:, 1].astype(np.float64) / 1e4


@needs_spy
def test_sharpe_sortino_and_annualisation_on_irregular_daily_bars():
    """Observations per year from the stamps ((n - 1) / span; ~252 for trading days, not
    365), and Sharpe / Sortino / volatility written out independently."""
    ts, eq = spy_equity()
    r = np.diff(eq) / eq[:-1]
    got = metrics.return_stats(r, ts)
    per_year = (len(ts) - 1) / ((ts[-1] - ts[0]) / YEAR_NS)
    assert 250 < per_year < 254
    assert got["obs_per_year"] == pytest.approx(per_year, rel=1e-12)
    sd = math.sqrt(sum((x - r.mean()) ** 2 for x in r) / (len(r) - 1))
    assert got["sharpe"] == pytest.approx(r.mean() / sd * math.sqrt(per_year), rel=1e-9)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    assert got["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(per_year),
                                           rel=1e-9)
    assert got["volatility"] == pytest.approx(sd * math.sqrt(per_year), rel=1e-9)


@needs_spy
def test_annualised_sharpe_barely_moves_when_rows_without_change_are_added():
    """Irregular rows: an extra equity row at noon of every fifth day with the equity
    unchanged (a fill that moved nothing) adds zero returns and raises the measured
    observations per year; the annualised Sharpe stays within 1%."""
    ts, eq = spy_equity()
    extra = ts[::5][:-1] + DAY_NS // 2
    at = np.searchsorted(ts, extra, side="right") - 1
    ts2 = np.concatenate([ts, extra])
    eq2 = np.concatenate([eq, eq[at]])
    order = np.argsort(ts2, kind="stable")
    ts2, eq2 = ts2[order], eq2[order]
    a = metrics.return_stats(np.diff(eq) / eq[:-1], ts)
    b = metrics.return_stats(np.diff(eq2) / eq2[:-1], ts2)
    assert b["obs_per_year"] > a["obs_per_year"] * 1.15
    assert b["sharpe"] == pytest.approx(a["sharpe"], rel=0.01)


@needs_spy
def test_max_drawdown_with_gaps_against_brute_force():
    """Peak-to-trough by a plain loop over the SPY closes (weekends and holidays missing)."""
    _ts, eq = spy_equity()
    peak, worst = eq[0], 0.0
    for x in eq:
        peak = max(peak, x)
        worst = max(worst, (peak - x) / peak)
    assert float(metrics.drawdown(eq).max()) == pytest.approx(worst, rel=1e-12)
    assert 0.5 < worst < 0.6  # 2007-2009


def test_one_bar_and_empty_series_are_flat():
    """One equity row: no returns, every ratio 0 (not NaN)."""
    got = metrics.return_stats(np.empty(0), np.array([0], dtype=np.int64))
    assert got["sharpe"] == 0.0 and got["sortino"] == 0.0 and got["obs_per_year"] == 0.0


@pytest.mark.parametrize("rate", [0.001, 0.1])
def test_core_sharpe_of_a_constant_return_is_zero(rate):
    """252 daily returns of exactly ``rate``: no risk, no Sharpe ratio (the core's own
    convention for an exactly constant series is 0)."""
    ts = np.arange(253, dtype=np.int64) * DAY_NS
    got = metrics.return_stats(np.full(252, rate), ts)
    assert got["sharpe"] == 0.0 and got["sharpe_per_obs"] == 0.0


def test_core_metrics_of_a_ruined_run_are_numbers():
    """Equity 100 -> 50 -> 0 and then flat at 0: the Sharpe ratio is a (negative) number."""
    from decimal import Decimal

    eq = np.array([100.0, 90.0, 50.0, 0.0, 0.0, 0.0])
    ts = np.arange(6, dtype=np.int64) * DAY_NS
    with np.errstate(invalid="ignore", divide="ignore"):
        got = metrics.metrics_of(ts, eq, [], [], Decimal(100))
    assert got["max_drawdown"] == 1.0
    assert math.isfinite(got["sharpe"]) and got["sharpe"] < 0
