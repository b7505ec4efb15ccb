"""How often does the PSI drift alarm fire on the bundled Kraken bars?

Walk forward over ``examples/data/kraken_XBTUSD_60.csv``: every ``--step`` bars, the
``--train`` bars before are the training data (deciles and calibrated thresholds, as
``argus ml train`` makes them) and the ``--test`` bars after are monitored as the live
forecaster does (500-row windows, a check per row), three ways: as they were, and with
every log move from the split on doubled and tripled (a real volatility shift).  Prints
the share of splits in which any feature alarmed, under the old fixed limit and under the
calibrated thresholds (the README's table)::

    python plugins/argustrade-ml/scripts/drift_walkforward.py [--since-year 2019]
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import numpy as np
from argus_ml.bars import BarColumns
from argus_ml.drift import calibrate_psi, reference_bins, rolling_psi
from argus_ml.features import FeatureRegistry

DATA = Path(__file__).resolve().parents[3] / "examples" / "data" / "kraken_XBTUSD_60.csv"


def _features(rows: np.ndarray) -> np.ndarray:
    bars = BarColumns((rows[:, 0].astype(np.int64) + 3600) * 10**9,
                      *(np.ascontiguousarray(rows[:, i]) for i in range(1, 6)))
    values = FeatureRegistry.default().select(None).batch(bars).values
    return values[~np.isnan(values).any(axis=1)]


def _scaled(rows: np.ndarray, anchor: int, power: float) -> np.ndarray:
    out = rows.copy()
    c0 = out[anchor, 1]
    out[anchor:, 1:5] = c0 * (out[anchor:, 1:5] / c0) ** power
    return out


def _alarms(train: np.ndarray, test: np.ndarray, keys: tuple[str, ...], *, window: int,
            limit: float, quantile: float, consecutive: int) -> tuple[bool, bool]:
    """Whether (fixed limit, calibrated thresholds) alarm anywhere in ``test``."""
    ref = {k: reference_bins(train[:, j]) for j, k in enumerate(keys)}
    cal = calibrate_psi(train, keys, ref, window=window, quantile=quantile)
    assert cal is not None
    fixed = calibrated = False
    for j, k in enumerate(keys):
        live = rolling_psi(ref[k], test[:, j], window)
        fixed |= bool((live > limit).any())
        above = live > max(limit, cal["features"][k]["threshold"])
        streak = 0
        for a in above:
            streak = streak + 1 if a else 0
            calibrated |= streak >= consecutive
    return fixed, calibrated


def main() -> None:
    """Run the walk-forward and print the alarm rates."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--step", type=int, default=1000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--limit", type=float, default=0.25)
    ap.add_argument("--quantile", type=float, default=0.99)
    ap.add_argument("--consecutive", type=int, default=1)
    ap.add_argument("--since-year", type=int, default=0)
    a = ap.parse_args()
    table = np.loadtxt(DATA, delimiter=",", ndmin=2, usecols=range(6))
    keys = FeatureRegistry.default().select(None).keys
    warm = 100  # bars before the split, so the test's first features are complete
    counts = {(kind, rule): 0 for kind in ("ordinary", "x2", "x3")
              for rule in ("fixed", "calibrated")}
    splits = 0
    for s0 in range(0, len(table) - a.train - a.test, a.step):
        split = s0 + a.train
        if datetime.datetime.fromtimestamp(table[split, 0], datetime.UTC).year < a.since_year:
            continue
        splits += 1
        train = _features(table[s0:split])
        for kind, power in (("ordinary", 1.0), ("x2", 2.0), ("x3", 3.0)):
            test = _features(_scaled(table[split - warm:split + a.test], warm, power))
            fixed, calibrated = _alarms(train, test, keys, window=a.window, limit=a.limit,
                                        quantile=a.quantile, consecutive=a.consecutive)
            counts[kind, "fixed"] += fixed
            counts[kind, "calibrated"] += calibrated
    print(f"{splits} splits ({a.train} training bars, {a.test} monitored, every {a.step})")
    for kind in ("ordinary", "x2", "x3"):
        print(f"  {kind:<9} fixed {a.limit}: {counts[kind, 'fixed']}/{splits}   calibrated "
              f"q{a.quantile:g}, k={a.consecutive}: {counts[kind, 'calibrated']}/{splits}")


if __name__ == "__main__":
    main()
