"""Property tests (hypothesis): on random and adversarial inputs the allocator never
leaves a cap exceeded, weights stay >= 0, and each weight moves at most ``max_step``."""

from __future__ import annotations

import numpy as np
import pytest
from argus_portfolio.allocation import allocate, cap_groups
from argus_portfolio.settings import PortfolioSettings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argus_core import DataError

TOL = 1e-12


@st.composite
def cases(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 6))
    t = draw(st.integers(20, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    returns = rng.normal(size=(t, n)) * rng.uniform(1e-4, 0.05, n)
    if draw(st.booleans()):  # a common factor: correlated strategies, so clusters form
        returns += rng.normal(size=(t, 1)) * 0.01
    if draw(st.booleans()):  # a zero-variance strategy
        returns[:, draw(st.integers(0, n - 1))] = 0.0
    forecasts = np.array(draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n)))
    if draw(st.booleans()):  # a single huge forecast
        forecasts[draw(st.integers(0, n - 1))] = 1e12
    health = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    fams = draw(st.lists(st.sampled_from([None, "a", "b"]), min_size=n, max_size=n))
    cfg = PortfolioSettings(
        target_vol=draw(st.floats(0.01, 2.0)), max_leverage=draw(st.floats(0.1, 5.0)),
        max_strategy_weight=draw(st.floats(0.01, 2.0)), cluster_cap=draw(st.floats(0.01, 2)),
        family_cap=draw(st.floats(0.01, 2.0)), max_step=draw(st.floats(0.001, 1.0)),
        max_budget_share=draw(st.floats(0.05, 1.0)), cluster_distance=draw(st.floats(0, 2)))
    previous = None
    if draw(st.booleans()):
        previous = rng.uniform(0, 1, n) * draw(st.sampled_from([0.0, 0.1, 1.0, 3.0]))
    return {"returns": returns, "forecasts": forecasts, "health": health, "families": fams,
            "settings": cfg, "previous": previous}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_no_cap_is_ever_exceeded(case: dict) -> None:
    s: PortfolioSettings = case["settings"]
    returns = case["returns"]
    if np.all(returns.std(axis=0) == 0):
        with pytest.raises(DataError, match="not positive definite"):
            allocate(returns, case["forecasts"], case["health"], s)
        return
    out = allocate(returns, case["forecasts"], case["health"], s,
                   previous=case["previous"], families=case["families"])
    w = out.weights
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    groups = cap_groups(len(w), s, out.clusters.tolist(), case["families"])
    for group in groups:
        total = w[list(group.members)].sum()
        assert total <= group.cap * (1 + TOL), (group, total)
        assert out.target[list(group.members)].sum() <= group.cap * (1 + TOL)
    prev = case["previous"]
    if prev is not None and all(prev[list(g.members)].sum() <= g.cap for g in groups):
        # from weights within every cap, no weight moves by more than max_step
        assert np.all(np.abs(w - prev) <= s.max_step * (1 + TOL) + TOL)


@settings(max_examples=50, deadline=None)
@given(st.integers(20, 40), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_nan_returns_are_refused_naming_where(t: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    returns = rng.normal(size=(t, n))
    row, col = int(rng.integers(t)), int(rng.integers(n))
    returns[row, col] = np.nan
    with pytest.raises(DataError) as err:
        allocate(returns, np.ones(n), np.ones(n), PortfolioSettings())
    assert "NaN or infinite" in str(err.value) and f"({row}, {col})" in str(err.value)


def test_a_single_huge_forecast_is_held_to_the_strategy_cap():
    returns = np.random.default_rng(9).normal(size=(60, 3)) * 0.01
    s = PortfolioSettings(max_strategy_weight=0.3, target_vol=1.5, max_leverage=3)
    out = allocate(returns, [1e12, 1, 1], [1, 1, 1], s)
    assert out.weights[0] == pytest.approx(0.3) and out.weights.sum() <= 3


def test_a_zero_variance_strategy_is_allocated_within_its_cap():
    returns = np.random.default_rng(4).normal(size=(60, 3)) * 0.01
    returns[:, 1] = 0.0
    s = PortfolioSettings(max_strategy_weight=0.4, max_leverage=2)
    out = allocate(returns, [1, 1, 1], [1, 1, 1], s)
    assert out.covariance[1, 1] > 0  # shrinkage gave it a variance
    assert out.weights[1] == pytest.approx(0.4) and np.all(out.weights <= 0.4 + 1e-15)
