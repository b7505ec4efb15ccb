"""A cancel whose answer is unusable is sent again (``DELETE /order`` is idempotent), never
left ambiguous: :mod:`argus_venue_polymarket.cancelling` against the local CLOB.

Before, one unusable answer (a 5xx not acted on, a 429, a reset, a timeout) ended the
cancel ``cancel_failed`` while the order stayed LIVE at the CLOB and the strategy believed
it gone (the maker campaign's orphan, seeds 5 and 9).  Each guard of the re-send is pinned
with an input it stops and one that gets past it: the kind of answer (a 4xx refusal stops,
a 5xx / 429 / lost answer is sent again), the look-up (CANCELED / MATCHED / gone stop,
LIVE and "could not ask" send again), the attempt budget, and ``WAIT_CAP_S`` (a
``Retry-After`` of 1 s is waited, 6 s and 120 s stop at once).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from argus_venue_polymarket.cancelling import CancelAnswer, cancel_answer
from argus_venue_polymarket.clob import WAIT_CAP_S
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import LocalClob, make_book
from py_clob_client_v2.exceptions import PolyApiException

from argus_core.errors import VenueError
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
INTERVAL_S = 0.05  # order_lookup_interval_s: the back-off's first step
DELETE = ("DELETE", "/order")


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    """A local CLOB: bids 150 @ 0.60, asks 150 @ 0.64 (negRisk, tick 0.01)."""
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
                               "order_lookup_interval_s": INTERVAL_S,
                               "heartbeat_interval_s": 0.1, "order_max_attempts": 3}
    settings = PolymarketSettings(
        clob_url=url, private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
        api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
        user_channel=False, **(timings | overrides))
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    inst = Instrument("polymarket", TOKEN_A, kind="binary", tick_size="0.01",
                      lot_size="0.01", min_size="5", meta=meta)
    return PolymarketExecution(settings, {f"polymarket:{TOKEN_A}": inst}.get)


async def _resting(ex: PolymarketExecution) -> str:
    """A GTC buy of 100 @ 0.50 resting at the CLOB; its venue order id."""
    await ex.submit(Order("gtc", "polymarket", f"polymarket:{TOKEN_A}", Side.BUY, "100",
                          "0.50", OrderType.LIMIT, TimeInForce.GTC))
    ex._reports.clear()
    return ex.venue_ids["gtc"]


def _fault(local: LocalClob, route: str, *answers: tuple[str, Any]) -> None:
    local.read_faults.setdefault(route, deque()).extend(answers)


def _on_request(local: LocalClob, hook: Callable[[str, str], None]) -> list[tuple[str, float]]:
    """Run ``hook(method, path)`` after each request the CLOB answered (before the answer
    leaves); returns the log of ``(method path, monotonic time)`` of every request."""
    arrived: list[tuple[str, float]] = []
    plain = local.handle

    def handle(method: str, path: str, *args: Any) -> Any:
        arrived.append((f"{method} {path}", time.monotonic()))
        answer = plain(method, path, *args)
        hook(method, path)
        return answer

    local.handle = handle  # type: ignore[method-assign]  # the test's spy on the CLOB
    return arrived


async def _cancel(ex: PolymarketExecution) -> None:
    """``ex.cancel("gtc")``, which must end on its own (no hang) well within 30 s."""
    async with asyncio.timeout(30):
        await ex.cancel("gtc")


async def _reported(ex: PolymarketExecution) -> tuple[Decimal, list[OrderUpdate]]:
    """What the core would be told: fills (de-duplicated by fill id) and updates."""
    items: list[Fill | OrderUpdate] = [*ex._reports]
    ex._reports.clear()
    items += await ex.poll_trades(0)
    items += await ex.poll_trades(0)
    items += await ex.poll_ended()
    items += list(ex._reports)
    ex._reports.clear()
    fills = {i.fill_id: i.quantity for i in items if isinstance(i, Fill)}
    return sum(fills.values(), Decimal(0)), [i for i in items if isinstance(i, OrderUpdate)]


# -- the answer: which are sent again ------------------------------------------------------
@pytest.mark.parametrize("fault", [("status", 500), ("status", 502), ("status", 503),
                                   ("status", 504), ("status", 429), ("garbled", None),
                                   ("json", "ok"), ("json", {"canceled": []})],
                         ids=["500", "502", "503", "504", "429-no-retry-after", "garbled",
                              "not-an-object", "not-listed"])
async def test_an_unusable_answer_the_venue_did_not_act_on_is_sent_again(
        clob: tuple[SnapshotServer, LocalClob], fault: tuple[str, Any]) -> None:
    """500 (or any unusable answer, not acted on), then a plain 200: confirmed by the
    second send.  Before: ``VenueError`` after the first, the order LIVE at the CLOB."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", fault)
    await _cancel(ex)
    assert local.orders[vid]["status"] == "CANCELED"
    assert local.count(*DELETE) == 2 and local.count("GET", f"/data/order/{vid}") == 1
    filled, updates = await _reported(ex)
    assert filled == 0 and [u.status for u in updates] == [OrderStatus.CANCELLED]
    await ex.close()


@pytest.mark.parametrize("code", [400, 401, 403, 404])
async def test_a_4xx_refusal_is_not_sent_again(clob: tuple[SnapshotServer, LocalClob],
                                               code: int) -> None:
    """The guard's other side: a 4xx other than 429 is the venue's answer (refused), not
    an unusable one: ``VenueError`` at once, one send, no look-up."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", ("status", code))
    with pytest.raises(VenueError, match=f"gtc.*refused: HTTP {code}"):
        await _cancel(ex)
    assert local.count(*DELETE) == 1 and local.count("GET", f"/data/order/{vid}") == 0
    assert local.orders[vid]["status"] == "LIVE" and "gtc" not in ex._ending
    await ex.close()


async def test_a_timeout_with_the_venue_acting_late_is_sent_again_and_cancels_once(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The first DELETE is acted on only after the client's timeout: the look-up shows the
    order LIVE, so the DELETE goes again and is confirmed; the late one then finds it
    cancelled already (idempotent: nothing more happens)."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", ("late", TIMEOUT_S * 2.5))
    await _cancel(ex)
    assert local.orders[vid]["status"] == "CANCELED" and local.count(*DELETE) == 2
    await asyncio.sleep(TIMEOUT_S * 2.5)  # the late DELETE acts now: not_canceled
    events = [e for e in local.user_events if e.get("type") == "CANCELLATION"]
    assert len(events) == 1
    _, updates = await _reported(ex)
    assert [u.status for u in updates] == [OrderStatus.CANCELLED]
    await ex.close()


# -- the budget ----------------------------------------------------------------------------
@pytest.mark.parametrize("failures", [2, 3], ids=["attempts-1", "attempts"])
async def test_the_attempt_budget(clob: tuple[SnapshotServer, LocalClob],
                                  failures: int) -> None:
    """``order_max_attempts`` = 3: two 500s then a 200 is confirmed on the third send;
    three 500s end ``VenueError`` (the core records ``cancel_failed`` and owes the cancel)
    after exactly 3 sends, each re-send after the back-off (0.05 s, then 0.1 s), no hang."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    arrived = _on_request(local, lambda m, p: None)
    _fault(local, "DELETE /order", *[("status", 500)] * failures)
    if failures == 3:
        with pytest.raises(VenueError, match=r"gtc.*not confirmed after 3 sends.*500.*LIVE"):
            await _cancel(ex)
        assert local.orders[vid]["status"] == "LIVE"
        assert "gtc" not in ex._ending and ex.watched["gtc"] == vid
    else:
        await _cancel(ex)
        assert local.orders[vid]["status"] == "CANCELED"
    sends = [t for k, t in arrived if k == "DELETE /order"]
    assert len(sends) == 3
    for k, (a, b) in enumerate(itertools.pairwise(sends)):
        assert b - a >= INTERVAL_S * 2 ** k  # a lower bound: never sooner than the back-off
    await ex.close()


# -- the look-up before a re-send ------------------------------------------------------------
@pytest.mark.parametrize("fault", [("act_reset", None), ("act_status", 500),
                                   ("act_status", 503), ("act_garbled", None)],
                         ids=["reset", "500", "503", "garbled"])
async def test_a_lost_answer_after_the_clob_cancelled_is_confirmed_by_the_lookup(
        clob: tuple[SnapshotServer, LocalClob], fault: tuple[str, Any]) -> None:
    """The CLOB cancels, then its answer is lost: the look-up shows CANCELED: confirmed,
    one DELETE acted on, none sent again."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", fault)
    await _cancel(ex)
    assert local.orders[vid]["status"] == "CANCELED" and local.count(*DELETE) == 1
    _, updates = await _reported(ex)
    assert [u.status for u in updates] == [OrderStatus.CANCELLED]
    await ex.close()


async def test_a_fill_between_the_500_and_the_lookup_is_reported_as_the_fill(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """Another account takes the whole order between the 500 and the look-up: the look-up
    shows MATCHED, so no re-send and no cancel: ``VenueError`` saying it filled; the fill
    is booked once, and nothing says CANCELLED."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", ("status", 500))
    _on_request(local, lambda m, p: local.fill_resting(vid, "100")
                if (m, p) == DELETE and local.orders[vid]["status"] == "LIVE" else None)
    with pytest.raises(VenueError, match=r"gtc.*filled before the cancel.*MATCHED"):
        await _cancel(ex)
    assert local.count(*DELETE) == 1 and "gtc" not in ex._ending
    filled, updates = await _reported(ex)
    assert filled == Decimal(100)
    assert not any(u.status is OrderStatus.CANCELLED for u in updates)
    await ex.close()


async def test_a_partial_fill_between_the_500_and_the_lookup_then_the_cancel(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """40 of 100 trade between the 500 and the look-up: still LIVE, so the DELETE goes
    again and is confirmed; the 40 are booked once, then CANCELLED "40 of 100 matched"."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", ("status", 500))
    done: list[bool] = []

    def fill_once(method: str, path: str) -> None:
        if (method, path) == DELETE and not done:
            done.append(True)
            local.fill_resting(vid, "40")

    _on_request(local, fill_once)
    await _cancel(ex)
    assert local.count(*DELETE) == 2 and local.orders[vid]["status"] == "CANCELED"
    filled, updates = await _reported(ex)
    assert filled == Decimal(40)
    assert [u.status for u in updates] == [OrderStatus.CANCELLED]
    assert "40" in updates[0].reason and "100" in updates[0].reason
    await ex.close()


@pytest.mark.parametrize(("lookup", "match"), [
    (("status", 404), "no longer holds it"),
    (("json", {}), "no longer holds it"),
    (("json", {"id": "x", "status": "INVALID"}), "invalidated"),
], ids=["404", "empty", "invalid"])
async def test_an_order_gone_from_the_venue_stops_the_resend(
        clob: tuple[SnapshotServer, LocalClob], lookup: tuple[str, Any], match: str) -> None:
    """After a 500 the look-up says the venue no longer holds the order (or invalidated
    it): nothing left to cancel, and no proof it was cancelled: ``VenueError``, one send
    (``executions()`` reports how it ended)."""
    srv, local = clob
    ex = _exec(srv.url)
    await _resting(ex)
    _fault(local, "DELETE /order", ("status", 500))
    _fault(local, "GET /data/order", lookup)
    with pytest.raises(VenueError, match=f"gtc.*{match}"):
        await _cancel(ex)
    assert local.count(*DELETE) == 1
    await ex.close()


@pytest.mark.parametrize("lookup", [("status", 503), ("status", 429), ("garbled", None)],
                         ids=["503", "429", "garbled"])
async def test_a_lookup_that_cannot_answer_does_not_stop_the_resend(
        clob: tuple[SnapshotServer, LocalClob], lookup: tuple[str, Any]) -> None:
    """The look-up's other side: a look-up that cannot answer is no reason to stop (a
    re-sent DELETE is harmless): sent again, confirmed."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", ("status", 500))
    _fault(local, "GET /data/order", lookup)
    await _cancel(ex)
    assert local.count(*DELETE) == 2 and local.orders[vid]["status"] == "CANCELED"
    await ex.close()


# -- 429 and WAIT_CAP_S ------------------------------------------------------------------------
async def test_a_429_with_retry_after_1_is_waited_then_sent_again(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """Retry-After 1 s (within ``WAIT_CAP_S``): the re-send waits the second, then is
    confirmed."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    arrived = _on_request(local, lambda m, p: None)
    _fault(local, "DELETE /order", ("rate_limited", "1"))
    await _cancel(ex)
    sends = [t for k, t in arrived if k == "DELETE /order"]
    assert len(sends) == 2 and sends[1] - sends[0] >= 0.95  # never sooner than asked
    assert local.orders[vid]["status"] == "CANCELED"
    await ex.close()


@pytest.mark.parametrize("seconds", [WAIT_CAP_S + 1, 120])
async def test_a_429_with_retry_after_over_the_cap_fails_at_once(
        clob: tuple[SnapshotServer, LocalClob], seconds: float) -> None:
    """Retry-After over ``WAIT_CAP_S``: not waited for (the engine's cancel of a kill is
    asked again 2 s later): ``VenueError`` at once, one send, no look-up; a cancel asked
    again before the wait ends is refused unsent (the venue hears nothing)."""
    srv, local = clob
    ex = _exec(srv.url)
    vid = await _resting(ex)
    _fault(local, "DELETE /order", ("rate_limited", f"{seconds:g}"))
    with pytest.raises(VenueError, match=f"gtc.*rate limited for another {seconds:.0f}s"):
        await _cancel(ex)
    assert local.count(*DELETE) == 1 and local.count("GET", f"/data/order/{vid}") == 0
    with pytest.raises(VenueError, match=r"gtc.*not sent"):
        await _cancel(ex)
    assert local.count(*DELETE) == 1 and local.orders[vid]["status"] == "LIVE"
    await ex.close()


# -- the classification alone ---------------------------------------------------------------
def test_cancel_answers_are_classified() -> None:
    vid = "0xAB"
    assert cancel_answer(vid, {"canceled": ["0xab"], "not_canceled": {}}).confirmed
    assert cancel_answer(vid, {"canceled": [], "not_canceled": {vid: "matched"}}).refused
    other = cancel_answer(vid, {"canceled": ["0xcd"]})
    assert not other.confirmed and not other.refused and "does not list it" in other.problem
    assert cancel_answer(vid, "ok") == CancelAnswer(
        problem="an answer that does not list it cancelled ('ok')")
    refused = PolyApiException(error_msg="bad")
    refused.status_code = 400
    assert cancel_answer(vid, exc=refused).refused == "HTTP 400 bad"
    unusable = PolyApiException(error_msg="down")
    unusable.status_code = 503
    assert cancel_answer(vid, exc=unusable).problem and not cancel_answer(
        vid, exc=unusable).refused
    assert cancel_answer(vid, exc=RuntimeError("boom")).problem.endswith(
        "(RuntimeError: boom)")
