"""Order entry: core order mapping, idempotent submit, restart reconciliation, dead-man."""

from __future__ import annotations

import urllib.parse
import uuid
from decimal import Decimal

import pytest
from argus_venue_kraken.execution import add_order_params, cl_ord_id_for
from argus_venue_kraken.instruments import parse_asset_pairs
from argus_venue_kraken.ratelimit import TradingRateLimiter
from argus_venue_kraken.venue import KrakenVenue

from argus_core.errors import VenueError
from argus_core.models import Order, OrderStatus, OrderType, Side, TimeInForce


def order(cid: str = "argus-1", **kw) -> Order:
    base = dict(client_order_id=cid, venue="kraken", instrument_id="kraken:BTC/USD",
                side=Side.BUY, quantity=Decimal("1.25"), limit_price=Decimal("37500.0"),
                order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC)
    base.update(kw)
    return Order(**base)


@pytest.fixture
def btc(pairs_payload):
    return parse_asset_pairs(pairs_payload["result"])["BTC/USD"]


def test_cl_ord_id_is_deterministic_and_kraken_shaped():
    assert cl_ord_id_for("argus-1") == "argus-1"  # free text <= 18 chars passes through
    long_id = "run-2024-06-01/strategy-ma-cross/000042"
    derived = cl_ord_id_for(long_id)
    assert derived == cl_ord_id_for(long_id) and uuid.UUID(derived).version == 5
    canonical = "6d1b345e-2821-40e2-ad83-4ecb18a06876"
    assert cl_ord_id_for(canonical) == canonical  # a canonical UUID passes through
    # Another spelling is another core id: its own wire id (no collision with the first).
    upper = cl_ord_id_for(canonical.upper())
    assert upper != canonical and uuid.UUID(upper).version == 5


def test_add_order_params_follow_the_pair_rules(btc):
    params = add_order_params(order(), btc)
    assert params == {"ordertype": "limit", "type": "buy", "volume": "1.25000000",
                      "pair": "XBTUSD", "cl_ord_id": "argus-1", "price": "37500.0",
                      "timeinforce": "GTC"}
    market = add_order_params(order(order_type=OrderType.MARKET, limit_price=None,
                                    side=Side.SELL, time_in_force=TimeInForce.IOC), btc)
    assert market["ordertype"] == "market" and "price" not in market and market["type"] == "sell"
    with pytest.raises(VenueError, match="tick size"):
        add_order_params(order(limit_price=Decimal("37500.05")), btc)
    with pytest.raises(VenueError, match="lot_decimals"):
        add_order_params(order(quantity=Decimal("0.000000001")), btc)
    with pytest.raises(VenueError, match="ordermin"):
        add_order_params(order(quantity=Decimal("0.00001")), btc)
    with pytest.raises(VenueError, match="FOK"):
        add_order_params(order(time_in_force=TimeInForce.FOK), btc)
    post = add_order_params(order(time_in_force=TimeInForce.POST_ONLY), btc)
    assert (post["timeinforce"], post["oflags"]) == ("GTC", "post")


@pytest.fixture
async def live_venue(rest_server, make_settings, fake_time):
    venues = []

    def make(**overrides) -> KrakenVenue:
        # Waits (rate limits, the wait past an AddOrder's deadline) advance a fake clock.
        venue = KrakenVenue(make_settings(rest_url=rest_server.url, credentials=True,
                                          **overrides), sleep=fake_time.sleep,
                            clock=fake_time.clock)
        venues.append(venue)
        return venue

    yield make
    for venue in venues:
        await venue.close()


async def test_submit_sends_signed_add_order_with_client_id(live_venue, rest_server):
    venue = live_venue()
    assert await venue.submit(order()) == []
    (call,) = rest_server.calls("AddOrder")
    body = urllib.parse.parse_qs(call.body)
    assert body["cl_ord_id"] == ["argus-1"] and body["pair"] == ["XBTUSD"]
    assert next(iter(rest_server.orders.values()))["cl_ord_id"] == "argus-1"


async def test_lost_answer_is_looked_up_not_resent(live_venue, rest_server):
    venue = live_venue()
    rest_server.inject("AddOrder", ("lost", None))
    await venue.submit(order("argus-lost"))
    assert len(rest_server.orders) == 1  # exactly one order despite the lost answer
    assert len(rest_server.calls("AddOrder")) == 1
    assert rest_server.calls("OpenOrders")[0].params["cl_ord_id"] == "argus-lost"


async def test_refused_answer_is_resent_once(live_venue, rest_server):
    """More faults, order kinds and outcomes: test_kraken_exactly_once.py."""
    venue = live_venue()
    rest_server.inject("AddOrder", ("status", 502))  # refused before acting
    await venue.submit(order("argus-retry"))
    assert len(rest_server.orders) == 1 and len(rest_server.calls("AddOrder")) == 2


async def test_restart_finds_its_orders_by_client_id(live_venue, rest_server):
    long_id = "run-7/strategy-ma-cross/order-000042"
    await live_venue().submit(order(long_id))
    restarted = live_venue()
    found = await restarted.execution.find_order(long_id)
    assert found is not None and found["cl_ord_id"] == cl_ord_id_for(long_id)
    (open_order,) = await restarted.open_orders()
    assert open_order.status is OrderStatus.OPEN and open_order.instrument_id == "kraken:BTC/USD"
    assert open_order.limit_price == Decimal("37500.0") and open_order.side is Side.BUY
    await restarted.cancel(long_id)
    assert rest_server.orders == {}


async def test_dead_man_switch_armed_while_orders_rest(live_venue, rest_server):
    venue = live_venue(dead_man_timeout_s=60)
    venue.execution.keepalive_s = 0.02
    await venue.submit(order("argus-dm"))
    await rest_server.wait_for(lambda: len(rest_server.dead_man) >= 2)
    assert set(rest_server.dead_man) == {60}
    await venue.cancel("argus-dm")
    await rest_server.wait_for(lambda: rest_server.dead_man[-1] == 0)
    assert venue.execution.resting == {}


async def test_cancel_penalty_feeds_the_trading_counter(fake_time):
    limiter = TradingRateLimiter("starter", fake_time.clock, fake_time.sleep)
    assert limiter.cancel_penalty(1.0) == 8 and limiter.cancel_penalty(20) == 4
    assert limiter.cancel_penalty(400) == 0
    for _ in range(7):
        await limiter.acquire("XBTUSD", 8)  # 56 of the starter threshold 60
    assert fake_time.sleeps == []
    await limiter.acquire("XBTUSD", 8)  # would reach 64: wait 4 points at 1/s
    assert fake_time.sleeps == [pytest.approx(4.0)]
    await limiter.acquire("ETHUSD", 8)  # counters are per pair
    assert len(fake_time.sleeps) == 1


async def test_fee_schedule_uses_volume_tiers(make_settings):
    base = KrakenVenue(make_settings())
    assert (base.fee_schedule("kraken:BTC/USD").maker_bps,
            base.fee_schedule("kraken:BTC/USD").taker_bps) == (Decimal(25), Decimal(40))
    # 0.5 BTC at 20,000 = 10,000 USD notional; taker 40 bps -> 40 USD, maker 25 bps -> 25 USD.
    sched0 = base.fee_schedule("kraken:BTC/USD")
    assert sched0.fee(Decimal(20_000), Decimal("0.5"), maker=False) == Decimal(40)
    assert sched0.fee(Decimal(20_000), Decimal("0.5"), maker=True) == Decimal(25)
    tiered = KrakenVenue(make_settings(volume_30d_usd=Decimal(120_000)))
    sched = tiered.fee_schedule("kraken:BTC/USD")
    assert (sched.maker_bps, sched.taker_bps) == (Decimal(12), Decimal(22))
    await base.close()
    await tiered.close()
