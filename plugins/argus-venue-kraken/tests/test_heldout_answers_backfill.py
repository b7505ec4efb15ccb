"""Held-out red team of Kraken's answers, the backfill of every (re)connection: a malformed
TradesHistory or QueryOrders answer (a time of 1e999999, a list for a type, a result that
is null or text) ended the ``kraken-executions`` task silently; absurd history trades were
booked; a lone surrogate in a REST trade id reached the core (REST answers are now read by
``loads_frame``).  Now the stream ends loudly (a VenueError) or the good fill arrives."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal

import pytest
from argus_venue_kraken.testing import AwaitSubscribe, LocalKrakenRest, LocalKrakenWs, Send
from argus_venue_kraken.venue import KrakenVenue

from argus_core.errors import VenueError
from argus_core.models import Fill, Order, OrderStatus, OrderType, Side, TimeInForce

TOKEN = "local-ws-token"
CORE = "core-1"
TXID = "OQCLML-BW3P3-BUCMWZ"
T0 = 1_696_613_755 * 10**9


def order() -> Order:
    return Order(CORE, "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.5"), Decimal("37000"),
                 OrderType.LIMIT, TimeInForce.GTC, "s", T0, OrderStatus.OPEN)


def good_frame():
    return {"channel": "executions", "type": "update", "data": [{
        "exec_type": "trade", "exec_id": "E-good", "order_id": TXID, "cl_ord_id": CORE,
        "symbol": "BTC/USD", "side": "buy", "last_qty": "0.1", "last_price": "37000.0",
        "fees": [{"asset": "USD", "qty": "0.5"}], "liquidity_ind": "m",
        "timestamp": "2023-10-06T17:40:55.440295Z", "order_status": "partially_filled"}]}


def trade(**patch):
    t = {"ordertxid": TXID, "pair": "XXBTZUSD", "time": 1696613800.1234, "type": "buy",
         "ordertype": "limit", "price": "37000.0", "cost": "3700.0", "fee": "5.92",
         "vol": "0.1", "maker": True}
    t.update(patch)
    return t


def qorder(**patch):
    o = {"cl_ord_id": CORE, "status": "open", "opentm": 1696613755.0, "closetm": 0,
         "descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "37000.0"},
         "vol": "0.5", "vol_exec": "0.0"}
    o.update(patch)
    return o


@pytest.fixture
def exchange(rest_server: LocalKrakenRest) -> LocalKrakenRest:
    return rest_server


async def _run(exchange, make_settings, resume_of, n=1, timeout=3.0):
    session = [AwaitSubscribe("executions"), Send(good_frame())]
    got: list = []
    raised = None
    async with LocalKrakenWs([session] * 3, token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        venue.resume(resume_of([order()], venue_order_ids={CORE: TXID}))
        try:
            async with contextlib.aclosing(venue.executions()) as it:
                try:
                    async with asyncio.timeout(timeout):
                        while len(got) < n:
                            got.append(await anext(it))
                except TimeoutError:
                    pass
                except VenueError as exc:  # a clear error: acceptable
                    raised = exc
            task = venue._private_task
            dead = (task is not None and task.done() and not task.cancelled()
                    and task.exception())
        finally:
            await venue.close()
    return got, dead, raised


def _th(*trades_):
    return ("json", {"error": [], "result": {"trades": {f"T{i}-AAAAA-BBBBBB": t
                                                        for i, t in enumerate(trades_)},
                                             "count": len(trades_)}})


CASES = {
    "TradesHistory-time-1e999999": dict(TradesHistory=[_th(trade(time="1e999999"))]),
    "TradesHistory-type-list": dict(TradesHistory=[_th(trade(type=["buy"]))]),
    "QueryOrders-result-null": dict(QueryOrders=[("json", {"error": [], "result": None})] * 3),
    "QueryOrders-result-string": dict(QueryOrders=[("json", {"error": [], "result": "x"})] * 3),
    "QueryOrders-opentm-1e999999": dict(QueryOrders=[("json", {"error": [], "result": {
        TXID: qorder(opentm="1e999999")}})] * 3),
    "QueryOrders-canceled-closetm-1e999999": dict(QueryOrders=[("json", {"error": [], "result": {
        TXID: qorder(status="canceled", closetm="1e999999")}})] * 3),
}


@pytest.mark.parametrize("inject", list(CASES.values()), ids=list(CASES))
async def test_a_malformed_backfill_answer_never_kills_the_executions_task_silently(
        exchange, make_settings, resume_of, inject):
    for method, answers in inject.items():
        exchange.inject(method, *answers)
    got, dead, raised = await _run(exchange, make_settings, resume_of)
    assert not dead, f"kraken-executions task died silently: {type(dead).__name__}: {dead!r}"
    assert raised is not None or any(isinstance(f, Fill) for f in got)


ABSURD = {
    "fee-1e999999999": trade(fee="1e999999999"),
    "vol-1e26": trade(vol="1e26"),
    "price-1e300": trade(price="1e300"),
    "time-1e20": trade(time="1e20"),
}


@pytest.mark.parametrize("bad", list(ABSURD.values()), ids=list(ABSURD))
async def test_an_absurd_history_trade_is_not_booked(exchange, make_settings, resume_of, bad):
    exchange.inject("TradesHistory", _th(bad))
    got, _dead, _raised = await _run(exchange, make_settings, resume_of, n=3, timeout=2.0)
    fills = [(f.fill_id, f.quantity, f.price, f.fee, f.ts_ns) for f in got
             if isinstance(f, Fill) and f.fill_id != "E-good"]
    assert not fills, f"absurd history trade handed to the core: {fills}"


async def test_a_lone_surrogate_in_a_rest_trade_id_never_reaches_the_core(
        exchange, make_settings, resume_of):
    """REST answers went through response.json(), not loads_frame: a lone surrogate
    survived into Fill.fill_id (the core's SQLite ledger cannot bind it)."""
    exchange.inject("TradesHistory", (
        "raw", '{"error":[],"result":{"trades":{"T\\ud800":' +
        f'{{"ordertxid":"{TXID}","pair":"XXBTZUSD","time":1696613800.1,"type":"buy",'
        '"ordertype":"limit","price":"37000.0","cost":"3700","fee":"1","vol":"0.1",'
        '"maker":true}},"count":1}}'))
    got, _dead, _raised = await _run(exchange, make_settings, resume_of, n=2, timeout=2.0)
    ids = [f.fill_id for f in got if isinstance(f, Fill)]
    assert not any("\ud800" in i for i in ids), f"lone surrogate in fill ids: {ids!r}"


async def test_an_undocumented_query_orders_status_is_said(
        exchange, make_settings, resume_of, caplog):
    """A QueryOrders status outside Kraken's five (pending, open, closed, canceled,
    expired) was ignored silently: the order stayed unsettled with nothing said."""
    exchange.inject("QueryOrders", *[("json", {"error": [], "result": {
        TXID: qorder(status="suspended")}})] * 3)
    with caplog.at_level(logging.WARNING, logger="argus_venue_kraken.execution"):
        await _run(exchange, make_settings, resume_of, n=2, timeout=2.0)
    said = [r.getMessage() for r in caplog.records if "QueryOrders" in r.getMessage()]
    assert said and TXID in said[0] and "'suspended'" in said[0], said
