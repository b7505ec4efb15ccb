"""An order whose send had no answer is asked about during the run, never re-sent blind.

Before: an order whose ``submit`` ended without an answer (``OrderUnknown``: a timeout,
a reset, a lost answer) stayed PENDING until the venue's executions said something or a
restart's reconciliation asked ``Venue.lookup``.  A request the venue never received
produces no execution, so in a live run it stayed PENDING for good, and a flatten in
that state blocked every further flatten of its instrument: the kill switch froze a
losing position until someone restarted the process.

Now the core asks ``lookup`` ``UNKNOWN_RECHECK_NS`` of market time after the send and
then twice as long each time (up to ``UNKNOWN_RECHECK_MAX_NS``): OPEN settles it as
acknowledged (its fills come through the executions), CANCELLED ("provably never seen")
ends it and lets a flatten go again; None or a failure to ask waits longer.  An order a
lookup ended that the venue then reports open after all (a late placement) is
cancelled there.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any, ClassVar

from order_path_kit import (
    RTVenue,
    Scripted,
    X,
    bar,
    buy,
    cli_,
    position,
    q,
    register,
    runner,
    venue_position,
)

from argus_core.errors import OrderUnknown, VenueError
from argus_core.execution import UNKNOWN_RECHECK_MAX_NS, UNKNOWN_RECHECK_NS
from argus_core.models import Fill, Order, OrderStatus, OrderUpdate, TimeInForce

S = 10**9


class LostSends(RTVenue):
    """``drops``: how the next sends end, first first — ``"request"`` (the venue never
    got it), ``"answer"`` (it acted; neither the answer nor its executions came back
    until it is looked up).  ``answers``: what the next lookups do — ``"tell"`` (the
    truth), ``"none"`` (cannot tell), ``"raise"`` (cannot be asked); ``"tell"`` once the
    list is used up."""

    drops: ClassVar[list[str]] = []
    answers: ClassVar[list[str]] = []
    lookups: ClassVar[list[tuple[str, int]]] = []  # (client order id, bar time seen)
    withheld: ClassVar[list[Any]] = []  # executions of acted sends, published on lookup
    now_s: ClassVar[int] = 0

    async def submit(self, order: Order) -> list[Fill]:
        drop = LostSends.drops.pop(0) if LostSends.drops else None
        if drop == "request":
            raise OrderUnknown("read timeout: no answer", [order.client_order_id])
        if drop == "answer":
            RTVenue.submitted.append(order)
            f = self.fill(order, publish=False)
            LostSends.withheld += [OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1,
                                               f"V-{len(RTVenue.submitted)}"), f]
            raise OrderUnknown("connection reset after the request", [order.client_order_id])
        return await super().submit(order)

    async def lookup(self, order: Order) -> OrderUpdate | None:
        LostSends.lookups.append((order.client_order_id, LostSends.now_s))
        answer = LostSends.answers.pop(0) if LostSends.answers else "tell"
        if answer == "raise":
            raise VenueError("503 Service Unavailable")
        if answer == "none":
            return None
        for item in LostSends.withheld:
            self.queue.put_nowait(item)
        LostSends.withheld = []
        if any(o.client_order_id == order.client_order_id for o in RTVenue.submitted):
            return OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1, "V-looked-up")
        return OrderUpdate(order.client_order_id, OrderStatus.CANCELLED, 1,
                           reason="the venue has no order with this id")


def _reset() -> None:
    LostSends.drops, LostSends.answers, LostSends.lookups = [], [], []
    LostSends.withheld, LostSends.now_s = [], 0


def _bars(first: int, last: int, price: float = 100.0) -> list[Any]:
    """One bar a second of market time; the venue notes the time it last showed."""
    out: list[Any] = []
    for t in range(first, last + 1):
        out += [lambda t=t: setattr(LostSends, "now_s", t), bar(X, t, price)]
    return out


def _flatten_orders(run: Any) -> list[dict[str, Any]]:
    return q(run, "select client_order_id, status from orders where strategy = 'flatten' "
                  "order by rowid")


def test_a_flatten_the_venue_never_received_is_sent_again_after_the_venue_says_so(
        tmp_path, monkeypatch) -> None:
    register(monkeypatch, LostSends)
    _reset()
    run = tmp_path / "run"
    LostSends.script = [*_bars(1, 3),
                        lambda: LostSends.drops.append("request"),
                        lambda: cli_("kill", "--run-dir", str(run), "--flatten"),
                        *_bars(4, 40, 80.0)]
    runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "2")]})}).run_sync()
    assert position(run) == venue_position(X) == 0, "the kill switch froze the position"
    first, second = _flatten_orders(run)
    assert first["status"] == "cancelled" and second["status"] == "filled"
    (looked,) = LostSends.lookups
    assert looked[0] == first["client_order_id"]
    assert looked[1] >= 4 + UNKNOWN_RECHECK_NS // S  # asked only once the wait was over
    assert q(run, "select 1 from risk_events where action = 'order_unknown'")
    (said,) = q(run, "select reason from risk_events where action = 'send_resolved'")
    assert "cancelled" in said["reason"] and first["client_order_id"] in said["reason"]


def test_a_send_the_venue_acted_on_is_settled_by_the_lookup_never_sent_twice(
        tmp_path, monkeypatch) -> None:
    register(monkeypatch, LostSends)
    _reset()
    run = tmp_path / "run"
    LostSends.drops = ["answer"]
    LostSends.script = _bars(1, 30)
    runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "2")]})}).run_sync()
    assert len(RTVenue.submitted) == 1  # never re-sent
    (order,) = q(run, "select status, filled_quantity, venue_order_id from orders")
    assert order["status"] == "filled" and Decimal(order["filled_quantity"]) == 2
    assert position(run) == venue_position(X) == 2
    assert len(LostSends.lookups) == 1


def test_a_venue_that_cannot_tell_is_asked_again_ever_less_often(tmp_path,
                                                                monkeypatch) -> None:
    """None, a failure, None, then the truth: four lookups, the waits doubling from
    UNKNOWN_RECHECK_NS; the flatten is sent again only after the venue said CANCELLED."""
    register(monkeypatch, LostSends)
    _reset()
    run = tmp_path / "run"
    LostSends.answers = ["none", "raise", "none"]
    LostSends.script = [*_bars(1, 3),
                        lambda: LostSends.drops.append("request"),
                        lambda: cli_("kill", "--run-dir", str(run), "--flatten"),
                        *_bars(4, 200, 80.0)]
    runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "2")]})}).run_sync()
    times = [t for _coid, t in LostSends.lookups]
    assert len(times) == 4, times
    waits = [b - a for a, b in itertools.pairwise(times)]
    base = UNKNOWN_RECHECK_NS // S
    assert [w >= base * 2 ** (k + 1) for k, w in enumerate(waits)] == [True] * 3, waits
    assert all(w <= min(base * 2 ** (k + 1), UNKNOWN_RECHECK_MAX_NS // S) + 2
               for k, w in enumerate(waits)), waits
    first, second = _flatten_orders(run)
    assert (first["status"], second["status"]) == ("cancelled", "filled")
    assert position(run) == venue_position(X) == 0
    flatten_sends = [o for o in RTVenue.submitted if o.strategy == "flatten"]
    assert len(flatten_sends) == 1  # the lost one never reached the venue


def test_an_order_the_lookup_ended_that_turns_up_open_is_cancelled_at_the_venue(
        tmp_path, monkeypatch) -> None:
    """A lookup said "never seen", then the venue reports the order open after all (it
    was queued at the venue): the core cancels it there and says so."""
    _reset()
    run = tmp_path / "run"
    lost: list[Order] = []

    class Late(LostSends):
        async def submit(self, order: Order) -> list[Fill]:
            if not lost:
                lost.append(order)
                raise OrderUnknown("read timeout: no answer", [order.client_order_id])
            return await super().submit(order)

    def place_late() -> None:  # the queued request reaches the book after the lookup
        order = lost[0]
        RTVenue.submitted.append(order)
        RTVenue.held.append(order)
        RTVenue.inst.queue.put_nowait(  # type: ignore[attr-defined]
            OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1, "V-late"))

    register(monkeypatch, Late)
    RTVenue.fill_at_once = False
    Late.script = [*_bars(1, 20), place_late, *_bars(21, 30)]
    runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "2", tif=TimeInForce.GTC)]})}
           ).run_sync()
    (order,) = q(run, "select client_order_id, status from orders")
    assert order["status"] == "cancelled"
    assert RTVenue.cancelled == [order["client_order_id"]] and RTVenue.held == []
    (said,) = q(run, "select reason from risk_events where action = 'open_after_end'")
    assert order["client_order_id"] in said["reason"]


def test_a_venue_without_a_lookup_of_its_own_is_not_asked(tmp_path, monkeypatch) -> None:
    """The default ``lookup`` never knows: asking it every few minutes would only log."""
    sent: list[Order] = []

    class NoLookup(RTVenue):
        async def submit(self, order: Order) -> list[Fill]:
            if not sent:
                sent.append(order)
                raise OrderUnknown("read timeout: no answer", [order.client_order_id])
            return await super().submit(order)

    register(monkeypatch, NoLookup)
    run = tmp_path / "run"
    NoLookup.script = [bar(X, t) for t in range(1, 60)]
    r = runner(tmp_path, {"s": Scripted({1: lambda e, c: [buy(X, "2")]})})
    r.run_sync()
    assert r.engine.unknown_checks == {}
    (order,) = q(run, "select status from orders")
    assert order["status"] == "pending"  # for the executions or a restart to settle
