"""Orders on Kalshi: exactly-once submission, cancels, look-ups, and the executions
feed.

Where an order goes: ``submit`` sends ``POST /portfolio/orders`` once with the core's
client order id (``client_order_id``).  A definite answer (a readable 201, or a 4xx
refusal) ends it.  Anything ambiguous (a timeout, a reset, a lost or late answer, a 5xx,
a 409 "client order id in use", a 2xx that is not JSON or not the documented shape) is
resolved by asking Kalshi for the order by client order id (``GET
/portfolio/orders?ticker=&min_ts=``: :meth:`KalshiExecution._listed`), never by sending
blind: found -> acknowledged; not found -> ``OrderUnknown``, and ``executions()`` keeps
looking for it (Kalshi's lists can lag its engine) until ``order_give_up_s``: found ->
acknowledged, never seen -> CANCELLED, never placed.  Only a 429 proves the exchange did
not act (its rate limiter answers before the engine): not found, the order is sent again
with the same id after the 429's Retry-After (never sooner than a back-off:
``Retry-After: 0`` is no licence to hammer), at most ``max_retries`` times, each time
after a look-up; refused every time, it is rejected.  A Retry-After longer than
``rest.WAIT_CAP_S`` is not waited out in line: the order is refused at once (not placed)
and every send before the wait ends is refused unsent, so the engine's next try (a kill
switch's flatten: 2 s later) goes out as soon as Kalshi takes requests again.  A 502 or
503 proves nothing (a gateway answers them after the engine acted too), and Kalshi
refuses a second order with one client id only while the first rests, so a re-send could
place a second order.

``executions()`` polls ``GET /portfolio/fills`` and ``GET
/portfolio/orders?status=resting`` (every page; working orders that left that list are
asked for by id, and awaited ones in their market's list: :data:`LOOKUP_SLACK_S`) every
``poll_interval_s``: fills (by ``trade_id``, mapped to client ids through the order ids
this venue learned), OPEN with the venue order id when an order rests, CANCELLED when it
is cancelled, and a ``FillCorrection`` with Kalshi's ``fee_cost`` for a booked fill
whose fee differs (the socket's fills state none: they are booked with the fee
formula's, then corrected once the poll lists them; after a restart too, from the fees
the ledger hands back).  A failed or unreadable poll is a dropped feed: it is retried,
and fills seen again carry the same id and contents; a fill that cannot be read is
logged and left for a later poll, never guessed at.  Fills also arrive over the
websocket ``fill`` channel (:mod:`.fills`) as they happen; the poll stays on beside it
(the socket does not replay what it missed while down) and every fill is reported once,
by ``trade_id``.

A cancel whose answer is lost, late, a 5xx or unreadable is confirmed by asking for the
order (``GET /portfolio/orders/{order_id}``): cancelled -> done; otherwise the cancel
fails with what Kalshi says of the order (executed: the fill won the race).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx

from argus_core import (
    DataError,
    Fill,
    FillCorrection,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
    VenueResume,
)
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.fees import KalshiFeeSchedule
from argus_venue_kalshi.fills import FillStream
from argus_venue_kalshi.instruments import (
    instrument_id,
    parse_instrument_id,
    parse_time_ns,
)
from argus_venue_kalshi.rest import (
    WAIT_CAP_S,
    KalshiHttpError,
    KalshiMalformedAnswer,
    KalshiRest,
    backoff_s,
)
from argus_venue_kalshi.schemas import count, on_grid, position, price

PriceRanges = tuple[tuple[Decimal, Decimal, Decimal], ...]

log = logging.getLogger(__name__)

#: How long an order given up as never placed (or ended unfilled before a restart) is
#: still watched for in the orders list: a send held on the way can be placed after the
#: give-up, and is then cancelled (the ledger says it ended; it must not rest).
LATE_PLACEMENT_WATCH_S = 3600.0

_WIRE_ID = re.compile(r"^[-\w:+=/]{1,64}$")
#: Refusals that prove the exchange did not act: its rate limiter answers before the
#: engine.  (A 502 / 503 can come from a gateway after the engine acted.)
REFUSED_BEFORE_ACTING = (429,)
#: What a look-up or a poll may meet and try again after (Kalshi could not be asked).
UNREACHABLE = (VenueError, httpx.TransportError)
#: What reading a fill of the wrong shape raises (a fill so read is logged, not booked).
UNREADABLE = (DataError, KeyError, TypeError, ValueError, AttributeError, ArithmeticError)
#: A fill's ``action`` as the core's side; anything else is not a fill we can book.
ACTIONS = {"buy": Side.BUY, "sell": Side.SELL}
#: The outcome a (side, action) leaves the account long (docs getting_started/
#: order_direction: buy-yes and sell-no are long yes; buy-no and sell-yes long no), and
#: ``book_side`` in the same vocabulary (bid is yes, ask is no, always).
OUTCOME_OF = {("yes", "buy"): "yes", ("no", "sell"): "yes", ("no", "buy"): "no",
              ("yes", "sell"): "no"}
BOOK_SIDE_OUTCOME = {"bid": "yes", "ask": "no"}
#: How the orders list is asked (docs.kalshi.com/api-reference/portfolio/get-orders, "Get
#: Orders": ``ticker`` "restricts the response to orders in a single market", ``min_ts``
#: "to orders after a timestamp, formatted as a Unix Timestamp", ``status`` "resting,
#: canceled, or executed", ``cursor`` / ``limit``; docs getting_started/historical_data:
#: "Resting (active) orders are unaffected and always appear in GET /portfolio/orders").
#: The page does not say which of an order's times ``min_ts`` compares (``created_time``
#: or ``last_update_time``), so a window is only ever used where both readings keep the
#: order in it: a look-up asks for its market from the order's own creation (both of its
#: times come after that) less :data:`LOOKUP_SLACK_S`; the poll never relies on ``min_ts``
#: to show a change (it reads ``status=resting`` and asks each order of ours that left
#: that list by id, ``GET /portfolio/orders/{order_id}``).  Before, every poll and
#: look-up read the account's whole history, and past ``rest.MAX_PAGES`` pages failed.
LOOKUP_SLACK_S = 300.0
#: How long a ``GET /historical/cutoff`` answer is kept (seconds), and how far after a
#: kept cutoff a time must lie for the kept answer to say "not archived" (the cutoffs only
#: advance, so a kept cutoff after a time stays true for good; one before it may have
#: moved past it since: docs getting_started/historical_data, "regularly updated,
#: advancing forward", target about 3 months behind now).  Before, every look-up that
#: missed the live list asked for the cutoff again.
CUTOFF_TTL_S = 300.0
CUTOFF_MARGIN_S = 7 * 86_400.0
#: How far behind the newest fill seen the fills poll's ``min_ts`` stays (seconds of
#: Kalshi's own clock; ``order_give_up_s`` is added): a fill stamped in the same second as
#: the newest, or listed late (a venue delay), or of an order this venue learns late (an
#: ambiguous send found later) is still read; fills read twice are booked once, by
#: ``trade_id``.  (Before, ``min_ts`` never moved: every poll re-read the run's whole
#: fill history.)
FILL_OVERLAP_S = 600

#: The most contracts one fill may carry, and the most fee per contract (a dollar: the
#: contract's whole price): past them a fill or its fee is malformed (a fee of
#: 1e999999999 overflowed the account's arithmetic and halted trading).
MAX_FILL_COUNT, MAX_FEE_PER_CONTRACT = Decimal(10**9), Decimal(1)


def wire_client_id(client_order_id: str) -> str:
    """The ``client_order_id`` sent to Kalshi: the core's id when Kalshi accepts it,
    else a stable digest of it (so a restarted venue derives the same one)."""
    if _WIRE_ID.match(client_order_id):
        return client_order_id
    return "argus-" + hashlib.sha256(client_order_id.encode()).hexdigest()[:40]


#: The grid of a market that says nothing else: whole cents.
WHOLE_CENTS = ((Decimal(0), Decimal(1), C.CENT),)
_DOLLARS = Decimal(1).scaleb(-C.PRICE_DECIMALS)


def order_body(order: Order, price_ranges: PriceRanges | None = None) -> dict[str, Any]:
    """The ``POST /portfolio/orders`` body of a core order: the price as the documented
    fixed-point dollar string (``yes_price_dollars`` / ``no_price_dollars``, 4 decimals,
    exact), plus the legacy integer cents when the price is a whole cent; a price off the
    market's grid (``price_ranges``; whole cents when not given) is refused here.  Market
    orders become IOC limits at the worst whole-cent price (0.99 to buy, 0.01 to sell)."""
    ticker, side = parse_instrument_id(order.instrument_id)
    qty = order.quantity
    if qty != qty.to_integral() or qty < 1:
        raise VenueError(f"kalshi: {order.client_order_id}: quantity {qty} is not a whole "
                         f"number of contracts")
    post_only = order.time_in_force is TimeInForce.POST_ONLY
    if order.order_type is OrderType.MARKET or order.limit_price is None:
        if post_only:
            raise VenueError(f"kalshi: {order.client_order_id}: a post-only order needs a "
                             f"limit price")
        limit, tif = (Decimal("0.99") if order.side is Side.BUY else C.CENT), \
            "immediate_or_cancel"
    else:
        limit = order.limit_price
        grid = price_ranges or WHOLE_CENTS
        if not on_grid(limit, grid) or limit != limit.quantize(_DOLLARS):
            bands = ", ".join(f"{a}-{b} step {c}" for a, b, c in grid)
            raise VenueError(f"kalshi: {order.client_order_id}: price {limit} is not on "
                             f"{ticker}'s price grid ({bands})")
        tif = C.TIME_IN_FORCE.get(order.time_in_force.value, "")
        if not tif:
            raise VenueError(f"kalshi: time in force {order.time_in_force} is not supported")
    body: dict[str, Any] = {
        "ticker": ticker, "client_order_id": wire_client_id(order.client_order_id),
        "side": side, "action": "buy" if order.side is Side.BUY else "sell",
        "count": int(qty), "type": "limit",
        f"{side}_price_dollars": f"{limit.quantize(_DOLLARS)}", "time_in_force": tif}
    cents = limit / C.CENT
    if cents == cents.to_integral():  # the legacy field, for whole cents only
        body[f"{side}_price"] = int(cents)
    if post_only:  # a GTC order Kalshi cancels (PostOnlyCrossCancel) rather than let take
        body["post_only"] = True
    if order.reduce_only:  # Kalshi's own guard: the order never flips the position
        body["reduce_only"] = True
    return body


def names_other(order: dict[str, Any], wire: str, ticker: str) -> str:
    """What in ``order`` (an answer's order object) names an order other than the one
    sent with client id ``wire`` in market ``ticker`` ("" when nothing does: a field
    left out names nothing).  Such an answer is another order's (a mixed-up answer):
    adopting it would map that order's fills and cancels to ours."""
    coid, market = order.get("client_order_id"), order.get("ticker")
    if coid not in (None, wire):
        return f"client order id {str(coid)[:64]!r}, not {wire!r}"
    if market not in (None, ticker):
        return f"market {str(market)[:64]!r}, not {ticker!r}"
    return ""


def adds_to_yes(order: Order) -> bool:
    """Whether ``order`` adds to a YES position (a YES bought, a NO sold): Kalshi nets
    the two sides of a market, so selling YES it does not hold buys NO."""
    _, side = parse_instrument_id(order.instrument_id)
    return (side == "yes") == (order.side is Side.BUY)


class KalshiExecution:
    """Order entry and the executions feed of one Kalshi account."""

    def __init__(self, settings: KalshiSettings, rest: KalshiRest,
                 fees: KalshiFeeSchedule) -> None:
        self.settings, self.rest, self.fees = settings, rest, fees
        self.client_ids: dict[str, str] = {}  # wire client id -> core client id
        self.order_ids: dict[str, str] = {}  # venue order id -> core client id
        self.venue_ids: dict[str, str] = {}  # core client id -> venue order id
        self._booked: set[str] = set()
        self._announced: dict[str, str] = {}  # core client id -> last status reported
        self._queue: asyncio.Queue[Fill | OrderUpdate] = asyncio.Queue()
        self._min_ts_s = 0
        self.fill_stream: FillStream | None = None
        self._cancels: list[tuple[str, str, asyncio.Future[None]]] = []
        self._cancelling: asyncio.Task[None] | None = None
        #: ticker -> the market's price grid (set by the venue as it loads markets).
        self.grids: dict[str, PriceRanges] = {}
        #: Ids of fills first seen on the websocket (the rest came from the poll).
        self.ws_fill_ids: set[str] = set()
        #: Orders whose fate is unknown (an ambiguous send, or pending at a restart and not
        #: listed yet): core client id -> when to give up looking (``time.time()``).
        self.awaiting: dict[str, float] = {}
        #: Orders the ledger has ended unfilled (given up as never placed, say) that a
        #: late placement could still bring to life: client id -> watched until
        #: (``time.time()``).  Listed resting -> cancelled at Kalshi.
        self.late_watch: dict[str, float] = {}
        self._late_pruned_at = 0.0  # when expired watches were last dropped
        self._bad_fills: set[str] = set()  # fills that could not be read (logged once)
        #: Fills of orders this run never placed (another client on the account), each
        #: handed to the core once (it records them as unknown fills, never as ours).
        self.foreign_fill_ids: set[str] = set()
        self._odd_fees: set[str] = set()  # fills whose fee_cost was unreadable (said once)
        #: The fee each booked fill of ours carries in the ledger (the socket's fills: the
        #: formula's, it states none): a listed ``fee_cost`` that differs is corrected.
        self.booked_fees: dict[str, Decimal] = {}
        #: core client id -> (ticker, side, action) of the order as sent: the direction of
        #: its fills when Kalshi states only ``outcome_side`` / ``book_side``.
        self.directions: dict[str, tuple[str, str, str]] = {}
        #: core client id -> a reduce-only order's quantity: one Kalshi ends ``executed``
        #: short of it (cut to the position) has the rest CANCELLED, else the core's
        #: order stays working for good.  (Only exits are ever sent short.)
        self.quantities: dict[str, Decimal] = {}
        #: Reduce-only orders sent with fewer contracts than the core asked: client id ->
        #: why (the CANCELLED update's reason).
        self.cut: dict[str, str] = {}
        #: core client id -> when the core created the order (unix s; absent: unknown):
        #: no order with its client id can exist at Kalshi before (look-up windows).
        self.born: dict[str, float] = {}
        #: Orders of ours Kalshi has not shown ended yet (canceled / executed): core
        #: client id -> venue order id ("": not known yet, after a restart).  The poll
        #: asks for each that is not listed resting.
        self.working: dict[str, str] = {}
        self._unlisted: dict[str, float] = {}  # client id -> first answered 404 (time.time())
        #: The last ``GET /historical/cutoff`` answer (field -> unix s on Kalshi's clock;
        #: empty: no historical tier) and when it was read (``time.monotonic()``).
        self._cutoff: dict[str, float] | None = None
        self._cutoff_read_at = 0.0
        #: Orders whose archived fills (``GET /historical/fills``) have been read, or that
        #: were created after the trades cutoff (none of their fills is archived).
        self._history_read: set[str] = set()

    # -- bookkeeping -----------------------------------------------------------------
    def learn(self, client_order_id: str, venue_order_id: str | None = None) -> None:
        """Remember that ``client_order_id`` is ours (and its venue order id)."""
        self.client_ids[wire_client_id(client_order_id)] = client_order_id
        if venue_order_id:
            self.order_ids[venue_order_id] = client_order_id
            self.venue_ids[client_order_id] = venue_order_id

    def remember(self, order: Order) -> None:
        """Remember ``order``'s market and direction (for fills that state only
        ``outcome_side``)."""
        ticker, side = parse_instrument_id(order.instrument_id)
        self.directions[order.client_order_id] = (
            ticker, side, "buy" if order.side is Side.BUY else "sell")
        if order.ts_ns > 0:
            self.born[order.client_order_id] = order.ts_ns / 1e9
        if order.reduce_only:
            self.quantities[order.client_order_id] = order.quantity

    def resume(self, known: VenueResume) -> None:
        """Learn a restarted run's orders and booked fills."""
        until = time.time() + LATE_PLACEMENT_WATCH_S  # from now: an order's time is the
        for item in known.orders:                      # market's, not this clock's
            order = item.order
            self.learn(order.client_order_id, item.venue_order_id)
            self.remember(order)
            if order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED) and \
                    not item.filled_quantity:
                self.late_watch[order.client_order_id] = until
            elif order.status in (OrderStatus.PENDING, OrderStatus.OPEN,
                                  OrderStatus.PARTIALLY_FILLED):
                # "": its venue id is not known (the poll finds it by client id)
                self.working[order.client_order_id] = item.venue_order_id or ""
        self._booked.update(known.fill_ids)
        self.booked_fees.update(known.fill_fees)
        if known.newest_fill_ts_ns:  # the ledger's newest fill, less the overlap
            self._advance_fills_window(known.newest_fill_ts_ns // 10**9)

    # -- submission ------------------------------------------------------------------
    def body(self, order: Order) -> dict[str, Any]:
        """:func:`order_body` on the grid of ``order``'s market."""
        ticker, _ = parse_instrument_id(order.instrument_id)
        body = order_body(order, self.grids.get(ticker))
        self.remember(order)
        return body

    async def submit(self, order: Order) -> list[Fill]:
        """Send ``order`` exactly once (see the module docstring); fills come through
        ``executions()``."""
        body = self.body(order)
        coid = order.client_order_id
        if order.reduce_only:
            body = await self._within_position(order, body)
        self.learn(coid)
        wire = body["client_order_id"]
        last = ""
        for attempt in range(self.settings.max_retries + 1):
            try:
                answer = await self.rest.send("POST", "/portfolio/orders", body=body,
                                              signed=True)
                placed = answer.get("order")
                if not isinstance(placed, dict) or not placed.get("order_id"):
                    raise KalshiMalformedAnswer(f"kalshi: POST /portfolio/orders: answer "
                                                f"without an order ({sorted(answer)})")
                if other := names_other(placed, wire, body["ticker"]):
                    raise KalshiMalformedAnswer(f"kalshi: POST /portfolio/orders: the "
                                                f"answer names {other}")
            except KalshiHttpError as exc:
                if exc.status in REFUSED_BEFORE_ACTING:
                    try:
                        found = await self._find(wire)
                    except OrderUnknown:  # executions() looks for it
                        self.awaiting[coid] = time.time() + self.settings.order_give_up_s
                        raise
                    if found is not None:  # an earlier send of this order got through
                        self._acknowledge(coid, found)
                        return []
                    last = str(exc)
                    wait = backoff_s(exc, attempt + 1)
                    if wait > WAIT_CAP_S:  # never frozen for the venue's whole penalty
                        raise VenueError(f"kalshi: order {coid} not placed: rate limited "
                                         f"for another {wait:.0f}s ({exc}); Kalshi lists "
                                         f"no order with its client id") from exc
                    log.warning("kalshi: order %s refused before acting (%s); sending it "
                                "again in %.2fs", coid, exc, wait)
                    await asyncio.sleep(wait)
                    continue
                if exc.status == 409 or exc.status >= 500:
                    return await self._resolve(coid, wire, str(exc))
                self._queue.put_nowait(OrderUpdate(coid, OrderStatus.REJECTED, time.time_ns(),
                                                   reason=str(exc)))
                raise VenueError(f"kalshi: order {coid} refused: {exc}") from exc
            except KalshiMalformedAnswer as exc:
                return await self._resolve(coid, wire, str(exc))
            except httpx.TransportError as exc:
                return await self._resolve(coid, wire, f"{type(exc).__name__}: {exc}")
            self._acknowledge(coid, placed)
            return []
        raise VenueError(f"kalshi: order {coid} not placed: refused before acting "
                         f"{self.settings.max_retries + 1} times, and Kalshi lists no order "
                         f"with its client id (last: {last})")

    async def _within_position(self, order: Order, body: dict[str, Any]) -> dict[str, Any]:
        """A reduce-only order sized to what Kalshi holds (``GET /portfolio/positions``):
        its count cut to the position it closes, or refused unsent when Kalshi holds
        nothing it would reduce (the ledger and the venue disagree: a flatten sent
        anyway would sell YES not held, that is buy NO, and open the reverse position).
        A position that cannot be read refuses the order unsent too."""
        coid, ticker = order.client_order_id, body["ticker"]
        why = ""
        try:
            listed = await self.rest.pages("/portfolio/positions", "market_positions",
                                           {"ticker": ticker}, signed=True)
            held = _one_position(ticker, listed)
        except (*UNREACHABLE, KalshiMalformedAnswer, DataError) as exc:
            held, why = Decimal(0), f"its position in {ticker} could not be read ({exc})"
        # whole contracts only (order_body): a fractional rest is left
        room = int(abs(held)) if held and (held > 0) != adds_to_yes(order) else 0
        if not why and not room:
            why = (f"Kalshi holds {held} {ticker} (positive YES, negative NO): nothing to "
                   f"reduce")
        if why:
            self._queue.put_nowait(OrderUpdate(coid, OrderStatus.REJECTED, time.time_ns(),
                                               reason=why))
            raise VenueError(f"kalshi: reduce-only order {coid} not placed: {why}")
        if room < body["count"]:
            log.warning("kalshi: reduce-only order %s cut from %s to %s contracts: Kalshi "
                        "holds %s %s", coid, body["count"], room, held, ticker)
            self.cut[coid] = (f"reduce-only: sent {room} of {body['count']} contracts, the "
                              f"position Kalshi held in {ticker} ({held}); the rest was "
                              f"never sent")
            body = {**body, "count": room}
        return body

    async def _resolve(self, coid: str, wire: str, why: str) -> list[Fill]:
        """After an ambiguous send: the order found by client id is acknowledged; not
        found, ``OrderUnknown`` (never re-sent) and ``executions()`` keeps looking."""
        log.warning("kalshi: order %s: outcome unknown (%s); asking Kalshi", coid, why)
        try:
            found = await self._find(wire)
        except OrderUnknown:
            self.awaiting[coid] = time.time() + self.settings.order_give_up_s
            raise
        if found is not None:
            self._acknowledge(coid, found)
            return []
        self.awaiting[coid] = time.time() + self.settings.order_give_up_s
        raise OrderUnknown(f"kalshi: order {coid}: {why}; Kalshi lists no order with its "
                           f"client id yet; not sent again (executions() looks for it for "
                           f"{self.settings.order_give_up_s:g}s)", [coid])

    def _acknowledge(self, coid: str, order: dict[str, Any]) -> None:
        self.learn(coid, order["order_id"])
        self._report(coid, order)

    def _report(self, coid: str, order: dict[str, Any]) -> None:
        status = order.get("status")
        last = self._announced.get(coid)
        if not isinstance(order.get("order_id"), str):  # an answer of the wrong shape
            order = {**order, "order_id": self.venue_ids.get(coid)}
        if status in (C.STATUS_CANCELED, C.STATUS_EXECUTED):
            self.working.pop(coid, None)  # ended: nothing more to ask of it
        elif isinstance(order["order_id"], str) and order["order_id"]:
            self.working[coid] = order["order_id"]
        if status == C.STATUS_RESTING and last is None:
            self._announced[coid] = "open"
            self._queue.put_nowait(OrderUpdate(coid, OrderStatus.OPEN, time.time_ns(),
                                               order["order_id"]))
        elif status == C.STATUS_CANCELED and last != "cancelled":
            if last is None:  # an IOC remainder: acknowledged and cancelled at once
                self._queue.put_nowait(OrderUpdate(coid, OrderStatus.OPEN, time.time_ns(),
                                                   order["order_id"]))
            self._announced[coid] = "cancelled"
            self.cut.pop(coid, None)  # ended as Kalshi said: nothing short to report
            # e.g. "PostOnlyCrossCancel": a post-only order that would have crossed
            self._queue.put_nowait(OrderUpdate(coid, OrderStatus.CANCELLED, time.time_ns(),
                                               order["order_id"],
                                               reason=str(order.get("last_update_reason") or "")))
        elif status == C.STATUS_EXECUTED and last is None:
            self._announced[coid] = "executed"
            self._queue.put_nowait(OrderUpdate(coid, OrderStatus.OPEN, time.time_ns(),
                                               order["order_id"]))
        if status == C.STATUS_EXECUTED and self._announced.get(coid) != "cancelled" \
                and (short := self._short(coid, order)):
            # Kalshi filled all it was sent; the core's order is larger (the cut part),
            # which would otherwise stay "working" for good (and veto later exits)
            self._announced[coid] = "cancelled"
            self._queue.put_nowait(OrderUpdate(coid, OrderStatus.CANCELLED, time.time_ns(),
                                               order["order_id"], reason=short))

    def _short(self, coid: str, order: dict[str, Any]) -> str:
        """Why executed ``order`` ended short of the core order's quantity ("" when it did
        not, or that cannot be read)."""
        want = self.quantities.get(coid)
        try:
            done = count(order, "fill_count")
        except (DataError, TypeError, AttributeError):
            return self.cut.get(coid, "")
        if want is None or done >= want:
            return ""
        return self.cut.get(coid) or (f"Kalshi executed {done} of the order's {want} "
                                      f"contracts and ended it")

    def _window(self, coids: list[str]) -> dict[str, Any]:
        """The ``GET /portfolio/orders`` filter whose whole list holds every order that
        could carry one of ``coids`` (orders of one market; see :data:`LOOKUP_SLACK_S`):
        ``ticker`` when they share one, ``min_ts`` from the oldest one's creation (less
        the slack, never after now) when every creation is known."""
        params: dict[str, Any] = {}
        tickers = {(self.directions.get(c) or ("",))[0] for c in coids}
        if len(tickers) == 1 and (ticker := tickers.pop()):
            params["ticker"] = ticker
        born = [self.born.get(c) for c in coids]
        if born and all(b is not None for b in born):
            start = self._venue_start(min(b for b in born if b is not None))
            if start is not None:  # offset unknown (no Date seen): the whole list
                params["min_ts"] = int(start)
        return params

    def _venue_start(self, born_s: float) -> float | None:
        """The earliest time on Kalshi's clock an order we created at ``born_s`` (our
        clock, never after now) can carry, less :data:`LOOKUP_SLACK_S`; None while
        Kalshi's clock is unknown (no ``Date`` seen).  Kalshi compares ``min_ts`` and its
        cutoffs with its own times: our clock taken for Kalshi's hid a placed order when
        Kalshi's ran more than the slack behind (given up as never placed).  The offset
        only ever widens the window: a ``Date`` far ahead (a proxy's page, a cache) must
        not move it past the order's creation."""
        offset = self.rest.clock_offset_s
        if offset is None:
            return None
        return max(0.0, min(born_s, time.time()) + min(offset, 0.0) - LOOKUP_SLACK_S)

    async def _listed(self, coids: list[str]) -> list[Any]:
        """Every order Kalshi lists that could carry one of ``coids``' client ids: one
        whole list (every page) per market (:meth:`_window`); a list that cannot be read
        whole raises (an ``UNREACHABLE``): "not listed" is only concluded from lists
        read to their end."""
        by_market: dict[str, list[str]] = {}
        for coid in coids:
            by_market.setdefault((self.directions.get(coid) or ("",))[0], []).append(coid)
        rows: list[Any] = []
        for group in by_market.values():
            window = self._window(group)
            live = await self.rest.pages("/portfolio/orders", "orders", window, signed=True,
                                         id_key="order_id")
            rows.extend(live)
            listed = {o.get("client_order_id") for o in live if isinstance(o, dict)}
            if any(wire_client_id(c) not in listed for c in group):
                rows.extend(await self._archived(window))
        return rows

    async def _archived(self, window: dict[str, Any]) -> list[Any]:
        """The orders of ``window``'s market that Kalshi moved to ``GET
        /historical/orders`` (``ticker``, every page; it takes no ``min_ts``): asked only
        when the live list lacks an order and ``GET /historical/cutoff``'s
        ``orders_updated_ts`` is after the window's start (an order canceled or executed
        before the cutoff is listed there only; docs getting_started/historical_data).
        Before, such an order was taken for never placed.  A cutoff that cannot be read
        raises (an ``UNREACHABLE``: "could not ask"); a 404 (no historical tier) is
        taken for nothing archived."""
        if not await self._before_cutoff("orders_updated_ts", window.get("min_ts", 0)):
            return []
        params = {"ticker": window["ticker"]} if "ticker" in window else {}
        return await self.rest.pages("/historical/orders", "orders", params, signed=True,
                                     id_key="order_id")

    async def _cutoffs(self) -> dict[str, float]:
        """``GET /historical/cutoff`` read now (and kept: :data:`CUTOFF_TTL_S`): each
        cutoff in unix seconds of Kalshi's clock; empty on a 404 (no historical tier).
        A cutoff that cannot be read raises (an ``UNREACHABLE``: "could not ask")."""
        try:
            answer = await self.rest.get("/historical/cutoff", signed=True)
        except KalshiHttpError as exc:
            if exc.status != 404:
                raise
            cutoffs: dict[str, float] = {}
        else:
            cutoffs = {"orders_updated_ts": _cutoff_s(answer, "orders_updated_ts")}
            if isinstance(answer, dict) and answer.get("trades_created_ts") is not None:
                cutoffs["trades_created_ts"] = _cutoff_s(answer, "trades_created_ts")
        self._cutoff, self._cutoff_read_at = cutoffs, time.monotonic()
        return cutoffs

    async def _before_cutoff(self, field: str, ts_s: float) -> bool:
        """Whether Kalshi's ``field`` cutoff is after ``ts_s`` (Kalshi's clock): records
        from before it are served only by the historical endpoints.  A kept answer
        decides when it can (a cutoff after ``ts_s`` stays after it; one at least
        :data:`CUTOFF_MARGIN_S` before it, read less than :data:`CUTOFF_TTL_S` ago, is
        still before it), else the cutoff is read again.  A trades cutoff Kalshi does not
        state is taken for the orders cutoff."""
        def value(cutoffs: dict[str, float]) -> float:
            return cutoffs.get(field, cutoffs.get("orders_updated_ts", 0.0))
        kept = self._cutoff
        if kept is not None:
            if ts_s < value(kept):
                return True
            if time.monotonic() - self._cutoff_read_at < CUTOFF_TTL_S and \
                    ts_s >= value(kept) + CUTOFF_MARGIN_S:
                return False
        return ts_s < value(await self._cutoffs())

    async def _find(self, wire_id: str) -> dict[str, Any] | None:
        """The order carrying ``wire_id`` (open or closed), asked up to ``max_retries``
        + 1 times in the list of its market since its creation (:meth:`_listed`); None
        when that list, read whole, does not hold it."""
        coid = self.client_ids.get(wire_id, wire_id)
        for attempt in range(self.settings.max_retries + 1):
            try:
                orders = await self._listed([coid])
            except UNREACHABLE as exc:
                why = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.05 * 2 ** attempt)
                continue
            rows = [o for o in orders if isinstance(o, dict)
                    and o.get("client_order_id") == wire_id]
            found = next((o for o in rows if isinstance(o.get("order_id"), str)
                          and o["order_id"]), None)
            if found is not None or not rows:
                return found
            # Listed, but under no readable id: the order exists, so "none" would be
            # wrong (a caller could take the order for never placed); asked again.
            why = f"its row carries order_id {rows[0].get('order_id')!r:.60}, not an id"
            await asyncio.sleep(0.05 * 2 ** attempt)
        raise OrderUnknown(f"kalshi: cannot ask for order {wire_id} ({why})",
                           [self.client_ids.get(wire_id, wire_id)])

    # -- cancels, look-ups, open orders ----------------------------------------------
    async def cancel(self, client_order_id: str) -> None:
        """Cancel by client order id; the CANCELLED update follows.  Cancels asked for
        together (the engine cancels every working order at once when trading HALTs) go
        out as ``DELETE /portfolio/orders/batched`` (at most 20 orders, and no more
        tokens than the write budget, a batch), billed 2 tokens an order instead of 10 a
        request; a lone one as
        ``DELETE /portfolio/orders/{order_id}``."""
        venue_id = self.venue_ids.get(client_order_id)
        if venue_id is None:
            found = await self._find(wire_client_id(client_order_id))
            if found is None:
                raise VenueError(f"kalshi: no order {client_order_id} to cancel")
            venue_id = found["order_id"]
            self.learn(client_order_id, venue_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cancels.append((client_order_id, venue_id, done))
        if self._cancelling is None or self._cancelling.done():
            self._cancelling = asyncio.get_running_loop().create_task(self._send_cancels())
        await done

    async def _send_cancels(self) -> None:
        """Send the cancels queued so far: the engine's other cancel tasks of this tick
        queue theirs first (they are scheduled before this task)."""
        await asyncio.sleep(0)
        # as many as one batch may carry: 20, and no more tokens than the write budget
        each = max(1, self.rest.cost("DELETE", "/portfolio/orders/batched", 1))
        size = max(1, min(C.BATCH_MAX_ORDERS, self.rest.writes.limit // each))
        while self._cancels:
            batch = self._cancels[:size]
            del self._cancels[:len(batch)]
            if len(batch) == 1:
                coid, venue_id, done = batch[0]
                try:
                    answer = await self.rest.send("DELETE", f"/portfolio/orders/{venue_id}",
                                                  signed=True)
                    order = answer.get("order")
                    _cancelled(order, venue_id, "DELETE /portfolio/orders/{id}")
                except Exception as exc:  # what became of it is asked, then said
                    await self._cancel_failed(coid, venue_id, done, exc)
                    continue
                self._report(coid, order)
                done.set_result(None)
                continue
            try:
                answer = await self.rest.send(
                    "DELETE", "/portfolio/orders/batched", signed=True, items=len(batch),
                    body={"orders": [{"order_id": v} for _, v, _ in batch]})
                items = answer.get("orders")
                if not isinstance(items, list):
                    raise KalshiMalformedAnswer("kalshi: DELETE /portfolio/orders/batched: "
                                                "answer without a list of orders")
            except Exception as exc:  # every waiting cancel learns why
                for coid, venue_id, done in batch:
                    await self._cancel_failed(coid, venue_id, done, exc)
                continue
            by_id = {item["order_id"]: item for item in items
                     if isinstance(item, dict) and isinstance(item.get("order_id"), str)}
            for coid, venue_id, done in batch:
                item = by_id.get(venue_id) or {}
                err = item.get("error")
                if item.get("order") is None and err:  # refused: the order stands
                    err = err if isinstance(err, dict) else {"message": str(err)}
                    done.set_exception(VenueError(
                        f"kalshi: cancel of {coid} refused: {err.get('code', '')} "
                        f"{err.get('message', '')}".strip()))
                    continue
                try:  # no answer for it, or one that does not say cancelled: asked
                    _cancelled(item.get("order"), venue_id, "DELETE /portfolio/orders/batched")
                except KalshiMalformedAnswer as exc:
                    await self._cancel_failed(coid, venue_id, done, exc)
                    continue
                self._report(coid, item["order"])
                done.set_result(None)

    async def _cancel_failed(self, coid: str, venue_id: str, done: asyncio.Future[None],
                             exc: Exception) -> None:
        """A cancel that failed, or whose answer was lost, late or unreadable: Kalshi is
        asked what the order is now.  Cancelled: the cancel is done (its update is
        reported); anything else: the cancel fails, saying what the order is."""
        why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, VenueError) else str(exc)
        try:
            answer = await self.rest.get(f"/portfolio/orders/{venue_id}", signed=True)
            order = answer.get("order")
            status = order.get("status") if isinstance(order, dict) else None
            if isinstance(order, dict) and order.get("order_id") not in (None, venue_id):
                # another order's state says nothing of ours: not taken as a cancel
                raise KalshiMalformedAnswer(f"the answer names order "
                                            f"{str(order.get('order_id'))[:40]!r}")
        except Exception as ask:  # (an answer of the wrong shape too) the cancel fails
            order, status = None, None
            why += f"; and Kalshi could not be asked about the order ({ask})"
        if isinstance(order, dict) and status == C.STATUS_CANCELED:
            log.warning("kalshi: cancel of %s: %s; Kalshi shows it cancelled", coid, why)
            self._report(coid, order)
            done.set_result(None)
            return
        if isinstance(order, dict):
            self._report(coid, order)  # e.g. executed: the fill won the race
            why += f"; Kalshi shows the order {status}"
        done.set_exception(VenueError(f"kalshi: cancel of {coid} ({venue_id}) failed: {why}"))

    async def lookup(self, order: Order) -> OrderUpdate | None:
        """OPEN with the venue order id when Kalshi has (or had) it.  Not listed: CANCELLED
        once the order is ``order_give_up_s`` old (never placed); younger, None — a send
        cut short by the restart may not be listed yet — and ``executions()`` looks for it
        until then."""
        coid = order.client_order_id
        self.learn(coid)
        self.remember(order)
        found = await self._find(wire_client_id(coid))
        now = time.time_ns()
        if found is None:
            give_up = order.ts_ns / 1e9 + self.settings.order_give_up_s
            if order.ts_ns and give_up > time.time():
                self.awaiting[coid] = give_up
                return None
            return OrderUpdate(coid, OrderStatus.CANCELLED, now,
                               reason="kalshi has no order with this client order id")
        self.learn(order.client_order_id, found["order_id"])
        # the poll reports what became of it (CANCELLED, executed) from here
        self.working.setdefault(coid, found["order_id"])
        return OrderUpdate(order.client_order_id, OrderStatus.OPEN, now, found["order_id"])

    async def open_orders(self) -> list[Order]:
        """Resting orders carrying a client order id, as core orders (one listed twice:
        once); ``VenueError`` naming what failed when Kalshi cannot be asked (after the
        read's retries: a transport error's own text can be empty) or a row cannot be
        read (:meth:`_resting_order`): the core's reconciliation at start-up stops on it."""
        try:
            resting = await self.rest.pages("/portfolio/orders", "orders",
                                            {"status": C.STATUS_RESTING}, signed=True,
                                            id_key="order_id")
        except httpx.TransportError as exc:
            raise VenueError(f"kalshi: could not list resting orders (GET /portfolio/orders "
                             f"failed after {self.settings.max_retries + 1} attempts: "
                             f"{type(exc).__name__} {exc}); nothing was sent") from exc
        out: dict[str, Order] = {}  # by client id: pages that overlap list one twice
        for i, raw in enumerate(resting):
            order = self._resting_order(raw, f"GET /portfolio/orders row {i}")
            if order is not None:
                out.setdefault(order.client_order_id, order)
        return list(out.values())

    def _resting_order(self, raw: Any, where: str) -> Order | None:
        """One resting order as a core order, read strictly (``where`` names the row);
        None for one without a client order id (placed by hand: not the core's).  The
        direction comes from ``side`` / ``action`` (deprecated), else the order as sent,
        else ``outcome_side`` / ``book_side`` (:func:`_direction`); a value acted on that
        is missing or unreadable is a ``VenueError`` naming the row (before: a bare
        ``KeyError`` / ``AttributeError`` stopped the core's start-up)."""
        if not isinstance(raw, dict):
            raise VenueError(f"kalshi: {where}: not an order ({str(raw)[:80]!r})")
        wire = raw.get("client_order_id") or ""
        if not wire:
            return None
        vid, ticker = raw.get("order_id"), raw.get("ticker")
        where = f"{where} (order {str(vid)[:40]}, client order id {str(wire)[:64]})"
        if not isinstance(wire, str):
            raise VenueError(f"kalshi: {where}: client_order_id is not a string")
        if not isinstance(vid, str) or not vid:
            raise VenueError(f"kalshi: {where}: order_id {vid!r:.40} is not an order id")
        if not isinstance(ticker, str) or not ticker:
            raise VenueError(f"kalshi: {where}: ticker {ticker!r:.40} is not a market ticker")
        coid = self.client_ids.get(wire, wire)
        try:
            side, action = _direction(raw, self.directions.get(coid), what=f"order {vid}")
            if side not in ("yes", "no") or action not in ACTIONS:
                raise DataError(f"kalshi: direction side {side!r:.20} action {action!r:.20} "
                                f"is not yes/no and buy/sell")
            order = Order(
                coid, C.VENUE, instrument_id(ticker, side.upper()), ACTIONS[action],
                count(raw, "fill_count", default=Decimal(0)) + count(raw, "remaining_count"),
                price(raw, f"{side}_price"), OrderType.LIMIT, TimeInForce.GTC,
                ts_ns=parse_time_ns(raw.get("created_time")) or 0, status=OrderStatus.OPEN)
        except DataError as exc:
            raise VenueError(f"kalshi: {where}: {exc}") from None
        self.learn(coid, vid)
        if coid in self.client_ids.values():  # ours: the poll follows it until it ends
            self.working.setdefault(coid, vid)
        return order

    async def settlements(self, min_ts: int | None = None,
                          progress: Callable[[int, int], None] | None = None
                          ) -> list[dict[str, Any]]:
        """This account's settled positions (``GET /portfolio/settlements``, every page;
        from ``min_ts``, unix seconds of Kalshi's clock, when given: settled after it), as
        Kalshi's objects: ``ticker``, ``market_result``, counts, ``revenue``.
        ``progress(pages, items)`` is called after each page."""
        params = {} if min_ts is None else {"min_ts": max(0, int(min_ts))}
        return list(await self.rest.pages("/portfolio/settlements", "settlements", params,
                                          signed=True, progress=progress))

    # -- the executions feed ---------------------------------------------------------
    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """Acknowledgements, fills, cancels and fee corrections, polled, with fills also
        from the websocket ``fill`` channel (``ws_fills``); runs until cancelled."""
        stream = None
        if self.settings.ws_fills and self.settings.has_credentials:
            self.fill_stream = FillStream(self.settings, self.rest, self._on_ws_fill)
            stream = asyncio.get_running_loop().create_task(self.fill_stream.run())
        try:
            async for item in self._polled():
                yield item
        finally:
            if stream is not None:
                stream.cancel()

    def _on_ws_fill(self, raw: dict[str, Any]) -> None:
        """A websocket fill: queued unless booked already (by the poll or the socket);
        a fill of an order not yet known here is left to the poll."""
        try:
            fill = self._fill(raw)
        except UNREADABLE as exc:  # the socket's task must live: the poll reads it again
            log.warning("kalshi fill websocket: unusable fill %s (%s); left to the poll",
                        raw.get("trade_id"), exc)
            return
        if fill is not None:
            self._booked.add(fill.fill_id)
            self.ws_fill_ids.add(fill.fill_id)
            self.booked_fees[fill.fill_id] = fill.fee  # no fee_cost: the formula's
            self._queue.put_nowait(fill)

    async def _polled(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """Queued news as it comes, and a REST poll every ``poll_interval_s`` (on a
        clock: news in between does not bring a poll forward)."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while True:
            if loop.time() >= next_poll:
                try:
                    for item in await self._poll():
                        yield item
                    pause = self.settings.poll_interval_s
                except (*UNREACHABLE, DataError) as exc:
                    # a 429 says when to ask again: not before (one warning, not one a poll)
                    pause = max(self.settings.poll_interval_s,
                                exc.retry_after_s or 0.0 if isinstance(exc, KalshiHttpError)
                                and exc.status == 429 else 0.0)
                    log.warning("kalshi executions poll failed (%s); retrying in %.2fs", exc,
                                pause)
                next_poll = loop.time() + pause
            while not self._queue.empty():
                yield self._queue.get_nowait()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                # that lands as the websocket's fill completes the get
                async with asyncio.timeout(max(0.0, next_poll - loop.time())):
                    item = await self._queue.get()
            except TimeoutError:
                continue
            yield item

    async def _poll(self) -> list[Fill | OrderUpdate | FillCorrection]:
        out: list[Fill | OrderUpdate | FillCorrection] = []
        await self._poll_orders()
        now = time.time()
        if now >= self._late_pruned_at + 60:  # expired watches, once a minute
            self._late_pruned_at = now
            self.late_watch = {c: t for c, t in self.late_watch.items() if t > now}
        self._give_up_unseen()
        # Every read first, then the bookkeeping: a read that fails after the retries
        # ends the poll before anything is marked booked or taken off the queue (the
        # queue used to be drained before the fills read, and its fills and updates
        # were lost with a poll that failed there).
        fills = await self.rest.pages("/portfolio/fills", "fills", {"min_ts": self._min_ts_s},
                                      signed=True, id_key="trade_id")
        archived, archived_of = await self._archived_fills()
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        for raw in reversed(archived):
            try:
                fill = self._fill(raw)
            except UNREADABLE as exc:
                self._unreadable_fill(raw, exc)
                archived_of.clear()  # read again next poll
                continue
            if fill is not None:
                self._booked.add(fill.fill_id)
                self.booked_fees[fill.fill_id] = fill.fee
                out.append(fill)
        self._history_read.update(archived_of)
        newest, unreadable = 0, None  # the newest fill's time; the oldest unreadable's
        for raw in reversed(fills):  # newest first on the wire
            stamp = _fill_time_s(raw)
            try:
                fill = self._fill(raw)
            except UNREADABLE as exc:
                self._unreadable_fill(raw, exc)
                if stamp is not None:
                    unreadable = stamp if unreadable is None else min(unreadable, stamp)
                continue
            newest = max(newest, stamp or 0)
            if fill is not None:
                self._booked.add(fill.fill_id)
                self.booked_fees[fill.fill_id] = fill.fee
                out.append(fill)
            elif (fix := self._fee_correction(raw)) is not None:
                out.append(fix)
            elif (foreign := self._foreign(raw)) is not None:
                out.append(foreign)
        self._advance_fills_window(newest, unreadable)
        return out

    async def _archived_fills(self) -> tuple[list[Any], set[str]]:
        """(``GET /historical/fills`` of the markets of this run's orders created before
        ``GET /historical/cutoff``'s ``trades_created_ts``, the orders they cover).  A
        fill created before that cutoff is listed only there (docs
        getting_started/historical_data), so an order found months later (a restart, an
        archived look-up) had such fills missed.  Read once per order (an archived fill
        never changes; later fills are live); an order created after the cutoff is never
        asked about (its fills are all live).  Creation is put on Kalshi's clock; an
        order of unknown creation is asked about."""
        due: dict[str, set[str]] = {}  # ticker -> client ids
        known = set(self.order_ids.values()) - self._history_read
        rows: list[Any] = []
        try:
            for coid in sorted(known):
                ticker = (self.directions.get(coid) or ("",))[0]
                if not ticker:  # its market is unknown: nothing to ask by
                    self._history_read.add(coid)
                    continue
                born = self.born.get(coid)
                start = (self._venue_start(born) if born is not None else None) or 0.0
                if await self._before_cutoff("trades_created_ts", start):
                    due.setdefault(ticker, set()).add(coid)
                else:  # created after the cutoff: none of its fills is archived
                    self._history_read.add(coid)
            for ticker in sorted(due):
                rows.extend(await self.rest.pages("/historical/fills", "fills",
                                                  {"ticker": ticker}, signed=True,
                                                  id_key="trade_id"))
        except (*UNREACHABLE, KalshiMalformedAnswer) as exc:
            # the live poll goes on; these orders are asked about again next poll
            log.warning("kalshi: archived fills (GET /historical/cutoff, /historical/"
                        "fills) could not be read (%s); asked again next poll", exc)
            return [], set()
        return rows, set().union(*due.values()) if due else set()

    def _advance_fills_window(self, newest_s: int, unreadable_s: int | None = None) -> None:
        """Move the fills poll's ``min_ts`` forward: to ``newest_s`` (the newest fill
        seen, on Kalshi's clock, and never past this machine's now: a fill stamped in the
        future moves nothing) less :data:`FILL_OVERLAP_S` + ``order_give_up_s``; never
        past a fill that could not be read (``unreadable_s``: it is read again every
        poll); never back."""
        if newest_s <= 0:
            return
        target = min(newest_s, int(time.time())) - FILL_OVERLAP_S - \
            int(self.settings.order_give_up_s)
        if unreadable_s is not None:
            target = min(target, unreadable_s - 1)
        self._min_ts_s = max(self._min_ts_s, target, 0)

    async def _poll_orders(self) -> None:
        """What became of this run's orders, without reading the account's history:
        the resting orders (``status=resting``: a new one OPEN, a late-placed one
        cancelled), the orders awaited by client id (an ambiguous send: each market's
        list since the oldest one's creation, :meth:`_listed`), then each working order
        of ours listed in neither (canceled or executed since: ``GET
        /portfolio/orders/{order_id}``, every one in the same poll: an order the
        resting list hid, shifting as an order left it between two page reads, is asked
        for too)."""
        seen: set[str] = set()  # client ids listed in this poll
        resting = await self.rest.pages("/portfolio/orders", "orders",
                                        {"status": C.STATUS_RESTING}, signed=True,
                                        id_key="order_id")
        await self._take(resting, seen)
        awaited = [c for c in self.awaiting if c not in self.venue_ids and c not in seen]
        unknown = [c for c, v in self.working.items()
                   if not v and c not in seen and c not in self.awaiting]
        if awaited or unknown:
            await self._take(await self._listed(awaited + unknown), seen)
        now = time.time()
        for coid in unknown:  # a working order its market's list does not hold
            if coid not in seen and now - self._unlisted.setdefault(coid, now) >= \
                    self.settings.order_give_up_s:
                self.working.pop(coid, None)
                self._unlisted.pop(coid, None)
                log.warning("kalshi: order %s: no order with its client id in its market "
                            "for %gs; no longer followed", coid, self.settings.order_give_up_s)
        await self._ask_working(seen)

    async def _take(self, rows: list[Any], seen: set[str]) -> None:
        """Learn and report the orders of ours among ``rows`` (once per poll each)."""
        for raw in rows:
            if not (isinstance(raw, dict) and isinstance(raw.get("order_id"), str)
                    and raw["order_id"] and isinstance(raw.get("client_order_id"), str)):
                continue  # not one of ours as far as can be read (a list for an id...)
            coid = self.client_ids.get(raw["client_order_id"])
            if coid is None or coid in seen:
                continue
            seen.add(coid)
            self._unlisted.pop(coid, None)
            self.learn(coid, raw["order_id"])
            self._report(coid, raw)
            if coid in self.late_watch and raw.get("status") == C.STATUS_RESTING:
                await self._cancel_late(coid, raw["order_id"])

    async def _ask_working(self, seen: set[str]) -> None:
        """Ask Kalshi, by id, for each working order of ours not listed this poll (it
        left the resting list: canceled or executed; or a list lags).  A 404 (moved to
        the historical tier, or not shown yet) is looked for in its market's lists
        (:meth:`_listed`, ``/historical/orders`` included), and asked again next poll,
        until ``order_give_up_s`` of them."""
        # every one, in this poll: a cap (20 a poll, before) left the rest of a burst of
        # ended orders for later polls; the rate limiter paces the reads
        due = [(c, v) for c, v in self.working.items() if v and c not in seen]
        gone: list[str] = []  # answered 404
        for coid, vid in due:
            try:
                answer = await self.rest.get(f"/portfolio/orders/{vid}", signed=True)
            except KalshiHttpError as exc:
                if exc.status != 404:
                    raise
                gone.append(coid)
                continue
            self._unlisted.pop(coid, None)
            order = answer.get("order") if isinstance(answer, dict) else None
            wire = wire_client_id(coid)
            if not isinstance(order, dict) or order.get("order_id") not in (None, vid) \
                    or order.get("client_order_id") not in (None, wire):
                log.warning("kalshi: GET /portfolio/orders/%s answered no order of ours; "
                            "asked again next poll", vid)
                continue
            self._report(coid, {**order, "order_id": vid})
        if gone:
            await self._take(await self._listed(gone), seen)
        now = time.time()
        for coid in gone:
            if coid in seen or now - self._unlisted.setdefault(coid, now) < \
                    self.settings.order_give_up_s:
                continue
            self.working.pop(coid, None)
            self._unlisted.pop(coid, None)
            log.warning("kalshi: order %s: GET /portfolio/orders/{id} answers 404 and no "
                        "list holds it for %gs; no longer followed", coid,
                        self.settings.order_give_up_s)

    def _foreign(self, raw: dict[str, Any]) -> Fill | None:
        """A fill of an order this run never placed (a person, or another client on the
        account; the orders list read just before names every order of ours): handed to
        the core once, under Kalshi's order id, which records it as an unknown fill
        without booking it, and logged.  None for one of ours or one said already."""
        fill_id = str(raw.get("trade_id") or raw.get("fill_id") or "")
        if (not fill_id or fill_id in self._booked or fill_id in self.foreign_fill_ids
                or self.order_ids.get(raw.get("order_id", ""))
                or self.client_ids.get(raw.get("client_order_id") or "")):
            return None
        try:
            fill = self._fill(raw, owner=f"kalshi-order:{raw.get('order_id') or '?'}")
        except UNREADABLE as exc:
            self._unreadable_fill(raw, exc)
            return None
        self.foreign_fill_ids.add(fill_id)
        if fill is not None:
            log.warning("kalshi: fill %s (%s %s %s) belongs to order %s, which this run did "
                        "not place; not booked as ours", fill_id, fill.side.value,
                        fill.quantity, fill.instrument_id, raw.get("order_id"))
        return fill

    async def _cancel_late(self, coid: str, venue_id: str) -> None:
        """Cancel order ``coid``, which the ledger has ended (given up as never placed,
        say) and Kalshi lists resting: its send was placed late.  The strategy was told
        it ended, so it must not rest; a fill it took first is still booked to it.  A
        failed cancel is tried again at the next poll."""
        log.error("kalshi: order %s (%s), which the ledger has ended, rests at Kalshi (its "
                  "send was placed late): cancelling it", coid, venue_id)
        try:
            await self.cancel(coid)
        except Exception as exc:  # any failure: the next poll lists it and asks again
            log.warning("kalshi: cancel of late-placed order %s failed (%s); asked again at "
                        "the next poll", coid, exc)
            return
        self.late_watch.pop(coid, None)

    def _give_up_unseen(self) -> None:
        """Orders awaited (an ambiguous send, or pending at a restart) that Kalshi now
        lists are known (``learn``); those still unlisted after ``order_give_up_s`` end
        CANCELLED, never placed."""
        now = time.time()
        for coid, give_up in list(self.awaiting.items()):
            if coid in self.venue_ids:
                del self.awaiting[coid]
            elif now >= give_up:
                del self.awaiting[coid]
                self.late_watch[coid] = now + LATE_PLACEMENT_WATCH_S
                log.error("kalshi: order %s: no order with its client id after %gs; "
                          "never placed", coid, self.settings.order_give_up_s)
                self._queue.put_nowait(OrderUpdate(
                    coid, OrderStatus.CANCELLED, time.time_ns(),
                    reason=f"never placed: Kalshi lists no order with its client id "
                           f"{self.settings.order_give_up_s:g}s after an ambiguous send"))

    def _unreadable_fill(self, raw: Any, exc: Exception) -> None:
        """A fill the poll cannot read: logged (once per id) and left unbooked — asked
        again every poll, never guessed at."""
        fill_id = str(raw.get("trade_id") or raw.get("fill_id") or "?") \
            if isinstance(raw, dict) else "?"
        if fill_id in self._bad_fills:
            return
        self._bad_fills.add(fill_id)
        log.error("kalshi: fill %s cannot be read (%s: %s); not booked, read again every "
                  "poll", fill_id, type(exc).__name__, exc)

    def _fill(self, raw: dict[str, Any], *, again: bool = False, owner: str | None = None
              ) -> Fill | None:
        """A core fill of ``raw``; None when not ours (unless ``owner`` names whose it
        is), or already booked (unless ``again``)."""
        fill_id = str(raw.get("trade_id") or raw.get("fill_id") or "")
        coid = owner or (self.order_ids.get(raw.get("order_id", ""))
                         or self.client_ids.get(raw.get("client_order_id") or ""))
        if not fill_id or (fill_id in self._booked and not again) or coid is None:
            return None
        sent = None if owner else self.directions.get(coid)
        side, action = _direction(raw, sent)
        ticker = raw.get("ticker") or raw.get("market_ticker") or (sent and sent[0])
        if side not in ("yes", "no") or action not in ACTIONS or not isinstance(ticker, str):
            raise DataError(f"kalshi: fill side {side!r}, action {action!r}, ticker "
                            f"{ticker!r}: not yes/no, buy/sell and a ticker")
        fill_price = price(raw, f"{side}_price")
        qty = count(raw)
        assert fill_price is not None
        if not (0 < fill_price < 1 and 0 < qty <= MAX_FILL_COUNT):  # 1 to 99 cents
            raise DataError(f"kalshi: fill of {qty} at {fill_price}: not more than 0 and at "
                            f"most {MAX_FILL_COUNT} contracts at a price between 0 and 1 "
                            f"dollar")
        maker = raw.get("is_taker") is False  # null / missing / odd: a taker (never
        # under the fee when the schedule prices it)
        fee = self._fee(raw, fill_id, fill_price, qty, maker)
        created, seconds = raw.get("created_time"), raw.get("ts")
        ts = parse_time_ns(created)  # the poll's; the socket's is in seconds
        if ts is None and (created is not None or not (
                isinstance(seconds, int | float) and 0 <= seconds < 2**63 // 10**9)):
            raise DataError(f"kalshi: fill time {created!r} / ts {seconds!r} is not a time")
        ts = ts if ts is not None else int(seconds) * 10**9  # type: ignore[arg-type]
        return Fill(fill_id, coid, C.VENUE, instrument_id(ticker, side.upper()),
                    ACTIONS[action], fill_price, qty, fee,
                    Liquidity.MAKER if maker else Liquidity.TAKER, ts)

    def _fee(self, raw: dict[str, Any], fill_id: str, fill_price: Decimal, qty: Decimal,
             maker: bool) -> Decimal:
        """The fill's ``fee_cost`` (negative: a rebate), else the fee schedule's.  An
        unreadable ``fee_cost`` never keeps the fill from being booked (the contracts
        changed hands; its position must be booked): the schedule's fee is taken, said
        once per fill."""
        given = raw.get("fee_cost")
        if given is not None:
            try:
                fee = Decimal(str(given))
            except ArithmeticError:
                fee = Decimal("NaN")
            if fee.is_finite() and fee.copy_abs() <= qty * MAX_FEE_PER_CONTRACT:
                return fee
        schedule = self.fees.fee(fill_price, qty, maker=maker)
        if given is not None and fill_id not in self._odd_fees:
            self._odd_fees.add(fill_id)
            log.warning("kalshi: fill %s: fee_cost %r is not a number of dollars up to one a "
                        "contract; booked with the fee schedule's %s", fill_id,
                        str(given)[:40], schedule)
        return schedule

    def _fee_correction(self, raw: dict[str, Any]) -> FillCorrection | None:
        """A booked fill of ours listed with a ``fee_cost`` other than the fee it was
        booked with (the socket's fills are booked with the formula's: it states none;
        a rebate, Kalshi's per-order rounding): Kalshi's fee, as a correction the core
        writes over the booked one.  None when it agrees, is not stated or unreadable."""
        fill_id = str(raw.get("trade_id") or raw.get("fill_id") or "")
        booked = self.booked_fees.get(fill_id)
        if booked is None or raw.get("fee_cost") is None:
            return None
        try:
            charged = Decimal(str(raw["fee_cost"]))
            qty = count(raw)
        except (ArithmeticError, DataError):
            return None
        if not charged.is_finite() or charged == booked \
                or charged.copy_abs() > qty * MAX_FEE_PER_CONTRACT:
            return None
        self.booked_fees[fill_id] = charged
        log.info("kalshi: fill %s was booked with fee %s; Kalshi charged %s (fee_cost): "
                 "corrected", fill_id, booked, charged)
        return FillCorrection(fill_id, time.time_ns(), f"kalshi fee_cost {charged} (was "
                              f"booked with {booked})", fee=charged)


def _direction(raw: dict[str, Any], sent: tuple[str, str, str] | None, *,
               what: str | None = None) -> tuple[str, str]:
    """A fill's (or an order's) (side, action): the legacy ``side`` / ``action`` when
    stated, else those of the order this venue sent (``sent``), else (an order not ours)
    a buy of the ``outcome_side`` it went long; a ``DataError`` (naming ``what``: by
    default the fill) when ``outcome_side`` / ``book_side`` contradict it or nothing
    states a direction (never guessed)."""
    what = what or f"fill {raw.get('trade_id') or raw.get('fill_id')!r}"
    outcomes = {BOOK_SIDE_OUTCOME.get(v, v) if k == "book_side" else v
                for k in ("outcome_side", "book_side") if (v := raw.get(k)) is not None}
    side: Any
    action: Any
    if raw.get("side") is not None or raw.get("action") is not None:
        side, action = raw.get("side"), raw.get("action")
    elif sent is not None:
        _, side, action = sent
    elif len(outcomes) == 1 and outcomes <= {"yes", "no"}:
        side, action = next(iter(outcomes)), "buy"
    else:
        raise DataError(f"kalshi: {what} "
                        f"states no direction (side / action, outcome_side / book_side): "
                        f"{sorted(raw)}")
    if outcomes and outcomes != {OUTCOME_OF.get((side, action))}:
        raise DataError(f"kalshi: {what}: its "
                        f"direction fields disagree: side {side!r} action {action!r}, "
                        f"outcome_side {raw.get('outcome_side')!r} book_side "
                        f"{raw.get('book_side')!r}")
    return side, action


def _cutoff_s(answer: Any, field: str = "orders_updated_ts") -> float:
    """``field`` of a ``GET /historical/cutoff`` answer in unix seconds (an ISO-8601
    time, or a number); :class:`KalshiMalformedAnswer` when it has none."""
    value = answer.get(field) if isinstance(answer, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    ns = parse_time_ns(value if isinstance(value, str) else None)
    if ns is None:
        raise KalshiMalformedAnswer(f"kalshi: GET /historical/cutoff: {field} "
                                    f"{str(value)[:40]!r} is not a time")
    return ns / 1e9


def _fill_time_s(raw: Any) -> int | None:
    """A listed fill's time in unix seconds (``ts``, else ``created_time``); None when it
    states none that can be read."""
    if not isinstance(raw, dict):
        return None
    seconds = raw.get("ts")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) \
            and 0 <= seconds < 2**40:
        return int(seconds)
    ns = parse_time_ns(raw.get("created_time"))
    return None if ns is None else ns // 10**9


def _one_position(ticker: str, listed: list[Any]) -> Decimal:
    """``ticker``'s signed position in ``GET /portfolio/positions``: one listing (pages
    that overlap may repeat it: counted once); two that differ are a ``DataError``."""
    held = {position(p) for p in listed if isinstance(p, dict) and p.get("ticker") == ticker}
    if len(held) > 1:
        raise DataError(f"kalshi: {ticker} listed twice in GET /portfolio/positions with "
                        f"different positions ({', '.join(map(str, sorted(held)))})")
    return held.pop() if held else Decimal(0)


def _cancelled(order: Any, venue_id: str, what: str) -> None:
    """Raise :class:`KalshiMalformedAnswer` unless ``order`` (a cancel's answer) is the
    order ``venue_id`` shown cancelled: an answer that shows it resting (or anything else)
    confirms no cancel, and the caller asks Kalshi what the order is."""
    if not isinstance(order, dict) or order.get("order_id") not in (None, venue_id) \
            or order.get("status") != C.STATUS_CANCELED:
        status = order.get("status") if isinstance(order, dict) else None
        raise KalshiMalformedAnswer(f"kalshi: {what}: the answer does not show order "
                                    f"{venue_id} cancelled (status {status!r})")
