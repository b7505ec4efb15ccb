"""Replay recorded Kraken WS v2 book updates through the checksum-verified local book.

Usage::

    python benchmarks/kraken/bench_book.py            # 1,000,000 updates
    python benchmarks/kraken/bench_book.py --n 200000 --reference-n 50000

Steps:

1. Generate (once, cached under --cache) a recording of N v2 ``book`` update
   frames: a seeded random walk around Kraken's documented BTC/USD snapshot
   (quantity changes, deletions refilled from below, inserts that push the
   worst level out), prices and quantities as unpadded JSON numbers, each
   frame carrying the CRC32 Kraken would send (computed by the reference).
2. Replay it through
   * ``ChecksumBook`` on pre-decoded messages (the book alone),
   * ``ChecksumBook`` including ``json.loads(frame, parse_float=str)``,
   * the venue's ``KrakenMarketFeed.on_frame`` (decode, verify, emit an
     ``OrderBook`` event per message),
   * the plain-Python reference (Decimal dicts re-sorted and every level
     re-formatted on every message),
   verifying every checksum in every run, and print updates/s and ratios.

The process pins itself to one CPU so the figures are single-core.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from argus_venue_kraken.book import ChecksumBook
from argus_venue_kraken.testing import (
    ReferenceBook,
    book_frame,
    random_book_messages,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import machine_line, pin_to_one_core

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = (ROOT / "plugins/argus-venue-kraken/tests/fixtures/"
            "kraken_ws_v2_book_checksum_example.json")


def recording(n: int, seed: int, cache: Path) -> tuple[dict[str, Any], list[str]]:
    snap = json.loads(SNAPSHOT.read_text())["data"][0]
    path = cache / f"kraken_book_updates_n{n}_s{seed}.ndjson"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with path.open("w") as handle:
            for item in random_book_messages(snap, n, seed=seed, price_decimals=1,
                                             lot_decimals=8):
                handle.write(book_frame("update", item) + "\n")
        print(f"generated {n:,} frames in {time.perf_counter() - t0:.1f}s -> {path}")
    frames = path.read_text().splitlines()
    assert len(frames) == n, f"{path} is truncated; delete it"
    return snap, frames


def timed(label: str, n: int, fn: Any) -> tuple[str, int, float]:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
    finally:
        gc.enable()
    return label, n, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="book updates to replay")
    parser.add_argument("--reference-n", type=int, default=None,
                        help="updates for the slow reference (default: all)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/argus-bench-kraken"))
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        pin_to_one_core()

    snap, frames = recording(args.n, args.seed, args.cache)
    decoded = [json.loads(f, parse_float=str)["data"][0] for f in frames]
    results = []

    def run_book() -> None:
        book = ChecksumBook("BTC/USD", 10, 1, 8)
        book.apply_snapshot(snap["bids"], snap["asks"])
        apply = book.apply_update
        for i, item in enumerate(decoded):
            if apply(item["bids"], item["asks"]) != item["checksum"]:
                raise SystemExit(f"checksum mismatch at update {i}")

    def run_book_json() -> None:
        book = ChecksumBook("BTC/USD", 10, 1, 8)
        book.apply_snapshot(snap["bids"], snap["asks"])
        apply, loads = book.apply_update, json.loads
        for i, frame in enumerate(frames):
            item = loads(frame, parse_float=str)["data"][0]
            if apply(item["bids"], item["asks"]) != item["checksum"]:
                raise SystemExit(f"checksum mismatch at update {i}")

    feed_n = min(args.n, 200_000)

    def run_feed() -> None:
        from argus_venue_kraken.config import KrakenSettings
        from argus_venue_kraken.data import KrakenMarketFeed
        from argus_venue_kraken.instruments import PairInfo

        pair = PairInfo("BTC/USD", "XXBTZUSD", "XBTUSD", 1, 8, __import__("decimal").Decimal(
            "0.1"), __import__("decimal").Decimal("0.0001"), None, "online", "BTC", "USD")
        feed = KrakenMarketFeed(KrakenSettings(channels=["book"]), {"BTC/USD": pair})
        feed.on_connect()
        feed.on_frame(json.dumps({"channel": "book", "type": "snapshot",
                                  "data": [{**snap, "timestamp": "2023-11-14T22:13:20Z"}]}))
        on_frame = feed.on_frame
        for frame in frames[:feed_n]:
            on_frame(frame)
        if feed.checksum_mismatches:
            raise SystemExit("feed saw checksum mismatches")

    ref_n = min(args.reference_n or args.n, args.n)

    def run_reference() -> None:
        ref = ReferenceBook(10, 1, 8)
        ref.apply(snap["bids"], snap["asks"])
        for i, item in enumerate(decoded[:ref_n]):
            if ref.apply(item["bids"], item["asks"]) != item["checksum"]:
                raise SystemExit(f"reference mismatch at update {i}")

    results.append(timed("ChecksumBook (pre-decoded messages)", args.n, run_book))
    results.append(timed("ChecksumBook + json.loads(parse_float=str)", args.n, run_book_json))
    results.append(timed("venue feed on_frame -> OrderBook event", feed_n, run_feed))
    results.append(timed("plain-Python reference (sorted Decimal dicts)", ref_n, run_reference))

    ref_rate = results[-1][1] / results[-1][2]
    levels = sum(len(d["bids"]) + len(d["asks"]) for d in decoded) / len(decoded)
    print()
    print(machine_line(f"pinned to 1 core: {not args.no_pin}"))
    print(f"updates: {args.n:,} book messages, {levels:.2f} level changes each, "
          f"checksum verified on every message")
    print()
    print(f"{'path':<48} {'updates':>10} {'seconds':>9} {'updates/s':>12} {'x reference':>12}")
    for label, n, secs in results:
        rate = n / secs
        print(f"{label:<48} {n:>10,} {secs:>9.2f} {rate:>12,.0f} {rate / ref_rate:>11.1f}x")
    book_rate = results[0][1] / results[0][2]
    target = 200_000
    print()
    print(f"target >= {target:,} updates/s with checksums (book): "
          f"{'MET' if book_rate >= target else 'NOT MET'} ({book_rate:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
