"""Exactly-once order entry against the local CLOB with scripted faults (``LocalClob.faults``).

For GTC, FOK and FAK orders and FOK baskets, each post meets one fault: the venue acts and
the answer is lost (connection reset mid-body), comes after the client's timeout, is
malformed, or is a 502; the venue acts only after the client gave up; a 502 / 503 / 429 or a
reset without acting.  Every case must end with each order acted on exactly once at the
exchange (``LocalClob.accepted``), its fills booked once (the post answer, the look-up and the
trades feed agree on one fill id per match), and the order's right outcome.  A venue that
cannot be asked, or a request that may still be acted on, gives ``OrderUnknown`` and no
re-send; ``executions()`` then finds the order or reports it never placed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from argus_venue_polymarket import sending
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import Fault, LocalClob, make_book

from argus_core.errors import BasketIncomplete, OrderUnknown, VenueError
from argus_core.models import (
    Fill,
    Instrument,
    KnownOrder,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueResume,
)
from argus_core.secrets import Secret

TOKEN_A, TOKEN_B = "1234", "5678"
API_KEY, API_PASSPHRASE = "key-1", "pass"
API_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
TIMEOUT_S = 0.4  # the client's HTTP timeout in these tests

#: Faults where the venue acted: the order must be found, never sent again.
ACTED = {
    "answer lost (reset mid-body)": Fault(reset=True),
    "answer after the client's timeout": Fault(delay_s=TIMEOUT_S + 0.5),
    "acted after the client gave up": Fault(act_after_s=TIMEOUT_S + 0.3),
    "malformed answer": Fault(malformed=True),
    "502 after acting": Fault(status=502),
}
#: Faults where the venue never saw the order: sent again (the same signed order), once.
NOT_ACTED = {
    "502 without acting": Fault(act=False, status=502),
    "503 without acting": Fault(act=False, status=503),
    "429 rate limited": Fault(act=False, status=429),
    "reset without acting": Fault(act=False, reset=True),
}


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    """A local CLOB: A asks 150 @ 0.64, B asks 150 @ 0.31 (negRisk, tick 0.01)."""
    books = [make_book(TOKEN_A, "0xcond-a", [("0.60", "150")], [("0.64", "150")]),
             make_book(TOKEN_B, "0xcond-b", [("0.28", "150")], [("0.31", "150")])]
    local = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                      api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer([], books, clob=local).start()
    try:
        yield srv, local
    finally:
        srv.stop()


def _exec(url: str, **overrides: Any) -> PolymarketExecution:
    timings: dict[str, Any] = {"request_timeout_s": TIMEOUT_S, "order_settle_s": 2.0,
                               "order_lookup_interval_s": 0.05, "heartbeat_interval_s": 0.1}
    settings = PolymarketSettings(
        clob_url=url, private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
        api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
        user_channel=False, **(timings | overrides))  # the poll's path, no host looked up
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    instruments = {f"polymarket:{t}": Instrument("polymarket", t, kind="binary",
                                                 tick_size="0.01", lot_size="0.01",
                                                 min_size="5", meta=meta)
                   for t in (TOKEN_A, TOKEN_B)}
    return PolymarketExecution(settings, instruments.get)


def _order(cid: str, token: str, qty: str, px: str, tif: TimeInForce,
           basket: str | None = None) -> Order:
    return Order(cid, "polymarket", f"polymarket:{token}", Side.BUY, qty, px, OrderType.LIMIT,
                 tif, basket_id=basket)


#: kind -> (orders, expected filled quantity per client order id)
CASES: dict[str, tuple[list[Order], dict[str, Decimal]]] = {
    "GTC": ([_order("gtc", TOKEN_A, "100", "0.50", TimeInForce.GTC)], {}),
    "FOK": ([_order("fok", TOKEN_A, "100", "0.64", TimeInForce.FOK)], {"fok": Decimal(100)}),
    "FAK": ([_order("fak", TOKEN_A, "200", "0.64", TimeInForce.IOC)], {"fak": Decimal(150)}),
    "basket": ([_order("leg-a", TOKEN_A, "100", "0.64", TimeInForce.FOK, "B1"),
                _order("leg-b", TOKEN_B, "100", "0.31", TimeInForce.FOK, "B1")],
               {"leg-a": Decimal(100), "leg-b": Decimal(100)}),
}


async def _send(ex: PolymarketExecution, orders: list[Order]) -> list[Fill]:
    if len(orders) > 1:
        return await ex.submit_basket(orders)
    return await ex.submit(orders[0])


async def _booked(ex: PolymarketExecution, returned: list[Fill]
                  ) -> tuple[dict[str, Decimal], list[OrderUpdate]]:
    """Everything the venue reported — the submit return, the ``executions()`` queue, two
    more trades polls and the ended-order poll — de-duplicated by fill id as the core
    does: filled quantity per client order id, and the order updates in order."""
    items: list[Fill | OrderUpdate] = [*returned, *ex._reports]
    ex._reports.clear()
    items += await ex.poll_trades(0)
    items += await ex.poll_trades(0)
    items += await ex.poll_ended()
    items += list(ex._reports)
    seen: set[str] = set()
    filled: dict[str, Decimal] = {}
    for item in items:
        if isinstance(item, Fill) and item.fill_id not in seen:
            seen.add(item.fill_id)
            filled[item.client_order_id] = filled.get(item.client_order_id, Decimal(0)) + \
                item.quantity
    return filled, [i for i in items if isinstance(i, OrderUpdate)]


def _check_outcome(kind: str, ex: PolymarketExecution, local: LocalClob,
                   filled: dict[str, Decimal], updates: list[OrderUpdate]) -> None:
    orders, expected = CASES[kind]
    assert filled == expected  # each match booked once, under its own order
    assert len(local.accepted) == len(orders) and set(local.accepted.values()) == {1}
    for o in orders:  # the venue order id is the signed order's hash
        vid = ex.venue_ids[o.client_order_id]
        assert local.orders[vid]["original_size"] == str(o.quantity)
        assert any(u.status is OrderStatus.OPEN and u.venue_order_id == vid
                   for u in updates if u.client_order_id == o.client_order_id)
    if kind == "GTC":  # rests: watched and kept alive by the heartbeat
        assert local.orders[ex.venue_ids["gtc"]]["status"] == "LIVE"
        assert "gtc" in ex.watched and ex.heartbeat is not None and \
            "gtc" in ex.heartbeat.resting
    if kind == "FAK":  # 150 matched, the rest killed: CANCELLED after the fill
        (end,) = [u for u in updates if u.status is OrderStatus.CANCELLED]
        assert end.client_order_id == "fak" and "fak" not in ex.watched


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("fault", list(ACTED))
async def test_the_venue_acted_and_the_answer_was_lost_late_or_garbled(
        clob: tuple[SnapshotServer, LocalClob], kind: str, fault: str) -> None:
    srv, local = clob
    local.faults.append(ACTED[fault])
    ex = _exec(srv.url)
    returned = await _send(ex, CASES[kind][0])
    filled, updates = await _booked(ex, returned)
    assert len(local.attempts) == 1  # found at the venue: never sent again
    _check_outcome(kind, ex, local, filled, updates)
    await ex.close()


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("fault", list(NOT_ACTED))
async def test_the_venue_never_saw_it_so_the_same_signed_order_goes_again(
        clob: tuple[SnapshotServer, LocalClob], kind: str, fault: str) -> None:
    srv, local = clob
    local.faults.append(NOT_ACTED[fault])
    ex = _exec(srv.url)
    returned = await _send(ex, CASES[kind][0])
    filled, updates = await _booked(ex, returned)
    # asked first (GET /data/order/<hash> found nothing), then the identical payload again
    assert [p for p, _ in local.attempts] == [p for p, _ in local.attempts[:1]] * 2
    assert local.attempts[0][1] == local.attempts[1][1]  # same salt, same signature
    assert local.count("GET", "/data/order/" + ex.venue_ids[CASES[kind][0][0].client_order_id]
                       ) >= 1
    _check_outcome(kind, ex, local, filled, updates)
    await ex.close()


@pytest.mark.parametrize("kind", list(CASES))
async def test_a_venue_that_cannot_be_asked_gives_order_unknown_and_no_resend(
        clob: tuple[SnapshotServer, LocalClob], kind: str) -> None:
    """The venue acts, answers 502 and then cannot be asked (every look-up 503):
    ``OrderUnknown``, nothing re-sent; once it answers again, ``executions()`` (its
    unknown-order poll) finds the order and reports it like an answer."""
    srv, local = clob
    local.faults.append(Fault(status=502, down_after=True))
    ex = _exec(srv.url, order_settle_s=0.5)
    orders = CASES[kind][0]
    with pytest.raises(OrderUnknown) as info:
        await _send(ex, orders)
    assert sorted(info.value.client_order_ids) == sorted(o.client_order_id for o in orders)
    assert len(local.attempts) == 1
    assert set(ex.unknown) == {o.client_order_id for o in orders}
    local.down = False
    await ex.poll_unknown()
    assert ex.unknown == {}
    filled, updates = await _booked(ex, [])
    _check_outcome(kind, ex, local, filled, updates)
    await ex.close()


async def test_a_request_that_may_still_be_acted_on_is_never_resent(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The client timed out and the venue shows no trace within ``order_settle_s``: it may
    still act, so ``OrderUnknown`` (no second send); after ``order_give_up_s`` with no
    trace, ``executions()`` reports it CANCELLED, never placed."""
    srv, local = clob
    local.faults.append(Fault(act=False, delay_s=TIMEOUT_S + 0.3))
    ex = _exec(srv.url, order_settle_s=0.3, order_give_up_s=0.2)
    with pytest.raises(OrderUnknown, match="may still be acted on"):
        await ex.submit(_order("fok", TOKEN_A, "100", "0.64", TimeInForce.FOK))
    assert len(local.attempts) == 1 and not local.accepted
    await asyncio.sleep(0.3)
    await ex.poll_unknown()
    (update,) = ex._reports
    assert isinstance(update, OrderUpdate) and update.status is OrderStatus.CANCELLED
    assert update.client_order_id == "fok" and "never placed" in update.reason
    assert update.venue_order_id and update.venue_order_id.startswith("0x")  # its hash
    await ex.close()


async def test_rate_limited_every_time_ends_unplaced_after_the_attempt_limit(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """Each 429 is provably not taken (and the look-ups say so): at most
    ``order_max_attempts`` sends, then ``VenueError`` (the core rejects it)."""
    srv, local = clob
    local.faults.extend([Fault(act=False, status=429)] * 3)
    ex = _exec(srv.url, order_max_attempts=3)
    with pytest.raises(VenueError, match="not placed after 3 sends") as info:
        await ex.submit(_order("fok", TOKEN_A, "100", "0.64", TimeInForce.FOK))
    assert not isinstance(info.value, OrderUnknown)
    assert len(local.attempts) == 3 and not local.accepted
    assert ex.ghosts[ex.venue_ids["fok"]][0] == "fok"  # watched in case one lands late
    await ex.close()


async def test_a_lost_basket_answer_with_a_killed_leg_is_an_incomplete_basket(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The batch is acted on (leg A fills, leg B is killed) and the answer lost: the
    look-ups find both; ``BasketIncomplete`` carries A's fills, B ends CANCELLED as killed,
    and nothing is sent again or unwound by the venue."""
    srv, local = clob
    local.drain(TOKEN_B, "asks")
    local.faults.append(Fault(reset=True))
    ex = _exec(srv.url)
    legs = CASES["basket"][0]
    with pytest.raises(BasketIncomplete) as info:
        await ex.submit_basket(legs)
    assert [(f.client_order_id, f.quantity) for f in info.value.fills] == [
        ("leg-a", Decimal(100))]
    filled, updates = await _booked(ex, list(info.value.fills))
    assert filled == {"leg-a": Decimal(100)}
    (killed,) = [u for u in updates if u.status is OrderStatus.CANCELLED]
    assert killed.client_order_id == "leg-b" and "FOK order killed" in killed.reason
    assert len(local.attempts) == 1 and set(local.accepted.values()) == {1}
    await ex.close()


def _status(code: int, **headers: str) -> Exception:
    from argus_venue_polymarket.clob import ClobStatusError

    return ClobStatusError(httpx.Response(code, headers=headers, json={"error": f"e{code}"}))


def _transport(cls: type[httpx.RequestError]) -> Exception:
    from argus_venue_polymarket.clob import ClobTransportError

    return ClobTransportError(cls("test", request=httpx.Request("POST", "http://x/order")))


@pytest.mark.parametrize("exc, ended, refused, answered", [
    (_transport(httpx.ConnectError), True, True, False),  # never sent
    (_transport(httpx.ConnectTimeout), True, True, False),
    (_transport(httpx.ReadTimeout), False, False, False),  # the venue may still act
    (_transport(httpx.RemoteProtocolError), True, False, False),  # reset mid-exchange
    (_transport(httpx.ReadError), True, False, False),
    (_status(502), True, False, False),
    (_status(503), True, False, False),  # may follow acting: looked for, not one look
    (_status(504), False, False, False),
    (_status(429), True, True, False),
    (_status(400), True, False, True),  # a refusal is an answer
])
def test_what_a_failed_post_means(exc: Exception, ended: bool, refused: bool,
                                  answered: bool) -> None:
    from argus_venue_polymarket.clob import post_outcome

    outcome = post_outcome(exc)
    assert (outcome.ended, outcome.refused, outcome.answer is not None) == (
        ended, refused, answered)
    assert answered or outcome.problem


def test_a_429_says_when_to_come_back() -> None:
    from argus_venue_polymarket.clob import post_outcome

    assert post_outcome(_status(429, **{"Retry-After": "0.3"})).retry_after_s == 0.3
    refusal = post_outcome(_status(400)).answer
    assert refusal == {"success": False, "errorMsg": "e400", "orderID": "", "status": "http 400"}


@pytest.mark.parametrize("killed", [False, True])
async def test_a_delayed_basket_leg_is_waited_for_before_the_basket_is_judged(
        clob: tuple[SnapshotServer, LocalClob], killed: bool) -> None:
    """Leg B meets the market's matching delay (answered ``"delayed"``, matched 0.4 s
    later): the basket waits for it — complete when it fills, ``BasketIncomplete`` with
    only A's fills when the venue kills it — instead of judging B unfilled at once."""
    srv, local = clob
    if killed:
        local.drain(TOKEN_B, "asks")
    local.faults.append(Fault(delayed=(TOKEN_B,), delay_match_s=0.4))
    ex = _exec(srv.url)
    legs = CASES["basket"][0]
    if killed:
        with pytest.raises(BasketIncomplete) as info:
            await ex.submit_basket(legs)
        returned = list(info.value.fills)
        assert [f.client_order_id for f in returned] == ["leg-a"]
    else:
        returned = await ex.submit_basket(legs)
        assert sorted(f.client_order_id for f in returned) == ["leg-a", "leg-b"]
    filled, updates = await _booked(ex, returned)
    expected = {"leg-a": Decimal(100)} | ({} if killed else {"leg-b": Decimal(100)})
    assert filled == expected
    ended = [u for u in updates if u.status is OrderStatus.CANCELLED]
    assert [u.client_order_id for u in ended] == (["leg-b"] if killed else [])
    assert len(local.attempts) == 1 and set(local.accepted.values()) == {1}
    await ex.close()


async def test_the_hash_is_recorded_before_the_order_is_sent(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """With an ``executions()`` consumer running (the core), the order's hash goes to it
    as a PENDING update with the venue order id, and the post waits until the consumer
    has taken it: a process killed mid-post leaves the hash in the ledger."""
    srv, local = clob
    ex = _exec(srv.url, trades_poll_s=0.05)
    taken: list[tuple[Fill | OrderUpdate, int]] = []  # item, posts seen by the venue then

    async def consume() -> None:
        async for item in ex.executions(0.05, 60):
            taken.append((item, len(local.attempts)))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    (fill,) = await ex.submit(_order("fok", TOKEN_A, "100", "0.64", TimeInForce.FOK))
    for _ in range(100):
        if len(taken) >= 3:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (first, posts_then), *rest = taken
    assert isinstance(first, OrderUpdate) and first.status is OrderStatus.PENDING
    assert first.venue_order_id == ex.venue_ids["fok"] and posts_then == 0
    assert [type(i).__name__ for i, _ in rest][:2] == ["OrderUpdate", "Fill"]  # OPEN, fill
    assert local.orders[first.venue_order_id]["metadata"] and fill.quantity == 100
    await ex.close()


async def test_an_order_whose_hash_is_not_recorded_is_never_sent(
        clob: tuple[SnapshotServer, LocalClob], monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed venue (the core will consume its executions) never posts an order whose
    hash the core has not recorded: a crash could leave it at the venue with nothing to
    find it by.  A consumer that does not take the hash in time, or that has stopped:
    ``VenueError`` (provably never placed), no post, no stray PENDING update left."""
    monkeypatch.setattr(sending, "_ANNOUNCE_S", 0.2)
    srv, local = clob
    ex = _exec(srv.url)
    ex.resume(VenueResume(()))  # the consumer is expected, and never comes
    with pytest.raises(VenueError, match="not sent: the core did not record its hash"):
        await ex.submit(_order("stalled", TOKEN_A, "100", "0.64", TimeInForce.FOK))
    assert not local.attempts and not ex._reports and "stalled" not in ex.venue_ids

    async def consume() -> None:
        async for _item in ex.executions(0.05, 60):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()  # the consumer stops: nothing will record a hash again
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with pytest.raises(VenueError, match="not sent: the executions stream has stopped"):
        await ex.submit(_order("late", TOKEN_A, "100", "0.64", TimeInForce.FOK))
    assert not local.attempts
    await ex.close()


async def test_slow_look_ups_do_not_hold_up_the_hash_of_a_new_order(
        clob: tuple[SnapshotServer, LocalClob], monkeypatch: pytest.MonkeyPatch) -> None:
    """After a kill, hundreds of orders may be looked for again; that round of look-ups
    (here one that takes 3 s) must not keep a new order's hash from being recorded (the
    post would wait, then be refused)."""
    monkeypatch.setattr(sending, "_ANNOUNCE_S", 1.0)
    srv, local = clob
    ex = _exec(srv.url)
    ex.resume(VenueResume(()))
    looking = asyncio.Event()

    async def slow_round() -> None:
        looking.set()
        await asyncio.sleep(3)

    monkeypatch.setattr(ex, "poll_unknown", slow_round)
    taken: list[Fill | OrderUpdate] = []

    async def consume() -> None:
        async for item in ex.executions(0.05, 60):
            taken.append(item)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(looking.wait(), 2)
    (fill,) = await ex.submit(_order("fok", TOKEN_A, "100", "0.64", TimeInForce.FOK))
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert fill.quantity == 100 and len(local.attempts) == 1
    first = taken[0]
    assert isinstance(first, OrderUpdate) and first.status is OrderStatus.PENDING
    assert first.venue_order_id == ex.venue_ids["fok"]
    await ex.close()


async def test_after_a_restart_pending_orders_are_looked_for_by_their_recorded_hash(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """A new process is told (``resume``) of three orders left pending: one the venue
    executed (found by its recorded hash: OPEN, then its fill), one it never saw (hash
    recorded, no trace), one with no hash recorded (never sent).  The last two end
    CANCELLED, never placed, after ``order_give_up_s``; nothing is re-sent."""
    srv, local = clob
    # No fault here: generous timings, so a loaded machine's slow local answer (a lookup
    # timed out at 0.4 s in a full suite, and the give-up came first) is not one.
    slow_ok = {"request_timeout_s": 5.0}
    first = _exec(srv.url, **slow_ok)
    sent = _order("r-sent", TOKEN_A, "100", "0.64", TimeInForce.FOK)
    await first.submit(sent)
    await first.close()
    lost = _order("r-lost", TOKEN_B, "100", "0.31", TimeInForce.FOK)
    lost_hash = _exec(srv.url).build(lost).order_hash
    never = _order("r-never", TOKEN_B, "50", "0.31", TimeInForce.FOK)
    ex = _exec(srv.url, order_give_up_s=2.0, **slow_ok)
    ex.resume(VenueResume((KnownOrder(sent, first.venue_ids["r-sent"]),
                           KnownOrder(lost, lost_hash), KnownOrder(never))))
    await ex.poll_unknown()
    items = list(ex._reports)
    assert [(type(i).__name__, i.client_order_id) for i in items] == [
        ("OrderUpdate", "r-sent"), ("Fill", "r-sent")]
    assert isinstance(items[1], Fill) and items[1].quantity == 100
    assert set(ex.unknown) == {"r-lost"} and set(ex.unidentified) == {"r-never"}
    ex._reports.clear()
    await asyncio.sleep(2.05)
    await ex.poll_unknown()
    ended = {u.client_order_id: u for u in ex._reports if isinstance(u, OrderUpdate)}
    assert set(ended) == {"r-lost", "r-never"}
    assert all(u.status is OrderStatus.CANCELLED and "never placed" in u.reason
               for u in ended.values())
    assert len(local.attempts) == 1  # only the first process's post
    await ex.close()
