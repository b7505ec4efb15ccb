"""Held-out red team (look-ahead and model files) of the probability layer.

Found:

* A backtest traded on the model's own training data.  Nothing recorded the period a
  model was trained on, so the ``ml`` forecaster answered at every bar, including bars
  whose labels the model had been fitted on.  The README's "out-of-sample" run (train to
  ``TRAIN_END``, replay from 100 bars before it) placed 16 of its 23 bets inside the
  training window.  Now training records ``meta["trained_on"]`` (first and last decision
  time, the last label's known time), and the forecaster gives no forecast at a bar
  before the training labels ended (counted, said once), unless ``[plugins.ml]
  allow_in_sample = true``, which the backtest report then states with the bets it
  concerns.  A model from before the record uses its CV report's last fold.
* Model files of the right format but the wrong shapes (``meta`` a list, ``steps`` a
  number, ``calibrator`` a list, ``features`` a string or a number, a label horizon of 0)
  raised TypeError / AttributeError, or loaded ``features`` "ret_1@1" as seven features
  named by its letters; a tree whose child points back to itself loaded and returned an
  inner node's value.  Each is now a DataError naming the field.
* A logistic model with large coefficients overflowed ``exp`` (a RuntimeWarning on every
  bar; an error under ``-W error``): the link is now evaluated without overflow.
* Training on bars whose label has one outcome only (a window where the price only rose)
  ended in scikit-learn's ValueError, a traceback with exit 1; now a DataError naming the
  file and the label (exit 4).

Checked and sound (scratch runs, not repeated here): on a random walk with ``up@1`` and
``up@24`` (overlapping labels) the purged walk-forward gives no out-of-fold skill
(AUC 0.47-0.51, Brier skill <= 0) for logreg and gbm.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_ml.config import MLSettings
from argus_ml.forecaster import MLForecaster
from argus_ml.modelfile import load_model
from argus_ml.report import binary_bets
from click.testing import CliRunner
from ml_testdata import KRAKEN, TRAIN_END, OneModelRegistry

from argus_core import Bar, DataError, Ledger, MarketState
from argus_core.cli import cli

SPOT = "kraken:XBT/USD"
H = 3600 * 10**9


def _doc(meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"format": "argus-ml-model/1", "features": ["ret_1@1"],
            "steps": [{"kind": "logistic", "coef": [1.0], "intercept": 0.0}],
            "calibrator": {"kind": "none"},
            "meta": meta if meta is not None else {"label": {"kind": "up",
                                                              "horizon_bars": 1}}}


def _feed(f: MLForecaster, n: int) -> list[bool]:
    """Whether each of ``n`` hourly bars (closes at 1h, 2h, ...) got a forecast."""
    market, out = MarketState(), []
    for i in range(n):
        bar = Bar(SPOT, (i + 1) * H, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0)
        market.apply(bar)
        out.append(f.forecast(SPOT, market, bar.ts_ns) is not None)
    return out


def _trained_to(label_end_bar: int, **settings: Any) -> MLForecaster:
    meta = {"label": {"kind": "up", "horizon_bars": 1},
            "trained_on": {"first_ts_ns": 2 * H, "last_ts_ns": (label_end_bar - 1) * H,
                           "label_end_ts_ns": label_end_bar * H}}
    model = load_model(json.dumps(_doc(meta)).encode())
    return MLForecaster(MLSettings(model_id="m1", **settings), registry=OneModelRegistry(model))  # type: ignore[arg-type]


def test_no_forecast_on_bars_the_model_was_trained_on(caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    """Trained on bars whose labels were known by bar 30's close.  Before: a forecast at
    every bar from 2 on (bars 2-29 in sample).  Now: none before bar 30, counted in
    ``stats['in_sample']``, said once; from bar 30 on, forecasts."""
    f = _trained_to(30)
    with caplog.at_level(logging.WARNING, logger="argus_ml.forecaster"):
        got = _feed(f, 40)
    assert got == [False] * 29 + [True] * 11
    assert f.stats["in_sample"] == 28
    said = [r for r in caplog.records if "in sample" in r.getMessage()]
    assert len(said) == 1 and "allow_in_sample" in said[0].getMessage()


def test_allow_in_sample_gives_the_forecasts_and_says_so(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    f = _trained_to(30, allow_in_sample=True)
    with caplog.at_level(logging.WARNING, logger="argus_ml.forecaster"):
        assert _feed(f, 40) == [False] + [True] * 39
    assert any("in sample" in r.getMessage() for r in caplog.records)


def test_a_model_without_the_record_uses_its_cv_reports_last_fold() -> None:
    """A model registered before ``trained_on``: its CV report's last test row (bar 20's
    close) plus its horizon (3 bars: labels known at bar 23) bounds the training data."""
    doc = _doc({"label": {"kind": "up", "horizon_bars": 3}})
    model = load_model(json.dumps(doc).encode())
    report = {"folds": [{"test_end_ts_ns": 10 * H}, {"test_end_ts_ns": 20 * H}]}
    f = MLForecaster(MLSettings(model_id="m1"), registry=OneModelRegistry(model, report))  # type: ignore[arg-type]
    assert _feed(f, 30) == [False] * 22 + [True] * 8


def _backtest(tmp_path: Path, registry: Path, **ml: object) -> Path:
    tmp_path.mkdir(exist_ok=True)
    copy_ = tmp_path / "registry.db"
    shutil.copy(registry, copy_)
    table = {"registry": str(copy_), "bars_csv": str(KRAKEN),
             "bars_start": TRAIN_END - 100 * 3600, "bars_end": TRAIN_END + 1000 * 3600, **ml}
    lines = ['[argus]', 'plugins = ["ml"]', '[run]', 'venue = "updown_replay"',
             'strategies = ["ml_updown"]', '[plugins.ml]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    config = tmp_path / "backtest.toml"
    config.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    out = CliRunner().invoke(cli, ["backtest", "--config", str(config), "--run-dir",
                                   str(run), "--no-progress"])
    assert out.exit_code == 0, out.output
    return run


def _bet_opens_s(run: Path) -> list[int]:
    with Ledger.in_dir(run) as ledger:
        return [int(b.instrument_id.split("-")[-1]) for b in binary_bets(ledger.fills())]


def test_the_readmes_out_of_sample_backtest_bets_only_after_training(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    """Training on bars opening before ``TRAIN_END`` (labels known by ``TRAIN_END``), the
    replay from 100 bars earlier.  Before: 23 bets, 16 opening at 1631055600 or earlier
    (inside the training rows).  Now every bet opens at or after ``TRAIN_END``; with
    ``allow_in_sample`` the early bets come back and the report counts them."""
    reg, _refused, good = kraken_registry
    from argus_ml.registry import ModelRegistry, open_registry

    with open_registry(reg) as ledger:
        trained = ModelRegistry(ledger).load(good).meta["trained_on"]
    assert trained["label_end_ts_ns"] == TRAIN_END * 10**9
    opens = _bet_opens_s(_backtest(tmp_path / "oos", reg))
    assert opens and min(opens) >= TRAIN_END
    run = _backtest(tmp_path / "ins", reg, allow_in_sample=True)
    inside = [t for t in _bet_opens_s(run) if t < TRAIN_END]
    assert inside
    report = (run / "report.html").read_text()
    assert f"In sample: {len(inside)} of {len(_bet_opens_s(run))} bets" in report


@pytest.mark.parametrize(("change", "says"), [
    ({"meta": [1, 2]}, "meta"),
    ({"steps": 5}, "steps"),
    ({"calibrator": [1]}, "calibrator"),
    ({"features": "ret_1@1"}, "features"),
    ({"features": 5}, "features"),
    ({"features": [1.5]}, "features"),
    ({"meta": {"label": "up"}}, "label"),
    ({"meta": {"label": {"kind": "up", "horizon_bars": 0}}}, "horizon_bars"),
    ({"meta": {"label": {"kind": "up", "horizon_bars": "x"}}}, "horizon_bars"),
    ({"meta": {"trained_on": {"label_end_ts_ns": "soon"}}}, "trained_on"),
])
def test_a_model_file_of_the_wrong_shape_is_a_data_error(change: dict[str, Any],
                                                         says: str) -> None:
    """Before: TypeError / AttributeError tracebacks, or ``features`` "ret_1@1" read as
    the seven features 'r', 'e', 't', ...; a horizon of 0 loaded."""
    doc = {**_doc(), **change}
    with pytest.raises(DataError, match=says):
        load_model(json.dumps(doc).encode())


def test_a_tree_that_points_back_is_refused() -> None:
    """A node whose child is itself (or an earlier node): before, it loaded and the walk
    stopped after 64 steps on an inner node, returning that node's value."""
    doc = _doc()
    doc["steps"] = [{"kind": "gbm", "init": 0.0, "learning_rate": 0.1, "trees": [
        {"left": [1, 1, -1], "right": [2, 2, -1], "feature": [0, 0, -2],
         "threshold": [0.0, 0.0, -2.0], "value": [0.0, 5.0, -5.0]}]}]
    with pytest.raises(DataError, match="child"):
        load_model(json.dumps(doc).encode())


def test_a_deep_valid_tree_is_walked_to_its_leaf() -> None:
    """A chain of 100 splits (legal): before, the walk stopped at depth 64 and returned
    an inner node's value (0) instead of the leaf's."""
    n = 100
    left = [i + 1 for i in range(n)] + [-1] * (n + 1)
    right = [n + 1 + i for i in range(n)] + [-1] * (n + 1)
    doc = _doc()
    doc["steps"] = [{"kind": "gbm", "init": 0.0, "learning_rate": 1.0, "trees": [
        {"left": left, "right": right, "feature": [0] * n + [-2] * (n + 1),
         "threshold": [1.0] * n + [-2.0] * (n + 1),
         "value": [0.0] * n + [3.0] + [0.0] * n}]}]
    model = load_model(json.dumps(doc).encode())
    assert model.raw(np.array([[0.0]]))[0] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_large_coefficients_do_not_overflow_the_logistic_link() -> None:
    doc = copy.deepcopy(_doc())
    doc["steps"][0]["coef"] = [1e4]
    model = load_model(json.dumps(doc).encode())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = model.raw(np.array([[1.0], [-1.0], [0.0]]))
    assert raw.tolist() == [1.0, 0.0, 0.5]


def test_a_label_with_one_outcome_only_is_a_clear_error(tmp_path: Path) -> None:
    """Bars that only rise: every ``up@1`` label is 1.  Before: scikit-learn's ValueError
    ("needs samples of at least 2 classes") as a traceback, exit 1.  Now a DataError
    naming the file and the label, exit 4 (the class's code)."""
    from argus_ml.cli import ml

    rows = [f"{1_700_000_000 + 3600 * i},{100 * 1.001 ** i!r},{100 * 1.001 ** i * 1.0005!r},"
            f"{100 * 1.001 ** i * 0.9995!r},{100 * 1.001 ** i!r},5.0,3" for i in range(400)]
    csv = tmp_path / "rising.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = CliRunner().invoke(ml, ["train", "--bars", str(csv), "--registry",
                                  str(tmp_path / "r.db"), "--folds", "3",
                                  "--calibration", "none", "--features", "ret_1,vol_24"])
    assert out.exit_code == 4, out.output
    assert out.output.strip().startswith(f"error: {csv}: the label up@1 is 1 on all"), \
        out.output
    assert "Traceback" not in out.output
