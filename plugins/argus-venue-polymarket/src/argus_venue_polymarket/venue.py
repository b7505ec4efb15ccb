"""``PolymarketVenue``: discovery, books, the websocket stream, fees and live orders."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import attrs
from web3 import Web3

from argus_core import (
    ArgusError,
    DataError,
    Event,
    Fill,
    FillCorrection,
    Instrument,
    Ledger,
    MarketEvent,
    Order,
    OrderUpdate,
    Settlement,
    Signal,
    Venue,
    VenueError,
    VenueResume,
)
from argus_venue_polymarket import constants as C
from argus_venue_polymarket import instruments as inst_mod
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import (
    TICK_SIGNAL,
    MarketStream,
    PolymarketRest,
    book_events,
    resolution_settlements,
)
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.fees import PolymarketFeeSchedule
from argus_venue_polymarket.instruments import instrument_id, token_of
from argus_venue_polymarket.listings import listing_changes
from argus_venue_polymarket.redemption import Redemptions
from argus_venue_polymarket.resolved import settle_closed
from argus_venue_polymarket.schemas import FeeCurve, GammaEvent, GammaMarket
from argus_venue_polymarket.settlement import SettlementClient

log = logging.getLogger(__name__)

#: After a ``new_market`` frame Gamma is asked for the announced events at most this often
#: (the channel announces every market Polymarket lists: the events announced meanwhile
#: go in one request).
LISTING_MIN_GAP_S = 5.0


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
    #: A book with no change for this long is stale for the core.  The market channel
    #: pushes a ``price_change`` for every order placed, cancelled or matched on a token,
    #: and the venue's own watchdog already marks a silent *connection* stale after
    #: ``ws_stale_after_s`` (30 s, with a PING every 10 s); a book unchanged for 30 s more
    #: is a market too quiet to trust its depth for FOK legs at walked prices.  Quiet
    #: books are skipped rather than traded on; a config's ``stale_after_s`` overrides.
    default_stale_after_s: ClassVar[float] = 30.0

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
        #: Tokens settled so far by ``stream()`` (instrument id -> settlement price).
        self.settled: dict[str, Decimal | None] = {}
        #: The run's open positions (instrument id -> quantity) at its start (:meth:`hold`).
        self.held: dict[str, Decimal] = {}
        # Discovery's markets (their Gamma records: closed, how they resolved), and the
        # instruments of held markets discovery did not list (looked up by token at start).
        self._markets: list[GammaMarket] = []
        self._held_instruments: dict[str, Instrument] = {}
        # Condition ids of held markets closed but not yet resolved: the poll follows them.
        self._pending: set[str] = set()
        # While streaming: the instrument ids whose settlement ends the stream
        # (``end_when_resolved``), the conditions the resolution poll asks about (both
        # grow with markets listed later), and the wish for a discovery now (new_market).
        self._followed: set[str] = set()
        self._polled: set[str] = set()
        self._listing_wanted = asyncio.Event()
        self._resolutions_wanted = asyncio.Event()  # a connection (re)opened: ask Gamma
        self._announced: set[str] = set()  # event ids of new_market frames not asked yet
        #: This run's redemptions of resolved positions (``start_redemptions``).
        self.redemptions: Redemptions | None = None
        #: The chain redemptions use; None: ``rpc_url`` (tests put a local chain here).
        self.chain: Web3 | None = None

    def start_redemptions(self, mode: str, ledger: Ledger) -> Redemptions | None:
        """Redeem this run's resolved positions (the plugin's ``on_startup``): on chain by a
        worker thread in live mode, recorded as simulated in paper and replay; rows in
        ``pm_redemptions`` (see :mod:`argus_venue_polymarket.redemption`).  None when
        ``redeem`` is off."""
        if not self.settings.redeem:
            return None
        if self.redemptions is not None:
            self.redemptions.close(0)
        self.redemptions = Redemptions(
            self.settings, mode, ledger, self._instruments.get,
            lambda: SettlementClient(self.settings, self.chain))
        self.redemptions.start()
        return self.redemptions

    def live_problems(self) -> list[str]:
        """A live run needs a resolvable signer key (a 32-byte hex private key) and, when
        given, resolvable L2 credentials.  Messages name references, never values."""
        s = self.settings
        if s.private_key is None:
            return ["[plugins.polymarket] private_key is required for live trading "
                    "(e.g. private_key = \"$env:POLY_PRIVATE_KEY\")"]
        problems: list[str] = []
        try:
            key = s.private_key.reveal()
            if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", key.strip()):
                problems.append(f"private_key ({s.private_key!r}) is not a 32-byte hex key")
        except ArgusError as exc:
            problems.append(f"private_key: {exc}")
        for name in ("api_key", "api_secret", "api_passphrase"):
            secret = getattr(s, name)
            if secret is not None:
                try:
                    secret.reveal()
                except ArgusError as exc:
                    problems.append(f"{name}: {exc}")
        return problems

    def resume(self, known: VenueResume) -> None:
        """Know this run's Polymarket orders and booked fills (the core hands them over from
        the ledger before ``executions()`` starts): the way back after a restart.

        The runner commits an order row before it sends the order, so ``known`` names
        every order an earlier process may have placed; open orders then map back to
        their core client ids by venue order id or the signed ``metadata``, and fills
        already booked are not reported again (see ``PolymarketExecution.resume``).
        """
        count = self.execution.resume(known)
        log.info("polymarket: resuming with %d orders and %d booked fills of this run", count,
                 len(known.fill_ids))

    def hold(self, positions: Mapping[str, Decimal]) -> None:
        """The run's open Polymarket positions (instrument id -> quantity), read from its
        fills by the plugin's ``on_startup`` before ``stream()``: at its start a held market
        that discovery does not list (its event closed) is looked up on Gamma by token, and
        settled if it resolved (see :meth:`stream`)."""
        self.held = {}
        for iid, qty in positions.items():
            try:
                token_of(iid)
            except ValueError:
                continue  # not a Polymarket instrument id: nothing to ask Gamma
            if qty:
                self.held[iid] = qty

    async def discover(self) -> list[Event]:
        """Run Gamma discovery now (events + instruments), replacing the cache."""
        gamma = await self.rest.events()
        events, instruments = inst_mod.build(gamma, self.settings)
        self._events = events
        self._markets = [m for ev in gamma for m in ev.markets if len(m.token_ids) == 2]
        self._instruments.clear()
        self._instruments.update(self._held_instruments)
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
        """Discovered events, then the ``Settlement`` events of markets that resolved before
        the start (:meth:`_resolved_at_start`), then the websocket market channel, with
        ``Settlement`` events for resolved markets (websocket ``market_resolved``, and Gamma
        polled every ``settlement_poll_s``), each token settled once.

        With ``end_when_resolved`` the stream ends once every followed token has
        settled; otherwise it runs until closed.  Followed: the tradeable markets, and
        held markets closed but not yet resolved (the poll only).  A stream with nothing
        to follow (every discovered market closed, inactive or not taking orders, or none
        discovered, and no held market awaiting its resolution) ends after the events and
        settlements, saying why: nothing could ever arrive on it.
        """
        if self._events is None:
            await self.discover()
        for discovered in self._events or []:
            yield discovered
        for settlement in await self._resolved_at_start():
            yield settlement
        s = self.settings
        tokens = self._live_tokens()
        poll, listings = s.settlement_poll_s > 0, s.discovery_poll_s > 0
        pending = sorted(c for c in self._pending if not self._condition_settled(c))
        if not tokens and not (pending and poll) and not (listings and not s.end_when_resolved):
            log.warning("polymarket: %s; nothing to stream, the stream ends%s",
                        self._nothing_open(),
                        f" ({len(pending)} held market(s) closed await their resolution: "
                        f"settlement_poll_s = 0, asked again at the next start)"
                        if pending else "")
            return
        # Grown by the markets listed later (see _apply_listing).
        self._followed = followed = {instrument_id(t) for t in tokens} | {
            iid for iid, inst in self._instruments.items()
            if poll and inst.meta.get("condition_id") in pending}
        self._polled = {str(i.meta.get("condition_id")) for i in self._instruments.values()
                        if i.meta.get("tradeable") and i.meta.get("condition_id")} | set(pending)
        self._stream = stream = MarketStream(s, tokens, self.rest, without_tokens=True)
        loop, tasks = asyncio.get_running_loop(), []
        # Every connection's start asks too: market_resolved is not sent again for what
        # resolved between the reads above (or a disconnect) and the subscription.
        self._resolutions_wanted = asyncio.Event()
        stream.on_connected = self._resolutions_wanted.set
        tasks.append(loop.create_task(self._poll_resolutions(stream)))
        if listings:
            self._listing_wanted, self._announced = asyncio.Event(), set()
            stream.on_new_market = self._on_new_market
            tasks.append(loop.create_task(self._follow_listings(stream)))
        try:
            async for ev in stream:
                if isinstance(ev, Settlement):
                    if ev.instrument_id in self.settled:
                        continue  # the websocket and Gamma both report a resolution
                    self.settled[ev.instrument_id] = ev.price
                    with contextlib.suppress(ValueError):  # not a polymarket:<token> id
                        stream.unsubscribe([token_of(ev.instrument_id)])
                elif isinstance(ev, Signal) and ev.name == TICK_SIGNAL:
                    retick = self._retick(ev.instrument_id, stream.tick_sizes)
                    if retick is not None:
                        yield retick
                yield ev
                if (s.end_when_resolved and isinstance(ev, Settlement)
                        and followed <= self.settled.keys()):
                    log.info("polymarket: every followed market has resolved; stream ends")
                    return
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await stream.close()

    def _retick(self, iid: str, ticks: Mapping[str, Decimal]) -> Instrument | None:
        """The instrument ``iid`` on the tick a ``tick_size_change`` announced, or None when
        it is unknown or on that tick already: kept for signing (orders are checked against
        the instrument's grid: at the new tick every order on the new grid was refused)
        and streamed, so the core's market state (scanners, paper fills) follows it too."""
        inst, tick = self._instruments.get(iid), ticks.get(token_of(iid))
        if inst is None or tick is None or tick == inst.tick_size:
            return None
        log.info("polymarket: %s: tick size %s -> %s", iid, inst.tick_size, tick)
        self._instruments[iid] = inst = attrs.evolve(inst, tick_size=tick)
        return inst

    def _on_new_market(self, frame: dict[str, Any]) -> None:
        """The market channel announced a market: ask Gamma for its event soon (every
        event announced meanwhile in one request); a frame without an event id asks for
        a whole discovery."""
        event = frame.get("event_message")
        event_id = event.get("id") if isinstance(event, dict) else None
        self._announced.add(str(event_id) if event_id not in (None, "") else "")
        self._listing_wanted.set()

    async def _follow_listings(self, stream: MarketStream) -> None:
        """Run discovery every ``discovery_poll_s``, and after a ``new_market`` frame (at
        most every :data:`LISTING_MIN_GAP_S`) ask Gamma for the announced events only (the
        configured filters applied: one that does not pass them comes back empty); say
        what changed (:meth:`_apply_listing`).  A failed discovery is logged and tried at
        the next turn: what is followed stays followed."""
        s = self.settings
        last = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.discovery_poll_s):
                    await self._listing_wanted.wait()
            wait = LISTING_MIN_GAP_S - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            self._listing_wanted.clear()
            announced, self._announced = self._announced, set()
            last = time.monotonic()
            try:
                gamma = await self.rest.events(
                    sorted(announced) if announced and "" not in announced else ())
            except (VenueError, DataError) as exc:
                log.warning("polymarket: discovery of new markets failed: %s (again in %gs)",
                            exc, s.discovery_poll_s)
                continue
            try:
                self._apply_listing(gamma, stream)
            except Exception:  # a bug here must not end the following of new markets
                log.exception("polymarket: could not apply a discovery during the stream "
                              "(again in %gs)", s.discovery_poll_s)

    def _apply_listing(self, gamma: list[GammaEvent], stream: MarketStream) -> None:
        """Put what a discovery changed into ``stream``: new or changed instruments, then
        new or changed events (see :mod:`~argus_venue_polymarket.listings`), then subscribe
        the new tradeable tokens, whose markets the resolution poll and the end rule
        follow from now on."""
        events, instruments = inst_mod.build(gamma, self.settings)
        known = {ev.event_id: ev for ev in self._events or []}
        # a discovery of the announced events only sees no token they share with the rest
        events, instruments = inst_mod.shared_with_known(gamma, events, instruments,
                                                         known.values(), self._instruments)
        found = listing_changes(self._instruments, known, events, instruments,
                                set(stream.live) | {token_of(i) for i in self.settled})
        if not found:
            return
        for inst in found.instruments:
            self._instruments[inst.id] = inst
            stream.emit(inst)
        for ev in found.events:
            known[ev.event_id] = ev
            stream.emit(ev)
        self._events = list(known.values())
        added = stream.add_tokens(found.new_tokens)
        for token in added:
            self._followed.add(instrument_id(token))
            condition = self._instruments[instrument_id(token)].meta.get("condition_id")
            if condition:
                self._polled.add(str(condition))
        log.info("polymarket: discovery during the stream: %d instrument(s) and %d event(s) "
                 "new or changed, %d token(s) of new markets followed", len(found.instruments),
                 len(found.events), len(added))

    async def _resolved_at_start(self) -> list[Settlement]:
        """``Settlement`` events of the markets closed and resolved before this stream
        started, not yet settled by this venue (see :mod:`argus_venue_polymarket.resolved`):
        the discovered markets' Gamma records say it, and held markets that discovery does
        not list (their events closed) are asked for by token (``GET /markets?clob_token_ids=
        &closed=true``).  Held markets closed but not resolved are left to the poll."""
        markets = list(self._markets)
        # (a market looked up by an earlier stream of this venue is asked for again: its
        # record is not discovery's, and it may have resolved since)
        missing = sorted(token_of(iid) for iid in self.held
                         if iid not in self._instruments or iid in self._held_instruments)
        if missing:
            markets.extend(await self._look_up_held(missing))
        held = set(self.held)
        settlements, pending = settle_closed(markets, time.time_ns(), held)
        self._pending = {m.condition_id for m in pending if m.condition_id and any(
            instrument_id(t) in held for t in m.token_ids)}
        out = []
        for settlement in settlements:
            if settlement.instrument_id in self.settled:
                continue  # settled already (a stream started again on this venue)
            self.settled[settlement.instrument_id] = settlement.price
            out.append(settlement)
        if out:
            log.info("polymarket: %d token(s) of markets resolved before the start settled",
                     len(out))
        return out

    async def _look_up_held(self, tokens: list[str]) -> list[GammaMarket]:
        """The closed Gamma markets of held ``tokens`` that discovery did not list; their
        instruments become known (redemption needs the condition).  A token Gamma does not
        list as closed (open but outside discovery's filters) or a failed look-up is said
        in the log: that position is not followed by this stream."""
        try:
            found = await self.rest.closed_markets(tokens, key="clob_token_ids")
        except (VenueError, DataError) as exc:
            log.warning("polymarket: could not ask Gamma about %d held token(s) that discovery "
                        "did not list: %s; they are asked again at the next start",
                        len(tokens), exc)
            return []
        wanted = set(tokens)
        found = [m for m in found if wanted & set(m.token_ids)]
        for market in found:
            for inst in inst_mod.market_instruments(market, self.settings):
                self._held_instruments[inst.id] = inst
                self._instruments[inst.id] = inst
        unknown = wanted - {t for m in found for t in m.token_ids}
        if unknown:
            log.warning("polymarket: %d held token(s) are neither in a discovered market nor "
                        "closed on Gamma (%s): not followed by this stream", len(unknown),
                        ", ".join(sorted(t[:12] + "…" for t in unknown)))
        return found

    def _nothing_open(self) -> str:
        """Why no token is followed: what discovery found (for the log line)."""
        markets = {str(i.meta.get("condition_id")) for i in self._instruments.values()
                   if i.id not in self._held_instruments}
        if not markets:
            return (f"Gamma listed no open market ({len(self._events or [])} event(s) "
                    f"discovered with the filters {dict(self.settings.event_filters)!r})")
        return (f"none of the {len(markets)} discovered market(s) is open for trading "
                f"(each closed, inactive or not accepting orders)")

    async def _poll_resolutions(self, stream: MarketStream) -> None:
        """Ask Gamma which followed markets (tradeable ones, and held ones closed awaiting
        their resolution) have resolved: every ``settlement_poll_s`` (0: never), and each
        time a websocket connection (re)opens (the channel's ``market_resolved`` says
        nothing of what resolved while no connection listened)."""
        poll, wanted = self.settings.settlement_poll_s, self._resolutions_wanted
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll if poll > 0 else None):
                    await wanted.wait()
            wanted.clear()
            pending = sorted(c for c in self._polled if not self._condition_settled(c))
            self._polled = set(pending)
            if not pending:
                if self.settings.discovery_poll_s > 0:
                    continue  # markets listed later join the poll
                return
            try:
                markets = await self.rest.closed_markets(pending)
            except (VenueError, DataError) as exc:
                log.warning("polymarket: Gamma resolution poll failed: %s (retrying %s)", exc,
                            f"in {poll:g}s" if poll > 0 else "at the next reconnect")
                continue
            now = time.time_ns()
            for market in markets:
                for settlement in resolution_settlements(market, now):
                    if settlement.instrument_id not in self.settled:
                        stream.emit(settlement)

    def _condition_settled(self, condition_id: str) -> bool:
        return all(iid in self.settled for iid, inst in self._instruments.items()
                   if inst.meta.get("condition_id") == condition_id)

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
        """Sign locally and send through py-clob-client-v2, exactly once (see ``execution``):
        after an ambiguous outcome the venue is asked for the order by its hash before
        anything is re-sent; ``OrderUnknown`` when it cannot tell."""
        return await self.execution.submit(order)

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        """All legs of a basket as FOK in one ``POST /orders``, exactly once; returns the
        legs' fills when every leg filled.  Some legs executed and others killed:
        ``BasketIncomplete`` carrying the executed legs' fills (booked under the legs'
        client order ids); the killed legs are reported CANCELLED through
        ``executions()``.  Nothing is unwound here: the core flattens the excess with
        ordinary orders (LIMIT IOC, ``reduce_only``) sent through :meth:`submit`.
        """
        return await self.execution.submit_basket(orders)

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """This account's fills and order updates, each with the core client order id, in
        venue order (see ``PolymarketExecution.executions``): what order answers said
        (OPEN with the venue order id, the matches, CANCELLED for a FOK/FAK order's killed
        rest, REJECTED with the venue's ``errorMsg``), resting orders' maker fills and late
        taker matches as the websocket user channel pushes them (``GET /data/trades`` as the
        reconciler: every ``trades_reconcile_s`` and after each (re)connect while the
        channel is up, every ``trades_poll_s`` while it is down), and CANCELLED for
        an order that left the book unfilled (our cancel, the venue's, a GTD's expiry) —
        each update after its order's fills — and a ``FillCorrection(bust=True)`` for a
        booked trade that ended FAILED on chain."""
        async for item in self.execution.executions(self.settings.trades_poll_s,
                                                    self.settings.trades_lookback_s):
            yield item

    async def cancel(self, client_order_id: str) -> None:
        """Cancel a resting order."""
        await self.execution.cancel(client_order_id)

    async def open_orders(self) -> list[Order]:
        """Open orders on the venue."""
        return await self.execution.open_orders()

    async def close(self) -> None:
        """Close the stream, the heartbeat, the HTTP pool and the redemption worker (what it
        has not finished resumes at the next start of the run)."""
        if self.redemptions is not None:
            self.redemptions.close(0)
        if self._stream is not None:
            await self._stream.close()
        await self.execution.close()
        await self.rest.close()
