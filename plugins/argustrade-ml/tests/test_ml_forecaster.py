"""The ``ml`` forecaster: the status gate by run mode, point-in-time answers for binary
windows, drift demotion on shifted inputs, and its state through a checkpoint."""

from __future__ import annotations

import asyncio
import json
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_ml.config import MLSettings
from argus_ml.forecaster import MLForecaster, gated_forecast
from argus_ml.registry import GateSettings, ModelRegistry, open_registry
from argus_ml.strategy import MLUpDown
from argus_ml.venue import UpDownReplayVenue
from ml_testdata import KRAKEN, TRAIN_END

from argus_core import Bar, Intent, MarketState, Portfolio, StrategyContext

WINDOW = {"bars_csv": KRAKEN, "bars_start": TRAIN_END - 100 * 3600,
          "bars_end": TRAIN_END + 400 * 3600}


def _registry_copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def _drive(settings: MLSettings, mode: str) -> list[Intent]:
    """The venue's events through a market state and ``ml_updown`` in ``mode``, as the
    runner hands them (no broker: nothing fills)."""
    venue = UpDownReplayVenue(settings)
    market = MarketState()
    market.add_instruments(asyncio.run(venue.instruments()))
    market.forecasters = {"ml": MLForecaster(settings)}
    strategy = MLUpDown(settings)
    intents: list[Intent] = []
    for event in venue.events():
        market.apply(event)
        ctx = StrategyContext(market.now_ns, Portfolio(Decimal(100_000)), market, None, mode)
        intents += strategy.on_event(event, ctx)
    return intents


def test_a_paper_model_trades_in_replay_and_paper_never_live_and_a_live_one_does(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    copy = _registry_copy(reg, tmp_path / "r.db")
    s = MLSettings(registry=copy, model_id=good, psi_limit=100.0, **WINDOW)  # type: ignore[arg-type]
    replay = _drive(s, "replay")
    assert replay and replay == _drive(s, "paper")
    assert _drive(s, "live") == []
    with open_registry(copy) as ledger:
        ModelRegistry(ledger).promote(good, "live", GateSettings(), reason="test")
    assert _drive(s, "live") == replay


def test_a_shadow_model_gives_forecasts_with_no_confidence_and_never_trades(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, refused, _good = kraken_registry
    s = MLSettings(registry=_registry_copy(reg, tmp_path / "r.db"), model_id=refused,
                   **WINDOW)  # type: ignore[arg-type]
    for mode in ("replay", "paper", "live"):
        assert _drive(s, mode) == []
    fc = MLForecaster(s)
    assert not fc.allows("replay") and fc.status == "shadow" and fc.confidence == 0.0


def test_binary_windows_get_p_up_and_its_complement_only_at_their_opening(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    s = MLSettings(registry=_registry_copy(reg, tmp_path / "r.db"), model_id=good,
                   **WINDOW)  # type: ignore[arg-type]
    venue = UpDownReplayVenue(s)
    market = MarketState()
    market.add_instruments(asyncio.run(venue.instruments()))
    fc = MLForecaster(s)
    seen = 0
    for event in venue.events():
        market.apply(event)
        if isinstance(event, Bar):
            spot = fc.forecast(event.instrument_id, market, event.ts_ns)
            up_id, down_id = (f"updown:BTC/USD-{k}-{event.ts_ns // 10**9}"
                              for k in ("UP", "DOWN"))
            if spot is None or up_id not in market.instruments:
                continue
            up = fc.forecast(up_id, market, event.ts_ns)
            down = fc.forecast(down_id, market, event.ts_ns)
            assert up is not None and down is not None and spot.p_win is not None
            assert up.p_win == spot.p_win and down.p_win == pytest.approx(1 - spot.p_win)
            assert 0 < up.confidence <= 1
            seen += 1
            # the previous window is mid-way now: no view on it
            prev = f"updown:BTC/USD-UP-{event.ts_ns // 10**9 - 3600}"
            if prev in market.instruments:
                assert fc.forecast(prev, market, event.ts_ns) is None
    assert seen > 300


def test_gated_forecast_passes_any_forecaster_without_a_gate() -> None:
    from argus_core import Forecast, Forecaster

    class Always(Forecaster):
        name = "always"

        def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                     ) -> Forecast | None:
            return Forecast(p_win=0.7)

    ctx = StrategyContext(0, Portfolio(Decimal(1)), MarketState(), None, "live")
    fc, why = gated_forecast(Always(), "x:y", ctx)
    assert fc is not None and fc.p_win == 0.7 and why == ""


def _shifted_bars(start_ts: int, n: int, seed: int) -> list[Bar]:
    """Hourly bars whose moves are 25 times the bundled data's (a new volatility regime)."""
    rng = np.random.default_rng(seed)
    close, out = 40_000.0, []
    for i in range(n):
        o = close
        close = o * float(np.exp(rng.normal(0, 0.2)))
        hi, lo = max(o, close) * 1.05, min(o, close) * 0.95
        out.append(Bar("updown:BTC/USD", start_ts + i * 3_600 * 10**9, o, hi, lo, close, 50.0))
    return out


def test_drift_on_shifted_inputs_demotes_the_model_and_closes_the_gate(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    copy = _registry_copy(reg, tmp_path / "r.db")
    # the Brier alarm would fire first (the forecasts go wild); here the inputs alone do it
    s = MLSettings(registry=copy, model_id=good, drift_min_obs=10_000)
    fc = MLForecaster(s)
    fc.bind_mode("paper")  # a paper run demotes (a replay would only record the alarm)
    market = MarketState()
    assert fc.allows("paper") and fc.confidence > 0
    for bar in _shifted_bars(TRAIN_END * 10**9, 560, seed=3):
        market.apply(bar)
        fc.forecast(bar.instrument_id, market, bar.ts_ns)
    assert fc.monitor is not None and fc.monitor.tripped and "PSI" in fc.monitor.tripped
    assert not fc.allows("replay") and fc.confidence == 0.0 and fc.status == "shadow"
    with open_registry(copy) as ledger:
        registry = ModelRegistry(ledger)
        assert registry.get(good)["status"] == "shadow"
        assert [e["actor"] for e in registry.events(good)][-1] == "drift-monitor"
        assert ledger.query("select action from risk_events where check_name = 'ml_drift'")


def test_the_forecasters_state_survives_a_checkpoint(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    s = MLSettings(registry=_registry_copy(reg, tmp_path / "r.db"), model_id=good,
                   drift_min_obs=10_000)
    bars = UpDownReplayVenue(MLSettings(bars_csv=KRAKEN, bars_start=TRAIN_END - 300 * 3600,
                                        bars_end=TRAIN_END)).bars.bars("updown:BTC/USD")

    def feed(fc: MLForecaster, market: MarketState, part: list[Bar]) -> list[float | None]:
        out = []
        for bar in part:
            market.apply(bar)
            f = fc.forecast(bar.instrument_id, market, bar.ts_ns)
            out.append(f.p_win if f else None)
        return out

    whole, m1 = MLForecaster(s), MarketState()
    expected = feed(whole, m1, bars)
    first, m2 = MLForecaster(s), MarketState()
    got = feed(first, m2, bars[:150])
    resumed = MLForecaster(s)
    resumed.set_state(json.loads(json.dumps(first.get_state())))  # as a checkpoint stores it
    got += feed(resumed, m2, bars[150:])
    assert got == expected
    assert whole.monitor is not None and resumed.monitor is not None
    assert resumed.monitor.brier.value == whole.monitor.brier.value
    assert resumed.monitor.brier.n == whole.monitor.brier.n > 100
    assert list(resumed.monitor.features.rows) == list(whole.monitor.features.rows)


def test_ml_updown_resumed_from_its_checkpoint_decides_as_if_never_stopped(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    s = MLSettings(registry=_registry_copy(reg, tmp_path / "r.db"), model_id=good,
                   psi_limit=100.0, **WINDOW)  # type: ignore[arg-type]
    expected = _drive(s, "replay")
    venue = UpDownReplayVenue(s)
    market = MarketState()
    market.add_instruments(asyncio.run(venue.instruments()))
    market.forecasters = {"ml": MLForecaster(s)}
    strategy = MLUpDown(s)
    events = list(venue.events())
    cut = len(events) // 2
    got: list[Intent] = []
    for i, event in enumerate(events):
        if i == cut:  # a restart: new forecaster and strategy, state from the checkpoint
            state = json.loads(json.dumps(strategy.get_state()))
            market.forecasters = {"ml": MLForecaster(s)}
            strategy = MLUpDown(s)
            strategy.set_state(state)
        market.apply(event)
        ctx = StrategyContext(market.now_ns, Portfolio(Decimal(100_000)), market, None,
                              "replay")
        got += strategy.on_event(event, ctx)
    assert got == expected and len(expected) > 5
