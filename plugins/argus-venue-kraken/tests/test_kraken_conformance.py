"""The core's venue conformance suite (argus_testkit.VenueConformance) against the
local Kraken exchange: submit/ack/fill, cancel, a repeated fill after a reconnect,
restart through resume(), exactly-once under a lost answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from argus_testkit import VenueConformance, VenueHarness
from argus_venue_kraken.execution import cl_ord_id_for
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
)
from argus_venue_kraken.venue import KrakenVenue

from argus_core.interfaces import Venue
from argus_core.models import Order, OrderType, Side, TimeInForce

TOKEN = "local-ws-token"
BIDS = [(Decimal("37400.0"), Decimal("1.0"))]
ASKS = [(Decimal("37500.0"), Decimal("5")), (Decimal("37510.5"), Decimal("2.0"))]


class KrakenHarness(VenueHarness):
    def __init__(self, rest: LocalKrakenRest, ws: LocalKrakenWs, make_settings) -> None:
        self.rest, self.ws, self.make_settings = rest, ws, make_settings

    def make_venue(self) -> Venue:
        return KrakenVenue(self.make_settings(rest_url=self.rest.url, ws_auth_url=self.ws.url,
                                              credentials=True, request_timeout_s=0.5,
                                              order_deadline_s=2.0, lookup_settle_s=0.3))

    def marketable_order(self, client_order_id: str) -> Order:
        return Order(client_order_id, "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.1"),
                     None, OrderType.MARKET, TimeInForce.IOC, "conformance", 0)

    def resting_order(self, client_order_id: str) -> Order:
        return Order(client_order_id, "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.5"),
                     Decimal("37000.0"), OrderType.LIMIT, TimeInForce.GTC, "conformance", 0)

    def orders_at_exchange(self, client_order_id: str) -> int:
        wire = cl_ord_id_for(client_order_id)
        return sum(1 for o in {**self.rest.closed, **self.rest.orders}.values()
                   if o.get("cl_ord_id") == wire)

    def lose_next_answer(self) -> None:
        self.rest.inject("AddOrder", ("lost", None))

    def lose_next_request(self) -> None:
        self.rest.inject("AddOrder", ("status", 502))

    async def drop_executions(self) -> None:
        for conn in list(self.ws._server.connections):
            conn.transport.abort()

    async def executions_ready(self, venue: Venue) -> None:
        n = len(self.ws.subscriptions("executions"))
        await self.ws.wait_for(lambda: len(self.ws.subscriptions("executions")) > n, 10)


class TestKrakenConformance(VenueConformance):
    @pytest.fixture
    async def venue_harness(self, rest_server, make_settings) -> AsyncIterator[KrakenHarness]:
        rest_server.set_book("BTC/USD", BIDS, ASKS)
        session = [AwaitSubscribe("executions"), ForwardExecutions(rest_server)]
        async with LocalKrakenWs([session] * 10, token=TOKEN) as ws:
            yield KrakenHarness(rest_server, ws, make_settings)
