"""Order updates from the WS v2 ``executions`` channel, and the TradesHistory backfill of
fills beyond the snapshot's last 50, against the local Kraken servers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from argus_venue_kraken.execution import CL_ORD_NAMESPACE
from argus_venue_kraken.schemas import parse_order_event
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
    Send,
)
from argus_venue_kraken.venue import KrakenVenue
from kraken_orders import BIDS

from argus_core.errors import DataError
from argus_core.models import Fill, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce

TOKEN = "local-ws-token"
RUN_ID = "5b7e0c2d9a41"
T0_NS = 1_700_000_000 * 10**9


def core_id(seq: int) -> str:
    return f"{RUN_ID}-{seq}-ma_cross-0"


def order(seq: int, qty: str, *, limit: str | None = None,
          tif: TimeInForce = TimeInForce.IOC, ts_ns: int = T0_NS) -> Order:
    return Order(core_id(seq), "kraken", "kraken:BTC/USD", Side.BUY, Decimal(qty),
                 Decimal(limit) if limit else None,
                 OrderType.LIMIT if limit else OrderType.MARKET, tif, "ma_cross", ts_ns)


async def take(it: AsyncIterator[Fill | OrderUpdate], *, fills: int = 0,
               updates: int = 0) -> list[Fill | OrderUpdate]:
    """Items in stream order until ``fills`` fills and ``updates`` updates have come."""
    got: list[Fill | OrderUpdate] = []
    async with asyncio.timeout(10):
        while (sum(isinstance(i, Fill) for i in got) < fills
               or sum(isinstance(i, OrderUpdate) for i in got) < updates):
            got.append(await anext(it))
    return got


def txid_of(exchange: LocalKrakenRest, client_order_id: str) -> str:
    wire = str(uuid.uuid5(CL_ORD_NAMESPACE, client_order_id))
    known = {**exchange.closed, **exchange.orders}
    (txid,) = [t for t, o in known.items() if o["cl_ord_id"] == wire]
    return txid


async def test_ioc_orders_are_acknowledged_then_cancelled_in_stream_order(exchange,
                                                                          make_settings):
    """An IOC that cannot fill ends CANCELLED (not open forever); a partial IOC is
    OPEN, filled in part, then CANCELLED — each with Kraken's txid as venue order id."""
    session = [AwaitSubscribe("executions"), ForwardExecutions(exchange)]
    async with LocalKrakenWs([session], token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        try:
            async with contextlib.aclosing(venue.executions()) as items:
                first = asyncio.ensure_future(take(items, updates=2))
                await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
                await venue.submit(order(1, "0.5", limit="37000.0"))  # below the ask
                missed = await first
                await venue.submit(order(2, "0.75", limit="37500.0"))  # 0.4 at the ask
                partial = await take(items, fills=1, updates=2)
        finally:
            await venue.close()
    tx1, tx2 = txid_of(exchange, core_id(1)), txid_of(exchange, core_id(2))
    assert [(u.client_order_id, u.status, u.venue_order_id) for u in missed] == [
        (core_id(1), OrderStatus.OPEN, tx1), (core_id(1), OrderStatus.CANCELLED, tx1)]
    assert missed[1].reason == "Unfilled remainder of IOC order"
    assert [type(i).__name__ for i in partial] == ["OrderUpdate", "Fill", "OrderUpdate"]
    ack, fill, cancel = partial
    assert isinstance(ack, OrderUpdate) and isinstance(cancel, OrderUpdate)
    assert isinstance(fill, Fill)
    assert (ack.status, cancel.status) == (OrderStatus.OPEN, OrderStatus.CANCELLED)
    assert {ack.client_order_id, fill.client_order_id, cancel.client_order_id} == {core_id(2)}
    assert ack.venue_order_id == cancel.venue_order_id == tx2
    assert (fill.price, fill.quantity) == (Decimal("37500.0"), Decimal("0.4"))
    assert venue.foreign_updates == 0


async def test_expired_and_user_cancelled_orders_carry_the_reason(exchange, make_settings):
    session = [AwaitSubscribe("executions"), ForwardExecutions(exchange)]
    async with LocalKrakenWs([session], token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        try:
            async with contextlib.aclosing(venue.executions()) as items:
                got = asyncio.ensure_future(take(items, updates=4))
                await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
                await venue.submit(order(1, "0.5", limit="37000.0", tif=TimeInForce.GTD))
                await venue.submit(order(2, "0.5", limit="36900.0", tif=TimeInForce.GTC))
                exchange.expire(txid_of(exchange, core_id(1)))
                await venue.cancel(core_id(2))
                updates = await got
        finally:
            await venue.close()
    final = {u.client_order_id: u for u in updates if u.status is not OrderStatus.OPEN}
    assert (final[core_id(1)].status, final[core_id(1)].reason) == (
        OrderStatus.CANCELLED, "expired: Order expired")
    assert (final[core_id(2)].status, final[core_id(2)].reason) == (
        OrderStatus.CANCELLED, "User requested")


async def test_a_post_only_order_rests_or_is_cancelled_rather_than_take(exchange, make_settings):
    session = [AwaitSubscribe("executions"), ForwardExecutions(exchange)]
    async with LocalKrakenWs([session], token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        try:
            async with contextlib.aclosing(venue.executions()) as items:
                got = asyncio.ensure_future(take(items, updates=3))
                await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
                # 37500 is the best ask: a post-only buy there would take it.
                assert await venue.submit(order(1, "0.5", limit="37500.0",
                                                tif=TimeInForce.POST_ONLY)) == []
                await venue.submit(order(2, "0.5", limit="36900.0", tif=TimeInForce.POST_ONLY))
                updates = await got
        finally:
            await venue.close()
    final = {u.client_order_id: u for u in updates if u.status is not OrderStatus.OPEN}
    assert (final[core_id(1)].status, final[core_id(1)].reason) == (
        OrderStatus.CANCELLED, "Post only order")
    assert core_id(2) not in final  # resting, as a maker
    assert txid_of(exchange, core_id(2)) in exchange.orders


async def test_order_events_of_foreign_orders_are_dropped_and_txid_only_events_map(
        exchange, make_settings):
    async with LocalKrakenWs([], token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        try:
            await venue.submit(order(1, "0.5", limit="37000.0", tif=TimeInForce.GTC))
            txid = txid_of(exchange, core_id(1))
            frame = {"channel": "executions", "type": "update", "sequence": 3, "data": [
                {"exec_type": "new", "order_status": "new", "order_id": "OFOREIGN-MANUAL",
                 "symbol": "BTC/USD", "timestamp": "2024-01-02T03:04:05.000000Z"},
                {"exec_type": "amended", "order_status": "new", "order_id": txid,
                 "reason": "User requested", "order_qty": 0.4, "symbol": "BTC/USD",
                 "timestamp": "2024-01-02T03:04:06.000000Z"},
                {"exec_type": "canceled", "order_status": "canceled", "order_id": txid,
                 "reason": "User requested", "symbol": "BTC/USD",
                 "timestamp": "2024-01-02T03:04:07.000000Z"}]}
            ws.sessions.append([AwaitSubscribe("executions"), Send(frame)])
            async with contextlib.aclosing(venue.executions()) as items:
                got = await take(items, updates=2)
        finally:
            await venue.close()
    assert [(u.client_order_id, u.status, u.venue_order_id, u.reason) for u in got] == [
        (core_id(1), OrderStatus.OPEN, txid, "amended: User requested"),
        (core_id(1), OrderStatus.CANCELLED, txid, "User requested")]
    assert venue.foreign_updates == 1


def test_order_event_payloads_map_to_core_statuses():
    base = {"order_id": "OAAAAA-BBBBB-CCCCCC", "cl_ord_id": "abc",
            "timestamp": "2023-09-22T10:33:05.709993Z", "symbol": "BTC/USD"}
    restated = parse_order_event({**base, "exec_type": "restated",
                                  "order_status": "partially_filled"}, "x")
    assert restated is not None and restated.status is OrderStatus.PARTIALLY_FILLED
    assert restated.reason == "restated"
    # Not live yet: the ``new`` that follows is the acknowledgement.
    assert parse_order_event({**base, "exec_type": "pending_new",
                              "order_status": "pending_new"}, "x") is None
    expired = parse_order_event({**base, "exec_type": "expired", "order_status": "expired"}, "x")
    assert expired is not None and expired.status is OrderStatus.CANCELLED
    assert expired.reason == "expired"
    # Completion and trades belong to the fills.
    assert parse_order_event({**base, "exec_type": "filled", "order_status": "filled"}, "x") is None
    assert parse_order_event({**base, "exec_type": "trade", "order_status": "filled"}, "x") is None
    with pytest.raises(DataError, match="unknown order_status 'frozen'"):
        parse_order_event({**base, "exec_type": "status", "order_status": "frozen"}, "x[3]")
    with pytest.raises(DataError, match="without cl_ord_id or order_id"):
        parse_order_event({"exec_type": "canceled", "timestamp": base["timestamp"]}, "x[0]")


async def test_a_restart_backfills_more_than_50_missed_trades_from_trades_history(
        exchange, make_settings, resume_of):
    """Order 1's fills were booked; order 2 walked 60 thin levels while the process was
    down.  The snapshot holds only the last 50 trades: the rest come from TradesHistory
    (paged by ofs, from the newest booked fill), each once, under core ids; the fills the
    run had booked are not reported again."""
    asks = [(Decimal("37500.0") + Decimal("0.5") * i, Decimal("0.01")) for i in range(80)]
    exchange.set_book("BTC/USD", BIDS, asks)
    clock = itertools.count(T0_NS, 10**6)  # 1 ms per exchange event
    exchange.clock_ns = lambda: next(clock)
    settings_kw = {"rest_url": exchange.url, "credentials": True}
    session = [AwaitSubscribe("executions"), ForwardExecutions(exchange)]
    async with LocalKrakenWs([session, session], token=TOKEN) as ws:
        first = KrakenVenue(make_settings(ws_auth_url=ws.url, **settings_kw))
        try:
            async with contextlib.aclosing(first.executions()) as items:
                pending = asyncio.ensure_future(take(items, fills=10, updates=1))
                await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
                await first.submit(order(1, "0.10", ts_ns=T0_NS))
                got = await pending
                booked = [i for i in got if isinstance(i, Fill)]
                ack = next(i for i in got if isinstance(i, OrderUpdate))
                exchange.hold_executions = True  # the process dies: nothing more reaches it
                clock = itertools.count(T0_NS + 20 * 10**9, 10**6)
                await first.submit(order(2, "0.60", ts_ns=T0_NS + 20 * 10**9))
        finally:
            await first.close()
        restarted = KrakenVenue(make_settings(ws_auth_url=ws.url, **settings_kw))
        restarted.resume(resume_of([order(1, "0.10"),
                                    order(2, "0.60", ts_ns=T0_NS + 20 * 10**9)], booked,
                                   venue_order_ids={core_id(1): ack.venue_order_id}))
        exchange.hold_executions = False
        trades = {e["exec_id"]: e for e in exchange.executions if e["exec_type"] == "trade"}
        assert len(trades) == 70
        missed = set(trades) - {f.fill_id for f in booked}
        assert len(missed) == 60 > 50  # more than the executions snapshot can hold
        try:
            async with contextlib.aclosing(restarted.executions()) as items:
                replay = [i for i in await take(items, fills=60) if isinstance(i, Fill)]
        finally:
            await restarted.close()
    ids = [f.fill_id for f in replay]
    assert len(ids) == len(set(ids)) == 60 and set(ids) == missed
    by_order = {f.fill_id: f.client_order_id for f in replay}
    tx2 = txid_of(exchange, core_id(2))
    for fill_id in missed:
        expected = core_id(2) if trades[fill_id]["order_id"] == tx2 else core_id(1)
        assert by_order[fill_id] == expected
    for f in replay:  # the backfilled fill equals what the socket reported for that trade
        trade = trades[f.fill_id]
        assert (f.price, f.quantity, f.fee) == (Decimal(str(trade["last_price"])),
                                                Decimal(str(trade["last_qty"])),
                                                Decimal(str(trade["fees"][0]["qty"])))
    assert [f.ts_ns for f in replay] == sorted(f.ts_ns for f in replay)  # oldest first
    pages = [dict(urllib.parse.parse_qsl(c.body)) for c in exchange.calls("TradesHistory")]
    newest_booked_s = max(f.ts_ns for f in booked) // 10**9
    assert [(p["start"], p["ofs"]) for p in pages] == [(str(newest_booked_s - 1), "0"),
                                                       (str(newest_booked_s - 1), "50")]
    # Order 2's txid was never acknowledged to the dead process: QueryOrders found it.
    (query,) = exchange.calls("QueryOrders")
    assert dict(urllib.parse.parse_qsl(query.body))["txid"] == tx2
    assert restarted.foreign_fills == 0 and restarted.executions_feed is not None
    assert restarted.executions_feed.backfilled == 60
