"""Held-out rate-limit and timeout faults on Kraken's order path.

Kraken answers its rate limits with HTTP 200 and an error array (``EAPI:Rate limit
exceeded``: the REST counter; ``EOrder:Rate limit exceeded``: the pair's trading
counter; ``EGeneral:Too many requests``), before acting; the CDN in front of it answers
HTTP 429, with or without ``Retry-After``.  The local exchange scripts the error bodies;
the testkit's fault proxy in front of it the 429s (``Retry-After`` 120 s, an HTTP-date on
a skewed clock) and the late act.

The right behaviour: never a blind re-send (a refused AddOrder is looked up, and sent again
only once Kraken provably never took it); the counter waited out (no hammering); a clear
refusal once ``max_retries`` is spent; a ``Retry-After`` longer than ``WAIT_CAP_S`` not
slept in line: the call is refused at once and every private call before the wait is over
is refused unsent (a kill switch's flatten, sent again by the engine, goes out at the first
moment Kraken takes it); an AddOrder left unknown because every look-up was rate limited is
asked about again until Kraken answers, and settled on ``executions()`` (before: pending
until a restart, which blocks a flatten of that instrument).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from argus_testkit.fault_proxy import FaultProxy
from argus_testkit.faults import FaultPlan, HeldOutFault, HttpFault
from argus_venue_kraken.ratelimit import RETRY_AFTER_MAX_S
from argus_venue_kraken.rest import KrakenThrottled, retry_after_s
from argus_venue_kraken.testing import LocalKrakenRest
from argus_venue_kraken.venue import KrakenVenue
from kraken_orders import held, market, resting

from argus_core.errors import OrderUnknown, VenueError
from argus_core.models import OrderStatus, OrderUpdate

RATE_LIMITS = ["EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded",
               "EGeneral:Too many requests"]
ADD = "POST /0/private/AddOrder"


@pytest.fixture
async def proxy(exchange: LocalKrakenRest) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(exchange.url, FaultPlan(0, http_rate=0.0, ws_rate=0.0),
                          late_s=1.5, timeout_s=0.5) as p:
        yield p


@pytest.fixture
async def proxied(proxy: FaultProxy, make_settings: Any
                  ) -> AsyncIterator[Callable[..., KrakenVenue]]:
    """``proxied(**settings)``: a live venue (real time) talking to Kraken through
    ``proxy``, with a 0.5 s timeout and a 2 s AddOrder deadline."""
    venues: list[KrakenVenue] = []

    def make(**overrides: Any) -> KrakenVenue:
        overrides.setdefault("order_deadline_s", 2.0)
        overrides.setdefault("request_timeout_s", 0.5)
        venue = KrakenVenue(make_settings(rest_url=proxy.url, credentials=True,
                                          lookup_settle_s=0.3, **overrides))
        venues.append(venue)
        return venue

    yield make
    for venue in venues:
        await venue.close()


def pin(proxy: FaultProxy, key: str, *faults: Any, retry_after: str | None = None,
        late_factor: float | None = None) -> None:
    start = proxy.plan.last(key) + 1
    for k, fault in enumerate(faults):
        proxy.plan.forced[(key, start + k)] = fault
    proxy.plan.retry_afters = (retry_after,)
    proxy.plan.late_factors = (late_factor,) if late_factor else ()


def test_retry_after_reads_seconds_and_dates_and_ignores_garbage() -> None:
    now = float(int(time.time()))
    edge = now + 900  # the edge's clock a quarter of an hour ahead of ours
    date = email.utils.formatdate(edge, usegmt=True)
    assert retry_after_s(email.utils.formatdate(edge + 4, usegmt=True), date) == 4.0
    assert retry_after_s("7") == 7.0 and retry_after_s("1e9") == RETRY_AFTER_MAX_S
    for garbage in (None, "", "0", "later", "nan", "-2"):
        assert retry_after_s(garbage) == 0.0


# -- rate-limit error bodies on AddOrder -----------------------------------------------------
@pytest.mark.parametrize("error", RATE_LIMITS)
async def test_a_rate_limited_add_order_is_proven_absent_then_placed_once(
        exchange, make_venue, fake_time, error) -> None:
    venue = make_venue()
    exchange.inject("AddOrder", ("error", [error]))
    txid = await venue.execution.submit(market("argus-r1"))
    assert list(held(exchange, "argus-r1")) == [txid]
    assert len(exchange.calls("AddOrder")) == 2 and venue.execution.resent == 1
    assert max(fake_time.sleeps) >= 1.0  # the counter (and the deadline) waited out


@pytest.mark.parametrize("error", RATE_LIMITS)
async def test_a_burst_of_rate_limits_past_the_budget_is_a_clear_refusal(
        exchange, make_venue, fake_time, error) -> None:
    """Every AddOrder refused: ``max_retries + 1`` sends, each only after Kraken was asked
    and its deadline passed, then a refusal saying Kraken holds no such order."""
    venue = make_venue(max_retries=2)
    exchange.inject("AddOrder", *[("error", [error])] * 10)
    with pytest.raises(VenueError, match="not placed after 3 attempts") as exc:
        await venue.execution.submit(market("argus-r1"))
    assert not isinstance(exc.value, OrderUnknown) and held(exchange, "argus-r1") == {}
    assert len(exchange.calls("AddOrder")) == 3
    adds = [i for i, r in enumerate(exchange.requests) if r.method == "AddOrder"]
    for a, b in itertools.pairwise(adds):  # asked twice between two sends
        assert [r.method for r in exchange.requests[a:b]].count("OpenOrders") == 2


async def test_rate_limited_reads_are_spaced_by_the_counter(exchange, make_venue,
                                                            fake_time) -> None:
    venue = make_venue()
    exchange.inject("OpenOrders", *[("error", ["EAPI:Rate limit exceeded"])] * 3)
    assert await venue.rest.open_orders() == {}
    waits = [s for s in fake_time.sleeps if s > 0]
    assert len(waits) >= 3 and min(waits) >= 1 / 0.33 - 1e-6  # a full counter decays 1 point


# -- rate-limited look-ups of an ambiguous AddOrder ----------------------------------------------
@pytest.mark.parametrize("error", ["EAPI:Rate limit exceeded", "EGeneral:Too many requests"])
async def test_lookups_rate_limited_after_a_lost_answer_settle_the_order_later(
        exchange, make_venue, error) -> None:
    """Kraken placed the order; the answer is lost; every look-up is rate limited.  Never
    sent again: ``OrderUnknown``.  Before: nothing asked again until a restart.  Now the
    venue keeps asking and reports OPEN with the txid on ``executions()``'s queue."""
    venue = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    exchange.inject("OpenOrders", *[("error", [error])] * 8)
    with pytest.raises(OrderUnknown, match="could not be asked"):
        await venue.submit(resting("argus-r2"))
    (txid,) = held(exchange, "argus-r2")
    async with asyncio.timeout(20):
        update = await venue._fills.get()
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.OPEN
    assert update.venue_order_id == txid and len(exchange.calls("AddOrder")) == 1


async def test_an_order_never_placed_whose_lookups_were_limited_ends_cancelled(
        exchange, make_venue) -> None:
    """The AddOrder refused (rate limit) and every look-up refused too: unknown; once
    Kraken answers, after the deadline, the order is CANCELLED (never placed), so the
    engine may send the next flatten; nothing was sent again."""
    venue = make_venue(max_retries=1)
    exchange.inject("AddOrder", ("error", ["EOrder:Rate limit exceeded"]))
    exchange.inject("OpenOrders", *[("error", ["EAPI:Rate limit exceeded"])] * 4)
    with pytest.raises(OrderUnknown):
        await venue.submit(market("argus-flat"))
    async with asyncio.timeout(20):
        update = await venue._fills.get()
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.CANCELLED
    assert "never placed" in update.reason and len(exchange.calls("AddOrder")) == 1


# -- cancels -----------------------------------------------------------------------------------
async def test_a_rate_limited_cancel_is_retried_after_the_counter(exchange, make_venue,
                                                                  fake_time) -> None:
    venue = make_venue()
    txid = await venue.execution.submit(resting("argus-r2"))
    exchange.inject("CancelOrder", ("error", ["EAPI:Rate limit exceeded"]))
    await venue.cancel("argus-r2")
    assert exchange.closed[txid]["status"] == "canceled"
    assert max(fake_time.sleeps) >= 1 / 0.33 - 1e-6


async def test_a_cancel_rate_limited_past_the_budget_fails_clearly(exchange, make_venue
                                                                   ) -> None:
    venue = make_venue(max_retries=2)
    txid = await venue.execution.submit(resting("argus-r2"))
    exchange.inject("CancelOrder", *[("error", ["EAPI:Rate limit exceeded"])] * 3)
    with pytest.raises(VenueError, match="Rate limit"):
        await venue.cancel("argus-r2")
    assert txid in exchange.orders and len(exchange.calls("CancelOrder")) == 3


# -- HTTP 429 from the edge with Retry-After ----------------------------------------------------
async def test_a_120s_retry_after_refuses_at_once_and_holds_every_call(
        exchange, proxy, proxied) -> None:
    """The kill switch's case: the edge answers AddOrder 429 ``Retry-After: 120``.  Before:
    the header was ignored, the order looked up at once (more calls into the penalty) and
    sent again after the deadline.  Now the order is refused at once (not placed: a 429
    never reached Kraken), and every private call before the 120 s are over is refused
    unsent, with the time left."""
    # (a 0.5 s timeout met a ConnectTimeout to 127.0.0.1 on a loaded machine: looked up,
    # sent again, and the test saw calls that are not this case's)
    venue = proxied(request_timeout_s=2.0, order_deadline_s=4.0)
    pin(proxy, ADD, HttpFault.S429_RETRY, retry_after="120")
    async with asyncio.timeout(30):  # a hang guard, not a timing assertion
        with pytest.raises(VenueError, match=r"not placed: rate limited for another 1[12]\d"):
            await venue.execution.submit(market("argus-f1"))
        with pytest.raises(VenueError, match="not placed"):
            await venue.execution.submit(market("argus-f2"))
        with pytest.raises(KrakenThrottled, match="not sent"):
            await venue.rest.open_orders()
    private = [k for k in proxy.seen if "/private/" in k]
    assert private == [ADD]  # nothing else went out
    assert held(exchange, "argus-f1") == {} == held(exchange, "argus-f2")


@pytest.mark.parametrize(("value", "skew"), [("2", 0.0), ("{date+2}", 0.0),
                                             ("{date+2}", 3600.0), ("0", 0.0), ("soon", 0.0)],
                         ids=["2s", "http-date", "date-on-a-skewed-clock", "zero", "garbage"])
async def test_a_short_retry_after_on_a_read_is_waited_out(exchange, proxy, proxied,
                                                           value, skew) -> None:
    proxy.skew_s = skew
    venue = proxied()
    pin(proxy, "POST /0/private/OpenOrders", HttpFault.S429_RETRY, retry_after=value)
    assert await venue.rest.open_orders() == {}
    (first, second) = [t for k, t in proxy.arrived]
    least = 1.9 if value == "2" else 0.9 if value.startswith("{") else 0.0
    assert second - first >= least


# -- answers after the timeout and the late act -----------------------------------------------
@pytest.mark.parametrize("factor", [1.05, 1.5, 4.0], ids=["just-after", "after", "long-after"])
async def test_an_answer_after_the_timeout_is_found_not_resent(exchange, proxy, proxied,
                                                               factor) -> None:
    venue = proxied()
    pin(proxy, ADD, HttpFault.LATE, late_factor=factor)
    txid = await venue.execution.submit(market("argus-late"))
    assert list(held(exchange, "argus-late")) == [txid] and proxy.seen.count(ADD) == 1


@pytest.mark.parametrize("factor", [1.3, 6.0], ids=["before-the-deadline", "after-it"])
async def test_the_late_act_is_fenced_by_the_lookups_nonces(exchange, proxy, proxied,
                                                            factor) -> None:
    """AddOrder held on the way past the timeout (0.5 s) and past the first look-up, then
    delivered (0.65 s: inside its 2 s deadline; 3 s: after it).  The look-ups were signed
    with higher nonces and got there first, so Kraken refuses the late AddOrder (``EAPI:
    Invalid nonce``) whenever it arrives: never placed; the look-up after the deadline
    proves it; one more send; one order at Kraken."""
    venue = proxied()
    pin(proxy, ADD, HeldOutFault.ACT_LATE, late_factor=factor)
    txid = await venue.execution.submit(market("argus-actlate"))
    await exchange.wait_for(lambda: len(exchange.calls("AddOrder")) == 2, timeout=10)
    await asyncio.sleep(0.1)  # the late one's answer
    assert list(held(exchange, "argus-actlate")) == [txid]
    assert venue.execution.resent == 1 and venue.execution.lookups == 2


# -- the executions stream's own calls ----------------------------------------------------------
async def test_a_rate_limited_token_call_is_a_failed_connection_not_the_end(
        exchange, proxy, make_settings, fake_time) -> None:
    """Wide campaign seed 1041 (shrunk: GetWebSocketsToken answered 429 ``Retry-After:
    120``): the executions stream stopped for good, and every later fill with it.  Now the
    token call's rate limit is a failed connection (``OSError``: the session reconnects)
    after waiting the limit out."""
    from argus_venue_kraken.execution import KrakenExecutionsFeed

    venue = KrakenVenue(make_settings(rest_url=proxy.url, credentials=True,
                                      request_timeout_s=0.5), sleep=fake_time.sleep,
                        clock=fake_time.clock)
    try:
        feed = KrakenExecutionsFeed(venue.settings, venue.rest, venue.execution)
        pin(proxy, "POST /0/private/GetWebSocketsToken", HeldOutFault.S429_HTML,
            retry_after="120")
        with pytest.raises(OSError, match="rate limited"):
            await feed.prepare()
        assert max(fake_time.sleeps) == 60.0  # waited (a minute at a time), then reconnects
        exchange.inject("TradesHistory", *[("error", ["EAPI:Rate limit exceeded"])] * 8)
        fake_time.now += 120  # the 120 s are over
        venue.execution.remember("argus-x")
        venue.execution.backfill_from_ns = time.time_ns()
        with pytest.raises(OSError, match="backfill failed"):
            await feed.after_subscribe()
    finally:
        await venue.close()


async def test_a_rate_limited_executions_subscribe_reconnects_not_ends(
        exchange, make_settings) -> None:
    """Kraken's websocket answers the executions subscribe ``EGeneral:Too many requests``.
    Before: "subscription refused", the stream ended for good (as for a refused token).
    Now a failed connection: after the longest back-off, a new one subscribes."""
    from argus_venue_kraken.execution import KrakenExecutionsFeed
    from argus_venue_kraken.testing import AwaitSubscribe, ForwardExecutions, LocalKrakenWs
    from argus_venue_kraken.testing.ws import Send

    refusal = {"method": "subscribe", "success": False, "req_id": 1,
               "error": "EGeneral:Too many requests"}
    sessions: list[Any] = [[AwaitSubscribe("executions"), Send(refusal)],
                           [ForwardExecutions(exchange)]]
    async with LocalKrakenWs(sessions, token="local-ws-token") as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        feed = KrakenExecutionsFeed(venue.settings, venue.rest, venue.execution)
        stopped: list[BaseException] = []

        async def consume() -> None:
            try:
                async for _ in feed.events():
                    pass
            except Exception as exc:  # what ended the stream, if anything did
                stopped.append(exc)

        task = asyncio.create_task(consume())
        try:
            for _ in range(500):
                await asyncio.sleep(0.01)
                if feed.connects >= 2 or stopped:
                    break
        finally:
            await feed.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await venue.close()
    assert not stopped, f"the stream ended: {stopped[0]!r}"
    assert feed.connects >= 2
    assert feed.disconnects == 1 and "rate limited" in feed.last_disconnect_reason


# -- Kraken's clock apart from ours -------------------------------------------------------------
@pytest.mark.parametrize("skew_s", [8.0, -8.0, 30.0], ids=["8s-ahead", "8s-behind", "30s-ahead"])
async def test_add_order_deadlines_are_on_krakens_clock(exchange, proxy, proxied,
                                                        skew_s) -> None:
    """Kraken's clock ``skew_s`` from ours (its answers' ``Date`` say so).  Before: the
    ``deadline`` was our clock plus 5 s; Kraken 8 s ahead read it as 3 s in its past and
    refused every order (``EGeneral:Invalid arguments:deadline``).  Now the deadline is on
    Kraken's clock, learnt from its ``Date`` headers: placed, once.  A lost answer is then
    settled by the look-up after Kraken's deadline."""
    exchange.wall_ns = lambda: time.time_ns() + int(skew_s * 1e9)
    proxy.skew_s = skew_s
    venue = proxied(order_deadline_s=5.0)
    txid = await venue.execution.submit(market("argus-skew"))
    assert list(held(exchange, "argus-skew")) == [txid]
    assert abs(venue.rest.clock_skew_s - skew_s) < 1.5
    pin(proxy, ADD, HttpFault.LOST)
    again = await venue.execution.submit(market("argus-skew-2"))
    assert list(held(exchange, "argus-skew-2")) == [again] and proxy.seen.count(ADD) == 2
