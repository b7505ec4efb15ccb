"""The core's venue conformance suite against the local Kalshi exchange: submit / ack /
fill, cancel, a fill repeated after the feed drops, restart through resume(), and
exactly-once under a lost answer and a request that never arrived."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from argus_testkit import VenueConformance, VenueHarness
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.testing import Fault, LocalKalshi
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import Order, OrderType, Side, TimeInForce, Venue

YES = "kalshi:KXHIGHNY-24JAN01-T60/YES"


class KalshiHarness(VenueHarness):
    timeout_s = 5.0

    def __init__(self, exchange: LocalKalshi, settings: Callable[..., KalshiSettings]) -> None:
        self.exchange, self.settings = exchange, settings

    def make_venue(self) -> Venue:
        return KalshiVenue(self.settings())

    def marketable_order(self, client_order_id: str) -> Order:
        # YES asks: 42 (30 contracts), 43, 45; a 2-contract IOC buy at 45 fills at 42.
        return Order(client_order_id, "kalshi", YES, Side.BUY, Decimal(2), Decimal("0.45"),
                     OrderType.LIMIT, TimeInForce.IOC, "conformance")

    def resting_order(self, client_order_id: str) -> Order:
        return Order(client_order_id, "kalshi", YES, Side.BUY, Decimal(1), Decimal("0.30"),
                     OrderType.LIMIT, TimeInForce.GTC, "conformance")

    def orders_at_exchange(self, client_order_id: str) -> int:
        return len(self.exchange.engine.by_client_id(wire_client_id(client_order_id)))

    def lose_next_answer(self) -> None:
        self.exchange.rest.inject("POST /portfolio/orders", Fault("lost"))

    def lose_next_request(self) -> None:
        self.exchange.rest.inject("POST /portfolio/orders", Fault("refuse", 502))

    async def drop_executions(self) -> None:
        self.exchange.rest.inject("GET /portfolio/fills", Fault("reset"))
        self.exchange.rest.inject("GET /portfolio/orders", Fault("after", 503))


class TestKalshiConformance(VenueConformance):
    @pytest.fixture
    async def venue_harness(self, exchange: LocalKalshi, local_settings
                            ) -> AsyncIterator[KalshiHarness]:
        yield KalshiHarness(exchange, local_settings)
