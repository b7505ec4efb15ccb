"""Held-out audit of the allocation numerics: equal risk contribution against cyclical
coordinate descent on the covariance of held-out markets (SPY, QQQ, ETH, XBT daily
returns from ``../shared``), water-filled budgets against bisection, the volatility
target, near-singular and degenerate inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from argus_portfolio.allocation import (
    allocate,
    allocate_on,
    equal_risk_weights,
    ledoit_wolf,
    risk_budgets,
    risk_contributions,
)
from argus_portfolio.settings import PortfolioSettings

from argus_core import DataError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "equity" / "lean_spy_daily.csv").exists(),
                                reason="../shared/data is not here")


def _daily(path: Path, lean: bool) -> dict[np.datetime64, float]:
    if lean:
        raw = np.genfromtxt(path, delimiter=",", dtype=str, usecols=(0, 4))
        days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in raw[:, 0]],
                        dtype="datetime64[D]")
        return dict(zip(days, raw[:, 1].astype(float), strict=True))
    raw = np.genfromtxt(path, delimiter=",", usecols=(0, 4))
    days = raw[:, 0].astype("datetime64[s]").astype("datetime64[D]")
    out: dict[np.datetime64, float] = {}
    for d, c in zip(days, raw[:, 1], strict=True):
        out[d] = float(c)  # the day's last hourly close
    return out


def heldout_returns() -> np.ndarray:
    """Daily returns of SPY, QQQ, ETH and XBT on the days all four have a close."""
    series = [_daily(DATA / "equity" / "lean_spy_daily.csv", True),
              _daily(DATA / "equity" / "lean_qqq_daily.csv", True),
              _daily(DATA / "crypto" / "kraken_ETHUSD_60.csv", False),
              _daily(DATA / "crypto" / "kraken_XBTUSD_60.csv", False)]
    days = sorted(set.intersection(*(set(s) for s in series)))
    closes = np.array([[s[d] for s in series] for d in days])
    return np.diff(closes, axis=0) / closes[:-1]


def erc_reference(cov: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Long-only weights summing to 1 whose risk shares are ``budgets``, by cyclical
    coordinate descent (Griveau-Billion, Richard & Roncalli 2013): each ``y_i`` in turn is
    the positive root of ``Σ_ii y_i² + (Σ_{j≠i} Σ_ij y_j) y_i - b_i = 0`` (no use of the
    engine's Newton solver)."""
    y = np.full(len(budgets), 1.0)
    for _ in range(2000):
        for i in range(len(y)):
            c = float(cov[i] @ y - cov[i, i] * y[i])
            y[i] = (-c + np.sqrt(c * c + 4 * cov[i, i] * budgets[i])) / (2 * cov[i, i])
    return y / y.sum()


@needs_data
@pytest.mark.parametrize("budgets", [None, [0.4, 0.3, 0.2, 0.1]])
def test_equal_risk_on_heldout_markets_matches_coordinate_descent(budgets):
    r = heldout_returns()
    assert r.shape[0] > 500 and r.shape[1] == 4
    cov, shrink = ledoit_wolf(r, 252.0)
    b = np.full(4, 0.25) if budgets is None else np.array(budgets)
    w = equal_risk_weights(cov, b)
    assert w.sum() == pytest.approx(1.0, abs=1e-14) and np.all(w > 0)
    assert risk_contributions(w, cov) == pytest.approx(b, abs=1e-10)
    assert w == pytest.approx(erc_reference(cov, b), abs=1e-10)
    assert 0 <= shrink <= 1


def budgets_reference(raw: np.ndarray, cap: float) -> np.ndarray:
    """``b_i = min(cap, lam * raw_i)`` summing to 1, ``lam`` by bisection."""
    lo, hi = 0.0, 1e6 / raw[raw > 0].min()
    for _ in range(300):
        lam = (lo + hi) / 2
        if np.minimum(cap, lam * raw).sum() < 1:
            lo = lam
        else:
            hi = lam
    return np.minimum(cap, hi * raw)


@pytest.mark.parametrize("seed", range(5))
def test_water_filled_budgets_against_bisection(seed):
    rng = np.random.default_rng(seed)
    forecasts = rng.lognormal(0, 1.5, 8)
    forecasts[rng.integers(0, 8)] = -1.0  # an expected loss gets no budget
    health = rng.uniform(0.2, 1.0, 8)
    got = risk_budgets(forecasts, health, 0.2)
    raw = np.clip(forecasts, 0, None) * health
    assert got[forecasts < 0].tolist() == [0.0]
    assert got == pytest.approx(budgets_reference(raw, 0.2), abs=1e-12)
    assert got.sum() == pytest.approx(1.0, abs=1e-12) and got.max() <= 0.2 + 1e-15


@needs_data
def test_vol_target_and_caps_on_heldout_markets():
    """The unconstrained target hits ``target_vol`` exactly; every cap holds after."""
    r = heldout_returns()
    s = PortfolioSettings(target_vol=0.08, max_leverage=1.0, max_strategy_weight=0.5,
                          cluster_cap=0.6, cluster_distance=0.3, min_history=20)
    out = allocate(r, [1, 1, 1, 1], [1, 1, 1, 1], s)
    erc = equal_risk_weights(out.covariance)
    vol = float(np.sqrt((erc * out.scale) @ out.covariance @ (erc * out.scale)))
    assert vol == pytest.approx(0.08, rel=1e-12)
    w = out.weights
    assert np.all(w >= 0) and w.max() <= 0.5 + 1e-15 and w.sum() <= 1.0 + 1e-15
    # SPY and QQQ correlate ~0.9: one cluster, held to its cap
    assert out.clusters[0] == out.clusters[1]
    assert w[0] + w[1] <= 0.6 + 1e-15


def test_all_losing_forecasts_allocate_nothing():
    r = np.random.default_rng(1).normal(-0.001, 0.01, (100, 3))
    out = allocate(r, [-0.5, -0.1, 0.0], [1, 1, 1], PortfolioSettings())
    assert out.weights.tolist() == [0.0, 0.0, 0.0] and out.scale == 0.0


def test_near_singular_pair_shares_its_risk_equally():
    """Two strategies with correlation 0.99999 and a third: Newton converges, the pair
    splits its half evenly (a singular pair is what Ledoit-Wolf is for)."""
    rng = np.random.default_rng(6)
    x = rng.normal(0, 0.01, (400, 2))
    twin = x[:, 0] + rng.normal(0, 0.01 * 0.0045, 400)
    cov, _ = ledoit_wolf(np.column_stack([x[:, 0], twin, x[:, 1]]), 252.0)
    w = equal_risk_weights(cov)
    assert risk_contributions(w, cov) == pytest.approx([1 / 3] * 3, abs=1e-10)
    assert w[0] == pytest.approx(w[1], rel=0.01)
    dup = allocate_on(cov, [1, 1, 1], [1, 1, 1], PortfolioSettings(cluster_cap=0.6))
    assert dup.clusters[0] == dup.clusters[1] != dup.clusters[2]


def test_constant_prices_everywhere_are_refused_with_a_reason():
    """Every strategy flat (constant prices): no covariance to allocate on."""
    with pytest.raises(DataError, match="not positive definite"):
        allocate(np.zeros((60, 3)), [1, 1, 1], [1, 1, 1], PortfolioSettings())


@needs_data
def test_book_sharpe_is_the_reports_sharpe_on_daily_bars_with_gaps():
    """The books table's Sharpe of an equity curve equals the core report's for the same
    rows.  Before: annualised by the median spacing (1 day: 365.25 a year) where the
    report measures ~252 a year over the span, so 1.2x the report's figure."""
    from decimal import Decimal

    from argus_portfolio.books import _summary

    from argus_core import metrics

    raw = np.genfromtxt(DATA / "equity" / "lean_spy_daily.csv", delimiter=",", dtype=str,
                        usecols=(0, 4))
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in raw[:, 0]], dtype="datetime64[D]")
    ts = days.astype("datetime64[ns]").astype(np.int64)
    equity = raw[:, 1].astype(np.float64) / 1e4 * 1000
    book = _summary("portfolio", ts, equity, Decimal(1), Decimal(1), 0)
    report = metrics.return_stats(np.diff(equity) / equity[:-1], ts)
    # e1/e0 - 1 here, (e1 - e0)/e0 there: the same to rounding
    assert book.sharpe == pytest.approx(report["sharpe"], rel=1e-12)


def test_book_sharpe_of_a_constant_return_is_none():
    """Equity compounding at a fixed rate has no Sharpe ratio (before: ~1e14)."""
    from decimal import Decimal

    from argus_portfolio.books import _summary

    ts = np.arange(300, dtype=np.int64) * 86_400 * 10**9
    book = _summary("carry", ts, 100.0 * 1.0004 ** np.arange(300), Decimal(100), Decimal(1), 0)
    assert book.sharpe is None
