"""Benchmark: every pmscanners scanner over an exchange-sized synthetic snapshot.

3,000 negRisk events of 5 outcomes (30,000 books: YES and NO of 15,000 outcomes), 10
levels a side; one event in 50 is resolved (its winner settled, still quoted at 0.99), one
in 20 is a family of five nested "cut N+ bps" binary markets, and the rest ask about random words.
Prints per scanner the time of a full scan (and, for correlation, of the TF-IDF structure
build, done once per change of the event set), and a plain-Python resolution scan for
comparison.

    python plugins/argus-scanners-polymarket/benchmarks/bench_scanners.py [--events 3000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from decimal import Decimal

import numpy as np
from argus_scanners_polymarket.common import token_map
from argus_scanners_polymarket.correlation import CorrelationScanner
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.resolution import ResolutionScanner
from argus_scanners_polymarket.stale import SpikeScanner, StaleQuoteScanner

from argus_core import FeeSchedule, MarketState

WORDS = ["election", "senate", "house", "governor", "bitcoin", "ethereum", "price", "above",
         "below", "fed", "cut", "rates", "march", "june", "july", "champion", "league",
         "final", "winner", "oscar", "film", "album", "chart", "tariff", "court", "ruling",
         "war", "ceasefire", "deal", "summit", "launch", "approve", "inflation", "jobs",
         "report", "gdp"]
MONTHS = ["january", "march", "may", "june", "july", "september", "november", "december"]


def synthetic(n_events: int, seed: int = 0) -> MarketState:
    """The snapshot described in the module docstring (1% taker fees)."""
    rng = np.random.default_rng(seed)
    b = MarketBuilder(FeeSchedule(taker_bps=Decimal(100)))
    now = 10**18
    for e in range(n_events):
        if e % 20 == 0:
            month, year = MONTHS[e // 20 % 8], 2026 + e // 160
            qs = [f"Will the Fed cut rates by {k}+ bps at the {month} {year} meeting?"
                  for k in (25, 50, 75, 100, 125)]
        else:
            qs = [" ".join(rng.choice(WORDS, 8)) + f" {e} {i}?" for i in range(5)]
        ids = b.event(f"E{e}", [f"o{i}" for i in range(5)], questions=qs,
                      neg_risk=e % 20 != 0,
                      end_ts_ns=now + int(rng.integers(1, 500)) * 3600 * 10**9)
        probs = rng.dirichlet(np.ones(5))
        for (yes, no), p in zip(ids, probs, strict=True):
            p = float(np.clip(round(p, 2), 0.02, 0.97))
            sizes = rng.uniform(10, 500, 10).round(2)
            for iid, mid in ((yes, p), (no, round(1 - p, 2))):
                bids = [(round(mid - 0.01 * (k + 1), 2), s) for k, s in enumerate(sizes)
                        if mid - 0.01 * (k + 1) > 0.001]
                asks = [(round(mid + 0.01 * (k + 1), 2), s) for k, s in enumerate(sizes)
                        if mid + 0.01 * (k + 1) < 0.999]
                b.book(iid, bids, asks, ts_ns=now)
        if e % 50 == 1:
            b.settle(ids[0][0], 1)
    b.market.now_ns = now
    return b.market


def plain_resolution(market: MarketState) -> int:
    """The resolved branch of the resolution scanner written naively (float, per level)."""
    refs = token_map(market)
    found = 0
    for iid, st in market.settled.items():
        book = market.books.get(iid)
        if book is None or iid not in refs or st.price <= 0:
            continue
        profit = 0.0
        for price, size in sorted(book.asks.items()):
            e = float(st.price) - price - price * 0.01
            if e <= 0:
                break
            profit += e * size
        found += profit > 0
    return found


def timeit(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    t = time.perf_counter()
    market = synthetic(args.events)
    print(f"snapshot: {len(market.events)} events, {len(market.books)} books "
          f"({time.perf_counter() - t:.1f}s to build)")
    now = market.now_ns
    rows = []
    res = ResolutionScanner()
    rows.append(("resolution full scan", timeit(lambda: res.scan(market, now), args.repeat),
                 len(res.scan(market, now))))
    rows.append(("resolution, plain Python", timeit(lambda: plain_resolution(market),
                                                    args.repeat), plain_resolution(market)))
    corr = CorrelationScanner()
    t = time.perf_counter()
    corr.scan(market, now)
    build = time.perf_counter() - t
    rows.append(("correlation structure (TF-IDF, once)", build, len(corr.constraints)))
    rows.append(("correlation full scan", timeit(lambda: corr.scan(market, now), args.repeat),
                 len(corr.scan(market, now))))
    stale, spike = StaleQuoteScanner(), SpikeScanner()
    stale.scan(market, now)
    spike.scan(market, now)
    rows.append(("stale full scan", timeit(lambda: stale.scan(market, now), args.repeat),
                 len(stale.scan(market, now))))
    rows.append(("spike full scan", timeit(lambda: spike.scan(market, now), args.repeat),
                 len(spike.scan(market, now))))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}")
    print(f"{'what':40s} {'ms':>10s} {'found':>7s}")
    for name, secs, n in rows:
        print(f"{name:40s} {secs * 1e3:10.2f} {n:7d}")
    print(f"resolution / plain-Python ratio: {rows[0][1] / rows[1][1]:.2f}")


if __name__ == "__main__":
    main()
