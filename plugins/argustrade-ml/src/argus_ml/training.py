"""Training: scikit-learn pipelines under the lab's purged, embargoed walk-forward CV.

The procedure, every step forward in time and out of sample:

1. Outer folds from :func:`argus_lab.walkforward.walk_forward_splits` (rolling or
   anchored) over the dataset rows, with ``label_horizon`` = the dataset's purge
   distance (how far its labels look ahead) and the configured embargo.
2. In each outer fold, the hyperparameters are chosen by an *inner* walk-forward
   over that fold's training rows only (same splitter, same purge and embargo),
   scored by mean log loss; then the pipeline is refit on the fold's training rows and
   predicts its test block: the raw out-of-fold (OOF) forecasts.
3. Calibration is fitted out of fold: fold ``k``'s forecasts are calibrated by a map
   fitted on the OOF forecasts of earlier folds only (purged against fold ``k``), so the
   calibrated OOF record is honest too.  Fold 0 has no earlier folds and is left out of
   the calibrated scores.
4. The climatology baseline of a fold is the base rate of its training labels (what was
   known before it); the market baseline is 0.5 (a fair up/down price, no quotes).
5. The final model: the inner search on all rows, a fit on all rows, and a calibrator
   fitted on every OOF forecast.
6. Drift references: each feature's training deciles (in the model) and its PSI
   threshold, the ``drift_quantile`` of the PSI of every rolling ``drift_window``-row
   slice of the training rows against those deciles (:func:`argus_ml.drift.calibrate_psi`;
   :attr:`TrainResult.drift`, stored in the registry with the model's lineage).
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from argus_core import ConfigError, DataError
from argus_ml.calibration import KINDS as CALIBRATIONS
from argus_ml.calibration import Calibrator, fit_calibrator
from argus_ml.dataset import Dataset
from argus_ml.modelfile import ProbabilityModel, export_steps
from argus_ml.scoring import log_loss, plot_reliability, scorecard

MODELS = ("logreg", "gbm")

#: Default hyperparameter grids (searched inside each fold).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "logreg": [{"C": c} for c in (0.01, 0.1, 1.0)],
    "gbm": [{"max_depth": d, "n_estimators": n, "learning_rate": 0.05}
            for d in (1, 2) for n in (50, 100)],
}


#: Rows skipped after each test fold before training rows resume (serial correlation
#: beyond the label's horizon, which the purge covers); the CLI's ``--embargo`` default.
DEFAULT_EMBARGO_ROWS = 24


@attrs.frozen
class TrainSpec:
    """How to train: model kind, calibration, fold layout (rows) and grid."""

    model: str = attrs.field(default="logreg", validator=attrs.validators.in_(MODELS))
    calibration: str = attrs.field(default="isotonic",
                                   validator=attrs.validators.in_(CALIBRATIONS))
    mode: str = attrs.field(default="anchored",
                            validator=attrs.validators.in_(("rolling", "anchored")))
    n_folds: int = attrs.field(default=5, validator=attrs.validators.ge(2))
    embargo_rows: int = attrs.field(default=DEFAULT_EMBARGO_ROWS,
                                    validator=attrs.validators.ge(0))
    inner_folds: int = attrs.field(default=3, validator=attrs.validators.ge(2))
    grid: tuple[dict[str, Any], ...] | None = None
    seed: int = 0
    # drift thresholds: rows per PSI window (the live monitor's window) and the quantile
    # of the training windows' PSI that becomes each feature's threshold
    drift_window: int = attrs.field(default=500, validator=attrs.validators.ge(1))
    drift_quantile: float = attrs.field(default=0.99, validator=[attrs.validators.gt(0.0),
                                                                 attrs.validators.le(1.0)])

    def params_grid(self) -> list[dict[str, Any]]:
        """The grid searched (``grid`` or the model's default)."""
        return list(self.grid) if self.grid else GRIDS[self.model]


def make_pipeline(kind: str, params: dict[str, Any], seed: int = 0) -> Any:
    """A fresh scikit-learn pipeline of ``kind`` with ``params``."""
    from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    if kind == "logreg":
        return Pipeline([("scale", StandardScaler()),
                         ("clf", LogisticRegression(max_iter=1000, **params))])
    if kind == "gbm":
        return Pipeline([("clf", GradientBoostingClassifier(random_state=seed, **params))])
    raise ConfigError(f"model {kind!r} is not one of {MODELS}")


def _fit_predict(kind: str, params: dict[str, Any], seed: int, X: np.ndarray, y: np.ndarray,
                 X_test: np.ndarray) -> np.ndarray:
    if len(np.unique(y)) < 2:  # one class only: the base rate is all there is to learn
        return np.full(X_test.shape[0], float(y.mean()))
    return make_pipeline(kind, params, seed).fit(X, y).predict_proba(X_test)[:, 1]


def _splits(n: int, folds: int, purge: int, embargo: int, mode: str) -> list[Any]:
    from argus_lab.walkforward import walk_forward_splits

    test = max(1, math.ceil(n / (folds + 1)))
    return walk_forward_splits(n, mode=mode, train_bars=max(n - folds * test, 2),
                               test_bars=test, label_horizon=purge, embargo=embargo)


def inner_search(X: np.ndarray, y: np.ndarray, spec: TrainSpec, purge: int
                 ) -> tuple[dict[str, Any], list[float]]:
    """Choose hyperparameters on these rows only, by mean inner-fold log loss; ties go to
    the first grid point.  Returns the choice and every point's score."""
    grid = spec.params_grid()
    if len(grid) == 1:
        return grid[0], [float("nan")]
    splits = _splits(len(y), spec.inner_folds, purge, spec.embargo_rows, "anchored")
    scores = []
    for params in grid:
        losses = [log_loss(np.clip(_fit_predict(spec.model, params, spec.seed, X[s.train],
                                                y[s.train], X[s.test]), 0, 1), y[s.test])
                  for s in splits]
        scores.append(float(np.mean(losses)))
    return grid[int(np.argmin(scores))], scores


@attrs.frozen
class TrainResult:
    """A trained model, its out-of-fold record and the report figures."""

    model: ProbabilityModel
    report: dict[str, Any]
    oof_index: np.ndarray  # dataset rows with an OOF forecast
    oof_raw: np.ndarray
    oof_calibrated: np.ndarray  # NaN in fold 0 (no earlier folds to calibrate on)
    climatology: np.ndarray
    #: per-feature PSI thresholds (:func:`argus_ml.drift.calibrate_psi`); None when the
    #: dataset has fewer than two drift windows of rows
    drift: dict[str, Any] | None = None


def code_version() -> str:
    """This plugin's version plus the git commit of its source when it is in a checkout."""
    from argus_ml import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except OSError:
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def train(ds: Dataset, spec: TrainSpec, *,
          progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Run the whole procedure (module docstring) on a dataset with a binary label."""
    if ds.label.kind != "up":
        raise DataError(f"training needs a binary 'up' label; the dataset has {ds.label.key}")
    X, y, n, purge = ds.X, ds.y, len(ds), ds.purge_rows
    outcomes = np.unique(y)
    if outcomes.size < 2:  # scikit-learn's ValueError on the final fit, as a traceback
        raise DataError(f"the label {ds.label.key} is {outcomes[0]:g} on all {n} rows: a "
                        "classifier needs both outcomes (a window where the price only rose "
                        "or only fell; use a longer one)")
    splits = _splits(n, spec.n_folds, purge, spec.embargo_rows, spec.mode)
    if len(splits) < 2:
        raise DataError(f"{n} rows give {len(splits)} fold(s); calibration out of fold needs 2+")
    from argus_lab.walkforward import purge_and_embargo

    idx, raw, clim, folds = [], [], [], []
    for k, s in enumerate(splits):
        params, _ = inner_search(X[s.train], y[s.train], spec, purge)
        p = _fit_predict(spec.model, params, spec.seed, X[s.train], y[s.train], X[s.test])
        idx.append(s.test)
        raw.append(p)
        clim.append(np.full(s.test.size, float(y[s.train].mean())))
        folds.append({"fold": k, "params": params, "train_rows": int(s.train.size),
                      "test_start_ts_ns": int(ds.ts_ns[s.test[0]]),
                      "test_end_ts_ns": int(ds.ts_ns[s.test[-1]]),
                      "test": scorecard(np.clip(p, 0, 1), y[s.test])})
        if progress:
            progress(k + 1, len(splits) + 1)
    oof_idx = np.concatenate(idx)
    oof_raw = np.clip(np.concatenate(raw), 0.0, 1.0)
    oof_clim = np.concatenate(clim)
    calibrated = np.full(oof_idx.size, np.nan)
    for s in splits[1:]:
        lo, hi = int(s.test[0]), int(s.test[-1]) + 1
        before = purge_and_embargo(oof_idx[oof_idx < lo], lo, hi, label_horizon=purge,
                                   embargo=spec.embargo_rows)
        fit_on = np.isin(oof_idx, before)
        here = (oof_idx >= lo) & (oof_idx < hi)
        try:
            cal = fit_calibrator(spec.calibration, oof_raw[fit_on], y[oof_idx[fit_on]])
        except DataError:  # too few earlier forecasts: leave these uncalibrated
            cal = Calibrator("none")
        calibrated[here] = cal(oof_raw[here])
    params, grid_scores = inner_search(X, y, spec, purge)
    final = make_pipeline(spec.model, params, spec.seed).fit(X, y)
    final_cal = fit_calibrator(spec.calibration, oof_raw, y[oof_idx])
    if progress:
        progress(len(splits) + 1, len(splits) + 1)
    has_cal = ~np.isnan(calibrated)
    yc = y[oof_idx][has_cal]
    report: dict[str, Any] = {
        "model": spec.model, "calibration": spec.calibration, "params": params,
        "grid": spec.params_grid(), "final_grid_scores": grid_scores,
        "mode": spec.mode, "purge_rows": purge, "embargo_rows": spec.embargo_rows,
        "rows": n, "folds": folds,
        "oof_raw": scorecard(oof_raw, y[oof_idx]),
        "oof_calibrated": scorecard(calibrated[has_cal], yc),
        "climatology": scorecard(np.clip(oof_clim[has_cal], 0, 1), yc),
        "market_0.5": scorecard(np.full(yc.size, 0.5), yc),
    }
    cb, kb = report["oof_calibrated"]["brier"], report["climatology"]["brier"]
    report["brier_skill_vs_climatology"] = 1.0 - cb / kb if kb > 0 else 0.0
    # the calibrated out-of-fold record itself: what the promotion gates replay
    report["oof"] = {"p": [round(float(v), 6) for v in calibrated[has_cal]],
                     "y": [int(v) for v in yc]}
    from argus_ml.drift import calibrate_psi, reference_bins

    reference = {k: reference_bins(X[:, j]) for j, k in enumerate(ds.keys)}
    drift = calibrate_psi(X, ds.keys, reference, window=spec.drift_window,
                          quantile=spec.drift_quantile)
    meta = {"label": {"kind": ds.label.kind, "horizon_bars": ds.label.horizon_bars},
            "feature_spec": list(ds.feature_spec), "params": params,
            "model": spec.model, "calibration": spec.calibration,
            "oof_brier": report["oof_calibrated"]["brier"],
            "reference": reference, "trained_on": trained_on(ds)}
    model = ProbabilityModel(export_steps(final), final_cal, ds.keys, meta)
    return TrainResult(model, report, oof_idx, oof_raw, calibrated, oof_clim, drift)


def trained_on(ds: Dataset) -> dict[str, int]:
    """The period the final model was fitted on: first and last decision time of its rows
    and when the last of their labels became known.  A forecast at a bar before
    ``label_end_ts_ns`` is in sample (the forecaster refuses it unless told otherwise)."""
    return {"first_ts_ns": int(ds.ts_ns[0]), "last_ts_ns": int(ds.ts_ns[-1]),
            "label_end_ts_ns": int(ds.label_end_ts_ns.max())}


def write_reliability(result: TrainResult, ds: Dataset, path: Path) -> Path:
    """The reliability diagram of the OOF record (raw, calibrated, climatology)."""
    has = ~np.isnan(result.oof_calibrated)
    y = ds.y[result.oof_index]
    return plot_reliability({"raw": (result.oof_raw[has], y[has]),
                             "calibrated": (result.oof_calibrated[has], y[has]),
                             "climatology": (np.clip(result.climatology[has], 0, 1), y[has])},
                            path, title=f"{result.report['model']} / "
                                        f"{result.report['calibration']}: out of fold")
