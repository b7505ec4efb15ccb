"""A scripted inner venue for the tests of composite venues (this plugin's and
``argustrade-crossvenue``'s): it records what ``resume`` told it and replays executions;
and an executions feed that says when it is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

from argus_core import (
    Fill,
    FillCorrection,
    Instrument,
    MarketEvent,
    OrderUpdate,
    Venue,
    VenueResume,
)


class ScriptedInner(Venue):
    """An inner venue serving the spot ``venue:X`` that keeps the last
    :class:`VenueResume` it was handed in ``known`` and yields ``executions``, then ends
    (or, with ``then_wait``, waits as a live stream does)."""

    name: ClassVar[str] = "inner"
    supports_live_orders: ClassVar[bool] = True

    def __init__(self, venue: str, executions: Sequence[Any] = (), *,
                 then_wait: bool = False) -> None:
        self.venue, self.items, self.then_wait = venue, list(executions), then_wait
        self.known: VenueResume | None = None

    async def instruments(self) -> Sequence[Instrument]:
        """The one instrument ``venue:X``."""
        return [Instrument(self.venue, "X", "spot")]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """No market data."""
        return
        yield  # pragma: no cover

    def resume(self, known: VenueResume) -> None:
        """Keep what the composite handed on."""
        self.known = known

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """The scripted items; then the end, or a wait for ever with ``then_wait``."""
        for item in self.items:
            yield item
        if self.then_wait:
            await asyncio.sleep(3600)  # a live stream: never ends on its own


class ClosableFeed:
    """An executions feed as an adapter may write one: an iterator object (no generator
    frame the collector would finalise) holding a connection that ``aclose`` ends; it
    waits for ever, and calls ``on_close`` when closed."""

    def __init__(self, on_close: Callable[[], None]) -> None:
        self.on_close = on_close

    def __aiter__(self) -> ClosableFeed:
        return self

    async def __anext__(self) -> Fill | OrderUpdate | FillCorrection:
        await asyncio.Event().wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """The connection ends: ``on_close`` is told."""
        self.on_close()
