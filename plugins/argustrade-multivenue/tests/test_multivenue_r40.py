"""Red team of the composite's lifetime: closing its stream or executions closes the
inner venues' (not whenever the collector finds them), in replay (time merge) and
live (arrival merge) modes; an instrument listed mid-stream stays routed after
``instruments()`` is asked again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import pytest
from argus_multivenue import MultiVenue
from argus_multivenue.testing import ClosableFeed

from argus_core import Bar, Fill, FillCorrection, Instrument, MarketEvent, OrderUpdate, Venue


class Inner(Venue):
    """An endless venue whose streams say when they are closed."""

    name: ClassVar[str] = "inner"
    supports_live_orders: ClassVar[bool] = True

    def __init__(self, venue: str, late: Sequence[Instrument] = ()) -> None:
        self.venue = venue
        self.late = list(late)
        self.stream_closed = self.executions_closed = False

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument(self.venue, "X")]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        try:
            for inst in self.late:
                yield inst
            ts = 0
            while True:
                ts += 1
                yield Bar(f"{self.venue}:X", ts, 1.0, 1.0, 1.0, 1.0, 1.0)
                await asyncio.sleep(0)
        finally:
            self.stream_closed = True

    def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        def closed() -> None:
            self.executions_closed = True
        return ClosableFeed(closed)


def composite(mode: str, *late: Instrument) -> tuple[MultiVenue, Inner, Inner]:
    a, b = Inner("a", late), Inner("b")
    venue = MultiVenue(inner={"a": a, "b": b})
    venue.mode = mode
    return venue, a, b


@pytest.mark.parametrize("mode", ["replay", "live"])
async def test_closing_the_stream_closes_every_inner_stream(mode: str) -> None:
    venue, a, b = composite(mode)
    stream = venue.stream()
    for _ in range(6):
        await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    # before: the inner generators stayed open until garbage collection
    assert a.stream_closed and b.stream_closed


async def test_closing_the_executions_closes_every_inner_executions_stream() -> None:
    venue, a, b = composite("live")
    executions = venue.executions()
    pending = asyncio.ensure_future(anext(executions))
    await asyncio.sleep(0.01)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await executions.aclose()  # type: ignore[attr-defined]
    assert a.executions_closed and b.executions_closed


async def test_an_instrument_listed_mid_stream_stays_routed_after_instruments_again(
        ) -> None:
    late = Instrument("b", "LATE")  # listed by venue a under another prefix
    venue, _a, _b = composite("live", late)
    await venue.instruments()
    stream = venue.stream()
    try:
        while (await anext(stream)) != late:
            pass
        assert venue.owner_name("b:LATE") == "a"
        await venue.instruments()  # before: forgot it, and routed b:LATE to venue b
        assert venue.owner_name("b:LATE") == "a"
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
