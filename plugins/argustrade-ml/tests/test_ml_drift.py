"""Drift thresholds calibrated on the training data: ordinary out-of-sample bars do not
demote a model, a real shift of its inputs does (with a risk event), a replay records the
alarm without touching the registry, the Brier alarm still works, and a model registered
without thresholds still loads (fixed limit, said in a log line)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from argus_ml.bars import BarColumns, read_ohlcvt_csv
from argus_ml.config import MLSettings
from argus_ml.drift import (
    DriftMonitor,
    FeatureDrift,
    calibrate_psi,
    psi,
    reference_bins,
    rolling_psi,
)
from argus_ml.forecaster import CURRENT_RUN, MLForecaster, RunInfo
from argus_ml.registry import ModelRegistry, open_registry
from ml_testdata import KRAKEN, TRAIN_END, tripled_volatility

from argus_core import Bar, ConfigError, Ledger, MarketState

HOUR = 3600
#: 100 bars of warm-up before the end of training, then 1,000 out-of-sample bars
START, END = TRAIN_END - 100 * HOUR, TRAIN_END + 1000 * HOUR


def test_rolling_psi_is_psi_of_every_window() -> None:
    rng = np.random.default_rng(1)
    ref = reference_bins(rng.normal(size=3000))
    values = np.cumsum(rng.normal(size=900)) / 10  # persistent: windows wander
    got = rolling_psi(ref, values, 200)
    assert got.shape == (701,)
    for i in (0, 1, 350, 700):
        assert got[i] == pytest.approx(psi(ref, values[i:i + 200]), rel=1e-12)
    assert rolling_psi(ref, values[:50], 200).size == 0


def test_calibration_reflects_each_features_own_persistence() -> None:
    rng = np.random.default_rng(2)
    n = 6000
    iid = rng.normal(size=n)
    ar = np.empty(n)  # AR(1) with phi 0.999: regimes that last hundreds of rows
    ar[0] = 0.0
    for t in range(1, n):
        ar[t] = 0.999 * ar[t - 1] + rng.normal() * 0.045
    X = np.column_stack([iid, ar])
    ref = {k: reference_bins(X[:, j]) for j, k in enumerate(("iid", "ar"))}
    cal = calibrate_psi(X, ["iid", "ar"], ref, window=500, quantile=0.99)
    assert cal is not None and cal["window"] == 500 and cal["windows"] == n - 499
    th = {k: v["threshold"] for k, v in cal["features"].items()}
    assert th["iid"] < 0.1 < 1.0 < th["ar"]  # sampling noise only vs regime persistence
    assert cal["features"]["ar"]["max"] >= th["ar"] >= cal["features"]["ar"]["median"]
    assert calibrate_psi(X[:999], ["iid", "ar"], ref, window=500) is None  # < 2 windows


def test_an_alarm_needs_psi_above_the_features_own_threshold_k_times_in_a_row() -> None:
    ref = {"x": reference_bins(np.linspace(0, 1, 1000))}
    low = np.linspace(0, 0.5, 50)  # all in half the range: PSI about 2.8
    assert 2.0 < psi(ref["x"], low) < 4.0
    # the fixed limit (no calibrated threshold) fires on the first full window
    fixed = FeatureDrift(ref, ["x"], limit=0.25, window=50)
    assert [fixed.update([v]) for v in low][-1] is not None
    # a calibrated threshold above that PSI does not; the floor is the limit
    calm = FeatureDrift(ref, ["x"], limit=0.25, window=50, thresholds={"x": 4.0})
    assert all(calm.update([v]) is None for v in low)
    assert FeatureDrift(ref, ["x"], limit=0.25, thresholds={"x": 0.01}).thresholds["x"] == 0.25
    # k = 3: the window is full at row 50; its checks at rows 50 and 51 do not alarm, the
    # third in a row (row 52) does
    k3 = FeatureDrift(ref, ["x"], limit=0.25, window=50, thresholds={"x": 1.0}, consecutive=3)
    out = [k3.update([v]) for v in np.concatenate([low, low[:2]])]
    assert out[:-1] == [None] * 51 and out[-1] is not None
    assert "x" in out[-1] and "3 consecutive" in out[-1] and "calibrated" in out[-1]
    # the streak counts only checks above the threshold: a calm window resets it
    k2 = FeatureDrift(ref, ["x"], limit=0.25, window=50, thresholds={"x": 1.0}, consecutive=2)
    assert all(k2.update([v]) is None for v in np.linspace(0, 1, 50))
    assert k2.streaks["x"] == 0


def _copy(reg: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "registry.db"
    shutil.copy(reg, dst)
    return dst


def _bars(rows: np.ndarray) -> list[Bar]:
    bars = BarColumns(((rows[:, 0].astype(np.int64) + HOUR) * 10**9), *(
        np.ascontiguousarray(rows[:, i]) for i in range(1, 6)))
    return bars.bars("updown:BTC/USD")


@pytest.fixture(scope="module")
def oos_rows() -> np.ndarray:
    """The bundled bars from 100 before the end of training to 1,000 after it."""
    table = np.loadtxt(KRAKEN, delimiter=",", ndmin=2, usecols=range(6))
    return table[(table[:, 0] >= START) & (table[:, 0] < END)]


def _feed(fc: MLForecaster, bars: list[Bar]) -> None:
    market = MarketState()
    for bar in bars:
        market.apply(bar)
        fc.forecast(bar.instrument_id, market, bar.ts_ns)


@pytest.fixture()
def run_ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A run's ledger, as the plugin's ``on_startup`` hands it to the forecaster (mode
    replay), reset afterwards."""
    with open_registry(tmp_path / "run.db") as ledger:
        token = CURRENT_RUN.set(RunInfo("replay", ledger))
        try:
            yield ledger
        finally:
            CURRENT_RUN.reset(token)


def test_the_kraken_model_has_calibrated_thresholds_and_ordinary_bars_do_not_demote_it(
        kraken_registry: tuple[Path, str, str], tmp_path: Path, oos_rows: np.ndarray) -> None:
    reg, _refused, good = kraken_registry
    copy = _copy(reg, tmp_path)
    with open_registry(copy) as ledger:
        cal = ModelRegistry(ledger).drift_calibration(good)
    assert cal is not None and cal["window"] == 500 and cal["quantile"] == 0.99
    assert cal["features"]["vol_24@1"]["threshold"] > 2.0  # volatility persists in 2021
    fc = MLForecaster(MLSettings(registry=copy, model_id=good))
    fc.bind_mode("paper")  # a paper run: an alarm would demote
    _feed(fc, _bars(oos_rows))
    assert fc.monitor is not None and fc.monitor.features.rows.maxlen == 500
    # the old fixed limit 0.25 would have fired (vol_24 passes 1 out of sample) ...
    assert fc.monitor.features.peak["vol_24@1"] > 1.0
    # ... but that is inside what the training data did itself: no alarm, still paper
    assert fc.monitor.tripped is None and fc.allows("paper") and fc.stats["outcomes"] > 900
    with open_registry(copy) as ledger:
        assert ModelRegistry(ledger).get(good)["status"] == "paper"
        assert not ledger.query("select * from risk_events")


def test_tripled_volatility_demotes_the_model_in_a_paper_run_with_a_risk_event(
        kraken_registry: tuple[Path, str, str], tmp_path: Path, oos_rows: np.ndarray) -> None:
    reg, _refused, good = kraken_registry
    copy = _copy(reg, tmp_path)
    # inputs only: the Brier alarm is held off (the shifted bars' outcomes are new too)
    fc = MLForecaster(MLSettings(registry=copy, model_id=good, drift_min_obs=10_000))
    fc.bind_mode("paper")
    _feed(fc, _bars(tripled_volatility(oos_rows, 100)))
    assert fc.monitor is not None and fc.monitor.tripped and fc.monitor.demoted
    assert "vol_24@1" in fc.monitor.tripped or "range_1@1" in fc.monitor.tripped
    assert not fc.allows("paper") and fc.confidence == 0.0
    with open_registry(copy) as ledger:
        registry = ModelRegistry(ledger)
        assert registry.get(good)["status"] == "shadow"
        last = registry.events(good)[-1]
        assert last["actor"] == "drift-monitor" and "PSI" in last["reason"]
        risk = ledger.query("select * from risk_events where check_name = 'ml_drift'")
        assert len(risk) == 1 and risk[0]["action"] == "demote"


def test_a_replay_records_the_alarm_in_its_own_ledger_and_leaves_the_registry_alone(
        kraken_registry: tuple[Path, str, str], tmp_path: Path, oos_rows: np.ndarray,
        run_ledger: Ledger) -> None:
    reg, _refused, good = kraken_registry
    copy = _copy(reg, tmp_path)
    fc = MLForecaster(MLSettings(registry=copy, model_id=good, drift_min_obs=10_000))
    assert fc.run_mode == "replay" and not fc.demotes_on_drift  # from the run (on_startup)
    _feed(fc, _bars(tripled_volatility(oos_rows, 100)))
    assert fc.monitor is not None and fc.monitor.tripped and not fc.monitor.demoted
    assert not fc.allows("replay")  # the run's gate closes all the same
    alerts = run_ledger.query("select * from risk_events where check_name = 'ml_drift'")
    assert len(alerts) == 1 and alerts[0]["action"] == "alert"
    assert "PSI" in alerts[0]["reason"] and "registry unchanged" in alerts[0]["reason"]
    with open_registry(copy) as ledger:
        assert ModelRegistry(ledger).get(good)["status"] == "paper"
        assert not ledger.query("select * from risk_events")
    # with demote_in_replay the same replay demotes
    copy2 = tmp_path / "registry2.db"
    shutil.copy(reg, copy2)
    fc2 = MLForecaster(MLSettings(registry=copy2, model_id=good, drift_min_obs=10_000,
                                  demote_in_replay=True))
    _feed(fc2, _bars(tripled_volatility(oos_rows, 100)))
    assert fc2.monitor is not None and fc2.monitor.demoted
    with open_registry(copy2) as ledger:
        assert ModelRegistry(ledger).get(good)["status"] == "shadow"
    assert [a["action"] for a in run_ledger.query(
        "select action from risk_events where check_name = 'ml_drift' order by id")] == \
        ["alert", "demote"]


def test_outside_a_run_the_mode_is_unknown_and_nothing_is_demoted(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    fc = MLForecaster(MLSettings(registry=_copy(reg, tmp_path), model_id=good))
    fc.load()
    assert fc.run_mode is None and not fc.demotes_on_drift
    assert fc.monitor is not None and not fc.monitor.demote
    fc.bind_mode("live")
    assert fc.monitor.demote


@pytest.mark.parametrize("mode", ["paper", "replay"])
def test_the_brier_alarm_still_demotes_in_paper_and_only_records_in_replay(
        kraken_registry: tuple[Path, str, str], tmp_path: Path, mode: str) -> None:
    reg, _refused, good = kraken_registry
    copy = _copy(reg, tmp_path)
    fc = MLForecaster(MLSettings(registry=copy, model_id=good, drift_min_obs=50))
    fc.bind_mode(mode)
    fc.load()
    monitor = fc.monitor
    assert isinstance(monitor, DriftMonitor)
    assert all(monitor.observe_outcome(0.5, 1.0, 1) is None for _ in range(60))  # coin flips
    reasons = [monitor.observe_outcome(0.9, 0.0, 2) for _ in range(40)]  # confidently wrong
    assert any(r and "Brier EMA" in r for r in reasons)
    assert monitor.tripped and not fc.allows(mode)
    with open_registry(copy) as ledger:
        status = ModelRegistry(ledger).get(good)["status"]
        risk = ledger.query("select * from risk_events where check_name = 'ml_drift'")
    assert (status, len(risk)) == (("shadow", 1) if mode == "paper" else ("paper", 0))


def _strip_thresholds(path: Path) -> None:
    """Make ``path`` a registry as it was before thresholds: no drift_json column and no
    record of its migration (the next open adds the column back, NULL)."""
    with open_registry(path) as ledger:
        ledger.conn.execute("alter table ml_models drop column drift_json")
        ledger.conn.execute("delete from _argus_migrations where migration_set = 'ml' and "
                            "name = 'm002_drift_thresholds'")


def test_a_model_registered_before_thresholds_loads_with_the_fixed_limit(
        kraken_registry: tuple[Path, str, str], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    reg, _refused, good = kraken_registry
    copy = _copy(reg, tmp_path)
    _strip_thresholds(copy)
    with open_registry(copy) as ledger:  # migrated again: the column is back, empty
        registry = ModelRegistry(ledger)
        assert registry.get(good)["drift_json"] is None
        assert registry.drift_calibration(good) is None
    fc = MLForecaster(MLSettings(registry=copy, model_id=good, psi_limit=0.3))
    with caplog.at_level(logging.WARNING, logger="argus_ml.forecaster"):
        fc.load()
    assert "no calibrated PSI thresholds" in caplog.text and "0.3" in caplog.text
    assert fc.monitor is not None and not fc.monitor.features.calibrated
    assert set(fc.monitor.features.thresholds.values()) == {0.3}
    assert fc.monitor.features.rows.maxlen == 500 and fc.allows("paper")


def test_a_psi_window_other_than_the_calibrated_one_is_refused(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    fc = MLForecaster(MLSettings(registry=_copy(reg, tmp_path), model_id=good, psi_window=300))
    with pytest.raises(ConfigError, match=r"psi_window = 300.*500-row.*--drift-window 300"):
        fc.load()


def test_training_on_too_few_rows_registers_no_thresholds(tmp_path: Path) -> None:
    from argus_ml import training
    from argus_ml.dataset import build_dataset
    from argus_ml.features import FeatureRegistry
    from argus_ml.labels import LabelSpec

    bars = read_ohlcvt_csv(KRAKEN, start_s=TRAIN_END, end_s=TRAIN_END + 900 * HOUR)
    ds = build_dataset(bars, FeatureRegistry.default().select(["ret_1", "vol_24"]),
                       LabelSpec("up", 1), leakage_samples=2)
    result = training.train(ds, training.TrainSpec("logreg", "none", n_folds=2,
                                                   grid=({"C": 1.0},)))
    assert result.drift is None  # 876 rows < 2 x 500
    small = training.train(ds, training.TrainSpec("logreg", "none", n_folds=2,
                                                  grid=({"C": 1.0},), drift_window=200))
    assert small.drift is not None and small.drift["window"] == 200
    assert set(small.drift["features"]) == {"ret_1@1", "vol_24@1"}
