"""``PolymarketVenue``: discovery, books, the websocket stream, fees and live orders."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import ClassVar

from argus_core.interfaces import FeeSchedule, Venue
from argus_core.models import Event, Fill, Instrument, MarketEvent, Order
from argus_venue_polymarket import constants as C
from argus_venue_polymarket import instruments as inst_mod
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream, PolymarketRest, book_events
from argus_venue_polymarket.execution import BasketResult, PolymarketExecution


class PolymarketVenue(Venue):
    """Polymarket's CLOB as an Argus venue.

    ``snapshot()`` pages Gamma ``/events`` and fetches every open market's
    books with batched ``POST /books``; it returns the core ``Event`` groups
    followed by one ``OrderBook`` (or a stale ``BookStatus``) per token.
    ``instruments()`` returns the instruments that discovery found (tick,
    minimum size, fee curve and negRisk flags in ``meta``).  ``stream()``
    emits the events, then the websocket market channel.
    """

    name: ClassVar[str] = C.VENUE
    supports_live_orders: ClassVar[bool] = True
    supports_post_only: ClassVar[bool] = False
    supports_baskets: ClassVar[bool] = True
    time_in_force: ClassVar[tuple[str, ...]] = ("gtc", "gtd", "ioc", "fok")

    def __init__(self, settings: PolymarketSettings | None = None) -> None:
        self.settings = settings or PolymarketSettings()
        self.rest = PolymarketRest(self.settings)
        self._events: list[Event] | None = None
        self._instruments: dict[str, Instrument] = {}
        self.execution = PolymarketExecution(self.settings, self._instruments.get)
        self._stream: MarketStream | None = None
        self._discovered_at = 0.0
        #: Discovery younger than this is reused by ``snapshot()`` (``argus scan`` calls
        #: ``instruments()`` and then ``snapshot()`` on the same venue).
        self.discovery_ttl_s = 60.0

    async def discover(self) -> list[Event]:
        """Run Gamma discovery now (events + instruments), replacing the cache."""
        gamma = await self.rest.events()
        events, instruments = inst_mod.build(gamma, self.settings)
        self._events = events
        self._instruments.clear()
        self._instruments.update({i.id: i for i in instruments})
        self._discovered_at = time.monotonic()
        return events

    async def instruments(self) -> Sequence[Instrument]:
        """Instruments of every discovered market (discovers on first call)."""
        if self._events is None:
            await self.discover()
        return list(self._instruments.values())

    def instrument(self, instrument_id: str) -> Instrument | None:
        """A discovered instrument by id."""
        return self._instruments.get(instrument_id)

    def _live_tokens(self) -> list[str]:
        return [i.symbol for i in self._instruments.values() if i.meta.get("tradeable")]

    async def snapshot(self) -> list[MarketEvent]:
        """Events, then the current book of every tradeable token (REST)."""
        if self._events is None or time.monotonic() - self._discovered_at > self.discovery_ttl_s:
            await self.discover()
        events = self._events or []
        books = await self.rest.books(self._live_tokens())
        out: list[MarketEvent] = list(events)
        out.extend(book_events(books, verify_hash=self.settings.verify_book_hash,
                               now_ns=time.time_ns()))
        return out

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """Discovered events, then the websocket market channel until closed."""
        if self._events is None:
            await self.discover()
        for ev in self._events or []:
            yield ev
        self._stream = MarketStream(self.settings, self._live_tokens(), self.rest)
        async for ev in self._stream:
            yield ev

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """An upper bound of the fee in bps of notional.

        Polymarket charges ``rate * (p(1-p))**e`` per share, i.e.
        ``rate * p**(e-1) * (1-p)**e`` of notional, which is at most ``rate``
        for ``e >= 1``; the core's flat-bps schedule cannot express the
        curve, so we give the conservative bound (use :meth:`fee` for the
        exact amount).  Makers pay nothing on taker-only schedules.
        """
        inst = self._instruments.get(instrument_id)
        curve = inst_mod.fee_of(inst) if inst else None
        if curve is None:
            rate = self.settings.default_fee_rate
            return FeeSchedule(Decimal(0), rate * 10_000)
        maker = Decimal(0) if curve.taker_only else curve.rate * 10_000
        return FeeSchedule(maker, curve.rate * 10_000)

    def fee(self, instrument_id: str, shares: Decimal, price: Decimal, *,
            maker: bool = False) -> Decimal:
        """The exact fee of a fill under the market's fee curve."""
        inst = self._instruments.get(instrument_id)
        if inst is None:
            return Decimal(0)
        return inst_mod.fee_of(inst).fee(shares, price, maker=maker)

    async def submit(self, order: Order) -> list[Fill]:
        """Sign locally and send through py-clob-client-v2 (see ``execution``)."""
        return await self.execution.submit(order)

    async def submit_basket(self, orders: Sequence[Order]) -> BasketResult:
        """All legs of a basket as FOK; incomplete baskets are unwound (see ``execution``)."""
        return await self.execution.submit_basket(orders)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel a resting order."""
        await self.execution.cancel(client_order_id)

    async def open_orders(self) -> list[Order]:
        """Open orders on the venue."""
        return await self.execution.open_orders()

    async def close(self) -> None:
        """Close the stream, the heartbeat and the HTTP pool."""
        if self._stream is not None:
            await self._stream.close()
        await self.execution.close()
        await self.rest.close()
