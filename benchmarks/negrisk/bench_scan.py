"""Benchmark: full negRisk scan of a synthetic full-exchange snapshot.

3,000 events, 30,000 books (YES and NO of 15,000 outcomes), 20 levels a side.
Prints the time per full scan for the numba scanner (end to end through
``MarketState``, and the kernel alone on packed arrays) and for the
plain-Python reference scan, with the ratios.

Then, at 30,000 and 120,000 books (``--sizes``, in events), the median scan time with
``--changed`` books updated between scans (through ``MarketState.apply``, before the
clock starts) for the old path, which reads every book's version and walks every
basket (``NegRiskScanner(incremental=False)``), and for the dirty-set path (the
default), checking after every scan that both return the same opportunities.

    python benchmarks/negrisk/bench_scan.py [--events 3000] [--repeat 20]
        [--sizes 3000,12000] [--changed 300] [--scans 40]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
from argus_scanner_negrisk.reference import reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import BookDelta, Event, Instrument, OrderBook, Outcome, Side

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import cpu_model, pin_to_one_core


def synthetic_market(n_events: int, levels: int, seed: int = 0,
                     fees: FeeSchedule | None = None) -> MarketState:
    """Events of 2-8 outcomes (5 on average): YES asks from Dirichlet probabilities plus a
    spread, NO asks near 1 - YES; about 2% of events carry a deep long-rebalance arbitrage.
    Every instrument pays ``fees`` (none by default)."""
    rng = np.random.default_rng(seed)
    schedule = fees or FeeSchedule()
    market = MarketState(fees=lambda iid: schedule)
    tick = 0.001
    steps = np.arange(levels) * tick
    for e in range(n_events):
        n = 5 if e % 3 == 0 else int(rng.integers(2, 9))
        probs = rng.dirichlet(np.ones(n))
        arb = rng.random() < 0.02
        outcomes, instruments = [], []
        for i in range(n):
            yes, no = f"polymarket:{e}{i:02d}1", f"polymarket:{e}{i:02d}2"
            outcomes.append(Outcome(f"o{i}", yes, no))
            p = float(np.clip(np.round(probs[i], 3), 0.002, 0.990))
            spread = 0.004 if arb else 0.01
            ask_yes = round(max(p - (0.02 / n if arb else 0.0), 0.001) + spread / 2, 3)
            bid_yes = round(max(ask_yes - spread, 0.001), 3)
            ask_no = round(min(1 - bid_yes + 0.001, 0.998), 3)
            bid_no = round(max(1 - ask_yes - 0.001, 0.001), 3)
            for iid, ask, bid in ((yes, ask_yes, bid_yes), (no, ask_no, bid_no)):
                a = np.column_stack([ask + steps, rng.uniform(5, 500, levels)])
                b = np.column_stack([bid - steps, rng.uniform(5, 500, levels)])
                a = a[a[:, 0] < 1]
                b = b[b[:, 0] > 0]
                market.apply(OrderBook(iid, 1, b, a))
                instruments.append(Instrument("polymarket", iid.split(":")[1], kind="binary",
                                              tick_size="0.001", min_size="5"))
        market.add_instruments(instruments)
        market.apply(Event("polymarket", f"E{e}", f"event {e}", tuple(outcomes), neg_risk=True))
    return market


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Best-of-``repeat`` seconds per call (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def dirty_vs_full(n_events: int, levels: int, changed: int, scans: int) -> tuple[int, float,
                                                                                float]:
    """Median seconds per scan, old full path and dirty-set path, with ``changed`` books
    updated between scans; returns (books, full median, dirty median)."""
    market = synthetic_market(n_events, levels)
    full, dirty = NegRiskScanner(incremental=False), NegRiskScanner()
    assert full.scan(market, 1) == dirty.scan(market, 1)  # JIT, first packing
    ids = list(market.books)
    rng = np.random.default_rng(2)
    t_full: list[float] = []
    t_dirty: list[float] = []
    for scan in range(scans):
        ts = 2 + scan
        for k in rng.choice(len(ids), size=changed, replace=False).tolist():
            book = market.books[ids[k]]
            price = float(book.ask_levels()[-1, 0])  # the deepest ask: resized, kept
            market.apply(BookDelta(ids[k], ts, Side.SELL, price, 1.0 + float(rng.random())))
        # alternate which scanner goes first, so neither always finds a warmer cache
        order = [(full, t_full), (dirty, t_dirty)][:: 1 if scan % 2 else -1]
        found = []
        for scanner, times in order:
            t0 = time.perf_counter()
            found.append(scanner.scan(market, ts))
            times.append(time.perf_counter() - t0)
        assert found[0] == found[1], "dirty-set scan differs from the full scan"
    return len(ids), statistics.median(t_full), statistics.median(t_dirty)


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--fee-bps", type=float, default=0.0,
                    help="taker fee in bps of notional for every instrument (default none)")
    ap.add_argument("--sizes", default="3000,12000",
                    help="events per snapshot for the dirty-set comparison (0: skip it)")
    ap.add_argument("--changed", type=int, default=300,
                    help="books updated between scans in the dirty-set comparison")
    ap.add_argument("--scans", type=int, default=40, help="scans timed per size")
    args = ap.parse_args()
    pinned = pin_to_one_core()
    market = synthetic_market(args.events, args.levels,
                              fees=FeeSchedule(taker_bps=Decimal(repr(args.fee_bps))))
    n_books = len(market.books)
    scanner = NegRiskScanner()
    t_first = time.perf_counter()
    opps = scanner.scan(market, 1)  # JIT (cached) + first packing of every book
    t_first = time.perf_counter() - t_first
    comp, packed = scanner._static, scanner._packed
    usable = packed.usable
    t_scan = timed(lambda: scanner.scan(market, 1), args.repeat)
    t_kernel = timed(lambda: comp.run(packed, usable), args.repeat)
    # 1% of the books change between scans (a busy live cycle).  Only the scan is timed:
    # the changes are applied through the public L2Book API before the clock starts.
    ids = list(market.books)
    rng = np.random.default_rng(1)
    n_touch = len(ids) // 100

    def touch() -> None:
        for k in rng.choice(len(ids), size=n_touch, replace=False).tolist():
            book = market.books[ids[k]]
            price = float(book.ask_levels()[-1, 0])
            book.apply(Side.SELL, price, 1.0 + float(rng.random()), 2)

    def busy_scan_time() -> float:
        best = float("inf")
        for _ in range(args.repeat):
            touch()
            t0 = time.perf_counter()
            scanner.scan(market, 2)
            best = min(best, time.perf_counter() - t0)
        return best

    touch()
    scanner.scan(market, 2)
    repacked = scanner._packed.repacked
    t_busy = busy_scan_time()
    t_ref = timed(lambda: reference_scan(market), max(3, args.repeat // 5))
    ref = reference_scan(market)
    print(f"machine: {cpu_model()} | python {platform.python_version()} | "
          f"{'pinned to one core' if pinned else 'not pinned'}")
    print(f"snapshot: {args.events} events, {n_books} books, {args.levels} levels a side; "
          f"{len(comp.baskets)} baskets; {len(opps)} opportunities "
          f"(reference: {len(ref)} profitable baskets)")
    print(f"first scan (JIT load + packing every book): {t_first * 1e3:9.2f} ms")
    rows = [("scanner, full scan (MarketState -> opportunities)", t_scan),
            (f"scanner, full scan, 1% of books changed ({repacked} repacked)", t_busy),
            ("scanner kernel only (packed arrays)", t_kernel),
            ("plain-Python reference scan", t_ref)]
    print(f"{'':52s} {'ms/scan':>10s} {'reference / this':>18s}")
    for label, t in rows:
        print(f"{label:52s} {t * 1e3:10.3f} {t_ref / t:17.1f}x")
    sizes = [int(n) for n in args.sizes.split(",") if int(n) > 0]
    if sizes:
        print(f"\nmedian of {args.scans} scans, {args.changed} books updated between scans "
              f"(opportunities identical after every scan):")
        print(f"{'books':>8s} {'full path ms':>13s} {'dirty set ms':>13s} {'full / dirty':>13s}")
    for n_events in sizes:
        n, t_full, t_dirty = dirty_vs_full(n_events, args.levels, args.changed, args.scans)
        print(f"{n:8d} {t_full * 1e3:13.3f} {t_dirty * 1e3:13.3f} {t_full / t_dirty:12.1f}x")


if __name__ == "__main__":
    main()
