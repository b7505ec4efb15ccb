"""Second held-out red team of the Heston plugin (after ``test_heldout_heston.py``).

Found and fixed (each test below failed before):

* a Monte Carlo sample with no spread left after the control variate reported a
  standard error of 0, which the core's ``PricingResult`` reads as "exact": a plain
  estimate of a put 40% out of the money over 30 days was 0.0 +- 0.0 (true 1.4e-7: no
  path reached the strike), a deep in-the-money call 40.000000000000014 +- 0.0 (true
  40.00000014), the conditional estimator's 1000 put on a spot of 100 900.0 +- 0.0.
  The sample cannot measure its error then: the standard error is now ``inf``;
* ``seed=True``, ``steps=True``, a strike of ``True`` and ``HestonParams(v0=True)`` /
  ``OptionLeg(strike=True)`` were taken as 1 (bool is an int to Python); now refused;
* analytic prices of one-day options far out of the money were wrong in relative
  terms: the damping exponent was capped at 40, too weak for a density this narrow,
  so the integral's rounding floor (~6e-19) was the price: the one-day 110 call 6.3e-19
  (true 5.1e-21), the 90 put 5.8e-19 (true 3.8e-25), the 80 put 0 (true 1.8e-102);
* the 30-digit reference ``heston_reference.lewis_price`` had the same kind of floor
  (it is the forward minus an integral): 1.3e-29 for that 80 put; it now raises its
  precision to cover the cancellation, and refuses (instead of returning a negative
  put) where its quadrature cannot resolve the integrand (v0 = 0 over one day).

Held: v0 = 0 (and 1e-300) prices converge to the v0 -> 0 limit and agree with the
reference to 1e-12 at 0.1 and 1 year; the one-day ATM call at v0 = 0 takes ~0.2 s (the
characteristic function decays slowly there), not a hang.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from argus_gpu_heston import HestonParams, HestonPricer, OptionLeg
from argus_gpu_heston.analytic import heston_price
from argus_gpu_heston.errors import HestonParameterError

sys.path.insert(0, str(Path(__file__).parent))
from heston_reference import lewis_price

MODEL = HestonParams(0.04, 2.0, 0.04, 0.5, -0.7)
DAY = 1.0 / 365.0


def _black_mp(kind: str, s0: float, strike: float, t: float, vol: float) -> float:
    """Black-Scholes (r = q = 0) in 60-digit arithmetic: no cancellation far out."""
    with mp.workdps(60):
        s, k, sd = mp.mpf(s0), mp.mpf(strike), mp.mpf(vol) * mp.sqrt(mp.mpf(t))
        d1 = mp.log(s / k) / sd + sd / 2
        d2 = d1 - sd
        if kind == "call":
            return float(s * mp.ncdf(d1) - k * mp.ncdf(d2))
        return float(k * mp.ncdf(-d2) - s * mp.ncdf(-d1))


@pytest.mark.parametrize(("kind", "strike", "t", "estimator"), [
    ("put", 60.0, 30 / 365, "plain"), ("call", 150.0, 30 / 365, "plain"),
    ("call", 60.0, 30 / 365, "plain"), ("put", 1000.0, 1.0, "conditional"),
])
def test_a_sample_without_spread_has_no_standard_error_of_zero(
        kind: str, strike: float, t: float, estimator: str) -> None:
    """Before: stderr 0.0 (0.0 +- 0.0 for the far put, whose true price is 1.4e-7)."""
    res = HestonPricer().price(kind, 100.0, strike, t, 0.0, 0.0, MODEL, method="mc",
                               paths=4000, steps=8, backend="cpu", estimator=estimator)
    assert res.stderr > 0.0, res
    exact = float(heston_price(kind, 100.0, strike, t, 0.0, 0.0, MODEL))
    assert abs(res.price - exact) <= 3.0 * res.stderr, (res, exact)


def test_a_normal_sample_keeps_a_finite_standard_error() -> None:
    """The degenerate-sample rule must not swallow ordinary estimates."""
    for estimator in ("plain", "conditional"):
        res = HestonPricer().price("put", 100.0, 90.0, 0.5, 0.0, 0.0, MODEL, method="mc",
                                   paths=4000, steps=8, backend="cpu", estimator=estimator)
        assert 0.0 < res.stderr < 0.1, res


@pytest.mark.parametrize("field", ["seed", "steps", "paths"])
def test_a_bool_is_not_a_simulation_integer(field: str) -> None:
    """Before: seed=True and steps=True ran as 1 (paths=True was refused only as < 2)."""
    kwargs: dict[str, object] = {"paths": 64, "steps": 8, "seed": 0, field: True}
    with pytest.raises(HestonParameterError, match=field):
        HestonPricer().price("put", 100.0, 90.0, 1.0, 0.0, 0.0, MODEL, method="mc",
                             backend="cpu", **kwargs)  # type: ignore[arg-type]


def test_a_bool_is_not_a_price_parameter() -> None:
    """Before: HestonParams(v0=True) was v0 = 1.0 (100% vol), a strike True was 1.0."""
    with pytest.raises(HestonParameterError, match="v0"):
        HestonParams(True, 2.0, 0.04, 0.5, -0.7)
    with pytest.raises(HestonParameterError, match="strike"):
        OptionLeg("put", True, -1)
    with pytest.raises(HestonParameterError, match="strike"):
        HestonPricer().price("put", 100.0, True, 1.0, 0.0, 0.0, MODEL)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "strike"), [("call", 110.0), ("put", 90.0), ("put", 80.0),
                                              ("call", 103.0), ("put", 95.0)])
def test_one_day_far_out_of_the_money_prices_hold_in_relative_terms(
        kind: str, strike: float) -> None:
    """Before: 6.3e-19 for the 110 call (true 5.1e-21), 5.8e-19 for the 90 put (true
    3.8e-25), 0 for the 80 put (1.8e-102).  Vol of vol 1e-3: Black-Scholes at 20% vol is
    the limit (to ~1e-4 relative at these strikes), in 60-digit arithmetic."""
    got = float(heston_price(kind, 100.0, strike, DAY, 0.0, 0.0,
                             HestonParams(0.04, 2.0, 0.04, 1e-3, 0.0)))
    assert got == pytest.approx(_black_mp(kind, 100.0, strike, DAY, 0.2), rel=1e-3, abs=0.0)


def test_the_reference_covers_its_own_cancellation() -> None:
    """Before: lewis_price gave 1.26e-29 for a one-day 80 put whose price is 1.8e-102
    (30 digits of 'forward minus integral'), and 3.83639e-25 for the 90 put (true
    3.83643e-25).  Checked against Black-Scholes in the vol-of-vol -> 0 limit."""
    p = (0.04, 2.0, 0.04, 1e-3, 0.0)
    for strike in (90.0, 80.0):
        ref = lewis_price("put", 100.0, strike, DAY, 0.0, 0.0, *p)
        assert ref == pytest.approx(_black_mp("put", 100.0, strike, DAY, 0.2), rel=1e-3, abs=0.0)
        got = float(heston_price("put", 100.0, strike, DAY, 0.0, 0.0, HestonParams(*p)))
        assert got == pytest.approx(ref, rel=1e-8, abs=0.0)


def test_the_reference_refuses_what_its_quadrature_cannot_resolve() -> None:
    """Before: v0 = 0 over one day, lewis_price returned -1.07e-4 for the 90 put (a
    negative price) and 1.8e-4 for the 110 call (the pricer's 1e-17 is right)."""
    with pytest.raises(ArithmeticError, match="quadrature"):
        lewis_price("put", 100.0, 90.0, DAY, 0.01, 0.0, 0.0, 2.0, 0.04, 0.5, -0.7)


@pytest.mark.parametrize("t", [0.1, 1.0])
def test_zero_variance_start_converges_to_its_limit(t: float) -> None:
    """v0 = 0 and 1e-300 give the same prices and agree with the reference (held)."""
    p = (0.0, 2.0, 0.04, 0.5, -0.7)
    for kind, strike in (("put", 90.0), ("call", 110.0)):
        got = float(heston_price(kind, 100.0, strike, t, 0.01, 0.0, HestonParams(*p)))
        tiny = float(heston_price(kind, 100.0, strike, t, 0.01, 0.0,
                                  HestonParams(1e-300, *p[1:])))
        ref = lewis_price(kind, 100.0, strike, t, 0.01, 0.0, *p)
        assert got == tiny == pytest.approx(ref, rel=1e-10, abs=0.0)
    near = float(heston_price("call", 100.0, 100.0, DAY, 0.0, 0.0,
                              HestonParams(1e-12, 2.0, 0.04, 0.5, -0.7)))
    zero = float(heston_price("call", 100.0, 100.0, DAY, 0.0, 0.0,
                              HestonParams(0.0, 2.0, 0.04, 0.5, -0.7)))
    assert near == pytest.approx(zero, rel=1e-6) and math.isfinite(zero) and zero > 0
    assert np.isfinite(near)
