"""The order path's fault matrix: the classes the other fault tests left out.

Most classes are scripted elsewhere (``test_kraken_exactly_once.py``,
``test_heldout_faults.py``, ``test_heldout_ratelimit.py``, ``test_heldout_fills.py``,
``test_heldout_answers_backfill.py``, ``test_redteam_order_path.py`` and the seeded
campaigns); this file adds:

* a body no client can decode (labelled ``Content-Encoding: gzip`` though it is not: a
  proxy that mislabels) on AddOrder after Kraken acted, on the look-up, on CancelOrder
  and on the executions backfill (TradesHistory) -- it used to escape as a bare
  ``httpx.DecodingError`` naming no venue or order (the AddOrder unresolved; the
  executions stream ended for good);
* 500 / 502 / 504 after acting (``"lost"`` is the 503): found, never sent twice;
* a ``Retry-After`` larger than any sane limit.

Each checks: at most one order at the exchange per client id, the right txid, every
error naming Kraken and the order.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from argus_venue_kraken.execution import cl_ord_id_for
from argus_venue_kraken.ratelimit import RETRY_AFTER_MAX_S
from argus_venue_kraken.rest import retry_after_s
from argus_venue_kraken.testing import AwaitSubscribe, LocalKrakenWs, Send
from argus_venue_kraken.venue import KrakenVenue
from kraken_orders import held, market, resting
from test_heldout_answers_backfill import TOKEN, _th, good_frame, order, trade

from argus_core.errors import VenueError
from argus_core.models import Fill

GZIP_AFTER = ("lost_gzip", None)


# -- a body no client can decode ----------------------------------------------------------
@pytest.mark.parametrize("make_order", [market, resting], ids=["market", "resting"])
async def test_an_undecodable_add_order_answer_after_acting_is_looked_up(
        exchange, make_venue, make_order) -> None:
    """Kraken placed the order; its 200 is labelled gzip but is not.  Before: the bare
    ``httpx.DecodingError`` ("Error -3 while decompressing data") escaped ``submit``,
    naming neither Kraken nor the order, and nothing looked the order up.  Now it is an
    unreadable answer: found by ``cl_ord_id``, sent once."""
    venue = make_venue()
    exchange.inject("AddOrder", GZIP_AFTER)
    txid = await venue.execution.submit(make_order("argus-gz1"))
    assert list(held(exchange, "argus-gz1")) == [txid]
    assert len(exchange.calls("AddOrder")) == 1 and venue.execution.ambiguous == 1


async def test_an_undecodable_5xx_before_acting_keeps_its_status(exchange, make_venue) -> None:
    """A 503 whose body cannot be decoded is still a 503 (the status is read first):
    proven absent by the look-ups, then sent once more; one order."""
    venue = make_venue()
    exchange.inject("AddOrder", ("gzip", 503))
    txid = await venue.execution.submit(market("argus-gz2"))
    assert list(held(exchange, "argus-gz2")) == [txid]
    assert len(exchange.calls("AddOrder")) == 2


async def test_an_undecodable_lookup_is_asked_again(exchange, make_venue) -> None:
    venue = make_venue()
    exchange.inject("AddOrder", ("lost", None))
    exchange.inject("OpenOrders", ("gzip", 200))
    txid = await venue.execution.submit(resting("argus-gz3"))
    assert list(held(exchange, "argus-gz3")) == [txid]
    assert len(exchange.calls("AddOrder")) == 1


async def test_an_undecodable_cancel_answer_is_settled_by_the_look_up(exchange,
                                                                      make_venue) -> None:
    venue = make_venue()
    txid = await venue.execution.submit(resting("argus-gz4"))
    exchange.inject("CancelOrder", GZIP_AFTER)
    await venue.cancel("argus-gz4")
    assert exchange.closed[txid]["status"] == "canceled"
    assert cl_ord_id_for("argus-gz4") not in venue.execution.resting


async def test_an_undecodable_backfill_is_read_again_not_the_end_of_the_stream(
        exchange, make_settings, resume_of) -> None:
    """The executions backfill (TradesHistory) meets a body it cannot decode: read again
    (a read-only call), the stream lives, the history trade and the socket's trade are
    each booked once.  Before: the stream ended ("Kraken executions failed:
    DecodingError"), and no fill of the run was booked again."""
    exchange.inject("TradesHistory", ("gzip", 200), _th(trade()))
    session = [AwaitSubscribe("executions"), Send(good_frame())]
    got: list[object] = []
    async with LocalKrakenWs([session] * 3, token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        venue.resume(resume_of([order()], venue_order_ids={order().client_order_id:
                                                           "OQCLML-BW3P3-BUCMWZ"}))
        try:
            async with contextlib.aclosing(venue.executions()) as it:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3.0):
                        while len([f for f in got if isinstance(f, Fill)]) < 2:
                            got.append(await anext(it))
        finally:
            await venue.close()
    fills = [f for f in got if isinstance(f, Fill)]
    assert len(fills) == 2 and len({f.fill_id for f in fills}) == 2, got


# -- 5xx after acting ------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_5xx_after_acting_is_found_not_resent(exchange, make_venue, status) -> None:
    venue = make_venue()
    exchange.inject("AddOrder", ("lost_status", status))
    txid = await venue.execution.submit(market("argus-5x"))
    assert list(held(exchange, "argus-5x")) == [txid]
    assert len(exchange.calls("AddOrder")) == 1 and venue.execution.resent == 0


# -- a Retry-After past any sane limit -------------------------------------------------------
@pytest.mark.parametrize("value", ["99999999999", "1e30", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_insane_retry_after_is_capped(value: str) -> None:
    assert retry_after_s(value) == RETRY_AFTER_MAX_S


@pytest.mark.parametrize("value", ["1e999", "nan", "-5", "Fri, 31 Dec 99999 23:59:59 GMT"])
def test_an_unreadable_retry_after_is_none(value: str) -> None:
    assert retry_after_s(value) == 0.0


async def test_a_huge_retry_after_on_add_order_refuses_unsent_naming_the_order(
        exchange, make_venue) -> None:
    venue = make_venue()
    exchange.inject("AddOrder", ("retry_after", "1000000000000"))
    with pytest.raises(VenueError, match="argus-rx1") as info:
        await venue.execution.submit(market("argus-rx1"))
    assert "Kraken" in str(info.value) and held(exchange, "argus-rx1") == {}
    assert 0 < venue.rest.rest_limiter.held_for() <= RETRY_AFTER_MAX_S
    with pytest.raises(VenueError, match="argus-rx2"):
        await venue.execution.submit(market("argus-rx2"))
    assert len(exchange.calls("AddOrder")) == 1
