"""A 1,000-point SMA grid over the 70k bundled bars: the lab's compiled kernel, vectorbt
and the event loop, timed in one run on one machine.

    pip install vectorbt          # the comparison only; the lab never imports it
    python benchmarks/sweep/bench_sweep.py [--points 1000] [--loop-sample 3] [--dask 2]

* **kernel**: ``argus_lab.compiled.run_kernel`` over the whole grid, fills and final
  equity per point (compile time excluded: a warm-up call runs first);
* **compiled sweep**: the same plus every point's equity rows and the exact metrics the
  lab stores (``point_metrics``), i.e. the sweep's compiled path without the ledger
  writes;
* **vectorbt**: ``vbt.MA.run`` for both windows, ``fast > slow`` as the position wanted,
  signals shifted one bar and filled at the next bar's open (``Portfolio.from_signals``
  with ``price=open``), fees and slippage as fractions of the price, 5% of cash per entry,
  in chunks of 100 columns (memory);
* **event loop**: ``run_backtest`` on ``--loop-sample`` points of the grid, scaled to the
  whole grid per point; the kernel's fills on those points are checked against the
  loop's (identical or the script fails).

What vectorbt does not do that the loop and the kernel do: prices rounded onto the
data's tick against the trader, quantities floored to the lot, a fill limited to five
levels of 10% of the bar's volume (partial fills; the rest of an IOC order cancelled),
spread and slippage as two multiplications rounded to the tick (vectorbt: one fraction),
the per-play cap.  Its totals therefore differ a little; the script prints how much.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from argus_lab import compiled

from argus_core import Config, apply_overrides, load_config, run_backtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import cpu_model, timed, versions

ROOT = Path(__file__).resolve().parents[2]
CONFIG = f"""
[argus]
plugins = []
mode = "replay"
[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "fixed_fraction"
risk_checks = ["per_play_cap"]
starting_cash = "100000"
[paper]
bar_spread_bps = "2"
bar_depth_fraction = 0.1
slippage_bps = "1"
[plugins.replay]
bars_csv = "{ROOT / 'examples' / 'data' / 'kraken_XBTUSD_60.csv'}"
taker_bps = "26"
[plugins.sizing]
fraction = "0.05"
"""
TAKER, SPREAD, SLIP, FRACTION = 0.0026, 0.0002, 0.0001, 0.05


def grid(points: int) -> list[tuple[int, int]]:
    """``points`` (fast, slow) pairs: fast 5, 7, ...; slow 60, 70, ... (fast < slow)."""
    n_fast = max(1, round(points ** 0.5 * 0.8))
    n_slow = -(-points // n_fast)
    pairs = [(5 + 2 * i, 60 + 10 * j) for i in range(n_fast) for j in range(n_slow)]
    return pairs[:points]


def load_avg() -> str:
    """The 1/5/15-minute load averages."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_vectorbt(prep: compiled.Prepared, opens: np.ndarray, pairs: list[tuple[int, int]]
                 ) -> np.ndarray:
    """Final portfolio values of every pair with vectorbt (chunks of 100 columns)."""
    import pandas as pd
    import vectorbt as vbt

    close = pd.Series(prep.close, index=pd.to_datetime(prep.ts, unit="ns"))
    out = []
    for lo in range(0, len(pairs), 100):
        part = pairs[lo:lo + 100]
        fast = vbt.MA.run(close, window=[f for f, _ in part], short_name="fast")
        slow = vbt.MA.run(close, window=[s for _, s in part], short_name="slow")
        want = fast.ma.to_numpy() > slow.ma.to_numpy()  # NaN (warm-up) compares False
        entries = np.zeros_like(want)
        exits = np.zeros_like(want)
        entries[1:] = want[:-1]  # decided at a bar's close, filled at the next open
        exits[1:] = ~want[:-1]
        pf = vbt.Portfolio.from_signals(
            np.repeat(close.to_numpy()[:, None], len(part), axis=1), entries, exits,
            price=np.repeat(opens[:, None], len(part), axis=1),
            size=FRACTION, size_type="percent", fees=TAKER,
            slippage=(1 + SPREAD) * (1 + SLIP) - 1, init_cash=100_000.0, freq="1h")
        out.append(np.asarray(pf.final_value(), dtype=np.float64))
    return np.concatenate(out)


def main() -> None:
    """Time the three engines on one grid and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--loop-sample", type=int, default=3)
    ap.add_argument("--dask", type=int, default=0, metavar="N",
                    help="also run the compiled sweep on a Dask LocalCluster of N workers")
    ap.add_argument("--skip-vectorbt", action="store_true")
    ap.add_argument("--start", default=None, metavar="DATE",
                    help="replay from this date (default: all 70k bars)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="argus-bench-sweep-") as tmp:
        path = Path(tmp) / "sweep.toml"
        path.write_text(CONFIG)
        config: Config = load_config(path)
        if args.start:
            config = apply_overrides(config, {"plugins.replay.start": args.start})
        load_before = load_avg()
        t_prep, prep = timed(lambda: compiled.prepare(config))
        opens = np.array([b.open for b in _bars(config)], dtype=np.float64)
        pairs = grid(args.points)
        compiled.run_kernel(prep, pairs[:2])  # compile / load the numba cache
        t_kernel, kps = timed(lambda: compiled.run_kernel(prep, pairs, want_equity=False))
        bad = sum(kp.status != 0 for kp in kps)

        def full() -> int:
            n = 0
            for lo in range(0, len(pairs), 64):
                for kp in compiled.run_kernel(prep, pairs[lo:lo + 64]):
                    compiled.point_metrics(prep, kp)
                    n += 1
            return n

        t_full, _ = timed(full)
        rows = [("compiled kernel (fills, final equity)", t_kernel),
                ("compiled sweep (+ equity rows, exact metrics)", t_full)]
        vbt_final = None
        if not args.skip_vectorbt:
            run_vectorbt(prep, opens, pairs[:2])  # compile vectorbt's numba functions
            t_vbt, vbt_final = timed(lambda: run_vectorbt(prep, opens, pairs))
            rows.append(("vectorbt (from_signals, next-open fills)", t_vbt))
        sample = [pairs[i] for i in np.linspace(0, len(pairs) - 1, args.loop_sample,
                                                dtype=int)]
        t_loop = 0.0
        for fast, slow in sample:
            cfg = apply_overrides(config, {"plugins.example.fast": fast,
                                           "plugins.example.slow": slow})
            t, res = timed(lambda cfg=cfg: run_backtest(cfg, Path(tempfile.mkdtemp(dir=tmp))))
            t_loop += t
            kp = compiled.run_kernel(prep, [(fast, slow)])[0]
            loop_fills = [(f.ts_ns, f.side.value, Decimal(f.price), Decimal(f.quantity),
                           Decimal(f.fee)) for f in res.fills]
            if compiled.fill_rows(prep, kp) != loop_fills or \
                    compiled.final_equity(prep, kp) != res.summary.final_equity:
                raise SystemExit(f"kernel and event loop differ at fast={fast}, slow={slow}")
        per_point = t_loop / len(sample)
        rows.append((f"event loop ({len(sample)} points, x {len(pairs)})",
                     per_point * len(pairs)))
        if args.dask:
            rows.append((f"compiled sweep on Dask LocalCluster, {args.dask} workers",
                         dask_sweep(config, pairs, args.dask)))
        load_after = load_avg()
    import numba

    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads)" + ("" if args.skip_vectorbt else
                                                    f", vectorbt {_vbt_version()}"))
    print(f"load average (1/5/15 min): before {load_before}; after {load_after}")
    print(f"under the peers: {versions('numpy', 'pandas')}")
    print(f"grid: {len(pairs)} (fast, slow) points over {prep.ts.size:,} bars; "
          f"series prepared once in {t_prep:.2f} s (excluded); {bad} points refused")
    base = rows[0][1]
    print(f"{'engine':<52}{'seconds':>10}{'x kernel':>10}")
    for name, secs in rows:
        print(f"{name:<52}{secs:>10.2f}{secs / base:>10.1f}")
    if vbt_final is not None:
        ours = np.array([float(compiled.final_equity(prep, kp)) for kp in kps])
        gap = np.abs(vbt_final - ours) / ours
        print(f"final equity, vectorbt vs the loop's rules: median gap {np.median(gap):.3%},"
              f" max {gap.max():.3%} (ticks, lots, depth and the cap are not in vectorbt)")
    print(f"kernel fills identical to the event loop on {len(sample)} sampled points: yes")


def dask_sweep(config: Config, pairs: list[tuple[int, int]], workers: int) -> float:
    """Seconds to run the compiled grid in chunks on a LocalCluster (workers started and
    the series prepared before the clock); fails unless every point's metrics equal the
    same chunks' run in this process."""
    import logging

    from argus_lab.executor import DaskExecutor
    from distributed import LocalCluster

    points = [(f"{f}-{s}", {"plugins.example.fast": f, "plugins.example.slow": s})
              for f, s in pairs]
    plan = compiled.plan_sweep(config, points, chunk_size=-(-len(points) // (2 * workers)))
    here = [compiled.run_compiled_chunk(chunk) for chunk in plan.chunks]
    with (LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                       dashboard_address=None, silence_logs=logging.WARNING) as cluster,
          DaskExecutor(cluster.scheduler_address) as ex):
        ex.map(compiled.run_compiled_chunk, plan.chunks[:workers])  # workers prepare
        t0 = time.perf_counter()
        remote = ex.map(compiled.run_compiled_chunk, plan.chunks)
        secs = time.perf_counter() - t0
    for a, b in zip(here, remote, strict=True):
        for x, y in zip(a.outcomes, b.outcomes, strict=True):
            if x.metrics != y.metrics or not np.array_equal(x.returns, y.returns):
                raise SystemExit(f"Dask result differs at point {x.point_id}")
    return secs


def _bars(config: Config) -> list[Any]:
    """The replayed bars (the replay venue's synchronous ``events()``)."""
    from argus_core import build_venue

    return list(getattr(build_venue(config), "events")())  # noqa: B009  (ReplayVenue only)


def _vbt_version() -> str:
    import vectorbt as vbt

    return str(vbt.__version__)


if __name__ == "__main__":
    main()
