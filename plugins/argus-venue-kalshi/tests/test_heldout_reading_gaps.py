"""Held-out red team: what the Kalshi plugin still read loosely (round after
``test_heldout_bad_day``).  What it found:

* ``open_orders()`` (the core's start-up reconciliation) read each resting order with
  ``raw["order_id"]`` / ``raw["side"].upper()``: an order stating its direction only in
  Kalshi's current fields (``outcome_side`` / ``book_side``; ``side`` / ``action`` are
  deprecated) raised a bare ``KeyError: 'side'``, and a row of the wrong shape a bare
  ``KeyError`` / ``AttributeError`` / ``TypeError``, so the start-up stopped on an error
  naming nothing.  Now each row is read strictly: the direction from the current fields
  (or the order as sent), else a ``VenueError`` naming the row.
* An ``orderbook_snapshot`` carrying its levels only under keys the stream does not read
  (``yes`` / ``no`` in cents, ``yes_dollars`` / ``no_dollars``: older shapes; the current
  one is ``yes_dollars_fp`` / ``no_dollars_fp``, docs.kalshi.com websockets
  orderbook-updates) was read as an empty book and emitted.  Now it is a ``DataError``
  (the stream resyncs); a side left out (Kalshi omits empty sides) is still empty.  The
  REST answer's ``orderbook_fp`` is read the same way.
* A paged list that ignores ``cursor`` (the same full page every time, with a new cursor
  each time: the repeated-cursor and empty-page checks never fired) was read for ever.
  Now ``rest.MAX_EMPTY_PAGES`` pages in a row that add no item not already read, or more
  than ``rest.MAX_PAGES`` pages, end it with a ``KalshiPagingError``.  (It first ended
  at the first repeated page; a list that merely shifts while read, a page of new orders
  arriving between two reads, repeats one page once, and was refused: no longer.)
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.data import BookStream, _Session, rest_books
from argus_venue_kalshi.execution import KalshiExecution
from argus_venue_kalshi.fees import KalshiFeeSchedule
from argus_venue_kalshi.ratelimit import EndpointCosts, RateLimiter
from argus_venue_kalshi.rest import MAX_EMPTY_PAGES, KalshiPagingError, KalshiRest

from argus_core import DataError, Order, OrderType, Side, TimeInForce, VenueError

TICKER = "KXHIGHNY-24JAN01-T60"


class ListingRest:
    """The REST client :class:`KalshiExecution` uses, listing ``rows`` as the resting
    orders."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.writes, self.reads, self.costs = RateLimiter(1000), RateLimiter(1000), \
            EndpointCosts()

    async def pages(self, path: str, key: str, params: Any = None, **_: Any) -> list[Any]:
        return list(self.rows)


def _execution(rows: list[Any]) -> KalshiExecution:
    settings = KalshiSettings(markets=[TICKER], ws_fills=False)
    return KalshiExecution(settings, ListingRest(rows), KalshiFeeSchedule())  # type: ignore[arg-type]


def _resting(**fields: Any) -> dict[str, Any]:
    """A resting order as Kalshi's current API lists it (no ``side`` / ``action``)."""
    base = {"order_id": "O1", "client_order_id": "core-1", "ticker": TICKER,
            "status": "resting", "outcome_side": "yes", "book_side": "bid",
            "yes_price_dollars": "0.4200", "no_price_dollars": "0.5800",
            "fill_count_fp": "2.00", "remaining_count_fp": "3.00",
            "created_time": "2024-01-01T15:00:00Z"}
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


# -- open_orders ---------------------------------------------------------------------------
async def test_a_resting_order_without_the_deprecated_side_is_read() -> None:
    """Before: ``KeyError: 'side'`` out of ``open_orders()``: the start-up stopped."""
    (order,) = await _execution([_resting()]).open_orders()
    assert order.client_order_id == "core-1"
    assert order.instrument_id == f"kalshi:{TICKER}/YES" and order.side is Side.BUY
    assert order.quantity == D(5) and order.limit_price == D("0.42")


async def test_a_resting_order_reads_its_direction_from_the_order_as_sent() -> None:
    """An order of ours stating only ``outcome_side`` takes the direction it was sent
    with (a sell of YES is long NO: the same outcome, read as the order it is)."""
    ex = _execution([_resting(outcome_side="no", book_side="ask")])
    ex.remember(Order("core-1", "kalshi", f"kalshi:{TICKER}/YES", Side.SELL, D(5), D("0.42"),
                      OrderType.LIMIT, TimeInForce.GTC, "s"))
    (order,) = await ex.open_orders()
    assert order.instrument_id == f"kalshi:{TICKER}/YES" and order.side is Side.SELL


@pytest.mark.parametrize("row, why", [
    ("not an order", "not an order"),
    (_resting(order_id=None), "order_id"),
    (_resting(ticker=7), "ticker"),
    (_resting(outcome_side=None, book_side=None), "direction"),
    (_resting(side=5, action="buy", outcome_side=None, book_side=None), "direction"),
    (_resting(outcome_side="yes", book_side="ask"), "direction"),
    (_resting(yes_price_dollars="cheap"), "price"),
    (_resting(remaining_count_fp=[3]), "count"),
])
async def test_an_unreadable_resting_order_is_a_venue_error_naming_it(row: Any,
                                                                      why: str) -> None:
    """Before: a bare ``KeyError`` / ``AttributeError`` / ``TypeError`` (or, for a side
    that was a number, an ``AttributeError`` on ``.upper()``)."""
    with pytest.raises(VenueError, match=f"GET /portfolio/orders row 0.*{why}"):
        await _execution([row]).open_orders()


# -- websocket snapshots -------------------------------------------------------------------
def _snapshot(msg: dict[str, Any]) -> list[Any]:
    stream = BookStream(KalshiSettings(markets=[TICKER]), None, [TICKER])  # type: ignore[arg-type]
    state = _Session()
    state.sid_tickers[1] = [TICKER]
    return stream._apply("orderbook_snapshot", {"market_ticker": TICKER, **msg}, state, 1)


@pytest.mark.parametrize("levels", [
    {"yes": [[40, 10]], "no": [[55, 5]]},
    {"yes_dollars": [["0.4000", 10]], "no_dollars": [["0.5500", 5]]},
    {"yes_dollars_fp": [["0.4000", "10.00"]], "no": [[55, 5]]},
])
def test_a_snapshot_with_levels_only_under_keys_not_read_is_refused(
        levels: dict[str, Any]) -> None:
    """Before: read as an empty book (or one side empty) and emitted."""
    with pytest.raises(DataError, match="not read"):
        _snapshot(levels)


def test_a_snapshot_leaving_out_an_empty_side_is_read() -> None:
    """Kalshi leaves an empty side out: the NO book is empty, not an error."""
    books = _snapshot({"yes_dollars_fp": [["0.4000", "10.00"]]})
    assert books  # the YES bid, and no NO bid


async def test_a_rest_book_with_levels_only_under_keys_not_read_is_refused() -> None:
    """Before: ``orderbook_fp`` holding ``yes`` / ``no`` alone read as two empty books."""
    class Rest:
        async def get(self, path: str, **_: Any) -> Any:
            return {"orderbook_fp": {"yes": [[40, 10]], "no": [[55, 5]]}}

    with pytest.raises(DataError, match="not read"):
        await rest_books(Rest(), [TICKER])  # type: ignore[arg-type]


# -- paged lists ---------------------------------------------------------------------------
async def test_a_list_that_ignores_its_cursor_ends() -> None:
    """Before: the same page with a new cursor every time was read for ever (the
    5-second timeout fired instead)."""
    rest = KalshiRest(KalshiSettings(markets=[TICKER]))
    asked = 0

    async def get(path: str, params: Any = None, **_: Any) -> Any:
        nonlocal asked
        asked += 1
        await asyncio.sleep(0)  # a real read yields: the timeout can fire
        return {"orders": [{"order_id": "O1"}, {"order_id": "O2"}], "cursor": f"c{asked}"}

    rest.get = get  # type: ignore[method-assign]
    try:
        async with asyncio.timeout(5):
            with pytest.raises(KalshiPagingError, match="already read"):
                await rest.pages("/portfolio/orders", "orders")
        assert asked == 1 + MAX_EMPTY_PAGES  # one repeat may be a shifting list: not more
    finally:
        await rest.close()
