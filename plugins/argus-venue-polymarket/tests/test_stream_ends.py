"""A stream with nothing to follow ends, saying why.

Before, ``PolymarketVenue.stream()`` over markets all closed at start subscribed to no
token and then waited for ever on an empty queue: a paper run (or a recording) over only
closed markets never ended.  Now it yields the discovered events and ends with a warning;
the runner then ends the run.  A stream with one open market still runs (the guard's
other side).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream, PolymarketRest
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import make_book, tokens_of
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.config import parse_config
from argus_core.models import Event, OrderBook
from argus_core.runner import Runner


def _closed(event: dict[str, Any], *, keep_open: int | None = None) -> dict[str, Any]:
    """``event`` with every market closed (and not accepting orders), but the one at
    index ``keep_open``."""
    out = copy.deepcopy(event)
    for i, market in enumerate(out["markets"]):
        if i != keep_open:
            market.update(closed=True, acceptingOrders=False)
    return out


@pytest.fixture
def serve(fed_event: dict[str, Any]) -> Iterator[Any]:
    """``serve(events)``: a snapshot server (REST and websocket) with the Fed event's books."""
    books = [make_book(t, cond, [("0.40", "10")], [("0.45", "10")])
             for cond, yes, no in tokens_of(fed_event) for t in (yes, no)]
    started: list[SnapshotServer] = []

    def make(events: list[dict[str, Any]]) -> SnapshotServer:
        srv = SnapshotServer(events, books, ws_port=0).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


async def _collect(srv: SnapshotServer, until_books: int | None = None) -> list[Any]:
    """The stream's events, to its end (or, with ``until_books``, until that many books)."""
    venue = PolymarketVenue(PolymarketSettings(gamma_url=srv.url, clob_url=srv.url,
                                               ws_url=srv.ws_url, settlement_poll_s=0.05))
    seen: list[Any] = []
    try:
        async with asyncio.timeout(20):  # no hang: ends by itself well before
            async for ev in venue.stream():
                seen.append(ev)
                if until_books and sum(isinstance(e, OrderBook) for e in seen) >= until_books:
                    break
    finally:
        await venue.close()
    return seen


async def test_a_stream_over_markets_all_closed_ends_and_says_why(
        serve: Any, fed_event: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """The event is listed (open) but each of its five markets is closed: the event, then
    the end, with the reason logged; no websocket connection is opened."""
    caplog.set_level(logging.WARNING)
    srv = serve([_closed(fed_event)])
    seen = await _collect(srv)
    assert [type(e) for e in seen] == [Event] and not seen[0].exhaustive
    assert "none of the 5 discovered market(s) is open" in caplog.text
    assert "the stream ends" in caplog.text
    assert srv.ws_messages == []  # nothing subscribed


async def test_a_stream_with_no_open_event_ends_and_says_why(
        serve: Any, fed_event: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Gamma lists no open event (the only one is closed): no event, the end, the reason."""
    caplog.set_level(logging.WARNING)
    srv = serve([dict(_closed(fed_event), closed=True)])
    assert await _collect(srv) == []
    assert "Gamma listed no open market" in caplog.text


async def test_a_stream_with_one_open_market_still_runs(
        serve: Any, fed_event: dict[str, Any]) -> None:
    """The guard's other side: one market of five open: its two books stream."""
    srv = serve([_closed(fed_event, keep_open=2)])
    seen = await _collect(srv, until_books=2)
    _cond, yes, no = tokens_of(fed_event)[2]
    assert {e.instrument_id for e in seen if isinstance(e, OrderBook)} == {
        f"polymarket:{yes}", f"polymarket:{no}"}


async def test_a_paper_run_over_closed_markets_ends(
        serve: Any, fed_event: dict[str, Any], tmp_path: Path) -> None:
    """The runner's side: a paper run over the closed markets ends by itself (before: it
    waited for ever on the stream)."""
    srv = serve([_closed(fed_event)])
    config = parse_config({
        "argus": {"plugins": ["polymarket"], "mode": "paper"},
        "run": {"venue": "polymarket", "scanners": [], "starting_cash": "1000"},
        "plugins": {"polymarket": {"gamma_url": srv.url, "clob_url": srv.url,
                                   "ws_url": srv.ws_url, "settlement_poll_s": 0.05,
                                   "redeem": False}}})
    runner = Runner(config, tmp_path / "run")
    async with asyncio.timeout(30):
        await runner.run()
    assert runner.seq >= 1  # the event went through the loop


async def test_a_market_stream_over_no_tokens_ends_at_once() -> None:
    settings = PolymarketSettings(ws_url="ws://127.0.0.1:9/ws/market")
    stream = MarketStream(settings, [], PolymarketRest(settings))
    async with asyncio.timeout(5):
        assert [ev async for ev in stream] == []
