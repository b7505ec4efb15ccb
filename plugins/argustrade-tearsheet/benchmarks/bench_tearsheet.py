"""Wall time of the whole trader's report on a 700k-bar run: the core's report with the
tearsheet's sections, sharing one read of the run, against the old shape (two reads, two
sets of plots) in the same run.

Usage (from the repository root)::

    python plugins/argustrade-tearsheet/benchmarks/bench_tearsheet.py
    python plugins/argustrade-tearsheet/benchmarks/bench_tearsheet.py --bars 100000 --repeat 3

Builds a run directory whose ledger holds ``--bars`` one-minute equity rows (a seeded
random walk from $100,000, written with ``Ledger.append_equity``), ``--trades`` round
trips of one strategy (two fills each, with fees and reasons) and a matching bars CSV
for the buy-and-hold benchmark, then times in the same process, interleaved, the median
of ``--repeat`` runs of each row:

* the whole report as ``argus backtest`` writes it: ``write_report`` with every installed
  plugin (the target: under 1 s); the core reads the run once and hands the sections its
  ``ReportData``; the tearsheet's interactive chart replaces the core's plots;
* the old shape, today's code: the core's report with builtins only (its SVG plots
  and its own read) plus ``tearsheet_sections`` reading the run itself;
* the parts: the core's read (``read_report_data``), the sections given it, and the
  sections reading the run themselves.

Each row shows wall seconds and the process's CPU seconds (on a shared machine the CPU
time is the closer guess at an idle core's wall time).  It asserts nothing (CONTRIBUTING:
speed claims are ratios measured in one run).  The process pins itself to one CPU unless
``--no-pin``; the cyclic GC is off while timing; the load average is printed before and
after.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from argus_tearsheet.plugin import tearsheet_sections
from argus_tearsheet.render import analyse, sections
from argus_tearsheet.run_data import from_report
from plotly.offline import get_plotlyjs

from argus_core import Ledger
from argus_core.config import parse_config
from argus_core.report import read_report_data, write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))  # machine.py
from machine import cpu_model, pin_to_one_core

MINUTE_S = 60
T0_S = 1_600_000_000
TARGET_S = 1.0
WHOLE = "whole report, every installed plugin (one read, shared)"
OLD = "old shape: core report (its plots) + sections reading the run"


def config_raw(bars_csv: Path) -> dict[str, Any]:
    """The run's config as a mapping (a replay of the written bars)."""
    return {"run": {"venue": "replay"},
            "plugins": {"replay": {"bars_csv": str(bars_csv), "bar_seconds": MINUTE_S}}}


def make_run(run_dir: Path, bars: int, trades: int, seed: int) -> Path:
    """The run directory described in the module doc; returns the bars CSV's path."""
    rng = np.random.default_rng(seed)
    close = 10_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, bars)))
    opened_s = T0_S + np.arange(bars, dtype=np.int64) * MINUTE_S
    stamps_ns = (opened_s + MINUTE_S) * 10**9  # bars are stamped at their close
    bars_csv = run_dir.parent / "bars.csv"
    c = np.round(close, 2)
    np.savetxt(bars_csv, np.column_stack([opened_s, c, c, c, c, np.ones(bars),
                                          np.ones(bars)]),
               fmt=["%d", "%.2f", "%.2f", "%.2f", "%.2f", "%d", "%d"], delimiter=",")
    held = np.zeros(bars, dtype=bool)
    cash = 100_000.0
    equity = np.full(bars, cash)
    orders, fills = [], []
    entries = np.sort(rng.choice(np.arange(0, bars - 200, 200), trades, replace=False))
    qty = 1.0
    for n, i in enumerate(entries):
        j = i + int(rng.integers(10, 190))
        fee_in, fee_out = c[i] * qty * 0.0026, c[j] * qty * 0.0026
        held[i:j] = True
        equity[i:j] = cash - fee_in + qty * (c[i:j] - c[i])
        cash += qty * (c[j] - c[i]) - fee_in - fee_out
        equity[j:] = cash
        for k, (bar, side, fee, why) in enumerate(((i, "buy", fee_in, "fast crossed above"),
                                                   (j, "sell", fee_out, "fast crossed below"))):
            coid = f"o{n}-{k}"
            ts = int(stamps_ns[bar])
            orders.append({"client_order_id": coid, "run_id": "bench", "venue": "replay",
                           "instrument_id": "replay:BTC/USD", "side": side, "quantity": "1",
                           "order_type": "market", "time_in_force": "ioc",
                           "strategy": "ma_cross", "ts_ns": ts, "status": "filled",
                           "filled_quantity": "1", "reason": why})
            fills.append({"fill_id": f"f{n}-{k}", "client_order_id": coid, "venue": "replay",
                          "instrument_id": "replay:BTC/USD", "side": side,
                          "price": f"{c[bar]:.2f}", "quantity": "1", "fee": f"{fee:.6f}",
                          "liquidity": "taker", "ts_ns": ts})
    config = {"run": {"starting_cash": "100000", "venue": "replay"},
              "plugins": {"replay": {"bars_csv": str(bars_csv), "bar_seconds": MINUTE_S}}}
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("bench", "replay", seed, json.dumps(config))
        with ledger.transaction():
            for row in orders:
                ledger.insert("orders", row)
            for row in fills:
                ledger.insert("fills", row)
            ledger.append_equity([
                (int(t), "0", repr(float(e)), "1" if h else "0")
                for t, e, h in zip(stamps_ns, equity, held, strict=True)])
        ledger.finish_run("bench")
    return bars_csv


def pin_every_thread() -> bool:
    """Pin every thread of this process to the main thread's CPU: ``pin_to_one_core``
    pins the calling thread, and threads started before it (thread pools made at import)
    would keep running on the other cores, beside it."""
    cpus = os.sched_getaffinity(0)
    try:
        for tid in os.listdir("/proc/self/task"):
            os.sched_setaffinity(int(tid), cpus)
    except OSError:
        return False
    return True


def both_times(fn: Callable[[], Any]) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of ``fn``, the cyclic GC collected first and off while it
    runs (as :func:`machine.timed`, which times wall only)."""
    gc.collect()
    gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        gc.enable()


def main() -> int:
    """Build the run, time the rows and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=700_000)
    parser.add_argument("--trades", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--repeat", type=int, default=5, help="median of N runs per row")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        pin_to_one_core()
        pin_every_thread()
    print(f"machine: {cpu_model()} | {platform.python_implementation()} "
          f"{platform.python_version()} | pinned to 1 core: {not args.no_pin} | "
          f"median of {args.repeat} | {args.bars:,} equity rows, {args.trades:,} trades")
    with tempfile.TemporaryDirectory(prefix="argus-bench-tearsheet-") as tmp:
        run_dir = Path(tmp) / "run"
        bars_csv = make_run(run_dir, args.bars, args.trades, args.seed)
        path = Path(tmp) / "config.toml"
        # No [argus] plugins list: every installed plugin, as `argus backtest` loads them.
        every = parse_config(config_raw(bars_csv), path)
        core_only = parse_config({"argus": {"plugins": []}, **config_raw(bars_csv)}, path)
        with Ledger.in_dir(run_dir) as ledger:
            data = read_report_data(ledger)

        def read() -> Any:
            with Ledger.in_dir(run_dir) as ledger:
                return read_report_data(ledger)

        rows: dict[str, Callable[[], Any]] = {
            WHOLE: lambda: write_report(run_dir, every),
            OLD: lambda: (write_report(run_dir, core_only), tearsheet_sections(run_dir, every)),
            "  core report, builtins only (SVG plots)":
                lambda: write_report(run_dir, core_only),
            "  core read of the run (read_report_data)": read,
            "  sections given the core's read": lambda: sections(analyse(
                from_report(data, run_dir), every)),
            "  sections reading the run themselves": lambda: tearsheet_sections(run_dir, every),
        }
        for fn in rows.values():  # warm: imports, plotly.js read once, page cache
            fn()
        load_before = os.getloadavg()
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for _ in range(args.repeat):  # interleaved, so drift hits every row alike
            for name, fn in rows.items():
                times[name].append(both_times(fn))
        load_after = os.getloadavg()
        width = max(map(len, rows))
        print(f"load average (1, 5, 15 min): before {_load(load_before)}, after "
              f"{_load(load_after)}\n")
        print(f"{'':<{width}}  {'wall s':>7}  {'CPU s':>7}")
        med = {name: (statistics.median(w for w, _c in runs),
                      statistics.median(c for _w, c in runs)) for name, runs in times.items()}
        for name, (wall, cpu) in med.items():
            print(f"{name:<{width}}  {wall:7.3f}  {cpu:7.3f}")
        print(f"\nold shape / whole report: {med[OLD][0] / med[WHOLE][0]:.2f}x wall, "
              f"{med[OLD][1] / med[WHOLE][1]:.2f}x CPU")
        wall, cpu = med[WHOLE]
        print(f"target {args.bars:,} bars in < {TARGET_S:.0f} s: "
              f"{'MET' if wall < TARGET_S else 'NOT MET'} in wall time here ({wall:.3f} s); "
              f"CPU {cpu:.3f} s")
        html = sections(analyse(from_report(data, run_dir), every))
        size = sum(len(v) for v in html.values())
        print(f"sections' HTML: {size / 1e6:.1f} MB (plotly.js {len(get_plotlyjs()) / 1e6:.1f} "
              f"MB of it, once)")
    return 0


def _load(avg: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in avg)


if __name__ == "__main__":
    raise SystemExit(main())
