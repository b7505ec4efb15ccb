"""Wall time of every deploy gate on the bundled VRP example, per executor.

Runs ``evaluate_config`` on ``examples/vrp/vrp.toml`` (full 2012-2021 SPY+QQQ replay: 3
cost backtests, 4 sweep backtests, walk-forward, 10,000 bootstrap paths, RC/SPA, regime
stress) with a fresh lab folder per executor -- in-process (serial), a local process
pool, and a Dask LocalCluster of worker processes -- prints seconds, the ratio to
serial, and checks the stored verdicts are identical.

    python benchmarks/lab/bench_gates.py [--workers 2] [--skip-serial]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from argus_lab.executor import DaskExecutor, LocalExecutor, SerialExecutor
from argus_lab.gates import evaluate_config

from argus_core.config import apply_overrides, load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import machine_line

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vrp" / "vrp.toml"


def main() -> None:
    """Time the gates per executor and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-serial", action="store_true")
    args = ap.parse_args()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="argus-bench-gates-") as tmp:
        def run(name: str, executor: object) -> None:
            config = apply_overrides(load_config(EXAMPLE), {"plugins.lab.dir": f"{tmp}/{name}"})
            t0 = time.perf_counter()
            verdict = evaluate_config(config, executor=executor)
            rows.append((name, time.perf_counter() - t0,
                         json.dumps([verdict.verdict, verdict.reasons, verdict.details],
                                    sort_keys=True, default=str)))

        if not args.skip_serial:
            run("serial", SerialExecutor())
        with LocalExecutor(args.workers) as ex:
            run(f"local pool, {args.workers} processes", ex)
        from distributed import LocalCluster

        with (LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.WARNING) as cluster,
              DaskExecutor(cluster.scheduler_address) as ex):
            run(f"Dask LocalCluster, {args.workers} workers", ex)
    base = rows[0][1]
    print(machine_line())
    print(f"deploy gates on {EXAMPLE.name}")
    print(f"{'executor':<32}{'seconds':>9}{'x first':>9}")
    for name, secs, _ in rows:
        print(f"{name:<32}{secs:>9.1f}{base / secs:>9.2f}")
    same = len({r[2] for r in rows}) == 1
    print(f"verdict, reasons and figures identical on every executor: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
