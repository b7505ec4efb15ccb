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
from argus_venue_kraken.execution import cl_ord_id_for
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
