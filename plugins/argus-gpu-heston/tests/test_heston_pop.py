"""Probability of profit against probabilities computed from the analytic pricer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from argus_gpu_heston import HestonParams, HestonPricer, OptionLeg
from argus_gpu_heston.analytic import heston_price
from argus_gpu_heston.errors import HestonParameterError
from scipy.stats import norm

P = HestonParams(v0=0.04, kappa=2.0, theta=0.05, sigma=0.6, rho=-0.7)
S0, T, R, Q = 100.0, 0.12, 0.02, 0.005
PATHS = 100_000


def prob_above(k: float, params: HestonParams = P) -> float:
    """Risk-neutral P(S_T > K) = -e^{rT} dC/dK, by central differences of analytic calls."""
    h = 1e-3 * k
    up, dn = heston_price("call", S0, [k + h, k - h], T, R, Q, params)
    return -math.exp(R * T) * (up - dn) / (2 * h)


def undiscounted_put(k: float) -> float:
    return math.exp(R * T) * float(heston_price("put", S0, k, T, R, Q, P))


def binom_tol(p: float) -> float:
    return 4.0 * math.sqrt(p * (1 - p) / PATHS) + 2e-3  # 4 SE + discretisation (16 steps)


@pytest.fixture(scope="module")
def pricer() -> HestonPricer:
    return HestonPricer()


def test_short_put_spread_matches_analytic_probabilities(pricer: HestonPricer) -> None:
    legs = [OptionLeg("put", 95.0, -1.0), OptionLeg("put", 90.0, 1.0)]
    res = pricer.pop(legs, S0, T, R, Q, P, premium=1.0, paths=PATHS, steps=16, seed=1,
                     backend="cpu")
    p_profit = prob_above(94.0)  # P&L > 0 exactly when S_T > 95 - 1
    p_max_loss = 1.0 - prob_above(90.0)
    expected = 1.0 - undiscounted_put(95.0) + undiscounted_put(90.0)
    assert res.p_profit == pytest.approx(p_profit, abs=binom_tol(p_profit))
    assert res.p_max_loss == pytest.approx(p_max_loss, abs=binom_tol(p_max_loss))
    assert res.expected_pnl == pytest.approx(expected, abs=0.02)
    assert res.paths == PATHS and res.backend == "cpu"
    # touching before expiry is at least as likely as finishing below the strike
    assert res.p_touch_short >= 1.0 - prob_above(95.0)
    qs = list(res.pnl_quantiles.values())
    assert qs == sorted(qs) and qs[0] == pytest.approx(-4.0) and qs[-1] == pytest.approx(1.0)


def test_iron_condor_and_call_spread(pricer: HestonPricer) -> None:
    condor = [OptionLeg("put", 85.0, 1.0), OptionLeg("put", 90.0, -1.0),
              OptionLeg("call", 110.0, -1.0), OptionLeg("call", 115.0, 1.0)]
    res = pricer.pop(condor, S0, T, R, Q, P, premium=1.5, paths=PATHS, steps=16, seed=2,
                     backend="cpu")
    p_profit = prob_above(88.5) - prob_above(111.5)
    p_max = (1.0 - prob_above(85.0)) + prob_above(115.0)
    assert res.p_profit == pytest.approx(p_profit, abs=binom_tol(p_profit))
    assert res.p_max_loss == pytest.approx(p_max, abs=binom_tol(p_max))
    calls = [OptionLeg("call", 105.0, -1.0), OptionLeg("call", 110.0, 1.0)]
    res = pricer.pop(calls, S0, T, R, Q, P, premium=0.8, paths=PATHS, steps=16, seed=3,
                     backend="cpu")
    assert res.p_profit == pytest.approx(1.0 - prob_above(105.8),
                                         abs=binom_tol(1.0 - prob_above(105.8)))


def test_user_drift_in_the_black_scholes_limit(pricer: HestonPricer) -> None:
    # sigma -> 0, v0 = theta: S is lognormal with the user's drift mu.
    bs = HestonParams(v0=0.04, kappa=3.0, theta=0.04, sigma=1e-4, rho=0.0)
    legs = [OptionLeg("put", 95.0, -1.0), OptionLeg("put", 90.0, 1.0)]
    for mu in (-0.2, 0.0, 0.3):
        res = pricer.pop(legs, S0, 0.25, R, Q, bs, premium=1.0, drift=mu, paths=PATHS, steps=8,
                         seed=4, backend="cpu")
        d2 = (math.log(S0 / 94.0) + (mu - 0.02) * 0.25) / (0.2 * 0.5)
        assert res.p_profit == pytest.approx(norm.cdf(d2), abs=binom_tol(norm.cdf(d2)))


def test_touch_probability_matches_discrete_barrier_formula(pricer: HestonPricer) -> None:
    # Black-Scholes limit, r = q = 0: P(min S <= K) for GBM, continuous formula with the
    # Broadie-Glasserman-Kou shift exp(-0.5826 vol sqrt(dt)) for daily monitoring.
    bs = HestonParams(v0=0.04, kappa=3.0, theta=0.04, sigma=1e-4, rho=0.0)
    t, k, vol, steps = 0.25, 92.0, 0.2, 63
    legs = [OptionLeg("put", k, -1.0), OptionLeg("put", 85.0, 1.0)]
    res = pricer.pop(legs, S0, t, 0.0, 0.0, bs, premium=1.0, paths=PATHS, steps=steps, seed=5,
                     backend="cpu")
    barrier = k * math.exp(-0.5826 * vol * math.sqrt(t / steps))
    nu = -0.5 * vol * vol
    b = math.log(barrier / S0)
    sd = vol * math.sqrt(t)
    p_touch = norm.cdf((b - nu * t) / sd) + math.exp(2 * nu * b / vol ** 2) * norm.cdf(
        (b + nu * t) / sd)
    assert res.p_touch_short == pytest.approx(p_touch, abs=binom_tol(p_touch))


def test_nearest_the_money_short_strike_is_watched(pricer: HestonPricer) -> None:
    condor = [OptionLeg("put", 80.0, 1.0), OptionLeg("put", 85.0, -1.0),
              OptionLeg("call", 103.0, -1.0), OptionLeg("call", 108.0, 1.0)]
    res = pricer.pop(condor, S0, T, R, Q, P, premium=1.0, paths=20_000, steps=16, seed=6,
                     backend="cpu")
    upper = pricer.pop([OptionLeg("call", 103.0, -1.0), OptionLeg("call", 108.0, 1.0)], S0, T,
                       R, Q, P, premium=0.5, paths=20_000, steps=16, seed=6, backend="cpu")
    assert res.p_touch_short == upper.p_touch_short


def test_unbounded_loss_and_missing_short(pricer: HestonPricer) -> None:
    naked = pricer.pop([OptionLeg("call", 110.0, -1.0)], S0, T, R, Q, P, premium=0.5,
                       paths=2000, steps=4, backend="cpu")
    assert math.isnan(naked.p_max_loss)
    long_only = pricer.pop([OptionLeg("put", 90.0, 1.0)], S0, T, R, Q, P, premium=-0.5,
                           paths=2000, steps=4, backend="cpu")
    assert math.isnan(long_only.p_touch_short)
    assert np.isfinite(long_only.p_max_loss)


def test_pop_refuses_bad_input(pricer: HestonPricer) -> None:
    with pytest.raises(HestonParameterError, match="OptionLeg"):
        pricer.pop([], S0, T, R, Q, P, premium=1.0)
    with pytest.raises(HestonParameterError, match="premium"):
        pricer.pop([OptionLeg("put", 90.0, -1.0)], S0, T, R, Q, P, premium=float("nan"))
    with pytest.raises(HestonParameterError, match="kind"):
        OptionLeg("butterfly", 90.0, 1.0)
    with pytest.raises(HestonParameterError, match="strike"):
        OptionLeg("put", 0.0, 1.0)
