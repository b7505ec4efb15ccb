"""Rate limits: the venue keeps to its tier's reads / writes per second (a burst never
puts more than the limit in any one-second window at the exchange), and a 429 is waited
out (Retry-After when given) then retried; an order refused with 429 is looked up by
client order id, then re-sent, and placed exactly once."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.rest import KalshiHttpError
from argus_venue_kalshi.testing import RateLimit
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import Order, OrderType, Side, TimeInForce

TICKER = "KXHIGHNY-24JAN01-T60"
#: The window the local exchange counts bursts over in the burst tests (the venue's is 1 s):
#: requests the venue spaced by a second can arrive bunched on a loaded machine (signing,
#: scheduling); half a second of jitter is tolerated, while an unlimited burst (every
#: request within milliseconds) is still caught.
JITTER_WINDOW_S = 0.5


def order(coid: str) -> Order:
    return Order(coid, "kalshi", f"kalshi:{TICKER}/YES", Side.BUY, D(1), D("0.30"),
                 OrderType.LIMIT, TimeInForce.GTC, "t")


async def test_a_burst_of_reads_stays_within_the_limit(exchange, local_settings) -> None:
    # The exchange counts over JITTER_WINDOW_S, not 1 s (see there).
    exchange.rest.limits = RateLimit(reads=4, window_s=JITTER_WINDOW_S)
    venue = KalshiVenue(local_settings(reads_per_s=4))
    try:
        answers = await asyncio.gather(*(venue.rest.get(f"/markets/{TICKER}")
                                         for _ in range(10)))
        assert all(a["market"]["ticker"] == TICKER for a in answers)
        assert exchange.rest.limited == 0  # never refused: the venue waited instead
        assert exchange.rest.most_in_window("read") == 4
        assert len(exchange.rest.admitted) == 10
    finally:
        await venue.close()


async def test_a_burst_of_orders_stays_within_the_write_limit(exchange, local_settings
                                                              ) -> None:
    exchange.rest.limits = RateLimit(writes=3, window_s=JITTER_WINDOW_S)  # see above
    venue = KalshiVenue(local_settings(writes_per_s=3))
    try:
        await asyncio.gather(*(venue.submit(order(f"burst-{k}")) for k in range(7)))
        assert exchange.rest.limited == 0
        assert exchange.rest.most_in_window("write") == 3
        assert all(len(exchange.engine.by_client_id(f"burst-{k}")) == 1 for k in range(7))
    finally:
        await venue.close()


async def test_a_rate_limited_read_waits_for_retry_after_and_succeeds(exchange,
                                                                     local_settings) -> None:
    exchange.rest.limits = RateLimit(reads=2)  # stricter than the venue thinks
    venue = KalshiVenue(local_settings(reads_per_s=100))
    try:
        for _ in range(3):
            answer = await venue.rest.get(f"/markets/{TICKER}")
            assert answer["market"]["ticker"] == TICKER
        # the third read was refused once; its retry, after Retry-After, went through
        assert exchange.rest.limited == 1 and len(exchange.rest.admitted) == 3
    finally:
        await venue.close()


async def test_a_rate_limited_read_without_retry_after_backs_off(exchange, local_settings
                                                                ) -> None:
    exchange.rest.limits = RateLimit(reads=1, window_s=0.2, retry_after=False)
    venue = KalshiVenue(local_settings(reads_per_s=100, max_retries=6))
    try:
        await venue.rest.get(f"/markets/{TICKER}")
        await venue.rest.get(f"/markets/{TICKER}")
        assert exchange.rest.limited >= 1 and len(exchange.rest.admitted) == 2
    finally:
        await venue.close()
    exchange.rest.limits = RateLimit(reads=1, window_s=30, retry_after=False)
    exchange.rest.admitted, exchange.rest.limited = [], 0
    venue = KalshiVenue(local_settings(reads_per_s=100, max_retries=1))
    try:
        await venue.rest.get(f"/markets/{TICKER}")
        with pytest.raises(KalshiHttpError, match="429"):  # retries run out: an error
            await venue.rest.get(f"/markets/{TICKER}")
    finally:
        await venue.close()


async def test_an_order_refused_429_is_looked_up_then_resent_once(exchange, local_settings
                                                                  ) -> None:
    exchange.rest.limits = RateLimit(writes=1)
    venue = KalshiVenue(local_settings(writes_per_s=100))
    try:
        await venue.submit(order("lim-1"))
        await venue.submit(order("lim-2"))  # 429: not placed; looked up; re-sent
        assert exchange.rest.limited == 1
        for coid in ("lim-1", "lim-2"):
            assert len(exchange.engine.by_client_id(wire_client_id(coid))) == 1
        kinds = [(r.method, r.path.rsplit("/", 1)[-1]) for r in exchange.rest.requests]
        # (the look-up reads the historical cutoff too: before it, /historical/orders)
        assert kinds == [("POST", "orders"), ("POST", "orders"), ("GET", "orders"),
                         ("GET", "cutoff"), ("POST", "orders")]
    finally:
        await venue.close()


def test_limits_default_to_the_tier_and_overrides_are_range_checked(make_settings) -> None:
    assert make_settings().limits_per_s == (20, 10)
    assert make_settings(rate_limit_tier="premier").limits_per_s == (100, 100)
    assert make_settings(reads_per_s=5, writes_per_s=2).limits_per_s == (5, 2)
    for bad in (0, 401, 2.5, True):
        with pytest.raises(ValueError, match=r"writes_per_s: must be a whole number .* "
                                             r"from 1 to 400"):
            make_settings(writes_per_s=bad)
    with pytest.raises(ValueError, match="rate_limit_tier"):
        KalshiSettings(rate_limit_tier="gold")
