"""The point-in-time (leakage) check: no feature may read data stamped after its
decision time.

Three independent tests, all must pass:

1. **stamps**: every value's known-time (the close of the newest bar it read) is at or
   before its row's decision time;
2. **own window**: on *every* row, the feature's function given that row's window alone
   (a copy: shape ``(1, lookback)``, what the live :class:`~argus_ml.features.FeatureEngine`
   hands it) gives the batch's value.  The batch hands the function every window at
   once, so a function can read other rows -- the next bar's close where the data has a
   gap (a back-fill), a centred rolling mean -- and the stamps cannot see it.  Such a
   leak touches few rows (the rows before a gap), which the sampled truncation test
   below missed (12 gaps in 3,000 bars: passed on 4 of 5 draws);
3. **truncation**: for sampled decision bars ``t``, recomputing the features on the
   history cut at ``t`` (nothing after it exists: a *copy* of the first ``t + 1`` bars,
   so no array view reaches the rest through its ``.base``) gives the same values as
   the full batch run.  A feature that normalises by statistics of the whole history
   (remembered from an earlier call, so the own-window test agrees) changes value when
   the future is removed.

Planted leaks of each kind are caught in ``tests/test_ml_leakage.py`` and
``tests/test_redteam40_ml.py``.  A feature that remembers a value across calls *before*
the check runs (a cache filled in another process) cannot be seen by any test of
outputs; features must be pure functions of their window.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from argus_core import DataError
from argus_ml.bars import COLUMNS, BarColumns
from argus_ml.features import FeatureMatrix, FeatureSet, batch_feature

#: Relative tolerance of the truncation comparison (float noise, not information).
RTOL = 1e-9


@attrs.frozen
class LeakageReport:
    """What the check found: ``problems`` is empty when no leak was seen."""

    problems: tuple[str, ...]
    rows_checked: int

    @property
    def ok(self) -> bool:
        """True when no feature read the future."""
        return not self.problems

    def raise_if_leaky(self) -> None:
        """``DataError`` naming every leaking feature."""
        if self.problems:
            raise DataError("feature leakage: " + "; ".join(self.problems))


def sample_rows(n: int, start: int, samples: int, seed: int) -> np.ndarray:
    """Deterministic decision bars to test: the first and last usable ones plus a
    seeded random draw in between."""
    if n <= start:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    picked = rng.choice(np.arange(start, n), size=min(samples, n - start), replace=False)
    return np.unique(np.concatenate([[start, n - 1], picked])).astype(np.int64)


def check_leakage(features: FeatureSet, bars: BarColumns, *, samples: int = 32,
                  seed: int = 0, matrix: FeatureMatrix | None = None) -> LeakageReport:
    """Run both tests on ``bars``; ``matrix`` reuses an already computed batch."""
    m = matrix if matrix is not None else features.batch(bars)
    problems: list[str] = []
    for j, key in enumerate(m.keys):
        late = m.known_ts_ns[:, j] > m.ts_ns
        if late.any():
            first = int(np.argmax(late))
            problems.append(f"{key}: {int(late.sum())} values known after their decision time "
                            f"(first at row {first}, ts_ns {int(m.ts_ns[first])})")
    problems += _own_window_problems(features, bars)
    rows = sample_rows(len(bars), max(features.warmup - 1, 0), samples, seed)
    changed: dict[str, tuple[int, str]] = {}
    for t in rows:
        cut_bars = _copy(bars.head(int(t) + 1))
        for j, f in enumerate(features.features):
            if f.key in changed:
                continue
            try:
                cut = batch_feature(f, cut_bars)[0][int(t)]
            except Exception as exc:  # a feature that fails on a shorter history
                changed[f.key] = (int(t), f"fails when the bars after it are removed "
                                          f"({type(exc).__name__}: {exc!s:.80})")
                continue
            if not np.isclose(cut, m.values[int(t), j], rtol=RTOL, atol=0.0, equal_nan=True):
                changed[f.key] = (int(t), "changes when the bars after it are removed "
                                          "(it reads the future)")
    for key, (row, what) in changed.items():
        problems.append(f"{key}: value at row {row} {what}")
    return LeakageReport(tuple(problems), int(rows.size))


def _copy(bars: BarColumns) -> BarColumns:
    """``bars`` in arrays of their own (``head`` is a view: its ``.base`` is every bar)."""
    c = {name: np.array(bars.column(name), copy=True) for name in COLUMNS}
    return BarColumns(c["ts_ns"], c["open"], c["high"], c["low"], c["close"], c["volume"],
                      source_sha256=bars.source_sha256)


def _own_window_problems(features: FeatureSet, bars: BarColumns) -> list[str]:
    """Features whose value on some row differs when the function is given that row's
    window alone (module docstring, test 2); one line per feature, its first such row."""
    problems = []
    for f in features.features:
        if len(bars) < f.lookback:
            continue
        windows = {c: sliding_window_view(bars.column(c), f.lookback) for c in COLUMNS}
        batch = f.fn(windows)
        try:
            batch = np.asarray(batch, dtype=np.float64)
        except (TypeError, ValueError):
            continue  # batch_feature already refused its shape
        n = batch.shape[0] if batch.ndim == 1 else 0
        alone = np.full(n, np.nan)
        first: int | None = None
        why = ""
        fn, cols = f.fn, list(windows.items())
        for i in range(n):
            try:
                alone[i] = np.asarray(fn({c: w[i:i + 1].copy() for c, w in cols}),
                                      dtype=np.float64).reshape(-1)[0]
            except Exception as exc:  # any failure on its own window is the finding
                first, why = i, f"fails ({type(exc).__name__}: {exc!s:.80})"
                break
        differ = ~np.isclose(alone, batch, rtol=RTOL, atol=0.0, equal_nan=True)
        if differ.any() and (first is None or int(np.argmax(differ)) < first):
            first = int(np.argmax(differ))
            why = f"is {alone[first]!r}, not the batch's {float(batch[first])!r}"
        if first is not None:
            row = first + f.lookback - 1 + f.lag  # the decision row its window serves
            problems.append(f"{f.key}: given the window of row {row} alone it {why} "
                            "(it reads other rows of the batch, e.g. bars after its window)")
    return problems
