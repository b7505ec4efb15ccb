"""The loop benchmark's backtest in vectorbt's ``Portfolio.from_signals`` and in Argus's
loop, in one run: events/s and the ratio.

The job is ``bench_loop.py``'s (imported from it, so the two cannot drift): all 70,253
bundled Kraken XBT/USD hourly bars, SMA(10)/SMA(40) long-only crossover, 50% of equity
per entry, 40 bps taker fee, $100,000, fills at the next bar's open.

* **Argus**: ``bench_loop.run_argus`` -- the real ``Runner`` from pre-parsed bars
  (strategy, sizer, every builtin risk check, paper broker, apsw ledger with an equity
  row per bar and checkpoints), Runner construction included;
* **vectorbt** (``pip install vectorbt``): ``vbt.MA.run`` for both windows, ``fast >
  slow`` as the position wanted, shifted one bar (decided at a bar's close, filled at the
  next open: ``price=open``), ``size=0.5, size_type="percent"``, ``fees=0.004``; numba's
  compilation is excluded by a warm-up call on the first 1,000 bars.

Both start from bars in memory.  The fill rules differ, so the final equities differ;
two plain-Python loops reproduce each engine's figure from its own rules (Argus's to the
cent, vectorbt's to float rounding), so the gap is the rules', not a bug:

* Argus rounds each fill price onto the 0.1 tick against the trader, floors quantities to
  the lot (1e-8), and sizes an entry at the signal bar's close (the price the risk checks
  and the sizer see when the strategy decides): ``floor(0.5 * equity / close)``;
* vectorbt fills at the unrounded open, and a percent size spends 50% of the cash *at the
  fill price, fees included*: ``0.5 * cash / (open * (1 + fee))``.

Usage::

    python benchmarks/loop/bench_vectorbt.py            # ~30 s (vectorbt's first compile)
    python benchmarks/loop/bench_vectorbt.py --repeat 5 --bars 20000
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# benchmarks/ and benchmarks/loop/ are not packages: their modules are imported from sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_loop  # the loop benchmark's job: config, bars, Argus run, Argus-rules baseline
from machine import cpu_model, pin_to_one_core, timed, versions

Bars = list[tuple[int, float, float, float, float, float]]


def load_avg() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest of ``repeat`` timed calls (a shared machine only ever adds time)."""
    runs = [timed(fn) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[-1][1]


def run_vectorbt(bars: Bars) -> Callable[[], dict[str, Any]]:
    """The job in ``Portfolio.from_signals`` on numpy arrays (no pandas index work in the
    timed part beyond what vectorbt does itself)."""
    import pandas as pd
    import vectorbt as vbt

    arr = np.array(bars, dtype=np.float64)
    index = pd.to_datetime((arr[:, 0].astype(np.int64) + 3600) * 10**9, utc=True)
    close = pd.Series(arr[:, 4], index=index)
    opens = pd.Series(arr[:, 1], index=index)

    def run() -> dict[str, Any]:
        fast = vbt.MA.run(close, window=bench_loop.FAST).ma.to_numpy()
        slow = vbt.MA.run(close, window=bench_loop.SLOW).ma.to_numpy()
        want = fast > slow  # NaN during the warm-up compares False
        entries = np.zeros(len(want), dtype=bool)
        exits = np.zeros(len(want), dtype=bool)
        entries[1:] = want[:-1]  # decided at a bar's close, filled at the next open
        exits[1:] = ~want[:-1]
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=opens,
                                        size=bench_loop.FRACTION, size_type="percent",
                                        fees=bench_loop.TAKER_BPS / 10_000,
                                        init_cash=bench_loop.CASH, freq="1h")
        orders = int(pf.orders.count())
        return {"events": len(bars), "orders": orders, "fills": orders,
                "final_equity": float(pf.final_value())}

    return run


def vectorbt_rules(bars: Bars) -> float:
    """Final equity of the job under vectorbt's fill rules, in plain Python: unrounded
    next-open fills, entries spending ``FRACTION`` of cash at the fill price with the fee
    inside that budget, exits selling the whole position."""
    fee = bench_loop.TAKER_BPS / 10_000
    closes: list[float] = []
    cash, qty, pending = bench_loop.CASH, 0.0, 0  # pending: +1 enter, -1 exit next open
    for _ts, o, _h, _l, c, _v in bars:
        if pending > 0 and qty == 0:
            qty = bench_loop.FRACTION * cash / (o * (1 + fee))
            cash -= qty * o * (1 + fee)
        elif pending < 0 and qty > 0:
            cash += qty * o * (1 - fee)
            qty = 0.0
        closes.append(c)
        if len(closes) < bench_loop.SLOW:
            pending = -1
            continue
        fast = sum(closes[-bench_loop.FAST:]) / bench_loop.FAST
        slow = sum(closes[-bench_loop.SLOW:]) / bench_loop.SLOW
        pending = 1 if fast > slow else -1
    return cash + qty * bars[-1][4]


def main(argv: list[str] | None = None) -> int:
    """Time both engines, check each final equity against its rules, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--bars", type=int, default=None, help="first N bars only")
    parser.add_argument("--skip-vectorbt", action="store_true",
                        help="the Argus row and both rule checks only (smoke test)")
    args = parser.parse_args(argv)
    pinned = pin_to_one_core()
    logging.getLogger("argus_core.builtins.replay_venue").setLevel(logging.ERROR)
    bars: Bars = bench_loop.read_bars()[:args.bars]
    print(f"machine: {cpu_model()} | CPython {sys.version.split()[0]} | "
          f"{'pinned to one core' if pinned else 'not pinned'} | load average before: "
          f"{load_avg()}")
    print(f"under the peers: {versions('numpy', 'pandas', 'numba')}")
    print(f"job: SMA({bench_loop.FAST})/SMA({bench_loop.SLOW}) long-only on {len(bars):,} "
          f"bars, {bench_loop.FRACTION:.0%} of equity, {bench_loop.TAKER_BPS} bps, next-open "
          f"fills | best of {args.repeat}")
    rows: list[tuple[str, dict[str, Any] | None, float, str]] = []

    from argus_core.builtins.replay_venue import read_bars_csv
    from argus_core.models import Bar

    pre = [Bar("replay:BTC/USD", (t + 3600) * 10**9, o, h, lo, c, v)
           for t, o, h, lo, c, v in bars] if args.bars else read_bars_csv(
        bench_loop.BARS_CSV, "replay:BTC/USD", 3600)
    keep: list[Path] = []
    try:
        bench_loop.run_argus(pre[:2000], keep)  # warm-up: discovery and imports once
        secs, res = best_of(args.repeat, lambda: bench_loop.run_argus(pre, keep))
        rows.append(("Argus loop (pre-parsed bars)", res, secs, "reference"))
    finally:
        import shutil

        for path in keep:
            shutil.rmtree(path, ignore_errors=True)
    argus_rules = bench_loop.run_baseline(bars)["final_equity"]

    vbt_rules = vectorbt_rules(bars)
    try:
        if args.skip_vectorbt:
            raise ImportError("skipped")
        import vectorbt as vbt
    except ImportError:
        rows.append(("vectorbt", None, 0.0, "skipped (--skip-vectorbt)" if args.skip_vectorbt
                     else "not installed: pip install vectorbt"))
    else:
        run_vectorbt(bars[:1000])()  # numba compiles (or loads its cache) here, not in the timer
        secs, res = best_of(args.repeat, run_vectorbt(bars))
        rows.append((f"vectorbt {vbt.__version__} from_signals", res, secs,
                     "compile excluded"))

    ref = rows[0][2]
    print(f"\n{'engine':<32}{'events':>8}{'seconds':>9}{'events/s':>12}{'x Argus':>9}"
          f"{'orders':>8}{'fills':>7}{'final equity':>14}  note")
    for name, r, s, note in rows:
        if r is None:
            print(f"{name:<32}{'-':>8}{'-':>9}{'-':>12}{'-':>9}{'':>8}{'':>7}{'':>14}  {note}")
            continue
        print(f"{name:<32}{r['events']:>8,}{s:>9.3f}{r['events'] / s:>12,.0f}"
              f"{ref / s:>8.2f}x{r['orders']:>8,}{r['fills']:>7,}{r['final_equity']:>14,.2f}"
              f"  {note}")
    print()
    argus = rows[0][1]
    assert argus is not None
    ok = abs(argus["final_equity"] - argus_rules) < 0.01
    print(f"Argus's final equity from its rules (tick-rounded next open, lot-floored, sized "
          f"at the close), plain Python: {argus_rules:,.2f} -> {'same' if ok else 'DIFFERENT'}")
    if rows[1][1] is not None:
        got = rows[1][1]["final_equity"]
        ok_v = math.isclose(got, vbt_rules, rel_tol=1e-9)
        print(f"vectorbt's final equity from its rules (unrounded next open, 50% of cash "
              f"with the fee inside), plain Python: {vbt_rules:,.2f} -> "
              f"{'same' if ok_v else 'DIFFERENT'}")
        ratio = rows[0][2] / rows[1][2]
        print(f"vectorbt / Argus events/s: {ratio:.1f}x (vectorbt computes the whole series "
              f"in compiled array code; Argus runs each event through the loop and ledger)")
        ok = ok and ok_v
    print(f"load average after: {load_avg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
