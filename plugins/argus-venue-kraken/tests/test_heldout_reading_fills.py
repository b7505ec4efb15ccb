"""Held-out red team of how a fill is read against the order it names: a trade on the
``executions`` channel naming one of this run's orders but the other side (a ``sell`` for
a buy order) was booked on that order as Kraken wrote it, without a word.  Kraken's trade
is what moved the account, so it stays booked as reported (the position follows the
exchange); the core now says it (a ``fill_mismatch`` risk event naming both sides) and
the order's own filled quantity does not count it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import EngineHarness, Harnesses, expect
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
    Send,
    Until,
)
from argus_venue_kraken.venue import KrakenVenue

from argus_core.models import Side, TimeInForce

IID = "kraken:BTC/USD"


@pytest.fixture
async def harness(rest_server: LocalKrakenRest, make_settings: Callable[..., Any],
                  tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    pool = Harnesses(tmp_path / "run")

    async def make(ws: LocalKrakenWs) -> EngineHarness:
        venue = KrakenVenue(make_settings(rest_url=rest_server.url, ws_auth_url=ws.url,
                                          credentials=True))
        (instrument, *_) = await venue.instruments()
        return await pool.start(venue, instrument, D("37500.0"))

    yield make
    await pool.close()



async def test_a_fill_on_the_other_side_of_its_order_is_booked_as_kraken_says_and_said(
        rest_server, harness):
    """Before: booked on the BUY order without a word (position -0.2)."""
    wrong: dict[str, Any] = {}
    script = [AwaitSubscribe("executions"), Until(lambda: bool(wrong)), Send(lambda: wrong),
              ForwardExecutions(rest_server)]
    async with LocalKrakenWs([script], token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = h.order(1, Side.BUY, "0.5", "37000.0", TimeInForce.GTC)
        await h.settle()
        (txid,) = rest_server.orders
        wrong.update({"channel": "executions", "type": "update", "sequence": 3, "data": [{
            "exec_type": "trade", "order_id": txid, "cl_ord_id": h.venue.execution.remember(coid),
            "exec_id": "TWRONG-SIDE-0001", "trade_id": 77, "symbol": "BTC/USD",
            "side": "sell", "last_qty": "0.2", "last_price": "37000.0", "liquidity_ind": "m",
            "fees": [{"asset": "USD", "qty": "1.2"}], "order_status": "partially_filled",
            "timestamp": "2024-01-02T03:04:05.123000Z"}]})
        await expect(lambda: bool(h.events("fill_mismatch")))
        (event,) = h.events("fill_mismatch")
        assert "TWRONG-SIDE-0001" in event["reason"] and "the order was buy" in event["reason"]
        assert h.account.positions[IID].quantity == D("-0.2")  # as Kraken booked it
        assert h.status(coid)[1] == D(0)  # not counted as the buy order's fill
