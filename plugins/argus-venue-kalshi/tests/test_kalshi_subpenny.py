"""Subpenny price levels: a market's grid from ``price_ranges`` (or its documented
``price_level_structure``), the instruments' tick size, prices read exactly from the
``*_dollars`` strings, and orders sent as ``<side>_price_dollars`` on the grid, against
the local exchange."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.execution import order_body
from argus_venue_kalshi.schemas import Market, on_grid
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    BookDelta,
    DataError,
    Fill,
    Order,
    OrderBook,
    OrderType,
    Side,
    TimeInForce,
    VenueError,
)

TICKER = "KXTAIL-26DEC31-B1"
YES, NO = f"kalshi:{TICKER}/YES", f"kalshi:{TICKER}/NO"
TAPERED = [{"start": "0.0000", "end": "0.1000", "step": "0.0010"},
           {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
           {"start": "0.9000", "end": "1.0000", "step": "0.0010"}]


def buy(coid: str, limit: str, iid: str = YES, qty: int = 1,
        tif: TimeInForce = TimeInForce.IOC) -> Order:
    return Order(coid, "kalshi", iid, Side.BUY, D(qty), D(limit), OrderType.LIMIT, tif, "t")


def test_the_grid_comes_from_price_ranges_else_the_structure_else_tick_size() -> None:
    base = {"ticker": TICKER, "event_ticker": "E", "title": "t", "status": "active"}
    listed = Market.parse(dict(base, price_level_structure="tapered_deci_cent",
                               price_ranges=TAPERED))
    assert listed.tick_size == D("0.001") and listed.price_ranges[1] == (
        D("0.1"), D("0.9"), D("0.01"))
    named = Market.parse(dict(base, price_level_structure="center_deci_edge_centi_cent"))
    assert named.tick_size == D("0.0001") and named.price_ranges[0][1] == D("0.01")
    assert Market.parse(dict(base, tick_size=1)).price_ranges == ((D(0), D(1), D("0.01")),)
    with pytest.raises(DataError, match=f"market {TICKER}: price range"):
        Market.parse(dict(base, price_ranges=[{"start": "0.5", "end": "0.2", "step": "0.01"}]))
    grid = listed.price_ranges
    assert on_grid(D("0.045"), grid) and on_grid(D("0.955"), grid) and on_grid(D("0.10"), grid)
    assert not on_grid(D("0.455"), grid) and not on_grid(D(0), grid)
    assert not on_grid(D("0.0455"), grid)


def test_orders_carry_the_documented_dollar_price_on_the_grid() -> None:
    grid = Market.parse({"ticker": TICKER, "price_ranges": TAPERED}).price_ranges
    body = order_body(buy("a", "0.045"), grid)
    assert body["yes_price_dollars"] == "0.0450" and "yes_price" not in body
    body = order_body(buy("b", "0.42", iid=NO), grid)
    assert (body["no_price_dollars"], body["no_price"]) == ("0.4200", 42)
    for off in ("0.455", "0.04501"):
        with pytest.raises(VenueError, match=f"price {off} is not on {TICKER}'s price grid"):
            order_body(buy("c", off), grid)
    with pytest.raises(VenueError, match="not on"):
        order_body(buy("d", "0.045"))  # no grid given: whole cents only


@pytest.fixture
def tail_market(exchange: Any) -> Any:
    """A tapered market: NO bids at 0.955 (so a YES ask at 0.045) and 0.95, YES bid 0.03."""
    template = next(iter(exchange.engine.markets.values()))
    exchange.add_market(dict(template, ticker=TICKER, event_ticker="KXTAIL-26DEC31",
                             price_level_structure="tapered_deci_cent",
                             price_ranges=TAPERED), yes_bids={3: 7},
                        no_bids={D("95.5"): 4, 95: 10})
    return exchange


async def test_subpenny_books_orders_and_fills_are_exact(tail_market, local_settings) -> None:
    venue = KalshiVenue(local_settings(markets=[TICKER], ws_fills=False))
    try:
        yes = next(i for i in await venue.instruments() if i.id == YES)
        assert yes.tick_size == D("0.001") and yes.meta["price_ranges"][0] == [
            "0.0000", "0.1000", "0.0010"]
        book = next(e for e in await venue.snapshot()
                    if isinstance(e, OrderBook) and e.instrument_id == YES)
        assert book.best_ask == pytest.approx(0.045) and book.best_bid == pytest.approx(0.03)
        async with contextlib.aclosing(venue.executions()) as feed:
            await venue.submit(buy("sub-1", "0.045", qty=3))
            fill = await asyncio.wait_for(_first_fill(feed), 10)
        assert (fill.price, fill.quantity) == (D("0.0450"), 3) and str(fill.price) == "0.0450"
        sent = next(r.body for r in tail_market.rest.requests if r.method == "POST")
        assert sent["yes_price_dollars"] == "0.0450" and "yes_price" not in sent
        order = tail_market.engine.by_client_id("sub-1")[0]
        assert (order["yes_price"], order["yes_price_dollars"]) == (None, "0.0450")
        with pytest.raises(VenueError, match="not on"):  # refused before it is sent
            await venue.submit(buy("sub-2", "0.455"))
        assert len(tail_market.engine.by_client_id("sub-2")) == 0
    finally:
        await venue.close()


async def test_the_exchange_refuses_an_off_grid_price(tail_market, local_settings) -> None:
    from argus_venue_kalshi.testing.engine import Rejected
    with pytest.raises(Rejected, match="not on the market's price grid"):
        tail_market.engine.create({"ticker": TICKER, "side": "yes", "action": "buy",
                                   "count": 1, "yes_price_dollars": "0.4550"})
    with pytest.raises(Rejected, match="differ"):
        tail_market.engine.create({"ticker": TICKER, "side": "yes", "action": "buy",
                                   "count": 1, "yes_price_dollars": "0.4200", "yes_price": 41})


async def test_subpenny_websocket_deltas_are_exact(tail_market, local_settings) -> None:
    venue = KalshiVenue(local_settings(markets=[TICKER], settlement_poll_s=0))
    items: list[Any] = []

    async def run() -> None:
        async for item in venue.stream():
            items.append(item)

    task = asyncio.get_running_loop().create_task(run())
    try:
        for _ in range(1000):
            if any(isinstance(i, OrderBook) for i in items):
                break
            await asyncio.sleep(0.01)
        tail_market.engine.set_level(TICKER, "no", D("95.5"), 1)
        for _ in range(1000):
            if any(isinstance(i, BookDelta) for i in items):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await venue.close()
    delta = next(i for i in items if isinstance(i, BookDelta) and i.instrument_id == YES)
    assert (delta.side, delta.price, delta.size) == (Side.SELL, D("0.045"), 1)


async def _first_fill(feed: Any) -> Fill:
    async for item in feed:
        if isinstance(item, Fill):
            return item
    raise AssertionError("the feed ended without a fill")
