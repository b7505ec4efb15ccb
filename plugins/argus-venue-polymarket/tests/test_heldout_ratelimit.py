"""Held-out rate-limit and timeout faults on Polymarket's order path.

Polymarket's CLOB answers a rate limit with HTTP 429 (JSON from the CLOB, an HTML page
when Cloudflare throttles first), before acting.  The testkit's fault proxy sits in front
of the local CLOB and pins one request's fault: a 429 whose ``Retry-After`` is absent, 0,
a few seconds, 120 s, an HTTP-date (on a venue clock skewed from ours) or garbage; bursts
longer than ``order_max_attempts``; 429s on the look-ups that settle an ambiguous post;
answers after the timeout at several delays and the late act.

The right behaviour: never a blind re-send; the wait honoured (never sooner than asked
nor than our own back-off) but never slept past ``clob.WAIT_CAP_S``: a longer wait refuses
the order at once (not placed: the engine may try a flatten again 2 s later) and the
endpoint is held unsent until it is over; a clear refusal when the budget is spent; an
unknown order settled later by asking.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from argus_testkit.fault_proxy import FaultProxy
from argus_testkit.faults import AnyHttpFault, FaultPlan, HeldOutFault, HttpFault
from argus_venue_polymarket.clob import RETRY_AFTER_MAX_S, retry_after_s
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import LocalClob, make_book

from argus_core.errors import OrderUnknown, VenueError
from argus_core.models import Instrument, Order, OrderStatus, OrderType, Side, TimeInForce
from argus_core.secrets import Secret

TOKEN_A = "1234"
API_KEY, API_PASSPHRASE = "key-1", "pass"
API_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
TIMEOUT_S = 0.4
POST = "POST /order"


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    """A local CLOB: A bids 150 @ 0.60, asks 150 @ 0.64."""
    books = [make_book(TOKEN_A, "0xcond-a", [("0.60", "150")], [("0.64", "150")])]
    local = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                      api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer([], books, clob=local).start()
    try:
        yield srv, local
    finally:
        srv.stop()


@pytest.fixture
async def proxy(clob: tuple[SnapshotServer, LocalClob]) -> AsyncIterator[FaultProxy]:
    plan = FaultPlan(0, http_rate=0.0, ws_rate=0.0)
    async with FaultProxy(clob[0].url, plan, late_s=TIMEOUT_S * 3, timeout_s=TIMEOUT_S) as p:
        yield p


def pin(proxy: FaultProxy, key: str, *faults: AnyHttpFault, retry_after: str | None = "0",
        late_factor: float | None = None) -> None:
    plan = proxy.plan
    start = plan.last(key) + 1
    for k, fault in enumerate(faults):
        plan.forced[(key, start + k)] = fault
    plan.retry_afters = (retry_after,)
    plan.late_factors = (late_factor,) if late_factor else ()


def lookups_limited(proxy: FaultProxy, retry_after: str | None) -> None:
    """Every look-up (GET of an order, the open orders, the trades) answered 429."""
    plan = proxy.plan
    plan.http_rate, plan.weights = 1.0, {HttpFault.S429_RETRY: 1}
    plan.eligible = lambda key: key.startswith("GET /data/")
    plan.retry_afters = (retry_after,)


def execution(url: str, **overrides: Any) -> PolymarketExecution:
    timings: dict[str, Any] = {"request_timeout_s": TIMEOUT_S, "order_settle_s": 1.0,
                               "order_lookup_interval_s": 0.05, "heartbeat_interval_s": 0.1}
    settings = PolymarketSettings(
        clob_url=url, private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
        api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
        user_channel=False, **(timings | overrides))
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    inst = Instrument("polymarket", TOKEN_A, kind="binary", tick_size="0.01",
                      lot_size="0.01", min_size="5", meta=meta)
    return PolymarketExecution(settings, {f"polymarket:{TOKEN_A}": inst}.get)


def order(cid: str, tif: TimeInForce = TimeInForce.FOK, px: str = "0.64") -> Order:
    return Order(cid, "polymarket", f"polymarket:{TOKEN_A}", Side.BUY, Decimal(100),
                 Decimal(px), OrderType.LIMIT, tif)


def posts(proxy: FaultProxy) -> list[float]:
    return [t for k, t in proxy.arrived if k == POST]


# -- the header itself ----------------------------------------------------------------------
def test_retry_after_reads_seconds_and_dates_and_ignores_garbage() -> None:
    """Before: an HTTP-date or garbage read as 0 and ``nan`` as nan (``asyncio.sleep(nan)``
    on the re-send's back-off)."""
    now = float(int(time.time()))
    venue_now = now - 1800  # the venue's clock half an hour behind ours
    date = email.utils.formatdate(venue_now, usegmt=True)
    assert retry_after_s(email.utils.formatdate(venue_now + 3, usegmt=True), date) == 3.0
    assert retry_after_s(email.utils.formatdate(now + 2, usegmt=True), now_s=now) == 2.0
    assert retry_after_s("2.5") == 2.5 and retry_after_s("99999") == RETRY_AFTER_MAX_S
    for garbage in (None, "", "0", "soon", "nan", "-3", "inf", "Mon, 99 Foo"):
        assert retry_after_s(garbage) == 0.0, garbage


# -- a 429 on the place --------------------------------------------------------------------
@pytest.mark.parametrize(("fault", "value", "least_s"), [
    (HttpFault.S429_RETRY, None, 0.05), (HttpFault.S429_RETRY, "0", 0.05),
    (HttpFault.S429_RETRY, "2", 1.95), (HttpFault.S429_RETRY, "nan", 0.05),
    (HttpFault.S429_RETRY, "soon", 0.05), (HttpFault.S429_RETRY, "{date+2}", 0.95),
    (HeldOutFault.S429_HTML, "1", 0.95)],
    ids=["absent", "zero", "2s", "nan", "garbage", "http-date", "cloudflare-html"])
async def test_a_429_on_the_place_is_waited_out_then_placed_once(
        clob, proxy, fault, value, least_s) -> None:
    _, local = clob
    ex = execution(proxy.url)
    pin(proxy, POST, fault, retry_after=value)
    (fill,) = await ex.submit(order("rl-1"))
    assert fill.quantity == 100 and set(local.accepted.values()) == {1}
    first, second = posts(proxy)
    assert second - first >= least_s  # the wait honoured: no hammering


async def test_an_http_date_on_a_venue_clock_ahead_of_ours_is_a_short_wait(clob,
                                                                           proxy) -> None:
    """The venue's clock an hour ahead: a date 2 s after its ``Date`` is 2 s (on our clock
    it would read as an hour: the order refused for nothing)."""
    _, local = clob
    proxy.skew_s = 3600.0
    ex = execution(proxy.url)
    pin(proxy, POST, HttpFault.S429_RETRY, retry_after="{date+2}")
    assert len(await ex.submit(order("rl-skew"))) == 1
    first, second = posts(proxy)
    assert second - first >= 0.95 and set(local.accepted.values()) == {1}


async def test_a_burst_of_429s_longer_than_the_budget_is_a_clear_refusal(clob,
                                                                         proxy) -> None:
    _, local = clob
    ex = execution(proxy.url, order_max_attempts=3)
    pin(proxy, POST, *[HttpFault.S429_RETRY] * 10, retry_after="0")
    with pytest.raises(VenueError, match="not placed after 3 sends") as exc:
        await ex.submit(order("rl-burst"))
    assert not isinstance(exc.value, OrderUnknown) and not local.accepted
    sends = posts(proxy)
    assert len(sends) == 3 and all(b - a >= 0.05 for a, b in itertools.pairwise(sends))


async def test_a_120s_retry_after_refuses_at_once_and_holds_the_endpoint(clob,
                                                                         proxy) -> None:
    """The kill switch's case.  Before: the sender slept 10 s (its cap) and posted again
    inside the venue's 120 s, ``order_max_attempts`` times (the caller frozen ~20 s, the
    venue hammered).  Now the order is refused at once (not placed); the next post before
    the 120 s are over is refused unsent; the look-ups (another endpoint) still go out."""
    _, local = clob
    ex = execution(proxy.url)
    pin(proxy, POST, HttpFault.S429_RETRY, retry_after="120")
    with pytest.raises(VenueError, match=r"rate limited for another 1[12]\ds") as exc:
        await ex.submit(order("rl-flat"))
    assert not isinstance(exc.value, OrderUnknown)
    with pytest.raises(VenueError, match="not placed"):
        await ex.submit(order("rl-flat-2"))
    assert len(posts(proxy)) == 1 and not local.accepted
    assert any(k.startswith("GET /data/") for k in proxy.seen)


# -- 429s on the look-ups of an ambiguous post -------------------------------------------------
@pytest.mark.parametrize("value", [None, "0", "120"], ids=["absent", "zero", "120s"])
async def test_rate_limited_lookups_after_a_lost_answer_leave_it_unknown_then_settled(
        clob, proxy, value) -> None:
    """The post's answer is lost after the venue acted (a resting GTC order); every look-up
    is answered 429.  Never posted again: ``OrderUnknown``; once the venue answers,
    ``executions()``'s look-up finds it (OPEN with its hash)."""
    _, local = clob
    ex = execution(proxy.url, order_settle_s=0.4)
    pin(proxy, POST, HttpFault.LOST)
    lookups_limited(proxy, value)
    with pytest.raises(OrderUnknown, match="could not be asked"):
        await ex.submit(order("rl-lk", TimeInForce.GTC, "0.50"))
    assert len(posts(proxy)) == 1 and set(local.accepted.values()) == {1}
    proxy.plan.quiet = True
    if value == "120":  # held by the 120 s: what the poll would meet until it ends
        assert ex.client.holds  # the 120 s ends: let the poll meet the venue again
        ex.client.holds.clear()
    await ex.poll_unknown()
    updates = [u for u in ex._reports if getattr(u, "client_order_id", "") == "rl-lk"]
    assert [u.status for u in updates][-1] is OrderStatus.OPEN
    assert len(posts(proxy)) == 1


# -- answers after the timeout, the late act -------------------------------------------------
@pytest.mark.parametrize("factor", [1.05, 1.5, 4.0], ids=["just-after", "after", "long-after"])
async def test_an_answer_after_the_timeout_is_found_not_resent(clob, proxy, factor) -> None:
    _, local = clob
    ex = execution(proxy.url, order_settle_s=3.0)
    pin(proxy, POST, HttpFault.LATE, late_factor=factor)
    (fill,) = await ex.submit(order(f"late-{factor}"))
    assert fill.quantity == 100 and len(posts(proxy)) == 1
    assert set(local.accepted.values()) == {1}


async def test_the_late_act_after_the_lookups_said_nothing_is_settled_later(clob,
                                                                           proxy) -> None:
    """The post is held on the way past the timeout and past ``order_settle_s``: the
    look-ups find nothing, ``OrderUnknown`` (the request may still be acted on: never
    re-sent); then the venue acts; ``executions()``'s look-up reports it."""
    _, local = clob
    ex = execution(proxy.url, order_settle_s=0.3)
    pin(proxy, POST, HeldOutFault.ACT_LATE, late_factor=4.0)
    with pytest.raises(OrderUnknown, match="may still be acted on"):
        await ex.submit(order("actlate", TimeInForce.GTC, "0.50"))
    deadline = time.monotonic() + 10
    while not local.accepted and time.monotonic() < deadline:
        await ex.poll_unknown()  # asking meanwhile changes nothing
        await asyncio.sleep(0.05)
    await ex.poll_unknown()
    updates = [u for u in ex._reports if getattr(u, "client_order_id", "") == "actlate"]
    assert updates and updates[-1].status is OrderStatus.OPEN
    assert len(posts(proxy)) == 1 and set(local.accepted.values()) == {1}


# -- a venue clock behind ours ----------------------------------------------------------------
@pytest.mark.parametrize("behind_s", [30, 300, 3000], ids=["30s", "5min", "50min"])
async def test_a_fill_dated_by_a_venue_clock_behind_ours_is_found_not_resent(
        clob, behind_s) -> None:
    """A FOK fills and leaves the book; its answer is lost (502 after acting); the venue
    dates the trade on a clock ``behind_s`` behind ours.  The trades look-up asks for
    trades ``after`` our send time less a skew allowance.  Before: 60 s, so a trade dated
    5 min back was not listed, the order read as never placed and was posted again (its
    second FOK found the book empty: the first fill never booked).  Now an hour (the
    trades are matched by our order id): found, one post."""
    from argus_venue_polymarket.testing import Fault

    srv, local = clob
    made = local._trade

    def dated_behind(*args: Any, **kwargs: Any) -> dict[str, Any]:
        trade = made(*args, **kwargs)
        stamp = str(int(trade["match_time"]) - behind_s)
        return {**trade, "match_time": stamp, "last_update": stamp}

    local._trade = dated_behind  # type: ignore[method-assign]  # the venue's skewed clock
    local.faults.append(Fault(status=502))
    ex = execution(srv.url)
    fills = await ex.submit(order("skewed"))
    assert sum(f.quantity for f in fills) == 100
    assert set(local.accepted.values()) == {1} and len(local.attempts) == 1
