"""A market that resolves while no market-channel connection listens is settled.

With the Gamma poll off (``settlement_poll_s = 0``) only the channel's
``market_resolved`` settled a market, and Polymarket sends it once, to the connections
open then: a market that resolved between the venue's discovery and the stream's first
subscription, or while the socket was down, was never settled and an
``end_when_resolved`` stream never ended.  Now each connection's start asks Gamma once
for the followed markets (the poll's own read).  The replay server's ``resolve()`` changes
Gamma only (no frame), which is exactly the unheard resolution.
"""

from __future__ import annotations

import asyncio
from typing import Any

from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import make_book, tokens_of
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.models import OrderBook, Settlement


def _server(fed_event: dict[str, Any]) -> SnapshotServer:
    books = [make_book(t, cond, [("0.40", "10")], [("0.45", "10")])
             for cond, yes, no in tokens_of(fed_event) for t in (yes, no)]
    prices = {str(m["id"]): ["0", "1"] for m in fed_event["markets"]}
    return SnapshotServer([fed_event], books, resolutions={"outcome_prices": prices},
                          ws_port=0).start()


def _venue(srv: SnapshotServer) -> PolymarketVenue:
    return PolymarketVenue(PolymarketSettings(
        gamma_url=srv.url, clob_url=srv.url, ws_url=srv.ws_url, settlement_poll_s=0,
        discovery_poll_s=0, end_when_resolved=True, reconnect_min_s=0.05,
        reconnect_max_s=0.1))


def _settled(seen: list[Any]) -> dict[str, Any]:
    return {e.instrument_id: e.price for e in seen if isinstance(e, Settlement)}


async def test_a_market_resolved_before_the_first_subscription_is_settled(
        fed_event: dict[str, Any]) -> None:
    srv = _server(fed_event)
    venue = _venue(srv)
    seen: list[Any] = []
    try:
        await venue.discover()  # the venue has read the markets open...
        srv.resolve()  # ...and they resolve before the stream subscribes: no frame
        async with asyncio.timeout(10):  # before: no end, the poll off
            async for ev in venue.stream():
                seen.append(ev)
    finally:
        await venue.close()
        srv.stop()
    n_tokens = 2 * len(tokens_of(fed_event))
    assert len(_settled(seen)) == n_tokens and set(_settled(seen).values()) == {0, 1}


async def test_a_market_resolved_while_the_socket_is_down_is_settled_on_reconnect(
        fed_event: dict[str, Any]) -> None:
    srv = _server(fed_event)
    venue = _venue(srv)
    seen: list[Any] = []

    def gamma_reads() -> int:
        return sum(1 for _, path, query in list(srv.requests)
                   if path.endswith("/markets") and "condition_ids" in str(query))

    async def outage() -> None:
        # the first connection's books, and its own Gamma read (nothing resolved yet)
        while sum(isinstance(e, OrderBook) for e in seen) < 2 or gamma_reads() < 1:
            await asyncio.sleep(0.01)
        srv.resolve()  # Gamma only: no connection hears it
        for conn in list(srv._ws_conns):  # (the server's threads: closed from one)
            await asyncio.to_thread(conn.close)
    task = asyncio.get_running_loop().create_task(outage())
    try:
        async with asyncio.timeout(10):
            async for ev in venue.stream():
                seen.append(ev)
        await task
    finally:
        task.cancel()
        await venue.close()
        srv.stop()
    assert len(_settled(seen)) == 2 * len(tokens_of(fed_event))
    assert venue._stream is not None and venue._stream.stats["connects"] >= 2
