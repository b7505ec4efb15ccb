"""Held-out red team of Kraken's answers, the order path: an OpenOrders answer without an
``open`` object was read as "nothing open" (an ambiguous AddOrder was sent again and the
order booked REJECTED while it rested; the core ended working orders as "not open at the
venue"); an unreadable ``opentm`` in a look-up raised TypeError instead of OrderUnknown; a
CancelOrder ``count`` of ``true`` or ``1.9`` (or a ``pending`` cancel) confirmed a cancel;
a CancelAllOrdersAfter result of the wrong shape killed the dead-man's switch task
silently; an OpenOrders entry of the wrong shape raised AttributeError."""
from __future__ import annotations

import asyncio

import pytest
from argus_venue_kraken.execution import cl_ord_id_for
from kraken_orders import held, resting

from argus_core.errors import OrderUnknown, VenueError


@pytest.mark.parametrize("result", [None, [], {}, {"opened": {}}, "open"],
                         ids=["null", "list", "empty-object", "other-key", "string"])
async def test_an_openorders_answer_of_the_wrong_shape_is_not_read_as_not_there(
        exchange, make_venue, result):
    """Kraken took the resting order and its answer was lost; every OpenOrders look-up
    answers 200 with a result of the wrong shape.  rest.open_orders reads it as 'no open
    orders' ({}), so the look-ups 'prove' Kraken never took it: AddOrder is sent again
    (refused as a duplicate), and after max_retries submit raises a plain VenueError
    ('not placed ... Kraken holds no order') which the core books REJECTED -- while the
    order rests at Kraken.  Expected: OrderUnknown (Kraken could not be asked), no re-send."""
    venue = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    exchange.inject("OpenOrders", *[("json", {"error": [], "result": result})] * 40)
    try:
        await venue.execution.submit(resting("argus-r1"))
        outcome = "returned"
    except Exception as exc:
        outcome = exc
    assert len(held(exchange, "argus-r1")) == 1  # the order rests at Kraken
    adds = len(exchange.calls("AddOrder"))
    assert adds == 1, f"AddOrder re-sent {adds - 1} times on a misread look-up ({outcome!r})"
    assert isinstance(outcome, OrderUnknown) or outcome == "returned"


@pytest.mark.parametrize("result", [{"count": True}, {"count": 1.9}],
                         ids=["count-true", "count-float"])
async def test_a_cancel_answer_that_does_not_show_a_cancel(exchange, make_venue, result):
    """CancelOrder answered without acting but with a count that int() reads as > 0."""
    venue = make_venue()
    txid = await venue.execution.submit(resting("argus-r1"))
    exchange.inject("CancelOrder", ("json", {"error": [], "result": result}))
    try:
        await venue.cancel("argus-r1")
        confirmed = True
    except VenueError:
        confirmed = False
    still_open = txid in exchange.orders
    assert not (confirmed and still_open), (
        f"cancel confirmed on {result!r} while Kraken still holds {txid} open")


async def test_a_pending_cancel_is_done_only_when_kraken_shows_it_cancelled(exchange,
                                                                            make_venue):
    """CancelOrder answered ``{"count": 1, "pending": true}``: Kraken took the cancel and
    has not done it (the order may still fill).  Before: confirmed at once, so the core
    booked CANCELLED while the order rested.  Now the order is looked up: still open, the
    cancel is not confirmed (the core asks again); once Kraken shows it cancelled, the
    same answer confirms it."""
    venue = make_venue()
    txid = await venue.execution.submit(resting("argus-r1"))
    exchange.inject("CancelOrder", ("json", {"error": [], "result": {"count": 1,
                                                                     "pending": True}}))
    with pytest.raises(VenueError, match="cancel is pending; Kraken shows the order open"):
        await venue.cancel("argus-r1")
    assert txid in exchange.orders  # it rests: nothing was confirmed
    await venue.cancel("argus-r1")  # asked again: Kraken cancels it
    assert txid not in exchange.orders and exchange.closed[txid]["status"] == "canceled"


@pytest.mark.parametrize("opentm", [[1], {"a": 1}], ids=["list", "object"])
async def test_a_lookup_answer_with_an_unreadable_opentm(exchange, make_venue, opentm):
    """OpenOrders look-up entry for our cl_ord_id with opentm of the wrong type: TypeError
    escapes lookup() (it catches VenueError/ValueError only), so submit raises a bare
    TypeError instead of OrderUnknown -- KrakenVenue._settle_later is never started."""
    venue = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    wire = cl_ord_id_for("argus-r1")
    exchange.inject("OpenOrders", ("json", {"error": [], "result": {"open": {
        "OAAAAA-BBBBB-CCCCCC": {"cl_ord_id": wire, "status": "open", "opentm": opentm}}}}))
    with pytest.raises(Exception) as info:
        await venue.submit(resting("argus-r1"))
    assert isinstance(info.value, OrderUnknown), f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize("result", [None, "armed", [1, 2]], ids=["null", "string", "list"])
async def test_a_dead_man_answer_of_the_wrong_shape_does_not_kill_the_keepalive(
        exchange, make_venue, result):
    """CancelAllOrdersAfter answers 200 with a result of the wrong shape: dict(result)
    raises TypeError/ValueError, _keep_alive catches VenueError only, and the
    kraken-dead-man task dies silently (no re-arm; the switch fires and cancels every
    resting order after dead_man_timeout_s, with nothing logged)."""
    venue = make_venue(dead_man_timeout_s=60)
    exchange.inject("CancelAllOrdersAfter", ("json", {"error": [], "result": result}))
    await venue.execution.submit(resting("argus-r1"))
    task = venue.execution._dead_man
    for _ in range(50):
        await asyncio.sleep(0.02)
        if task.done():
            break
    dead = task.done() and not task.cancelled() and task.exception()
    assert not dead, f"kraken-dead-man died silently: {type(dead).__name__}: {dead}"


@pytest.mark.parametrize("result", [None, [], {}, {"opened": {}}],
                         ids=["null", "list", "empty-object", "other-key"])
async def test_open_orders_of_the_wrong_shape_is_not_an_empty_book(exchange, make_venue,
                                                                    result):
    """KrakenVenue.open_orders() on an OpenOrders answer without an 'open' object returns
    [] ('nothing open').  The core's _read_open_orders then moves every due working order
    to CANCELLED ('not open at the venue: it ended unseen') while it rests at Kraken.
    Expected: MalformedAnswerError (the core asks again later, never guesses)."""
    venue = make_venue()
    txid = await venue.execution.submit(resting("argus-r1"))
    exchange.inject("OpenOrders", *[("json", {"error": [], "result": result})] * 5)
    try:
        orders = await venue.open_orders()
    except VenueError:
        return  # a clear error: what should happen
    assert txid in exchange.orders
    assert orders, f"open_orders() answered [] on {result!r} while {txid} rests at Kraken"


@pytest.mark.parametrize("raw", [["x"], {"descr": ["XBTUSD"]}], ids=["entry-list", "descr-list"])
async def test_open_orders_entry_of_the_wrong_shape(exchange, make_venue, raw):
    venue = make_venue()
    exchange.inject("OpenOrders", ("json", {"error": [], "result": {"open": {"OX": raw}}}))
    with pytest.raises(Exception) as info:
        await venue.open_orders()
    assert isinstance(info.value, VenueError) or type(info.value).__name__ == "DataError", \
        f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize("vol_exec", ["1.0", "1.5"], ids=["all-executed", "over"])
async def test_an_open_order_executed_to_its_volume_names_the_order(exchange, make_venue,
                                                                     vol_exec):
    """An OpenOrders entry whose ``vol_exec`` reaches its ``vol`` left nothing to rest:
    the core's ``Order`` refused the quantity ("Order.quantity: 0 must be > 0") without
    saying which Kraken order; now the error names it."""
    venue = make_venue()
    raw = {"descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "30000"},
           "vol": "1.0", "vol_exec": vol_exec, "opentm": 1700000000, "cl_ord_id": "x"}
    exchange.inject("OpenOrders", ("json", {"error": [], "result": {"open": {"OX-1": raw}}}))
    with pytest.raises(Exception, match=r"OpenOrders\[OX-1\]: unexpected order shape"):
        await venue.open_orders()
