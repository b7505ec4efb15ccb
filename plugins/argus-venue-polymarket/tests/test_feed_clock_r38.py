"""Red team r38, market data: venue time stamps ahead of this machine's clock.

The core's clock is the newest stamp any event carried, and a book older than that clock by
``stale_after_s`` is not tradeable.  A single frame stamped years ahead (damage, or
microseconds read as milliseconds) was taken as it came: the core's clock jumped there and
every other book was stale by age for the rest of the run, the stream's own overdue check
(once a second of the newest stamp) never ran again, and the token's later books and changes
were all stamped in the future (timestamps never go back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MAX_AHEAD_NS, PolymarketRest, book_events
from argus_venue_polymarket.resolved import settle_closed
from argus_venue_polymarket.testing import make_book, stream_frames

from argus_core import BookStatus, MarketEvent, OrderBook, Settlement

T1, T2 = "111", "222"
NOW_MS = "1786875382652"  # make_book's stamp (2026-08-16): in the past
YEAR_5138_MS = "100000000000000"
MICROSECONDS = NOW_MS + "000"  # the same instant in microseconds, read as milliseconds


def _book(token: str, ms: str = NOW_MS, ask: str = "0.45") -> dict[str, Any]:
    return dict(make_book(token, "0xm", [("0.40", "10")], [(ask, "10")], timestamp=ms),
                event_type="book")


def _ahead(events: list[MarketEvent]) -> list[MarketEvent]:
    limit = time.time_ns() + MAX_AHEAD_NS
    return [e for e in events if getattr(e, "ts_ns", 0) > limit]


def _last_book_of(token: str) -> Callable[[list[MarketEvent]], bool]:
    return lambda out: any(isinstance(e, OrderBook) and e.instrument_id.endswith(token)
                           and e.asks[0, 0] == 0.47 for e in out)


async def test_a_book_stamped_years_ahead_is_a_malformed_frame() -> None:
    events = await stream_frames([T1, T2], [_book(T1), _book(T2), _book(T1, YEAR_5138_MS, "0.46"),
                                            _book(T2, NOW_MS, "0.47")], _last_book_of(T2))
    assert not _ahead(events), f"events stamped ahead of the clock: {_ahead(events)}"
    stale = [e for e in events if isinstance(e, BookStatus) and e.instrument_id.endswith(T1)]
    assert stale and "ahead of this machine's clock" in stale[0].reason


async def test_a_book_stamped_in_microseconds_is_a_malformed_frame() -> None:
    events = await stream_frames([T1, T2], [_book(T1), _book(T2), _book(T1, MICROSECONDS, "0.46"),
                                            _book(T2, NOW_MS, "0.47")], _last_book_of(T2))
    assert not _ahead(events), f"events stamped ahead of the clock: {_ahead(events)}"
    assert not any(isinstance(e, OrderBook) and e.asks[0, 0] == 0.46 for e in events)


async def test_a_change_and_a_print_stamped_ahead_are_malformed_frames(pm_load: Any) -> None:
    change = {"event_type": "price_change", "market": "0xm", "timestamp": YEAR_5138_MS,
              "price_changes": [{"asset_id": T1, "price": "0.44", "size": "5", "side": "SELL",
                                 "best_bid": "0.40", "best_ask": "0.44"}]}
    trade = dict(pm_load("polymarket_ws_market_last_trade_price.json"), asset_id=T2,
                 timestamp=YEAR_5138_MS)
    events = await stream_frames(
        [T1, T2], [_book(T1), _book(T2), change, trade, _book(T2, NOW_MS, "0.47")],
        _last_book_of(T2))
    assert not _ahead(events), f"events stamped ahead of the clock: {_ahead(events)}"


async def test_a_resolution_stamped_ahead_settles_at_this_machines_clock(pm_load: Any) -> None:
    resolved = dict(pm_load("polymarket_ws_market_market_resolved.json"), assets_ids=[T1, T2],
                    winning_asset_id=T1, timestamp=YEAR_5138_MS)
    events = await stream_frames(
        [T1, T2], [_book(T1), _book(T2), resolved],
        lambda out: sum(isinstance(e, Settlement) for e in out) == 2)
    assert not _ahead(events), f"events stamped ahead of the clock: {_ahead(events)}"


async def test_a_rest_book_stamped_ahead_is_not_taken(snapshot_server: Any) -> None:
    srv = snapshot_server([], [make_book(T1, "0xm", [("0.40", "10")], [("0.45", "10")],
                                         timestamp=YEAR_5138_MS)])
    rest = PolymarketRest(PolymarketSettings(clob_url=srv.url, request_timeout_s=5.0))
    try:
        events = book_events(await rest.books([T1]), verify_hash=True)
    finally:
        await rest.close()
    assert len(events) == 1 and isinstance(events[0], BookStatus), events
    assert not events[0].live and "ahead" in events[0].reason


async def test_a_closed_time_ahead_settles_at_now(snapshot_server: Any, pm_load: Any) -> None:
    market = pm_load("polymarket_gamma_market.json")
    market.update(closed=True, outcomePrices='["1", "0"]', umaResolutionStatus="resolved",
                  closedTime="5138-11-16T09:46:40Z")
    srv = snapshot_server([{"id": "1", "title": "e", "markets": [market]}], [])
    rest = PolymarketRest(PolymarketSettings(gamma_url=srv.url, request_timeout_s=5.0))
    try:
        markets = await rest.closed_markets([market["conditionId"]])
    finally:
        await rest.close()
    now = time.time_ns()
    settlements, pending = settle_closed(markets, now, set())
    assert len(settlements) == 2 and not pending, (settlements, pending)
    assert all(s.ts_ns <= now for s in settlements), [s.ts_ns for s in settlements]
