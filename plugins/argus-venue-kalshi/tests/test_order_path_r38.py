"""Round 38 gaps on the order path, against the local exchange:

* the fills poll's ``min_ts`` moves forward behind the newest fill (an overlap: a fill
  in the same second, or listed late, is still booked, once), across a restart too;
* an order Kalshi moved to its historical tier (``GET /historical/orders``, older than
  ``GET /historical/cutoff``'s ``orders_updated_ts``) is found there, not taken for
  never placed;
* a burst of more than 20 working orders ending between two polls, while the resting
  list shifts under the reader, is all seen by one poll.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.execution import FILL_OVERLAP_S, wire_client_id
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.testing.engine import _iso
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    Fill,
    KnownOrder,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueResume,
)

YES = "kalshi:KXHIGHNY-24JAN01-T60/YES"
GIVE_UP_S = 2.0


def buy(coid: str, limit: str = "0.45", qty: int = 2, tif: TimeInForce = TimeInForce.IOC,
        ts_ns: int = 0) -> Order:
    return Order(coid, "kalshi", YES, Side.BUY, D(qty), D(limit), OrderType.LIMIT, tif, "t",
                 ts_ns=ts_ns)


def fills_min_ts(exchange: Any) -> int:
    """``min_ts`` of the newest ``GET /portfolio/fills`` request."""
    asked = [r for r in exchange.rest.requests if r.path.endswith("/portfolio/fills")]
    return int(asked[-1].query["min_ts"])


def restamp(fill: dict[str, Any], ts_s: int) -> None:
    """Give a local fill another time (as Kalshi would have stamped it)."""
    fill.update(ts=ts_s, created_time=_iso(ts_s * 10**9))


@pytest.fixture
async def venue(local_settings: Any) -> Any:
    v = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=GIVE_UP_S,
                                   reads_per_s=400, writes_per_s=400))
    yield v
    await v.close()


# -- 1. the fills window ---------------------------------------------------------------
async def test_fills_min_ts_advances_and_a_late_or_same_second_fill_is_still_booked(
        exchange, venue) -> None:
    """``min_ts`` stayed 0 for the whole run (every poll re-read every fill); now it
    follows the newest fill less the overlap, and a fill listed late (stamped before the
    newest) or in the same second is booked, each fill once."""
    ex = venue.execution
    await venue.submit(buy("w-1", tif=TimeInForce.GTC, limit="0.30", qty=5))
    vid = ex.venue_ids["w-1"]
    first = exchange.engine.fill_resting(vid, 1)
    booked = [i for i in await ex._poll() if isinstance(i, Fill)]
    assert [f.fill_id for f in booked] == [first["trade_id"]]
    await ex._poll()
    newest = first["ts"]
    assert fills_min_ts(exchange) == newest - FILL_OVERLAP_S - int(GIVE_UP_S) > 0, \
        "the fills poll's min_ts did not move forward behind the newest fill"
    same = exchange.engine.fill_resting(vid, 1)
    restamp(same, newest)  # the same second as the newest seen
    late = exchange.engine.fill_resting(vid, 1)
    restamp(late, newest - FILL_OVERLAP_S // 2)  # listed late: a venue delay
    got = [i.fill_id for i in await ex._poll() if isinstance(i, Fill)]
    got += [i.fill_id for i in await ex._poll() if isinstance(i, Fill)]
    assert sorted(got) == sorted([same["trade_id"], late["trade_id"]])
    assert fills_min_ts(exchange) <= newest - FILL_OVERLAP_S  # never past the overlap


async def test_a_fill_stamped_in_the_future_does_not_push_the_window_past_now(
        exchange, venue) -> None:
    """A fill stamped a day ahead (a venue clock gone wrong) moves ``min_ts`` no further
    than this machine's now less the overlap: real fills stamped now are still read."""
    ex = venue.execution
    await venue.submit(buy("fut-1", tif=TimeInForce.GTC, limit="0.30", qty=3))
    odd = exchange.engine.fill_resting(ex.venue_ids["fut-1"], 1)
    restamp(odd, int(time.time()) + 86_400)
    await ex._poll()
    await ex._poll()
    assert fills_min_ts(exchange) <= int(time.time()) - FILL_OVERLAP_S
    now_fill = exchange.engine.fill_resting(ex.venue_ids["fut-1"], 1)
    assert [i.fill_id for i in await ex._poll() if isinstance(i, Fill)] == \
        [now_fill["trade_id"]]


async def test_a_restart_starts_the_window_an_overlap_before_the_ledgers_newest_fill(
        exchange, local_settings) -> None:
    """After a restart ``min_ts`` was the ledger's newest fill less 60 s: a fill listed
    late, stamped two minutes before it, was never booked.  Now the overlap applies; the
    fills the ledger holds are not reported again."""
    order = buy("rs-1", tif=TimeInForce.GTC, limit="0.30", qty=4)
    first = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=GIVE_UP_S))
    try:
        await first.submit(order)
        vid = first.execution.venue_ids["rs-1"]
    finally:
        await first.close()
    booked = exchange.engine.fill_resting(vid, 1)
    late = exchange.engine.fill_resting(vid, 1)
    restamp(late, booked["ts"] - 120)  # Kalshi lists it only now
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=GIVE_UP_S))
    try:
        venue.resume(VenueResume(
            orders=(KnownOrder(order, vid, D(1)),), fill_ids={booked["trade_id"]: "rs-1"},
            newest_fill_ts_ns=booked["ts"] * 10**9))
        got = [i.fill_id for i in await venue.execution._poll() if isinstance(i, Fill)]
        assert got == [late["trade_id"]], "the late fill was missed (or a booked one "\
            "reported again) after the restart"
    finally:
        await venue.close()


# -- 2. the historical tier ------------------------------------------------------------
async def test_a_lost_answer_finds_an_order_moved_to_historical_orders(exchange,
                                                                      venue) -> None:
    """The order executed and Kalshi archived it (canceled / executed before the
    cutoff): the live list no longer holds it.  The look-up asks ``GET
    /historical/cutoff`` and reads ``GET /historical/orders``: found, acknowledged, never
    sent again (before: ``OrderUnknown``, then "never placed" for a filled order)."""
    exchange.rest.orders_cutoff_s = time.time() + 3600  # every ended order is archived
    exchange.rest.inject("POST /portfolio/orders", Fault("lost"))
    assert await venue.submit(buy("hist-1")) == []
    (placed,) = exchange.engine.by_client_id(wire_client_id("hist-1"))
    assert placed["status"] == "executed"
    assert venue.execution.venue_ids["hist-1"] == placed["order_id"]
    assert any(r.path.endswith("/historical/orders") for r in exchange.rest.requests)
    assert sum(r.method == "POST" for r in exchange.rest.requests) == 1


async def test_lookup_after_a_long_outage_finds_an_archived_order(exchange,
                                                                  local_settings) -> None:
    """A restart's ``lookup`` of an order older than ``order_give_up_s`` that Kalshi
    archived: OPEN with its venue id (before: CANCELLED, "no order with this client order
    id", while it had filled)."""
    born = time.time_ns() - 7200 * 10**9
    sender = KalshiVenue(local_settings(ws_fills=False))
    try:
        await sender.submit(buy("old-1", ts_ns=born))
    finally:
        await sender.close()
    exchange.rest.orders_cutoff_s = time.time() + 3600
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=GIVE_UP_S))
    try:
        found = await venue.lookup(buy("old-1", ts_ns=born))
    finally:
        await venue.close()
    (placed,) = exchange.engine.by_client_id("old-1")
    assert found is not None and found.status is OrderStatus.OPEN
    assert found.venue_order_id == placed["order_id"]


async def test_a_working_order_archived_between_polls_is_seen_ended(exchange,
                                                                    venue) -> None:
    """A resting order filled and archived before the next poll: ``GET
    /portfolio/orders/{id}`` answers 404; it is found in ``/historical/orders``, ended,
    no longer followed (before: followed, 404 after 404, then dropped unseen)."""
    ex = venue.execution
    await venue.submit(buy("arc-1", tif=TimeInForce.GTC, limit="0.30", qty=1))
    exchange.rest.orders_cutoff_s = time.time() + 3600
    exchange.engine.fill_resting(ex.venue_ids["arc-1"], 1)
    items = await ex._poll()
    assert "arc-1" not in ex.working
    assert [i.quantity for i in items if isinstance(i, Fill)] == [D(1)]


# -- 3. a burst of ended orders, a shifting list ---------------------------------------
async def test_one_poll_sees_every_order_of_a_burst_that_ended_while_the_list_shifts(
        exchange, venue) -> None:
    """25 resting orders of ours are cancelled at Kalshi between two polls (a person, a
    market closing), and one more leaves the resting list between the poll's page reads
    (the newest-first list shifts, hiding an order of the next page): one poll reports
    every one CANCELLED (before: 20 a poll)."""
    ex = venue.execution
    exchange.rest.page_size = 5
    coids = [f"b-{i:02d}" for i in range(30)]
    for coid in coids:
        await venue.submit(buy(coid, tif=TimeInForce.GTC, limit="0.30", qty=1))
    ended, later = coids[:25], coids[29]  # b-29 is the newest: on the first page
    for coid in ended:
        exchange.engine.cancel(ex.venue_ids[coid])
    resting_reads = 0

    def cancel_between_pages(req: Any) -> None:
        nonlocal resting_reads
        if req.path.endswith("/portfolio/orders") and req.query.get("status") == "resting":
            resting_reads += 1
            if resting_reads == 1:
                exchange.engine.cancel(ex.venue_ids[later])

    exchange.rest.after_page = cancel_between_pages
    updates = [i for i in await ex._poll() if isinstance(i, OrderUpdate)]
    cancelled = {u.client_order_id for u in updates if u.status is OrderStatus.CANCELLED}
    assert cancelled == {*ended, later}, f"missing: {sorted({*ended, later} - cancelled)}"
    assert set(ex.working) == set(coids[25:29])
