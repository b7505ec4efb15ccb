"""Held-out audit: the venue having a bad day on the user channel, the REST listings and
the market channel (red team, round after ``test_heldout_faults`` / ``_fills`` / ``_feed``).

Found (each failed before its fix):

* ``GET /data/trades`` / ``GET /data/orders`` paging (py-clob-client-v2's loop "until
  ``next_cursor`` is ``LTE=``") never ended when the venue repeated a cursor (or sent
  ``null``): the worker thread read the same page for ever (11,000 requests in 2 s,
  memory growing), the poll task waited on it, so no fill was booked again, and a
  restart's ``open_orders`` never returned.  Now a cursor seen twice, a missing one or
  more than ``clob.MAX_PAGES`` pages end the read with ``ClobPagingError``.
* A trade read FAILED and then seen again with an older status (a repeated or late user
  channel frame, a trade deferred while its order's post was in flight) was booked:
  FAILED only busted fills already booked; a trade that failed is now never booked.
* A ``tick_size_change`` whose ``new_tick_size`` is not a number raised
  ``InvalidOperation`` out of the shard's task, which died silently (its books neither
  updated nor went stale); a tick of ``NaN``, ``0``, ``1.5`` or ``-0.01`` was kept and
  every later ``price_change`` was refused; a change for a token we do not follow was
  stored.  Now each is a malformed frame (stale, resnapshot) and the tick is kept.
* At a restart, an open order of another client on the account (a person trading by
  hand: foreign ``metadata``) that had the token, side, price and size of an order the
  ledger had REJECTED was taken for it; the core then "cancelled the late placement" --
  the person's order.  The unique-match fallback now only names a *pending* ledger order,
  and only for a row with no ``metadata`` of its own.
* One unreadable ``GET /data/orders`` row (``price: null``, a string for an object) made
  ``open_orders`` raise a bare ``InvalidOperation`` / ``AttributeError``; now a
  ``VenueError`` names the row.  An order listed twice was reported twice.
* A user-channel ``order`` event with ``size_matched: "NaN"`` raised ``InvalidOperation``
  on the comparison with what we reported: the channel's session died (logged as a
  failure, reconnected) instead of skipping the frame; now it is a ``DataError``.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from argus_venue_polymarket.clob import ClobHttpClient
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream
from argus_venue_polymarket.reconcile import Reconciliation
from argus_venue_polymarket.schemas import ClobTrade
from argus_venue_polymarket.testing import HARDHAT_KEY
from argus_venue_polymarket.user_events import UserChannelFeed
from py_clob_client_v2.clob_types import ApiCreds, OpenOrderParams, TradeParams
from py_clob_client_v2.exceptions import PolyApiException

from argus_core import (
    BookStatus,
    DataError,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueError,
    VenueResume,
)
from argus_core.models import KnownOrder

TOKEN, OUR_KEY, OURS = "1234", "key-1", "0xaaa"


def _settings() -> PolymarketSettings:
    return PolymarketSettings(ws_url="ws://127.0.0.1:9", clob_url="http://127.0.0.1:9")


# --- paging -----------------------------------------------------------------------------


def _paged_client(next_cursor: Any) -> tuple[ClobHttpClient, list[int]]:
    """A client whose every page answers one item and ``next_cursor``."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json={"data": [{"id": f"t{len(calls)}"}],
                                         "next_cursor": next_cursor})

    client = ClobHttpClient("http://clob.test", 137, timeout_s=2, key=HARDHAT_KEY,
                            creds=ApiCreds(OUR_KEY, "c2VjcmV0", "pass"))
    client.http = httpx.Client(transport=httpx.MockTransport(handler))
    return client, calls


@pytest.mark.parametrize("cursor", ["MTAw", "MA==", None])
@pytest.mark.parametrize("read", ["trades", "orders"])
def test_a_page_cursor_that_never_reaches_the_end_ends_the_read(cursor: str | None,
                                                                read: str) -> None:
    """Before: the library's loop read the same page for ever (the thread never returned)."""
    client, calls = _paged_client(cursor)
    outcome: list[BaseException | list[Any]] = []

    def call() -> None:
        try:
            outcome.append(client.get_trades(TradeParams(after=1)) if read == "trades"
                           else client.get_open_orders(OpenOrderParams()))
        except BaseException as exc:  # the test reports it
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), f"still paging after {len(calls)} requests"
    (got,) = outcome
    assert isinstance(got, PolyApiException), got
    assert "next_cursor" in str(got.error_msg) and len(calls) <= 2


# --- trades that failed -----------------------------------------------------------------


def _feed() -> UserChannelFeed:
    feed = UserChannelFeed(_settings(), lambda iid: None,
                           client=SimpleNamespace(creds=SimpleNamespace(api_key=OUR_KEY)))
    feed.venue_ids["core-1"] = OURS
    return feed


def _trade_event(status: str) -> dict[str, Any]:
    """A user-channel trade in which our resting order ``OURS`` was the maker."""
    return {"event_type": "trade", "type": "TRADE", "id": "t1", "taker_order_id": "0xother",
            "asset_id": TOKEN, "side": "BUY", "size": "5", "price": "0.4", "status": status,
            "match_time": "1700000000", "trader_side": "MAKER",
            "maker_orders": [{"order_id": OURS, "owner": OUR_KEY, "asset_id": TOKEN,
                              "side": "SELL", "price": "0.4", "matched_amount": "5"}]}


@pytest.mark.parametrize("stale", ["MATCHED", "MINED", "RETRYING", "CONFIRMED"])
async def test_a_trade_seen_failed_is_not_booked_by_a_later_older_status(stale: str) -> None:
    """Before: FAILED (nothing booked yet: nothing to bust), then a repeated MATCHED frame
    booked the failed trade as a fill."""
    feed = _feed()
    await feed.on_user_event(_trade_event("FAILED"))
    await feed.on_user_event(_trade_event(stale))
    items, later = feed._book_trades([ClobTrade.parse(_trade_event(stale))])
    assert list(feed._reports) == [] and items == [] and later == []


async def test_a_deferred_trade_that_fails_meanwhile_is_not_booked() -> None:
    """Before: a MATCHED trade of an order whose post was in flight waited in ``deferred``;
    FAILED came meanwhile (nothing booked: nothing busted) and the poll task's next turn
    booked the deferred MATCHED copy."""
    feed = _feed()
    feed._in_flight.add(OURS)
    await feed.on_user_event(_trade_event("MATCHED"))
    assert "t1" in feed.deferred
    await feed.on_user_event(_trade_event("FAILED"))
    feed._in_flight.discard(OURS)  # the post's answer is in
    items, _later = feed._book_trades(list(feed.deferred.values()))  # the poll task's turn
    assert items == [] and list(feed._reports) == []


async def test_an_order_event_with_an_unreadable_size_matched_is_malformed() -> None:
    """Before: ``size_matched: "NaN"`` raised InvalidOperation (not a DataError): the user
    channel's session failed instead of skipping the frame."""
    feed = _feed()
    with pytest.raises(DataError, match="size_matched"):
        await feed.on_user_event({"event_type": "order", "type": "UPDATE", "id": OURS,
                                  "size_matched": "NaN", "original_size": "10"})


# --- tick size changes ------------------------------------------------------------------


class NoRest:
    """A REST client whose resnapshot returns no books (the books stay stale)."""

    async def books(self, tokens: list[str]) -> list[Any]:
        return []


@pytest.mark.parametrize(("asset", "tick"), [
    (TOKEN, "abc"), (TOKEN, None), (TOKEN, "NaN"), (TOKEN, "0"), (TOKEN, "1.5"),
    (TOKEN, "-0.01"), ("999", "0.001")])
async def test_an_unusable_tick_size_change_is_a_malformed_frame(asset: str,
                                                                tick: str | None) -> None:
    """Before: ``abc`` / None killed the shard's task (InvalidOperation); the others were
    kept as the token's tick (every later price change refused) or stored for a token
    the stream does not follow."""
    stream = MarketStream(_settings(), [TOKEN], NoRest())  # type: ignore[arg-type]  # books() only
    stream.live[TOKEN] = True
    stream.tick_sizes[TOKEN] = D("0.01")
    frame = {"event_type": "tick_size_change", "asset_id": asset, "market": "0x1",
             "old_tick_size": "0.01", "new_tick_size": tick, "timestamp": "1700000000000"}
    await stream._on_frame(json.dumps(frame), [TOKEN])
    event = stream._queue.get_nowait()
    assert isinstance(event, BookStatus) and not event.live
    assert stream.tick_sizes == {TOKEN: D("0.01")} and stream.stats["malformed"] == 1


# --- open orders at a restart -----------------------------------------------------------


class OpenOrdersClient:
    """A CLOB client whose ``GET /data/orders`` answers ``rows``."""

    creds = SimpleNamespace(api_key=OUR_KEY)

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def get_open_orders(self, params: Any = None) -> list[Any]:
        return self.rows

    def post_heartbeat(self, *_: Any) -> dict[str, Any]:
        return {}


def _reconciliation(rows: list[Any], known: list[KnownOrder]) -> Reconciliation:
    rec = Reconciliation(_settings(), lambda iid: None, client=OpenOrdersClient(rows))
    rec.resume(VenueResume(tuple(known)))
    return rec


def _row(vid: str, **extra: Any) -> dict[str, Any]:
    return {"id": vid, "status": "LIVE", "asset_id": TOKEN, "side": "BUY", "price": "0.40",
            "original_size": "10", "size_matched": "0", "order_type": "GTC", **extra}


def _order(coid: str, status: OrderStatus) -> KnownOrder:
    return KnownOrder(Order(coid, "polymarket", f"polymarket:{TOKEN}", Side.BUY, D(10),
                            D("0.40"), OrderType.LIMIT, TimeInForce.GTC, status=status))


@pytest.mark.parametrize("status", [OrderStatus.REJECTED, OrderStatus.CANCELLED])
async def test_a_foreign_open_order_is_not_taken_for_an_ended_ledger_order(
        status: OrderStatus) -> None:
    """Before: the person's order was named ``core-x`` (the core then cancelled it as a
    late placement of an order it had ended)."""
    rec = _reconciliation([_row("0xperson", metadata="0x" + "00" * 32)],
                          [_order("core-x", status)])
    assert [o.client_order_id for o in await rec.open_orders()] == ["pm:0xperson"]
    assert rec.venue_ids == {} and rec.watched == {}


async def test_an_open_order_with_foreign_metadata_is_never_guessed_ours() -> None:
    """Before: a row whose ``metadata`` is another client's (ours is keccak of our id) was
    still matched to a pending ledger order by token, side, price and size."""
    rec = _reconciliation([_row("0xperson", metadata="0x" + "ab" * 32)],
                          [_order("core-p", OrderStatus.PENDING)])
    assert [o.client_order_id for o in await rec.open_orders()] == ["pm:0xperson"]
    rows = [_row("0xmine")]  # no metadata: the unique pending match still names it
    rec = _reconciliation(rows, [_order("core-p", OrderStatus.PENDING)])
    assert [o.client_order_id for o in await rec.open_orders()] == ["core-p"]


@pytest.mark.parametrize("bad", [_row("0x1", price=None), _row("0x1", original_size="ten"),
                                 "junk", _row("0x1", side="HOLD")])
async def test_an_unreadable_open_order_row_is_a_clear_venue_error(bad: Any) -> None:
    """Before: InvalidOperation / AttributeError (a HOLD side was read as SELL)."""
    rec = _reconciliation([_row("0x0"), bad], [])
    with pytest.raises(VenueError, match=r"GET /data/orders row 1"):
        await rec.open_orders()


async def test_an_open_order_listed_twice_is_reported_once() -> None:
    """Before: the same venue order came back as two open orders."""
    rec = _reconciliation([_row("0x2"), _row("0x2")], [])
    assert [o.client_order_id for o in await rec.open_orders()] == ["pm:0x2"]

