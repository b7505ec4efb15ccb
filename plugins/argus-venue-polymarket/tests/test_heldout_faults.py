"""Faults the exactly-once tests do not script: look-ups refused (401), rate limited or
answered with a body cut short; a 200 post answer of the wrong shape; a 503 after the
venue acted with its order listed late; cancels whose answer is lost or garbled, or that
race a fill; a trades poll that cannot be read; a partial fill seen on several polls.

Each ends with the order acted on at most once at the exchange (``LocalClob.accepted``),
every fill reported once (by fill id) and a clear outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import Fault, LocalClob, make_book

from argus_core.errors import OrderUnknown, VenueError
from argus_core.models import (
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from argus_core.secrets import Secret

TOKEN_A = "1234"
API_KEY, API_PASSPHRASE = "key-1", "pass"
API_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
TIMEOUT_S = 0.4


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    """A local CLOB: A bids 150 @ 0.60, asks 150 @ 0.64 (negRisk, tick 0.01)."""
    books = [make_book(TOKEN_A, "0xcond-a", [("0.60", "150")], [("0.64", "150")])]
    local = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                      api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer([], books, clob=local).start()
    try:
        yield srv, local
    finally:
        srv.stop()


def _exec(url: str, **overrides: Any) -> PolymarketExecution:
    timings: dict[str, Any] = {"request_timeout_s": TIMEOUT_S, "order_settle_s": 1.0,
                               "order_lookup_interval_s": 0.05, "heartbeat_interval_s": 0.1}
    settings = PolymarketSettings(
        clob_url=url, private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
        api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
        user_channel=False, **(timings | overrides))  # the poll's path, no host looked up
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    inst = Instrument("polymarket", TOKEN_A, kind="binary", tick_size="0.01",
                      lot_size="0.01", min_size="5", meta=meta)
    return PolymarketExecution(settings, {f"polymarket:{TOKEN_A}": inst}.get)


def _order(cid: str, qty: str, px: str, tif: TimeInForce) -> Order:
    return Order(cid, "polymarket", f"polymarket:{TOKEN_A}", Side.BUY, qty, px,
                 OrderType.LIMIT, tif)


def _fault(local: LocalClob, route: str, *answers: tuple[str, Any]) -> None:
    local.read_faults.setdefault(route, deque()).extend(answers)


async def _reported(ex: PolymarketExecution, returned: list[Fill]
                    ) -> tuple[dict[str, Decimal], list[OrderUpdate]]:
    """Everything reported (the submit return, the queue, two trades polls, the ended
    poll), de-duplicated by fill id as the core does."""
    items: list[Fill | OrderUpdate] = [*returned, *ex._reports]
    ex._reports.clear()
    items += await ex.poll_trades(0)
    items += await ex.poll_trades(0)
    items += await ex.poll_ended()
    items += list(ex._reports)
    ex._reports.clear()
    seen: set[str] = set()
    filled: dict[str, Decimal] = {}
    for item in items:
        if isinstance(item, Fill) and item.fill_id not in seen:
            seen.add(item.fill_id)
            filled[item.client_order_id] = filled.get(item.client_order_id,
                                                      Decimal(0)) + item.quantity
    return filled, [i for i in items if isinstance(i, OrderUpdate)]


# -- look-ups that fail in ways that are not "not found" ----------------------------------------
@pytest.mark.parametrize("refusal", [("status", 401), ("status", 403), ("garbled", None),
                                     ("json", {"unexpected": "shape"})],
                         ids=["401", "403", "garbled-200", "wrong-shape-200"])
async def test_a_lookup_that_cannot_answer_is_never_taken_for_not_found(
        clob: tuple[SnapshotServer, LocalClob], refusal: tuple[str, Any]) -> None:
    """A FOK the venue killed (nothing to match), its answer lost as a 502, and every
    look-up refused (auth) or unreadable: that is "could not ask", never "not there".
    Before: taken as not found, so the same order was posted again once liquidity came
    back, and filled — acted on twice.  Now ``OrderUnknown``, one post; once the venue
    answers, ``executions()``'s look-up finds it killed."""
    srv, local = clob
    local.drain(TOKEN_A, "asks")
    local.faults.append(Fault(status=502))
    for route in ("GET /data/order", "GET /data/orders", "GET /data/trades"):
        _fault(local, route, *[refusal] * 200)
    ex = _exec(srv.url, order_settle_s=0.3)
    fok = _order("fok", "100", "0.64", TimeInForce.FOK)
    local.asks[TOKEN_A] = {}
    with pytest.raises(OrderUnknown, match="could not be asked"):
        await ex.submit(fok)
    local.asks[TOKEN_A] = {Decimal("0.64"): Decimal(150)}  # a re-send would now fill
    assert len(local.attempts) == 1 and set(local.accepted.values()) == {1}
    local.read_faults.clear()
    await ex.poll_unknown()
    filled, updates = await _reported(ex, [])
    assert filled == {}
    assert [u.status for u in updates] == [OrderStatus.OPEN, OrderStatus.CANCELLED]
    assert "killed" in updates[-1].reason
    assert len(local.attempts) == 1


async def test_a_garbled_lookup_is_asked_again_and_finds_the_order(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The answer to a GTC post is lost; the first look-ups (GET order, then open orders)
    answer a 200 cut short.  Before: the open-orders page raised a ``TypeError`` out of
    ``submit`` (the core would have REJECTED a resting order).  Now asked again: found."""
    srv, local = clob
    local.faults.append(Fault(reset=True))
    _fault(local, "GET /data/order", ("garbled", None))
    _fault(local, "GET /data/orders", ("garbled", None))
    ex = _exec(srv.url)
    assert await ex.submit(_order("gtc", "100", "0.50", TimeInForce.GTC)) == []
    assert len(local.attempts) == 1 and set(local.accepted.values()) == {1}
    vid = ex.venue_ids["gtc"]
    assert local.orders[vid]["status"] == "LIVE" and ex.watched["gtc"] == vid
    _, updates = await _reported(ex, [])
    assert [(u.status, u.venue_order_id) for u in updates] == [(OrderStatus.OPEN, vid)]


async def test_a_rate_limited_lookup_is_waited_out(clob: tuple[SnapshotServer, LocalClob]
                                                   ) -> None:
    srv, local = clob
    local.faults.append(Fault(status=502))
    _fault(local, "GET /data/order", ("status", 429), ("status", 429))
    ex = _exec(srv.url)
    (fill,) = await ex.submit(_order("fok", "100", "0.64", TimeInForce.FOK))
    assert fill.quantity == 100 and len(local.attempts) == 1


# -- answers of the wrong shape ---------------------------------------------------------------
@pytest.mark.parametrize("patch", [(("orderID", None),), (("success", None),
                                                          ("orderID", None))],
                         ids=["success-without-order-id", "no-success-no-id"])
async def test_a_success_without_an_order_id_is_looked_up(
        clob: tuple[SnapshotServer, LocalClob], patch: tuple[tuple[str, Any], ...]) -> None:
    """A GTC rests at the venue; the 200 says ``success`` but names no order.  Before:
    reported CANCELLED ("matched 0 of 100; the venue killed the rest") while it rested.
    Now ambiguous: looked up, found LIVE, watched."""
    srv, local = clob
    local.faults.append(Fault(patch=patch))
    ex = _exec(srv.url)
    await ex.submit(_order("gtc", "100", "0.50", TimeInForce.GTC))
    filled, updates = await _reported(ex, [])
    vid = ex.venue_ids["gtc"]
    assert filled == {} and [u.status for u in updates] == [OrderStatus.OPEN]
    assert local.orders[vid]["status"] == "LIVE" and "gtc" in ex.watched
    assert len(local.attempts) == 1


async def test_a_matched_answer_with_unreadable_amounts_is_looked_up(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The FOK matched; the answer's amounts are not numbers.  Before: an
    ``InvalidOperation`` out of ``submit`` (REJECTED while filled).  Now the look-up's
    trades give the fill, once."""
    srv, local = clob
    local.faults.append(Fault(patch=(("makingAmount", "n/a"), ("takingAmount", "??"))))
    ex = _exec(srv.url)
    returned = await ex.submit(_order("fok", "100", "0.64", TimeInForce.FOK))
    filled, _ = await _reported(ex, returned)
    assert filled == {"fok": Decimal(100)} and len(local.attempts) == 1


async def test_a_503_after_acting_with_the_order_listed_late_is_not_sent_again(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The venue acts and a gateway answers 503; the order shows only 0.5 s later.  A
    503 is no proof nothing happened: the venue is asked until ``order_settle_s``, finds
    it, and does not post it again."""
    srv, local = clob
    local.visible_after_s = 0.5
    local.faults.append(Fault(status=503))
    ex = _exec(srv.url, order_settle_s=2.0)
    returned = await ex.submit(_order("gtc", "100", "0.50", TimeInForce.GTC))
    assert returned == [] and len(local.attempts) == 1
    assert set(local.accepted.values()) == {1}
    assert local.orders[ex.venue_ids["gtc"]]["status"] == "LIVE"


# -- cancels --------------------------------------------------------------------------------
async def _resting(ex: PolymarketExecution) -> str:
    await ex.submit(_order("gtc", "100", "0.50", TimeInForce.GTC))
    ex._reports.clear()
    return ex.venue_ids["gtc"]


@pytest.mark.parametrize("fault", [("act_reset", None), ("act_garbled", None),
                                   ("act_status", 502)],
                         ids=["reset-after-acting", "garbled-after-acting", "502-after-acting"])
async def test_a_cancel_whose_answer_is_lost_is_confirmed_by_asking(
        clob: tuple[SnapshotServer, LocalClob], fault: tuple[str, Any]) -> None:
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", fault)
    await ex.cancel("gtc")
    assert local.orders[vid]["status"] == "CANCELED"
    _, updates = await _reported(ex, [])
    assert [u.status for u in updates] == [OrderStatus.CANCELLED]
    await ex.close()


@pytest.mark.parametrize("fault", [("garbled", None), ("json", "ok"), ("status", 502)],
                         ids=["garbled", "not-an-object", "502"])
async def test_a_cancel_the_venue_did_not_act_on_is_not_confirmed(
        clob: tuple[SnapshotServer, LocalClob], fault: tuple[str, Any]) -> None:
    """Every send of the cancel is answered unreadably (or 502) and the venue did not
    cancel: the cancel fails after ``order_max_attempts`` sends (before: a body that is
    not JSON counted as confirmed, and the core would have marked a LIVE order
    CANCELLED).  One such answer is sent again: tests/test_cancel_resend.py."""
    srv, local = clob
    ex = _exec(srv.url, order_max_attempts=3)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", *[fault] * 3)
    with pytest.raises(VenueError, match=r"gtc.*after 3 sends"):
        await ex.cancel("gtc")
    assert local.orders[vid]["status"] == "LIVE" and local.count("DELETE", "/order") == 3
    assert "gtc" not in ex._ending and "gtc" in ex.watched
    await ex.close()


async def test_a_cancel_that_lost_the_race_with_a_fill_books_the_fill_once(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    local.fill_resting(vid, "100")
    with pytest.raises(VenueError, match="gtc"):
        await ex.cancel("gtc")
    filled, updates = await _reported(ex, [])
    assert filled == {"gtc": Decimal(100)}
    assert not any(u.status is OrderStatus.CANCELLED for u in updates)
    await ex.close()


# -- orders given up, or whose end cannot be read ----------------------------------------------
async def _given_up(ex: PolymarketExecution, local: LocalClob, cid: str) -> str:
    """Post ``cid`` (GTC) held on the way until after its give-up; the venue order id of
    the CANCELLED ("never placed") update that follows."""
    local.faults.append(Fault(act_after_s=4.0))
    with pytest.raises(OrderUnknown):
        await ex.submit(_order(cid, "100", "0.50", TimeInForce.GTC))
    for _ in range(200):
        await ex.poll_unknown()
        if ex._reports:
            break
        await asyncio.sleep(0.02)
    (update,) = list(ex._reports)
    ex._reports.clear()
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.CANCELLED
    assert "never placed" in update.reason and update.venue_order_id is not None
    assert update.venue_order_id not in local.orders  # not yet: the post is still held
    return update.venue_order_id


async def _placed(local: LocalClob, vid: str) -> None:
    for _ in range(300):
        if local.orders.get(vid, {}).get("status") == "LIVE":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{vid} never placed")


async def test_an_order_given_up_as_never_placed_then_placed_late_is_cancelled(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The post is held on the way past ``order_give_up_s``: every look-up finds nothing
    and the order is reported CANCELLED, never placed; then the venue places it.  Before:
    it rested at the exchange while the ledger said cancelled (found by the held-out
    rate-limit campaign, an act-late POST).  Now the next open-orders read finds it and
    cancels it at the venue; it was sent once."""
    srv, local = clob
    ex = _exec(srv.url, order_settle_s=0.6, order_give_up_s=0.2)
    vid = await _given_up(ex, local, "late")
    assert ex.ghosts[vid][0] == "late"
    await _placed(local, vid)
    ex._reconcile_wanted = False  # the user channel's PLACEMENT asks for the check at once
    ex._on_order_event({"event_type": "order", "id": vid, "type": "PLACEMENT"})
    assert ex._reconcile_wanted
    assert await ex.poll_ended() == []
    assert local.orders[vid]["status"] == "CANCELED" and vid not in ex.ghosts
    assert set(local.accepted.values()) == {1} and local.count("DELETE", "/order") == 1
    await ex.close()


async def test_an_order_ended_before_a_restart_and_placed_after_it_is_cancelled(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The same late placement after a restart: the new process knows the order only as
    CANCELLED in the ledger (its time the market's, 1 ns here, as in the fault campaign).
    Every order that ended unfilled is watched for ``LATE_PLACEMENT_WATCH_S`` from the
    restart and cancelled at the venue if found open; filled and working ones are not."""
    import time

    from argus_venue_polymarket.tracking import LATE_PLACEMENT_WATCH_S

    from argus_core.models import KnownOrder, VenueResume

    srv, local = clob
    first = _exec(srv.url, order_settle_s=0.6, order_give_up_s=0.2)
    vid = await _given_up(first, local, "late")
    await first.close()
    ex = _exec(srv.url)

    def known(cid: str, status: OrderStatus, filled: str = "0") -> KnownOrder:
        order = attrs.evolve(_order(cid, "100", "0.50", TimeInForce.GTC), status=status,
                             ts_ns=1)
        return KnownOrder(order, vid if cid == "late" else f"0x{cid}", filled)

    ex.resume(VenueResume((known("late", OrderStatus.CANCELLED),
                           known("refused", OrderStatus.REJECTED),
                           known("part", OrderStatus.CANCELLED, "5"),
                           known("open", OrderStatus.OPEN))))
    assert {c for c, _ in ex.ghosts.values()} == {"late", "refused"}
    assert min(u for _, u in ex.ghosts.values()) > time.time() + LATE_PLACEMENT_WATCH_S - 60
    await _placed(local, vid)
    await ex.poll_ended()
    assert local.orders[vid]["status"] == "CANCELED" and vid not in ex.ghosts
    assert set(local.accepted.values()) == {1}
    await ex.close()


async def test_a_given_up_order_never_placed_is_watched_for_a_while_only(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """An order given up that the venue never places costs an open-orders read per poll
    until its watch ends, and no cancel."""
    srv, local = clob
    ex = _exec(srv.url, order_settle_s=0.6, order_give_up_s=0.2)
    local.faults.append(Fault(act=False, act_after_s=1.0))
    with pytest.raises(OrderUnknown):
        await ex.submit(_order("lost", "100", "0.50", TimeInForce.GTC))
    while not ex._reports:
        await ex.poll_unknown()
        await asyncio.sleep(0.02)
    reads = local.count("GET", "/data/orders")
    assert await ex.poll_ended() == [] and local.count("GET", "/data/orders") == reads + 1
    (vid,) = ex.ghosts
    ex.ghosts[vid] = ("lost", 0.0)  # its watch has ended
    ex._ghosts_pruned_at = 0.0  # and a minute has passed since the last pruning
    assert await ex.poll_ended() == [] and not ex.ghosts
    assert await ex.poll_ended() == [] and local.count("GET", "/data/orders") == reads + 2
    assert local.count("DELETE", "/order") == 0
    await ex.close()


async def test_an_order_missing_from_open_orders_and_unreadable_is_never_said_cancelled(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The venue lists a just-placed order late: open orders omit it and its look-up
    answers 404.  Before: five such look-ups reported it CANCELLED ("its final state could
    not be read") while it rested at the exchange, and a later fill landed on a cancelled
    order.  Now it stays watched (OPEN), asked about less often, and its real end is
    reported once the venue shows it."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    local.visible_after_s = 3600.0  # from now on the read endpoints do not show it
    updates: list[OrderUpdate] = []
    for _ in range(12):
        updates += await ex.poll_ended()
        ex._lookup_after.clear()  # ask every time: the back-off is checked below
    assert updates == [] and "gtc" in ex.watched and local.orders[vid]["status"] == "LIVE"
    assert ex._lookup_failures[vid] == 12
    await ex.poll_ended()  # the sixth failure onwards waits before asking again
    asked = local.count("GET", f"/data/order/{vid}")
    assert await ex.poll_ended() == [] and local.count("GET", f"/data/order/{vid}") == asked
    local.visible_after_s = 0.0
    assert await ex.poll_ended() == [] and vid not in ex._lookup_failures  # listed: reset
    local.orders[vid]["status"] = "CANCELED"  # say, the venue's heartbeat expiry
    (update,) = await ex.poll_ended()
    assert update.status is OrderStatus.CANCELLED and "cancelled at the venue" in update.reason
    assert "gtc" not in ex.watched
    await ex.close()


async def test_a_confirmed_cancel_whose_end_stays_unreadable_is_reported(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The venue confirmed our cancel but every look-up of the order fails (502): the
    venue's word is enough, so CANCELLED goes out after five look-ups, saying why."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    await ex.cancel("gtc")
    assert local.orders[vid]["status"] == "CANCELED"
    _fault(local, "GET /data/order", *[("status", 502)] * 5)
    updates: list[OrderUpdate] = []
    for _ in range(5):
        updates += await ex.poll_ended()
    (update,) = updates
    assert update.status is OrderStatus.CANCELLED
    assert update.reason.startswith("cancelled at our request; its final state could not")
    await ex.close()


# -- the trades feed ----------------------------------------------------------------------------
async def test_a_partial_fill_seen_by_the_answer_and_several_polls_is_booked_once(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """A GTC takes 150 at once (the answer reports it), rests 50, then 30 of it trade as
    maker; the trades poll sees both trades on every poll: 150 + 30, once each."""
    srv, local = clob
    ex = _exec(srv.url)
    returned = await ex.submit(_order("gtc", "200", "0.64", TimeInForce.GTC))
    local.fill_resting(ex.venue_ids["gtc"], "30")
    filled, _ = await _reported(ex, returned)
    more = await ex.poll_trades(0)
    assert filled == {"gtc": Decimal(180)} and more == []
    await ex.close()


async def test_an_unreadable_trades_poll_does_not_stop_executions(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "GET /data/trades", ("garbled", None), ("json", {"data": "x"}))
    local.fill_resting(vid, "40")
    got: list[Fill] = []

    async def consume() -> None:
        async for item in ex.executions(0.05, 60):
            if isinstance(item, Fill):
                got.append(item)
                return

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(5):
            await asyncio.shield(task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [(f.client_order_id, f.quantity) for f in got] == [("gtc", Decimal(40))]
    await ex.close()
