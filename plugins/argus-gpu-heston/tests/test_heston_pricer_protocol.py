"""The ``heston`` pricer conforms to the core pricer protocol: core ``OptionLeg`` s, model
parameters by name, ``PricingResult`` answers equal to the plugin's own API."""

from __future__ import annotations

import math

import pytest
from argus_gpu_heston import HestonParams, HestonPricer
from argus_gpu_heston import OptionLeg as HestonLeg
from argus_gpu_heston.errors import HestonParameterError
from argus_gpu_heston.pricer import MODEL_PARAMS, HestonSettings

from argus_core import ModelParams, OptionLeg, Pricer, PricingResult

MODEL: ModelParams = {"v0": 0.04, "kappa": 2.0, "theta": 0.04, "sigma": 0.5, "rho": -0.7}
PARAMS = HestonParams(**MODEL)


@pytest.fixture(scope="module")
def pricer() -> HestonPricer:
    return HestonPricer(HestonSettings(backend="cpu", steps=8))


def test_it_is_a_core_pricer_supporting_both_questions(pricer: HestonPricer) -> None:
    assert isinstance(pricer, Pricer)
    assert pricer.supports("price_option") and pricer.supports("probability_of_profit")
    assert set(MODEL_PARAMS) == set(MODEL)


def test_price_option_is_the_analytic_price_times_quantity(pricer: HestonPricer) -> None:
    got = pricer.price_option(OptionLeg("put", 95.0, -2.0), 100.0, 0.25, rate=0.02,
                              model=MODEL)
    own = pricer.price("put", 100.0, 95.0, 0.25, 0.02, 0.0, PARAMS)
    assert isinstance(got, PricingResult)
    assert got.price == pytest.approx(-2.0 * own.price, rel=1e-12)
    assert (got.pricer, got.stderr, got.p_profit) == ("heston", 0.0, None)
    mc = pricer.price_option(OptionLeg("put", 95.0), 100.0, 0.25, rate=0.02, model=MODEL,
                             paths=4000, seed=3)
    assert mc.paths == 4000 and mc.stderr > 0 and mc.backend == "cpu"
    assert mc.price == pytest.approx(own.price, abs=5 * mc.stderr + 1e-3)


def test_probability_of_profit_is_the_plugins_pop(pricer: HestonPricer) -> None:
    legs = [OptionLeg("put", 95.0, -1.0), OptionLeg("put", 90.0, 1.0)]
    got = pricer.probability_of_profit(legs, 100.0, 0.1, 1.0, rate=0.02, model=MODEL,
                                       paths=4000, seed=1)
    own = pricer.pop([HestonLeg("put", 95.0, -1.0), HestonLeg("put", 90.0, 1.0)], 100.0, 0.1,
                     0.02, 0.0, PARAMS, 1.0, paths=4000, seed=1)
    assert got.p_profit == own.p_profit and got.expected_pnl == own.expected_pnl
    assert got.paths == own.paths and got.backend == own.backend
    p = own.p_profit
    assert got.stderr == pytest.approx(math.sqrt(p * (1 - p) / own.paths))
    assert got.details["p_touch_short"] == own.p_touch_short


def test_model_parameters_are_checked_by_name(pricer: HestonPricer) -> None:
    leg = OptionLeg("call", 100.0)
    with pytest.raises(HestonParameterError, match="needs model parameters v0, kappa"):
        pricer.price_option(leg, 100.0, 1.0)
    with pytest.raises(HestonParameterError, match="missing rho; unknown correlation"):
        pricer.price_option(leg, 100.0, 1.0, model={
            **{k: v for k, v in MODEL.items() if k != "rho"}, "correlation": -0.7})
    with pytest.raises(HestonParameterError, match="rho"):
        pricer.price_option(leg, 100.0, 1.0, model={**MODEL, "rho": 1.5})
