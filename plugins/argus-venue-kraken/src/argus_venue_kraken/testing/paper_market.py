"""A local Kraken exchange that never closes: a process of its own, for end-to-end tests
of a paper run that a person follows live and halts (the dashboard's browser tests and
the Telegram plugin's bot test run it).

Run as ``python -m argus_venue_kraken.testing.paper_market --ready PATH`` (or through
:class:`argus_venue_kraken.testing.paper.KrakenMarket`, which starts it and reads its
URLs): it serves Kraken's REST API (``AssetPairs`` for BTC/USD,
:class:`~argus_venue_kraken.testing.LocalKrakenRest`) and its WS v2 public feed
(:class:`~argus_venue_kraken.testing.LocalKrakenWs`) on 127.0.0.1, writes ``{"rest_url":
..., "ws_url": ...}`` to PATH once both listen, then plays an endless market until it is
sent SIGTERM or SIGINT: after each subscriber's ``book`` and ``ohlc`` subscriptions, a
checksummed book snapshot and the first hourly bar, then every ``--every`` seconds (wall
clock) a book update that recentres the ladder on the last close and the next bar's
``ohlc`` frame (which completes the previous bar). The closes zigzag, so ``ma_cross``
with ``fast = 2, slow = 3`` buys and sells every few bars and the paper broker fills its
market orders on the served book. While the file ``--hold`` names exists, no new bar
comes (a test holds the market still, e.g. while long); the file ``--events`` names
holds the number of market events sent so far (frames the venue turns into an event:
each book frame, each ohlc update), so a test knows when the run has caught up.

The bars are stamped an hour apart from a fixed start (a replayed market, not the wall
clock): the paper run's clock is the stream's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from argus_venue_kraken.testing import (
    AwaitSubscribe,
    Call,
    LocalKrakenRest,
    LocalKrakenWs,
    ReferenceBook,
    Send,
    Step,
    Until,
    book_frame,
    recentre_book,
)

SYMBOL = "BTC/USD"
INSTRUMENT = "kraken:BTC/USD"
START_S = 1_704_067_200  # 2024-01-01T00:00:00Z, the first bar's start
HOUR_S = 3600
#: The XXBTZUSD entry of Kraken's documented AssetPairs answer (the Kraken plugin's
#: ``tests/fixtures/kraken_rest_assetpairs.json``), the fields the venue reads.
ASSET_PAIRS = {"error": [], "result": {"XXBTZUSD": {
    "altname": "XBTUSD", "wsname": "XBT/USD", "aclass_base": "currency", "base": "XXBT",
    "aclass_quote": "currency", "quote": "ZUSD", "lot": "unit", "cost_decimals": 5,
    "pair_decimals": 1, "lot_decimals": 8, "lot_multiplier": 1,
    "fees": [[0, 0.26], [50000, 0.24], [100000, 0.22]],
    "fees_maker": [[0, 0.16], [50000, 0.14], [100000, 0.12]],
    "fee_volume_currency": "ZUSD", "ordermin": "0.0001", "costmin": "0.5",
    "tick_size": "0.1", "status": "online"}}}
#: Reconnections served (each connection plays a fresh session from a snapshot).
SESSIONS = 20


def _next_bar_due(due: float, stopping: asyncio.Event, hold: Path | None
                  ) -> Callable[[], bool]:
    """True once the market is stopping, or ``due`` has passed and no hold is on."""
    def ready() -> bool:
        return stopping.is_set() or (
            time.monotonic() >= due and not (hold is not None and hold.exists()))
    return ready


def close_of(i: int) -> Decimal:
    """Bar ``i``'s close: a zigzag of period 8 around 30,000 (1 % a step)."""
    phase = i % 8
    level = phase if phase <= 4 else 8 - phase
    return Decimal(30000) + Decimal(300) * level


def rfc3339(ts_ns: int) -> str:
    """Kraken's timestamp text."""
    seconds, frac = divmod(ts_ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + \
        f".{frac:09d}Z"


def ohlc_frame(i: int, kind: str) -> str:
    """The v2 ``ohlc`` frame of hourly bar ``i`` (numbers as JSON numbers, as Kraken
    sends them)."""
    begin = (START_S + i * HOUR_S) * 10**9
    close = close_of(i)
    open_ = close_of(i - 1) if i else close
    high, low = max(open_, close) + 50, min(open_, close) - 50
    return (f'{{"channel":"ohlc","type":"{kind}","data":[{{"symbol":"{SYMBOL}",'
            f'"open":{open_},"high":{high},"low":{low},"close":{close},"trades":40,'
            f'"volume":12.5,"vwap":{(high + low + close) / 3:.1f},'
            f'"interval_begin":"{rfc3339(begin)}","interval":60,'
            f'"timestamp":"{rfc3339(begin + HOUR_S * 10**9)}"}}]}}')


class EventCount:
    """Market events sent, over every connection; written to ``path`` after each."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.n = path, 0

    def add(self, n: int) -> None:
        """``n`` more events have been sent."""
        self.n += n
        if self.path is not None:
            partial = self.path.with_suffix(".partial")
            partial.write_text(str(self.n))
            partial.replace(self.path)


def session(rest: LocalKrakenRest, every_s: float, hold: Path | None,
            sent: EventCount, stopping: asyncio.Event) -> Iterator[Step]:
    """One connection's endless script (steps made as the server asks for them, so each
    wait is measured from the step before it)."""
    ref = ReferenceBook(10, 1, 8)
    rng = random.Random(20240101)

    def book(kind: str, mid: Decimal, ts_ns: int) -> Iterator[Step]:
        item = recentre_book(ref, mid, rng, symbol=SYMBOL, ts_ns=ts_ns)
        bids, asks = ref.top()
        # The REST side's book follows the stream (a live order would walk it).
        yield Call(lambda: rest.set_book(SYMBOL, bids, asks))
        yield Send(book_frame(kind, item))

    yield AwaitSubscribe("book")
    yield AwaitSubscribe("ohlc")
    yield from book("snapshot", close_of(0), START_S * 10**9)
    yield Send(ohlc_frame(0, "snapshot"))  # the first bar, not complete: no event yet
    yield Call(lambda: sent.add(1))
    i = 0
    while True:
        # Stopping ends a hold too: the server waits for every session to end.
        yield Until(_next_bar_due(time.monotonic() + every_s, stopping, hold),
                    timeout_s=3600, poll_s=0.02)
        i += 1
        # The book moves to the last close a second before the next bar starts.
        yield from book("update", close_of(i - 1), (START_S + i * HOUR_S - 1) * 10**9)
        yield Send(ohlc_frame(i, "update"))  # completes bar i - 1
        yield Call(lambda: sent.add(2))


async def serve(ready: Path, every_s: float, hold: Path | None, events: Path | None
                ) -> None:
    """Serve until SIGTERM or SIGINT; write the URLs to ``ready`` once listening."""
    rest = LocalKrakenRest({"AssetPairs": ASSET_PAIRS}).start()
    sent, stop = EventCount(events), asyncio.Event()
    sessions: list[Any] = [session(rest, every_s, hold, sent, stop) for _ in range(SESSIONS)]
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with LocalKrakenWs(sessions) as ws:
            partial = ready.with_suffix(".partial")
            partial.write_text(json.dumps({"rest_url": rest.url, "ws_url": ws.url,
                                           "pid": os.getpid()}))
            partial.replace(ready)  # whole or absent: the test never reads half of it
            await stop.wait()
    finally:
        rest.stop()


def main() -> None:
    """``python -m argus_venue_kraken.testing.paper_market --ready PATH [--every S]
    [--hold PATH] [--events PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready", type=Path, required=True,
                        help="file to write the servers' URLs to once they listen")
    parser.add_argument("--every", type=float, default=0.2,
                        help="seconds between two bars (wall clock)")
    parser.add_argument("--hold", type=Path, default=None,
                        help="while this file exists, no new bar is played")
    parser.add_argument("--events", type=Path, default=None,
                        help="file to keep the number of market events sent in")
    args = parser.parse_args()
    asyncio.run(serve(args.ready, args.every, args.hold, args.events))


if __name__ == "__main__":
    main()
