"""Benchmark: full negRisk scan of a synthetic full-exchange snapshot.

3,000 events, 30,000 books (YES and NO of 15,000 outcomes), 20 levels a side.
Prints the time per full scan for the numba scanner (end to end through
``MarketState``, and the kernel alone on packed arrays) and for the
plain-Python reference scan, with the ratios.

    python benchmarks/negrisk/bench_scan.py [--events 3000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from decimal import Decimal

import numpy as np
from argus_scanner_negrisk.reference import reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import Event, Instrument, OrderBook, Outcome, Side


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


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--fee-bps", type=float, default=0.0,
                    help="taker fee in bps of notional for every instrument (default none)")
    args = ap.parse_args()
    market = synthetic_market(args.events, args.levels,
                              fees=FeeSchedule(taker_bps=Decimal(repr(args.fee_bps))))
    n_books = len(market.books)
    scanner = NegRiskScanner()
    t_first = time.perf_counter()
    opps = scanner.scan(market, 1)  # JIT (cached) + first packing of every book
    t_first = time.perf_counter() - t_first
    comp, packed = scanner._static, scanner._packed
    usable = packed.refresh(market)
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
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}")
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


if __name__ == "__main__":
    main()
