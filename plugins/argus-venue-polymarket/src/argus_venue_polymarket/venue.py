"""``PolymarketVenue``: discovery, books, the websocket stream, fees and live orders."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

from argus_core.interfaces import Venue
from argus_core.models import Event, Fill, Instrument, MarketEvent, Order
from argus_venue_polymarket import constants as C
from argus_venue_polymarket import instruments as inst_mod
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream, PolymarketRest, book_events
from argus_venue_polymarket.execution import BasketResult, PolymarketExecution
from argus_venue_polymarket.fees import PolymarketFeeSchedule
from argus_venue_polymarket.schemas import FeeCurve


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
        #: What the last ``submit_basket`` did (complete?, unwind fills, naked residuals).
        self.last_basket: BasketResult | None = None

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

    def fee_schedule(self, instrument_id: str) -> PolymarketFeeSchedule:
        """The market's exact fee formula (Gamma ``feeSchedule``; the configured default
        curve for instruments discovery does not know)."""
        inst = self._instruments.get(instrument_id)
        if inst is None:
            s = self.settings
            rate = s.fee_rate_override if s.fee_rate_override is not None else s.default_fee_rate
            return PolymarketFeeSchedule.of(FeeCurve(rate, s.default_fee_exponent))
        return PolymarketFeeSchedule.of(inst_mod.fee_of(inst))

    async def submit(self, order: Order) -> list[Fill]:
        """Sign locally and send through py-clob-client-v2 (see ``execution``)."""
        return await self.execution.submit(order)

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        """All legs of a basket as FOK in one ``POST /orders``; if any leg is killed, the
        filled legs are unwound with FAK orders at once (see ``execution``).

        Returns the legs' fills and the unwind fills (booked against the leg they
        flatten, opposite side).  A residual the unwind could not trade is logged as an
        error naming the basket and stays visible as a position.
        """
        result = await self.execution.submit_basket(orders)
        self.last_basket = result
        return [*result.fills, *result.unwind_fills]

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
