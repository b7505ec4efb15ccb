"""The model registry: lineage, safe load, gated promotion, demotion, drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_ml import training
from argus_ml.dataset import build_dataset
from argus_ml.drift import BrierEMA, DriftMonitor, psi, reference_bins
from argus_ml.features import FeatureRegistry
from argus_ml.labels import LabelSpec
from argus_ml.registry import GateSettings, ModelRegistry, PromotionRefused, open_registry
from argus_ml.synthetic import synthetic_bars

from argus_core import DataError


def _trained(strength: float, seed: int = 5) -> tuple[Any, Any]:
    bars, _ = synthetic_bars(3000, seed=seed, strength=strength)
    ds = build_dataset(bars, FeatureRegistry.default().select(["ret_1", "vol_24"]),
                       LabelSpec("up", 1), leakage_samples=4)
    return ds, training.train(ds, training.TrainSpec("logreg", "platt", n_folds=3))


@pytest.fixture(scope="module")
def skilled() -> tuple[Any, Any]:
    return _trained(1.5)


def _register(reg: ModelRegistry, ds: Any, result: Any) -> str:
    return reg.register(result.model, result.report, name="updown", dataset_hash=ds.content_hash(),
                        source_sha256=ds.source_sha256, code_version=training.code_version())


def test_register_load_and_lineage(tmp_path: Path, skilled: tuple[Any, Any]) -> None:
    ds, result = skilled
    with open_registry(tmp_path / "reg.db") as ledger:
        reg = ModelRegistry(ledger)
        mid = _register(reg, ds, result)
        row = reg.get(mid)
        assert row["status"] == "shadow" and row["dataset_hash"] == ds.content_hash()
        assert row["features_json"] == '["ret_1@1", "vol_24@1"]'
        assert row["code_version"].startswith("0.1.0")
        assert reg.report(mid)["oof_calibrated"]["n"] > 500
        np.testing.assert_array_equal(reg.load(mid).predict(ds.X), result.model.predict(ds.X))
        with pytest.raises(DataError, match="already registered"):
            _register(reg, ds, result)
        ledger.conn.execute("update ml_models set model_json = replace(model_json, '\"a\"', "
                            "'\"a\"') || ' ' where model_id = ?", (mid,))
        with pytest.raises(DataError, match="sha256"):
            reg.load(mid)


def test_promotion_needs_the_gates_and_is_recorded(tmp_path: Path,
                                                   skilled: tuple[Any, Any]) -> None:
    ds, result = skilled
    noise_ds, noise = _trained(0.0, seed=6)
    with open_registry(tmp_path / "reg.db") as ledger:
        reg = ModelRegistry(ledger)
        good, bad = _register(reg, ds, result), _register(reg, noise_ds, noise)
        with pytest.raises(DataError, match="one step"):
            reg.promote(good, "live", GateSettings())
        verdict = reg.promote(good, "paper", GateSettings(), reason="gates")
        assert verdict.passed and verdict.figures["pnl_per_contract_total"] > 0
        with pytest.raises(PromotionRefused, match=r"pnl|calibration"):
            reg.promote(bad, "paper", GateSettings())
        assert reg.get(bad)["status"] == "shadow"
        assert reg.usable("paper") == [good] and reg.usable("live") == []
        events = [(e["model_id"], e["event"], e["to_status"]) for e in reg.events()]
        assert (good, "promoted", "paper") in events and (bad, "refused", "paper") in events
        with pytest.raises(DataError, match="reason"):
            reg.demote(good, "shadow", "")
        reg.demote(good, "shadow", "manual review")
        assert reg.events(good)[-1]["reason"] == "manual review"
        assert reg.get(good)["status"] == "shadow"


def test_psi() -> None:
    rng = np.random.default_rng(0)
    ref = reference_bins(rng.normal(size=20000))
    assert psi(ref, rng.normal(size=5000)) < 0.02
    assert psi(ref, rng.normal(1.0, 1.0, size=5000)) > 0.25


def test_brier_ema_alarm() -> None:
    ema = BrierEMA(0.2, alpha=0.05, margin=0.02, min_obs=50)
    assert all(ema.update(0.8, 1.0) is None for _ in range(100))  # good forecasts
    reasons = [ema.update(0.8, 0.0) for _ in range(100)]  # now always wrong
    assert any(r and "Brier EMA" in r for r in reasons)


def test_drift_demotes_to_shadow_with_a_reason(tmp_path: Path,
                                               skilled: tuple[Any, Any]) -> None:
    ds, result = skilled
    with open_registry(tmp_path / "reg.db") as ledger:
        reg = ModelRegistry(ledger)
        mid = _register(reg, ds, result)
        reg.promote(mid, "paper", GateSettings())
        model = reg.load(mid)
        mon = DriftMonitor(mid, reg, baseline_brier=model.meta["oof_brier"],
                           reference=model.meta["reference"], keys=model.features, window=200)
        rng = np.random.default_rng(0)
        for row in ds.X[rng.choice(len(ds), 200, replace=False)]:  # like training: no alarm
            assert mon.observe_features(row, 1) is None
        assert reg.get(mid)["status"] == "paper"
        shifted = ds.X[-400:].copy()
        shifted[:, 1] *= 3.0  # volatility regime triples
        reasons = [mon.observe_features(r, 2) for r in shifted]
        assert any(reasons) and reg.get(mid)["status"] == "shadow"
        last = reg.events(mid)[-1]
        assert last["event"] == "demoted" and "vol_24@1" in last["reason"]
        assert last["actor"] == "drift-monitor"
        risk = ledger.query("select * from risk_events where check_name = 'ml_drift'")
        assert len(risk) == 1 and mid in risk[0]["reason"]
