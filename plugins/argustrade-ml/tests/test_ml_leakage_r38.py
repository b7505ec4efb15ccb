"""Red team r38: model files edited by hand, feature order, and drift on constant series.

Found (each test below failed before its fix):

* ``meta.trained_on`` was checked for integer fields only: a label end at or before the
  last training row (``label_end_ts_ns`` edited back, or fields swapped) loaded, and the
  forecaster then answered on bars the model was fitted on as if out of sample.  Now a
  ``DataError`` unless ``first_ts_ns <= last_ts_ns < label_end_ts_ns``.
* ``features`` swapped by hand (``["range_1@1", "ret_1@1"]`` for a model trained on
  ``ret_1@1, range_1@1``) loaded and fed each coefficient the other feature's column.  The
  file records the trained order in ``meta.feature_spec``; now they must agree.
* A registry row whose document *and* stored sha256 were both rewritten loaded (the hash
  check compared the row with itself).  The model id is the first 16 hex of the sha256 it
  was registered with; now a stored hash that does not start with the id is refused.
* PSI of a feature constant in training: its deciles collapse to one edge ``c``, and every
  live value ``>= c`` fell into the same bin: constant 0 in training, constant 5 live gave
  PSI 0 (no drift).  An edge just above a point-mass top bin now separates them.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_ml.config import MLSettings
from argus_ml.drift import psi, reference_bins, rolling_psi
from argus_ml.forecaster import MLForecaster
from argus_ml.modelfile import load_model, model_bytes
from argus_ml.registry import ModelRegistry, open_registry
from ml_testdata import OneModelRegistry

from argus_core import Bar, DataError, MarketState

H = 3600 * 10**9
SPOT = "kraken:XBT/USD"
SPEC = [{"name": "ret_1", "version": 1, "lookback": 2, "lag": 0},
        {"name": "range_1", "version": 1, "lookback": 1, "lag": 0}]


def _doc(**meta: Any) -> dict[str, Any]:
    """A two-feature logistic model file as training writes it."""
    return {"format": "argus-ml-model/1", "features": ["ret_1@1", "range_1@1"],
            "steps": [{"kind": "logistic", "coef": [50.0, -3.0], "intercept": 0.1}],
            "calibrator": {"kind": "none"},
            "meta": {"label": {"kind": "up", "horizon_bars": 1}, "feature_spec": SPEC,
                     **meta}}


def _load(doc: dict[str, Any]) -> Any:
    return load_model(json.dumps(doc).encode())


@pytest.mark.parametrize("trained", [
    {"first_ts_ns": 2 * H, "last_ts_ns": 29 * H, "label_end_ts_ns": 3 * H},  # end edited back
    {"first_ts_ns": 2 * H, "last_ts_ns": 29 * H, "label_end_ts_ns": 29 * H},  # end == last row
    {"first_ts_ns": 31 * H, "last_ts_ns": 29 * H, "label_end_ts_ns": 30 * H},  # first > last
])
def test_a_trained_on_out_of_order_is_refused(trained: dict[str, int]) -> None:
    with pytest.raises(DataError, match="first_ts_ns <= last_ts_ns < label_end_ts_ns"):
        _load(_doc(trained_on=trained))


def test_a_trained_on_in_order_still_loads_and_gates_the_replay() -> None:
    """The guard's other side: training's own order loads, and the forecaster still
    withholds every bar before the label end (bar 30 here)."""
    model = _load(_doc(trained_on={"first_ts_ns": 2 * H, "last_ts_ns": 29 * H,
                                   "label_end_ts_ns": 30 * H}))
    f = MLForecaster(MLSettings(model_id="m1"), registry=OneModelRegistry(model))  # type: ignore[arg-type]
    market, got = MarketState(), []
    for i in range(35):
        bar = Bar(SPOT, (i + 1) * H, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0)
        market.apply(bar)
        got.append(f.forecast(SPOT, market, bar.ts_ns) is not None)
    assert got == [False] * 29 + [True] * 6


def test_features_swapped_by_hand_are_refused() -> None:
    doc = _doc()
    doc["features"] = ["range_1@1", "ret_1@1"]
    with pytest.raises(DataError, match="differ from the features it was trained on"):
        _load(doc)


def test_a_feature_spec_that_is_not_a_list_of_names_is_a_data_error() -> None:
    with pytest.raises(DataError, match="feature_spec"):
        _load(_doc(feature_spec=[1, 2]))


def test_a_model_without_a_feature_spec_still_loads() -> None:
    """Older or hand-built files that do not record it: nothing to compare against."""
    doc = _doc()
    del doc["meta"]["feature_spec"]
    assert _load(doc).features == ("ret_1@1", "range_1@1")


def test_a_registry_row_rewritten_with_its_hash_is_refused(tmp_path: Path) -> None:
    """Edit the row's trained_on back to the first bar and store the edit's own sha256:
    the row is self-consistent, but no longer the model registered under that id."""
    import hashlib

    with open_registry(tmp_path / "reg.db") as ledger:
        reg = ModelRegistry(ledger)
        model = _load(_doc(trained_on={"first_ts_ns": 2 * H, "last_ts_ns": 29 * H,
                                       "label_end_ts_ns": 30 * H}))
        mid = reg.register(model, {}, name="m", dataset_hash="d", source_sha256="s",
                           code_version="t")
        assert reg.load(mid).meta["trained_on"]["label_end_ts_ns"] == 30 * H
        forged = copy.deepcopy(model.to_dict())
        forged["meta"]["trained_on"] = {"first_ts_ns": 2 * H, "last_ts_ns": 2 * H,
                                        "label_end_ts_ns": 3 * H}
        data = model_bytes(load_model(json.dumps(forged).encode()))
        ledger.conn.execute("update ml_models set model_json = ?, model_sha256 = ? "
                            "where model_id = ?",
                            (data.decode(), hashlib.sha256(data).hexdigest(), mid))
        with pytest.raises(DataError, match="not the one it was registered with"):
            reg.load(mid)


def test_psi_sees_a_constant_feature_move_up() -> None:
    """Constant 0 in training: constant 5 live is as far off as constant -5 (it was 0)."""
    ref = reference_bins(np.zeros(1000))
    up, down = psi(ref, np.full(500, 5.0)), psi(ref, np.full(500, -5.0))
    assert up > 9.0 and math.isclose(up, down)
    assert psi(ref, np.zeros(500)) == pytest.approx(0.0)
    np.testing.assert_allclose(rolling_psi(ref, np.r_[np.zeros(500), np.full(500, 5.0)], 500)
                               [[0, -1]], [0.0, up])


def test_psi_of_a_point_mass_at_the_training_maximum() -> None:
    """A feature capped at 1 (20% of training rows): live values above the cap are new."""
    rng = np.random.default_rng(3)
    train = np.r_[rng.uniform(0, 1, 800), np.ones(200)]
    ref = reference_bins(train)
    assert psi(ref, np.full(500, 1.0)) > 1.0  # all at the cap: 100% vs 20%, as before
    assert psi(ref, np.full(500, 2.0)) > psi(ref, np.full(500, 1.0))  # above it: further


def test_continuous_features_keep_their_ten_deciles() -> None:
    """The guard's other side: a continuous feature's bins are unchanged (no extra edge)."""
    ref = reference_bins(np.random.default_rng(4).normal(size=5000))
    assert len(ref["edges"]) == 9 and len(ref["props"]) == 10
