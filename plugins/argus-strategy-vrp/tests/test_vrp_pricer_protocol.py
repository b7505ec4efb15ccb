"""VRP asks its pricer only through the core protocol (``Pricer.probability_of_profit``
with core ``OptionLeg`` s and model parameters by name): any pricer registered as
``heston`` through ``register_pricers`` serves it, and one that cannot answer leaves VRP
on its lognormal fallback."""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.strategy import VrpPutSpread

from argus_core import ModelParams, OptionLeg, Pricer, PricingResult, hookimpl
from argus_core.backtest import run_backtest
from argus_core.config import parse_config


class RecordingPricer(Pricer):
    """Answers every probability-of-profit question with 0.8 and records the call."""

    name = "heston"
    calls: ClassVar[list[dict[str, Any]]] = []

    def describe(self) -> dict[str, Any]:
        """A fake."""
        return {"name": self.name, "fake": True}

    def probability_of_profit(self, legs: Sequence[OptionLeg], spot: float, t_years: float,
                              premium: float, *, rate: float = 0.0,
                              dividend_yield: float = 0.0, model: ModelParams | None = None,
                              paths: int | None = None, seed: int | None = None
                              ) -> PricingResult:
        """0.8, after noting the question."""
        RecordingPricer.calls.append({"legs": list(legs), "spot": spot, "t": t_years,
                                      "premium": premium, "rate": rate, "model": model,
                                      "paths": paths, "seed": seed})
        return PricingResult(self.name, "fake", p_profit=0.8, paths=paths or 0)


class DescribeOnly(Pricer):
    """A pricer that answers nothing VRP asks."""

    name = "heston"

    def describe(self) -> dict[str, Any]:
        """A fake."""
        return {"name": self.name}


class RecordingVrp(VrpPutSpread):
    """The real strategy, keeping every intent it returned (to read their reasons)."""

    def __init__(self, settings: VrpSettings) -> None:
        super().__init__(settings)
        self.intents: list[Any] = []

    def on_event(self, event: Any, ctx: Any) -> Any:
        out = super().on_event(event, ctx)
        self.intents.extend(out)
        return out


def _fake_pricer_plugin(monkeypatch: pytest.MonkeyPatch, pricer: type[Pricer]) -> None:
    """Install a plugin that registers ``pricer`` as ``heston`` through the hook."""
    from argus_core import plugins

    module = types.ModuleType("argus_test_fake_pricer")
    module.register_pricers = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("heston", lambda settings: pricer()))
    monkeypatch.setitem(sys.modules, "argus_test_fake_pricer", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("fake_pricer", "argus_test_fake_pricer")))


def _backtest(tmp_path: Path) -> tuple[VrpSettings, list[str]]:
    config = parse_config({
        "argus": {"plugins": ["vrp"]},
        "run": {"venue": "vrp_options", "strategies": ["vrp_put_spread"],
                "starting_cash": "100000"},
        "plugins": {"vrp": {"symbols": ["SPY"], "spread_scale": 0.25, "min_vrp": 0.0,
                            "start": "2017-06-01", "end": "2017-07-31", "selection": "pop",
                            "heston_paths": 1234},
                    "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.10"}}})
    settings = VrpSettings(**config.plugins["vrp"])
    strategy = RecordingVrp(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_backtest(config, tmp_path / "run", strategies={"vrp_put_spread": strategy})
    return settings, [i.reason for i in strategy.intents
                      if "-open-" in (i.basket_id or "") and i.side.value == "sell"]


def test_vrp_asks_a_registered_pricer_through_the_core_protocol(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RecordingPricer.calls = []
    _fake_pricer_plugin(monkeypatch, RecordingPricer)
    settings, reasons = _backtest(tmp_path)
    assert RecordingPricer.calls and reasons
    assert all("PoP 0.800 (heston)" in r for r in reasons)
    for call in RecordingPricer.calls:
        short, long = call["legs"]
        assert (short.kind, short.quantity, long.kind, long.quantity) == ("put", -1.0, "put",
                                                                          1.0)
        assert short.strike - long.strike == pytest.approx(settings.width)
        assert call["premium"] > 0 and 0 < call["t"] < 1 and call["spot"] > short.strike
        model = call["model"]
        assert set(model) == {"v0", "kappa", "theta", "sigma", "rho"}
        assert model["v0"] == model["theta"] > 0
        assert (model["kappa"], model["sigma"], model["rho"]) == (
            settings.heston_kappa, settings.heston_sigma, settings.heston_rho)
        assert (call["rate"], call["paths"], call["seed"]) == (settings.rate, 1234, 0)


def test_a_pricer_that_cannot_answer_leaves_vrp_on_the_lognormal_fallback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pricer_plugin(monkeypatch, DescribeOnly)
    _settings, reasons = _backtest(tmp_path)
    assert reasons and all("(lognormal)" in r for r in reasons)
