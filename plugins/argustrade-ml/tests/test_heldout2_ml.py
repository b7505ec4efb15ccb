"""Second held-out audit (issue 15) of the ML probability layer: model files that load but
cannot give probabilities (a NaN or infinite Platt slope, an isotonic map outside [0, 1],
features this version does not define, another format version) are refused when loaded,
not on every bar; a prediction that is not a probability is refused (no forecast, counted,
said once), never a crash or an imputed value; warm-up gives no forecast; a forecast of
exactly 1 (or 0, or NaN) never stakes everything."""

from __future__ import annotations

import json
import logging
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from argus_ml.calibration import CLIP, Calibrator
from argus_ml.config import MLSettings
from argus_ml.forecaster import MLForecaster
from argus_ml.market import kelly_fraction
from argus_ml.modelfile import ProbabilityModel, load_model
from argus_ml.near_expiry import MLNearExpiry
from ml_testdata import OneModelRegistry

from argus_core import (
    Bar,
    ConfigError,
    DataError,
    Forecast,
    Forecaster,
    Instrument,
    MarketState,
    OrderBook,
    Portfolio,
    StrategyContext,
)

SPOT = "kraken:XBT/USD"
H = 3600 * 10**9


def _doc(features: tuple[str, ...] = ("ret_1@1",), calibrator: dict[str, Any] | None = None,
         **extra: Any) -> dict[str, Any]:
    return {"format": "argus-ml-model/1", "features": list(features),
            "steps": [{"kind": "logistic", "coef": [1.0] * len(features), "intercept": 0.0}],
            "calibrator": calibrator or {"kind": "none"},
            "meta": {"label": {"horizon_bars": 1}}, **extra}


def _forecaster(model: ProbabilityModel) -> MLForecaster:
    return MLForecaster(MLSettings(model_id="m1"), registry=OneModelRegistry(model))  # type: ignore[arg-type]  # the surface it reads


def _bars(n: int) -> list[Bar]:
    return [Bar(SPOT, (i + 1) * H, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0)
            for i in range(n)]


def _feed(f: MLForecaster, n: int) -> list[Forecast | None]:
    market = MarketState()
    out = []
    for bar in _bars(n):
        market.apply(bar)
        out.append(f.forecast(SPOT, market, bar.ts_ns))
    return out


@pytest.mark.parametrize(("calibrator", "says"), [
    ({"kind": "platt", "a": math.nan, "b": 0.0}, "platt slope and intercept must be finite"),
    ({"kind": "platt", "a": 1.0, "b": math.inf}, "platt slope and intercept must be finite"),
    ({"kind": "isotonic", "x": [0.0, 1.0], "y": [-3.0, 5.0]}, "must be probabilities"),
    ({"kind": "platt", "a": "steep"}, "is not a number"),
    ({"kind": "beta"}, "is not one of"),
])
def test_a_calibrator_that_cannot_give_probabilities_is_refused_at_load(
        calibrator: dict[str, Any], says: str) -> None:
    """Before: a NaN slope loaded, then every forecast raised 'Forecast.p_win must be in
    [0, 1]' at inference; an isotonic map to -3..5 loaded and was clipped into 0.001 /
    0.999, forecasts of certainty from a broken fit."""
    with pytest.raises(DataError, match=says):
        load_model(json.dumps(_doc(calibrator=calibrator)).encode())


def test_a_model_file_of_another_format_version_says_so() -> None:
    doc = _doc()
    doc["format"] = "argus-ml-model/0"
    with pytest.raises(DataError, match=r"format 'argus-ml-model/0' is not argus-ml-model/1.*"
                                        r"retrain"):
        load_model(json.dumps(doc).encode())


def test_features_this_version_does_not_define_are_refused_at_load() -> None:
    """A model naming ``ret_1@9`` (a later or withdrawn definition).  Before: the model
    loaded and every bar raised DataError from inside the strategy.  Now ``load`` refuses
    it with a ConfigError naming the model and the feature, before any bar."""
    f = _forecaster(load_model(json.dumps(_doc(("ret_1@1", "ret_1@9"))).encode()))
    with pytest.raises(ConfigError, match=r"model m1 needs features .* ret_1@9"):
        f.load()


def test_a_prediction_that_is_not_a_probability_is_refused_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    """A model built past the file's validation (a NaN coefficient): each bar gives no
    forecast, counted in ``stats['refused']``, one error line; before, every bar raised
    DataError out of ``Forecast``."""
    model = ProbabilityModel([{"kind": "logistic", "coef": np.array([math.nan]),
                               "intercept": 0.0}], Calibrator("none"), ("ret_1@1",),
                             {"label": {"horizon_bars": 1}})
    f = _forecaster(model)
    with caplog.at_level(logging.ERROR, logger="argus_ml.forecaster"):
        out = _feed(f, 5)
    assert out == [None] * 5
    assert f.stats["refused"] == 4 and f.stats["forecasts"] == 0  # bar 1 is warm-up
    assert len([r for r in caplog.records if "refused, not imputed" in r.getMessage()]) == 1


def test_no_forecast_during_warm_up() -> None:
    """``ret_24`` reads 25 bars: nothing at bars 1-24, a forecast from bar 25 on."""
    f = _forecaster(load_model(json.dumps(_doc(("ret_1@1", "ret_24@1"))).encode()))
    out = _feed(f, 27)
    assert out[:24] == [None] * 24
    assert all(fc is not None and 0.0 < (fc.p_win or 0) < 1.0 for fc in out[24:])


@pytest.mark.parametrize(("p", "cost", "want"), [
    (1.0, 0.5, (1 - CLIP - 0.5) / 0.5), (0.0, 0.5, 0.0), (math.nan, 0.5, 0.0),
    (0.7, 0.5, 0.4), (1.0, 1.0, 0.0)])
def test_kelly_never_stakes_everything(p: float, cost: float, want: float) -> None:
    """Before: ``kelly_fraction(1.0, 0.5)`` was 1.0 (everything) and NaN raised."""
    assert kelly_fraction(p, cost) == pytest.approx(want)
    assert kelly_fraction(p, cost) < 1.0


class _Certain(Forecaster):
    name = "ml"

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int) -> Forecast:
        return Forecast(p_win=1.0, confidence=1.0)


def test_a_forecast_of_exactly_one_with_every_cap_at_one_does_not_bet_everything() -> None:
    """``kelly_fraction = max_fraction = 1`` (the most a config allows) and p_win = 1 at an
    ask of 0.90: before, 10,000 of equity bought 11,111 contracts (all of it); now the
    stake is Kelly at p = 0.999: (0.999 - 0.9) / 0.1 = 0.99 of equity, 11,000 contracts."""
    settles = 10_000 * 10**9
    market = MarketState()
    market.add_instruments([Instrument("pm", "YES", "binary", Decimal("0.01"), Decimal(1),
                                       Decimal(1), meta={"settles_ns": settles})])
    market.forecasters = {"ml": _Certain()}
    ts = settles - 60 * 10**9
    book = OrderBook("pm:YES", ts, np.array([[0.89, 1e6]]), np.array([[0.90, 1e6]]))
    market.apply(book)
    ctx = StrategyContext(ts, Portfolio(Decimal(10_000)), market, None, "replay")
    (intent,) = MLNearExpiry(MLSettings(kelly_fraction=1.0, max_fraction=1.0)).on_event(
        book, ctx)
    assert intent.quantity == Decimal(11_000)
    assert intent.quantity * Decimal("0.90") < ctx.portfolio.equity
