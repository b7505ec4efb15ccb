"""Live fills: AddOrder -> the local matching engine -> WS v2 ``executions`` -> ``executions()``
with the core's client order ids, in one process and after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal

import pytest
from argus_venue_kraken.execution import CL_ORD_NAMESPACE
from argus_venue_kraken.schemas import parse_execution
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
    Send,
)
from argus_venue_kraken.venue import KrakenVenue

from argus_core.errors import ConfigError, DataError, VenueError
from argus_core.models import (
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)

#: A client order id as the core's runner makes them: <run_id>-<seq>-<strategy>-<k>.
CORE_ID = "3f2a9c1b7d4e-17-ma_cross-0"
TOKEN = "local-ws-token"


def market_buy(cid: str = CORE_ID, qty: str = "0.75") -> Order:
    return Order(cid, "kraken", "kraken:BTC/USD", Side.BUY, Decimal(qty), None,
                 OrderType.MARKET, TimeInForce.IOC, "ma_cross", 0)


def kraken_fee(price: Decimal, qty: Decimal) -> Decimal:
    """Kraken Pro base taker fee (0.40 %) in USD, rounded to the cent's hundredth."""
    return (price * qty * Decimal("0.004")).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def private_session(rest: LocalKrakenRest) -> list:
    return [AwaitSubscribe("executions"), ForwardExecutions(rest)]


async def take(it: AsyncIterator[Fill | OrderUpdate], n: int,
               updates: list[OrderUpdate] | None = None) -> list[Fill]:
    """The next ``n`` fills; the order updates met on the way go to ``updates``."""
    fills: list[Fill] = []
    async with asyncio.timeout(10):
        while len(fills) < n:
            item = await anext(it)
            if isinstance(item, OrderUpdate):
                if updates is not None:
                    updates.append(item)
            else:
                fills.append(item)
    return fills


async def test_submit_execution_fill_carries_the_core_id(exchange, make_settings):
    async with LocalKrakenWs([private_session(exchange)], token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        try:
            async with contextlib.aclosing(venue.executions()) as fills:
                collect = asyncio.ensure_future(take(fills, 2))
                await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
                assert await venue.submit(market_buy()) == []
                got = await collect
        finally:
            await venue.close()
    (add,) = exchange.calls("AddOrder")
    wire_id = urllib.parse.parse_qs(add.body)["cl_ord_id"][0]
    # The wire id is Kraken-shaped (a UUID), derived from the core id, and not the core id.
    assert wire_id == str(uuid.uuid5(CL_ORD_NAMESPACE, CORE_ID)) != CORE_ID
    assert [f.client_order_id for f in got] == [CORE_ID, CORE_ID]
    # 0.75 walks the served asks: 0.4 at the best, 0.35 at the next level.
    assert [(f.price, f.quantity) for f in got] == [(Decimal("37500.0"), Decimal("0.4")),
                                                    (Decimal("37510.5"), Decimal("0.35"))]
    assert [f.fee for f in got] == [kraken_fee(f.price, f.quantity) for f in got]
    assert {f.liquidity for f in got} == {Liquidity.TAKER} and len({f.fill_id for f in got}) == 2
    assert venue.foreign_fills == 0


async def test_a_restarted_venue_maps_past_fills_back_through_the_run_ledger(
        exchange, make_settings, resume_of):
    """Kraken replays the last trades on subscribe; a fresh process knows them by the ledger."""
    settings_kw = {"rest_url": exchange.url, "credentials": True}
    first = KrakenVenue(make_settings(**settings_kw))
    await first.submit(market_buy())
    await first.close()  # the process that placed the order is gone
    wire_id = str(uuid.uuid5(CL_ORD_NAMESPACE, CORE_ID))

    async with LocalKrakenWs([private_session(exchange)] * 2, token=TOKEN) as ws:
        # Without the ledger, the fills come back under Kraken's id and are counted as foreign.
        blind = KrakenVenue(make_settings(ws_auth_url=ws.url, **settings_kw))
        try:
            async with contextlib.aclosing(blind.executions()) as fills:
                unknown = await take(fills, 2)
        finally:
            await blind.close()
        assert [f.client_order_id for f in unknown] == [wire_id, wire_id]
        assert blind.foreign_fills == 2

        restarted = KrakenVenue(make_settings(ws_auth_url=ws.url, **settings_kw))
        restarted.resume(resume_of([market_buy()]))
        try:
            async with contextlib.aclosing(restarted.executions()) as fills:
                replayed = await take(fills, 2)
        finally:
            await restarted.close()
    assert [f.client_order_id for f in replayed] == [CORE_ID, CORE_ID]
    assert [f.fill_id for f in replayed] == [f.fill_id for f in unknown]  # the core dedupes these
    assert restarted.foreign_fills == 0


async def test_resume_only_teaches_the_venue_of_that_run(exchange, make_settings, resume_of):
    ours = KrakenVenue(make_settings(rest_url=exchange.url, credentials=True))
    other = KrakenVenue(make_settings(rest_url=exchange.url, credentials=True))
    try:
        ours.resume(resume_of([market_buy()]))
        wire_id = str(uuid.uuid5(CL_ORD_NAMESPACE, CORE_ID))
        assert ours.execution.core_id_for(wire_id) == CORE_ID
        assert other.execution.core_id_for(wire_id) is None
    finally:
        await ours.close()
        await other.close()


async def test_resting_order_found_after_restart_under_its_core_id(exchange, make_settings,
                                                                   resume_of):
    limit = Order(CORE_ID, "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.5"),
                  Decimal("37000.0"), OrderType.LIMIT, TimeInForce.GTC, "ma_cross", 0)
    first = KrakenVenue(make_settings(rest_url=exchange.url, credentials=True))
    await first.submit(limit)  # below the best ask: it rests
    await first.close()
    restarted = KrakenVenue(make_settings(rest_url=exchange.url, credentials=True))
    try:
        restarted.resume(resume_of([limit]))
        (held,) = await restarted.open_orders()
        assert (held.client_order_id, held.status, held.limit_price) == (
            CORE_ID, OrderStatus.OPEN, Decimal("37000.0"))
        await restarted.cancel(CORE_ID)
    finally:
        await restarted.close()
    assert exchange.orders == {}
    assert exchange.executions[-1]["exec_type"] == "canceled"


async def test_an_execution_with_only_the_txid_maps_back(exchange, make_settings):
    async with LocalKrakenWs([], token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        try:
            await venue.submit(market_buy())
            txid = next(iter(exchange.closed))
            frame = {"channel": "executions", "type": "update", "sequence": 9, "data": [
                {"exec_type": "trade", "order_id": txid, "exec_id": "TLATE-00001",
                 "trade_id": 77, "symbol": "BTC/USD", "side": "buy", "last_qty": 0.01,
                 "last_price": 37500.0, "liquidity_ind": "t",
                 "fees": [{"asset": "USD", "qty": 1.5}], "order_status": "filled",
                 "timestamp": "2024-01-02T03:04:05.123000Z"}]}
            ws.sessions.append([AwaitSubscribe("executions"), Send(frame)])
            async with contextlib.aclosing(venue.executions()) as fills:
                *backfilled, late = await take(fills, 3)
        finally:
            await venue.close()
    # The two trades made before the socket connected come first, from TradesHistory.
    assert [f.fill_id for f in backfilled] == list(exchange.trades_history)
    assert {f.client_order_id for f in [*backfilled, late]} == {CORE_ID}
    assert late.fill_id == "TLATE-00001"


async def test_a_refused_token_stops_fills_with_a_venue_error(exchange, make_settings):
    async with LocalKrakenWs([private_session(exchange)], token="another-token") as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        try:
            with pytest.raises(VenueError, match=r"executions subscription refused.*token"):
                async with asyncio.timeout(10):
                    await anext(venue.executions())
        finally:
            await venue.close()


def test_fee_in_the_base_asset_is_booked_in_the_quote_currency():
    item = {"exec_type": "trade", "order_id": "O1", "exec_id": "T1", "symbol": "BTC/USD",
            "side": "sell", "last_qty": "0.5", "last_price": "40000.0", "liquidity_ind": "m",
            "fees": [{"asset": "XBT", "qty": "0.0001"}], "timestamp": "2024-01-02T03:04:05Z"}
    fill = parse_execution(item, "kraken:BTC/USD", "executions[0]")
    assert fill is not None and fill.fee == Decimal("4.00000")  # 0.0001 BTC at 40,000
    assert fill.liquidity is Liquidity.MAKER
    # A fee in neither asset never drops the fill (its position must be booked):
    # fee_usd_equiv values it on a USD pair, else it is booked without the fee.
    odd = {**item, "fees": [{"asset": "KFEE", "qty": "250"}]}
    fill = parse_execution({**odd, "fee_usd_equiv": "2.5"}, "kraken:BTC/USD", "executions[0]")
    assert fill is not None and (fill.quantity, fill.fee) == (Decimal("0.5"), Decimal("2.5"))
    fill = parse_execution(odd, "kraken:BTC/USD", "executions[0]")
    assert fill is not None and (fill.quantity, fill.fee) == (Decimal("0.5"), Decimal(0))
    with pytest.raises(DataError, match="exec_id"):
        parse_execution({**item, "exec_id": None}, "kraken:BTC/USD", "executions[0]")


async def test_fills_without_keys_is_a_config_error(make_settings):
    venue = KrakenVenue(make_settings())
    try:
        with pytest.raises(ConfigError, match="api_key and api_secret"):
            await anext(venue.executions())
    finally:
        await venue.close()
