"""Held-out red team: Kalshi having a bad day (answers in shapes the other held-out tests
do not send), and an exit the venue itself cut short.  What it found:

* a reduce-only exit cut to the position Kalshi holds (10 asked, 7 held, 7 sent) ends
  ``executed`` at Kalshi, but the core's order of 10 stayed PARTIALLY_FILLED, working
  for ever: the ledger kept 3 contracts "to sell", which vetoed every later exit;
* a fill carrying its direction only in Kalshi's current fields (``outcome_side`` /
  ``book_side``; ``side`` / ``action`` are deprecated) was never booked (a KeyError,
  logged every poll) and a fill whose legacy fields contradict ``outcome_side`` was booked
  on the legacy reading;
* ``is_taker: null`` booked a taker fill as a maker (no fee under the formula);
* a paged list answering an empty page with a new cursor every time never ended (the
  poll, and with it every acknowledgement and fill, hung for good);
* a book delta that crossed the book (a YES bid at or above the YES ask) was applied and
  emitted instead of resyncing, and a snapshot listing one price twice kept the last;
* an order book answer without ``orderbook_fp`` was read as an empty book;
* a position listed twice (pages that overlap) doubled the size of a reduce-only exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import EngineHarness, Harnesses
from argus_venue_kalshi.books import Ladders
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.data import rest_books
from argus_venue_kalshi.execution import KalshiExecution
from argus_venue_kalshi.fees import KalshiFeeSchedule
from argus_venue_kalshi.ratelimit import EndpointCosts, RateLimiter
from argus_venue_kalshi.rest import KalshiPagingError, KalshiRest
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    DataError,
    Fill,
    Intent,
    KnownOrder,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueResume,
)

TICKER = "KXHIGHNY-24JAN01-T60"
IID = f"kalshi:{TICKER}/YES"


class ScriptedRest:
    """The REST client :class:`KalshiExecution` uses, answering from scripts: ``sent``
    records every write; lists by path."""

    def __init__(self) -> None:
        self.lists: dict[str, list[Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self.writes, self.reads, self.costs = RateLimiter(1000), RateLimiter(1000), \
            EndpointCosts()
        self.clock_offset_s: float | None = 0.0  # Kalshi's clock agrees with ours

    async def get(self, path: str, params: Any = None, **_: Any) -> Any:
        if path == "/historical/cutoff":  # nothing archived
            return {"orders_updated_ts": 0, "trades_created_ts": 0}
        raise AssertionError(f"unscripted GET {path}")

    async def send(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        self.sent.append(body)
        return {"order": {"order_id": "O1", "client_order_id": body["client_order_id"],
                          "status": "resting"}}

    async def pages(self, path: str, key: str, params: Any = None, **_: Any) -> list[Any]:
        return list(self.lists.get(path, []))


def _execution() -> tuple[KalshiExecution, ScriptedRest]:
    rest = ScriptedRest()
    settings = KalshiSettings(markets=[TICKER], ws_fills=False)
    return KalshiExecution(settings, rest, KalshiFeeSchedule()), rest  # type: ignore[arg-type]


def _order(coid: str, side: Side, qty: int = 10, limit: str = "0.40", *,
           reduce_only: bool = False) -> Order:
    return Order(coid, "kalshi", IID, side, D(qty), D(limit), OrderType.LIMIT,
                 TimeInForce.GTC, "s", reduce_only=reduce_only)


def _fill(**fields: Any) -> dict[str, Any]:
    base = {"trade_id": "T1", "fill_id": "T1", "order_id": "O1", "ticker": TICKER,
            "count_fp": "3.00", "yes_price_dollars": "0.4000", "no_price_dollars": "0.6000",
            "is_taker": True, "fee_cost": "0.0200", "created_time": "2024-01-01T15:00:00Z"}
    return {**base, **fields}


# -- a reduce-only exit cut short by the venue ------------------------------------------
@pytest.fixture
async def harness(exchange: Any, local_settings: Callable[..., Any], tmp_path: Path
                  ) -> AsyncIterator[Callable[..., Any]]:
    pool = Harnesses(tmp_path / "run")

    async def make(**overrides: Any) -> EngineHarness:
        venue = KalshiVenue(local_settings(ws_fills=False, **overrides))
        (instrument,) = [i for i in await venue.instruments() if i.id == IID]
        return await pool.start(venue, instrument, D("0.42"))

    yield make
    await pool.close()


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)


async def test_an_exit_cut_to_kalshis_position_ends_instead_of_working_for_ever(
        exchange, harness) -> None:
    """The ledger holds 10 YES, Kalshi 7 (3 went elsewhere): the exit of 10 is sent as 7,
    which fill, and Kalshi ends the order ``executed``.  Before: the core's order stayed
    PARTIALLY_FILLED (7 of 10) for good, its 3 "working" contracts vetoing every later
    exit.  Now the cut part is reported CANCELLED, and the order ends with its 7."""
    h = await harness()
    buy = h.order(1, Side.BUY, "10", "0.45")
    await _until(lambda: h.status(buy)[0] is OrderStatus.FILLED)
    assert h.status(buy) == (OrderStatus.FILLED, D(10))
    exchange.engine.outside[TICKER] = -3  # Kalshi nets 10 YES and 3 NO: 7 YES
    h.engine.seq = 2
    exit_ = Intent("s", IID, Side.SELL, quantity=D(10), limit_price=D("0.01"),
                   order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC,
                   reduce_only=True)
    with h.between_events():
        (order,) = h.engine._route([exit_], 1)
    coid = order.client_order_id
    await _until(lambda: h.status(coid) == (OrderStatus.CANCELLED, D(7)))
    assert h.status(coid) == (OrderStatus.CANCELLED, D(7))
    assert exchange.engine.position(TICKER) == 0


async def test_an_order_executed_short_after_a_restart_ends_too() -> None:
    """The same exit after a restart (the cut is not remembered): Kalshi lists it
    ``executed`` with 7 of the core's 10 filled.  The rest is reported CANCELLED."""
    ex, rest = _execution()
    order = _order("c1", Side.SELL, 10, "0.01", reduce_only=True)
    ex.resume(VenueResume(orders=(KnownOrder(order, "O1"),)))
    rest.lists["/portfolio/orders"] = [{
        "order_id": "O1", "client_order_id": "c1", "status": "executed",
        "fill_count_fp": "7.00", "remaining_count_fp": "0.00"}]
    updates = [u for u in await ex._poll() if isinstance(u, OrderUpdate)]
    assert [(u.status, u.reason) for u in updates] == [
        (OrderStatus.OPEN, ""), (OrderStatus.CANCELLED,
                                 "Kalshi executed 7 of the order's 10 contracts and ended it")]


# -- fills in Kalshi's current direction fields ------------------------------------------
@pytest.mark.parametrize(("order_side", "outcome", "book"), [
    (Side.BUY, "yes", "bid"),    # buy YES: long yes
    (Side.SELL, "no", "ask"),    # sell YES: long no
])
def test_a_fill_with_only_outcome_side_is_booked_on_its_orders_side(
        order_side, outcome, book) -> None:
    """Kalshi now states a fill's direction as ``outcome_side`` / ``book_side`` (the
    legacy ``side`` / ``action`` are deprecated).  Before: such a fill raised KeyError,
    was logged and never booked.  Now the fill of an order this venue sent takes the
    order's side and action (checked against ``outcome_side``)."""
    ex, _ = _execution()
    ex.body(_order("c1", order_side))
    ex.learn("c1", "O1")
    fill = ex._fill(_fill(outcome_side=outcome, book_side=book))
    assert isinstance(fill, Fill)
    assert (fill.instrument_id, fill.side, fill.price, fill.quantity) == (
        IID, order_side, D("0.40"), D(3))


@pytest.mark.parametrize("fields", [
    {"side": "yes", "action": "buy", "outcome_side": "no"},
    {"side": "yes", "action": "sell", "book_side": "bid"},
    {"outcome_side": "no", "book_side": "bid"},
    {"outcome_side": "maybe"},
])
def test_a_fill_whose_direction_fields_disagree_is_not_booked(fields) -> None:
    """Before: the legacy ``side`` / ``action`` were read alone (a buy of YES booked while
    ``outcome_side`` said the account went long NO).  Now a fill whose direction fields
    disagree is a ``DataError`` (logged, not booked, read again every poll)."""
    ex, _ = _execution()
    ex.body(_order("c1", Side.BUY))
    ex.learn("c1", "O1")
    with pytest.raises(DataError, match="direction"):
        ex._fill(_fill(**fields))


def test_a_foreign_fill_with_only_outcome_side_is_said_as_a_buy_of_that_side() -> None:
    """A fill of an order this run never placed, stating only ``outcome_side``: handed to
    the core (an unknown fill) as a buy of the side it went long, never dropped."""
    ex, _ = _execution()
    fill = ex._fill(_fill(order_id="O9", outcome_side="no"), owner="kalshi-order:O9")
    assert isinstance(fill, Fill)
    assert (fill.instrument_id, fill.side, fill.price) == (
        f"kalshi:{TICKER}/NO", Side.BUY, D("0.60"))


@pytest.mark.parametrize("is_taker", [None, "false", 0])
def test_a_fill_whose_is_taker_is_not_a_boolean_is_a_taker(is_taker) -> None:
    """Before: ``is_taker: null`` was read as ``not None``: a maker, charged the maker
    fee (0 off the maker series) when the schedule priced it.  Now anything but ``false``
    is a taker (the schedule never under-states the fee)."""
    ex, _ = _execution()
    ex.learn("c1", "O1")
    raw = _fill(side="yes", action="buy", is_taker=is_taker)
    del raw["fee_cost"]
    fill = ex._fill(raw)
    assert fill is not None and fill.liquidity is Liquidity.TAKER
    assert fill.fee == D("0.06")  # 0.07 x 3 x 0.4 x 0.6 = 0.0504 -> 0.06


# -- paged lists that never end ---------------------------------------------------------
async def test_a_list_of_empty_pages_with_new_cursors_ends() -> None:
    """Before: every answer an empty page and a new cursor (the repeated-cursor check
    never fired): ``pages`` read for ever.  Now empty pages in a row stop it with a
    ``KalshiPagingError``."""
    rest = KalshiRest(KalshiSettings(markets=[TICKER]))
    asked = 0

    async def get(path: str, params: Any = None, **_: Any) -> Any:
        nonlocal asked
        asked += 1
        await asyncio.sleep(0)  # a real read yields: the timeout can fire
        return {"orders": [], "cursor": f"c{asked}"}

    rest.get = get  # type: ignore[method-assign]
    try:
        async with asyncio.timeout(5):
            with pytest.raises(KalshiPagingError, match="empty"):
                await rest.pages("/portfolio/orders", "orders")
        assert asked < 10
    finally:
        await rest.close()


# -- books ----------------------------------------------------------------------------
def test_a_delta_that_crosses_the_book_is_a_resync() -> None:
    """YES bid 0.40 and NO bid 0.55 (YES ask 0.45); a delta adds a NO bid at 0.62 (a YES
    ask at 0.38, under the YES bid): Kalshi would have matched them, so a level was
    missed.  Before: applied and emitted (the core showed a crossed book until some later
    delta undid it).  Now a ``DataError``: the stream resubscribes for a snapshot."""
    ladders = Ladders(TICKER)
    ladders.load([["0.4000", "10.00"]], [["0.5500", "5.00"]])
    with pytest.raises(DataError, match="cross"):
        ladders.apply("no", D("0.62"), D(5))
    with pytest.raises(DataError, match="cross"):
        ladders.apply("yes", D("0.45"), D(1))  # touching: YES bid = YES ask


def test_a_snapshot_listing_a_price_twice_is_refused() -> None:
    """Before: the later level silently replaced the earlier (10 contracts shown as 3)."""
    with pytest.raises(DataError, match="twice"):
        Ladders(TICKER).load([["0.4000", "10.00"], ["0.40", "3.00"]], [])


async def test_an_orderbook_answer_without_orderbook_fp_is_not_an_empty_book() -> None:
    """Before: ``{"orderbook": {...}}`` (the legacy object alone) gave two empty books."""
    class Rest:
        async def get(self, path: str, **_: Any) -> Any:
            return {"orderbook": {"yes": [[40, 10]], "no": [[55, 5]]}}

    with pytest.raises(DataError, match="orderbook_fp"):
        await rest_books(Rest(), [TICKER])  # type: ignore[arg-type]


# -- a position listed twice -------------------------------------------------------------
async def test_a_position_listed_twice_is_counted_once() -> None:
    """Pages that overlap list the market's position twice.  Before: summed, so an exit
    of 10 against 5 YES held was sent whole (10).  Now one listing counts; two that
    disagree refuse the exit unsent."""
    ex, rest = _execution()
    held = {"ticker": TICKER, "position_fp": "5.00"}
    rest.lists["/portfolio/positions"] = [held, dict(held)]
    await ex.submit(_order("c1", Side.SELL, 10, "0.01", reduce_only=True))
    assert rest.sent[-1]["count"] == 5
    rest.lists["/portfolio/positions"] = [held, {**held, "position_fp": "8.00"}]
    with pytest.raises(Exception, match="listed twice"):
        await ex.submit(_order("c2", Side.SELL, 10, "0.01", reduce_only=True))
    assert len(rest.sent) == 1
