"""One execution, one fill: the ids Kraken gives a trade, in the documented shapes.

Kraken's v2 ``executions`` trade item carries ``exec_id`` (the execution's id: the same
txid that keys the trade in REST ``TradesHistory``) and ``trade_id`` (an integer, the
pair's public trade sequence number).  A partial fill is a new execution with its own
``exec_id``; a repeated frame (snapshot then update, a reconnect's snapshot) repeats an
``exec_id``.  These tests pin that each execution is booked once whichever path brings
it, that two partial fills of one order are two fills, and that ``trade_id`` (a second
key of the same execution) is never taken for a fill id.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from argus_venue_kraken.execution import KrakenExecutionsFeed
from argus_venue_kraken.schemas import parse_execution, parse_history_trade
from argus_venue_kraken.venue import KrakenVenue

from argus_core import DataError, Fill


def trade(exec_id: Any, trade_id: int, qty: str, **extra: Any) -> dict[str, Any]:
    """A v2 ``executions`` trade item (docs websocket-v2/executions field names)."""
    return {"exec_type": "trade", "order_id": "OAB12C-DEF34-GHI56J", "cl_ord_id": "c-1",
            "exec_id": exec_id, "trade_id": trade_id, "symbol": "BTC/USD", "side": "buy",
            "last_qty": qty, "last_price": "37500.0", "liquidity_ind": "t",
            "fees": [{"asset": "USD", "qty": "0.15"}], "order_status": "partially_filled",
            "timestamp": "2024-01-02T03:04:05.123000Z", **extra}


def frame(kind: str, *items: dict[str, Any]) -> str:
    return json.dumps({"channel": "executions", "type": kind, "data": list(items)})


async def test_partial_fills_are_two_fills_and_a_repeated_execution_is_one(
        make_settings: Any) -> None:
    venue = KrakenVenue(make_settings(credentials=True))
    try:
        feed = KrakenExecutionsFeed(venue.settings, venue.rest, venue.execution)
        first, second = trade("TQ1AAA-BBBBB-CCCCC1", 101, "0.004"), \
            trade("TQ1AAA-BBBBB-CCCCC2", 102, "0.006", order_status="filled")
        out = feed.on_frame(frame("snapshot", first))
        out += feed.on_frame(frame("update", first, second))  # first repeated
        out += feed.on_frame(frame("snapshot", first, second))  # a reconnect's snapshot
    finally:
        await venue.close()
    fills = [r.fill for r in out if isinstance(getattr(r, "fill", None), Fill)]
    assert [(f.fill_id, f.quantity) for f in fills] == [
        ("TQ1AAA-BBBBB-CCCCC1", Decimal("0.004")), ("TQ1AAA-BBBBB-CCCCC2", Decimal("0.006"))]


def test_the_rest_trade_and_the_socket_execution_share_one_fill_id() -> None:
    """TradesHistory keys the trade by its txid, which the socket gives as ``exec_id``;
    the entry's own ``trade_id`` (an integer, a second key) is not the fill id."""
    ws = parse_execution(trade("TQ1AAA-BBBBB-CCCCC1", 101, "0.004"), "kraken:BTC/USD", "x")
    rest = parse_history_trade("TQ1AAA-BBBBB-CCCCC1", {
        "ordertxid": "OAB12C-DEF34-GHI56J", "postxid": "TKH2SE-M7IF5-CFI7LT",
        "pair": "XXBTZUSD", "time": 1704164645.1230, "type": "buy", "ordertype": "limit",
        "price": "37500.0", "cost": "150.0", "fee": "0.15", "vol": "0.004",
        "margin": "0.0", "misc": "", "trade_id": 101, "maker": False},
        "kraken:BTC/USD", "c-1", "TradesHistory[x]")
    assert ws is not None and ws.fill_id == rest.fill_id == "TQ1AAA-BBBBB-CCCCC1"


@pytest.mark.parametrize("exec_id", [None, "", 101])
def test_an_execution_without_its_exec_id_is_never_booked_under_trade_id(exec_id: Any
                                                                          ) -> None:
    """Booked under ``trade_id`` it would be booked again under its txid by
    TradesHistory: refused (the backfill books it under the txid)."""
    with pytest.raises(DataError, match="exec_id"):
        parse_execution(trade(exec_id, 101, "0.004"), "kraken:BTC/USD", "x")
