"""``KrakenVenue``: the core ``Venue`` for Kraken spot.

Market data comes from WebSocket v2 (:mod:`.data`), instruments and one-shot
books from REST (:mod:`.rest`), order entry and fills from :mod:`.execution`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import ClassVar

import httpx

from argus_core.errors import VenueError
from argus_core.interfaces import FeeSchedule, Venue
from argus_core.models import Fill, Instrument, MarketEvent, Order
from argus_venue_kraken import constants as C
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.data import KrakenMarketFeed
from argus_venue_kraken.execution import KrakenExecution, KrakenExecutionsFeed
from argus_venue_kraken.ratelimit import Clock, Sleep
from argus_venue_kraken.rest import KrakenRestClient

log = logging.getLogger(__name__)


class KrakenVenue(Venue):
    """Kraken spot: checksummed WS v2 books, trades, bars, ticker; signed REST order entry.

    ``stream()`` yields ``OrderBook`` after every verified book message,
    ``BookStatus(live=False)`` when a book becomes doubtful (checksum mismatch,
    gap, malformed frame, disconnect, exchange maintenance), ``Trade``, ``Bar``
    (stamped at close, only when complete) and ``Signal`` (ticker fields).
    Fills from the authenticated ``executions`` channel arrive on :meth:`fills`.
    """

    name: ClassVar[str] = C.VENUE
    supports_live_orders: ClassVar[bool] = True
    supports_post_only: ClassVar[bool] = False
    time_in_force: ClassVar[tuple[str, ...]] = ("gtc", "ioc", "gtd")

    def __init__(self, settings: KrakenSettings | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 rng: random.Random | None = None, sleep: Sleep | None = None,
                 clock: Clock | None = None, clock_ns: Callable[[], int] | None = None) -> None:
        self.settings = settings or KrakenSettings()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock_ns = clock_ns or time.time_ns
        self.rest = KrakenRestClient(self.settings, transport=transport, clock=clock, sleep=sleep)
        self.execution = KrakenExecution(self.settings, self.rest)
        self.feed: KrakenMarketFeed | None = None
        self.executions_feed: KrakenExecutionsFeed | None = None
        self._fills: asyncio.Queue[Fill] = asyncio.Queue()
        self._private_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"KrakenVenue(pairs={self.settings.pairs!r}, rest_url={self.settings.rest_url!r})"

    async def instruments(self) -> Sequence[Instrument]:
        """Instruments of the configured pairs, from AssetPairs."""
        pairs = await self.rest.asset_pairs(self.settings.pairs)
        return [pairs[s].instrument() for s in self.settings.pairs]

    async def stream(self) -> AsyncIterator[MarketEvent]:  # type: ignore[override]
        """Market events from WS v2 until closed (reconnecting as needed)."""
        pairs = await self.rest.asset_pairs(self.settings.pairs)
        feed = self.feed = KrakenMarketFeed(self.settings, pairs, rng=self._rng, sleep=self._sleep,
                                            clock_ns=self._clock_ns)
        if self.settings.has_credentials and self.settings.private_stream:
            self._start_private()
        try:
            async for event in feed.events():
                yield event
        finally:
            await feed.close()
            await self._stop_private()

    def _start_private(self) -> None:
        if self._private_task is not None and not self._private_task.done():
            return
        self.executions_feed = KrakenExecutionsFeed(self.settings, self.rest, self.execution,
                                                    rng=self._rng, sleep=self._sleep,
                                                    clock_ns=self._clock_ns)
        self._private_task = asyncio.create_task(self._pump_fills(self.executions_feed),
                                                 name="kraken-executions")

    async def _pump_fills(self, feed: KrakenExecutionsFeed) -> None:
        try:
            async for fill in feed.events():
                await self._fills.put(fill)
        except VenueError as exc:
            log.error("Kraken executions stream stopped: %s", exc)

    async def _stop_private(self) -> None:
        if self.executions_feed is not None:
            await self.executions_feed.close()
        if self._private_task is not None:
            self._private_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._private_task
            self._private_task = None

    async def fills(self) -> AsyncIterator[Fill]:
        """Fills of this account as the ``executions`` channel reports them.

        The channel starts with ``stream()`` when API keys are configured, or
        here when only fills are wanted.
        """
        if self.settings.has_credentials and self._private_task is None:
            self._start_private()
        while True:
            yield await self._fills.get()

    async def snapshot(self) -> list[MarketEvent]:
        """REST Depth of every configured pair (``book_depth`` levels)."""
        count = min(self.settings.book_depth, 500)
        now = self._clock_ns()
        return [await self.rest.depth(s, count, ts_ns=now) for s in self.settings.pairs]

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """Maker/taker bps of the configured volume tier (base: 25 / 40)."""
        maker, taker = self.settings.fee_tier()
        return FeeSchedule(maker_bps=maker, taker_bps=taker)

    async def submit(self, order: Order) -> list[Fill]:
        """Send a live order; fills arrive later on :meth:`fills` (none are known at once)."""
        await self.execution.submit(order)
        return []

    async def cancel(self, client_order_id: str) -> None:
        """Cancel a live order by its core client order id."""
        await self.execution.cancel(client_order_id)

    async def open_orders(self) -> list[Order]:
        """Kraken's open orders (and re-arm the dead-man's switch for them)."""
        return await self.execution.open_orders()

    async def close(self) -> None:
        """Close sockets, the dead-man task and the HTTP pool."""
        if self.feed is not None:
            await self.feed.close()
        await self._stop_private()
        await self.execution.close()
        await self.rest.close()


