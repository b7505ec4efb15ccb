"""Stationary bootstrap of trade P&L: numba kernel vs a plain numpy reference.

10,000 paths x 1,000 trades with max drawdown, final equity, ruin and Sharpe per path.
Run: ``python benchmarks/lab/bench_bootstrap.py`` (prints a ratio table).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np
from argus_lab.bootstrap import BootstrapSpec, bootstrap_numpy, bootstrap_paths

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import machine_line


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    pnl = np.random.default_rng(0).normal(30.0, 400.0, 1000)
    spec = BootstrapSpec(n_paths=10_000, n_trades=1000, mean_block=5.0, seed=1)
    bootstrap_paths(pnl, spec)  # compile (cached on disk afterwards)
    rows = []
    for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
        numba.set_num_threads(threads)
        t = best_of(lambda: bootstrap_paths(pnl, spec), 5)
        rows.append((f"numba, {threads} thread(s)", t))
    t_np = best_of(lambda: bootstrap_numpy(pnl, spec), 2)
    rows.append(("plain numpy", t_np))
    print(machine_line(f"numba {numba.__version__} | numpy {np.__version__}"))
    print(f"{'implementation':<24}{'seconds':>10}{'x numpy':>10}")
    for name, t in rows:
        print(f"{name:<24}{t:>10.3f}{t_np / t:>10.1f}")


if __name__ == "__main__":
    main()
