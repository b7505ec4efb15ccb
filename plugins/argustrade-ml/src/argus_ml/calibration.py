"""Probability calibration (isotonic or Platt), fitted on out-of-fold forecasts, kept as
plain numbers so a saved model needs no pickle.

* ``isotonic``: scikit-learn's ``IsotonicRegression`` fit; applied as linear
  interpolation between its thresholds, clipped at the ends (what scikit-learn does).
* ``platt``: a logistic regression on the logit of the raw forecast,
  ``p = sigmoid(a * logit(q) + b)``.
* ``none``: the raw forecast.

Outputs are clipped to ``[CLIP, 1 - CLIP]``: a calibrated 0 or 1 would make one wrong
outcome cost an infinite log loss and a Kelly bet of everything.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from argus_core import DataError

KINDS = ("isotonic", "platt", "none")
CLIP = 1e-3


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(q / (1 - q))


@attrs.frozen
class Calibrator:
    """A fitted calibration map from raw to calibrated probabilities."""

    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    x: tuple[float, ...] = ()  # isotonic thresholds
    y: tuple[float, ...] = ()
    a: float = 1.0  # platt slope and intercept
    b: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw forecasts ``raw``."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.kind == "isotonic":
            out = np.interp(raw, np.array(self.x), np.array(self.y))
        elif self.kind == "platt":
            # exp(-logaddexp(0, -z)) = 1 / (1 + exp(-z)) without overflow: a steep slope
            # (a = 1000) overflowed exp, a RuntimeWarning per row (raised under -W error)
            with np.errstate(invalid="ignore", over="ignore"):
                out = np.exp(-np.logaddexp(0.0, -(self.a * _logit(raw) + self.b)))
        else:
            out = raw
        return np.clip(out, CLIP, 1 - CLIP)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters."""
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y), "a": self.a,
                "b": self.b}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        """Rebuild from :meth:`to_dict` (validating every number)."""
        try:
            x = tuple(float(v) for v in d.get("x", ()))
            y = tuple(float(v) for v in d.get("y", ()))
            a, b = float(d.get("a", 1.0)), float(d.get("b", 0.0))
        except (TypeError, ValueError, OverflowError) as exc:
            # OverflowError: a JSON integer past float64, e.g. "a": 1 and 400 zeros
            raise DataError(f"calibrator: a parameter is not a number ({exc})") from None
        if len(x) != len(y) or not np.all(np.isfinite(x + y)):
            raise DataError("calibrator: thresholds malformed")
        if d.get("kind") not in KINDS:
            raise DataError(f"calibrator: kind {d.get('kind')!r} is not one of {KINDS}")
        if d["kind"] == "isotonic" and (not x or np.any(np.diff(x) < 0)):
            raise DataError("calibrator: isotonic thresholds must be non-empty and sorted")
        if d["kind"] == "isotonic" and not all(0.0 <= v <= 1.0 for v in y):
            # a map to "probabilities" outside [0, 1] is a broken fit, not one to clip
            raise DataError("calibrator: isotonic values must be probabilities in [0, 1]")
        if not (np.isfinite(a) and np.isfinite(b)):
            # a NaN slope made every forecast NaN (refused only at inference, every bar)
            raise DataError(f"calibrator: platt slope and intercept must be finite, got "
                            f"a={a}, b={b}")
        return cls(d["kind"], x, y, a, b)


def fit_calibrator(kind: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit a calibrator of ``kind`` on raw forecasts ``raw`` and outcomes ``y``."""
    if kind not in KINDS:
        raise DataError(f"calibration {kind!r} is not one of {KINDS}")
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if kind == "none":
        return Calibrator("none")
    if raw.size < 20 or len(np.unique(y)) < 2:
        raise DataError(f"calibration needs >= 20 forecasts with both outcomes; got {raw.size}")
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return Calibrator("isotonic", tuple(map(float, iso.X_thresholds_)),
                          tuple(map(float, iso.y_thresholds_)))
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    lr = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)
    return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
