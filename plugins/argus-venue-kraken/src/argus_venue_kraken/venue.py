"""``KrakenVenue``: the core ``Venue`` for Kraken spot.

Market data comes from WebSocket v2 (:mod:`.data`), instruments and one-shot
books from REST (:mod:`.rest`), order entry and fills from :mod:`.execution`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import ClassVar, cast

import attrs
import httpx

from argus_core import (
    ArgusError,
    ConfigError,
    FeeSchedule,
    Fill,
    Instrument,
    MarketEvent,
    Order,
    OrderStatus,
    OrderUnknown,
    OrderUpdate,
    Venue,
    VenueError,
    VenueResume,
)
from argus_venue_kraken import constants as C
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.data import KrakenMarketFeed
from argus_venue_kraken.execution import ExecutionReport, KrakenExecution, KrakenExecutionsFeed
from argus_venue_kraken.ratelimit import Clock, Sleep
from argus_venue_kraken.rest import KrakenRestClient
from argus_venue_kraken.schemas import OrderEvent

log = logging.getLogger(__name__)


class KrakenVenue(Venue):
    """Kraken spot: checksummed WS v2 books, trades, bars, ticker; signed REST order entry.

    ``stream()`` yields ``OrderBook`` after every verified book message,
    ``BookStatus(live=False)`` when a book becomes doubtful (checksum mismatch,
    gap, malformed frame, disconnect, exchange maintenance), ``Trade``, ``Bar``
    (stamped at close, only when complete) and ``Signal`` (ticker fields).
    Fills and order updates from the authenticated ``executions`` channel (and
    TradesHistory after a restart or reconnect) arrive on :meth:`executions`,
    carrying the core's client order ids (see :mod:`.execution` for the mapping).
    """

    name: ClassVar[str] = C.VENUE
    supports_live_orders: ClassVar[bool] = True
    supports_post_only: ClassVar[bool] = True
    time_in_force: ClassVar[tuple[str, ...]] = ("gtc", "ioc", "gtd")
    #: A book without an update for this long is stale.  Kraken sends a heartbeat every
    #: ~1 s on a quiet socket, and the feed marks every book not live once the socket is
    #: silent for ``heartbeat_timeout_s`` (default 10 s); liquid pairs update many times a
    #: second, so 10 s without a book message means the book cannot be trusted.
    default_stale_after_s: ClassVar[float] = 10.0

    def __init__(self, settings: KrakenSettings | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 rng: random.Random | None = None, sleep: Sleep | None = None,
                 clock: Clock | None = None, clock_ns: Callable[[], int] | None = None) -> None:
        self.settings = settings or KrakenSettings()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock_ns = clock_ns or time.time_ns
        self.rest = KrakenRestClient(self.settings, transport=transport, clock=clock, sleep=sleep)
        self.execution = KrakenExecution(self.settings, self.rest, sleep=sleep, clock=clock)
        #: Fill ids the run has booked (from :meth:`resume`): never reported again.
        self._booked_fill_ids: set[str] = set()
        self.feed: KrakenMarketFeed | None = None
        self.executions_feed: KrakenExecutionsFeed | None = None
        # Reports, or the error that stopped the executions stream (raised to the consumer).
        self._fills: asyncio.Queue[ExecutionReport | OrderEvent | OrderUpdate | VenueError] = \
            asyncio.Queue()
        self._private_task: asyncio.Task[None] | None = None
        #: When this process first asked Kraken about each order (``lookup``): after a
        #: restart, no AddOrder of the dead process can have left later.
        self._first_asked_ns: dict[str, int] = {}
        #: Orders whose submit ended ``OrderUnknown``, asked about until Kraken answers.
        self._settling: dict[str, asyncio.Task[None]] = {}
        #: Fills of orders this venue does not know (manual trades on the same account).
        self.foreign_fills = 0
        #: Order events of orders this venue does not know (dropped: they move no money).
        self.foreign_updates = 0

    def __repr__(self) -> str:
        return f"KrakenVenue(pairs={self.settings.pairs!r}, rest_url={self.settings.rest_url!r})"

    async def instruments(self) -> Sequence[Instrument]:
        """Instruments of the configured pairs, from AssetPairs."""
        pairs = await self.rest.asset_pairs(self.settings.pairs)
        return [pairs[s].instrument() for s in self.settings.pairs]

    async def stream(self) -> AsyncIterator[MarketEvent]:
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
                                                    clock_ns=self._clock_ns,
                                                    known_fill_ids=self._booked_fill_ids)
        self._private_task = asyncio.create_task(self._pump_fills(self.executions_feed),
                                                 name="kraken-executions")

    async def _pump_fills(self, feed: KrakenExecutionsFeed) -> None:
        try:
            async for report in feed.events():
                # WsSession.events is typed for every feed; this one yields only these two.
                await self._fills.put(cast(ExecutionReport | OrderEvent, report))
        except VenueError as exc:
            log.error("Kraken executions stream stopped: %s", exc)
            await self._fills.put(exc)
        except ArgusError as exc:  # e.g. a TradesHistory answer we cannot read
            log.error("Kraken executions stream stopped: %s", exc)
            await self._fills.put(VenueError(f"Kraken executions stopped: {exc}"))
        except Exception as exc:  # anything else ends it loudly: a task that died silently
            # left executions() waiting for ever, and no fill was booked again
            log.error("Kraken executions stream failed: %s: %s", type(exc).__name__, exc)
            await self._fills.put(VenueError(f"Kraken executions failed: "
                                             f"{type(exc).__name__}: {exc}"))

    async def _stop_private(self) -> None:
        if self.executions_feed is not None:
            await self.executions_feed.close()
        if self._private_task is not None:
            self._private_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._private_task
            self._private_task = None

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate]:
        """This account's fills and order updates, in the ``executions`` channel's order,
        with core ids.

        The channel starts with ``stream()`` when API keys are configured, or
        here when only executions are wanted.  Each (re)connection first yields
        the trades TradesHistory holds beyond the snapshot's last 50 (see
        :meth:`KrakenExecution.backfill`).  Order events become ``OrderUpdate``:
        ``new`` -> OPEN with Kraken's ``order_id`` as ``venue_order_id``;
        ``canceled`` -> CANCELLED; ``expired`` -> CANCELLED with reason
        ``expired: ...``; ``restated`` / ``amended`` -> the order's current
        status with the reason.  Kraken's ids are mapped back to the core's
        client order id when an item is handed out (not when it arrives), so
        ids learnt late (:meth:`resume`) still apply.  A fill of an order
        this venue never knew keeps Kraken's ``cl_ord_id`` (or txid), which the
        core records as an unknown fill instead of guessing; an order event of
        such an order is dropped and counted (``foreign_updates``): it moves no
        money, and a manual order's every step would otherwise raise an alarm.
        If the channel stops for good (e.g. the token is refused), the error is
        raised here.
        """
        if not self.settings.has_credentials:
            raise ConfigError("Kraken executions need the executions channel: set api_key and "
                              "api_secret in [plugins.kraken] ('$env:NAME' references)")
        if self._private_task is None:
            self._start_private()
        while True:
            report = await self._fills.get()
            if isinstance(report, VenueError):
                self._private_task = None  # a later executions() call may try again
                raise report
            if isinstance(report, OrderUpdate):  # an unknown order settled by asking
                yield report
                continue
            if isinstance(report, OrderEvent):
                core = self.execution.core_id_for(report.cl_ord_id, report.order_id)
                if core is None:
                    self.foreign_updates += 1
                    log.info("Kraken: %s of an order this run did not place (cl_ord_id=%s, "
                             "order %s) ignored", report.status.value, report.cl_ord_id,
                             report.order_id)
                    continue
                yield OrderUpdate(core, report.status, report.ts_ns,
                                  venue_order_id=report.order_id, reason=report.reason)
                continue
            core = self.execution.core_id_for(report.cl_ord_id, report.order_id)
            if core is None:
                self.foreign_fills += 1
                log.warning("Kraken fill %s belongs to an order this run did not place "
                            "(cl_ord_id=%s, order %s)", report.fill.fill_id, report.cl_ord_id,
                            report.order_id)
                yield report.fill
            else:
                yield attrs.evolve(report.fill, client_order_id=core)

    def live_problems(self) -> list[str]:
        """Credentials a live run needs: both references set, resolvable, the secret
        base64 (as Kraken issues it).  Messages name references, never values."""
        s = self.settings
        if not s.has_credentials:
            return ["[plugins.kraken] api_key and api_secret are required for live trading "
                    "(e.g. api_key = \"$env:KRAKEN_API_KEY\")"]
        problems: list[str] = []
        for name, secret in (("api_key", s.api_key), ("api_secret", s.api_secret)):
            try:
                value = secret.reveal()  # type: ignore[union-attr]
            except ArgusError as exc:
                problems.append(f"{name}: {exc}")
                continue
            if name == "api_secret":
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    problems.append(f"api_secret ({secret!r}) is not base64 as Kraken "
                                    f"issues it")
        return problems

    def adopt_client_order_ids(self, client_order_ids: Iterable[str]) -> int:
        """Know these core client order ids (so their executions map back); returns how many."""
        return self.execution.adopt(client_order_ids)

    def resume(self, known: VenueResume) -> None:
        """Learn the run's orders and booked fills (the core hands them over before
        ``executions()`` starts): the way back after a restart.

        The runner persists an order before it calls :meth:`submit`, so ``known``
        holds every core id Kraken can report for this run; each
        ``venue_order_id`` maps Kraken's txid (all TradesHistory names) back too,
        and orders still open are asked about on the next backfill (a cancel while
        we were away is in no trade history).  Booked fill ids are not reported
        again.  The TradesHistory backfill starts at ``newest_fill_ts_ns``.
        """
        for entry in known.orders:
            if entry.order.venue != C.VENUE:
                continue
            client_order_id = entry.order.client_order_id
            self.execution.remember(client_order_id)
            working = entry.order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
            if entry.venue_order_id:
                self.execution.adopt_txid(client_order_id, entry.venue_order_id)
                if working:
                    self.execution.unsettled_txids.add(entry.venue_order_id)
            elif working:  # acknowledged by AddOrder's answer; Kraken's ``new`` never came
                self.execution.unsettled_ids.add(client_order_id)
        self._booked_fill_ids.update(known.fill_ids)
        if known.newest_fill_ts_ns is not None:
            self.execution.note_time(int(known.newest_fill_ts_ns))
        log.info("Kraken: resumed %d orders and %d booked fills of the run", len(known.orders),
                 len(known.fill_ids))

    async def lookup(self, order: Order) -> OrderUpdate | None:
        """After a restart or a send without an answer, what Kraken knows of an order never
        acknowledged: found by its ``cl_ord_id`` (open or closed) it is OPEN with its txid,
        and the next backfill asks QueryOrders for its fills and final state; not found by a
        look-up asked once no AddOrder of it can still be placed (:meth:`proof_after_ns`),
        Kraken provably never placed it (its matching engine refuses an order past the
        deadline): CANCELLED.  A look-up inside that window waits it out and asks again (a
        process killed mid-send may have left the request queued at Kraken); one that
        still finds nothing inside the window answers None (no verdict), as does an order
        of unknown time (``ts_ns`` 0) or one this process is still submitting.
        ``OrderUnknown`` when Kraken cannot be asked."""
        coid = order.client_order_id
        cl_ord_id = self.execution.remember(coid)
        # Time as the waits below pass it: the wall clock at the start, advanced by the
        # monotonic clock the venue's sleeps run on (a wall clock stepped meanwhile, or a
        # wait cut short, must not end the window early).
        wall0, mono0 = self._clock_ns(), self.execution.trading.now()

        def now_ns() -> int:
            return wall0 + int((self.execution.trading.now() - mono0) * 1e9)

        asked_ns = now_ns()  # a look-up proves only what it was asked after
        first_ns = self._first_asked_ns.setdefault(coid, asked_ns)
        found = await self.execution.lookup(coid, cl_ord_id, "restart")
        window_ends = self.proof_after_ns(order, first_ns)
        if found is None and window_ends and asked_ns < window_ends:
            wait_s = (window_ends - now_ns()) / 1e9 + 1e-3  # past it, float rounding aside
            if wait_s > 2 * (self.settings.order_deadline_s + self.settings.lookup_settle_s):
                # A window far off (an order stamped ahead of our clock): no verdict now,
                # the core asks again later; a long wait here would stall a restart's
                # start-up, the kill switch's included.
                return None
            log.info("Kraken: order %s not found yet; asking again in %.1fs, once no AddOrder "
                     "of it can still be placed", coid, max(wait_s, 0.0))
            if wait_s > 0:
                await self.execution._sleep(wait_s)
            asked_ns = now_ns()
            found = await self.execution.lookup(coid, cl_ord_id, "restart")
            window_ends = self.proof_after_ns(order, first_ns)
        now = self._clock_ns()
        if found is not None:
            txid, _status = found
            self.execution.adopt_txid(coid, txid)
            self.execution.unsettled_txids.add(txid)
            return OrderUpdate(coid, OrderStatus.OPEN, now, txid)
        if window_ends and asked_ns >= window_ends:
            return OrderUpdate(coid, OrderStatus.CANCELLED, now,
                               reason="never placed at Kraken: in neither open nor closed "
                                      "orders after its deadline")
        return None  # still inside the window (or no window): no verdict yet

    def proof_after_ns(self, order: Order, first_asked_ns: int) -> int:
        """When (our wall clock, ns) "not found" proves Kraken never placed ``order``: no
        AddOrder of it can still be placed after; 0 when unknown (no verdict).

        * This process sent it: its last AddOrder deadline plus ``lookup_settle_s``
          (:meth:`KrakenExecution.proof_after_ns`), and never before the order's time plus
          ``order_deadline_s + lookup_settle_s``.
        * This process is still submitting it: 0 (it may send again).
        * A process before a restart sent it: this process first asked plus
          ``order_deadline_s + lookup_settle_s``.  The run lock lets a restart ask only
          once the process that sent has died, so its last AddOrder (a re-send after a
          back-off or a ``Retry-After`` wait included) left before that first look-up.
          The order's own time cannot bound it: it is market time, and a re-send may
          leave long after it (within :func:`~.execution.send_window_s`, past which a
          send is refused unsent).
        """
        coid = order.client_order_id
        if coid in self.execution.sending:
            return 0
        settle_ns = int((self.settings.order_deadline_s + self.settings.lookup_settle_s) * 1e9)
        sent_here = self.execution.proof_after_ns(coid)
        if sent_here is not None:  # the in-process path: the last deadline this process sent
            return max(order.ts_ns + settle_ns if order.ts_ns else 0, sent_here)
        if not order.ts_ns:  # an order of unknown time: no verdict, as ever
            return 0
        # The run lock lets a restarted process ask only once the one that sent has died:
        # each AddOrder it sent left before this first look-up, so none is placed after
        # this look-up's time plus a deadline (the order's own time, market time, says
        # nothing of when its last re-send left).
        return first_asked_ns + settle_ns

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
        """Send a live order; fills arrive later on :meth:`executions` (none are known at once).

        ``OrderUnknown`` (Kraken could not be asked whether it took the order: every
        look-up failed or was rate limited) leaves the order to :meth:`_settle`, which
        keeps asking and reports what it finds on :meth:`executions`: a never-placed order
        must not stay pending until a restart (a pending flatten blocks the next)."""
        try:
            await self.execution.submit(order)
        except OrderUnknown:
            self._settle_later(order)
            raise
        return []

    def _settle_later(self, order: Order) -> None:
        coid = order.client_order_id
        if coid not in self._settling:
            task = asyncio.create_task(self._settle(order), name=f"kraken-settle-{coid}")
            self._settling[coid] = task
            task.add_done_callback(lambda _t: self._settling.pop(coid, None))

    async def _settle(self, order: Order) -> None:
        """Ask Kraken about an order whose submit ended unknown (:meth:`lookup`: found ->
        OPEN with its txid; absent after its deadline -> CANCELLED, never placed), first
        after ``lookup_settle_s``, then twice as long each time Kraken cannot be asked (at
        most a minute apart; a held rate limit refuses unsent, so this never hammers)."""
        if not order.ts_ns:  # the deadline window is counted from the order's time
            order = attrs.evolve(order, ts_ns=self._clock_ns())
        sleep = self._sleep or asyncio.sleep
        delay = max(1.0, self.settings.lookup_settle_s)
        while True:
            await sleep(delay)
            try:
                update = await self.lookup(order)
            except VenueError as exc:  # OrderUnknown: not yet
                log.warning("Kraken: order %s still unknown (%s); asking again in %.0fs",
                            order.client_order_id, exc, min(delay * 2, 60.0))
                update = None
            if update is not None:
                log.info("Kraken: order %s settled by asking: %s", order.client_order_id,
                         update.status.value)
                await self._fills.put(update)
                return
            delay = min(delay * 2, 60.0)

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
        for task in list(self._settling.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.execution.close()
        await self.rest.close()


