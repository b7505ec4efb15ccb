"""Exactly-once order entry against the local Kraken exchange with scripted faults.

Every order kind (market, IOC, resting GTC, GTC that fills in part and rests) meets every
fault: Kraken acted and the answer was lost (503, a reset mid-body, an unreadable body, an
answer after the client's timeout), Kraken acted after the client gave up, and Kraken did
not act (502/503/504, HTTP 429, rate-limit and service error arrays, a reset mid-body).
Each test checks that the exchange holds exactly one order with the order's ``cl_ord_id``,
that it filled the right quantity, and what ``submit`` answered.  Kraken spot has no FOK
(``add_order_params`` refuses it before anything is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from argus_venue_kraken.execution import cl_ord_id_for
from argus_venue_kraken.testing import (
    AwaitSubscribe,
    ForwardExecutions,
    LocalKrakenRest,
    LocalKrakenWs,
)

from argus_core.errors import OrderUnknown, VenueError
from argus_core.models import Fill, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce

#: The client gives up after this long; "late" answers come well after it.
LATE_S = 1.0


@attrs.frozen
class Kind:
    """An order kind, and what the exchange does with it on the book above."""

    name: str
    order_type: OrderType
    tif: TimeInForce
    qty: str
    limit: str | None
    filled: str  # quantity the exchange fills
    state: str  # where the order ends: open (rests) / closed (filled) / canceled


KINDS = [
    Kind("market", OrderType.MARKET, TimeInForce.IOC, "0.1", None, "0.1", "closed"),
    Kind("ioc", OrderType.LIMIT, TimeInForce.IOC, "0.75", "37500.0", "0.4", "canceled"),
    Kind("gtc_rests", OrderType.LIMIT, TimeInForce.GTC, "0.5", "37000.0", "0", "open"),
    Kind("gtc_partial", OrderType.LIMIT, TimeInForce.GTC, "0.6", "37500.0", "0.4", "open"),
]
#: Kraken acts on the AddOrder, then its answer goes wrong.
ACTED = [("lost", None), ("lost_reset", None), ("lost_raw", "<html>502 Bad Gateway</html>"),
         ("late", LATE_S)]
#: Kraken does not act on the AddOrder (each order kind meets these) ...
NOT_ACTED = [("status", 502), ("status", 503), ("status", 429),
             ("error", ["EAPI:Rate limit exceeded"]), ("error", ["EOrder:Rate limit exceeded"]),
             ("error", ["EService:Unavailable"]), ("reset", None)]
#: ... and these, resolved the same way, are run for the market order only.
MORE_NOT_ACTED = [("status", 504), ("error", ["EService:Busy"]),
                  ("error", ["EService:Deadline elapsed"]), ("error", ["EGeneral:Internal error"]),
                  ("raw", "<html>504 Gateway Time-out</html>")]


def fault_id(fault: tuple[str, Any]) -> str:
    kind, value = fault
    return f"{kind}-{value[0] if isinstance(value, list) else value}".replace(" ", "_")


def order_of(kind: Kind, cid: str = "argus-x1") -> Order:
    return Order(cid, "kraken", "kraken:BTC/USD", Side.BUY, Decimal(kind.qty),
                 Decimal(kind.limit) if kind.limit else None, kind.order_type, kind.tif,
                 "ma_cross", 0)


def orders_at_exchange(exchange: LocalKrakenRest, client_order_id: str
                       ) -> dict[str, dict[str, Any]]:
    """Every order (open or closed) the exchange holds with the order's cl_ord_id."""
    wire = cl_ord_id_for(client_order_id)
    return {t: o for t, o in {**exchange.closed, **exchange.orders}.items()
            if o.get("cl_ord_id") == wire}


def filled(exchange: LocalKrakenRest, txid: str) -> Decimal:
    return sum((Decimal(t["vol"]) for t in exchange.trades_history.values()
                if t["ordertxid"] == txid), Decimal(0))


def assert_exactly_one(exchange: LocalKrakenRest, kind: Kind, txid: str,
                       client_order_id: str = "argus-x1") -> None:
    held = orders_at_exchange(exchange, client_order_id)
    assert list(held) == [txid], f"expected exactly one order, the exchange holds {list(held)}"
    assert filled(exchange, txid) == Decimal(kind.filled)
    assert held[txid]["status"] == kind.state


def lookups(exchange: LocalKrakenRest, method: str) -> list[str]:
    return [c.params.get("cl_ord_id", "") for c in exchange.calls(method)]


@pytest.mark.parametrize("fault", ACTED, ids=fault_id)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_kraken_acted_and_the_answer_went_wrong_finds_the_order(exchange, make_venue,
                                                                      kind, fault):
    venue = make_venue()
    exchange.inject("AddOrder", fault)
    txid = await venue.execution.submit(order_of(kind))
    assert len(exchange.calls("AddOrder")) == 1  # found, never sent again
    assert_exactly_one(exchange, kind, txid)
    wire = cl_ord_id_for("argus-x1")
    assert lookups(exchange, "OpenOrders")[0] == wire
    if kind.state != "open":  # a filled or cancelled order is only in ClosedOrders
        assert lookups(exchange, "ClosedOrders") == [wire]
    assert venue.execution.ambiguous == 1 and venue.execution.resent == 0
    assert (wire in venue.execution.resting) == (kind.state == "open")  # only what rests


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_kraken_acted_after_the_client_gave_up_is_found_after_the_deadline(
        exchange, make_venue, kind):
    """The request queues at Kraken past the client's timeout, then executes (before its
    deadline): the first look-up sees nothing, the one after the deadline finds it."""
    venue = make_venue(real_time=True)
    exchange.inject("AddOrder", ("act_late", LATE_S))
    txid = await venue.execution.submit(order_of(kind))
    # Usually the first look-up sees nothing and the one after the deadline finds it; on a
    # loaded box the first may already come after the exchange acted.  Never re-sent,
    # unless the queued request overslept its deadline (a box loaded enough to wake the
    # exchange's thread a second late) and Kraken's engine refused it: then once.
    refused = exchange.deadline_refusals
    assert refused in (0, 1)
    assert len(exchange.calls("AddOrder")) == 1 + refused
    assert_exactly_one(exchange, kind, txid)
    assert venue.execution.lookups in (1, 2) and venue.execution.resent == refused


async def test_a_request_queued_past_its_deadline_is_refused_by_kraken_and_sent_again(
        exchange, make_venue):
    """Kraken's engine refuses an order that reaches it after its deadline; the client has
    waited out that deadline, found nothing twice, and sends it again: still one order."""
    venue = make_venue(real_time=True)
    exchange.inject("AddOrder", ("act_late", 2.6))
    kind = KINDS[0]
    txid = await venue.execution.submit(order_of(kind))
    assert len(exchange.calls("AddOrder")) == 2 and venue.execution.resent == 1
    assert_exactly_one(exchange, kind, txid)
    await asyncio.sleep(0.3)  # the queued request has now been refused, not placed
    assert_exactly_one(exchange, kind, txid)


@pytest.mark.parametrize(("kind", "fault"),
                         [(k, f) for k in KINDS for f in NOT_ACTED]
                         + [(KINDS[0], f) for f in MORE_NOT_ACTED],
                         ids=lambda v: v.name if isinstance(v, Kind) else fault_id(v))
async def test_kraken_did_not_act_is_proven_then_sent_once_more(exchange, make_venue,
                                                                fake_time, kind, fault):
    venue = make_venue()
    exchange.inject("AddOrder", fault)
    txid = await venue.execution.submit(order_of(kind))
    assert len(exchange.calls("AddOrder")) == 2 and venue.execution.resent == 1
    assert_exactly_one(exchange, kind, txid)
    # Two look-ups (open and closed orders each) came before the second AddOrder ...
    first_add, second_add = (exchange.requests.index(c) for c in exchange.calls("AddOrder"))
    between = [r.method for r in exchange.requests[first_add:second_add]]
    assert between.count("OpenOrders") == 2 and between.count("ClosedOrders") == 2
    # ... the second after the first AddOrder's deadline (plus the settle margin).
    assert any(s >= 0.3 for s in fake_time.sleeps)
    if "Rate limit" in str(fault[1]) or fault == ("status", 429):
        assert fake_time.sleeps and max(fake_time.sleeps) >= 1.0  # the counter was waited out


async def test_each_add_order_carries_a_deadline_within_krakens_window(exchange, make_venue):
    venue = make_venue(order_deadline_s=2.0)
    exchange.inject("AddOrder", ("status", 503))
    sent_at = datetime.now(UTC).timestamp()
    await venue.execution.submit(order_of(KINDS[0]))
    deadlines = [datetime.fromisoformat(c.params["deadline"].replace("Z", "+00:00")).timestamp()
                 for c in exchange.calls("AddOrder")]
    assert len(deadlines) == 2 and deadlines[0] <= deadlines[1]
    assert all(sent_at + 1.5 <= d <= sent_at + 10 for d in deadlines)


async def test_lost_answer_with_kraken_unreachable_raises_order_unknown(exchange, make_venue):
    """Kraken placed the order, then cannot be asked: never re-sent blind."""
    venue = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    exchange.inject("OpenOrders", *[("status", 503)] * 4)  # max_retries + 1
    with pytest.raises(OrderUnknown, match="could not be asked") as info:
        await venue.execution.submit(order_of(KINDS[0]))
    assert info.value.client_order_ids == ["argus-x1"]
    assert len(exchange.calls("AddOrder")) == 1
    assert len(orders_at_exchange(exchange, "argus-x1")) == 1  # the one Kraken placed


async def test_refusal_with_kraken_unreachable_raises_order_unknown(exchange, make_venue):
    """A 502 and then no answer to the look-up: the order may or may not exist; it is not
    sent again (the executions stream or a restart settles it)."""
    venue = make_venue()
    exchange.inject("AddOrder", ("status", 502))
    exchange.inject("OpenOrders", ("status", 503))
    exchange.inject("ClosedOrders", *[("reset", None)] * 4)
    with pytest.raises(OrderUnknown):
        await venue.execution.submit(order_of(KINDS[1]))
    assert len(exchange.calls("AddOrder")) == 1 and not orders_at_exchange(exchange, "argus-x1")


@pytest.mark.parametrize("codes", [["EOrder:Insufficient funds"],
                                   ["EGeneral:Invalid arguments:volume"]])
async def test_documented_refusals_reject_without_a_look_up(exchange, make_venue, codes):
    venue = make_venue()
    exchange.inject("AddOrder", ("error", codes))
    with pytest.raises(VenueError, match=codes[0].split(":")[1]) as info:
        await venue.execution.submit(order_of(KINDS[0]))
    assert not isinstance(info.value, OrderUnknown)
    assert len(exchange.calls("AddOrder")) == 1 and not exchange.calls("OpenOrders")
    assert not orders_at_exchange(exchange, "argus-x1")


async def test_an_order_kraken_never_takes_is_rejected_after_max_retries(exchange, make_venue):
    venue = make_venue(max_retries=2)
    exchange.inject("AddOrder", *[("status", 503)] * 3)
    with pytest.raises(VenueError, match="not placed after 3 attempts") as info:
        await venue.execution.submit(order_of(KINDS[0]))
    assert not isinstance(info.value, OrderUnknown)
    assert len(exchange.calls("AddOrder")) == 3 and not orders_at_exchange(exchange, "argus-x1")


async def test_a_found_order_reports_its_fills_once_on_executions(exchange, make_venue):
    """A lost answer, found by look-up: the fills and acknowledgement arrive once each on
    ``executions()`` under the core's id, and ``submit`` returns normally."""
    session = [AwaitSubscribe("executions"), ForwardExecutions(exchange)]
    async with LocalKrakenWs([session], token="local-ws-token") as ws:
        venue = make_venue(ws_auth_url=ws.url)
        items: list[Fill | OrderUpdate] = []

        async def collect(it: AsyncIterator[Fill | OrderUpdate]) -> None:
            async for item in it:
                items.append(item)
                if sum(isinstance(i, Fill) for i in items) == 2:
                    return

        async with contextlib.aclosing(venue.executions()) as it:
            task = asyncio.ensure_future(collect(it))
            await ws.wait_for(lambda: bool(ws.subscriptions("executions")))
            exchange.inject("AddOrder", ("lost", None))
            kind = Kind("market", OrderType.MARKET, TimeInForce.IOC, "0.75", None, "0.75",
                        "closed")
            assert await venue.submit(order_of(kind, "argus-x2")) == []
            async with asyncio.timeout(10):
                await task
    fills = [i for i in items if isinstance(i, Fill)]
    assert [(f.client_order_id, f.price, f.quantity) for f in fills] == [
        ("argus-x2", Decimal("37500.0"), Decimal("0.4")),
        ("argus-x2", Decimal("37510.5"), Decimal("0.35"))]
    acks = [i for i in items if isinstance(i, OrderUpdate) and i.status is OrderStatus.OPEN]
    assert len(acks) == 1 and len(exchange.calls("AddOrder")) == 1


async def test_a_restart_looks_up_an_unacknowledged_order_instead_of_resending(
        exchange, make_venue, fake_time):
    """An order persisted before a crash, never acknowledged: ``lookup`` finds it closed at
    Kraken (OPEN with its txid; the backfill brings its fills), or proves it never placed
    once its deadline has passed (CANCELLED; before that, it waits the deadline out and
    asks again), or, for an order of unknown time, cannot tell (None).  Nothing is sent."""
    kind = KINDS[0]
    placed = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    txid = await placed.execution.submit(order_of(kind, "argus-placed"))
    restarted = make_venue()
    before = len(exchange.calls("AddOrder"))
    now = restarted._clock_ns()
    found = await restarted.lookup(attrs.evolve(order_of(kind, "argus-placed"), ts_ns=now))
    assert found is not None and found.status is OrderStatus.OPEN
    assert found.venue_order_id == txid and txid in restarted.execution.unsettled_txids
    never = order_of(kind, "argus-never")
    assert await restarted.lookup(never) is None  # no time: it may still arrive
    waited = await restarted.lookup(attrs.evolve(never, ts_ns=now))  # asked again after
    assert waited is not None and waited.status is OrderStatus.CANCELLED  # the deadline
    assert fake_time.sleeps and fake_time.sleeps[-1] > 2.0
    gone = await restarted.lookup(attrs.evolve(never, ts_ns=now - 10**10))  # deadline passed
    assert gone is not None and gone.status is OrderStatus.CANCELLED
    assert "never placed" in gone.reason
    assert len(exchange.calls("AddOrder")) == before  # asked, never re-sent
