"""Faults the other exactly-once tests do not script: answers that arrive whole but are
not JSON (or not the documented shape), look-ups that fail, are rate limited or do not
see the order yet, cancels whose answer is lost or that race a fill, fills reported on
both paths, and a process killed around the send.

Each ends with the order placed at most once at the exchange, every fill booked once
(by ``trade_id``) and a clear outcome: found and acknowledged, ``OrderUnknown`` settled
later by ``executions()``, or a refusal that names the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
from argus_venue_kalshi.execution import LATE_PLACEMENT_WATCH_S, wire_client_id
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    Fill,
    KnownOrder,
    Order,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
    VenueResume,
)

YES = "kalshi:KXHIGHNY-24JAN01-T60/YES"
ROUTE = "POST /portfolio/orders"
LIST = "GET /portfolio/orders"


def buy(coid: str, limit: str = "0.45", qty: int = 2, tif: TimeInForce = TimeInForce.IOC
        ) -> Order:
    return Order(coid, "kalshi", YES, Side.BUY, D(qty), D(limit), OrderType.LIMIT, tif, "t")


def held(exchange: Any, coid: str) -> list[dict[str, Any]]:
    return exchange.engine.by_client_id(wire_client_id(coid))


def posts(exchange: Any) -> int:
    return sum(1 for r in exchange.rest.requests
               if r.method == "POST" and r.path.endswith("/portfolio/orders"))


def queued(venue: KalshiVenue) -> list[Fill | OrderUpdate]:
    out = []
    while not venue.execution._queue.empty():
        out.append(venue.execution._queue.get_nowait())
    return out


#: How long the exchange's order list lags an order it took (eventual consistency).
LATE_S = 1.0


async def collect(venue: KalshiVenue, until: Any, timeout: float = 10.0
                  ) -> list[Fill | OrderUpdate]:
    """Items of ``executions()`` until ``until(items)`` holds."""
    items: list[Fill | OrderUpdate] = []
    async with contextlib.aclosing(venue.executions()) as stream:
        async with asyncio.timeout(timeout):
            async for item in stream:
                items.append(item)
                if until(items):
                    break
    return items


@pytest.fixture
async def venue(local_settings: Any) -> Any:
    # Margins for a loaded CI box: an order listed late (LATE_S) is found well inside
    # order_give_up_s (a look-up after LATE_S would find it and change the path tested).
    v = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=2.0))
    yield v
    await v.close()


# -- answers that arrive whole but cannot be read -------------------------------------
@pytest.mark.parametrize("fault", [Fault("truncated", 201), Fault("shape", 201)],
                         ids=["truncated-201", "wrong-shape-201"])
async def test_a_201_that_cannot_be_read_is_looked_up_not_rejected(exchange, venue,
                                                                   fault) -> None:
    """Kalshi placed the order; its answer is half a JSON body, or JSON without the
    ``order``: the order is found by client id and acknowledged, never REJECTED (which
    would leave its fills booked against a refused order) and never sent again."""
    exchange.rest.inject(ROUTE, fault)
    assert await venue.submit(buy("cut-1")) == []
    (placed,) = held(exchange, "cut-1")
    assert posts(exchange) == 1
    assert venue.execution.venue_ids["cut-1"] == placed["order_id"]
    updates = queued(venue)
    assert [u.status for u in updates if isinstance(u, OrderUpdate)] == [OrderStatus.OPEN]


@pytest.mark.parametrize("lookup_fault", [
    Fault("truncated", 200),                       # a 200 whose body is cut short
    Fault("shape", 200),                           # JSON, but not a page of orders
    Fault("refuse", 429, retry_after=0.2),         # rate limited, with Retry-After
    Fault("refuse", 503),                          # the look-up itself meets a 5xx
    Fault("reset"),                                # the look-up's connection is reset
], ids=["truncated", "wrong-shape", "429-retry-after", "503", "reset"])
async def test_a_lost_answer_then_a_failing_lookup_is_retried_and_finds_it(
        exchange, venue, lookup_fault) -> None:
    exchange.rest.inject(ROUTE, Fault("lost"))
    exchange.rest.inject(LIST, lookup_fault)
    assert await venue.submit(buy("lk-1")) == []
    assert len(held(exchange, "lk-1")) == 1 and posts(exchange) == 1
    assert venue.execution.venue_ids["lk-1"] == held(exchange, "lk-1")[0]["order_id"]


async def test_a_lost_answer_and_kalshi_unreachable_is_order_unknown_then_settled(
        exchange, venue) -> None:
    """The order executed, the answer was lost and every look-up fails: ``OrderUnknown``,
    nothing re-sent; once Kalshi answers again ``executions()`` reports the order (OPEN
    with its id) and each of its fills once."""
    exchange.rest.inject(ROUTE, Fault("lost"))
    for _ in range(12):
        exchange.rest.inject(LIST, Fault("refuse", 503))
    with pytest.raises(OrderUnknown, match="cannot ask") as info:
        await venue.submit(buy("down-1", qty=20))
    assert info.value.client_order_ids == ["down-1"] and posts(exchange) == 1
    exchange.rest.faults.clear()

    def done(items: list[Fill | OrderUpdate]) -> bool:
        return sum(i.quantity for i in items if isinstance(i, Fill)) >= 20

    items = await collect(venue, done)
    fills = [i for i in items if isinstance(i, Fill)]
    assert len({f.fill_id for f in fills}) == len(fills)
    assert sum(f.quantity for f in fills) == 20
    assert all(f.client_order_id == "down-1" for f in fills)
    assert any(isinstance(i, OrderUpdate) and i.status is OrderStatus.OPEN for i in items)
    assert posts(exchange) == 1


# -- eventual consistency: the order shows only after a while ------------------------------
@pytest.mark.parametrize("fault", [Fault("after", 502), Fault("after", 503), Fault("lost")],
                         ids=["502-after-acting", "503-after-acting", "lost"])
async def test_an_order_that_shows_late_is_never_sent_twice(exchange, venue, fault) -> None:
    """Kalshi acted, answered a 5xx (or nothing), and its order list shows the order only
    LATE_S later: a 5xx is no proof that nothing happened, so the order is not sent
    again; ``executions()`` then finds it and acknowledges it."""
    exchange.rest.visible_after_s = LATE_S
    exchange.rest.inject(ROUTE, fault)
    with pytest.raises(OrderUnknown):
        await venue.submit(buy("late-1"))
    assert posts(exchange) == 1 and len(held(exchange, "late-1")) == 1

    def acked(items: list[Fill | OrderUpdate]) -> bool:
        return any(isinstance(i, OrderUpdate) and i.status is OrderStatus.OPEN
                   for i in items)

    items = await collect(venue, acked)
    (ack,) = [i for i in items if isinstance(i, OrderUpdate)]
    assert ack.client_order_id == "late-1"
    assert ack.venue_order_id == held(exchange, "late-1")[0]["order_id"]
    assert posts(exchange) == 1


async def test_a_503_without_acting_is_not_resent_and_ends_never_placed(exchange,
                                                                        venue) -> None:
    """A 503 cannot prove Kalshi did nothing: no second send.  Kalshi never shows the
    order, so after ``order_give_up_s`` ``executions()`` ends it CANCELLED, never
    placed, instead of leaving it pending."""
    exchange.rest.inject(ROUTE, Fault("refuse", 503))
    with pytest.raises(OrderUnknown):
        await venue.submit(buy("gone-1"))
    assert posts(exchange) == 1 and held(exchange, "gone-1") == []

    def ended(items: list[Fill | OrderUpdate]) -> bool:
        return any(isinstance(i, OrderUpdate) for i in items)

    (update,) = await collect(venue, ended)
    assert isinstance(update, OrderUpdate) and update.client_order_id == "gone-1"
    assert update.status is OrderStatus.CANCELLED and "never placed" in update.reason
    assert posts(exchange) == 1


async def test_a_429_is_resent_only_after_its_retry_after(exchange, venue) -> None:
    """A 429 is refused before the engine: looked up (nothing), then sent once more
    after the ``Retry-After`` it carried; one order."""
    exchange.rest.inject(ROUTE, Fault("refuse", 429, retry_after=0.3))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await venue.submit(buy("rl-1"))
    waited = loop.time() - start
    assert posts(exchange) == 2 and len(held(exchange, "rl-1")) == 1
    assert waited >= 0.25  # the exchange's Retry-After was honoured (not a timing bound)


async def test_429_every_time_ends_rejected_not_pending(exchange, venue) -> None:
    """Refused before acting on every attempt (and never found): provably never placed,
    so a plain ``VenueError`` (the core rejects it), not ``OrderUnknown``."""
    for _ in range(3):  # max_retries = 2: three sends
        exchange.rest.inject(ROUTE, Fault("refuse", 429, retry_after=0.01))
    with pytest.raises(VenueError, match="429") as info:
        await venue.submit(buy("rl-2"))
    assert not isinstance(info.value, OrderUnknown)
    assert posts(exchange) == 3 and held(exchange, "rl-2") == []


# -- duplicate client order id ------------------------------------------------------------
async def test_a_duplicate_client_id_refusal_means_the_order_went_through(exchange,
                                                                          venue) -> None:
    """The first send rested (its answer lost as a reset before anything else could be
    learnt); a second submit of the same order (a restarted process) meets Kalshi's 409:
    it is the same order, acknowledged, not a rejection."""
    exchange.rest.inject(ROUTE, Fault("lost"))
    exchange.rest.inject(LIST, Fault("refuse", 503))
    exchange.rest.inject(LIST, Fault("refuse", 503))
    exchange.rest.inject(LIST, Fault("refuse", 503))
    exchange.rest.visible_after_s = 0.0
    order = buy("dup-1", limit="0.30", qty=1, tif=TimeInForce.GTC)
    with contextlib.suppress(OrderUnknown):
        await venue.submit(order)
    assert [o["status"] for o in held(exchange, "dup-1")] == ["resting"]
    restarted = KalshiVenue(venue.settings)
    try:
        assert await restarted.submit(order) == []
        assert [o["status"] for o in held(exchange, "dup-1")] == ["resting"]
        (ack,) = queued(restarted)
        assert isinstance(ack, OrderUpdate) and ack.status is OrderStatus.OPEN
        assert ack.venue_order_id == held(exchange, "dup-1")[0]["order_id"]
    finally:
        await restarted.close()


# -- cancels --------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", [Fault("lost"), Fault("after", 502), Fault("truncated", 200)],
                         ids=["lost", "502-after-acting", "truncated"])
async def test_a_cancel_whose_answer_is_lost_is_confirmed_by_asking(exchange, venue,
                                                                    fault) -> None:
    await venue.submit(buy("cx-1", limit="0.30", qty=3, tif=TimeInForce.GTC))
    queued(venue)
    venue_id = venue.execution.venue_ids["cx-1"]
    exchange.rest.inject("DELETE /portfolio/orders", fault)
    await venue.cancel("cx-1")  # Kalshi did cancel it: asked, confirmed
    assert exchange.engine.orders[venue_id]["status"] == "canceled"
    (update,) = queued(venue)
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.CANCELLED


async def test_a_cancel_that_lost_the_race_with_a_fill_books_the_fill_once(exchange,
                                                                           venue) -> None:
    """The order filled at Kalshi while the cancel was on its way: the cancel is refused
    with a message naming the order, and the fill is booked once, the order not
    cancelled."""
    await venue.submit(buy("race-1", limit="0.30", qty=3, tif=TimeInForce.GTC))
    queued(venue)
    venue_id = venue.execution.venue_ids["race-1"]
    order = exchange.engine.orders[venue_id]
    exchange.engine.set_level("KXHIGHNY-24JAN01-T60", "no", 70, 3)  # someone sells to us
    exchange.engine._fill(order, 30, 3, 0)
    order["status"] = "executed"
    with pytest.raises(VenueError, match="race-1"):
        await venue.cancel("race-1")

    def filled(items: list[Fill | OrderUpdate]) -> bool:
        return sum(i.quantity for i in items if isinstance(i, Fill)) >= 3

    items = await collect(venue, filled)
    await asyncio.sleep(0.1)
    items += queued(venue)
    fills = [i for i in items if isinstance(i, Fill)]
    assert [(f.client_order_id, f.quantity) for f in fills] == [("race-1", 3)]
    assert not any(isinstance(i, OrderUpdate) and i.status is OrderStatus.CANCELLED
                   for i in items)


# -- fills on two paths, malformed polls -------------------------------------------------------
async def test_a_fill_seen_twice_on_the_socket_and_once_by_the_poll_is_booked_once(
        exchange, venue) -> None:
    await venue.submit(buy("ws-1", limit="0.42", qty=5, tif=TimeInForce.GTC))
    queued(venue)
    (raw,) = [f for f in exchange.engine.fills if f["client_order_id"] == "ws-1"]
    ws_msg = {**raw, "market_ticker": raw["ticker"]}
    venue.execution._on_ws_fill(ws_msg)
    venue.execution._on_ws_fill(ws_msg)  # repeated after a reconnect
    items = queued(venue) + await venue.execution._poll() + await venue.execution._poll()
    fills = [i for i in items if isinstance(i, Fill)]
    assert [(f.fill_id, f.quantity) for f in fills] == [(raw["trade_id"], 5)]


async def test_a_garbled_poll_or_a_malformed_fill_does_not_stop_the_feed(exchange, venue,
                                                                         caplog) -> None:
    """A poll answered with half a body, then a fill with no price: each is logged, the
    feed goes on, and the good fill is booked."""
    await venue.submit(buy("pf-1", limit="0.42", qty=5, tif=TimeInForce.GTC))
    queued(venue)
    exchange.engine.fills.insert(0, {"trade_id": "trd-bad", "order_id":
                                     venue.execution.venue_ids["pf-1"], "side": "yes",
                                     "action": "buy", "count": 1, "ts": 0,
                                     "ticker": "KXHIGHNY-24JAN01-T60"})
    exchange.rest.inject("GET /portfolio/fills", Fault("truncated", 200))

    def filled(items: list[Fill | OrderUpdate]) -> bool:
        return any(isinstance(i, Fill) for i in items)

    with caplog.at_level(logging.WARNING):
        items = await collect(venue, filled)
    fills = [i for i in items if isinstance(i, Fill)]
    assert [(f.client_order_id, f.quantity) for f in fills] == [("pf-1", 5)]
    assert "trd-bad" in caplog.text


# -- a process killed around the send ------------------------------------------------------
async def test_killed_between_the_ledger_commit_and_the_send(exchange, local_settings
                                                             ) -> None:
    """The order row was committed, the process died before sending: the restarted venue
    asks Kalshi, which has never seen it (CANCELLED, never sent); nothing is posted."""
    restarted = KalshiVenue(local_settings(ws_fills=False))
    try:
        update = await restarted.lookup(buy("kill-1"))
        assert update is not None and update.status is OrderStatus.CANCELLED
        assert posts(exchange) == 0
    finally:
        await restarted.close()


async def test_killed_mid_send_with_the_order_showing_late(exchange, local_settings) -> None:
    """The process died with the order on the wire; after a fast restart Kalshi's list
    does not show it yet.  The look-up cannot tell (None: the order stays pending), and
    ``executions()`` then finds it: OPEN with its id, never CANCELLED, never re-sent."""
    first = KalshiVenue(local_settings(ws_fills=False))
    exchange.rest.visible_after_s = LATE_S
    exchange.rest.inject(ROUTE, Fault("lost"))
    with contextlib.suppress(OrderUnknown):
        await first.submit(buy("kill-2", limit="0.30", qty=1, tif=TimeInForce.GTC))
    await first.close()
    restarted = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=5.0))
    try:
        order = attrs.evolve(buy("kill-2", limit="0.30", qty=1, tif=TimeInForce.GTC),
                             ts_ns=time.time_ns())
        assert await restarted.lookup(order) is None

        def acked(items: list[Fill | OrderUpdate]) -> bool:
            return any(isinstance(i, OrderUpdate) for i in items)

        (update,) = await collect(restarted, acked)
        assert isinstance(update, OrderUpdate) and update.status is OrderStatus.OPEN
        assert update.venue_order_id == held(exchange, "kill-2")[0]["order_id"]
        assert posts(exchange) == 1
    finally:
        await restarted.close()


async def test_a_429_then_kalshi_unreachable_is_looked_for_by_the_poll(exchange,
                                                                       venue) -> None:
    """Refused with a 429, and the look-up that must precede a re-send cannot be made:
    not sent again, ``OrderUnknown``, and ``executions()`` ends it (never placed) after
    ``order_give_up_s`` instead of leaving it pending for good."""
    exchange.rest.inject(ROUTE, Fault("refuse", 429, retry_after=0.01))
    for _ in range(12):
        exchange.rest.inject(LIST, Fault("refuse", 503))
    with pytest.raises(OrderUnknown):
        await venue.submit(buy("rl-3"))
    assert posts(exchange) == 1 and "rl-3" in venue.execution.awaiting
    exchange.rest.faults.clear()

    def ended(items: list[Fill | OrderUpdate]) -> bool:
        return any(isinstance(i, OrderUpdate) for i in items)

    (update,) = await collect(venue, ended)
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.CANCELLED
    assert posts(exchange) == 1


# -- a send placed after it was given up --------------------------------------------------
async def test_an_order_given_up_then_placed_late_is_cancelled(exchange, venue) -> None:
    """A 503 and no trace: the order ends CANCELLED, never placed; then the send held on
    the way reaches the engine and the order rests.  Before: it rested at Kalshi while
    the ledger said cancelled.  Now the next orders poll finds it and cancels it."""
    exchange.rest.inject(ROUTE, Fault("refuse", 503))
    order = buy("ghost-1", limit="0.30", tif=TimeInForce.GTC)
    with pytest.raises(OrderUnknown):
        await venue.submit(order)

    def ended(items: list[Fill | OrderUpdate]) -> bool:
        return any(isinstance(i, OrderUpdate) for i in items)

    (update,) = await collect(venue, ended)
    assert update.status is OrderStatus.CANCELLED and "never placed" in update.reason
    exchange.engine.create(venue.execution.body(order))  # the held send lands now
    (placed,) = held(exchange, "ghost-1")
    assert placed["status"] == "resting"

    def cancelled(items: list[Fill | OrderUpdate]) -> bool:
        return any(isinstance(i, OrderUpdate) and i.status is OrderStatus.CANCELLED
                   for i in items)

    await collect(venue, cancelled)
    assert [o["status"] for o in held(exchange, "ghost-1")] == ["canceled"]
    assert "ghost-1" not in venue.execution.late_watch


async def test_an_order_ended_before_a_restart_and_placed_after_it_is_cancelled(
        exchange, local_settings) -> None:
    """The same after a restart: the ledger hands the order back CANCELLED (its time the
    market's, 1 ns here, as in the fault campaign).  Every order that ended unfilled is
    watched for an hour from the restart; filled and working ones are not."""
    def known(coid: str, status: OrderStatus, filled: int = 0) -> KnownOrder:
        order = attrs.evolve(buy(coid, limit="0.30", tif=TimeInForce.GTC), status=status,
                             ts_ns=1)
        return KnownOrder(order, None, D(filled))

    restarted = KalshiVenue(local_settings(ws_fills=False))
    try:
        restarted.resume(VenueResume((
            known("ghost-2", OrderStatus.CANCELLED), known("refused-2", OrderStatus.REJECTED),
            known("part-2", OrderStatus.CANCELLED, 1), known("open-2", OrderStatus.OPEN))))
        watch = restarted.execution.late_watch
        assert set(watch) == {"ghost-2", "refused-2"}
        assert min(watch.values()) > time.time() + LATE_PLACEMENT_WATCH_S - 60
        exchange.engine.create(restarted.execution.body(buy("ghost-2", limit="0.30",
                                                            tif=TimeInForce.GTC)))

        def cancelled(items: list[Fill | OrderUpdate]) -> bool:
            return any(isinstance(i, OrderUpdate) and i.status is OrderStatus.CANCELLED
                       for i in items)

        await collect(restarted, cancelled)
        assert [o["status"] for o in held(exchange, "ghost-2")] == ["canceled"]
    finally:
        await restarted.close()


@pytest.mark.parametrize("bad_id", [["ord-1"], 7, "", None], ids=["list", "int", "empty", "null"])
async def test_a_listed_order_without_a_readable_id_is_unknown_not_absent(
        exchange, venue, monkeypatch, bad_id) -> None:
    """An order Kalshi lists under its client id but with an ``order_id`` that is no id:
    a list raised TypeError out of ``learn`` (unhashable) and an empty one was skipped, so
    the look-up answered "none" (for a young order: never placed). It exists: unknown."""
    order = buy("bad-id-1")

    async def pages(*_args: Any, **_kwargs: Any) -> list[Any]:
        return [{"client_order_id": wire_client_id("bad-id-1"), "order_id": bad_id}]

    monkeypatch.setattr(venue.execution.rest, "pages", pages)
    with pytest.raises(OrderUnknown, match="not an id"):
        await venue.execution.lookup(order)
    assert "bad-id-1" not in venue.execution.venue_ids


def test_a_fill_frame_nested_past_the_limit_is_dropped_not_raised(caplog) -> None:
    """The fill websocket parsed frames with plain ``json.loads``: a frame nested 100,000
    deep raised RecursionError out of the session (ValueError only was caught), or crashed
    the process where an import had raised the recursion limit."""
    import sys

    from argus_venue_kalshi.fills import FillStream

    heard: list[Any] = []
    stream = FillStream(None, None, heard.append)  # type: ignore[arg-type]  # _frame only
    depth = max(100_000, 2 * sys.getrecursionlimit())
    with caplog.at_level(logging.WARNING, logger="argus_venue_kalshi.fills"):
        stream._frame("[" * depth + "]" * depth)
    assert heard == [] and any("malformed" in r.getMessage() for r in caplog.records)
