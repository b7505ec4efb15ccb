"""A market that resolved before the stream (re)started is settled at its start.

Before, ``PolymarketVenue.stream()`` settled only what the websocket (``market_resolved``,
sent to subscribers of tradeable markets) or the Gamma poll (tradeable markets only) said:
a discovered market already closed and resolved at start got no ``Settlement``, and a held
market whose event closed was not even discovered.  A position in either (a run stopped
before the resolution and started again after it) stayed on the books at its last mark.
Now discovery's closed, resolved markets and the held markets Gamma lists as closed settle
first, stamped with Gamma's ``closedTime``; closed markets not resolved settle nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.resolved import held_positions, settle_closed
from argus_venue_polymarket.schemas import GammaMarket
from argus_venue_polymarket.testing import make_book, tokens_of
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.models import Event, OrderBook, Settlement

CLOSED_AT = "2026-09-17T18:30:05Z"
CLOSED_AT_NS = 1_789_669_805_000_000_000


def _pid(token: str) -> str:
    return f"polymarket:{token}"


def _resolve(market: dict[str, Any], prices: list[str], status: str = "resolved",
             closed_time: str | None = CLOSED_AT) -> None:
    """``market`` (a Gamma payload, in place) closed with ``prices`` and UMA ``status``."""
    market.update(closed=True, acceptingOrders=False, umaResolutionStatus=status,
                  outcomePrices=json.dumps(prices))
    if closed_time is not None:
        market["closedTime"] = closed_time


@pytest.fixture
def serve(fed_event: dict[str, Any]) -> Iterator[Any]:
    """``serve(events, **kw)``: a snapshot server (REST and websocket) with the Fed books."""
    books = [make_book(t, cond, [("0.40", "10")], [("0.45", "10")])
             for cond, yes, no in tokens_of(fed_event) for t in (yes, no)]
    started: list[SnapshotServer] = []

    def make(events: list[dict[str, Any]], **kw: Any) -> SnapshotServer:
        srv = SnapshotServer(events, books, ws_port=0, **kw).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def _venue(srv: SnapshotServer, **settings: Any) -> PolymarketVenue:
    return PolymarketVenue(PolymarketSettings(gamma_url=srv.url, clob_url=srv.url,
                                              ws_url=srv.ws_url, **settings))


async def _collect(venue: PolymarketVenue, until: Any = None, *, close: bool = True
                   ) -> list[Any]:
    """The stream's events to its end (or until ``until(seen)``)."""
    seen: list[Any] = []
    try:
        async with asyncio.timeout(20):  # no hang: each stream ends well before
            async for ev in venue.stream():
                seen.append(ev)
                if until is not None and until(seen):
                    break
    finally:
        if close:
            await venue.close()
    return seen


def _books(seen: list[Any]) -> int:
    return sum(isinstance(e, OrderBook) for e in seen)


def _settlements(seen: list[Any]) -> dict[str, tuple[Decimal | None, int]]:
    """instrument id -> (price, stamp); each instrument at most once (asserted)."""
    out = [e for e in seen if isinstance(e, Settlement)]
    got = {s.instrument_id: (s.price, s.ts_ns) for s in out}
    assert len(got) == len(out), "an instrument settled twice"
    return got


# --- discovered markets ---------------------------------------------------------------------

async def test_a_resolved_market_settles_before_the_open_markets_books(
        serve: Any, fed_event: dict[str, Any]) -> None:
    """Market 0 of the Fed event closed and resolved YES before the start, the other four
    are open: its two settlements (1 and 0, stamped at its ``closedTime``) come after the
    event and before any book; its tokens are not subscribed."""
    event = copy.deepcopy(fed_event)
    _resolve(event["markets"][0], ["1", "0"])
    srv = serve([event])
    seen = await _collect(_venue(srv, settlement_poll_s=0), lambda s: _books(s) >= 8)
    _cond, yes, no = tokens_of(fed_event)[0]
    assert _settlements(seen) == {_pid(yes): (1, CLOSED_AT_NS), _pid(no): (0, CLOSED_AT_NS)}
    kinds = [type(e) for e in seen]
    assert kinds[0] is Event and kinds[1:3] == [Settlement, Settlement]
    assert all(k is OrderBook for k in kinds[3:])
    assert {e.instrument_id for e in seen if isinstance(e, OrderBook)}.isdisjoint(
        {_pid(yes), _pid(no)})


async def test_a_stream_of_only_resolved_markets_settles_them_then_ends(
        serve: Any, fed_event: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Every market closed and resolved (the event still listed): ten settlements (a 50-50
    pays 0.5 per token; a market without ``closedTime`` is stamped now), then the end; no
    websocket connection is opened."""
    caplog.set_level(logging.INFO)
    event = copy.deepcopy(fed_event)
    for i, market in enumerate(event["markets"]):
        _resolve(market, ["1", "0"] if i == 2 else ["0", "1"])
    _resolve(event["markets"][3], ["0.5", "0.5"])
    del event["markets"][3]["closedTime"]
    srv = serve([event])
    before = time.time_ns()
    seen = await _collect(_venue(srv, settlement_poll_s=0.05))
    after = time.time_ns()
    got = _settlements(seen)
    assert [type(e) for e in seen] == [Event] + [Settlement] * 10
    tokens = tokens_of(fed_event)
    assert {iid: price for iid, (price, _ts) in got.items()} == {
        **{_pid(yes): Decimal(1 if i == 2 else 0) for i, (_c, yes, _n) in enumerate(tokens)},
        **{_pid(no): Decimal(0 if i == 2 else 1) for i, (_c, _y, no) in enumerate(tokens)},
        _pid(tokens[3][1]): Decimal("0.5"), _pid(tokens[3][2]): Decimal("0.5")}
    fifty = {_pid(tokens[3][1]), _pid(tokens[3][2])}
    assert all(before <= ts <= after for iid, (_p, ts) in got.items() if iid in fifty)
    assert all(ts == CLOSED_AT_NS for iid, (_p, ts) in got.items() if iid not in fifty)
    assert srv.ws_messages == []
    assert "the stream ends" in caplog.text
    assert not [q for _m, p, q in srv.requests if p == "/markets"]  # nothing held: no look-up


async def test_a_closed_market_not_resolved_yields_no_settlement(
        serve: Any, fed_event: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Closed but disputed (final-looking prices), closed with UMA's answer only proposed
    (trading prices): no settlement, each said in the log, and (held by nobody) not polled;
    the three open markets stream.  The guard's other side is the resolved market above."""
    caplog.set_level(logging.INFO)
    event = copy.deepcopy(fed_event)
    _resolve(event["markets"][0], ["1", "0"], status="disputed")
    _resolve(event["markets"][1], ["0.9995", "0.0005"], status="proposed")
    srv = serve([event])
    venue = _venue(srv, settlement_poll_s=0.05)
    seen: list[Any] = []

    async def consume() -> None:
        async for ev in venue.stream():
            seen.append(ev)

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(15):  # the books, and the poll of the open markets
            while _books(seen) < 6 or not any(p == "/markets" for _m, p, _q in srv.requests):
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await venue.close()
    assert _settlements(seen) == {}
    assert caplog.text.count("is closed but not resolved") == 2
    assert "'disputed'" in caplog.text and "'proposed'" in caplog.text
    assert "this run holds it" not in caplog.text
    tokens = tokens_of(fed_event)
    asked = {c for _m, p, q in srv.requests if p == "/markets" for c in q["condition_ids"]}
    assert asked == {cond for cond, _y, _n in tokens[2:]}


async def test_a_market_settled_at_start_is_not_settled_again_by_the_websocket(
        serve: Any, fed_event: dict[str, Any]) -> None:
    """The same resolution from Gamma (at start) and the websocket (a ``market_resolved``
    frame for it later): yielded once.  A frame for an open market still settles it
    (the guard lets a first resolution through)."""
    event = copy.deepcopy(fed_event)
    _resolve(event["markets"][0], ["1", "0"])
    srv = serve([event])
    tokens = tokens_of(fed_event)
    venue = _venue(srv, settlement_poll_s=0)
    seen: list[Any] = []

    def frame(i: int) -> dict[str, Any]:
        cond, yes, no = tokens[i]
        return {"event_type": "market_resolved", "market": cond, "assets_ids": [yes, no],
                "winning_asset_id": yes, "winning_outcome": "Yes",
                "timestamp": "1789670000000"}

    try:
        async with asyncio.timeout(20):
            async for ev in venue.stream():
                seen.append(ev)
                if _books(seen) == 8 and isinstance(ev, OrderBook):
                    srv.push([frame(0), frame(1)])  # one frame, in order: 0 then 1
                if _pid(tokens[1][2]) in _settlements(seen):
                    break
    finally:
        await venue.close()
    got = _settlements(seen)
    assert got[_pid(tokens[0][1])] == (1, CLOSED_AT_NS)  # Gamma's, not the frame's
    assert got[_pid(tokens[1][1])] == (1, 1_789_670_000_000_000_000)
    assert len(got) == 4


async def test_a_stream_started_again_does_not_settle_again(
        serve: Any, fed_event: dict[str, Any]) -> None:
    """A second stream of the same venue, after discovery ran again: nothing settles twice."""
    event = copy.deepcopy(fed_event)
    for market in event["markets"]:
        _resolve(market, ["0", "1"])
    srv = serve([event])
    venue = _venue(srv, settlement_poll_s=0)
    first = await _collect(venue, close=False)
    await venue.discover()
    second = await _collect(venue)
    assert len(_settlements(first)) == 10
    assert [type(e) for e in second] == [Event]


async def test_a_config_naming_closed_events_settles_them(
        serve: Any, fed_event: dict[str, Any]) -> None:
    """Discovery lists open events (``closed=false``); a config that names closed events
    (``event_filters = {closed = "true"}``, with an id or slug in real use) discovers the
    closed Fed event, whose five resolved markets settle, and the stream ends.  Without
    the filter (the guard) the same server lists nothing."""
    prices = {str(m["id"]): ["0", "1"] for m in fed_event["markets"]}
    srv = serve([fed_event], resolutions={"timestamp": "1789669805000",
                                          "outcome_prices": prices})
    srv.resolve()
    assert await _collect(_venue(srv, settlement_poll_s=0)) == []
    seen = await _collect(_venue(srv, settlement_poll_s=0, event_filters={"closed": "true"}))
    assert [type(e) for e in seen] == [Event] + [Settlement] * 10
    assert seen[0].closed
    assert {ts for _p, ts in _settlements(seen).values()} == {CLOSED_AT_NS}


# --- held markets -----------------------------------------------------------------------------

async def test_a_held_market_whose_event_closed_is_looked_up_and_settled(
        serve: Any, fed_event: dict[str, Any]) -> None:
    """The run holds YES of market 0; every Fed market resolved, so the event is closed and
    discovery lists nothing: the held token is asked for (``clob_token_ids``, closed), its
    market settles (stamped at the resolution), its instruments become known (redemption
    needs the condition), and the stream ends."""
    tokens = tokens_of(fed_event)
    prices = {str(m["id"]): ["0", "1"] for m in fed_event["markets"]}
    prices[str(fed_event["markets"][0]["id"])] = ["1", "0"]
    srv = serve([fed_event], resolutions={"timestamp": "1789669805000",
                                          "outcome_prices": prices})
    srv.resolve()
    venue = _venue(srv, settlement_poll_s=0.05)
    cond, yes, no = tokens[0]
    venue.hold({_pid(yes): Decimal(150), "kraken:XBTUSD": Decimal(1)})
    seen = await _collect(venue)
    assert _settlements(seen) == {_pid(yes): (1, CLOSED_AT_NS), _pid(no): (0, CLOSED_AT_NS)}
    assert [type(e) for e in seen] == [Settlement, Settlement]
    lookups = [q for _m, p, q in srv.requests if p == "/markets"]
    assert lookups == [{"clob_token_ids": [yes], "closed": ["true"], "limit": ["1"]}]
    inst = venue.instrument(_pid(yes))
    assert inst is not None and inst.meta["condition_id"] == cond and inst.meta["is_yes"]
    assert inst.meta["neg_risk"] and not inst.meta["tradeable"]


async def test_a_held_market_closed_awaiting_its_resolution_is_polled_until_it_settles(
        serve: Any, fed_event: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Held, closed, UMA's answer disputed, nothing else open: the stream stays up on the
    Gamma poll alone (no websocket), and ends once the market resolves and settles.  Not
    held (the guard's other side, above): the stream ends at once."""
    caplog.set_level(logging.INFO)
    event = copy.deepcopy(fed_event)
    for i, market in enumerate(event["markets"]):
        _resolve(market, ["1", "0"], status="disputed" if i == 0 else "resolved")
    srv = serve([event], resolutions={"timestamp": "1789670000000", "outcome_prices": {
        str(event["markets"][0]["id"]): ["0", "1"]}})
    venue = _venue(srv, settlement_poll_s=0.05)
    cond, yes, no = tokens_of(fed_event)[0]
    venue.hold({_pid(yes): Decimal(10)})
    seen: list[Any] = []

    def resolve_once_waiting(s: list[Any]) -> bool:
        if len(s) == 9 and not srv.resolved:  # the event and the eight settled at start
            srv.resolve()  # UMA settles the dispute: NO
        return False

    seen = await _collect(venue, resolve_once_waiting)
    got = _settlements(seen)
    assert len(got) == 10 and got[_pid(yes)][0] == 0 and got[_pid(no)][0] == 1
    assert "this run holds it" in caplog.text
    assert srv.ws_messages == []
    asked = {c for _m, p, q in srv.requests if p == "/markets" for c in q["condition_ids"]}
    assert asked == {cond}


async def test_a_held_market_pending_without_the_poll_is_asked_again_by_the_next_stream(
        serve: Any, fed_event: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Held, its event closed, UMA's answer disputed, the poll off: the stream ends saying
    the held market awaits its resolution.  The dispute settles; the next stream of the
    same venue asks Gamma again (the market it looked up before is not discovery's) and
    settles it."""
    caplog.set_level(logging.WARNING)
    event = copy.deepcopy(fed_event)
    for i, market in enumerate(event["markets"]):
        _resolve(market, ["1", "0"], status="disputed" if i == 0 else "resolved")
    event["closed"] = True  # all its markets closed: Gamma closes the event
    srv = serve([event], resolutions={"timestamp": "1789669805000", "outcome_prices": {
        str(event["markets"][0]["id"]): ["0", "1"]}})
    venue = _venue(srv, settlement_poll_s=0)
    _cond, yes, no = tokens_of(fed_event)[0]
    venue.hold({_pid(yes): Decimal(10)})
    assert await _collect(venue, close=False) == []
    assert "1 held market(s) closed await their resolution" in caplog.text
    srv.resolve()
    seen = await _collect(venue)
    assert _settlements(seen) == {_pid(yes): (0, CLOSED_AT_NS), _pid(no): (1, CLOSED_AT_NS)}
    assert len([q for _m, p, q in srv.requests if p == "/markets"]) == 2


async def test_a_held_token_neither_discovered_nor_closed_is_said_and_not_followed(
        serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A held token Gamma does not list as closed (say, of an open event outside the
    filters): the log says it is not followed; nothing settles, the stream ends."""
    caplog.set_level(logging.WARNING)
    srv = serve([])
    venue = _venue(srv, settlement_poll_s=0.05)
    venue.hold({_pid("999"): Decimal(5)})
    assert await _collect(venue) == []
    assert "neither in a discovered market nor closed on Gamma" in caplog.text
    assert [q["clob_token_ids"] for _m, p, q in srv.requests if p == "/markets"] == [["999"]]


# --- the parts ---------------------------------------------------------------------------------

def test_held_positions_nets_the_runs_fills() -> None:
    fills = [
        {"instrument_id": "polymarket:11", "side": "buy", "quantity": "150"},
        {"instrument_id": "polymarket:11", "side": "sell", "quantity": "50"},
        {"instrument_id": "polymarket:22", "side": "buy", "quantity": "10"},
        {"instrument_id": "polymarket:22", "side": "sell", "quantity": "10"},  # settled: flat
        {"instrument_id": "polymarket:33", "side": "sell", "quantity": "4"},  # short
        {"instrument_id": "kraken:XBTUSD", "side": "buy", "quantity": "1"},
    ]
    assert held_positions(fills) == {"polymarket:11": Decimal(100), "polymarket:33": Decimal(-4)}


def test_closed_time_stamps_the_settlement(fed_event: dict[str, Any]) -> None:
    """Gamma's ISO time and the older Postgres form both stamp; none or unreadable: now."""
    raw = copy.deepcopy(fed_event["markets"][0])
    _resolve(raw, ["1", "0"], closed_time="2021-12-05 20:37:01+00")
    assert GammaMarket.parse(raw, "m").closed_ts_ns() == 1_638_736_621_000_000_000
    for closed_time, want in ((CLOSED_AT, CLOSED_AT_NS), ("soon", 7), (None, 7)):
        raw.pop("closedTime", None)
        if closed_time is not None:
            raw["closedTime"] = closed_time
        settled, pending = settle_closed([GammaMarket.parse(raw, "m")], 7, set())
        assert [s.ts_ns for s in settled] == [want, want] and pending == []
