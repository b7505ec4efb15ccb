"""The real WebSocket v2 client against a local Kraken-protocol server: books, faults, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import numpy as np
import pytest
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    Disconnect,
    LocalKrakenWs,
    ReferenceBook,
    Send,
    Silence,
    book_frame,
    random_book_messages,
)
from argus_venue_kraken.venue import KrakenVenue

from argus_core.errors import VenueError
from argus_core.market_state import MarketState
from argus_core.models import Bar, BookStatus, Fill, Liquidity, OrderBook, Side, Signal, Trade

BTC = "kraken:BTC/USD"


@pytest.fixture
def snap(load) -> dict[str, Any]:
    item = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    item["timestamp"] = "2023-11-14T22:13:20.000000Z"
    return item


@pytest.fixture
def items(snap) -> list[dict[str, Any]]:
    return list(random_book_messages(snap, 40, seed=11, price_decimals=1, lot_decimals=8))


def state_after(snap: dict[str, Any], items: list[dict[str, Any]], k: int) -> ReferenceBook:
    """The true book after the snapshot and the first ``k`` updates."""
    ref = ReferenceBook(10, 1, 8)
    ref.apply(snap["bids"], snap["asks"])
    for item in items[:k]:
        ref.apply(item["bids"], item["asks"])
    return ref


def snapshot_of(ref: ReferenceBook, ts: str) -> dict[str, Any]:
    """A fresh snapshot item of the reference state (as Kraken would send after resubscribe)."""
    bids, asks = ref.top()
    return {"symbol": "BTC/USD", "bids": [{"price": str(p), "qty": str(q)} for p, q in bids],
            "asks": [{"price": str(p), "qty": str(q)} for p, q in asks],
            "checksum": ref.checksum(), "timestamp": ts}


def assert_book_equals(ob: OrderBook, ref: ReferenceBook) -> None:
    bids, asks = ref.top()
    assert np.array_equal(ob.bids, np.array([[float(p), float(q)] for p, q in bids]))
    assert np.array_equal(ob.asks, np.array([[float(p), float(q)] for p, q in asks]))


async def take(venue: KrakenVenue, n: int, timeout: float = 10.0) -> list[Any]:
    """The first ``n`` events of the venue stream (the stream is closed afterwards)."""
    out: list[Any] = []
    async with contextlib.aclosing(venue.stream()) as stream, asyncio.timeout(timeout):
        async for event in stream:
            out.append(event)
            if len(out) >= n:
                break
    return out


@pytest.fixture
async def venue_for(rest_server, make_settings):
    venues: list[KrakenVenue] = []

    def make(ws: LocalKrakenWs, **overrides: Any) -> KrakenVenue:
        settings = make_settings(rest_url=rest_server.url, ws_url=ws.url,
                                 **{"pairs": ["BTC/USD"], "channels": ["book"], **overrides})
        venue = KrakenVenue(settings)
        venues.append(venue)
        return venue

    yield make
    for venue in venues:
        await venue.close()


async def test_snapshot_and_updates_match_reference_and_market_state(snap, items, venue_for):
    session = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap)),
               Send({"channel": "heartbeat"}),
               *(Send(book_frame("update", it)) for it in items)]
    async with LocalKrakenWs([session]) as ws:
        venue = venue_for(ws)
        events = await take(venue, 1 + len(items))
        (sub,) = ws.subscriptions("book")
        assert sub["params"] == {"channel": "book", "symbol": ["BTC/USD"], "depth": 10,
                                 "snapshot": True}
    assert all(isinstance(e, OrderBook) for e in events)
    state = MarketState()
    for k, event in enumerate(events):
        assert_book_equals(event, state_after(snap, items, k))
        state.apply(event)
    assert np.array_equal(state.book(BTC).bid_levels(), events[-1].bids)
    assert np.array_equal(state.book(BTC).ask_levels(), events[-1].asks)
    assert state.tradeable(BTC) == (True, "")
    assert events[-1].ts_ns > events[0].ts_ns


@pytest.mark.parametrize("fault", ["corrupted_level", "sequence_gap", "bad_checksum"])
async def test_mismatch_marks_stale_and_resubscribes(fault, snap, items, venue_for):
    if fault == "corrupted_level":
        bad = json.loads(json.dumps(items[5]))
        side = "bids" if bad["bids"] else "asks"
        bad[side][0]["qty"] = "1.23456789"
        faulty = [Send(book_frame("update", bad))]
    elif fault == "sequence_gap":
        faulty = [Send(book_frame("update", items[6]))]  # items[5] never arrives
    else:
        faulty = [Send(book_frame("update", {**items[5], "checksum": 12345}))]
    session = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap)),
               *(Send(book_frame("update", it)) for it in items[:5]), *faulty,
               Send(book_frame("update", items[7])),  # ignored: book is awaiting a snapshot
               AwaitSubscribe("book", "BTC/USD", count=2),
               Send(book_frame("snapshot", snapshot_of(state_after(snap, items, 8),
                                                        items[7]["timestamp"]))),
               *(Send(book_frame("update", it)) for it in items[8:11])]
    async with LocalKrakenWs([session]) as ws:
        venue = venue_for(ws)
        events = await take(venue, 1 + 5 + 1 + 1 + 3)
        unsubs = [m for _, m in ws.received if m.get("method") == "unsubscribe"]
        assert len(unsubs) == 1 and unsubs[0]["params"]["symbol"] == ["BTC/USD"]
        assert len(ws.subscriptions("book")) == 2 and ws.connections == 1
    assert [type(e).__name__ for e in events] == (["OrderBook"] * 6 + ["BookStatus"]
                                                  + ["OrderBook"] * 4)
    status = events[6]
    assert status.live is False and "checksum mismatch" in status.reason
    state = MarketState()
    for event in events[:7]:
        state.apply(event)
    assert state.tradeable(BTC)[0] is False
    for event in events[7:]:
        state.apply(event)
    assert state.tradeable(BTC) == (True, "")
    assert_book_equals(events[-1], state_after(snap, items, 11))
    assert venue.feed is not None and venue.feed.checksum_mismatches == 1


@pytest.mark.parametrize("abort", [False, True])
async def test_disconnect_marks_stale_then_reconnects_and_resubscribes(abort, snap, items,
                                                                       venue_for):
    first = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap)),
             *(Send(book_frame("update", it)) for it in items[:3]), Disconnect(abort=abort)]
    second = [AwaitSubscribe("book"),
              Send(book_frame("snapshot", snapshot_of(state_after(snap, items, 5),
                                                      items[4]["timestamp"]))),
              *(Send(book_frame("update", it)) for it in items[5:8])]
    async with LocalKrakenWs([first, second]) as ws:
        venue = venue_for(ws, channels=["book", "trade"])
        events = await take(venue, 4 + 1 + 4)
        assert ws.connections == 2
        assert ws.subscriptions("book", conn=1) and ws.subscriptions("trade", conn=1)
    status = events[4]
    assert isinstance(status, BookStatus) and not status.live
    assert status.reason.startswith("disconnected")
    assert all(isinstance(e, OrderBook) for e in events[5:])
    assert_book_equals(events[-1], state_after(snap, items, 8))


async def test_malformed_frames_put_books_in_doubt(snap, items, venue_for):
    session = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap)),
               Send(book_frame("update", items[0])), Send('{"channel": "book", "type": "upd'),
               Send(book_frame("update", items[1])),
               AwaitSubscribe("book", count=2),
               Send(book_frame("snapshot", snapshot_of(state_after(snap, items, 2),
                                                       items[1]["timestamp"]))),
               Send('[1, 2, 3]'),  # valid JSON, not an object: dropped, books still in doubt
               AwaitSubscribe("book", count=3),
               Send(book_frame("snapshot", snapshot_of(state_after(snap, items, 2),
                                                       items[1]["timestamp"]))),
               Send({"channel": "book", "type": "update",
                     "data": [{"symbol": "BTC/USD", "bids": [{"price": "x", "qty": "1"}],
                               "asks": [], "checksum": 1}]}),
               AwaitSubscribe("book", count=4),
               Send(book_frame("snapshot", snapshot_of(state_after(snap, items, 2),
                                                       items[1]["timestamp"])))]
    async with LocalKrakenWs([session]) as ws:
        venue = venue_for(ws)
        events = await take(venue, 2 + 1 + 1 + 1 + 1 + 1 + 1)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["OrderBook", "OrderBook", "BookStatus", "OrderBook", "BookStatus",
                     "OrderBook", "BookStatus", "OrderBook"]
    assert "malformed" in events[2].reason and "malformed" in events[6].reason
    assert venue.feed is not None and venue.feed.malformed == 3


async def test_timestamp_going_backwards_is_sequence_doubt(snap, items, venue_for):
    stale = {**items[2], "timestamp": "2020-01-01T00:00:00.000000Z"}
    session = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap)),
               *(Send(book_frame("update", it)) for it in items[:2]),
               Send(book_frame("update", stale)), AwaitSubscribe("book", count=2),
               Send(book_frame("snapshot", snapshot_of(state_after(snap, items, 3),
                                                       items[2]["timestamp"])))]
    async with LocalKrakenWs([session]) as ws:
        events = await take(venue_for(ws), 5)
    assert "sequence doubt" in events[3].reason and not events[3].live
    assert_book_equals(events[4], state_after(snap, items, 3))


async def test_status_maintenance_and_back_online(snap, venue_for, load):
    status = load("kraken_ws_v2_status.json")
    maintenance = json.loads(json.dumps(status))
    maintenance["data"][0]["system"] = "maintenance"
    session = [Send(status), AwaitSubscribe("book"), Send(book_frame("snapshot", snap)),
               Send(load("kraken_ws_v2_heartbeat.json")), Send(maintenance),
               Send(book_frame("snapshot", snap)),  # ignored while in maintenance
               Send(status), AwaitSubscribe("book", count=2), Send(book_frame("snapshot", snap))]
    async with LocalKrakenWs([session]) as ws:
        events = await take(venue_for(ws), 4)
        assert len(ws.subscriptions("book")) == 2
    assert [type(e).__name__ for e in events] == ["OrderBook", "BookStatus", "BookStatus",
                                                  "OrderBook"]
    assert not events[1].live and "maintenance" in events[1].reason
    assert "back online" in events[2].reason


async def test_silent_socket_is_dropped_after_heartbeat_deadline(snap, venue_for):
    first = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap)), Silence()]
    second = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap))]
    async with LocalKrakenWs([first, second]) as ws:
        venue = venue_for(ws, heartbeat_timeout_s=0.2)
        events = await take(venue, 3)
        assert ws.connections == 2
    assert "heartbeat" in events[1].reason and isinstance(events[2], OrderBook)


async def test_rejected_pair_is_a_venue_error(venue_for):
    async with LocalKrakenWs([[AwaitSubscribe("book")]], reject_symbols=("BTC/USD",)) as ws:
        with pytest.raises(VenueError, match="Currency pair not supported"):
            await take(venue_for(ws), 1)


async def test_documented_matic_frames_verbatim(venue_for):
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    session = [AwaitSubscribe("book"),
               Send((fixtures / "kraken_ws_v2_book_snapshot.json").read_text()),
               Send((fixtures / "kraken_ws_v2_book_update.json").read_text())]
    async with LocalKrakenWs([session]) as ws:
        events = await take(venue_for(ws, pairs=["MATIC/USD"]), 2)
    assert all(isinstance(e, OrderBook) for e in events)
    assert events[1].bids[-1].tolist() == [0.5657, 1098.3947558]


async def test_ticker_trade_and_ohlc_channels(venue_for, load):
    trade = {"channel": "trade", "type": "update",
             "data": [{"symbol": "MATIC/USD", "side": "sell", "price": 0.5117, "qty": 40.0,
                       "ord_type": "market", "trade_id": 4665906,
                       "timestamp": "2023-09-25T07:49:37.708706Z"}]}
    later_bar = load("kraken_ws_v2_ohlc_update.json")
    later_bar["data"][0]["interval_begin"] = "2023-10-04T16:30:00.000000000Z"
    later_bar["timestamp"] = "2023-10-04T16:30:02.000000000Z"
    session = [AwaitSubscribe("ohlc"), Send(load("kraken_ws_v2_ticker_snapshot.json")),
               Send(trade), Send(trade),  # the replayed trade is dropped
               Send(load("kraken_ws_v2_ohlc_snapshot.json")),
               Send(load("kraken_ws_v2_ohlc_update.json")),  # in progress: no bar yet
               Send(later_bar)]
    async with LocalKrakenWs([session]) as ws:
        venue = venue_for(ws, pairs=["ALGO/USD", "MATIC/USD"],
                          channels=["ticker", "trade", "ohlc"], ohlc_interval_min=5)
        events = await take(venue, 5 + 1 + 2 + 1)
        (ohlc_sub,) = ws.subscriptions("ohlc")
        assert ohlc_sub["params"]["interval"] == 5
    signals = [e for e in events if isinstance(e, Signal)]
    assert {s.name: s.value for s in signals}["ticker.last"] == 0.10035
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(trades) == 1 and trades[0].aggressor is Side.SELL
    assert str(trades[0].price) == "0.5117"
    bars = [e for e in events if isinstance(e, Bar)]
    # Each bar is stamped at its close: interval_begin + 5 minutes.
    assert [(b.instrument_id, b.ts_ns) for b in bars] == [
        ("kraken:ALGO/USD", 1696433400 * 10**9), ("kraken:ALGO/USD", 1696433700 * 10**9),
        ("kraken:MATIC/USD", 1696437000 * 10**9)]
    assert bars[-1].close == 0.5627


async def test_executions_stream_yields_fills(rest_server, make_settings):
    execution = {"channel": "executions", "type": "update", "data": [
        {"exec_type": "trade", "order_id": "OK4GJX-KSTLS-7DZZO5", "cl_ord_id": "argus-1",
         "exec_id": "TCJ2CA-4SJKR-TPZXLD", "symbol": "BTC/USD", "side": "buy",
         "last_qty": 0.5, "last_price": 45000.1, "liquidity_ind": "m",
         "fees": [{"asset": "USD", "qty": 56.25}], "order_status": "filled",
         "timestamp": "2023-10-06T17:35:55.440295Z"},
        {"exec_type": "new", "order_id": "OXXX", "symbol": "BTC/USD",
         "timestamp": "2023-10-06T17:35:56.000000Z"}]}
    session = [AwaitSubscribe("executions"), Send(execution), Send(execution)]
    async with LocalKrakenWs([session]) as ws:
        settings = make_settings(rest_url=rest_server.url, ws_auth_url=ws.url, credentials=True)
        venue = KrakenVenue(settings)
        try:
            async with contextlib.aclosing(venue.executions()) as fills, asyncio.timeout(10):
                fill = await anext(fills)
            (sub,) = ws.subscriptions("executions")
            assert sub["params"]["token"] == "local-ws-token"
        finally:
            await venue.close()
    assert isinstance(fill, Fill)
    assert (fill.client_order_id, fill.side, fill.liquidity) == ("argus-1", Side.BUY,
                                                                 Liquidity.MAKER)
    assert str(fill.price) == "45000.1" and str(fill.fee) == "56.25"
    assert len(rest_server.calls("GetWebSocketsToken")) == 1
