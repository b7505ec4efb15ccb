"""Drift monitoring: is a model still as good as when it was promoted, and do its inputs
still look like its training data?

* :class:`BrierEMA`: an exponentially weighted Brier score of forecasts against realised
  outcomes; it alarms when, after ``min_obs`` outcomes, it exceeds the model's
  out-of-fold Brier by ``margin``.
* :func:`psi`: the population stability index of a feature against its training
  distribution (deciles of the training values); :class:`FeatureDrift` keeps the last
  ``window`` live rows and alarms when a feature's PSI exceeds *its own* threshold for
  ``consecutive`` checks in a row.
* :func:`calibrate_psi`: those thresholds, measured at training time on the training
  rows themselves.  A persistent feature (``vol_24``: volatility clusters) has windows
  far from its whole-sample deciles even when nothing changed -- its 500-row windows
  inside the training data reach PSI 3.5 -- so one fixed limit (0.25, the customary
  "significant shift") fires on ordinary regime persistence.  The threshold of a feature
  is the ``quantile`` (0.99) of the PSI of every rolling ``window``-row slice of its
  training values against the training deciles, never below the fixed limit: the
  alarm means "further from the training distribution than the training data itself
  ever went", not "a calm month".
* :class:`DriftMonitor` joins both and, on an alarm, demotes the model to shadow in the
  registry (a ledger row with the reason, and a risk event) -- when its caller says an
  alarm may demote (a replay run may not, by default: the forecaster decides).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from argus_core import Ledger
    from argus_ml.registry import ModelRegistry

log = logging.getLogger(__name__)

PSI_FLOOR = 1e-4  # a bin with no cases counts as this share (keeps the log finite)
#: No PSI exceeds this: each term is at most ``|a - e| ln(1 / PSI_FLOOR)`` and the ``|a - e|``
#: of floored shares sum to at most 2.  A threshold above it is an alarm that never fires.
PSI_MAX = 2.0 * math.log(1.0 / PSI_FLOOR)


def reference_bins(values: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Decile edges of training values and the share of training rows between them.

    When the top bin holds one value only (a constant feature, or a point mass at the
    training maximum), an edge just above it is added: otherwise every larger live value
    fell into that bin too, and a feature constant at 0 in training and at 5 live had
    PSI 0.  (Values below the lowest edge already get a bin of their own.)"""
    v = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    if v.size and edges.size and v.max() == edges[-1]:
        edges = np.append(edges, np.nextafter(edges[-1], np.inf))
    props = np.bincount(np.searchsorted(edges, v, side="right"),
                        minlength=edges.size + 1) / v.size
    return {"edges": edges.tolist(), "props": props.tolist()}


def psi(reference: Mapping[str, Sequence[float]], values: np.ndarray) -> float:
    """Population stability index of ``values`` against a :func:`reference_bins` result."""
    edges = np.asarray(reference["edges"], dtype=np.float64)
    expected = np.maximum(np.asarray(reference["props"], dtype=np.float64), PSI_FLOOR)
    v = np.asarray(values, dtype=np.float64)
    actual = np.bincount(np.searchsorted(edges, v, side="right"),
                         minlength=edges.size + 1) / max(v.size, 1)
    actual = np.maximum(actual, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def rolling_psi(reference: Mapping[str, Sequence[float]], values: np.ndarray,
                window: int) -> np.ndarray:
    """:func:`psi` of every ``window``-long slice of ``values`` (``len - window + 1`` of
    them, slice ``i`` = ``values[i:i + window]``), from running bin counts in one pass."""
    edges = np.asarray(reference["edges"], dtype=np.float64)
    expected = np.maximum(np.asarray(reference["props"], dtype=np.float64), PSI_FLOOR)
    v = np.asarray(values, dtype=np.float64)
    if window < 1 or v.size < window:
        return np.empty(0)
    idx = np.searchsorted(edges, v, side="right")
    onehot = (idx[:, None] == np.arange(edges.size + 1)[None, :]).astype(np.int64)
    running = np.vstack([np.zeros((1, edges.size + 1), dtype=np.int64),
                         np.cumsum(onehot, axis=0)])
    actual = np.maximum((running[window:] - running[:-window]) / window, PSI_FLOOR)
    return np.asarray(np.sum((actual - expected) * np.log(actual / expected), axis=1))


def calibrate_psi(X: np.ndarray, keys: Sequence[str],
                  reference: Mapping[str, Mapping[str, Sequence[float]]], *,
                  window: int = 500, quantile: float = 0.99) -> dict[str, Any] | None:
    """Per-feature PSI thresholds measured on the training rows ``X`` themselves: the
    ``quantile`` of the PSI of every rolling ``window``-row slice of each column against
    its training deciles (``reference``), with the median and maximum for the record.

    None when ``X`` has fewer than ``2 * window`` rows (too few windows to say anything;
    the monitor then falls back to its fixed limit)."""
    X = np.asarray(X, dtype=np.float64)
    if window < 1 or X.shape[0] < 2 * window:
        return None
    features: dict[str, dict[str, float]] = {}
    for j, key in enumerate(keys):
        if key not in reference:
            continue
        r = rolling_psi(reference[key], X[:, j], window)
        features[key] = {"threshold": float(np.quantile(r, quantile)),
                         "median": float(np.median(r)), "max": float(r.max())}
    return {"method": "rolling-window quantile", "window": int(window),
            "quantile": float(quantile), "windows": int(X.shape[0] - window + 1),
            "rows": int(X.shape[0]), "features": features}


class BrierEMA:
    """Online Brier score (EMA with weight ``alpha``) against a baseline."""

    def __init__(self, baseline: float, *, alpha: float = 0.02, margin: float = 0.02,
                 min_obs: int = 200) -> None:
        self.baseline, self.alpha, self.margin, self.min_obs = baseline, alpha, margin, min_obs
        self.value = baseline
        self.n = 0

    def update(self, p: float, outcome: float) -> str | None:
        """Add one realised outcome; returns the alarm's reason, or None."""
        self.value += self.alpha * ((p - outcome) ** 2 - self.value)
        self.n += 1
        if self.n >= self.min_obs and self.value > self.baseline + self.margin:
            return (f"online Brier EMA {self.value:.4f} exceeds the out-of-fold "
                    f"{self.baseline:.4f} + {self.margin} after {self.n} outcomes")
        return None

    @property
    def health(self) -> float:
        """1 while the EMA is at or below the baseline, falling linearly to 0 at the alarm
        level (baseline + margin): how far the model's recent record still backs it."""
        if self.margin <= 0:
            return 1.0 if self.value <= self.baseline else 0.0
        return min(1.0, max(0.0, 1.0 - (self.value - self.baseline) / self.margin))


class FeatureDrift:
    """PSI of the last ``window`` feature rows against the training reference, checked on
    every row once the window is full.

    A feature alarms when its PSI exceeds its threshold on ``consecutive`` checks in a
    row.  Its threshold is its calibrated one (:func:`calibrate_psi`, ``thresholds``)
    but never below ``limit``; a feature without one (an old model) gets ``limit``."""

    def __init__(self, reference: Mapping[str, Mapping[str, Sequence[float]]],
                 keys: Sequence[str], *, limit: float = 0.25, window: int = 500,
                 thresholds: Mapping[str, float] | None = None, consecutive: int = 1) -> None:
        self.reference, self.keys, self.limit = reference, list(keys), limit
        self.calibrated = thresholds is not None
        self.thresholds = {k: max(limit, float((thresholds or {}).get(k, limit)))
                           for k in self.keys}
        self.consecutive = max(1, consecutive)
        self.rows: deque[tuple[float, ...]] = deque(maxlen=window)
        self.streaks = dict.fromkeys(self.keys, 0)
        self.last: dict[str, float] = {}  # each feature's PSI at the newest check
        self.peak: dict[str, float] = {}  # and the highest it has been

    def update(self, row: Sequence[float]) -> str | None:
        """Add one live row; returns the alarm's reason once the window is full."""
        self.rows.append(tuple(row))
        if len(self.rows) < (self.rows.maxlen or 0):
            return None
        data = np.array(self.rows)
        alarms = []
        for j, k in enumerate(self.keys):
            if k not in self.reference:
                continue
            value = self.last[k] = psi(self.reference[k], data[:, j])
            self.peak[k] = max(value, self.peak.get(k, 0.0))
            self.streaks[k] = self.streaks[k] + 1 if value > self.thresholds[k] else 0
            if self.streaks[k] >= self.consecutive:
                alarms.append((value / self.thresholds[k], k))
        if not alarms:
            return None
        _, k = max(alarms)
        source = "calibrated on the training windows" if self.calibrated else "fixed limit"
        return (f"feature {k} drifted: PSI {self.last[k]:.3f} > its threshold "
                f"{self.thresholds[k]:.3f} ({source}) on {self.streaks[k]} consecutive "
                f"check(s) of the last {len(self.rows)} rows")


class DriftMonitor:
    """Watches one model; on the first alarm demotes it to shadow through ``registry``.

    ``demote`` says whether an alarm may change the registry (the forecaster sets it
    from the run's mode: not in a replay unless configured); either way the alarm is
    kept (:attr:`tripped`), logged, and written as an ``ml_drift`` risk event in
    ``run_ledger`` (the run's own ledger) when there is one."""

    def __init__(self, model_id: str, registry: ModelRegistry | None, *, baseline_brier: float,
                 reference: Mapping[str, Any], keys: Sequence[str], alpha: float = 0.02,
                 margin: float = 0.02, psi_limit: float = 0.25, min_obs: int = 200,
                 window: int = 500, thresholds: Mapping[str, float] | None = None,
                 consecutive: int = 1, demote: bool = True,
                 run_ledger: Ledger | None = None) -> None:
        self.model_id, self.registry = model_id, registry
        self.brier = BrierEMA(baseline_brier, alpha=alpha, margin=margin, min_obs=min_obs)
        self.features = FeatureDrift(reference, keys, limit=psi_limit, window=window,
                                     thresholds=thresholds, consecutive=consecutive)
        self.demote, self.run_ledger = demote, run_ledger
        self.tripped: str | None = None
        self.demoted = False  # whether the alarm changed the registry

    def _trip(self, reason: str, ts_ns: int) -> str:
        self.tripped = reason
        # a shadow model is already where a demotion would put it: the alarm is kept only
        if self.demote and self.registry is not None and \
                self.registry.get(self.model_id)["status"] != "shadow":
            self.registry.demote(self.model_id, "shadow", f"drift: {reason}", ts_ns=ts_ns,
                                 actor="drift-monitor")
            self.demoted = True
        if self.demoted:
            log.warning("model %s demoted to shadow: drift: %s", self.model_id, reason)
        else:
            log.warning("model %s: drift alarm, registry unchanged (%s): %s", self.model_id,
                        "demotion off for this run" if not self.demote else "no registry "
                        "or already shadow", reason)
        if self.run_ledger is not None:
            note = "" if self.demoted else " (registry unchanged)"
            self.run_ledger.record_risk_event(
                ts_ns, "ml_drift", "demote" if self.demoted else "alert",
                f"model {self.model_id}: {reason}{note}")
        return reason

    def observe_features(self, row: Sequence[float], ts_ns: int) -> str | None:
        """Feed a live feature row; returns the alarm's reason if this tripped it."""
        if self.tripped:
            return None
        reason = self.features.update(row)
        return self._trip(reason, ts_ns) if reason else None

    def observe_outcome(self, p: float, outcome: float, ts_ns: int) -> str | None:
        """Feed a realised outcome of forecast ``p``; returns the alarm's reason if any."""
        if self.tripped:
            return None
        reason = self.brier.update(p, outcome)
        return self._trip(reason, ts_ns) if reason else None

    def get_state(self) -> dict[str, Any]:
        """JSON state for checkpoints: the Brier EMA and its count, the PSI window's rows
        and streaks, and the alarm (a resumed run keeps its EMAs instead of starting
        over)."""
        return {"brier_value": self.brier.value, "brier_n": self.brier.n,
                "rows": [list(r) for r in self.features.rows],
                "streaks": dict(self.features.streaks), "peaks": dict(self.features.peak),
                "tripped": self.tripped,
                "demoted": self.demoted}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state` (demotes nothing again: the registry already has it)."""
        self.brier.value = float(state.get("brier_value", self.brier.baseline))
        self.brier.n = int(state.get("brier_n", 0))
        self.features.rows.clear()
        for r in state.get("rows", []):
            self.features.rows.append(tuple(float(x) for x in r))
        streaks = state.get("streaks") or {}
        self.features.streaks = {k: int(streaks.get(k, 0)) for k in self.features.keys}
        self.features.peak = {str(k): float(v) for k, v in (state.get("peaks") or {}).items()}
        tripped = state.get("tripped")
        self.tripped = str(tripped) if tripped else None
        self.demoted = bool(state.get("demoted", False))
