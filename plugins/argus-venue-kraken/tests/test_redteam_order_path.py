"""Red-team findings on the Kraken order path and signing (each a regression test).

* An AddOrder's ``deadline`` must be drawn when the request leaves, not before the
  client waits out an HTTP 429's ``Retry-After``: Kraken refuses a deadline under
  now + 2 s (``EGeneral:Invalid arguments:deadline``), which rejected the order.
* Two different core client order ids must never share one Kraken ``cl_ord_id``:
  a look-up would take the first order for the second (never sent).
* An order whose submit ended ``OrderUnknown`` after a re-send must not be settled as
  "never placed" before the *last* AddOrder's deadline has passed: the window was counted
  from the order's creation time, so a re-sent (or rate-limit-delayed) request still
  queued at Kraken could be placed after the ledger marked the order CANCELLED.
* After a restart only the order's time is known, and "never placed" was counted from it
  plus the deadline: a re-send the dead process made later (after a send proven absent,
  its back-off and waits) could still be queued at Kraken and be placed after the
  restart called the order CANCELLED (the strategy then sent the intent again).  The
  window now runs to the order's time plus :func:`send_window_s` (no AddOrder leaves
  later: refused unsent) plus the deadline and ``lookup_settle_s``.
* A look-up whose wait ended inside that window and still found nothing answered
  CANCELLED: it gives no verdict (None) until a look-up asked after the window.
* The nonce file must never be left empty by a failed write: the next nonce fell
  back to the clock, which can be behind the last nonce handed out.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from argus_venue_kraken.execution import cl_ord_id_for, send_window_s
from argus_venue_kraken.schemas import rfc3339_ns
from argus_venue_kraken.signing import NonceStore
from argus_venue_kraken.testing import LocalKrakenRest
from kraken_orders import held, market

from argus_core.errors import OrderUnknown, VenueError
from argus_core.models import Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce

_EMPTY_OPEN = ("answer", {"error": [], "result": {"open": {}}})  # a plain "none open"


def _shared_wall(fake_time) -> Callable[[], int]:
    """Real wall time plus whatever the fake sleep has skipped: the client and the local
    exchange then agree on 'now' while waits cost no real time."""
    start = fake_time.now

    def wall() -> int:
        return time.time_ns() + int((fake_time.now - start) * 1e9)

    return wall


async def test_add_order_deadline_is_drawn_after_the_retry_after_wait(
        exchange: LocalKrakenRest, make_venue, fake_time) -> None:
    """A 429 on some other call left a 4.5 s hold: the AddOrder waits it out and must
    still carry a deadline ``order_deadline_s`` ahead of the moment it is sent."""
    wall = _shared_wall(fake_time)
    exchange.wall_ns = wall
    venue = make_venue(order_deadline_s=5.0)
    venue.execution._wall_ns = wall
    venue.rest.rest_limiter.hold(4.5)
    txid = await venue.execution.submit(market("argus-hold-1"))
    assert list(held(exchange, "argus-hold-1")) == [txid]
    assert len(exchange.calls("AddOrder")) == 1 and venue.execution.resent == 0


async def test_unknown_after_a_resend_waits_for_the_last_deadline(
        exchange: LocalKrakenRest, make_venue, fake_time) -> None:
    """Send 1: a 503 (Kraken did nothing), proven absent after its deadline.  Send 2: a 503
    again, and every look-up fails: ``OrderUnknown``.  The venue then settles the order by
    asking; "never placed" is only proof once send 2's deadline (+ ``lookup_settle_s``)
    has passed: before, send 2 may still be queued at Kraken and be placed."""
    wall = _shared_wall(fake_time)
    exchange.wall_ns = wall
    venue = make_venue()
    venue.execution._wall_ns = wall
    venue._clock_ns = wall
    exchange.inject("AddOrder", ("status", 503), ("status", 503))
    exchange.inject("OpenOrders", _EMPTY_OPEN, _EMPTY_OPEN, *[("status", 503)] * 4)
    order = Order("argus-late-resend", "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.1"),
                  None, OrderType.MARKET, TimeInForce.IOC, "s", wall())
    with pytest.raises(OrderUnknown):
        await venue.submit(order)
    sends = exchange.calls("AddOrder")
    assert len(sends) == 2
    last_deadline_ns = rfc3339_ns(sends[-1].params["deadline"])
    async with asyncio.timeout(30):
        update = await venue._fills.get()
    assert isinstance(update, OrderUpdate)
    if update.status is OrderStatus.CANCELLED:  # never placed: only after send 2's deadline
        assert wall() >= last_deadline_ns + int(venue.settings.lookup_settle_s * 1e9)
    assert len(exchange.calls("AddOrder")) == 2  # and nothing sent again meanwhile


async def test_a_restart_waits_for_the_dead_process_s_last_possible_resend(
        exchange: LocalKrakenRest, make_venue, fake_time) -> None:
    """Send 1: a 503 (Kraken did nothing), proven absent after its deadline.  Send 2, a
    deadline later: Kraken takes it but lists it only a second later, the answer is lost
    and the process dies (its look-ups fail: ``OrderUnknown``).  The restarted venue knows
    only the order's time, whose deadline window has passed: it must not call the order
    never placed (it was placed), but wait a deadline from its own first look-up (the
    dead process's last send left before it: the run lock) and find it."""
    wall = _shared_wall(fake_time)
    exchange.wall_ns = wall
    exchange.visible_after_s = 1.0
    first = make_venue()
    first.execution._wall_ns = wall
    first._clock_ns = wall
    exchange.inject("AddOrder", ("status", 503), ("lost", None))
    exchange.inject("OpenOrders", _EMPTY_OPEN, _EMPTY_OPEN, *[("status", 503)] * 4)
    order = Order("argus-dead-resend", "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.1"),
                  None, OrderType.MARKET, TimeInForce.IOC, "s", wall())
    with pytest.raises(OrderUnknown):
        await first.execution.submit(order)
    assert len(exchange.calls("AddOrder")) == 2
    restarted = make_venue()
    restarted.execution._wall_ns = wall
    restarted._clock_ns = wall
    update = await restarted.lookup(order)
    (txid,) = held(exchange, "argus-dead-resend")
    assert update is not None and update.status is OrderStatus.OPEN, update
    assert update.venue_order_id == txid and len(exchange.calls("AddOrder")) == 2


async def test_a_look_up_that_finds_nothing_inside_the_window_gives_no_verdict(
        exchange: LocalKrakenRest, make_venue, fake_time) -> None:
    """A restarted venue asks about an order of a moment ago; its wait is cut short (the
    clock has not reached the window's end) and the second look-up finds nothing: no
    verdict (None), not CANCELLED.  Asked again once the window has passed: CANCELLED."""
    wall = _shared_wall(fake_time)
    exchange.wall_ns = wall
    venue = make_venue()
    venue.execution._wall_ns = wall
    venue._clock_ns = wall

    async def cut_short(seconds: float) -> None:
        fake_time.sleeps.append(seconds)  # returns at once: no time passes

    venue.execution._sleep = cut_short
    order = Order("argus-inside", "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.1"),
                  None, OrderType.MARKET, TimeInForce.IOC, "s", wall())
    assert await venue.lookup(order) is None
    assert len(exchange.calls("OpenOrders")) == 2  # asked before and after the wait
    fake_time.now += send_window_s(venue.settings) + 60.0
    update = await venue.lookup(order)
    assert update is not None and update.status is OrderStatus.CANCELLED
    assert not exchange.calls("AddOrder")


async def test_no_add_order_leaves_after_the_send_window(
        exchange: LocalKrakenRest, make_venue, fake_time,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Send 1: a 503, proven absent.  Before send 2 the pair's trading counter keeps the
    order waiting past ``send_window_s`` (other orders take its room first): send 2 would
    leave later than a restart's window allows, so it is refused unsent (not placed)."""
    wall = _shared_wall(fake_time)
    exchange.wall_ns = wall
    venue = make_venue()
    venue.execution._wall_ns = wall
    real_acquire = venue.execution.trading.acquire
    acquired = 0

    async def starved(pair: str, cost: float) -> None:
        nonlocal acquired
        acquired += 1
        if acquired == 2:
            await fake_time.sleep(venue.execution.send_window_s)
        await real_acquire(pair, cost)

    monkeypatch.setattr(venue.execution.trading, "acquire", starved)
    exchange.inject("AddOrder", ("status", 503))
    with pytest.raises(VenueError, match="not placed") as info:
        await venue.execution.submit(market("argus-starved"))
    assert not isinstance(info.value, OrderUnknown)
    assert len(exchange.calls("AddOrder")) == 1 and not held(exchange, "argus-starved")


@pytest.mark.parametrize("a, b", [
    ("0123456789abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"),
    ("01234567-89AB-CDEF-0123-456789ABCDEF", "01234567-89ab-cdef-0123-456789abcdef"),
    ("{01234567-89ab-cdef-0123-456789abcdef}", "01234567-89ab-cdef-0123-456789abcdef"),
    ("urn:uuid:01234567-89ab-cdef-0123-456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"),
])
def test_distinct_core_ids_never_share_a_cl_ord_id(a: str, b: str) -> None:
    """Spellings of one UUID are distinct core ids (the core compares text): each needs
    its own wire id, else the second order is 'found' as the first and never sent."""
    assert cl_ord_id_for(a) != cl_ord_id_for(b)
    assert cl_ord_id_for(b) == b  # a canonical UUID still passes through


async def test_second_order_with_a_uuid_spelling_of_the_first_is_placed(
        exchange: LocalKrakenRest, make_venue) -> None:
    """End to end: a filled market order, then a second order whose core id is another
    spelling of the first's: two orders at Kraken, not one."""
    venue = make_venue()
    first = await venue.execution.submit(market("01234567-89ab-cdef-0123-456789abcdef"))
    exchange.inject("AddOrder", ("lost", None))  # Kraken acts, the answer is lost
    second = await venue.execution.submit(market("0123456789ABCDEF0123456789ABCDEF"))
    assert second != first
    assert len({*held(exchange, "01234567-89ab-cdef-0123-456789abcdef"),
                *held(exchange, "0123456789ABCDEF0123456789ABCDEF")}) == 2


def test_a_failed_nonce_write_never_lets_the_nonce_go_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full while the nonce is written: that draw fails, and the next one (after the
    disk is freed, the clock behind the last nonce) is still above every nonce handed out."""
    clock = iter([1_000, 1_000, 500, 500, 500])
    store = NonceStore(tmp_path / "nonce", clock=lambda: next(clock))
    assert store.next() == 1_000
    real_pwrite = os.pwrite

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises((OSError, VenueError)):
        store.next()
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    assert store.next() > 1_000


async def test_a_window_far_off_gives_no_verdict_without_waiting_it_out(
        exchange: LocalKrakenRest, make_venue, fake_time) -> None:
    """An order stamped an hour ahead of our clock (market time the venue stamped ahead)
    whose send had no answer: its window ends an hour away.  The look-up answers None at
    once (the core asks again later) instead of sleeping an hour: a restart's start-up,
    the kill switch's included, waits on it."""
    wall = _shared_wall(fake_time)
    exchange.wall_ns = wall
    venue = make_venue()
    venue.execution._wall_ns = wall
    venue._clock_ns = wall
    exchange.inject("AddOrder", ("status", 503))
    exchange.inject("OpenOrders", *[("status", 503)] * 4)
    order = Order("argus-ahead", "kraken", "kraken:BTC/USD", Side.BUY, Decimal("0.1"),
                  None, OrderType.MARKET, TimeInForce.IOC, "s", wall() + 3600 * 10**9)
    with pytest.raises(OrderUnknown):
        await venue.execution.submit(order)
    before = len(fake_time.sleeps)
    assert await venue.lookup(order) is None
    assert max(fake_time.sleeps[before:], default=0.0) < 60.0
