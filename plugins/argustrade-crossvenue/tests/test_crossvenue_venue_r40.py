"""Red team of the composite venue's lifetime: the legging record stays bounded over a
long run, closing the composite's stream or the composite closes the inner venues'
streams (not whenever the collector finds them), and a market listed mid-stream keeps its
trading rules (a second leg's lot) when ``instruments()`` is asked again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal as D
from typing import Any, ClassVar

from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.venue import CrossVenue
from argus_multivenue.testing import ClosableFeed

from argus_core import (
    Fill,
    FillCorrection,
    Instrument,
    Liquidity,
    MarketEvent,
    OrderBook,
    OrderStatus,
    OrderUpdate,
    Side,
    Venue,
)


class Inner(Venue):
    """An inner venue whose stream and executions say when they are closed."""

    name: ClassVar[str] = "inner"

    def __init__(self, venue: str, listed: Sequence[Instrument] = (),
                 late: Sequence[MarketEvent] = ()) -> None:
        self.venue = venue
        self.listed = list(listed)
        self.late = list(late)
        self.stream_closed = self.executions_closed = False
        self.stream_started = asyncio.Event()

    async def instruments(self) -> Sequence[Instrument]:
        return list(self.listed)

    async def stream(self) -> AsyncIterator[MarketEvent]:
        try:
            for event in self.late:
                yield event
            yield OrderBook(f"{self.venue}:X", 1, [(0.4, 1.0)], [(0.5, 1.0)])
            self.stream_started.set()
            await asyncio.Event().wait()  # a live feed: runs until closed
        finally:
            self.stream_closed = True

    def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        def closed() -> None:
            self.executions_closed = True
        return ClosableFeed(closed)


def composite(**inner: Any) -> CrossVenue:
    venues = {"kalshi": inner.get("kalshi") or Inner("kalshi"),
              "polymarket": inner.get("polymarket") or Inner("polymarket")}
    return CrossVenue(CrossVenueSettings(leg_timeout_s=1.0), inner=venues)


def _fill(fill_id: str, coid: str) -> Fill:
    return Fill(fill_id, coid, "v", "kalshi:T/YES", Side.BUY, D("0.4"), D(1), D(0),
                Liquidity.TAKER, 1)


def test_the_record_of_orders_no_basket_waits_on_ends_with_them() -> None:
    """Every single order the run sends is reported on the executions stream: before,
    each left a ``_Leg`` behind for the whole run (10,000 orders, 10,000 records)."""
    venue = composite()
    for n in range(10_000):
        venue._note(_fill(f"f{n}", f"c{n}"))
        venue._note(OrderUpdate(f"c{n}", OrderStatus.FILLED, 2))
    venue._note(_fill("g", "open-one"))  # not final yet: kept
    assert list(venue._legs) == ["open-one"]


async def test_closing_the_composite_stream_closes_both_inner_streams() -> None:
    k, p = Inner("kalshi"), Inner("polymarket")
    venue = composite(kalshi=k, polymarket=p)
    stream = venue.stream()
    await anext(stream)
    await asyncio.wait_for(asyncio.gather(k.stream_started.wait(), p.stream_started.wait()),
                           2)
    await stream.aclose()  # type: ignore[attr-defined]
    # before: both inner generators stayed open until garbage collection
    assert k.stream_closed and p.stream_closed


async def test_close_closes_the_inner_executions_streams_before_the_venues() -> None:
    k, p = Inner("kalshi"), Inner("polymarket")
    venue = composite(kalshi=k, polymarket=p)
    venue._start_pumps()
    await asyncio.sleep(0.01)
    await venue.close()
    assert k.executions_closed and p.executions_closed


async def test_a_market_listed_mid_stream_keeps_its_lot_after_instruments_again() -> None:
    """A Polymarket token listed while streaming, lots of 5: the second leg on it is
    floored to its lot (before: to the default 1, an order the venue refuses), also after
    ``instruments()`` is asked again."""
    late = Instrument("polymarket", "999", kind="binary", lot_size=D(5))
    p = Inner("polymarket", late=[late])
    venue = composite(polymarket=p)
    stream = venue.stream()
    try:
        seen = [await anext(stream) for _ in range(2)]
        assert late in seen
        assert venue._lot_floor("polymarket:999", D(12)) == 10
        await venue.instruments()
        assert venue._lot_floor("polymarket:999", D(12)) == 10
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await venue.close()
