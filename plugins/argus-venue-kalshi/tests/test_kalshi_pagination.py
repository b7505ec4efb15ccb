"""Cursor pagination: the local exchange serves every list in small pages and the venue
reads them all (discovery, orders, fills, settlements, look-ups); an empty cursor ends
a list and a repeated cursor is an error, not an endless loop."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from argus_venue_kalshi.rest import KalshiPagingError
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import Fill, Order, OrderType, Side, TimeInForce, VenueError

from .conftest import MARKET

EVENT = {"event_ticker": "KXHIGHNY-24JAN01", "series_ticker": "KXHIGHNY",
         "title": "Highest temperature in NYC on Jan 1, 2024?", "mutually_exclusive": True}


def order(coid: str, limit: str, tif: TimeInForce = TimeInForce.GTC, qty: int = 1) -> Order:
    return Order(coid, "kalshi", "kalshi:KXHIGHNY-24JAN01-T60/YES", Side.BUY, D(qty), D(limit),
                 OrderType.LIMIT, tif, "t")


def gets(exchange, suffix: str) -> list[dict[str, str]]:
    return [r.query for r in exchange.rest.requests
            if r.method == "GET" and r.path.endswith(suffix)]


async def test_event_discovery_reads_every_page_of_its_markets(exchange, local_settings
                                                               ) -> None:
    for k in range(1, 5):  # 5 markets in the event, pages of 2
        exchange.add_market({**MARKET, "ticker": f"KXHIGHNY-24JAN01-T6{k}",
                             "yes_sub_title": f"6{k}+"}, EVENT)
    exchange.engine.events["KXHIGHNY-24JAN01"] = EVENT
    exchange.rest.page_size = 2
    venue = KalshiVenue(local_settings(markets=[], event_tickers=["KXHIGHNY-24JAN01"]))
    try:
        instruments = await venue.instruments()
        assert len(instruments) == 10
        pages = gets(exchange, "/markets")
        assert len(pages) == 3 and "cursor" not in pages[0] and pages[1]["cursor"]
    finally:
        await venue.close()


async def test_market_discovery_pages_and_names_a_missing_ticker(exchange, local_settings
                                                                 ) -> None:
    others = [f"KXHIGHNY-24JAN01-T7{k}" for k in range(3)]
    for t in others:
        exchange.add_market({**MARKET, "ticker": t})
    exchange.rest.page_size = 1
    venue = KalshiVenue(local_settings(markets=[*others, "KXHIGHNY-24JAN01-T60"]))
    try:
        assert len(await venue.instruments()) == 8
        assert len(gets(exchange, "/markets")) == 4
    finally:
        await venue.close()
    venue = KalshiVenue(local_settings(markets=["KXNOPE-1"]))
    try:
        with pytest.raises(VenueError, match="KXNOPE-1 not found"):
            await venue.instruments()
    finally:
        await venue.close()


async def test_orders_fills_and_lookups_read_every_page(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        for k in range(5):  # five resting orders and three fills, pages of 2
            await venue.submit(order(f"rest-{k}", "0.30"))
        for k in range(3):
            await venue.submit(order(f"take-{k}", "0.45", TimeInForce.IOC))
        exchange.rest.page_size = 2
        assert {o.client_order_id for o in await venue.open_orders()} == \
            {f"rest-{k}" for k in range(5)}
        items = await venue.execution._poll()
        fills = [i for i in items if isinstance(i, Fill)]
        assert sorted(f.client_order_id for f in fills) == ["take-0", "take-1", "take-2"]
        # the oldest order is on the last page (newest first)
        found = await venue.lookup(order("rest-0", "0.30"))
        assert found is not None and found.venue_order_id == \
            exchange.engine.by_client_id("rest-0")[0]["order_id"]
        assert max(len(q) for q in gets(exchange, "/portfolio/orders")) >= 2
        assert any(q.get("cursor") for q in gets(exchange, "/portfolio/fills"))
    finally:
        await venue.close()


async def test_settlements_read_every_page(exchange, local_settings) -> None:
    for k in range(3):
        exchange.add_market({**MARKET, "ticker": f"KXHIGHNY-24JAN01-S{k}"})
        exchange.engine.settle(f"KXHIGHNY-24JAN01-S{k}", "yes" if k % 2 else "no")
    exchange.rest.page_size = 1
    venue = KalshiVenue(local_settings())
    try:
        settled = await venue.execution.settlements()
        assert [s["ticker"] for s in settled] == [f"KXHIGHNY-24JAN01-S{k}" for k in (2, 1, 0)]
        assert len(gets(exchange, "/portfolio/settlements")) == 3
    finally:
        await venue.close()


async def test_an_empty_cursor_ends_the_list(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings(page_limit=3))
    try:
        for k in range(6):
            await venue.submit(order(f"r-{k}", "0.30"))
        listed = await venue.rest.pages("/portfolio/orders", "orders", signed=True)
        assert len(listed) == 6
        pages = gets(exchange, "/portfolio/orders")[-2:]
        assert [q["limit"] for q in pages] == ["3", "3"] and "cursor" in pages[1]
        assert len(gets(exchange, "/portfolio/orders")) == 2  # no third request
    finally:
        await venue.close()


async def test_a_repeated_cursor_is_an_error_not_a_loop(exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings())
    try:
        for k in range(5):
            await venue.submit(order(f"loop-{k}", "0.30"))
        exchange.rest.page_size, exchange.rest.repeat_cursor = 2, True
        with pytest.raises(KalshiPagingError, match="twice"):
            await venue.rest.pages("/portfolio/orders", "orders", signed=True)
        assert len(gets(exchange, "/portfolio/orders")) == 2  # the second page repeated it
    finally:
        await venue.close()
