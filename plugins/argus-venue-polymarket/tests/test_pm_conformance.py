"""The core's venue conformance suite (argus_core.testing.VenueConformance) against the
local Polymarket CLOB: submit/ack/fill, cancel, a repeated fill after a reconnect,
restart through resume(), exactly-once under a lost answer, and an executions stream
that stops when it is cancelled."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import HARDHAT_KEY, Fault, LocalClob, make_book, tokens_of
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.interfaces import Venue
from argus_core.models import Order, OrderType, Side, TimeInForce
from argus_core.secrets import Secret
from argus_core.testing import VenueConformance, VenueHarness

KEY, SECRET, PASS = "key-1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "pass"


class PolymarketHarness(VenueHarness):
    def __init__(self, srv: SnapshotServer, clob: LocalClob, token: str) -> None:
        self.srv, self.clob, self.token = srv, clob, token
        self.venues: list[PolymarketVenue] = []

    def make_venue(self) -> Venue:
        venue = PolymarketVenue(PolymarketSettings(
            gamma_url=self.srv.url, clob_url=self.srv.url,
            private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
            api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
            trades_poll_s=0.05, heartbeat_interval_s=0.1, request_timeout_s=0.4,
            order_settle_s=1.0, order_lookup_interval_s=0.05,
            user_channel=False))  # this server has no websocket: else the production host
        self.venues.append(venue)
        return venue

    def _order(self, coid: str, price: str, tif: TimeInForce) -> Order:
        return Order(coid, "polymarket", f"polymarket:{self.token}", Side.BUY, Decimal(10),
                     Decimal(price), OrderType.LIMIT, tif, "conformance")

    def marketable_order(self, client_order_id: str) -> Order:
        return self._order(client_order_id, "0.45", TimeInForce.FOK)

    def resting_order(self, client_order_id: str) -> Order:
        return self._order(client_order_id, "0.30", TimeInForce.GTC)

    def orders_at_exchange(self, client_order_id: str) -> int:
        hashes = {v.execution.venue_ids.get(client_order_id) for v in self.venues} - {None}
        return sum(self.clob.accepted[h] for h in hashes)

    def lose_next_answer(self) -> None:
        self.clob.faults.append(Fault(reset=True))

    def lose_next_request(self) -> None:
        self.clob.faults.append(Fault(act=False, status=502))

    async def drop_executions(self) -> None:
        pass  # polling: every trades poll re-reports the lookback window anyway


class TestPolymarketConformance(VenueConformance):
    @pytest.fixture
    def venue_harness(self, fed_event: dict[str, Any], monkeypatch) -> Iterator[PolymarketHarness]:
        monkeypatch.setenv("PM_TEST_KEY", HARDHAT_KEY)
        monkeypatch.setenv("PM_K", KEY)
        monkeypatch.setenv("PM_S", SECRET)
        monkeypatch.setenv("PM_P", PASS)
        tokens = tokens_of(fed_event)
        books = [make_book(t, cond, [("0.40", "1000")], [("0.45", "1000")])
                 for cond, yes, no in tokens for t in (yes, no)]
        clob = LocalClob({b["asset_id"]: b for b in books}, api_key=KEY, api_secret=SECRET,
                         api_passphrase=PASS)
        srv = SnapshotServer([fed_event], books, clob=clob).start()
        try:
            yield PolymarketHarness(srv, clob, tokens[0][1])
        finally:
            srv.stop()
