"""Held-out rate-limit and timeout faults on Kalshi's order path.

Kalshi answers a rate limit with HTTP 429 (docs getting_started/rate_limits), before its
engine acts.  Each test puts the testkit's fault proxy in front of the local exchange and
pins one request's fault: a 429 whose ``Retry-After`` is absent, 0, a few seconds, 120 s,
an HTTP-date (on a venue clock skewed from ours) or garbage; bursts of 429s longer than
the retry budget; a 429 on the look-up that settles an ambiguous place and on a cancel;
answers after the timeout at several delays and the late act (the exchange acts after
the look-up heard nothing).

The right behaviour, asserted here: never a blind re-send of a place; the wait honoured
(never sooner than the venue asked nor than the client's own back-off: no hammering)
but not waited out in line past ``WAIT_CAP_S``: a longer one fails the call at once with
a refusal that names the wait, and every request before it ends is refused locally,
unsent, so a kill switch's flatten (sent again by the engine 2 s later, then at most 16 s
apart) goes out soon after Kalshi takes requests again instead of freezing for the penalty; a clear
error when the budget is spent; an order whose fate is unknown settled later by asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from typing import Any

import pytest
from argus_testkit.fault_proxy import FaultProxy
from argus_testkit.faults import AnyHttpFault, FaultPlan, HeldOutFault, HttpFault
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.rest import RETRY_AFTER_MAX_S, WAIT_CAP_S, backoff_s, retry_after
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    Order,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
)

YES = "kalshi:KXHIGHNY-24JAN01-T60/YES"
POST = "POST /trade-api/v2/portfolio/orders"
LIST = "GET /trade-api/v2/portfolio/orders"
#: The client's request timeout (and the proxy's late answers at three times it).  0.5 s
#: met a connect timeout to 127.0.0.1 when the box was saturated (a full suite on two
#: cores: an order the test expected placed came back unknown).
TIMEOUT_S = 1.5


def buy(coid: str, tif: TimeInForce = TimeInForce.IOC, limit: str = "0.45") -> Order:
    return Order(coid, "kalshi", YES, Side.BUY, D(2), D(limit), OrderType.LIMIT, tif, "t")


def resting(coid: str) -> Order:
    return buy(coid, TimeInForce.GTC, "0.30")


def held(exchange: Any, coid: str) -> list[dict[str, Any]]:
    return exchange.engine.by_client_id(wire_client_id(coid))


def posts(proxy: FaultProxy) -> int:
    return proxy.seen.count(POST)


class World:
    """The exchange behind a fault proxy whose draws are pinned by :meth:`pin`."""

    def __init__(self, exchange: Any, proxy: FaultProxy) -> None:
        self.exchange, self.proxy = exchange, proxy

    def pin(self, key: str, *faults: AnyHttpFault, retry_after: str | None = "0",
            late_factor: float | None = None) -> None:
        """The next requests of ``key`` meet ``faults`` in turn (then pass)."""
        plan = self.proxy.plan
        start = plan.last(key) + 1
        for k, fault in enumerate(faults):
            plan.forced[(key, start + k)] = fault
        plan.retry_afters = (retry_after,)
        plan.late_factors = (late_factor,) if late_factor else ()


@pytest.fixture
async def world(exchange: Any) -> AsyncIterator[World]:
    plan = FaultPlan(0, http_rate=0.0, ws_rate=0.0)
    async with FaultProxy(exchange.rest.url, plan, late_s=TIMEOUT_S * 3,
                          timeout_s=TIMEOUT_S) as proxy:
        yield World(exchange, proxy)


@pytest.fixture
async def make_venue(world: World, local_settings: Callable[..., Any]
                     ) -> AsyncIterator[Callable[..., KalshiVenue]]:
    venues: list[KalshiVenue] = []

    def make(**overrides: Any) -> KalshiVenue:
        overrides.setdefault("request_timeout_s", TIMEOUT_S)
        venue = KalshiVenue(local_settings(rest_url=world.proxy.url, **overrides))
        venues.append(venue)
        return venue

    yield make
    for venue in venues:
        await venue.close()


async def collect(venue: KalshiVenue, until: Callable[[list[Any]], bool],
                  timeout: float = 15.0) -> list[Any]:
    items: list[Any] = []
    async with contextlib.aclosing(venue.executions()) as stream:
        async with asyncio.timeout(timeout):
            async for item in stream:
                items.append(item)
                if until(items):
                    break
    return items


def gap_after_limit(proxy: FaultProxy, key: str) -> float:
    """Seconds between the first rate limit answered to ``key`` and the next request."""
    (first, *_) = [t for k, t in proxy.limited if k == key]
    later = [t for k, t in proxy.arrived if k == key and t > first]
    return later[0] - first


# -- the header itself ----------------------------------------------------------------------
def test_retry_after_reads_seconds_dates_and_refuses_garbage() -> None:
    now = float(int(time.time()))  # HTTP-dates are in whole seconds
    kalshi_now = now + 3600  # Kalshi's clock an hour ahead of ours
    date = email.utils.formatdate(kalshi_now, usegmt=True)
    in_2 = email.utils.formatdate(kalshi_now + 2, usegmt=True)
    assert retry_after("3") == 3.0 and retry_after("0") == 0.0
    assert retry_after(in_2, date) == 2.0  # counted on Kalshi's clock: the skew cancels
    assert retry_after(email.utils.formatdate(now + 2, usegmt=True), now_s=now) == 2.0
    assert retry_after(email.utils.formatdate(now - 50, usegmt=True), now_s=now) == 0.0
    assert retry_after("86400") == RETRY_AFTER_MAX_S
    for garbage in (None, "", "soon", "-5", "nan", "inf", "1e999", "Mon, 99 Foo"):
        assert retry_after(garbage) is None, garbage


def test_a_zero_retry_after_still_backs_off() -> None:
    """Before: ``Retry-After: 0`` was taken at its word and a burst of 429s became a burst
    of re-sends with no pause at all."""
    from argus_venue_kalshi.rest import KalshiHttpError
    zero = KalshiHttpError(429, "too_many_requests", "x", 0.0)
    assert backoff_s(zero, 1) > 0 and backoff_s(zero, 3) > backoff_s(zero, 1)
    assert backoff_s(KalshiHttpError(429, "", "x", 2.5), 1) == 2.5


# -- a 429 on the place --------------------------------------------------------------------
@pytest.mark.parametrize(("value", "least_s"), [
    (None, 0.05), ("0", 0.05), ("1", 0.95), ("soon", 0.05), ("nan", 0.05), ("-5", 0.05),
    ("{date+2}", 0.95)], ids=["absent", "zero", "1s", "garbage", "nan", "negative",
                              "http-date"])
async def test_a_429_on_the_place_is_waited_out_then_placed_once(
        world, make_venue, value, least_s) -> None:
    venue = make_venue()
    world.pin(POST, HttpFault.S429_RETRY, retry_after=value)
    await venue.submit(buy("rl-1"))
    assert len(held(world.exchange, "rl-1")) == 1 and posts(world.proxy) == 2
    assert gap_after_limit(world.proxy, POST) >= least_s  # honoured, never hammered


async def test_an_http_date_on_a_skewed_venue_clock_is_counted_on_its_clock(
        exchange, make_venue, world) -> None:
    """Kalshi's clock an hour ahead: ``Retry-After`` as a date 2 s after its ``Date`` is a
    2 s wait (counted on our clock it would be an hour: the order refused)."""
    world.proxy.skew_s = 3600.0
    venue = make_venue()
    world.pin(POST, HttpFault.S429_RETRY, retry_after="{date+2}")
    await venue.submit(buy("rl-skew"))
    assert len(held(exchange, "rl-skew")) == 1
    assert gap_after_limit(world.proxy, POST) >= 0.95


async def test_a_cdn_429_page_is_a_refusal_before_acting(world, make_venue) -> None:
    venue = make_venue()
    world.pin(POST, HeldOutFault.S429_HTML, retry_after="1")
    await venue.submit(buy("rl-html"))
    assert len(held(world.exchange, "rl-html")) == 1 and posts(world.proxy) == 2


async def test_a_burst_of_429s_longer_than_the_budget_is_a_clear_refusal(
        world, make_venue) -> None:
    """Every send refused (``Retry-After: 0``): ``max_retries + 1`` sends, each after a
    back-off, then a refusal naming it; nothing at Kalshi."""
    venue = make_venue(max_retries=2)
    world.pin(POST, *[HttpFault.S429_RETRY] * 10, retry_after="0")
    with pytest.raises(VenueError, match="not placed: refused before acting 3 times"):
        await venue.submit(buy("rl-burst"))
    assert held(world.exchange, "rl-burst") == [] and posts(world.proxy) == 3
    sends = [t for k, t in world.proxy.arrived if k == POST]
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(sends))


async def test_a_120s_retry_after_fails_fast_and_holds_every_send(world, make_venue) -> None:
    """The kill switch's case.  A place answered 429 ``Retry-After: 120``: before, the
    venue slept 60 s (its cap) in line, ``max_retries`` times.  Now the place fails at once
    (not placed: a refusal, the engine may send a flatten again); every send before the
    120 s are over is refused locally, unsent; a cancel fails at once saying what the
    order is; reads go on (the read budget is another)."""
    venue = make_venue()
    first = await venue.submit(resting("rl-rest"))  # a working order to cancel later
    assert first == [] and len(held(world.exchange, "rl-rest")) == 1
    world.pin(POST, HttpFault.S429_RETRY, retry_after="120")
    async with asyncio.timeout(30):  # a hang guard, not a timing assertion
        with pytest.raises(VenueError, match=r"rate limited for another 1[12]\ds") as exc:
            await venue.submit(buy("rl-flat"))
        assert not isinstance(exc.value, OrderUnknown)
        with pytest.raises(VenueError, match="not placed"):
            await venue.submit(buy("rl-flat-again"))
        with pytest.raises(VenueError, match="resting"):
            await venue.cancel("rl-rest")
    assert posts(world.proxy) == 2  # the refused place; the rest never left the process
    assert not world.proxy.seen.count("DELETE /trade-api/v2/portfolio/orders/"
                                      + held(world.exchange, "rl-rest")[0]["order_id"])
    assert held(world.exchange, "rl-flat") == [] == held(world.exchange, "rl-flat-again")
    assert venue.execution.rest.writes.held_for() > 100


# -- a 429 on the look-up of an ambiguous place --------------------------------------------
@pytest.mark.parametrize("value", [None, "0", "6"], ids=["absent", "zero", "over-the-cap"])
async def test_rate_limited_lookups_after_a_lost_answer_leave_it_unknown_then_settled(
        world, make_venue, value) -> None:
    """The place's answer is lost after Kalshi acted; every look-up is answered 429.  The
    order is never sent again: ``OrderUnknown``, and ``executions()`` settles it (OPEN
    with its venue id) once Kalshi answers.  A ``Retry-After`` over ``WAIT_CAP_S`` fails
    the look-up at once and the poll asks only once it is over (before: a warning and a
    refused poll every ``poll_interval_s``)."""
    venue = make_venue(max_retries=1)
    world.pin(POST, HttpFault.LOST)
    # every look-up of the place's two (a read retried once, twice): 4 429s; over the
    # cap, the first fails the read and the hold refuses the second locally
    world.pin(LIST, *[HttpFault.S429_RETRY] * (1 if value == "6" else 4), retry_after=value)
    with pytest.raises(OrderUnknown):
        await venue.submit(resting("rl-lk"))
    (placed,) = held(world.exchange, "rl-lk")
    lists = world.proxy.seen.count(LIST)
    items = await collect(venue, lambda xs: any(isinstance(x, OrderUpdate)
                                                and x.client_order_id == "rl-lk" for x in xs))
    (update,) = [x for x in items if isinstance(x, OrderUpdate)]
    assert update.status is OrderStatus.OPEN and update.venue_order_id == placed["order_id"]
    assert posts(world.proxy) == 1
    if value == "6":  # the poll waited the 429 out: its first look-up came after it
        first_poll = [t for k, t in world.proxy.arrived if k == LIST][lists]
        assert first_poll - world.proxy.limited[-1][1] >= 5.5


# -- answers after the timeout and the late act ----------------------------------------------
@pytest.mark.parametrize("factor", [1.05, 1.5, 4.0], ids=["just-after", "after", "long-after"])
async def test_an_answer_after_the_timeout_is_found_not_resent(world, make_venue,
                                                               factor) -> None:
    venue = make_venue()
    world.pin(POST, HttpFault.LATE, late_factor=factor)
    await venue.submit(resting(f"late-{factor}"))
    assert len(held(world.exchange, f"late-{factor}")) == 1 and posts(world.proxy) == 1


@pytest.mark.parametrize("factor", [1.5, 4.0], ids=["after", "long-after"])
async def test_the_late_act_after_the_lookup_said_unknown_is_settled_later(
        world, make_venue, factor) -> None:
    """The place is held on the way past the client's timeout; the look-up finds nothing
    (``OrderUnknown``, never re-sent); then Kalshi acts.  ``executions()`` reports it."""
    venue = make_venue()
    world.pin(POST, HeldOutFault.ACT_LATE, late_factor=factor)
    with pytest.raises(OrderUnknown):
        await venue.submit(resting(f"actlate-{factor}"))
    items = await collect(venue, lambda xs: any(isinstance(x, OrderUpdate) for x in xs))
    (update,) = [x for x in items if isinstance(x, OrderUpdate)]
    (placed,) = held(world.exchange, f"actlate-{factor}")
    assert update.status is OrderStatus.OPEN and update.venue_order_id == placed["order_id"]
    assert posts(world.proxy) == 1


# -- the kill switch's flatten through the core's engine ------------------------------------------
async def test_a_flatten_under_a_long_retry_after_goes_out_when_the_wait_ends(
        world, local_settings, tmp_path) -> None:
    """A position of 10 YES; the kill switch flattens it; Kalshi answers the flatten's
    order 429 ``Retry-After: 7`` (longer than ``WAIT_CAP_S``).  The flatten's order is
    refused at once (REJECTED: the engine is not held for the 7 s); the engine sends it
    again on later events (2 s of market time later, then twice as long after each
    refusal, 16 s at most), each refused unsent while the wait
    lasts; once it is over the flatten goes out and the position is flat.  Kalshi saw two
    order posts for it in all: the refused one and the one after the wait."""
    from argus_testkit.engine import EngineHarness
    from argus_testkit.order_path import until

    venue = KalshiVenue(local_settings(rest_url=world.proxy.url, request_timeout_s=TIMEOUT_S))
    (instrument,) = [i for i in await venue.instruments() if i.id == YES]
    h = EngineHarness(tmp_path / "run", venue, instrument, D("0.42"))
    await h.start()
    try:
        h.order(1, Side.BUY, "10", "0.45")
        await h.settle()
        assert await until(lambda: (p := h.account.positions.get(YES)) is not None
                           and p.quantity == 10, timeout=10)
        before = posts(world.proxy)
        world.pin(POST, HttpFault.S429_RETRY, retry_after="7")
        t0 = time.monotonic()
        with h.between_events():
            h.engine.request_flatten("kill switch (test)")
        await h.settle()
        assert time.monotonic() - t0 < WAIT_CAP_S  # refused at once, not slept in line
        assert h.events("refused")  # the core's record of the refused flatten
        step_ns = 0
        while time.monotonic() - t0 < 20 and h.account.positions[YES].quantity != 0:
            step_ns += 2_100_000_000  # each event 2.1 s of market time later
            h.market.now_ns = step_ns
            with h.between_events():
                h.engine.on_market_event(None)
            await h.settle()
            await asyncio.sleep(0.5)
        assert h.account.positions[YES].quantity == 0
        assert time.monotonic() - t0 >= 6.5  # it went out after the wait, not during it
        assert posts(world.proxy) - before == 2
    finally:
        await h.close()
