"""Training: recovers known probabilities, uses the lab's splitter with purging, and
saves models in the safe format that reproduces scikit-learn's probabilities."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_ml import training
from argus_ml.dataset import build_dataset
from argus_ml.features import FeatureRegistry
from argus_ml.labels import LabelSpec
from argus_ml.modelfile import ProbabilityModel, export_steps, load_model, save_model
from argus_ml.scoring import brier
from argus_ml.synthetic import synthetic_bars

from argus_core import DataError

#: The stated margin: the calibrated out-of-fold Brier is within this of the Brier of
#: the true probabilities on the same outcomes (the irreducible part).
MARGIN = 0.005


def _synthetic(n: int = 6000) -> tuple[Any, np.ndarray]:
    bars, p_up = synthetic_bars(n, seed=7)
    fs = FeatureRegistry.default().select(["ret_1", "vol_24", "hour_sin"])
    ds = build_dataset(bars, fs, LabelSpec("up", 1), leakage_samples=8)
    p = p_up[np.searchsorted(bars.ts_ns, ds.ts_ns)]
    return ds, p


@pytest.mark.parametrize("calibration", ["isotonic", "platt"])
def test_calibrated_logreg_recovers_known_probabilities(calibration: str) -> None:
    ds, p_true = _synthetic()
    result = training.train(ds, training.TrainSpec("logreg", calibration, n_folds=4))
    has = ~np.isnan(result.oof_calibrated)
    rows = result.oof_index[has]
    y = ds.y[rows]
    irreducible = brier(p_true[rows], y)
    model_brier = brier(result.oof_calibrated[has], y)
    assert model_brier - irreducible < MARGIN, (model_brier, irreducible)
    assert result.report["oof_calibrated"]["brier"] == pytest.approx(model_brier)
    assert result.report["brier_skill_vs_climatology"] > 0.1
    # the final model's probabilities track the truth too
    assert np.mean(np.abs(result.model.predict(ds.X) - p_true)) < 0.05


def test_gbm_trains_and_beats_climatology() -> None:
    ds, _ = _synthetic(2500)
    spec = training.TrainSpec("gbm", "isotonic", n_folds=3,
                              grid=({"max_depth": 2, "n_estimators": 40, "learning_rate": 0.1},
                                    {"max_depth": 1, "n_estimators": 40, "learning_rate": 0.1}))
    result = training.train(ds, spec)
    rep = result.report
    assert rep["oof_calibrated"]["brier"] < rep["climatology"]["brier"]
    assert rep["params"] in [dict(g) for g in spec.grid or ()]


def test_folds_come_from_the_lab_splitter_purged(monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_lab import walkforward

    calls: list[dict[str, Any]] = []
    real = walkforward.walk_forward_splits

    def spy(n: int, **kw: Any) -> Any:
        calls.append(kw)
        return real(n, **kw)

    monkeypatch.setattr(walkforward, "walk_forward_splits", spy)
    bars, _ = synthetic_bars(1500, seed=3)
    ds = build_dataset(bars, FeatureRegistry.default().select(["ret_1"]), LabelSpec("up", 3),
                       leakage_samples=4)
    assert ds.purge_rows == 3
    result = training.train(ds, training.TrainSpec("logreg", "platt", n_folds=3,
                                                   embargo_rows=2))
    assert calls and all(c["label_horizon"] == 3 and c["embargo"] == 2 for c in calls)
    # every outer fold's training rows end at least `purge` rows before its test block
    for fold in result.report["folds"]:
        assert fold["train_rows"] > 0
    splits = training._splits(len(ds), 3, 3, 2, "anchored")
    for s in splits:
        assert s.train.max() + 3 < s.test.min()


def test_training_refuses_a_return_label() -> None:
    bars, _ = synthetic_bars(500)
    ds = build_dataset(bars, FeatureRegistry.default().select(["ret_1"]),
                       LabelSpec("return", 1), leakage_samples=4)
    with pytest.raises(DataError, match="binary"):
        training.train(ds, training.TrainSpec())


@pytest.mark.parametrize("kind,params", [("logreg", {"C": 0.5}),
                                         ("gbm", {"max_depth": 3, "n_estimators": 30})])
def test_model_file_reproduces_sklearn(kind: str, params: dict[str, Any],
                                       tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 4))
    y = (rng.random(800) < 1 / (1 + np.exp(-X[:, 0] + X[:, 1] * X[:, 2]))).astype(float)
    pipe = training.make_pipeline(kind, params).fit(X, y)
    from argus_ml.calibration import Calibrator

    model = ProbabilityModel(export_steps(pipe), Calibrator("none"), ("a", "b", "c", "d"), {})
    sha = save_model(model, tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json", expected_sha256=sha)
    X_new = rng.normal(size=(500, 4))
    np.testing.assert_allclose(loaded.raw(X_new), pipe.predict_proba(X_new)[:, 1], rtol=1e-12,
                               atol=1e-12)


def test_model_loading_refuses_anything_but_valid_json(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_bytes(pickle.dumps({"format": "argus-ml-model/1"}))
    with pytest.raises(DataError, match="not JSON"):
        load_model(tmp_path / "p.json")
    with pytest.raises(DataError, match="sha256"):
        load_model(b"{}", expected_sha256="0" * 64)
    good = {"format": "argus-ml-model/1", "features": ["a"],
            "steps": [{"kind": "logistic", "coef": [1.0], "intercept": 0.0}]}
    assert load_model(__import__("json").dumps(good).encode()).predict(np.zeros((1, 1)))[0] \
        == pytest.approx(0.5)
    for bad_step in ({"kind": "exec", "code": "print(1)"},
                     {"kind": "logistic", "coef": [1.0, 2.0], "intercept": 0.0},
                     {"kind": "logistic", "coef": ["nan"], "intercept": 0.0},
                     {"kind": "gbm", "init": 0.0, "learning_rate": 0.1,
                      "trees": [{"left": [5], "right": [6], "feature": [0], "threshold": [0.0],
                                 "value": [0.0]}]}):
        doc = dict(good, steps=[bad_step])
        with pytest.raises(DataError):
            load_model(__import__("json").dumps(doc).encode())


def test_the_api_and_the_cli_embargo_by_default_alike() -> None:
    """A library user got no embargo by default (0) while ``argus ml train`` used 24."""
    from click.testing import CliRunner

    from argus_core.cli import cli

    assert training.TrainSpec().embargo_rows == training.DEFAULT_EMBARGO_ROWS == 24
    help_text = CliRunner().invoke(cli, ["ml", "train", "--help"]).output
    assert "--embargo" in help_text and "[default: 24" in help_text.replace("\n", " ")
