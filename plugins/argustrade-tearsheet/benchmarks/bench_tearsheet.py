"""Wall time of the trader's report sections on a 700k-bar run, beside the core's report.

Usage (from the repository root)::

    python plugins/argustrade-tearsheet/benchmarks/bench_tearsheet.py
    python plugins/argustrade-tearsheet/benchmarks/bench_tearsheet.py --bars 100000 --repeat 3

Builds a run directory whose ledger holds ``--bars`` one-minute equity rows (a seeded
random walk from $100,000, written with ``Ledger.append_equity``), ``--trades`` round
trips of one strategy (two fills each, with fees and reasons) and a matching bars CSV
for the buy-and-hold benchmark, then times in the same process, best of ``--repeat``:

* the sections: ``tearsheet_sections`` (ledger read, metrics, trades, benchmark,
  downsampled Plotly charts, HTML), and its parts;
* the core's ``write_report`` without them (matplotlib PNGs, metrics, plays).

It prints the times and their ratio; it asserts nothing (CONTRIBUTING: speed claims are
ratios measured in one run).  The process pins itself to one CPU unless ``--no-pin``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from argus_tearsheet.plugin import tearsheet_sections
from argus_tearsheet.render import analyse, sections
from argus_tearsheet.run_data import load_run
from plotly.offline import get_plotlyjs

from argus_core import Ledger
from argus_core.config import parse_config
from argus_core.report import write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))  # machine.py
from machine import cpu_model, pin_to_one_core, timed

MINUTE_S = 60
T0_S = 1_600_000_000


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


def main() -> int:
    """Build the run, time the rows and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=700_000)
    parser.add_argument("--trades", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per row")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        pin_to_one_core()
    print(f"machine: {cpu_model()} | {platform.python_implementation()} "
          f"{platform.python_version()} | pinned to 1 core: {not args.no_pin} | "
          f"best of {args.repeat} | {args.bars:,} equity rows, {args.trades:,} trades")
    with tempfile.TemporaryDirectory(prefix="argus-bench-tearsheet-") as tmp:
        run_dir = Path(tmp) / "run"
        bars_csv = make_run(run_dir, args.bars, args.trades, args.seed)
        config = parse_config(config_raw(bars_csv), Path(tmp) / "config.toml")
        tearsheet_sections(run_dir, config)  # warm: imports, plotly.js read once
        data = load_run(run_dir)
        report = analyse(data, config)
        # write_report collects every loaded plugin's sections: builtins only for the
        # core's own row, the tearsheet alone for the whole trader's report.
        core_only = parse_config({"argus": {"plugins": []}, **config_raw(bars_csv)},
                                 Path(tmp) / "config.toml")
        with_tearsheet = parse_config({"argus": {"plugins": ["tearsheet"]},
                                       **config_raw(bars_csv)}, Path(tmp) / "config.toml")
        rows = {
            "tearsheet sections, all (read + analyse + render)":
                lambda: tearsheet_sections(run_dir, config),
            "  read the ledger (equity rows, compute_metrics)":
                lambda: load_run(run_dir),
            "  analyse (trades, per strategy, buy-and-hold)": lambda: analyse(data, config),
            "  render (tables, downsampled Plotly charts, HTML)": lambda: sections(report),
            "core write_report (no plugin sections)":
                lambda: write_report(run_dir, core_only),
            "whole report (core + the tearsheet's sections)":
                lambda: write_report(run_dir, with_tearsheet),
        }
        best: dict[str, float] = {}
        for _ in range(args.repeat):  # interleaved, so drift hits every row alike
            for name, fn in rows.items():
                seconds, _out = timed(fn)
                best[name] = min(best.get(name, seconds), seconds)
        width = max(map(len, best))
        for name, seconds in best.items():
            print(f"{name:<{width}}  {seconds:7.3f} s")
        sections_s = best["tearsheet sections, all (read + analyse + render)"]
        core_s = best["core write_report (no plugin sections)"]
        print(f"sections / core write_report: {sections_s / core_s:.2f}x")
        page = sections(report)
        size = sum(len(v) for v in page.values())
        library = len(get_plotlyjs())
        print(f"sections' HTML: {size / 1e6:.1f} MB (plotly.js {library / 1e6:.1f} MB of it, "
              f"once)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
