"""The real REST clients against a local Gamma + CLOB server on 127.0.0.1."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.testing import make_book, tokens_of
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.errors import VenueError
from argus_core.market_state import MarketState
from argus_core.models import BookStatus, Event, OrderBook


def _settings(url: str, **kw: Any) -> PolymarketSettings:
    return PolymarketSettings(gamma_url=url, clob_url=url, ws_url="ws://127.0.0.1:9", **kw)


def _many_events(template: dict[str, Any], n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        ev = copy.deepcopy(template)
        ev["id"] = str(1000 + i)
        out.append(ev)
    return out


async def test_gamma_pagination_walks_every_page(fed_event, snapshot_server) -> None:  # type: ignore[no-untyped-def]
    closed = copy.deepcopy(fed_event)
    closed.update(id="999", closed=True)
    srv = snapshot_server([*_many_events(fed_event, 23), closed], [])
    venue = PolymarketVenue(_settings(srv.url, page_size=10))
    try:
        events = await venue.discover()
    finally:
        await venue.close()
    assert [e.event_id for e in events] == [str(1000 + i) for i in range(23)]
    pages = [(q["offset"][0], q["limit"][0], q["active"][0], q["closed"][0])
             for m, path, q in srv.requests if path == "/events"]
    assert pages == [("0", "10", "true", "false"), ("10", "10", "true", "false"),
                     ("20", "10", "true", "false")]


async def test_snapshot_books_batched_sorted_and_hash_checked(fed_event, snapshot_server  # type: ignore[no-untyped-def]
                                                              ) -> None:
    books = []
    for cond, yes, no in tokens_of(fed_event):
        books.append(make_book(yes, cond, [("0.20", "100"), ("0.19", "50")],
                               [("0.22", "40"), ("0.23", "60")]))
        books.append(make_book(no, cond, [("0.77", "10")], [("0.80", "10")]))
    books[3]["hash"] = "0" * 40  # tampered: must come back stale, not as a book
    srv = snapshot_server([fed_event], books)
    venue = PolymarketVenue(_settings(srv.url, books_batch_size=4))
    market = MarketState()
    try:
        market.add_instruments(await venue.instruments())
        snap = await venue.snapshot()
    finally:
        await venue.close()
    for ev in snap:
        market.apply(ev)
    assert isinstance(snap[0], Event) and snap[0].exhaustive
    assert sum(isinstance(e, OrderBook) for e in snap) == 9
    stale = [e for e in snap if isinstance(e, BookStatus)]
    assert len(stale) == 1 and "hash" in stale[0].reason
    batches = [body for m, path, body in srv.requests if path == "/books"]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sum(1 for _, path, _ in srv.requests if path == "/events") == 1  # discovery reused
    yes0 = f"polymarket:{tokens_of(fed_event)[0][1]}"
    assert market.tradeable(yes0) == (True, "")
    assert market.books[yes0].ask_levels()[:, 0].tolist() == [0.22, 0.23]
    assert market.books[yes0].bid_levels()[:, 0].tolist() == [0.20, 0.19]
    assert not market.tradeable(stale[0].instrument_id)[0]
    assert len(market.instruments) == 10


async def test_single_book_endpoint(snapshot_server) -> None:  # type: ignore[no-untyped-def]
    srv = snapshot_server([], [make_book("77", "0xm", [("0.1", "5")], [("0.2", "5")])])
    venue = PolymarketVenue(_settings(srv.url))
    try:
        book = await venue.rest.book("77")
        with pytest.raises(VenueError, match="404"):
            await venue.rest.book("78")
    finally:
        await venue.close()
    assert book.asks[0].price == "0.2"


async def test_transient_errors_are_retried_then_reported(fed_event, snapshot_server  # type: ignore[no-untyped-def]
                                                          ) -> None:
    calls = {"n": 0}

    def flaky(method: str, path: str, query: Any, body: Any) -> Any:
        if path == "/events":
            calls["n"] += 1
            if calls["n"] <= 2:
                return 503, {"error": "busy"}
        return None

    srv = snapshot_server([fed_event], [], extra=flaky)
    venue = PolymarketVenue(_settings(srv.url))
    try:
        assert len(await venue.discover()) == 1
    finally:
        await venue.close()

    srv2 = snapshot_server([], [], extra=lambda m, p, q, b: (500, {"error": "down"}))
    venue = PolymarketVenue(_settings(srv2.url))
    try:
        with pytest.raises(VenueError, match="HTTP 500"):
            await venue.discover()
    finally:
        await venue.close()


async def test_malformed_event_is_skipped_not_fatal(fed_event, snapshot_server) -> None:  # type: ignore[no-untyped-def]
    bad = copy.deepcopy(fed_event)
    bad["id"] = "666"
    bad["markets"][0]["clobTokenIds"] = "not json"
    srv = snapshot_server([bad, fed_event], [])
    venue = PolymarketVenue(_settings(srv.url))
    try:
        events = await venue.discover()
    finally:
        await venue.close()
    assert [e.event_id for e in events] == ["481717"]
