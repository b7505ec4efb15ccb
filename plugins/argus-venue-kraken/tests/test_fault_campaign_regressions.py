"""Deterministic replays of what the fault campaign (``test_fault_campaign.py``) found,
each the shrunk scenario of a failing seed.

Seed 2 (shrunk to: a post-only order that would cross, accepted and at once cancelled by
Kraken while the executions socket was reconnecting after a failed TradesHistory
backfill): the ledger kept the order OPEN for ever.  Kraken's ``new`` / ``canceled``
events went out while no socket listened; the reconnect snapshot lists open orders and
trades only; the backfill asked QueryOrders only about txids a *resumed* run handed over,
and the core had never learnt this txid (AddOrder's answer carries it to the venue, not to
the ledger), so no restart asked either.  Now every order the venue placed is asked about
on the next backfill until an event says how it ended, and a resumed working order
without a txid is found by its ``cl_ord_id`` first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import EngineHarness
from argus_testkit.order_path import route, until
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    Disconnect,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
    Until,
)
from argus_venue_kraken.venue import KrakenVenue

from argus_core.models import Instrument, OrderStatus, Side, TimeInForce

BIDS = [(D("37400.0"), D("1.0"))]
ASKS = [(D("37500.0"), D("0.4"))]


@pytest.fixture
def exchange(rest_server: LocalKrakenRest) -> LocalKrakenRest:
    rest_server.set_book("BTC/USD", BIDS, ASKS)
    return rest_server


@pytest.fixture
async def harness(exchange: LocalKrakenRest, make_settings: Callable[..., Any],
                  tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await harness(ws)``: an engine on a venue whose private socket is ``ws``; a second
    call on the same run directory is a restart."""
    made: list[EngineHarness] = []
    instrument: list[Instrument] = []

    async def make(ws: LocalKrakenWs) -> EngineHarness:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        if not instrument:
            instrument.extend(await venue.instruments())
        h = EngineHarness(tmp_path / "run", venue, instrument[0], D("37500.0"))
        made.append(h)
        await h.start()
        return h

    yield make
    for h in made:
        with contextlib.suppress(Exception):
            await h.close()


def crossing_post_only(h: EngineHarness) -> str:
    """A post-only buy at the best ask: Kraken accepts it, then cancels it at once."""
    coid = route(h, 1, "s1", Side.BUY, D("0.3"), limit=D("37500.0"), tif=TimeInForce.POST_ONLY)
    assert coid is not None
    return coid


async def test_an_order_cancelled_while_the_socket_was_away_is_settled_on_reconnect(
        exchange, harness) -> None:
    """In one process: the socket that should carry ``canceled`` hears nothing and drops;
    the reconnect's backfill asks QueryOrders and the order ends CANCELLED."""
    exchange.hold_executions = True
    gap = [AwaitSubscribe("executions"), Until(lambda: bool(exchange.closed)),
           Until(lambda: not exchange.hold_executions), Disconnect(abort=True)]
    async with LocalKrakenWs([gap, [AwaitSubscribe("executions"), ForwardExecutions(exchange)]],
                             token="local-ws-token") as ws:
        h = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = crossing_post_only(h)
        await h.settle()
        (txid,) = exchange.closed
        assert exchange.closed[txid]["status"] == "canceled"
        assert h.status(coid) == (OrderStatus.OPEN, D(0))  # from the answer
        exchange.hold_executions = False
        assert await until(lambda: h.status(coid)[0] is OrderStatus.CANCELLED), \
            "the order Kraken cancelled stayed OPEN after the reconnect"
        assert ws.connections == 2


async def test_a_resumed_working_order_without_a_txid_is_settled(exchange, harness) -> None:
    """The process that placed the order never heard ``new`` (so the ledger has no txid)
    and stopped; the restarted venue finds the order by ``cl_ord_id`` and settles it."""
    exchange.hold_executions = True
    async with LocalKrakenWs([[AwaitSubscribe("executions"), ForwardExecutions(exchange)],
                              [AwaitSubscribe("executions"), ForwardExecutions(exchange)]],
                             token="local-ws-token") as ws:
        first = await harness(ws)
        await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
        coid = crossing_post_only(first)
        await first.settle()
        assert first.status(coid) == (OrderStatus.OPEN, D(0))
        assert first.ledger.order_row(coid)["venue_order_id"] is None
        await first.close()
        exchange.hold_executions = False
        second = await harness(ws)
        assert await until(lambda: second.status(coid)[0] is OrderStatus.CANCELLED), \
            "the resumed order Kraken cancelled stayed OPEN"
