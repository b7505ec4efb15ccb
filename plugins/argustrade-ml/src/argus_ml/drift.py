"""Drift monitoring: is a model still as good as when it was promoted, and do its inputs
still look like its training data?

* :class:`BrierEMA`: an exponentially weighted Brier score of forecasts against realised
  outcomes; it alarms when, after ``min_obs`` outcomes, it exceeds the model's
  out-of-fold Brier by ``margin``.
* :func:`psi`: the population stability index of a feature against its training
  distribution (deciles of the training values); :class:`FeatureDrift` keeps the last
  ``window`` live rows and alarms when any feature's PSI exceeds ``limit`` (0.25 is the
  customary "significant shift").
* :class:`DriftMonitor` joins both and, on an alarm, demotes the model to shadow in the
  registry (a ledger row with the reason, and a risk event).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from argus_ml.registry import ModelRegistry

PSI_FLOOR = 1e-4  # a bin with no cases counts as this share (keeps the log finite)


def reference_bins(values: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Decile edges of training values and the share of training rows between them."""
    v = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
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
    """PSI of the last ``window`` feature rows against the training reference."""

    def __init__(self, reference: Mapping[str, Mapping[str, Sequence[float]]],
                 keys: Sequence[str], *, limit: float = 0.25, window: int = 500) -> None:
        self.reference, self.keys, self.limit = reference, list(keys), limit
        self.rows: deque[tuple[float, ...]] = deque(maxlen=window)

    def update(self, row: Sequence[float]) -> str | None:
        """Add one live row; returns the alarm's reason once the window is full."""
        self.rows.append(tuple(row))
        if len(self.rows) < (self.rows.maxlen or 0):
            return None
        data = np.array(self.rows)
        worst = max(((psi(self.reference[k], data[:, j]), k) for j, k in enumerate(self.keys)
                     if k in self.reference), default=(0.0, ""))
        if worst[0] > self.limit:
            return f"feature {worst[1]} drifted: PSI {worst[0]:.3f} > {self.limit}"
        return None


class DriftMonitor:
    """Watches one model; on the first alarm demotes it to shadow through ``registry``."""

    def __init__(self, model_id: str, registry: ModelRegistry | None, *, baseline_brier: float,
                 reference: Mapping[str, Any], keys: Sequence[str], alpha: float = 0.02,
                 margin: float = 0.02, psi_limit: float = 0.25, min_obs: int = 200,
                 window: int = 500) -> None:
        self.model_id, self.registry = model_id, registry
        self.brier = BrierEMA(baseline_brier, alpha=alpha, margin=margin, min_obs=min_obs)
        self.features = FeatureDrift(reference, keys, limit=psi_limit, window=window)
        self.tripped: str | None = None

    def _trip(self, reason: str, ts_ns: int) -> str:
        self.tripped = reason
        # a shadow model is already where a demotion would put it: the alarm is kept only
        if self.registry is not None and \
                self.registry.get(self.model_id)["status"] != "shadow":
            self.registry.demote(self.model_id, "shadow", f"drift: {reason}", ts_ns=ts_ns,
                                 actor="drift-monitor")
        return reason

    def observe_features(self, row: Sequence[float], ts_ns: int) -> str | None:
        """Feed a live feature row; returns the demotion reason if this tripped it."""
        if self.tripped:
            return None
        reason = self.features.update(row)
        return self._trip(reason, ts_ns) if reason else None

    def observe_outcome(self, p: float, outcome: float, ts_ns: int) -> str | None:
        """Feed a realised outcome of forecast ``p``; returns the demotion reason if any."""
        if self.tripped:
            return None
        reason = self.brier.update(p, outcome)
        return self._trip(reason, ts_ns) if reason else None

    def get_state(self) -> dict[str, Any]:
        """JSON state for checkpoints: the Brier EMA and its count, the PSI window's rows
        and the alarm (a resumed run keeps its EMAs instead of starting over)."""
        return {"brier_value": self.brier.value, "brier_n": self.brier.n,
                "rows": [list(r) for r in self.features.rows], "tripped": self.tripped}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state` (demotes nothing again: the registry already has it)."""
        self.brier.value = float(state.get("brier_value", self.brier.baseline))
        self.brier.n = int(state.get("brier_n", 0))
        self.features.rows.clear()
        for r in state.get("rows", []):
            self.features.rows.append(tuple(float(x) for x in r))
        tripped = state.get("tripped")
        self.tripped = str(tripped) if tripped else None
