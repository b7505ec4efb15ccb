"""Wall time of ``argus report`` (``write_report``) on a 700k-bar run, SVG plots vs PNGs.

Usage::

    python benchmarks/report/bench_report.py                 # 700,000 bars, median of 3
    python benchmarks/report/bench_report.py --bars 100000 --repeat 5

Builds a run directory whose ledger holds ``--bars`` equity rows (a seeded random walk
from $100,000 on one-minute stamps, no fills) and times, in the same process:

* ``write_report`` with builtins only, as shipped: the plots min/max-decimated to their
  width in pixels (``argus_core.downsample``) and written as inline SVG by hand;
* ``write_report`` with the matplotlib PNGs it drew before (:func:`png_plots`, copied
  here only): the same decimated points, datetime64 stamps, rendered by matplotlib's Agg
  backend and embedded as base64 PNG;
* ``write_report`` with the naive plots (:func:`naive_plots`, the report's plotting
  before issue 14 item 4, kept here only): one Python ``datetime`` per point, shared
  by both plots, and every point handed to matplotlib;
* each plotting path alone, on the equity series already in memory (the rest of
  ``write_report`` -- ledger reads, metrics, plays -- is the same code in both);
* reading the equity series: as shipped (one scan in rowid order) and as it was
  (:func:`old_equity_read`: an aggregate ``ORDER BY``, which sorts every row again);
* ``write_report`` with every installed plugin, as ``argus backtest`` writes it (with
  ``argustrade-tearsheet`` installed its interactive chart replaces the PNGs; this run
  has no trades and no bars file, so ``plugins/argustrade-tearsheet/benchmarks`` is the
  fuller trader's-report benchmark).

The builtins-only pages are checked identical apart from their plots, and both reads
equal.  The matplotlib rows need matplotlib (no longer a dependency of the core; they are
left out without it) and time it already imported: a whole process also pays ~0.3-0.5 s
to import it (``benchmarks/loop/bench_process.py`` measures that).  The process pins
every thread to one CPU, turns the cyclic GC off while timing and reports the median of
``--repeat`` interleaved runs of each row, wall and CPU seconds, and the load average
before and after.
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from argus_core import report
from argus_core.config import parse_config
from argus_core.downsample import envelope_indices
from argus_core.ledger import Ledger
from argus_core.metrics import drawdown, equity_series

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import cpu_model, pin_to_one_core

MINUTE_NS = 60 * 10**9
TARGET_S = 1.0
NAIVE, PNG = "write_report, naive plots", "write_report, matplotlib PNGs (min/max)"
SHIPPED = "write_report, shipped (SVG)"
NAIVE_PLOTS = "plots alone, naive (datetimes, every point)"
PNG_PLOTS = "plots alone, matplotlib PNGs (min/max)"
PLOTS = "plots alone, shipped (SVG, min/max)"
NEEDS_MATPLOTLIB = (NAIVE, PNG, NAIVE_PLOTS, PNG_PLOTS)
DPI = 110  # the PNGs' resolution: 10-inch figures, 1,100 pixel columns
OLD_READ = "equity read, as it was (aggregate ORDER BY)"
SCAN = "equity read, scan + decimal parse"
READ = "equity read, shipped (scan + integer parse)"
EVERY = "write_report, every installed plugin"


E8 = Decimal("1e-8")  # the runner's equity rows are quantized to this


def old_equity_read(ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """``metrics.equity_series`` as it was (copied, benchmark only): the aggregate's own
    ``ORDER BY`` makes SQLite sort every row, though the rowid order is time order."""
    ts_text, eq_text = (str(v or "") for v in ledger.conn.execute(
        "select group_concat(ts_ns, ',' order by ts_ns), "
        "group_concat(equity, ',' order by ts_ns) from equity").fetchall()[0])
    return (np.fromstring(ts_text, dtype=np.int64, sep=","),
            np.fromstring(eq_text, dtype=np.float64, sep=","))


def scan_equity_read(ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """The rowid-order scan with numpy's decimal parse (the read before
    ``metrics.decimal_column``; benchmark only)."""
    ts_text, eq_text = (str(v or "") for v in ledger.conn.execute(
        "select group_concat(ts_ns, ','), group_concat(equity, ',') from equity"
    ).fetchall()[0])
    return (np.fromstring(ts_text, dtype=np.int64, sep=","),
            np.fromstring(eq_text, dtype=np.float64, sep=","))


def pin_every_thread() -> None:
    """Pin every thread to the main thread's CPU (threads started at import, before
    ``pin_to_one_core``, would otherwise run beside it)."""
    cpus = os.sched_getaffinity(0)
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), cpus)


def timed_both(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall s, CPU s, result)`` of ``fn``, the cyclic GC collected first and off."""
    gc.collect()
    gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        return time.perf_counter() - wall, time.process_time() - cpu, out
    finally:
        gc.enable()


def make_run(run_dir: Path, bars: int, seed: int) -> None:
    """A ledger with ``bars`` equity rows of a seeded random walk (0.1% per bar), written
    as the runner writes them (exact decimal text quantized to 1e-8)."""
    rng = np.random.default_rng(seed)
    equity = 100_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, bars)))
    ts = 1_600_000_000 * 10**9 + np.arange(bars, dtype=np.int64) * MINUTE_NS
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("bench", "replay", seed, json.dumps(  # builtins only: the core report
            {"argus": {"plugins": []}, "run": {"starting_cash": "100000"}}))
        with ledger.transaction():
            ledger.append_equity([(int(t), "0", str(Decimal(repr(float(e))).quantize(E8)), "0")
                                  for t, e in zip(ts, equity, strict=True)])
        ledger.finish_run("bench")


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (benchmark only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    """The figure as base64 PNG, as the report rendered it (fixed margins, one draw)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def png_plots(ts_ns: np.ndarray, equity: np.ndarray) -> str:
    """The report's plots as they were before the SVG (copied, benchmark only): the same
    min/max envelope at the figures' pixel width, rendered by matplotlib."""
    if not len(equity):
        return ""
    plt = _pyplot()
    margins = {"left": 0.085, "right": 0.99, "top": 0.88, "bottom": 0.14}
    parts = []
    for height, values, title in ((3.6, equity, "Equity"),
                                  (2.6, -100 * drawdown(equity), "Drawdown (%)")):
        fig, ax = plt.subplots(figsize=(10, height), gridspec_kw=margins)
        keep = envelope_indices(ts_ns, values, int(fig.get_figwidth() * DPI))
        if title == "Equity":
            ax.plot(ts_ns[keep].astype("datetime64[ns]"), values[keep], color="#1f6feb", lw=1.2)
        else:
            ax.fill_between(ts_ns[keep].astype("datetime64[ns]"), values[keep], 0,
                            color="#d73a49", alpha=0.5)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        parts.append(f'<img alt="{title}" src="data:image/png;base64,{_png(fig)}">')
    return "".join(parts)


def naive_plots(ts_ns: np.ndarray, equity: np.ndarray) -> str:
    """The report's plots as they were before issue 14 item 4 (copied, benchmark only):
    one Python datetime per point, shared by both plots, and every point drawn."""
    if not len(equity):
        return ""
    plt = _pyplot()
    dates = np.array([datetime.fromtimestamp(t / 1e9, UTC) for t in ts_ns], dtype=object)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(dates, equity, color="#1f6feb", lw=1.2)
    ax.set_title("Equity")
    ax.grid(alpha=0.3)
    plots = f'<img alt="equity curve" src="data:image/png;base64,{_png(fig)}">'
    fig, ax = plt.subplots(figsize=(10, 2.6))
    ax.fill_between(dates, -100 * drawdown(equity), 0, color="#d73a49", alpha=0.5)
    ax.set_title("Drawdown (%)")
    ax.grid(alpha=0.3)
    return plots + f'<img alt="drawdown" src="data:image/png;base64,{_png(fig)}">'


@contextmanager
def plotted_by(plots: Callable[[np.ndarray, np.ndarray], str]) -> Iterator[None]:
    """``write_report`` with ``plots`` in place of its own."""
    shipped = report._plots
    report._plots = plots
    try:
        yield
    finally:
        report._plots = shipped


def has_matplotlib() -> bool:
    """Whether matplotlib can be imported (a benchmark-only extra now)."""
    try:
        import matplotlib  # noqa: F401 -- imported only to see whether it is installed
    except ImportError:
        return False
    return True


def main() -> int:
    """Build the run, time the rows and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=700_000)
    parser.add_argument("--seed", type=int, default=20241114)
    parser.add_argument("--repeat", type=int, default=3, help="median of N runs per row")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        pin_to_one_core()
        pin_every_thread()
    print(f"machine: {cpu_model()} | {platform.python_implementation()} "
          f"{platform.python_version()} | pinned to 1 core: {not args.no_pin} | "
          f"median of {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="argus-bench-report-") as tmp:
        run_dir = Path(tmp) / "run"
        make_run(run_dir, args.bars, args.seed)
        every = parse_config({"run": {"starting_cash": "100000"}}, None)  # all installed

        def page() -> str:
            return report.write_report(run_dir).read_text()

        def page_by(plots: Callable[[np.ndarray, np.ndarray], str]) -> Callable[[], str]:
            def run() -> str:
                with plotted_by(plots):
                    return page()
            return run

        def read(how: Callable[[Ledger], Any]) -> Any:
            with Ledger.in_dir(run_dir) as ledger:
                return how(ledger)

        ts, eq = read(equity_series)
        rows: dict[str, Callable[[], Any]] = {
            NAIVE: page_by(naive_plots), PNG: page_by(png_plots), SHIPPED: page,
            NAIVE_PLOTS: lambda: naive_plots(ts, eq), PNG_PLOTS: lambda: png_plots(ts, eq),
            PLOTS: lambda: report._plots(ts, eq),
            OLD_READ: lambda: read(old_equity_read), SCAN: lambda: read(scan_equity_read),
            READ: lambda: read(equity_series),
            EVERY: lambda: report.write_report(run_dir, every),
        }
        if not has_matplotlib():
            print("matplotlib is not installed: its rows are left out")
            rows = {k: v for k, v in rows.items() if k not in NEEDS_MATPLOTLIB}
        for fn in rows.values():  # warm: plugin imports (`argus backtest` has them loaded)
            fn()
        load_before = os.getloadavg()
        runs: dict[str, list[tuple[float, float, Any]]] = {k: [] for k in rows}
        # Interleaved, so a burst of load on the shared machine hits every row alike.
        for _ in range(max(1, args.repeat)):
            for label, fn in rows.items():
                runs[label].append(timed_both(fn))
        load_after = os.getloadavg()
    texts = {re.sub(r"<img [^>]*>|<svg .*?</svg>", "", runs[k][-1][2], flags=re.S)
             for k in (SHIPPED, PNG, NAIVE) if k in runs}
    assert len(texts) == 1, "the pages' text differs"
    (old_ts, old_eq), (new_ts, new_eq) = runs[OLD_READ][-1][2], runs[READ][-1][2]
    assert np.array_equal(old_ts, new_ts) and np.array_equal(old_eq, new_eq), "reads differ"
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for k, v in runs.items()}
    columns = report.WIDTH
    print(f"load average (1, 5, 15 min): before {', '.join(f'{v:.2f}' for v in load_before)}"
          f", after {', '.join(f'{v:.2f}' for v in load_after)}")
    print(f"\n{args.bars:,} equity rows (seeded random walk, one-minute stamps); plots "
          f"decimated to {columns:,} columns; the pages identical apart from their plots\n")
    print(f"{'':<46} {'wall s':>8} {'CPU s':>7} {'x old':>7}")
    for label, base in ((NAIVE, NAIVE), (PNG, NAIVE), (SHIPPED, NAIVE),
                        (NAIVE_PLOTS, NAIVE_PLOTS), (PNG_PLOTS, NAIVE_PLOTS),
                        (PLOTS, NAIVE_PLOTS), (OLD_READ, OLD_READ), (SCAN, OLD_READ),
                        (READ, OLD_READ),
                        (EVERY, None)):
        if label not in med:
            continue
        wall, cpu = med[label]
        ratio = f"{med[base][0] / wall:>6.1f}x" if base in med else ""
        print(f"{label:<46} {wall:>8.3f} {cpu:>7.3f} {ratio:>7}")
    if PNG in med:
        print(f"\nSVG against matplotlib's PNGs (already imported), CPU: whole report "
              f"{med[PNG][1] / med[SHIPPED][1]:.1f}x, plots alone "
              f"{med[PNG_PLOTS][1] / med[PLOTS][1]:.1f}x less")
    whole, plots = med[SHIPPED][0], med[PLOTS][0]
    print(f"\ntarget {args.bars:,} bars in < {TARGET_S:.0f} s (wall, this machine): plots "
          f"{'MET' if plots < TARGET_S else 'NOT MET'} ({plots:.2f} s); core report "
          f"{'MET' if whole < TARGET_S else 'NOT MET'} ({whole:.2f} s); every installed plugin "
          f"{'MET' if med[EVERY][0] < TARGET_S else 'NOT MET'} ({med[EVERY][0]:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
