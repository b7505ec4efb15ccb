"""Fixtures for the Kraken plugin tests: recorded payloads, local servers, settings."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.testing import LocalKrakenRest
from argus_venue_kraken.venue import KrakenVenue

from argus_core.models import Fill, KnownOrder, Order, VenueResume
from argus_core.secrets import Secret

# --import-mode=importlib puts a test module's folder on sys.path only when it imports the
# module, after this conftest loaded: the shared helpers' folder goes on it here.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from kraken_orders import ASKS, BIDS

FIXTURES = Path(__file__).parent / "fixtures"

#: The documented API-Sign worked example's private key (public test vector, not a real key).
DOC_SECRET = ("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6"
              "F1huXg==")
TEST_KEY = "local-test-api-key"


def load_fixture(name: str, **kwargs: Any) -> Any:
    """A JSON fixture file, decoded."""
    return json.loads((FIXTURES / name).read_text(), **kwargs)


def asset_pairs_payload() -> dict[str, Any]:
    """The recorded AssetPairs answer plus two pairs derived from its XXBTZUSD entry.

    MATIC/USD and ALGO/USD are not in Kraken's example; they are needed to replay the
    documented WS examples, so they copy XXBTZUSD with the precisions those examples
    use (MATIC 4 price / 8 lot decimals, ALGO 5 / 8).
    """
    payload = load_fixture("kraken_rest_assetpairs.json")
    base = payload["result"]["XXBTZUSD"]
    for key, wsname, altname, pd in (("MATICUSD", "MATIC/USD", "MATICUSD", 4),
                                     ("ALGOUSD", "ALGO/USD", "ALGOUSD", 5)):
        entry = copy.deepcopy(base)
        entry.update(wsname=wsname, altname=altname, base=wsname.split("/")[0], quote="ZUSD",
                     pair_decimals=pd, tick_size=str(10 ** -pd if pd < 5 else "0.00001"),
                     ordermin="1")
        payload["result"][key] = entry
    return payload


def public_payloads() -> dict[str, Any]:
    """Public method -> recorded answer served by the local REST server."""
    return {
        "AssetPairs": asset_pairs_payload(),
        "Depth": load_fixture("kraken_rest_depth.json"),
        "OHLC": load_fixture("kraken_rest_ohlc.json"),
        "Ticker": load_fixture("kraken_rest_ticker.json"),
        "Trades": load_fixture("kraken_rest_trades_XBTUSDT_slice.json"),
    }


@pytest.fixture
async def rest_server() -> AsyncIterator[LocalKrakenRest]:
    """A Kraken-protocol REST server on 127.0.0.1 that knows the test key."""
    server = LocalKrakenRest(public_payloads(), api_key=TEST_KEY, api_secret=DOC_SECRET).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Callable[..., KrakenSettings]:
    """Build KrakenSettings pointed at local servers, with test credentials in the env."""
    monkeypatch.setenv("ARGUS_TEST_KRAKEN_KEY", TEST_KEY)
    monkeypatch.setenv("ARGUS_TEST_KRAKEN_SECRET", DOC_SECRET)

    def make(*, credentials: bool = False, **overrides: Any) -> KrakenSettings:
        base = KrakenSettings(nonce_path=tmp_path / "nonce", reconnect_base_s=0.001,
                              reconnect_max_s=0.01, heartbeat_timeout_s=5.0,
                              request_timeout_s=5.0, dead_man_timeout_s=0)
        if credentials:
            base = attrs.evolve(base, api_key=Secret("$env:ARGUS_TEST_KRAKEN_KEY"),
                                api_secret=Secret("$env:ARGUS_TEST_KRAKEN_SECRET"))
        return attrs.evolve(base, **overrides)

    return make


class FakeTime:
    """A clock and a sleep that advances it: rate limiting without real waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    """A fake monotonic clock with a sleep that only advances it."""
    return FakeTime()


@pytest.fixture
def load() -> Callable[..., Any]:
    """``load(name)``: a JSON fixture, decoded (kwargs go to ``json.loads``)."""
    return load_fixture


@pytest.fixture
def pairs_payload() -> dict[str, Any]:
    """The AssetPairs answer the local server serves."""
    return asset_pairs_payload()


def venue_resume(orders: Sequence[Order], fills: Sequence[Fill] = (), *,
                 venue_order_ids: dict[str, str] | None = None) -> VenueResume:
    """What the core hands a restarted venue (``Ledger.venue_resume``), built from the run's
    orders and booked fills without a ledger: the plugin never touches core tables."""
    ids = venue_order_ids or {}
    known = tuple(KnownOrder(o, ids.get(o.client_order_id),
                             sum((f.quantity for f in fills
                                  if f.client_order_id == o.client_order_id), Decimal(0)))
                  for o in sorted(orders, key=lambda o: (o.ts_ns, o.client_order_id)))
    newest = max((f.ts_ns for f in fills), default=None)
    if newest is None and known:
        newest = known[0].order.ts_ns
    return VenueResume(known, {f.fill_id: f.client_order_id for f in fills}, newest)


@pytest.fixture
def resume_of() -> Callable[..., VenueResume]:
    """``resume_of(orders, fills=(), venue_order_ids=None)``: see :func:`venue_resume`."""
    return venue_resume


#: The client timeout of the fault tests' venues (a lost answer costs this much).
FAULT_TIMEOUT_S = 0.5


@pytest.fixture
async def make_venue(exchange, make_settings, fake_time
                     ) -> AsyncIterator[Callable[..., KrakenVenue]]:
    """``make_venue(real_time=False, **settings)``: a live venue on the module's
    ``exchange`` (the fault tests' fixture).

    By default waits (back-offs, the wait past the deadline) only advance a fake clock, so
    a fault that Kraken never acted on costs no real time; ``real_time`` when Kraken acts
    later in real time (the exchange's own thread)."""
    venues: list[KrakenVenue] = []

    def make(*, real_time: bool = False, **overrides: Any) -> KrakenVenue:
        # Kraken refuses an AddOrder that arrives less than 1 s before its deadline: on a
        # loaded machine a request can take that long to reach the local exchange, which
        # then does not act (and the client, rightly, sends again).  With the fake clock
        # the wait past the deadline costs no real time, so those tests get 10 s of slack.
        overrides.setdefault("order_deadline_s", 2.0 if real_time else 10.0)
        settings = make_settings(rest_url=exchange.url, credentials=True,
                                 request_timeout_s=FAULT_TIMEOUT_S, lookup_settle_s=0.3,
                                 **overrides)
        venue = (KrakenVenue(settings) if real_time else
                 KrakenVenue(settings, sleep=fake_time.sleep, clock=fake_time.clock))
        venues.append(venue)
        return venue

    yield make
    for venue in venues:
        await venue.close()


@pytest.fixture
def exchange(rest_server: LocalKrakenRest) -> LocalKrakenRest:
    """The local exchange with :data:`kraken_orders.BIDS` and ``ASKS`` as BTC/USD's book
    (modules that need another book override this)."""
    rest_server.set_book("BTC/USD", BIDS, ASKS)
    return rest_server
