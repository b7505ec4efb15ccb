"""Held-out red team: what the Polymarket plugin still read loosely (round after
``test_heldout_venue_day``).  What it found:

* Gamma ``GET /events`` was paged by ``offset`` until a short page: a Gamma (or a proxy
  before it) that ignores ``offset`` and answers the same full page every time was read
  for ever (discovery never ended, memory grew with each copy) unless ``max_events`` was
  set; overlapping pages listed an event twice.  Now a page that brings no event id not
  seen before ends the read with a ``DataError`` saying so, an event is listed once, and
  more than ``constants.GAMMA_MAX_EVENT_PAGES`` pages is a ``DataError`` too.
* A taker trade read FAILED while its order's post was still unanswered found nothing to
  bust (nothing booked yet); the post's answer then booked ``<order hash>:0`` including
  the failed trade, and the bust came only if a later trades poll re-read the FAILED
  trade within its overlap (else never: the ledger kept a fill that did not happen).
  Now a FAILED trade of an order in flight is kept, and busted as soon as the answer
  books the order (whole, or its part of a fill of several trades).
"""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import PolymarketRest
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.schemas import ClobTrade
from argus_venue_polymarket.signing import SentOrder
from argus_venue_polymarket.user_channel import ws_trade

from argus_core import (
    DataError,
    Fill,
    FillCorrection,
    Order,
    OrderType,
    Side,
    TimeInForce,
)

TOKEN, OUR_KEY, HASH = "1234", "key-1", "0xabc"
PAGE_CAP = getattr(C, "GAMMA_MAX_EVENT_PAGES", 1000)


def _settings(**kw: Any) -> PolymarketSettings:
    return PolymarketSettings(ws_url="ws://127.0.0.1:9", clob_url="http://127.0.0.1:9",
                              gamma_url="http://gamma.test", **kw)


# --- Gamma /events paging ---------------------------------------------------------------


def _gamma(pages: Any) -> tuple[PolymarketRest, list[int]]:
    """A Gamma whose ``/events`` answers ``pages(offset, limit)``."""
    offsets: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        offsets.append(offset)
        if len(offsets) > PAGE_CAP + 10:  # the test's own stop (before: read for ever)
            return httpx.Response(200, json=[])
        return httpx.Response(200, json=pages(offset, limit))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return PolymarketRest(_settings(page_size=2), client), offsets


async def test_a_gamma_that_ignores_offset_does_not_page_for_ever() -> None:
    """Before: the same full page, read again and again (never returned)."""
    rest, offsets = _gamma(lambda offset, limit: [{"id": "e1"}, {"id": "e2"}])
    with pytest.raises(DataError, match="no event not seen before"):
        await rest.events()
    assert len(offsets) == 2


async def test_overlapping_pages_list_an_event_once() -> None:
    """Pages that overlap by one (an event listed meanwhile): each event once.  Before:
    ``e2`` twice."""
    pages = {0: ["e1", "e2"], 2: ["e2", "e3"]}
    rest, _ = _gamma(lambda offset, limit: [{"id": e} for e in pages.get(offset, [])])
    got = [e.event_id for e in await rest.events()]
    assert got == ["e1", "e2", "e3"]


async def test_a_gamma_that_never_ends_is_capped() -> None:
    """New ids on every page, for ever: a ``DataError`` past the page cap."""
    rest, offsets = _gamma(lambda offset, limit: [{"id": f"e{offset + i}"}
                                                  for i in range(limit)])
    with pytest.raises(DataError, match="pages"):
        await rest.events()
    assert len(offsets) == PAGE_CAP


# --- a FAILED trade before its post's answer --------------------------------------------


def _execution() -> tuple[PolymarketExecution, SentOrder]:
    ex = PolymarketExecution(_settings(), lambda iid: None,
                             client=SimpleNamespace(creds=SimpleNamespace(api_key=OUR_KEY)))
    order = Order("core-1", "polymarket", f"polymarket:{TOKEN}", Side.BUY, D(10), D("0.5"),
                  OrderType.LIMIT, TimeInForce.FOK, "s")
    post = SentOrder(order, "FOK", HASH)
    ex._orders["core-1"] = order  # what _send does before the post goes out
    ex.venue_ids["core-1"] = HASH
    ex._in_flight.add(HASH)
    return ex, post


def _taker_trade(trade_id: str, status: str) -> dict[str, Any]:
    return {"event_type": "trade", "id": trade_id, "taker_order_id": HASH, "asset_id": TOKEN,
            "side": "BUY", "size": "4", "price": "0.5", "status": status,
            "match_time": "1700000000", "trader_side": "TAKER",
            "maker_orders": [{"order_id": "0xother", "owner": "someone", "asset_id": TOKEN,
                              "side": "SELL", "price": "0.5", "matched_amount": "4"}]}


@pytest.mark.parametrize("answer_trades", [["t1"], ["t1", "t2"]])
async def test_a_trade_failed_before_its_posts_answer_is_busted_once_booked(
        answer_trades: list[str]) -> None:
    """Before: the answer's fill ``0xabc:0`` stood (no bust) unless a later poll re-read
    the FAILED trade."""
    ex, post = _execution()
    await ex.on_user_event(_taker_trade("t1", "FAILED"))
    assert list(ex._reports) == []  # nothing booked yet: nothing to bust
    ex._in_flight.discard(HASH)
    size = "4" if answer_trades == ["t1"] else "8"
    ex._accept(post, {"success": True, "orderID": HASH, "status": "matched",  # type: ignore[arg-type]
                      "makingAmount": str(D(size) / 2), "takingAmount": size,
                      "tradeIDs": answer_trades})
    reports = list(ex._reports)
    assert [f.fill_id for f in reports if isinstance(f, Fill)] == [f"{HASH}:0"]
    (bust,) = [c for c in reports if isinstance(c, FillCorrection)]
    assert bust.fill_id == f"{HASH}:0" and bust.bust
    if answer_trades == ["t1"]:
        assert not bust.part  # the answer's one trade: the whole fill
    else:
        assert bust.part == "t1" and bust.quantity == D(4) and bust.price == D("0.5")
    # a later poll re-reading the FAILED trade busts nothing again
    out, _ = ex._book_trades([_parsed("t1")])
    assert [c for c in out if isinstance(c, FillCorrection)] == []


def _parsed(trade_id: str) -> ClobTrade:
    return ws_trade(_taker_trade(trade_id, "FAILED"), our_key=OUR_KEY, ours={HASH})
