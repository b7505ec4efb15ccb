"""Faults the exactly-once tests do not script: an AddOrder answered 200 with a result of
the wrong shape after Kraken acted, look-ups that are rate limited, unreadable or see the
order only late, a duplicate ``cl_ord_id`` refusal, cancels whose answer is lost or that
race a fill, and a restart right after the process died between the ledger commit and
the send.

Each ends with one order at Kraken (never a second), the right txid, and a clear outcome.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from argus_venue_kraken.execution import cl_ord_id_for
from kraken_orders import held, market, resting

from argus_core.errors import OrderUnknown, VenueError
from argus_core.models import OrderStatus


# -- answers of the wrong shape ---------------------------------------------------------------
@pytest.mark.parametrize("result", ["txid-as-text", {"txid": [None]}, {"txid": [""]},
                                    {"descr": {}}, [], None],
                         ids=["txid-text", "txid-null", "txid-empty", "no-txid", "list", "null"])
async def test_a_200_whose_result_is_not_the_documented_shape_is_looked_up(
        exchange, make_venue, result) -> None:
    """Kraken placed the order; the 200's ``result`` does not carry a txid list.  Before:
    a txid given as text was read as its first letter (``"O"``), a null or empty one as
    ``"None"`` / ``""`` — an order taken as placed under an id that is none.  Now the
    answer is ambiguous and the look-up by ``cl_ord_id`` names the real txid."""
    venue = make_venue()
    exchange.inject("AddOrder", ("lost_result", result))
    txid = await venue.execution.submit(market("argus-h1"))
    (real,) = held(exchange, "argus-h1")
    assert txid == real and len(exchange.calls("AddOrder")) == 1
    assert venue.execution.ambiguous == 1


# -- look-ups that fail, are rate limited, or see the order late ------------------------------
@pytest.mark.parametrize("lookup_fault", [
    ("error", ["EAPI:Rate limit exceeded"]), ("status", 429), ("status", 503),
    ("raw", "<html>502 Bad Gateway</html>"), ("reset", None),
    ("json", {"error": [], "result": {"open": "nope"}}),
], ids=["rate-limit-error", "429", "503", "garbled-200", "reset", "wrong-shape"])
async def test_a_lost_answer_then_a_lookup_that_fails_once_still_finds_the_order(
        exchange, make_venue, lookup_fault) -> None:
    """The answer to AddOrder is lost; the first OpenOrders look-up is throttled, a 5xx,
    reset or unreadable.  Before, an unreadable (or wrong-shape) answer gave
    ``OrderUnknown`` at once; now every read-only look-up is asked again like a 5xx."""
    venue = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    exchange.inject("OpenOrders", lookup_fault)
    txid = await venue.execution.submit(resting("argus-h2"))
    assert list(held(exchange, "argus-h2")) == [txid]
    assert len(exchange.calls("AddOrder")) == 1 and venue.execution.resent == 0


async def test_an_order_listed_only_after_a_delay_is_found_not_resent(exchange,
                                                                      make_venue) -> None:
    """Kraken acted and answered 503; its order lists show the order 0.8 s later (within
    the deadline plus ``lookup_settle_s``): the first look-up misses it, the one after
    the deadline finds it; one order."""
    venue = make_venue(real_time=True)
    exchange.visible_after_s = 0.8
    exchange.inject("AddOrder", ("lost", None))
    txid = await venue.execution.submit(market("argus-h1"))
    assert list(held(exchange, "argus-h1")) == [txid]
    # The first look-up usually misses it (the second finds it); on a loaded box the first
    # may come after it became visible.  One order either way.
    assert len(exchange.calls("AddOrder")) == 1 and venue.execution.lookups in (1, 2)


async def test_a_lookup_that_never_answers_is_order_unknown_and_never_resent(
        exchange, make_venue) -> None:
    venue = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    exchange.inject("OpenOrders", *[("raw", "<html>cut")] * 40)
    with pytest.raises(OrderUnknown, match="could not be asked"):
        await venue.execution.submit(market("argus-h1"))
    assert len(exchange.calls("AddOrder")) == 1 and len(held(exchange, "argus-h1")) == 1


# -- duplicate client order id ---------------------------------------------------------------
async def test_a_duplicate_cl_ord_id_refusal_means_the_order_is_there(exchange,
                                                                      make_venue) -> None:
    """A restarted process sends an order that already rests (same ``cl_ord_id``): Kraken
    refuses the duplicate; that is no rejection — the resting order is the answer."""
    first = make_venue()
    txid = await first.execution.submit(resting("argus-h2"))
    again = make_venue()
    assert await again.execution.submit(resting("argus-h2")) == txid
    assert list(held(exchange, "argus-h2")) == [txid]


# -- cancels -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", [("lost", None), ("lost_reset", None),
                                   ("lost_raw", "<html>")],
                         ids=["503-after-acting", "reset-after-acting", "garbled-after-acting"])
async def test_a_cancel_whose_answer_is_lost_ends_cancelled(exchange, make_venue,
                                                            fault) -> None:
    venue = make_venue()
    txid = await venue.execution.submit(resting("argus-h2"))
    exchange.inject("CancelOrder", fault)
    await venue.cancel("argus-h2")
    assert exchange.closed[txid]["status"] == "canceled"
    assert cl_ord_id_for("argus-h2") not in venue.execution.resting


async def test_a_cancel_that_lost_the_race_with_a_fill_says_so(exchange,
                                                               make_venue) -> None:
    """The order filled before the cancel reached Kraken: nothing was cancelled.  Before:
    the cancel returned as if done (the core would mark a filled order CANCELLED until
    its fills arrived).  Now ``VenueError`` naming the order and what became of it."""
    venue = make_venue()
    order = attrs.evolve(resting("argus-h2"), limit_price=Decimal("37500.0"),
                         quantity=Decimal("0.4"))
    txid = await venue.execution.submit(order)
    assert exchange.closed[txid]["status"] == "closed"  # filled at once
    with pytest.raises(VenueError, match=r"argus-h2.*closed"):
        await venue.cancel("argus-h2")


# -- a process killed around the send ----------------------------------------------------------
async def test_a_restart_right_after_a_kill_before_the_send_ends_cancelled(
        exchange, make_venue, fake_time) -> None:
    """The order row was committed, the process died before AddOrder.  Restarted at once
    (the order's deadline window still open), the look-up used to answer None and the
    order stayed pending with nothing left to settle it.  Now the venue waits the window
    out, asks again and answers CANCELLED (never placed); nothing is sent."""
    venue = make_venue()
    order = attrs.evolve(market("argus-killed"), ts_ns=venue._clock_ns())
    update = await venue.lookup(order)
    assert update is not None and update.status is OrderStatus.CANCELLED
    assert "never placed" in update.reason
    assert not exchange.calls("AddOrder") and max(fake_time.sleeps) >= 2.0
    assert len(exchange.calls("OpenOrders")) == 2  # asked before and after the window


async def test_a_restart_right_after_a_kill_mid_send_finds_the_order(exchange,
                                                                     make_venue) -> None:
    """The process died with AddOrder on the wire and Kraken lists the order only later:
    the restarted venue's look-up waits out the window and finds it (OPEN, txid)."""
    first = make_venue()
    exchange.visible_after_s = 0.6
    exchange.inject("AddOrder", ("lost", None))
    exchange.inject("OpenOrders", *[("status", 503)] * 4)
    order = attrs.evolve(market("argus-mid"), ts_ns=first._clock_ns())
    with pytest.raises(OrderUnknown):
        await first.execution.submit(order)
    restarted = make_venue(real_time=True)
    update = await restarted.lookup(order)
    (txid,) = held(exchange, "argus-mid")
    assert update is not None and update.status is OrderStatus.OPEN
    assert update.venue_order_id == txid and len(exchange.calls("AddOrder")) == 1
