"""The allocation engine against closed forms and scikit-learn: equal-risk weights,
inverse volatility, Ledoit-Wolf, the volatility target, budgets, clusters, anti-churn,
and every input guard (each with the input that gets past it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from argus_portfolio.allocation import (
    CapGroup,
    allocate,
    allocate_on,
    bounded_step,
    correlation_clusters,
    enforce_caps,
    equal_risk_weights,
    inverse_vol_weights,
    ledoit_wolf,
    model_covariance,
    risk_budgets,
    risk_contributions,
    vol_target_scale,
)
from argus_portfolio.settings import PortfolioSettings
from sklearn.covariance import LedoitWolf, ledoit_wolf_shrinkage

from argus_core import ConfigError, DataError, structure

LOOSE = PortfolioSettings(max_strategy_weight=50, max_leverage=50, cluster_cap=50,
                          family_cap=50)


@pytest.mark.parametrize("s1, s2, rho", [(0.1, 0.3, 0.6), (0.2, 0.2, -0.5), (0.05, 0.4, 0.95),
                                         (0.3, 0.1, 0.0)])
def test_two_assets_equal_risk_is_inverse_vol_for_any_correlation(s1, s2, rho):
    # w1 s1^2 w1 + w1 rho s1 s2 w2 = w2 s2^2 w2 + w2 rho s1 s2 w1  <=>  w1 s1 = w2 s2
    cov = np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])
    w = equal_risk_weights(cov)
    assert w == pytest.approx([s2 / (s1 + s2), s1 / (s1 + s2)], abs=1e-12)
    assert risk_contributions(w, cov) == pytest.approx([0.5, 0.5], abs=1e-9)


@pytest.mark.parametrize("rho", [-0.4, 0.0, 0.3, 0.9])
def test_three_assets_two_correlated_closed_form(rho):
    # unit vols, assets 0 and 1 correlated rho, asset 2 independent:
    # RC equal  <=>  a^2 (1 + rho) = c^2  with w = (a, a, c), so a = 1 / (2 + sqrt(1 + rho))
    cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]])
    a = 1.0 / (2.0 + math.sqrt(1.0 + rho))
    w = equal_risk_weights(cov)
    assert w == pytest.approx([a, a, a * math.sqrt(1.0 + rho)], abs=1e-12)
    assert risk_contributions(w, cov) == pytest.approx([1 / 3] * 3, abs=1e-9)


def test_diagonal_covariance_gives_inverse_vol():
    vols = np.array([0.05, 0.1, 0.2, 0.4, 0.8])
    w = equal_risk_weights(np.diag(vols ** 2))
    assert w == pytest.approx(inverse_vol_weights(vols), abs=1e-12)
    assert w == pytest.approx((1 / vols) / np.sum(1 / vols), abs=1e-12)
    assert risk_contributions(w, np.diag(vols ** 2)) == pytest.approx([0.2] * 5, abs=1e-9)


def test_constant_correlation_gives_inverse_vol():
    # Maillard, Roncalli & Teiletche (2010): with one pairwise correlation, ERC = 1/sigma.
    vols = np.array([0.1, 0.15, 0.3, 0.22])
    w = equal_risk_weights(model_covariance(vols, 0.35))
    assert w == pytest.approx(inverse_vol_weights(vols), abs=1e-12)


def test_random_covariances_equalise_risk_and_honour_budgets():
    rng = np.random.default_rng(3)
    for n in (2, 5, 12):
        a = rng.normal(size=(n, n))
        cov = a @ a.T + 0.05 * np.eye(n)
        assert risk_contributions(equal_risk_weights(cov), cov) == pytest.approx(
            np.full(n, 1 / n), abs=1e-9)
        budgets = rng.uniform(0.1, 1.0, n)
        w = equal_risk_weights(cov, budgets)
        assert np.all(w > 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
        assert risk_contributions(w, cov) == pytest.approx(budgets / budgets.sum(), abs=1e-9)


def test_scale_of_the_covariance_does_not_matter():
    cov = model_covariance([0.01, 0.02, 0.03], 0.2) * 1e-6
    assert equal_risk_weights(cov) == pytest.approx(equal_risk_weights(cov * 1e6), abs=1e-12)


def test_ledoit_wolf_equals_scikit_learn_and_is_annualised():
    x = np.random.default_rng(1).normal(size=(80, 5)) * 0.01
    cov, shrink = ledoit_wolf(x, periods_per_year=252)
    ref = LedoitWolf().fit(x)
    assert cov == pytest.approx(ref.covariance_ * 252, rel=1e-12)
    assert shrink == pytest.approx(ref.shrinkage_, rel=1e-12)
    assert shrink == pytest.approx(ledoit_wolf_shrinkage(x), rel=1e-12)


def test_shrinkage_makes_a_singular_sample_covariance_positive_definite():
    x = np.random.default_rng(2).normal(size=(4, 8))  # 4 periods, 8 strategies: rank <= 3
    sample = np.cov(x, rowvar=False)
    assert np.linalg.matrix_rank(sample) < 8
    assert np.min(np.linalg.eigvalsh(sample)) < 1e-10
    cov, shrink = ledoit_wolf(x)
    assert 0 < shrink <= 1
    assert np.min(np.linalg.eigvalsh(cov)) > 1e-6
    w = equal_risk_weights(cov)
    assert risk_contributions(w, cov) == pytest.approx(np.full(8, 1 / 8), abs=1e-9)


def test_vol_target_hits_the_target_on_the_model_covariance():
    cov = model_covariance([0.1, 0.25, 0.4], 0.3)
    out = allocate_on(cov, [1, 1, 1], [1, 1, 1], LOOSE)
    assert math.sqrt(out.weights @ cov @ out.weights) == pytest.approx(LOOSE.target_vol,
                                                                       rel=1e-12)
    assert out.weights / out.weights.sum() == pytest.approx(equal_risk_weights(cov), abs=1e-12)


def test_vol_target_is_capped_by_gross_leverage():
    cov = model_covariance([0.01, 0.02], 0.0)  # very quiet: 0.1 / 0.0112 wants leverage 8.9
    w = np.array([0.5, 0.5])
    assert 0.1 / math.sqrt(w @ cov @ w) == pytest.approx(8.944, abs=1e-3)
    assert vol_target_scale(w, cov, target_vol=0.1, max_leverage=2.0) == pytest.approx(2.0)
    assert vol_target_scale(w, cov, target_vol=0.1, max_leverage=20.0) == pytest.approx(
        0.1 / math.sqrt(w @ cov @ w))
    assert vol_target_scale([0.0, 0.0], cov, 0.1, 2.0) == 0.0
    out = allocate_on(cov, [1, 1], [1, 1], PortfolioSettings(max_leverage=1.5,
                                                             max_strategy_weight=2))
    assert out.weights.sum() == pytest.approx(1.5)


def test_annualised_vol_target_on_estimated_returns():
    x = np.random.default_rng(5).normal(size=(250, 3)) * [0.005, 0.01, 0.02]
    out = allocate(x, [1, 1, 1], [1, 1, 1], LOOSE)
    assert out.shrinkage is not None
    assert math.sqrt(out.weights @ out.covariance @ out.weights) == pytest.approx(0.10,
                                                                                  rel=1e-12)


def test_budgets_follow_forecast_times_health_and_the_share_cap():
    assert risk_budgets([1, 1, 2], [1, 0.5, 1]) == pytest.approx([1 / 3.5, 0.5 / 3.5, 2 / 3.5])
    assert risk_budgets([-1, 0, 3], [1, 1, 1]) == pytest.approx([0, 0, 1])
    assert risk_budgets([-1, 0], [1, 1]).tolist() == [0.0, 0.0]
    assert risk_budgets([1e-13, 1.0], [1, 1]).tolist() == [0.0, 1.0]  # negligible
    assert risk_budgets([1e-11, 1.0], [1, 1])[0] > 0  # just past the floor
    capped = risk_budgets([100, 1, 1, 2], [1, 1, 1, 1], max_share=0.4)
    assert capped.max() == pytest.approx(0.4) and capped.sum() == pytest.approx(1.0)
    assert capped[1:] == pytest.approx(np.array([1, 1, 2]) * 0.6 / 4)


def test_zero_budget_strategies_get_no_weight():
    cov = model_covariance([0.1, 0.2, 0.3], 0.1)
    out = allocate_on(cov, [1, 0, 2], [1, 1, 1], LOOSE)
    assert out.weights[1] == 0 and np.all(out.weights[[0, 2]] > 0)
    flat = allocate_on(cov, [0, 0, 0], [1, 1, 1], LOOSE)
    assert flat.weights.tolist() == [0, 0, 0] and flat.scale == 0.0


def test_correlation_clusters_group_correlated_strategies():
    corr = np.array([[1, .9, .1, .0], [.9, 1, .0, .1], [.1, .0, 1, .8], [.0, .1, .8, 1]])
    labels = correlation_clusters(corr * 0.04, max_distance=0.3)
    assert labels[0] == labels[1] != labels[2] == labels[3]
    assert len(set(correlation_clusters(corr, max_distance=0.05).tolist())) == 4
    assert correlation_clusters(np.eye(1), 0.3).tolist() == [0]


def test_cluster_and_family_caps_bind():
    cov = model_covariance([0.1, 0.1, 0.1], 0.0)
    cov[0, 1] = cov[1, 0] = 0.9 * 0.01
    s = PortfolioSettings(max_leverage=10, max_strategy_weight=10, cluster_cap=0.3,
                          family_caps={"fx": 0.2})
    out = allocate_on(cov, [1, 1, 1], [1, 1, 1], s, families=[None, None, "fx"])
    assert out.weights[0] + out.weights[1] <= 0.3 + 1e-12
    assert out.weights[2] <= 0.2 + 1e-12


def test_anti_churn_moves_each_weight_at_most_max_step():
    cov = model_covariance([0.1, 0.2, 0.3], 0.2)
    s = PortfolioSettings(max_step=0.05, max_leverage=3, max_strategy_weight=3)
    prev = np.array([0.0, 0.6, 0.0])
    out = allocate_on(cov, [1, 1, 1], [1, 1, 1], s, previous=prev)
    assert np.all(np.abs(out.weights - prev) <= 0.05 + 1e-15)
    assert not np.allclose(out.weights, out.target)
    w = prev
    for _ in range(40):  # repeated rebalances converge onto the target
        w = allocate_on(cov, [1, 1, 1], [1, 1, 1], s, previous=w).weights
    assert w == pytest.approx(out.target, abs=1e-12)
    assert bounded_step([0.5], [0.0], 0.1).tolist() == [0.4]


def test_a_group_over_its_cap_after_the_step_takes_back_increases_only():
    # Each moves 0.25: the sum would be 0.75 > 0.5; the two rises are halved instead.
    prev, step = np.array([0.5, 0.0, 0.0]), bounded_step([0.5, 0, 0], [0, 0.25, 0.25], 0.25)
    w = enforce_caps(step, [CapGroup("gross", (0, 1, 2), 0.5)], prev)
    assert w.sum() == pytest.approx(0.5) and w[0] == pytest.approx(0.25)
    assert np.all(np.abs(w - prev) <= 0.25 + 1e-15)
    # previous weights over the cap themselves: the group is scaled (a cap is absolute)
    w = enforce_caps([0.6, 0.6], [CapGroup("gross", (0, 1), 0.6)], [0.6, 0.6])
    assert w == pytest.approx([0.3, 0.3])


@pytest.mark.parametrize("call, message", [
    (lambda: ledoit_wolf([[0.1, np.nan], [0.2, 0.1], [0.0, 0.1]]), "NaN or infinite"),
    (lambda: ledoit_wolf([[0.1, 0.2]]), "at least 2 periods"),
    (lambda: ledoit_wolf([0.1, 0.2]), "2-d array"),
    (lambda: equal_risk_weights([[1.0, 0.0]]), "square"),
    (lambda: equal_risk_weights([[1.0, 0.5], [0.4, 1.0]]), "symmetric"),
    (lambda: equal_risk_weights([[1.0, 1.0], [1.0, 1.0]]), "not positive definite"),
    (lambda: equal_risk_weights(np.eye(2), [1.0, 0.0]), "positive values"),
    (lambda: inverse_vol_weights([0.1, 0.0]), "> 0"),
    (lambda: risk_budgets([1, 2], [1]), "differ in length"),
    (lambda: risk_budgets([1, 2], [1, 1.5]), "[0, 1]"),
    (lambda: allocate(np.zeros((5, 2)), [1, 1], [1, 1], PortfolioSettings()), "min_history"),
    (lambda: allocate_on(np.eye(2), [1, 1], [1, 1], PortfolioSettings(), previous=[-0.1, 0]),
     "previous"),
    (lambda: allocate_on(np.eye(2), [1, 1, 1], [1, 1, 1], PortfolioSettings()), "forecasts"),
    (lambda: allocate_on(np.eye(2), [1, 1], [1, 1], PortfolioSettings(), families=["a"]),
     "families"),
])
def test_guards_refuse_with_a_clear_error(call, message):
    with pytest.raises(DataError, match=None) as err:
        call()
    assert message in str(err.value)


def test_inputs_just_inside_the_guards_pass():
    assert ledoit_wolf([[0.1, 0.2], [0.2, 0.1]])[0].shape == (2, 2)  # 2 periods
    assert equal_risk_weights([[1.0, 0.999], [0.999, 1.0]]) == pytest.approx([0.5, 0.5])
    assert equal_risk_weights(np.eye(2), [1e-9, 1.0]).sum() == pytest.approx(1.0)
    assert inverse_vol_weights([1e-9, 1.0])[0] > 0.99
    assert risk_budgets([1, 1], [0.0, 1.0]).tolist() == [0.0, 1.0]
    x = np.random.default_rng(0).normal(size=(20, 2))
    assert allocate(x, [1, 1], [1, 1], PortfolioSettings()).weights.sum() > 0  # min_history
    out = allocate_on(np.eye(2), [1, 1], [1, 1], PortfolioSettings(), previous=[0.0, 0.0],
                      families=["a", None])
    assert np.all(out.weights >= 0)


@pytest.mark.parametrize("raw, key", [
    ({"per_play_fraction": 0.0}, "per_play_fraction"),
    ({"per_play_fraction": 1.5}, "per_play_fraction"),
    ({"max_step": 0}, "max_step"),
    ({"target_vol": -0.1}, "target_vol"),
    ({"max_leverage": float("nan")}, "max_leverage"),
    ({"cluster_distance": 2.5}, "cluster_distance"),
    ({"instrument_caps": {"replay:BTC/USD": 1.2}}, "instrument_caps.replay:BTC/USD"),
    ({"family_caps": {"crypto": -1}}, "family_caps.crypto"),
    ({"strategies": {"a": {"vol": 0}}}, "vol"),
    ({"strategies": {"a": {"health": 2}}}, "health"),
    ({"strategies": {"a": {}, "b": {}, "c": {}}, "correlation": -0.5}, "correlation"),
    ({"min_history": 1}, "min_history"),
])
def test_settings_out_of_range_name_the_key(raw, key):
    with pytest.raises(ConfigError) as err:
        structure(raw, PortfolioSettings, "argus.toml", "plugins.portfolio")
    assert key in str(err.value)


def test_settings_just_inside_their_ranges_pass():
    s = structure({"per_play_fraction": 1.0, "max_step": 1e-6, "cluster_distance": 2.0,
                   "instrument_caps": {"x": 1.0}, "family_caps": {"crypto": 0.01},
                   "strategies": {"a": {"vol": 1e-6, "health": 0}, "b": {}, "c": {}},
                   "correlation": -0.49, "min_history": 2},
                  PortfolioSettings, "argus.toml", "plugins.portfolio")
    assert s.correlation == -0.49 and s.cap_of_family("crypto") == 0.01
    assert s.cap_of_family("other") == s.family_cap


def test_equal_risk_converges_with_very_unequal_budgets() -> None:
    """A case the property test found: near the optimum the objective's change falls
    below float resolution, and a backtracking line search on it stalled Newton at
    ~1e-10, short of the 1e-8 relative check on the smaller budget."""
    import numpy as np
    from argus_portfolio.allocation import equal_risk_weights, risk_contributions

    sigma = np.array([[0.02470506761474075, -0.00281725285367577],
                      [-0.00281725285367577, 0.27771130002019023]])
    budgets = np.array([0.9967715451347517, 0.00322845486524825])
    w = equal_risk_weights(sigma, budgets)
    assert np.allclose(risk_contributions(w, sigma), budgets / budgets.sum(),
                       rtol=1e-12, atol=1e-15)
