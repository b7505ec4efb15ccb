"""The real websocket market-channel client against a local ``websockets`` server:
snapshots, deltas, trades, resolution, disconnects, malformed frames and bad hashes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream, PolymarketRest
from argus_venue_polymarket.testing import make_book
from websockets.asyncio.server import serve

from argus_core.models import BookDelta, BookStatus, OrderBook, Settlement, Signal, Trade

T1, T2 = "111", "222"


def _book(token: str, ask: str = "0.45") -> dict[str, Any]:
    return dict(make_book(token, "0xm", [("0.40", "10")], [(ask, "10")]), event_type="book")


class Script:
    """Per-connection frame scripts; records what each client sent."""

    def __init__(self, scripts: list[list[Any]], pong_with_book: bool = False) -> None:
        self.scripts = scripts
        self.pong_with_book = pong_with_book
        self.subscriptions: list[dict[str, Any]] = []
        self.pings = 0
        self.connections = 0

    async def handler(self, ws: Any) -> None:
        index = self.connections
        self.connections += 1
        sub = json.loads(await ws.recv())
        self.subscriptions.append(sub)
        for frame in self.scripts[min(index, len(self.scripts) - 1)]:
            if frame == "CLOSE":
                await ws.close()
                return
            if callable(frame):
                frame = frame(sub)
            await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
        async for msg in ws:  # keep the connection open, answer PINGs
            if msg == "PING":
                self.pings += 1
                await ws.send("PONG")
                if self.pong_with_book:  # gives the client an event per keep-alive
                    await ws.send(json.dumps(_book(sub["assets_ids"][0])))


async def _collect(stream: MarketStream, until: Any, limit: int = 200) -> list[Any]:
    out: list[Any] = []

    async def run() -> None:
        async for ev in stream:
            out.append(ev)
            if until(out) or len(out) >= limit:
                return

    await asyncio.wait_for(run(), timeout=10)
    return out


def _settings(port: int, **kw: Any) -> PolymarketSettings:
    return PolymarketSettings(ws_url=f"ws://127.0.0.1:{port}", clob_url="http://127.0.0.1:9",
                              reconnect_min_s=0.01, reconnect_max_s=0.02, **kw)


async def test_book_deltas_trades_resolution_and_reconnect(pm_load) -> None:  # type: ignore[no-untyped-def]
    # (Stamped at make_book's snapshot: a change older than its book is refused.)
    price_change = {"event_type": "price_change", "market": "0xm", "timestamp": "1786875382652",
                    "price_changes": [{"asset_id": T1, "price": "0.44", "size": "5",
                                       "side": "SELL", "best_bid": "0.40", "best_ask": "0.44"}]}
    trade = dict(pm_load("polymarket_ws_market_last_trade_price.json"), asset_id=T1)
    tick = dict(pm_load("polymarket_ws_market_tick_size_change.json"), asset_id=T2)
    resolved = dict(pm_load("polymarket_ws_market_market_resolved.json"), assets_ids=[T1, T2],
                    winning_asset_id=T1)
    script = Script([
        [[_book(T1), _book(T2)], price_change, trade, tick, "CLOSE"],  # snapshot array frame
        [_book(T1, "0.46"), resolved],
    ])
    async with serve(script.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        s = _settings(port)
        stream = MarketStream(s, [T1, T2], PolymarketRest(s), seed=1)
        events = await _collect(
            stream, lambda out: sum(isinstance(e, Settlement) for e in out) >= 2)
    kinds = [type(e).__name__ for e in events]
    assert kinds[:5] == ["OrderBook", "OrderBook", "BookDelta", "Trade", "Signal"]
    delta = events[2]
    assert isinstance(delta, BookDelta) and (str(delta.price), str(delta.size)) == ("0.44", "5")
    assert isinstance(events[3], Trade) and str(events[3].price) == "0.456"
    assert isinstance(events[4], Signal) and events[4].value == 0.001
    # the disconnect marks both books stale, the fresh snapshot makes T1 live again
    stale = [e for e in events if isinstance(e, BookStatus)]
    assert {e.instrument_id for e in stale} == {f"polymarket:{T1}", f"polymarket:{T2}"}
    assert all(not e.live and "disconnected" in e.reason for e in stale)
    after = events[kinds.index("BookStatus"):]
    assert any(isinstance(e, OrderBook) and e.asks[0, 0] == 0.46 for e in after)
    settle = {e.instrument_id: e.price for e in events if isinstance(e, Settlement)}
    assert settle == {f"polymarket:{T1}": 1, f"polymarket:{T2}": 0}
    assert script.connections == 2 and stream.stats["disconnects"] >= 1
    assert script.subscriptions[1] == {"assets_ids": [T1, T2], "type": "market",
                                       "custom_feature_enabled": True}  # resubscribed


async def test_bad_hash_mismatch_and_malformed_frames_make_books_stale(snapshot_server  # type: ignore[no-untyped-def]
                                                                       ) -> None:
    bad = _book(T2)
    bad["asks"] = [{"price": "0.41", "size": "10"}]  # levels changed, served hash kept
    wrong_best = {"event_type": "price_change", "timestamp": "1786875382652", "price_changes": [
        {"asset_id": T1, "price": "0.43", "size": "1", "side": "SELL", "best_bid": "0.40",
         "best_ask": "0.42"}]}
    script = Script([[_book(T1), bad, wrong_best, "{not json"]])
    rest_books = [make_book(T1, "0xm", [("0.39", "7")], [("0.47", "7")]),
                  make_book(T2, "0xm", [("0.39", "7")], [("0.47", "7")])]
    srv = snapshot_server([], rest_books)
    async with serve(script.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        s = PolymarketSettings(ws_url=f"ws://127.0.0.1:{port}", clob_url=srv.url)
        stream = MarketStream(s, [T1, T2], PolymarketRest(s))
        # Wait for a fresh snapshot of *each* book (T1 may be resnapshotted twice first).
        events = await _collect(stream, lambda out: len({
            e.instrument_id for e in out
            if isinstance(e, OrderBook) and e.asks[0, 0] == 0.47}) >= 2)
    statuses = [e for e in events if isinstance(e, BookStatus)]
    reasons = " | ".join(e.reason for e in statuses)
    # T2 was never live, so its bad hash needs no BookStatus; it is counted and resnapshotted
    assert "disagree" in reasons
    assert stream.stats["hash_mismatch"] == 1 and stream.stats["best_mismatch"] == 1
    assert stream.stats["malformed"] == 1 and stream.stats["resnapshots"] >= 2
    # the bad-hash book never reached the state; fresh REST snapshots did
    assert not any(isinstance(e, OrderBook) and e.asks[0, 0] == 0.41 for e in events)
    assert {e.instrument_id for e in events if isinstance(e, OrderBook) and e.asks[0, 0] == 0.47
            } == {f"polymarket:{T1}", f"polymarket:{T2}"}


async def test_sharding_and_keepalive() -> None:
    script = Script([[lambda sub: [_book(t) for t in sub["assets_ids"]]]], pong_with_book=True)
    async with serve(script.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        s = _settings(port, tokens_per_ws_connection=1, ws_ping_interval_s=0.01)
        stream = MarketStream(s, [T1, T2, "333"], PolymarketRest(s))
        assert stream.shards() == [[T1], [T2], ["333"]]
        await _collect(stream, lambda out: len(out) >= 3 and script.pings >= 3)
    assert sorted(tuple(s["assets_ids"]) for s in script.subscriptions) == [("111",), ("222",),
                                                                           ("333",)]
    assert script.pings >= 3
