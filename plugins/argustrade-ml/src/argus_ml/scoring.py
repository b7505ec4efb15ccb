"""Probability scores: Brier and its Murphy decomposition, log loss, AUC, reliability.

Murphy (1973): with forecasts grouped into bins ``k`` holding ``n_k`` of ``N`` cases,
mean forecast ``f_k`` and observed frequency ``o_k``, and base rate ``o``::

    reliability = sum n_k (f_k - o_k)^2 / N      (lower is better)
    resolution  = sum n_k (o_k - o)^2 / N        (higher is better)
    uncertainty = o (1 - o)                      (the climatology's Brier)
    brier       = reliability - resolution + uncertainty + within_bin

``within_bin`` is zero when every forecast in a bin is the same (the default groups
identical forecasts, so the identity is exact); with fixed-width bins it is the small
remainder from the spread of forecasts inside a bin, reported rather than hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np

from argus_core import DataError

EPS = 1e-15


def _check(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise DataError(f"scores need equal-length 1-d forecasts and outcomes; got "
                        f"{p.shape} and {y.shape}")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise DataError("forecasts must be probabilities in [0, 1]")
    if np.any((y != 0) & (y != 1)):
        raise DataError("outcomes must be 0 or 1")
    return p, y


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of probability forecasts ``p`` against outcomes ``y`` (0/1)."""
    p, y = _check(p, y)
    return float(np.mean((p - y) ** 2))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood (natural log), forecasts clipped to ``[1e-15, 1-1e-15]``."""
    p, y = _check(p, y)
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN with one class."""
    p, y = _check(p, y)
    pos, neg = int(y.sum()), int((1 - y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(p.size)
    sorted_p = p[order]
    # average ranks over ties
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
    ends = np.r_[starts[1:], p.size]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


@attrs.frozen
class BrierDecomposition:
    """Murphy's decomposition of a Brier score (see the module docstring)."""

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin: float
    n: int


def _groups(p: np.ndarray, bins: int | None) -> np.ndarray:
    if bins is not None and (isinstance(bins, bool) or not isinstance(bins, int | np.integer)
                             or bins < 1):
        # bins = 0 grouped every forecast into bin -1: numpy's ValueError from bincount
        raise DataError(f"bins must be a whole number >= 1 (or None), got {bins!r}")
    if bins is None:
        return np.unique(p, return_inverse=True)[1]
    return np.minimum((p * bins).astype(np.int64), bins - 1)


def murphy(p: np.ndarray, y: np.ndarray, bins: int | None = None) -> BrierDecomposition:
    """Decompose the Brier score; ``bins=None`` groups identical forecasts (exact)."""
    p, y = _check(p, y)
    g = _groups(p, bins)
    n = p.size
    counts = np.bincount(g)
    used = counts > 0
    f_k = np.bincount(g, weights=p)[used] / counts[used]
    o_k = np.bincount(g, weights=y)[used] / counts[used]
    w = counts[used] / n
    o = float(y.mean())
    rel = float(np.sum(w * (f_k - o_k) ** 2))
    res = float(np.sum(w * (o_k - o) ** 2))
    unc = o * (1 - o)
    b = brier(p, y)
    return BrierDecomposition(b, rel, res, unc, b - (rel - res + unc), n)


def reliability_curve(p: np.ndarray, y: np.ndarray, bins: int = 10
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty fixed-width bin: mean forecast, observed frequency, count."""
    p, y = _check(p, y)
    g = _groups(p, bins)
    counts = np.bincount(g, minlength=bins)
    used = counts > 0
    mean_p = np.bincount(g, weights=p, minlength=bins)[used] / counts[used]
    freq = np.bincount(g, weights=y, minlength=bins)[used] / counts[used]
    return mean_p, freq, counts[used]


def scorecard(p: np.ndarray, y: np.ndarray, *, bins: int = 10) -> dict[str, float]:
    """Every score of one forecast series (Murphy terms over ``bins`` fixed bins)."""
    d = murphy(p, y, bins)
    return {"n": float(d.n), "brier": d.brier, "reliability": d.reliability,
            "resolution": d.resolution, "uncertainty": d.uncertainty,
            "within_bin": d.within_bin, "log_loss": log_loss(p, y), "auc": auc(p, y),
            "base_rate": float(np.mean(y)), "mean_forecast": float(np.mean(p))}


def plot_reliability(series: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, *,
                     bins: int = 10, title: str = "Reliability") -> Path:
    """A reliability diagram (PNG): observed frequency against mean forecast per bin for
    each named ``(p, y)`` series, the diagonal, and a forecast histogram below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 7), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    names: Sequence[str] = list(series)
    for name in names:
        p, y = series[name]
        mp, fr, _ = reliability_curve(p, y, bins)
        ax.plot(mp, fr, marker="o", label=f"{name} (Brier {brier(p, y):.4f})")
        hist.hist(p, bins=np.linspace(0, 1, bins + 1), histtype="step", label=name)
    ax.set_ylabel("observed frequency")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    hist.set_xlabel("forecast probability")
    hist.set_ylabel("count")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
