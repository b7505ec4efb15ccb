"""The point-in-time (leakage) check: no feature may read data stamped after its
decision time.

Two independent tests, both must pass:

1. **stamps**: every value's known-time (the close of the newest bar it read) is at or
   before its row's decision time;
2. **truncation**: for sampled decision bars ``t``, recomputing the features on the
   history cut at ``t`` (nothing after it exists) gives the same values as the full
   batch run.  A feature that normalises by statistics of the whole history, or whose
   batch path is shifted, changes value when the future is removed.

A planted leak of each kind is caught in ``tests/test_ml_leakage.py``.
"""

from __future__ import annotations

import attrs
import numpy as np

from argus_core import DataError
from argus_ml.bars import BarColumns
from argus_ml.features import FeatureMatrix, FeatureSet

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
    rows = sample_rows(len(bars), max(features.warmup - 1, 0), samples, seed)
    changed: dict[str, int] = {}
    for t in rows:
        cut = features.batch(bars.head(int(t) + 1)).values[int(t)]
        full = m.values[int(t)]
        same = np.isclose(cut, full, rtol=RTOL, atol=0.0, equal_nan=True)
        for col in np.flatnonzero(~same):
            changed.setdefault(m.keys[int(col)], int(t))
    for key, row in changed.items():
        problems.append(f"{key}: value at row {row} changes when the bars after it are removed "
                        "(it reads the future)")
    return LeakageReport(tuple(problems), int(rows.size))
