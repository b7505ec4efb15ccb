"""Live order entry on Kraken: AddOrder / CancelOrder / OpenOrders, the dead-man's switch,
and fills from the authenticated ``executions`` stream.

Where an order goes: :meth:`KrakenExecution.submit` checks the core ``Order``
against the pair's lot and tick size, maps its ``client_order_id`` to a Kraken
``cl_ord_id`` (the same id every time, so a restarted process finds its own
orders), waits on the local model of the pair's trading counter and sends
AddOrder with a ``deadline``.  While any order rests, a background task keeps
``CancelAllOrdersAfter`` armed, so if this process dies Kraken cancels
everything after ``dead_man_timeout_s``.

Exactly once.  Kraken enforces ``cl_ord_id`` uniqueness only among *open*
orders, so re-sending a market or IOC order that already filled places a second
one.  An AddOrder therefore goes out once per attempt and is never retried by
the REST layer.  A documented refusal (``constants.ORDER_NOT_PLACED_ERRORS``:
bad arguments, funds, keys...) rejects the order.  Every other outcome (timeout,
HTTP 5xx, a reset connection, an unreadable body, ``EService:*``,
``EGeneral:Internal error``, rate limits) is ambiguous: the order is looked up
by ``cl_ord_id`` in OpenOrders and then ClosedOrders.  Found: its txid is the
answer.  Not found: the request may still be queued, but Kraken's engine
rejects it once its ``deadline`` has passed, so a second look-up after the
deadline plus ``lookup_settle_s`` that still finds nothing proves Kraken never
took it, and only then is it sent again (at most ``max_retries`` times).  If
Kraken cannot be asked, ``OrderUnknown`` is raised and nothing is re-sent: the
venue keeps asking (``KrakenVenue._settle``) and reports OPEN or CANCELLED (never
placed, after the deadline) on ``executions()``.  A late AddOrder (held on the way
past our timeout) is fenced by the look-ups: they carry higher nonces, so Kraken
refuses it with ``EAPI:Invalid nonce`` whenever it arrives.  An HTTP 429 whose
``Retry-After`` exceeds ``ratelimit.WAIT_CAP_S`` (Kraken's edge: Kraken never saw the
request) refuses the order at once, and every private call until that wait is over is
refused unsent: a kill switch's flatten, sent again by the engine, is never frozen for
the whole penalty and goes out at the first moment Kraken takes it.

Client order ids.  The core's ids (``<run_id>-<seq>-<strategy>-<k>``) are longer
than the 18 characters of free text Kraken's ``cl_ord_id`` takes, so each maps
to a deterministic UUIDv5 (:func:`cl_ord_id_for`): the same core id gives the
same wire id in any process, so cancels and look-ups by id need no state.  The
way back (executions, open orders) is a table of the core ids this venue knows:
every id it is asked to submit or cancel, and, after a restart, every order the
core hands over in ``KrakenVenue.resume``.  Why no file of our own: the runner
commits each order row *before* calling ``submit``, so the core already holds
every core id Kraken can ever report, and a second store could only disagree
with it.  Kraken's ``order_id`` (txid) of each known order is remembered as
well, so an execution that carries only the txid maps back too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

import attrs

from argus_core import (
    DataError,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUnknown,
    Side,
    TimeInForce,
    VenueError,
)
from argus_venue_kraken import constants as C
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.data import WsSession
from argus_venue_kraken.instruments import PairInfo, instrument_id, ws_symbol
from argus_venue_kraken.ratelimit import WAIT_CAP_S, Clock, Sleep, TradingRateLimiter
from argus_venue_kraken.rest import KrakenRestClient, KrakenThrottled, TransientVenueError
from argus_venue_kraken.schemas import (
    KrakenApiError,
    KrakenRateLimitError,
    MalformedAnswerError,
    OrderEvent,
    parse_execution,
    parse_history_trade,
    parse_order_event,
    rfc3339,
    seconds_ns,
)

log = logging.getLogger(__name__)
#: QueryOrders statuses of an order still working (Kraken's documented others end it).
_WORKING_STATUSES = frozenset({"pending", "open"})

#: Refusals of the executions subscribe that say "not now" (rate limits, a service
#: unavailable or busy, an internal error): reconnect, never end the stream for them.
_SUBSCRIBE_RETRY_ERRORS = (*C.RATE_LIMIT_ERRORS, *C.RETRYABLE_ERRORS, "EGeneral:Internal error")

_FREE_TEXT = re.compile(r"^[A-Za-z0-9_\-]{1,18}$")
#: Namespace for deriving Kraken cl_ord_ids from long core client order ids.
CL_ORD_NAMESPACE = uuid.UUID("6f1d4c2e-7a0b-5d3e-9c41-a7b2f0e5d813")


def send_window_s(settings: KrakenSettings) -> float:
    """The longest time (seconds) from the start of :meth:`KrakenExecution.submit` to the
    moment its last AddOrder can leave, from the settings; :meth:`~KrakenExecution.submit`
    refuses to send past it (``VenueError``, not placed), so it is a hard bound.

    A restarted process knows only the order's time, not when the dead one sent its
    last AddOrder; counting "never placed" from the order's time plus the deadline alone
    was too early for a re-send (issue: double exposure after a restart).  Every wait
    that can come between the start and a send, each at its longest:

    * before each of the ``max_retries + 1`` sends: a ``Retry-After`` hold slept
      (``WAIT_CAP_S``; a longer one refuses the order unsent) and the pair's trading
      counter (at most full, saturated by ``EOrder:Rate limit``: one point decays in
      ``1 / decay`` s);
    * once, the pair's AssetPairs read (a private-read-like allowance, see below);
    * between two sends (``max_retries`` times): the first send's answer
      (``request_timeout_s``), two look-ups of two reads each (OpenOrders, ClosedOrders)
      and the wait past the deadline (``order_deadline_s + lookup_settle_s``);
    * a read: ``max_retries + 1`` attempts, each after a hold (``WAIT_CAP_S``) and a
      REST-counter wait (``1 / decay``), answered within ``request_timeout_s``, with a
      back-off between attempts of at most the larger of the reconnect back-off,
      ``WAIT_CAP_S`` and the counter's wait.

    Waits with no bound of their own (other orders taking the limiters' room first, a
    request running past its timeout phase by phase, refused nonces re-sent, unreadable
    look-up answers asked again, a change of the measured clock skew) are covered by the
    refusal, not by this sum.
    """
    retries = settings.max_retries
    _threshold, trading_decay = C.TRADING_RATE_TIERS[settings.rate_limit_tier]
    _maximum, rest_decay = C.REST_RATE_TIERS[settings.rate_limit_tier]
    counter_wait = 1.0 / rest_decay
    backoffs = sum(max(min(settings.reconnect_max_s, settings.reconnect_base_s * 2 ** a),
                       WAIT_CAP_S, counter_wait) for a in range(retries))
    read = (retries + 1) * (WAIT_CAP_S + counter_wait + settings.request_timeout_s) + backoffs
    before_send = WAIT_CAP_S + 1.0 / trading_decay
    between_sends = (settings.request_timeout_s + 4 * read + settings.order_deadline_s
                     + settings.lookup_settle_s)
    return read + (retries + 1) * before_send + retries * between_sends


def cl_ord_id_for(client_order_id: str) -> str:
    """The Kraken ``cl_ord_id`` of a core client order id (deterministic).

    Kraken accepts free text of up to 18 characters or a UUID; short ids and UUIDs in
    canonical form pass through unchanged, anything else maps to a UUIDv5.  Other
    spellings of a UUID (upper case, no dashes, braces, ``urn:uuid:``) are not
    normalised: they are distinct core ids, and sharing a wire id made a look-up find
    one order for the other, which was then never sent.
    """
    if _FREE_TEXT.match(client_order_id) or _is_canonical_uuid(client_order_id):
        return client_order_id
    return str(uuid.uuid5(CL_ORD_NAMESPACE, client_order_id))


def _is_canonical_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID exactly as ``str(uuid.UUID(...))`` writes it."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def txid_of(result: Any) -> str:
    """The txid of an AddOrder ``result`` (``{"descr": ..., "txid": ["O..."]}``); an answer
    of any other shape raises ``MalformedAnswerError``: whether Kraken placed the order
    is then unknown (never take a letter of a string, or ``None``, for a txid)."""
    txids = result.get("txid") if isinstance(result, dict) else None
    if (not isinstance(txids, list) or not txids
            or not all(isinstance(t, str) and t for t in txids)):
        raise MalformedAnswerError(f"Kraken AddOrder: answer without a txid list "
                                   f"({str(result)[:120]!r})")
    return txids[0]


def _on_grid(value: Decimal, step: Decimal) -> bool:
    return (value / step) == (value / step).to_integral_value()


def add_order_params(order: Order, pair: PairInfo, *, validate: bool = False) -> dict[str, Any]:
    """AddOrder parameters for a core order, checked against the pair's trading rules."""
    where = f"order {order.client_order_id} on {pair.symbol}"
    lot = Decimal(1).scaleb(-pair.lot_decimals)
    if not _on_grid(order.quantity, lot):
        raise VenueError(f"{where}: quantity {order.quantity} has more than "
                         f"{pair.lot_decimals} decimals (Kraken lot_decimals)")
    if order.quantity < pair.ordermin:
        raise VenueError(f"{where}: quantity {order.quantity} is below Kraken's ordermin "
                         f"{pair.ordermin}")
    params: dict[str, Any] = {
        "ordertype": "limit" if order.order_type is OrderType.LIMIT else "market",
        "type": "buy" if order.side is Side.BUY else "sell",
        "volume": format(order.quantity.quantize(lot), "f"),
        "pair": pair.altname,
        "cl_ord_id": cl_ord_id_for(order.client_order_id),
    }
    if order.order_type is OrderType.LIMIT:
        price = order.limit_price
        if price is None:
            raise VenueError(f"{where}: a limit order needs a limit price")
        if not _on_grid(price, pair.tick_size):
            raise VenueError(f"{where}: price {price} is not a multiple of the tick size "
                             f"{pair.tick_size}")
        params["price"] = format(price.quantize(Decimal(1).scaleb(-pair.price_decimals)), "f")
        tif = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.GTD: "GTD",
               TimeInForce.POST_ONLY: "GTC"}.get(order.time_in_force)
        if tif is None:
            raise VenueError(f"{where}: Kraken spot has no {order.time_in_force.value.upper()} "
                             f"time in force (use gtc, ioc, gtd or post_only)")
        params["timeinforce"] = tif
        if order.time_in_force is TimeInForce.POST_ONLY:
            params["oflags"] = "post"  # Kraken cancels it rather than let it take liquidity
    if validate:
        params["validate"] = True
    return params


@attrs.frozen
class ExecutionReport:
    """A fill from the ``executions`` channel with Kraken's own ids for the order."""

    fill: Fill
    cl_ord_id: str | None
    order_id: str | None


@attrs.define
class RestingOrder:
    """An order this process placed (or found after a restart) that may still rest."""

    client_order_id: str
    cl_ord_id: str
    txid: str
    pair: str
    placed_at: float


class KrakenExecution:
    """Order entry for one API key: submit, cancel, reconcile, dead-man's switch."""

    def __init__(self, settings: KrakenSettings, rest: KrakenRestClient, *,
                 trading_limiter: TradingRateLimiter | None = None,
                 keepalive_s: float | None = None, sleep: Sleep | None = None,
                 clock: Clock | None = None, wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.settings = settings
        self.rest = rest
        self._sleep: Sleep = sleep or asyncio.sleep
        #: Wall clock for AddOrder deadlines (Kraken compares them with its own clock).
        self._wall_ns = wall_ns
        #: Ambiguous AddOrder outcomes, look-ups made, and orders sent again because Kraken
        #: provably never took them (observability, tests).
        self.ambiguous = 0
        self.lookups = 0
        self.resent = 0
        #: Answers whose txid and ``cl_ord_id`` named different orders (ignored, logged).
        self.id_conflicts = 0
        self.trading = trading_limiter or TradingRateLimiter(
            settings.rate_limit_tier, clock or time.monotonic, self._sleep)
        #: Re-arm period of the dead-man's switch: a quarter of the timeout (Kraken: every 15 s
        #: for 60 s), counted from each re-arm's start; a re-arm gets no longer than that.
        self.keepalive_s = keepalive_s or settings.dead_man_timeout_s / C.DEAD_MAN_REARMS
        self.resting: dict[str, RestingOrder] = {}
        self._core_ids: dict[str, str] = {}  # Kraken cl_ord_id -> core client order id
        self._txid_core: dict[str, str] = {}  # Kraken order txid -> core client order id
        self._dead_man: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.dead_man_calls: list[int] = []
        #: Where a TradesHistory backfill starts: the newest fill time known (the run
        #: ledger's, then every fill seen), or, before any fill, the first order's time.
        self.backfill_from_ns: int | None = None
        #: TradesHistory pages fetched by backfills (observability, tests).
        self.backfill_pages = 0
        #: Txids of orders a resumed run holds as not finished: a backfill asks
        #: Kraken how each ended (a cancel while we were away is in no trade history).
        self.unsettled_txids: set[str] = set()
        #: Txids of orders this process placed and has not seen end: a reconnect's
        #: backfill asks about them too (a cancel while the socket was down is in no
        #: trade history and no snapshot).
        self.placed_txids: set[str] = set()
        #: Core ids a resumed run holds as working whose txid it never learnt (the answer
        #: came, the ``new`` event did not): a backfill finds them by ``cl_ord_id`` first.
        self.unsettled_ids: set[str] = set()
        #: The latest AddOrder deadline sent per core id (our wall clock): the settling of
        #: an unknown outcome may not call an order "never placed" before it has passed.
        self._last_deadline_ns: dict[str, int] = {}
        #: Core ids whose :meth:`submit` is running (it may still send): no verdict on them.
        self.sending: set[str] = set()
        #: :func:`send_window_s` of these settings: no AddOrder leaves later than this after
        #: its submit started.
        self.send_window_s = send_window_s(settings)

    def _kraken_ns(self) -> int:
        """Now on Kraken's clock (ours plus the skew its answers' ``Date`` showed): an
        AddOrder ``deadline`` is judged by Kraken's clock, so a deadline on ours was
        refused outright when Kraken ran a few seconds ahead (``EGeneral:Invalid
        arguments:deadline``: every order rejected) and, with Kraken behind, the wait
        past the deadline ended before Kraken's deadline had."""
        return self._wall_ns() + int(self.rest.clock_skew_s * 1e9)

    def _deadline_ns(self) -> int:
        """An AddOrder ``deadline`` for a request leaving now (Kraken's clock)."""
        return self._kraken_ns() + int(self.settings.order_deadline_s * 1e9)

    def _deadline_drawer(self, client_order_id: str, deadlines: list[int],
                         send_by_ns: int | None = None) -> Callable[[], dict[str, str]]:
        """AddOrder's ``late_params``: a deadline drawn as the request leaves (after any
        ``Retry-After`` wait), appended to ``deadlines`` so the look-ups wait for it, and
        remembered per order (on our clock) for :meth:`proof_after_ns`.  Past
        ``send_by_ns`` (our wall clock) the request is not sent: ``VenueError`` (every
        earlier send of the order was proven never placed, so it is not placed), which
        keeps :func:`send_window_s` a bound whatever the waits before it took."""
        def draw() -> dict[str, str]:
            if send_by_ns is not None and self._wall_ns() > send_by_ns:
                raise VenueError(
                    f"Kraken AddOrder {client_order_id}: not placed: not sent "
                    f"{self.send_window_s:.0f}s after its submit started (waits for rate "
                    f"limits and look-ups ran past send_window_s; a restart could no "
                    f"longer tell whether this send reached Kraken)")
            deadlines.append(self._deadline_ns())
            local_ns = deadlines[-1] - int(self.rest.clock_skew_s * 1e9)
            self._last_deadline_ns[client_order_id] = max(
                local_ns, self._last_deadline_ns.get(client_order_id, 0))
            return {"deadline": rfc3339(deadlines[-1])}

        return draw

    def proof_after_ns(self, client_order_id: str) -> int | None:
        """When (our wall clock, ns) "not found" proves Kraken never took any AddOrder this
        process sent for the order: its last deadline plus ``lookup_settle_s``.  None when
        this process sent none (after a restart only the order's own time is known)."""
        last = self._last_deadline_ns.get(client_order_id)
        return None if last is None else last + int(self.settings.lookup_settle_s * 1e9)

    # -- client order ids -----------------------------------------------------------------
    def remember(self, client_order_id: str) -> str:
        """Know ``client_order_id`` from now on; returns its Kraken ``cl_ord_id``."""
        cl_ord_id = cl_ord_id_for(client_order_id)
        self._core_ids[cl_ord_id] = client_order_id
        return cl_ord_id

    def adopt(self, client_order_ids: Iterable[str]) -> int:
        """Know these core ids (e.g. every order of a resumed run); returns how many."""
        count = 0
        for client_order_id in client_order_ids:
            self.remember(client_order_id)
            count += 1
        return count

    def core_id_for(self, cl_ord_id: str | None, order_id: str | None = None) -> str | None:
        """The core id behind Kraken's ``cl_ord_id`` or order ``txid``; None when unknown, or
        when the two name different known orders (which one it is about cannot be told:
        never guessed, it was taken for the ``cl_ord_id``'s order)."""
        core = self._core_ids.get(cl_ord_id) if cl_ord_id else None
        by_txid = self._txid_core.get(order_id) if order_id else None
        if core is not None and by_txid is not None and core != by_txid:
            self._id_conflict(order_id, cl_ord_id, by_txid)
            return None
        core = core or by_txid
        if core is not None and order_id:
            self._txid_core.setdefault(order_id, core)
        return core

    def _id_conflict(self, txid: str | None, cl_ord_id: str | None, txid_core: str) -> None:
        """Count and log an answer whose txid and ``cl_ord_id`` name different orders."""
        self.id_conflicts += 1
        log.error("Kraken: order %s (ours: %s) is listed with cl_ord_id %s, which is not its "
                  "own; the entry is about neither order and is ignored", txid, txid_core,
                  cl_ord_id)

    def adopt_txid(self, client_order_id: str, txid: str) -> None:
        """Know Kraken's order ``txid`` of a core order (e.g. ``orders.venue_order_id``)."""
        self.remember(client_order_id)
        self._txid_core[txid] = client_order_id

    def note_time(self, ts_ns: int) -> None:
        """A fill at ``ts_ns`` is known: later backfills need not look further back."""
        if self.backfill_from_ns is None or ts_ns > self.backfill_from_ns:
            self.backfill_from_ns = ts_ns

    @property
    def knows_orders(self) -> bool:
        """Whether any core order id is known (else no trade could map back)."""
        return bool(self._core_ids)

    def core_id(self, cl_ord_id: str) -> str:
        """The core client order id behind a Kraken cl_ord_id (itself when unknown)."""
        return self._core_ids.get(cl_ord_id, cl_ord_id)

    # -- orders --------------------------------------------------------------------------
    async def submit(self, order: Order) -> str:
        """Place ``order`` exactly once; returns Kraken's txid.

        Each AddOrder carries the order's ``cl_ord_id`` and a ``deadline``.  A
        documented refusal (``C.ORDER_NOT_PLACED_ERRORS``) raises ``VenueError``.
        Any other failure is ambiguous and :meth:`_resolve` looks the order up;
        it is sent again only when Kraken provably never took it, at most
        ``max_retries`` times.  When the look-up itself fails, ``OrderUnknown``
        is raised and nothing is sent again.  No AddOrder leaves later than
        :attr:`send_window_s` after the call (``VenueError``: not placed), and while it
        runs :attr:`sending` names the order (a look-up gives no verdict on it).
        """
        send_by_ns = self._wall_ns() + int(self.send_window_s * 1e9)
        self.sending.add(order.client_order_id)
        try:
            return await self._submit(order, send_by_ns)
        finally:
            self.sending.discard(order.client_order_id)

    async def _submit(self, order: Order, send_by_ns: int) -> str:
        symbol = order.instrument_id.partition(":")[2]
        pair = await self.rest.pair(symbol)
        params = add_order_params(order, pair)
        # Known before it is sent: its executions may arrive before AddOrder answers.
        cl_ord_id = self.remember(order.client_order_id)
        if self.backfill_from_ns is None:
            # A reconnect's backfill must reach back to this order's first trade.
            now = time.time_ns()
            self.backfill_from_ns = min(order.ts_ns, now) if order.ts_ns > 0 else now
        sends = 0
        still_open = True  # what a plain answer means; a look-up says what became of it
        while True:
            await self.trading.acquire(pair.altname, 1.0)
            deadlines = [self._deadline_ns()]  # the last one drawn is the one sent
            sends += 1
            try:
                result = await self.rest.add_order(
                    params, late_params=self._deadline_drawer(order.client_order_id, deadlines,
                                                      send_by_ns))
                txid = txid_of(result)
                break
            except KrakenApiError as exc:
                if exc.has(C.ORDER_NOT_PLACED_ERRORS) and not isinstance(exc,
                                                                         KrakenRateLimitError):
                    raise  # Kraken says it did nothing: the order is rejected
                if isinstance(exc, KrakenThrottled) and exc.retry_after_s > WAIT_CAP_S:
                    # An HTTP 429 (Kraken's edge: Kraken never saw it) or not sent at all,
                    # and a wait too long to sit through: refused now; the engine may try
                    # again (a flatten: 2 s later), refused unsent until the wait is over.
                    raise VenueError(f"Kraken AddOrder {order.client_order_id}: not placed: "
                                     f"rate limited for another {exc.retry_after_s:.0f}s "
                                     f"({exc})") from None
                if exc.has(("EOrder:Rate limit",)):
                    self.trading.saturate(pair.altname)  # the next send waits for the counter
                outcome = str(exc)
            except (TransientVenueError, MalformedAnswerError) as exc:
                outcome = str(exc)
            found = await self._resolve(order.client_order_id, cl_ord_id, deadlines[-1],
                                        outcome)
            if found is not None:
                txid, status = found
                still_open = status in ("open", "pending")
                break
            if sends > self.settings.max_retries:
                raise VenueError(f"Kraken AddOrder {order.client_order_id}: not placed after "
                                 f"{sends} attempts (last: {outcome}); Kraken holds no order "
                                 f"with cl_ord_id {cl_ord_id}")
            self.resent += 1
            log.warning("Kraken AddOrder %s: Kraken never took it (%s); sending it again",
                        cl_ord_id, outcome)
        self._txid_core[txid] = order.client_order_id
        if still_open:  # until an event or a backfill says how it ended
            self.placed_txids.add(txid)
        if still_open and order.order_type is OrderType.LIMIT and order.time_in_force in (
                TimeInForce.GTC, TimeInForce.GTD, TimeInForce.POST_ONLY):
            self.resting[cl_ord_id] = RestingOrder(order.client_order_id, cl_ord_id, txid,
                                                   pair.altname, self.trading.now())
            self._ensure_dead_man()
        return txid

    async def _resolve(self, client_order_id: str, cl_ord_id: str, deadline_ns: int,
                       outcome: str) -> tuple[str, str] | None:
        """After an ambiguous AddOrder: (txid, Kraken status) of the order, or None when
        Kraken provably never took it.

        The first look-up runs at once (the usual case: Kraken acted and the
        answer was lost).  Not found is not yet proof: the request may still be
        queued.  Kraken's engine rejects it after its ``deadline``, so a second
        look-up after the deadline plus ``lookup_settle_s`` (clock skew, the time
        an order takes to show) that still finds nothing is.  A look-up that
        fails raises ``OrderUnknown``.
        """
        self.ambiguous += 1
        log.warning("Kraken AddOrder %s (%s): outcome unknown (%s); looking it up by cl_ord_id",
                    client_order_id, cl_ord_id, outcome)
        found = await self.lookup(client_order_id, cl_ord_id, outcome)
        if found is None:
            wait_s = (deadline_ns - self._kraken_ns()) / 1e9 + self.settings.lookup_settle_s
            if wait_s > 0:
                await self._sleep(wait_s)
            found = await self.lookup(client_order_id, cl_ord_id, outcome)
        if found is not None:
            log.info("Kraken AddOrder %s: found as %s (%s); not sent again", cl_ord_id, *found)
        return found

    async def lookup(self, client_order_id: str, cl_ord_id: str, outcome: str
                      ) -> tuple[str, str] | None:
        """(txid, status) of the order carrying ``cl_ord_id``, open or closed (OpenOrders,
        then ClosedOrders: a filled market or IOC order is already closed); ``OrderUnknown``
        when Kraken cannot be asked."""
        self.lookups += 1
        try:
            for query in (self.rest.open_orders, self.rest.closed_orders):
                # Checked here too: an order with another cl_ord_id is never ours.
                # So is one keyed by another known order's txid (adopting it mapped that
                # order's trades to this one).
                hits = sorted((float(raw.get("opentm") or 0), txid, str(raw.get("status", "")))
                              for txid, raw in (await self._ask(query, cl_ord_id)).items()
                              if isinstance(raw, dict) and raw.get("cl_ord_id") == cl_ord_id
                              and self._txid_core.get(txid, client_order_id) == client_order_id)
                if len(hits) > 1:
                    log.error("Kraken holds %d orders with cl_ord_id %s: %s", len(hits),
                              cl_ord_id, [h[1] for h in hits])
                if hits:
                    return hits[0][1], hits[0][2]
        except (VenueError, ValueError, TypeError) as exc:  # TypeError: an opentm of [1]
            raise OrderUnknown(
                f"Kraken AddOrder {client_order_id}: outcome unknown ({outcome}) and Kraken "
                f"could not be asked whether it holds cl_ord_id {cl_ord_id} ({exc}); not sent "
                f"again: the executions stream or a restart settles it", [client_order_id]
            ) from None
        return None

    async def _ask(self, query: Callable[..., Awaitable[dict[str, Any]]], cl_ord_id: str
                   ) -> dict[str, Any]:
        """One look-up (OpenOrders / ClosedOrders by ``cl_ord_id``), asked again when its
        answer cannot be read (the REST layer already retries 5xx, resets and throttling)."""
        for attempt in range(self.settings.max_retries + 1):
            try:
                return await query(cl_ord_id=cl_ord_id)
            except MalformedAnswerError as exc:
                if attempt >= self.settings.max_retries:
                    raise
                log.warning("%s; asking again", exc)
                await self._sleep(min(self.settings.reconnect_max_s,
                                      self.settings.reconnect_base_s * 2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover  (the loop returns or raises)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel by core client order id (Kraken cancels by our cl_ord_id).

        A CancelOrder that cancelled nothing (``count`` 0 or ``EOrder:Unknown order`` —
        the order filled first, or an earlier attempt whose answer was lost already
        cancelled it) or whose answer cannot be read is settled by looking the order up:
        cancelled (or expired) there, the cancel is done; otherwise ``VenueError`` says
        what Kraken shows (``closed``: it filled, and its fills arrive on executions).  A
        cancel Kraken answers as ``pending`` (taken, not yet done) is looked up the same way:
        still open there, ``VenueError`` (the core asks again later)."""
        cl_ord_id = self.remember(client_order_id)
        resting = self.resting.get(cl_ord_id)
        if resting is not None:
            penalty = self.trading.cancel_penalty(self.trading.now() - resting.placed_at)
            await self.trading.acquire(resting.pair, penalty)
        why = ""
        try:
            result = await self.rest.cancel_order(cl_ord_id=cl_ord_id)
            count = result.get("count", 0)
            if type(count) is not int and not (isinstance(count, str) and count.isdecimal()):
                raise ValueError(f"count {count!r:.40} is not a whole number")  # true, 1.9
            if int(count) > 0 and not result.get("pending"):
                return
            # "pending": Kraken took the cancel but has not done it (the order can still
            # fill meanwhile): done only once a look-up shows it cancelled
            why = "Kraken's cancel is pending" if int(count) > 0 else \
                "Kraken cancelled nothing (count 0)"
        except KrakenApiError as exc:
            if not exc.has(("EOrder:Unknown order",)):
                raise
            why = str(exc)
        except (MalformedAnswerError, TypeError, ValueError) as exc:
            why = f"unreadable answer ({exc})"
        finally:
            self.forget(cl_ord_id)
        found = await self.lookup(client_order_id, cl_ord_id, why)
        if found is not None and found[1] in ("canceled", "expired"):
            log.warning("Kraken CancelOrder %s: %s; the order is %s", client_order_id, why,
                        found[1])
            return
        raise VenueError(f"Kraken CancelOrder {client_order_id}: {why}; Kraken shows the order "
                         + (f"{found[1]} ({found[0]})" if found else "in neither open nor "
                            "closed orders"))

    async def cancel_all(self) -> int:
        """CancelAll; forget every resting order."""
        count = await self.rest.cancel_all()
        for cl_ord_id in list(self.resting):
            self.forget(cl_ord_id)
        return count

    def forget(self, cl_ord_id: str) -> None:
        """An order is no longer resting (cancelled, filled, expired)."""
        self.resting.pop(cl_ord_id, None)
        self._wake.set()

    async def find_order(self, client_order_id: str) -> dict[str, Any] | None:
        """The open Kraken order carrying this client order id, if any."""
        found = await self.rest.open_orders(cl_ord_id=cl_ord_id_for(client_order_id))
        return next(iter(found.values()), None) if found else None

    async def open_orders(self) -> list[Order]:
        """Open orders as core Orders; also re-adopts them so the dead-man's switch covers them."""
        orders = []
        raw_orders = await self.rest.open_orders()
        odd = [t for t, raw in raw_orders.items()
               if not (isinstance(raw, dict) and isinstance(raw.get("descr", {}), dict))]
        if odd:
            raise MalformedAnswerError(f"Kraken OpenOrders: order {odd[0]} is not an object "
                                       f"with a descr object")
        names = {str(raw.get("descr", {}).get("pair", "")) for raw in raw_orders.values()}
        if any(self.rest.symbol_for(name) is None for name in names):
            await self.rest.asset_pairs()  # a restarted process knows no pairs yet
        for txid, raw in raw_orders.items():
            order = self._order_from_kraken(txid, raw)
            orders.append(order)
            cl = raw.get("cl_ord_id") or txid
            if order.client_order_id != cl:
                self._txid_core[txid] = order.client_order_id
            if cl not in self.resting:
                self.resting[cl] = RestingOrder(order.client_order_id, cl, txid,
                                                str(raw.get("descr", {}).get("pair", "")),
                                                self.trading.now())
        if self.resting:
            self._ensure_dead_man()
        return orders

    def _symbol_of(self, kraken_pair: str) -> str:
        symbol = self.rest.symbol_for(kraken_pair)
        if symbol is not None:
            return symbol
        if "/" in kraken_pair:
            return ws_symbol(kraken_pair)
        raise DataError(f"Kraken order pair {kraken_pair!r} is not in AssetPairs")

    def _order_from_kraken(self, txid: str, raw: dict[str, Any]) -> Order:
        where = f"Kraken OpenOrders[{txid}]"
        try:
            descr = raw["descr"]
            side = Side(descr["type"])
            order_type = OrderType.LIMIT if descr["ordertype"] == "limit" else OrderType.MARKET
            cl = raw.get("cl_ord_id") or txid
            vol_exec = Decimal(str(raw.get("vol_exec", "0")))
            price = Decimal(str(descr.get("price", "0")))
            return Order(
                client_order_id=self._core_ids.get(cl, cl), venue=C.VENUE,
                instrument_id=instrument_id(self._symbol_of(str(descr["pair"]))), side=side,
                quantity=Decimal(str(raw["vol"])) - vol_exec,
                limit_price=price if order_type is OrderType.LIMIT and price > 0 else None,
                order_type=order_type, time_in_force=TimeInForce.GTC,
                ts_ns=int(Decimal(str(raw.get("opentm", 0))) * 1_000_000_000),
                status=OrderStatus.PARTIALLY_FILLED if vol_exec > 0 else OrderStatus.OPEN,
            )
        except (KeyError, TypeError, ValueError, ArithmeticError, DataError) as exc:
            # (DataError: the Order's own checks, e.g. vol_exec at or above vol)
            raise DataError(f"{where}: unexpected order shape ({exc})") from None

    # -- backfill -----------------------------------------------------------------------------
    async def backfill(self, *, reconnected: bool = False
                       ) -> list[ExecutionReport | OrderEvent]:
        """Every trade of a known order since :attr:`backfill_from_ns`, from TradesHistory.

        The executions snapshot holds only the last 50 trades; whatever happened
        while this process was down or disconnected beyond that comes from the
        signed REST ``TradesHistory``, paged by ``ofs``.  ``start`` is exclusive
        and in whole seconds, so it starts one second before the newest known
        fill (trades already booked come back and are dropped by fill id).
        TradesHistory names orders only by txid: txids not known from this
        process or the run ledger are looked up with QueryOrders (50 per call)
        for their ``cl_ord_id``.  Trades of orders this run never placed are
        skipped (the executions snapshot still reports recent ones as foreign).
        Returned oldest first, the order the trades happened in, framed by the
        state QueryOrders gave for the orders it looked up (and for the ledger's
        unfinished orders): first their acknowledgements (OPEN, with the txid as
        venue order id, which a process that died before ``new`` never wrote),
        then the fills, then cancellations and expiries with Kraken's reason.
        After a ``reconnected`` socket, the orders this process placed and has not seen
        end are asked about too.
        """
        if self.backfill_from_ns is None or not self.knows_orders:
            return []
        start = self.backfill_from_ns // 1_000_000_000 - 1
        trades: dict[str, dict[str, Any]] = {}
        async for page in self.rest.trades_history_pages(start):
            self.backfill_pages += 1
            trades.update(page)
        unknown = {str(t.get("ordertxid")) for t in trades.values()
                   if isinstance(t, dict) and t.get("ordertxid")
                   and str(t["ordertxid"]) not in self._txid_core}
        for client_order_id in sorted(self.unsettled_ids):
            try:
                hit = await self.lookup(client_order_id, cl_ord_id_for(client_order_id),
                                        "resumed without a txid")
            except OrderUnknown as exc:  # asked again on the next connection
                raise TransientVenueError(str(exc)) from None
            self.unsettled_ids.discard(client_order_id)
            if hit is not None:
                self.adopt_txid(client_order_id, hit[0])
                self.unsettled_txids.add(hit[0])
        ask = sorted(unknown | self.unsettled_txids | (self.placed_txids if reconnected
                                                        else set()))
        acks: list[OrderEvent] = []
        ends: list[OrderEvent] = []
        for k in range(0, len(ask), 50):
            asked = set(ask[k:k + 50])
            found = await self.rest.query_orders(ask[k:k + 50])
            for txid, raw in found.items():
                if not isinstance(raw, dict):
                    raise DataError(f"Kraken QueryOrders[{txid}]: order is not an object")
                core = self._query_answer_core(txid, raw, asked)
                if core is None:
                    continue
                cl = cl_ord_id_for(core)  # the order's own id, whatever the entry spelt
                acks.append(OrderEvent(OrderStatus.OPEN, seconds_ns(raw.get("opentm") or 0),
                                       cl, txid, "found by QueryOrders"))
                status = str(raw.get("status") or "")
                if status in ("canceled", "expired"):
                    reason = str(raw.get("reason") or "")
                    if status == "expired":
                        reason = f"expired: {reason}" if reason else "expired"
                    ends.append(OrderEvent(OrderStatus.CANCELLED,
                                           seconds_ns(raw.get("closetm") or 0),
                                           cl, txid, reason))
                    self.unsettled_txids.discard(txid)
                    self.placed_txids.discard(txid)
                elif status == "closed":
                    self.unsettled_txids.discard(txid)
                    self.placed_txids.discard(txid)
                elif status not in _WORKING_STATUSES:  # asked again at the next backfill
                    log.warning("Kraken QueryOrders[%s]: status %.40r is none Kraken documents "
                                "(pending, open, closed, canceled, expired); the order is "
                                "taken as still working and asked about again", txid, status)
        reports: list[ExecutionReport] = []
        for trade_id, entry in trades.items():
            where = f"Kraken TradesHistory[{trade_id}]"
            if not isinstance(entry, dict):
                raise DataError(f"{where}: trade is not an object")
            txid = str(entry.get("ordertxid") or "")
            core = self._txid_core.get(txid)
            if core is None:
                continue  # not an order of this run
            pair_name = str(entry.get("pair") or "")
            if self.rest.symbol_for(pair_name) is None and "/" not in pair_name:
                await self.rest.asset_pairs()  # a restarted process knows no pairs yet
            symbol = self._symbol_of(pair_name)
            fill = parse_history_trade(trade_id, entry, instrument_id(symbol), core, where)
            reports.append(ExecutionReport(fill, cl_ord_id_for(core), txid))
        reports.sort(key=lambda r: (r.fill.ts_ns, r.fill.fill_id))
        return [*acks, *reports, *ends]

    def _query_answer_core(self, txid: str, raw: dict[str, Any], asked: set[str]) -> str | None:
        """The core order a QueryOrders entry is about, learning its txid; None for an order
        of no one we know, or an entry that cannot be about the order it names.

        The entry's key must be a txid we asked about, and its ``cl_ord_id`` must agree
        with what that txid is known to be: an answer about order A listing order B's
        ``cl_ord_id`` was read as B's (B acknowledged or cancelled under A's txid) while A
        was taken as settled.  Such an entry ends, fills and adopts nothing (A is asked
        about again on the next backfill), and a txid new to us is adopted by the
        ``cl_ord_id``'s order only when that order has no other txid already."""
        if txid not in asked:
            log.warning("Kraken QueryOrders: answer lists order %.40s, which was not asked "
                        "about; ignored", txid)
            return None
        cl = raw.get("cl_ord_id")
        cl = str(cl) if cl else None
        known = self._txid_core.get(txid)
        if known is not None:
            if cl is None or cl == cl_ord_id_for(known):
                return known
            self._id_conflict(txid, cl, known)
            return None
        core = self._core_ids.get(cl) if cl else None
        if core is None:
            return None  # an order this run did not place
        other = next((t for t, c in self._txid_core.items() if c == core), None)
        if other is not None:
            self._id_conflict(txid, cl, f"none; {cl} is order {other}")
            return None
        self._txid_core[txid] = core
        return core

    # -- dead-man's switch ------------------------------------------------------------------
    def _ensure_dead_man(self) -> None:
        if self.settings.dead_man_timeout_s <= 0:
            return
        if self._dead_man is None or self._dead_man.done():
            self._dead_man = asyncio.create_task(self._keep_alive(), name="kraken-dead-man")

    async def _keep_alive(self) -> None:
        """Re-arm every :attr:`keepalive_s` from the start of the last re-arm, each cut off at
        that period: a re-arm hanging on a slow REST answer (retries included) used to hold
        the next one back past the countdown, and Kraken cancelled every resting order."""
        timeout = self.settings.dead_man_timeout_s
        loop = asyncio.get_running_loop()
        while self.resting:
            started = loop.time()
            try:
                async with asyncio.timeout(self.keepalive_s):
                    await self.rest.cancel_all_orders_after(timeout)
                self.dead_man_calls.append(timeout)
            except Exception as exc:  # (an answer of the wrong shape too) re-armed next time
                log.error("Kraken dead-man's switch re-arm failed: %s: %s",
                          type(exc).__name__, exc or "no answer within the re-arm period")
            self._wake.clear()
            left = self.keepalive_s - (loop.time() - started)
            with contextlib.suppress(TimeoutError):  # not wait_for: it can lose a cancel
                async with asyncio.timeout(max(left, 0.0)):
                    await self._wake.wait()
        # Nothing rests any more: disarm so a later order starts a fresh countdown.
        await self.rest.cancel_all_orders_after(0)
        self.dead_man_calls.append(0)

    async def close(self) -> None:
        """Stop re-arming (an armed switch still cancels resting orders after the timeout)."""
        if self._dead_man is not None:
            self._dead_man.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # closing regardless
                await self._dead_man


class KrakenExecutionsFeed(WsSession):
    """Fills and order events from the authenticated v2 ``executions`` channel (needs keys).

    Yields, in the channel's order, :class:`ExecutionReport` (a fill with
    Kraken's ``cl_ord_id`` and ``order_id``; each ``exec_id`` once per process)
    and :class:`~argus_venue_kraken.schemas.OrderEvent` (acknowledged,
    cancelled, expired, restated, amended).  The subscription asks for the last
    50 trades in its snapshot; on every (re)connection, once subscribed, the
    trades beyond those come from TradesHistory (:meth:`KrakenExecution.backfill`)
    ahead of the snapshot.  The core books each ``fill_id`` once.
    """

    def __init__(self, settings: KrakenSettings, rest: KrakenRestClient,
                 execution: KrakenExecution | None = None, *,
                 known_fill_ids: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(settings.ws_auth_url, settings, **kwargs)
        self.rest = rest
        self.execution = execution
        self._token = ""
        # Fill ids handed out (or booked by the run before a restart): each goes out once.
        self._seen: set[str] = set(known_fill_ids)
        #: Fills that came from TradesHistory rather than the socket.
        self.backfilled = 0
        self._connections = 0  # subscribed connections so far (the first is no reconnect)
        self._throttled = False  # the last subscribe was refused for now (rate limit, busy)

    async def prepare(self) -> None:
        """A fresh token for every connection (they are short-lived).  A rate-limited
        token call is a failed connection, tried again once the limit allows (before: a
        429 ended the executions stream for good, and the run's fills with it)."""
        if self._throttled:  # the last subscribe was rate limited: no hammering
            self._throttled = False
            await self.rest._sleep(self.settings.reconnect_max_s)
        try:
            self._token = await self.rest.websockets_token()
        except KrakenRateLimitError as exc:
            await self._wait_out(exc)
            raise OSError(f"GetWebSocketsToken rate limited: {exc}") from None

    def on_connect(self) -> list[Any]:
        self.send_later({"method": "subscribe",
                         "params": {"channel": "executions", "token": self._token,
                                    "snap_orders": True, "snap_trades": True},
                         "req_id": self._next_req_id()})
        return []

    async def after_subscribe(self) -> list[Any]:
        """Trades missed while away, from TradesHistory (after subscribing, so that the
        snapshot and updates cover everything from the history call on)."""
        if self.execution is None:
            return []
        self._connections += 1
        try:
            reports = await self.execution.backfill(reconnected=self._connections > 1)
        except (TransientVenueError, KrakenRateLimitError) as exc:
            # Reconnect and try again rather than go on with a hole in the fills.
            if isinstance(exc, KrakenRateLimitError):
                await self._wait_out(exc)
            raise OSError(f"TradesHistory backfill failed: {exc}") from None
        out = [r for r in reports if isinstance(r, OrderEvent) or self._first(r.fill)]
        n_fills = sum(isinstance(r, ExecutionReport) for r in out)
        self.backfilled += n_fills
        if n_fills:
            log.info("Kraken executions: %d fills backfilled from TradesHistory", n_fills)
        return out

    async def _wait_out(self, exc: KrakenRateLimitError) -> None:
        """Before reconnecting after a rate limit: the edge's ``Retry-After`` (at most a
        minute at a time), else until the REST counter has room again."""
        wait = (exc.retry_after_s if isinstance(exc, KrakenThrottled)
                else self.rest.rest_limiter.counter.wait_for(1))
        await self.rest._sleep(min(max(wait, 0.0), 60.0))

    def _first(self, fill: Fill) -> bool:
        if fill.fill_id in self._seen:
            return False
        self._seen.add(fill.fill_id)
        if self.execution is not None:
            self.execution.note_time(fill.ts_ns)
        return True

    def on_disconnect(self, reason: str) -> list[Any]:
        return []

    def on_frame(self, raw: str | bytes) -> list[Any]:
        msg = self.decode(raw)
        if msg is None or msg.get("channel") != "executions":
            if msg is not None and msg.get("success") is False:
                error = str(msg.get("error"))
                if error.startswith(_SUBSCRIBE_RETRY_ERRORS):
                    # A throttled subscribe, or one Kraken could not serve right now, is a
                    # failed connection, not a refused key: reconnect once the longest
                    # back-off has passed (see ``prepare``).  Ending the stream halted the run.
                    self._throttled = True
                    what = ("rate limited" if error.startswith(C.RATE_LIMIT_ERRORS)
                            else "failed for now")
                    raise OSError(f"Kraken executions subscription {what}: {error}")
                raise VenueError(f"Kraken executions subscription refused: {error}")
            return []
        out: list[ExecutionReport | OrderEvent] = []
        data = msg.get("data")
        if not isinstance(data, list):
            self.malformed += 1
            log.warning("Kraken executions: frame without a data list dropped")
            return []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                self.malformed += 1
                log.warning("Kraken executions[%d]: not an object: %r", i, item)
                continue
            try:
                symbol = item.get("symbol") or ""
                if item.get("exec_type") == "trade" and symbol not in self.settings.pairs:
                    # (a fill booked on "kraken:['BTC/USD']" for an order of BTC/USD)
                    raise DataError(f"executions[{i}]: a trade of {symbol!r:.40}, not a "
                                    f"configured pair")
                fill = parse_execution(item, instrument_id(str(symbol)), f"executions[{i}]")
                event = None if fill is not None else parse_order_event(item,
                                                                        f"executions[{i}]")
            except (DataError, TypeError, ValueError, KeyError, AttributeError,
                    ArithmeticError) as exc:  # one item, never the socket's task
                self.malformed += 1
                log.warning("Kraken executions: bad item: %s: %s", type(exc).__name__, exc)
                continue
            status = item.get("order_status") or item.get("exec_type")
            cl = item.get("cl_ord_id")
            order_id = item.get("order_id")
            if self.execution is not None and status in ("filled", "canceled", "expired"):
                for key in (cl, order_id):
                    if key:
                        self.execution.forget(str(key))
                if order_id:
                    self.execution.placed_txids.discard(str(order_id))
            if event is not None:
                out.append(event)
            if fill is None or not self._first(fill):
                continue
            out.append(ExecutionReport(fill, str(cl) if cl else None,
                                       str(order_id) if order_id else None))
        return out
