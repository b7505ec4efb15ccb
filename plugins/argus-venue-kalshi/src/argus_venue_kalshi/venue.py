"""``KalshiVenue``: the core ``Venue`` assembled from the plugin's modules.

Instruments come from ``GET /markets?tickers=`` and ``GET /events/{event_ticker}`` with
``GET /markets?event_ticker=`` (every page; :mod:`.instruments`), books from the
websocket (:mod:`.data`), fees from :mod:`.fees`, orders from :mod:`.execution`.

Markets Kalshi adds to a configured event while ``stream()`` runs are followed (a
``created`` / ``activated`` lifecycle event of the websocket, and ``GET
/markets?event_ticker=`` every ``discovery_poll_s``): their instruments, then the event
rebuilt with them, join the stream, then their books (:meth:`KalshiVenue._follow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import attrs
import httpx

from argus_core import (
    BookStatus,
    ConfigError,
    DataError,
    Event,
    FeeSchedule,
    Fill,
    FillCorrection,
    Instrument,
    MarketEvent,
    Order,
    OrderUpdate,
    Settlement,
    Venue,
    VenueError,
    VenueResume,
)
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.baskets import KalshiBasketExecution
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.data import BookStream, rest_books
from argus_venue_kalshi.fees import KalshiFeeSchedule
from argus_venue_kalshi.instruments import (
    NO,
    SETTLED_STATUSES,
    VOID,
    YES,
    build,
    instrument_id,
    outcome,
    parse_instrument_id,
    settlement_price,
    settlement_ts,
    settlements_of,
    void_settlements,
)
from argus_venue_kalshi.rest import KalshiRest
from argus_venue_kalshi.schemas import KalshiEvent, Market

log = logging.getLogger(__name__)


async def _pump(events: AsyncIterator[MarketEvent],
                queue: asyncio.Queue[MarketEvent | BaseException]) -> None:
    """Copy ``events`` into ``queue``; an error ends the stream through the queue."""
    try:
        async for event in events:
            queue.put_nowait(event)
    except Exception as exc:
        queue.put_nowait(exc)


class KalshiVenue(Venue):
    """Kalshi: binary YES/NO contracts of the configured markets and events, websocket
    books with sequence checks, limit / IOC / FOK / post-only orders by client order id,
    baskets in one batch."""

    name = "kalshi"
    supports_live_orders = True
    supports_post_only = True
    supports_baskets = True
    guards_reduce_only = True  # exits sized to GET /portfolio/positions (execution.py)
    time_in_force = ("gtc", "ioc", "fok", "post_only")
    default_stale_after_s = 60.0

    def __init__(self, settings: KalshiSettings | None = None) -> None:
        self.settings = settings or KalshiSettings()
        self.rest = KalshiRest(self.settings)
        self.execution = KalshiBasketExecution(self.settings, self.rest, KalshiFeeSchedule())
        self._instruments: list[Instrument] = []
        self._events: list[Event] = []
        self._series: dict[str, str] = {}
        self._markets: list[Market] = []
        #: configured event ticker -> the Kalshi event with the markets followed so far.
        self._kevents: dict[str, KalshiEvent] = {}
        #: market tickers announced by the lifecycle channel, to look up.
        self._announced: set[str] = set()
        #: look-ups that failed, tried again at the next discovery poll.
        self._lookup_failed: set[str] = set()
        #: announced tickers whose market belongs to no configured event.
        self._foreign: set[str] = set()
        self._discovery_wanted: asyncio.Event | None = None
        #: The book stream of the running ``stream()`` (None before).
        self.book_stream: BookStream | None = None
        #: instrument id -> settlement price, for every instrument settled in this stream.
        self.settled: dict[str, Decimal | None] = {}  # None: voided
        #: market ticker -> the outcome it was settled at ("yes", "scalar 0.37", ...).
        self.resolved: dict[str, str] = {}
        #: market ticker -> (outcome settled at, amended outcome reported later).
        self.amended: dict[str, tuple[str, str]] = {}

    async def instruments(self) -> Sequence[Instrument]:
        """The YES and NO instruments of every configured market and event (cached)."""
        if not self._instruments:
            if self.settings.has_credentials:
                await self.rest.load_costs()  # what each request costs this account
            events = []
            for ticker in self.settings.event_tickers:
                raw = await self.rest.get(f"/events/{ticker}")
                # an event's markets may be many: read them from the paged list
                nested = await self._event_markets(ticker)
                events.append(KalshiEvent.parse(raw["event"], nested))
                self._kevents[ticker] = events[-1]
            markets = await self._markets_by_ticker(self.settings.markets)
            self._events, self._instruments = build(events, markets)
            self._markets = [*(m for ev in events for m in ev.markets), *markets]
            for inst in self._instruments:
                self._series[inst.meta["ticker"]] = inst.meta.get("series_ticker", "")
            for market in self._markets:
                self.execution.grids[market.ticker] = market.price_ranges
        return self._instruments

    async def _event_markets(self, event_ticker: str) -> list[dict[str, Any]]:
        """Every market of ``event_ticker`` (``GET /markets?event_ticker=``, every page)."""
        return await self.rest.pages("/markets", "markets", {"event_ticker": event_ticker})

    async def _markets_by_ticker(self, tickers: list[str]) -> list[Market]:
        """The configured markets from ``GET /markets?tickers=...`` (every page), in the
        configured order; a ticker Kalshi does not list is an error."""
        if not tickers:
            return []
        listed = {raw.get("ticker"): raw for raw in await self.rest.pages(
            "/markets", "markets", {"tickers": ",".join(tickers)})}
        missing = [t for t in tickers if t not in listed]
        if missing:
            raise VenueError(f"kalshi: market(s) {', '.join(missing)} not found; check "
                             f"[plugins.kalshi] markets")
        return [Market.parse(listed[t]) for t in tickers]

    def tickers(self) -> list[str]:
        """Market tickers of the loaded instruments, in order."""
        return list(dict.fromkeys(i.meta["ticker"] for i in self._instruments))

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """Events and already settled markets' settlements first, then websocket books
        and deltas, with ``Settlement`` events for markets that settle meanwhile (the
        websocket ``market_lifecycle_v2`` channel, and ``GET /markets`` polled every
        ``settlement_poll_s``), each market resolved once (:meth:`resolve`).

        With ``end_when_resolved`` the stream ends once every followed market has
        settled; otherwise it runs until cancelled.  A settled market whose result is
        malformed ends it with a ``DataError`` naming the market and the field.
        """
        await self.instruments()
        for event in self._events:
            yield event
        for known in await self._resolve_loaded():
            if not isinstance(known, Settlement) or self._first(known):
                yield known
        if self._all_settled():
            return
        queue: asyncio.Queue[MarketEvent | BaseException] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        books = BookStream(self.settings, self.rest, self.tickers(), self.resolve)
        tasks = [loop.create_task(_pump(books.events(), queue))]
        self.book_stream = books
        books.catch_up = self._read_settlements
        if self.settings.settlement_poll_s > 0:
            tasks.append(loop.create_task(self._poll_settlements(queue)))
        if self.settings.event_tickers:
            self._discovery_wanted = asyncio.Event()
            books.on_new_market = self._on_new_market
            tasks.append(loop.create_task(self._follow_new_markets(queue, books)))
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Settlement) and not self._first(item):
                    continue  # the websocket and the poll both report a settlement
                yield item
                # a resolution's events reach the queue together: wait for the last one
                if queue.empty() and self._all_settled():
                    log.info("kalshi: every followed market has settled; stream ends")
                    return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- markets added to a configured event while streaming ---------------------------
    def _event_of(self, ticker: str) -> str | None:
        """The configured event whose markets' tickers ``ticker`` looks like one of
        (``<EVENT_TICKER>-<suffix>``; the longest such event), else None."""
        matches = [e for e in self.settings.event_tickers if ticker.startswith(f"{e}-")]
        return max(matches, key=len) if matches else None

    def _known(self) -> set[str]:
        return {m.ticker for m in self._markets} | set(self.tickers())

    def _on_new_market(self, ticker: str) -> None:
        """A lifecycle ``created`` / ``activated`` event announced ``ticker``: look it up
        soon if it may belong to a configured event (never for another event's)."""
        if (ticker in self._foreign or self._event_of(ticker) is None
                or ticker in self._known() or self._discovery_wanted is None):
            return
        self._announced.add(ticker)
        self._discovery_wanted.set()

    async def _follow_new_markets(self, queue: asyncio.Queue[MarketEvent | BaseException],
                                  books: BookStream) -> None:
        """Follow markets added to the configured events: those the lifecycle channel
        announces, looked up at once (``GET /markets/{ticker}``), and every
        ``discovery_poll_s`` (0: never) any market ``GET /markets?event_ticker=`` lists
        that is not followed yet.  A failed read is logged and tried again at the next
        poll; it never ends the stream (a settled market's malformed result does, as
        the settlement poll's)."""
        poll = self.settings.discovery_poll_s
        wanted = self._discovery_wanted or asyncio.Event()
        next_poll = time.monotonic() + poll
        while True:
            wait = max(0.0, next_poll - time.monotonic()) if poll > 0 else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wanted.wait()
            wanted.clear()
            announced, self._announced = self._announced, set()
            found: list[Market] = []
            if poll > 0 and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + poll
                found = await self._poll_events()
                announced |= self._lookup_failed
                self._lookup_failed = set()
            listed = {m.ticker for m in found}
            for ticker in sorted(announced - listed - self._known()):
                market = await self._look_up(ticker)
                if market is not None:
                    found.append(market)
            try:
                await self._follow(found, queue, books)
            except DataError as exc:
                queue.put_nowait(exc)  # a settled market's result we cannot read
                return
            except Exception:  # a bug here must not end the stream
                log.exception("kalshi: could not follow new markets (again at the next "
                              "poll)")

    async def _poll_events(self) -> list[Market]:
        """The markets of every configured event not followed yet (an event that cannot
        be read is logged and read again at the next poll)."""
        out: list[Market] = []
        for event_ticker in self.settings.event_tickers:
            try:
                raw = await self._event_markets(event_ticker)
                listed = [Market.parse(m) for m in raw]
            except (VenueError, DataError, httpx.TransportError, KeyError, TypeError,
                    ValueError, AttributeError) as exc:
                log.warning("kalshi: cannot list the markets of event %s: %s (again in "
                            "%gs)", event_ticker, exc, self.settings.discovery_poll_s)
                continue
            known = self._known()
            out.extend(m if m.event_ticker else attrs.evolve(m, event_ticker=event_ticker)
                       for m in listed if m.ticker not in known
                       and m.event_ticker in (event_ticker, ""))
        return out

    async def _look_up(self, ticker: str) -> Market | None:
        """``GET /markets/{ticker}``: the market when its ``event_ticker`` is configured;
        None otherwise, or when the read fails (logged; tried again at the next poll)."""
        try:
            market = Market.parse((await self.rest.get(f"/markets/{ticker}"))["market"])
        except (VenueError, DataError, httpx.TransportError, KeyError, TypeError,
                ValueError, AttributeError) as exc:
            self._lookup_failed.add(ticker)
            log.warning("kalshi: cannot look up new market %s: %s (again at the next "
                        "discovery poll)", ticker, exc)
            return None
        if market.event_ticker not in self._kevents:
            self._foreign.add(ticker)
            log.info("kalshi: new market %s is in event %r, not a configured one; not "
                     "followed", ticker, market.event_ticker)
            return None
        return market

    async def _follow(self, markets: list[Market],
                      queue: asyncio.Queue[MarketEvent | BaseException],
                      books: BookStream) -> None:
        """Follow ``markets`` (new markets of configured events): each event is rebuilt
        with them (:func:`~.instruments.build`, as at the start); their instruments go
        into the stream, then their binary events and the rebuilt event, then the
        settlements of any already settled; then their books are subscribed on the
        open websocket session and every reconnect.  From then on the settlement poll,
        the lifecycle channel, the end rule and ``fee_schedule`` know them."""
        by_event: dict[str, dict[str, Market]] = {}
        known = self._known()
        for market in markets:
            if market.ticker not in known and market.event_ticker in self._kevents:
                by_event.setdefault(market.event_ticker, {})[market.ticker] = market
        for event_ticker, fresh in by_event.items():
            kev = attrs.evolve(self._kevents[event_ticker],
                               markets=(*self._kevents[event_ticker].markets, *fresh.values()))
            events, instruments = build([kev], [])
            ids = {i.id for i in self._instruments}
            new = [i for i in instruments if i.id not in ids]
            changed = [e for e in events if e.event_id in fresh or e.event_id == kev.event_ticker]
            self._kevents[event_ticker] = kev
            self._instruments.extend(new)
            self._markets.extend(fresh.values())
            for inst in new:
                self._series[inst.meta["ticker"]] = inst.meta.get("series_ticker", "")
            for market in fresh.values():
                self.execution.grids[market.ticker] = market.price_ranges
            by_id = {e.event_id: e for e in self._events}
            by_id.update((e.event_id, e) for e in changed)
            self._events = list(by_id.values())
            for inst in new:
                queue.put_nowait(inst)
            for event in changed:
                queue.put_nowait(event)
            now = time.time_ns()
            for market in fresh.values():
                for settled in await self.resolve(market, now):
                    queue.put_nowait(settled)
            await books.add_tickers(fresh)
            log.info("kalshi: following %d new market(s) of event %s: %s", len(fresh),
                     event_ticker, ", ".join(fresh))

    def _first(self, settlement: Settlement) -> bool:
        """Whether ``settlement`` is the first for its instrument (and remember it)."""
        if settlement.instrument_id in self.settled:
            return False
        self.settled[settlement.instrument_id] = settlement.price
        return True

    def _all_settled(self) -> bool:
        return self.settings.end_when_resolved and bool(self._instruments) and all(
            t in self.resolved for t in self.tickers())

    async def resolve(self, market: Market, ts_ns: int, how: str = "") -> list[MarketEvent]:
        """Events for one report of ``market`` (from the load, the poll or the websocket;
        ``how`` is appended to the reason): nothing while it is unsettled or once
        resolved with the same outcome; its settlements the first time (yes / no /
        scalar at the documented payout; void at this account's cost, see
        :func:`void_settlements`); and when a later report differs from the outcome it
        was settled at (an amended result), an ERROR log naming the market and both
        outcomes plus ``BookStatus(live=False)`` for its instruments, never a second
        settlement.  A malformed result is a ``DataError``."""
        if market.status not in SETTLED_STATUSES:
            return []
        settlement_price(market.ticker, market.result, value=market.settlement_value)
        ticker, now = market.ticker, outcome(market)
        before = self.resolved.get(ticker)
        if before is not None:
            return [] if before == now else self._amended(ticker, before, now)
        events: list[MarketEvent]
        if market.result == VOID:
            account = await self._account_settlement(ticker)
            if account is False:
                return []  # Kalshi could not be asked: the next poll tries again
            at = settlement_ts(market, ts_ns)
            held = void_settlements(ticker, account if isinstance(account, dict) else None,
                                    at)
            # A side this account did not hold (a paper run's, say) is void at each
            # position's own cost: the core closes it at its average entry price.
            covered = {s.instrument_id for s in held}
            void = f"kalshi market {ticker} voided: returned at each position's own cost{how}"
            events = [*held, *(Settlement(iid, at, None, void) for iid in (
                instrument_id(ticker, side) for side in (YES, NO)) if iid not in covered)]
        else:
            events = [attrs.evolve(s, reason=s.reason + how)
                      for s in settlements_of(market, ts_ns)]
        self.resolved[ticker] = now
        return events

    def _amended(self, ticker: str, before: str, now: str) -> list[MarketEvent]:
        self.amended[ticker] = (before, now)
        reason = (f"kalshi market {ticker}: result amended after it settled here, from "
                  f"{before!r} to {now!r}; not settled again: check its positions and "
                  f"P&L against GET /portfolio/settlements (reconcile_settlements)")
        log.error(reason)
        return self._untradeable(ticker, reason)

    @staticmethod
    def _untradeable(ticker: str, reason: str) -> list[MarketEvent]:
        now = time.time_ns()
        return [BookStatus(instrument_id(ticker, side), now, False, reason)
                for side in (YES, NO)]

    async def _account_settlement(self, ticker: str) -> dict[str, Any] | bool | None:
        """This account's ``GET /portfolio/settlements`` object for ``ticker``; None when
        it has none (or no credentials); False when Kalshi could not be asked."""
        if not self.settings.has_credentials:
            return None
        try:
            listed = await self.rest.pages("/portfolio/settlements", "settlements",
                                           {"ticker": ticker}, signed=True)
        except (VenueError, httpx.TransportError) as exc:
            log.warning("kalshi: cannot read the settlement of voided market %s (%s); "
                        "retrying at the next poll", ticker, exc)
            return False
        return next((s for s in listed if s.get("ticker") == ticker), None)

    async def _poll_settlements(self, queue: asyncio.Queue[MarketEvent | BaseException]
                                ) -> None:
        """Ask ``GET /markets?tickers=`` every ``settlement_poll_s`` about every followed
        market: the unsettled may have settled, the settled may have been amended; a
        failed read is retried at the next poll, a malformed result ends the stream."""
        while True:
            await asyncio.sleep(self.settings.settlement_poll_s)
            try:
                for event in await self._read_settlements():
                    queue.put_nowait(event)
            except (VenueError, httpx.TransportError) as exc:
                # a transport error too: before, it ended the poll for good, silently
                log.warning("kalshi: settlement poll failed: %s (retrying in %gs)", exc,
                            self.settings.settlement_poll_s)
            except DataError as exc:
                queue.put_nowait(exc)
                return

    async def _read_settlements(self) -> list[MarketEvent]:
        """:meth:`resolve`'s events for every followed market as ``GET /markets?tickers=``
        reports it now (``VenueError`` / ``httpx.TransportError`` when it cannot be read,
        ``DataError`` for a malformed result)."""
        raw = await self.rest.pages("/markets", "markets",
                                    {"tickers": ",".join(self.tickers())})
        now = time.time_ns()
        return [e for m in raw for e in await self.resolve(Market.parse(m), now)]

    async def snapshot(self) -> list[MarketEvent]:
        """Events and REST books of every market (for ``argus scan``)."""
        await self.instruments()
        books = await rest_books(self.rest, self.tickers())
        return [*self._events, *await self._resolve_loaded(), *books]

    async def _resolve_loaded(self) -> list[MarketEvent]:
        now = time.time_ns()
        return [e for m in self._markets for e in await self.resolve(m, now)]

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """Kalshi's formula with the market's multipliers (index series, maker series)."""
        s = self.settings
        ticker, _ = parse_instrument_id(instrument_id)
        series = self._series.get(ticker) or ticker.split("-", 1)[0]
        taker = (s.index_taker_fee_rate if series.startswith(C.INDEX_SERIES_PREFIXES)
                 else s.taker_fee_rate)
        maker = s.maker_fee_rate if series in s.maker_fee_series else Decimal(0)
        return KalshiFeeSchedule(taker_rate=taker, maker_rate=maker,
                                 rounding=C.FEE_ROUNDING[s.fee_rounding])

    def live_problems(self) -> list[str]:
        """Missing or unreadable credentials, named by reference, never by value."""
        s = self.settings
        if not s.has_credentials:
            return ["[plugins.kalshi] api_key_id and private_key must be set for live trading"]
        try:
            self.rest.signer()
        except ConfigError as exc:
            return [str(exc)]
        return []

    def resume(self, known: VenueResume) -> None:
        """Learn this run's orders and booked fills."""
        self.execution.resume(known)

    async def submit(self, order: Order) -> list[Fill]:
        """Send ``order`` exactly once."""
        return await self.execution.submit(order)

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        """Send every leg FOK in one batch, exactly once (:mod:`.baskets`)."""
        return await self.execution.submit_basket(orders)

    async def lookup(self, order: Order) -> OrderUpdate | None:
        """What Kalshi knows of ``order`` by client order id."""
        return await self.execution.lookup(order)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel by client order id."""
        await self.execution.cancel(client_order_id)

    async def open_orders(self) -> list[Order]:
        """Resting orders."""
        return await self.execution.open_orders()

    def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """Fills, order updates and fee corrections (polled; fills also by websocket)."""
        return self.execution.executions()

    async def close(self) -> None:
        """Release the HTTP pool."""
        await self.rest.close()
