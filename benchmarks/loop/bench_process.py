"""Whole processes, start to exit: `argus --help`, `argus --version`, the demo's backtest
and run, and the same job as a backtrader script and as a vectorbt script.

Each command runs as its own process under ``/usr/bin/time -v`` (its "Maximum resident
set size"; ``wait4``'s rusage of the child where GNU time is missing); the wall time is
the parent's clock around that process (interpreter start-up, imports, the work, the
output files and exit included).  The commands run round-robin ``--repeat`` times after
one untimed round (``.pyc`` files, the page cache and numba's cache warm), and the
medians are reported with the machine and its load average before and after.  The
ratios come from that one run.

The job is the README's Quick start (`argus demo` = `argus backtest` of
``examples/demo.toml``): the bundled Kraken BTC/USD hourly bars from 2021-01-01
(17,668 bars), SMA(24)/SMA(120) long-only crossover sized by half-Kelly on the
crossover's edge (capped at 7% of equity), 40 bps taker fee, fills at the next bar's
open.  The backtrader and vectorbt scripts are written into a temporary folder by this
script and do the same: read the same CSV, the same crossover and sizing rule, the fee,
next-open fills (plus the demo's 2 bps half-spread and 1 bps slippage as one price
fraction), and write their result (final equity, orders, the equity curve) to files, as
Argus writes its ledger (``argus backtest`` also writes ``report.html`` with plots;
``argus run`` writes the ledger only).

    python benchmarks/loop/bench_process.py              # ~1 min with both extras
    python benchmarks/loop/bench_process.py --tiny       # 600 bars, one round (smoke test)

backtrader and vectorbt are benchmark-only extras (``pip install backtrader vectorbt``);
their rows say "not installed" when absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cpu_model, versions  # benchmarks/ is not a package: on sys.path above

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.toml"
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None
START_S = 1_609_459_200  # 2021-01-01T00:00Z, the demo's `start`
TINY_BARS = 600
SKIPPABLE = ("backtrader", "vectorbt")

#: The issue's targets (item 1).
HELP_TARGET_S = 0.3
SPEEDUP_TARGET = 2.0
PEAK_TARGET_MIB = 100.0

# The demo's job, shared by both foreign scripts (values from examples/demo.toml; the
# Kelly rule is argus_core.builtins.sizers.Kelly on ma_cross's forecast: mu = the
# crossover's edge, sigma 0.02, confidence 0.5).
JOB = textwrap.dedent("""\
    import json, math, sys
    CSV, OUT, START_S = sys.argv[1], sys.argv[2], int(sys.argv[3])
    FAST, SLOW, CASH = 24, 120, 100_000.0
    FEE = 0.004                              # 40 bps taker
    SLIP = (1 + 0.0002) * (1 + 0.0001) - 1   # 2 bps half-spread, then 1 bps slippage
    LOT, MIN_SIZE = 1e-8, 1e-4

    def kelly(fast, slow):
        # half-Kelly on the edge, shrunk by confidence 0.5, capped at 7% of equity
        return min(max(0.5 * ((fast - slow) / slow) / 0.02 ** 2 * 0.5, 0.0), 0.07)
    """)

BACKTRADER = JOB + textwrap.dedent("""\
    import backtrader as bt
    import pandas as pd

    df = pd.read_csv(CSV, header=None, usecols=range(6),
                     names=["t", "open", "high", "low", "close", "volume"])
    df = df[df["t"] >= START_S]
    df.index = pd.to_datetime(df.pop("t") + 3600, unit="s", utc=True)  # close time

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.fast = bt.ind.SMA(self.data.close, period=FAST)
            self.slow = bt.ind.SMA(self.data.close, period=SLOW)
            self.long, self.orders, self.fills, self.equity = False, 0, 0, []

        def next(self):
            self.equity.append(self.broker.getvalue())
            fast, slow = self.fast[0], self.slow[0]
            want = fast > slow
            if want == self.long:
                return
            self.long = want
            if want:
                close = self.data.close[0]
                size = math.floor(self.broker.getvalue() * kelly(fast, slow)
                                  / close / LOT) * LOT
                if size >= MIN_SIZE:
                    self.buy(size=size)
                    self.orders += 1
            elif self.position.size > 0:
                self.close()
                self.orders += 1

        def notify_order(self, order):
            self.fills += order.status == order.Completed

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=FEE)
    cerebro.broker.set_slippage_perc(SLIP, slip_open=True, slip_match=True, slip_out=True)
    s = cerebro.run()[0]
    with open(OUT + ".equity.csv", "w") as fh:
        fh.writelines(f"{v}\\n" for v in s.equity)
    with open(OUT, "w") as fh:
        json.dump({"events": len(df), "orders": s.orders, "fills": int(s.fills),
                   "final_equity": cerebro.broker.getvalue()}, fh)
    """)

VECTORBT = JOB + textwrap.dedent("""\
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    df = pd.read_csv(CSV, header=None, usecols=range(6),
                     names=["t", "open", "high", "low", "close", "volume"])
    df = df[df["t"] >= START_S]
    df.index = pd.to_datetime(df.pop("t") + 3600, unit="s", utc=True)
    close = df["close"]
    fast = vbt.MA.run(close, window=FAST).ma.to_numpy()
    slow = vbt.MA.run(close, window=SLOW).ma.to_numpy()
    want = fast > slow                        # NaN during the warm-up compares False
    size = np.minimum(np.maximum(0.5 * ((fast - slow) / slow) / 0.02 ** 2 * 0.5, 0), 0.07)
    entries, exits, sizes = (np.zeros(len(df), dtype=bool), np.zeros(len(df), dtype=bool),
                             np.full(len(df), np.nan))
    entries[1:] = want[:-1]                   # decided at a bar's close, filled next open
    exits[1:] = ~want[:-1]
    sizes[1:] = size[:-1]
    pf = vbt.Portfolio.from_signals(close, entries, exits, price=df["open"], size=sizes,
                                    size_type="percent", fees=FEE, slippage=SLIP,
                                    init_cash=CASH, freq="1h")
    pf.value().to_csv(OUT + ".equity.csv", header=False)
    with open(OUT, "w") as fh:
        json.dump({"events": len(df), "orders": int(pf.orders.count()),
                   "fills": int(pf.orders.count()), "final_equity": float(pf.final_value())},
                  fh)
    """)


class Sample(NamedTuple):
    """One process: wall seconds (the parent's clock), CPU seconds (user + system: less
    moved by other jobs on a shared machine than the wall clock) and peak RSS in MiB."""

    wall: float
    cpu: float
    mib: float


def load_avg() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def argus_exe() -> str:
    """The console script installed beside this interpreter (a version manager's shim on
    PATH would add its own start-up to every row)."""
    beside = Path(sys.executable).parent / "argus"
    found = str(beside) if beside.exists() else shutil.which("argus")
    if found is None:
        sys.exit("argus is not installed (pip install -e .)")
    return found


def installed(module: str) -> str | None:
    """The version of an importable extra, without importing it into this process."""
    import importlib.metadata as md

    try:
        return md.version(module)
    except md.PackageNotFoundError:
        return None


def timed_process(argv: list[str], log: Path) -> tuple[Sample, int]:
    """One process's :class:`Sample` and exit code; its output goes to ``log`` (a file,
    not a terminal: what a script or CI sees)."""
    with log.open("w") as out:
        t0 = time.perf_counter()
        if GNU_TIME:
            proc = subprocess.Popen([GNU_TIME, "-v", *argv], stdout=out, stderr=out)
            code = proc.wait()
            wall = time.perf_counter() - t0
            text = log.read_text()
            kib = re.findall(r"Maximum resident set size \(kbytes\): (\d+)", text)
            cpu = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)
            if not kib or len(cpu) < 2:
                raise RuntimeError(f"no figures from {GNU_TIME} -v: {text[-500:]}")
            return Sample(wall, sum(map(float, cpu[-2:])), int(kib[-1]) / 1024), code
        proc = subprocess.Popen(argv, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        return (Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024),
                proc.returncode)


def tiny_inputs(work: Path) -> tuple[Path, Path]:
    """A copy of the demo config reading the first :data:`TINY_BARS` bars from 2021 on."""
    rows = [line for line in BARS.read_text().splitlines()
            if line and int(line.split(",", 1)[0]) >= START_S][:TINY_BARS]
    bars = work / "tiny_bars.csv"
    bars.write_text("\n".join(rows) + "\n")
    text, n = re.subn(r'(?m)^bars_csv = ".*"$', f'bars_csv = "{bars}"', DEMO.read_text())
    if n != 1:
        raise RuntimeError(f"{DEMO}: expected one bars_csv line to point at the tiny bars")
    config = work / "demo_tiny.toml"
    config.write_text(text)
    return config, bars


def commands(work: Path, config: Path, bars: Path) -> list[tuple[str, list[str] | None, str]]:
    """``(row label, argv or None when not installed, note)`` for every row."""
    argus, py = argus_exe(), sys.executable
    rows: list[tuple[str, list[str] | None, str]] = [
        ("python -c pass", [py, "-c", "pass"], "the interpreter's own floor"),
        ("argus --help", [argus, "--help"], ""),
        ("argus --version", [argus, "--version"], ""),
        ("argus backtest (demo)", [argus, "backtest", "--config", str(config), "--run-dir",
                                   str(work / "runs" / "backtest-{i}"), "--no-progress"],
         "ledger + report.html"),
        ("argus run (demo)", [argus, "run", "--config", str(config), "--run-dir",
                              str(work / "runs" / "run-{i}"), "--no-progress"],
         "ledger only"),
    ]
    for name, source in (("backtrader", BACKTRADER), ("vectorbt", VECTORBT)):
        version = installed(name)
        script = work / f"{name}_job.py"
        script.write_text(source)
        argv = [py, str(script), str(bars), str(work / "runs" / f"{name}-{{i}}.json"),
                str(START_S)]
        rows.append((f"{name} {version}" if version else name, argv if version else None,
                     "result JSON + equity CSV" if version
                     else f"not installed: pip install {name}"))
    return rows


def argus_result(run_dir: Path) -> dict[str, Any]:
    """Orders, fills and final equity from an Argus run's ledger."""
    from argus_core.ledger import Ledger

    with Ledger.in_dir(run_dir) as ledger:
        orders = ledger.conn.execute("select count(*) from orders").fetchone()[0]
        fills = ledger.conn.execute("select count(*) from fills").fetchone()[0]
        equity = ledger.conn.execute(
            "select equity from equity order by ts_ns desc limit 1").fetchone()[0]
    return {"orders": orders, "fills": fills, "final_equity": float(equity)}


def main(argv: list[str] | None = None) -> int:
    """Run every row, print the table, the ratios and MET / NOT MET lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"{TINY_BARS} bars, one timed round, no warm-up (smoke test)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--skip", action="append", default=[], choices=SKIPPABLE,
                        help="leave out a foreign row (repeatable)")
    args = parser.parse_args(argv)
    repeat = 1 if args.tiny else args.repeat
    work = Path(tempfile.mkdtemp(prefix="argus-bench-process-"))
    try:
        (work / "runs").mkdir()
        config, bars = tiny_inputs(work) if args.tiny else (DEMO, BARS)
        rows = [(label, None if label.split()[0] in args.skip else cmd,
                 f"skipped (--skip {label.split()[0]})" if label.split()[0] in args.skip
                 else note)
                for label, cmd, note in commands(work, config, bars)]
        print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs | CPython "
              f"{sys.version.split()[0]} | peak RSS by "
              f"{'/usr/bin/time -v' if GNU_TIME else 'wait4 rusage'} | "
              f"load average before: {load_avg()}")
        print(f"under the peers: {versions('numpy', 'pandas')}")
        what = f"the first {TINY_BARS} bars from 2021" if args.tiny else "the demo's bars"
        print(f"job: {config.name}, {what} | {repeat} timed round(s)"
              f"{'' if args.tiny else ' after one untimed'}; medians")
        runs: dict[str, list[Sample]] = {label: [] for label, _, _ in rows}
        rounds = [*([-1] if not args.tiny else []), *range(repeat)]
        for i in rounds:
            for label, cmd, _ in rows:
                if cmd is None:
                    continue
                tag = "warm" if i < 0 else str(i)
                argv_i = [a.replace("{i}", tag) for a in cmd]
                sample, code = timed_process(argv_i, work / f"{label.split()[0]}-{tag}.log")
                if code != 0:
                    log = (work / f"{label.split()[0]}-{tag}.log").read_text()
                    raise RuntimeError(f"{label} exited {code}:\n{log[-2000:]}")
                if i >= 0:
                    runs[label].append(sample)
        med = {label: Sample(statistics.median(x.wall for x in r),
                             statistics.median(x.cpu for x in r), max(x.mib for x in r))
               for label, r in runs.items() if r}
        results = {"argus backtest (demo)": argus_result(work / "runs" / f"backtest-{repeat - 1}"),
                   "argus run (demo)": argus_result(work / "runs" / f"run-{repeat - 1}")}
        for label, cmd, _ in rows:
            if cmd is not None and not label.startswith(("argus", "python")):
                out = Path(cmd[3].replace("{i}", str(repeat - 1)))
                results[label] = json.loads(out.read_text())
        print_table(rows, med, results)
        print(f"load average after: {load_avg()}")
        return report_targets(med)
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def print_table(rows: list[tuple[str, list[str] | None, str]], med: dict[str, Sample],
                results: dict[str, dict[str, Any]]) -> None:
    """One line per row: median wall and CPU seconds, peak RSS (the largest of the
    rounds), wall as a multiple of the demo backtest's, what the job produced, the note."""
    ref = med["argus backtest (demo)"].wall if "argus backtest (demo)" in med else 0.0
    print(f"\n{'process':<26}{'wall s':>8}{'cpu s':>7}{'peak MiB':>10}{'x backtest':>12}"
          f"{'orders':>8}{'fills':>7}{'final equity':>14}  note")
    for label, cmd, note in rows:
        if cmd is None or label not in med:
            print(f"{label:<26}{'-':>8}{'-':>7}{'-':>10}{'-':>12}{'':>8}{'':>7}{'':>14}  {note}")
            continue
        m = med[label]
        res = results.get(label)
        work = (f"{res['orders']:>8}{res['fills']:>7}{res['final_equity']:>14,.2f}"
                if res else f"{'':>8}{'':>7}{'':>14}")
        print(f"{label:<26}{m.wall:>8.3f}{m.cpu:>7.2f}{m.mib:>10.1f}"
              f"{m.wall / ref if ref else 0:>11.2f}x{work}  {note}")


def report_targets(med: dict[str, Sample]) -> int:
    """The issue's lines, from this run's medians (always 0: figures, not a test)."""
    def line(what: str, ok: bool, figure: str) -> None:
        print(f"target {what}: {'MET' if ok else 'NOT MET'} ({figure})")

    print()
    help_s = med["argus --help"].wall
    line(f"argus --help under {HELP_TARGET_S} s", help_s < HELP_TARGET_S,
         f"{help_s:.3f} s; the interpreter alone {med['python -c pass'].wall:.3f} s")
    bt = next((med[k] for k in med if k.startswith("backtrader")), None)
    for label in ("argus backtest (demo)", "argus run (demo)"):
        m = med[label]
        if bt is None:
            print(f"target {label} >= {SPEEDUP_TARGET:g}x faster than backtrader: "
                  f"not measured (no backtrader row: not installed or skipped)")
        else:
            line(f"{label} >= {SPEEDUP_TARGET:g}x faster than backtrader",
                 bt.wall / m.wall >= SPEEDUP_TARGET,
                 f"{bt.wall / m.wall:.2f}x: {m.wall:.3f} s vs {bt.wall:.3f} s wall; "
                 f"CPU {bt.cpu / m.cpu:.2f}x")
        line(f"{label} peak memory under {PEAK_TARGET_MIB:g} MiB", m.mib < PEAK_TARGET_MIB,
             f"{m.mib:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
