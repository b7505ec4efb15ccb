"""Wall time of ``argus report`` (``write_report``) on a 700k-bar run, new plots vs naive.

Usage::

    python benchmarks/report/bench_report.py                 # 700,000 bars, best of 2
    python benchmarks/report/bench_report.py --bars 100000 --repeat 3

Builds a run directory whose ledger holds ``--bars`` equity rows (a seeded random walk
from $100,000 on one-minute stamps, no fills) and times, in the same process:

* ``write_report`` as shipped: numpy datetime64 stamps, plots min/max-decimated to
  the figure's pixel width (``argus_core.downsample``);
* ``write_report`` with the naive plots (:func:`naive_plots`, the report's plotting
  before issue 14 item 4, kept here only): one Python ``datetime`` per point, shared
  by both plots, and every point handed to matplotlib;
* each plotting path alone, on the equity series already in memory (the rest of
  ``write_report`` -- ledger reads, metrics, plays -- is the same code in both).

Both pages are checked identical apart from their PNGs.  The process pins itself to
one CPU, turns the cyclic GC off while timing and reports the best of ``--repeat``
runs, interleaved.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from argus_core import report
from argus_core.ledger import Ledger
from argus_core.metrics import drawdown, equity_series

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import cpu_model, pin_to_one_core, timed

MINUTE_NS = 60 * 10**9
TARGET_S = 1.0
NAIVE, SHIPPED = "write_report, naive plots", "write_report, shipped"
NAIVE_PLOTS = "plots alone, naive (datetimes, every point)"
PLOTS = "plots alone, shipped (datetime64, min/max)"


def make_run(run_dir: Path, bars: int, seed: int) -> None:
    """A ledger with ``bars`` equity rows of a seeded random walk (0.1% per bar)."""
    rng = np.random.default_rng(seed)
    equity = 100_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, bars)))
    ts = 1_600_000_000 * 10**9 + np.arange(bars, dtype=np.int64) * MINUTE_NS
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("bench", "replay", seed, json.dumps(  # builtins only: the core report
            {"argus": {"plugins": []}, "run": {"starting_cash": "100000"}}))
        with ledger.transaction():
            ledger.append_equity([(int(t), "0", repr(float(e)), "0")
                                  for t, e in zip(ts, equity, strict=True)])
        ledger.finish_run("bench")


def naive_plots(ts_ns: np.ndarray, equity: np.ndarray) -> str:
    """The report's plots as they were before issue 14 item 4 (copied, benchmark only):
    one Python datetime per point, shared by both plots, and every point drawn."""
    if not len(equity):
        return ""
    dates = np.array([datetime.fromtimestamp(t / 1e9, UTC) for t in ts_ns], dtype=object)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(dates, equity, color="#1f6feb", lw=1.2)
    ax.set_title("Equity")
    ax.grid(alpha=0.3)
    plots = f'<img alt="equity curve" src="data:image/png;base64,{report._png(fig)}">'
    fig, ax = plt.subplots(figsize=(10, 2.6))
    ax.fill_between(dates, -100 * drawdown(equity), 0, color="#d73a49", alpha=0.5)
    ax.set_title("Drawdown (%)")
    ax.grid(alpha=0.3)
    return plots + f'<img alt="drawdown" src="data:image/png;base64,{report._png(fig)}">'


@contextmanager
def naive_report() -> Iterator[None]:
    """``write_report`` with :func:`naive_plots` in place of its own."""
    shipped = report._plots
    report._plots = naive_plots
    try:
        yield
    finally:
        report._plots = shipped


def main() -> int:
    """Build the run, time the four rows and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=700_000)
    parser.add_argument("--seed", type=int, default=20241114)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per row")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        pin_to_one_core()
    print(f"machine: {cpu_model()} | {platform.python_implementation()} "
          f"{platform.python_version()} | pinned to 1 core: {not args.no_pin} | "
          f"best of {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="argus-bench-report-") as tmp:
        run_dir = Path(tmp) / "run"
        make_run(run_dir, args.bars, args.seed)

        def page() -> str:
            return report.write_report(run_dir).read_text()

        def naive_page() -> str:
            with naive_report():
                return page()

        with Ledger.in_dir(run_dir) as ledger:
            ts, eq = equity_series(ledger)
        # Interleaved, so a burst of load on the shared machine hits both alike.
        rows: dict[str, tuple[float, str]] = {}
        for _ in range(max(1, args.repeat)):
            for label, fn in ((NAIVE, naive_page), (SHIPPED, page),
                              (NAIVE_PLOTS, lambda: naive_plots(ts, eq)),
                              (PLOTS, lambda: report._plots(ts, eq))):
                run = timed(fn)
                rows[label] = min(rows.get(label, run), run, key=lambda r: r[0])
    texts = [re.sub(r"base64,[^\"]*\"", "", rows[k][1]) for k in (SHIPPED, NAIVE)]
    assert texts[0] == texts[1], "the pages' text differs"
    columns = int(10 * report.DPI)
    print(f"\n{args.bars:,} equity rows (seeded random walk, one-minute stamps); plots "
          f"decimated to {columns:,} columns; both pages identical apart from their PNGs\n")
    print(f"{'':<46} {'seconds':>8} {'x naive':>8}")
    for label, base in ((NAIVE, NAIVE), (SHIPPED, NAIVE), (NAIVE_PLOTS, NAIVE_PLOTS),
                        (PLOTS, NAIVE_PLOTS)):
        secs = rows[label][0]
        print(f"{label:<46} {secs:>8.2f} {rows[base][0] / secs:>7.1f}x")
    whole, plots = rows[SHIPPED][0], rows[PLOTS][0]
    print(f"\ntarget {args.bars:,} bars in < {TARGET_S:.0f} s: plots "
          f"{'MET' if plots < TARGET_S else 'NOT MET'} ({plots:.2f} s); whole report "
          f"{'MET' if whole < TARGET_S else 'NOT MET'} ({whole:.2f} s; the rest is reading "
          f"the equity rows once: apsw fetch and decimal text to float)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
