"""The ExecutionEngine: the one order path, from intent to booked fill.

Where does an order go?  Every order — a strategy's intent, a scanner's basket leg,
an unwind of an incomplete basket, a flattening order of the kill switch — enters
:meth:`ExecutionEngine.submit`, and nothing else in Argus calls a broker or a
venue's order API::

    intent -> sizer -> RiskEngine (trading state, book tradeable, every check)
           -> order row committed to the ledger (live: durable before sending)
           -> PaperBroker.submit (replay, paper) or venue.submit / submit_basket (live)
           -> acknowledgements, order updates, fills (venue.executions()), cancels
           -> ledger -> account -> risk on_fill -> on_fill observers (after commit)
           -> fill corrections (venue.executions()): a final fee, a bust

Fill corrections.  A venue may correct a fill it reported (:class:`FillCorrection`): a
final fee is written over the fill's fee (every reader sees it) and the cash moves by
old minus new; a busted trade is offset by an ordinary fill ``<fill id>:bust`` (the other
side, same price and quantity, its fee refunded; ``<fill id>:bust:<part>`` at the part's
price and quantity for one trade of several reported as one fill) booked through
:meth:`book_fill`, so
positions, cash, books, round trips and a restart net it out (the average price and
realised P&L of a position traded since follow the order of the fills, as any offsetting
entry).  The order's filled quantity drops by the busted quantity: a FILLED order that
is no longer filled ends CANCELLED with the reason (it does not work at the venue again),
a working one stays working; a basket whose legs are final and now filled unequally is
evened out as any other (unless it was unwound before).  Each correction leaves a
``fill_corrections`` row; a repeat changes nothing; one for a fill the ledger does not
have is a risk event.

Client order ids are ``<run id>-<event number>-<slot>-<n>``: the configured slot (not
the strategy's class name) and a counter per event, so two slots running the same
strategy never collide, and a resumed replay re-derives exactly the same ids.  A
client order id that already exists is an error with a risk event, never a silent
ignore.

Exactly once (live).  The order row is committed before the venue hears of it.  A
venue resolves an ambiguous submission (timeout, lost answer, 5xx, reset) by asking
the exchange, never by re-sending blind; when it cannot tell, it raises
:class:`~argus_core.errors.OrderUnknown` and the order stays PENDING until the
venue's executions or a restart's reconciliation say what became of it.  On start
the engine hands the venue what the ledger knows (:meth:`Venue.resume`).  During a
run the engine asks the venue about such an order (:meth:`Venue.lookup`), less and
less often, until it says OPEN or never seen.

Baskets.  A veto on one leg vetoes all; the smallest shrink shrinks every leg by the
same ratio.  One unwind policy for paper and live: when the legs end with unequal
fills, each leg's excess over the least-filled leg is sold back (bought back) with an
ordinary, reduce-only, risk-checked, ledgered IOC limit order priced
``unwind_slippage_bps`` through the leg's fill price; what the market did not take is
sent again through the market's price (UNWIND_TRIES).  Under a kill with flatten the
unwind stands back: the flatten alone closes the position.

Kill switch.  When trading becomes HALTED with *flatten* (the drawdown switch, or
``argus kill --flatten``), every open position is closed by reduce-only IOC orders
through this same path, re-sent on later events while a position remains; HALTED
passes only reduce-only orders that shrink a position.  A flatten the venue refuses goes
again 2 s later without the venue's reduce-only flag (venues that refuse the flag on
spot; kept where the venue ``guards_reduce_only``, sizing the order to what it holds),
except where the refusal says the venue holds nothing to reduce: then the ledger and the
venue disagree on the position, and a plain order would open the reverse one, so that
instrument is not flattened again in this run and a person is told to check the venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections.abc import Coroutine, Sequence
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any, Protocol

import attrs

from argus_core.account import Account
from argus_core.builtins.sizers import round_to_lot
from argus_core.control import clean_reason
from argus_core.errors import BasketIncomplete, OrderUnknown, VenueError
from argus_core.interfaces import RECENT_ORDERS, Sizer, Venue
from argus_core.ledger import Ledger
from argus_core.market_state import MarketState
from argus_core.models import (
    CancelIntent,
    Fill,
    FillCorrection,
    Instrument,
    Intent,
    Liquidity,
    Opportunity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Portfolio,
    Settlement,
    Side,
    TimeInForce,
    bust_id,
    to_decimal,
)
from argus_core.paper import PaperBroker
from argus_core.risk import RiskEngine, TradingState, escalate, intent_json, state_allows
from argus_core.secrets import redact

log = logging.getLogger(__name__)
FINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)
WORKING = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
FLATTEN_SLOT = "flatten"
_BPS = Decimal(10_000)
_ZERO = Decimal(0)
#: A working order as the risk checks count it: ``(instrument_id, side, quantity still
#: wanted, limit price or None, reduce_only)`` (:meth:`Ledger.working_quantities`).
WorkingRow = tuple[str, str, Decimal, Decimal | None, bool]
_LOT_1E8 = Decimal("1e-8")  # no instrument known: the ledger's finest unit
#: A halt's cancel the venue failed, or a flatten it refused, is sent again at most this
#: often (market time).
HALT_CANCEL_RETRY_NS = 2 * 10**9
#: An order the venue holds open that the ledger has ended (a late placement found at a
#: start): its cancel is asked again after each failure, waiting twice as long each time
#: (from HALT_CANCEL_RETRY_NS to 64 s, market time), at most this many times; the next
#: start finds it open again and starts over.
ORPHAN_CANCEL_TRIES = 20
#: A live order whose cancel the venue failed this many times is looked for among the
#: venue's open orders; one a start found missing there is looked for again this much
#: later (market time: lists can lag the engine).  Not there, it has ended: CANCELLED
#: (its fills, if it had any, still come through ``executions()``).  A start whose read
#: of the open orders failed reads them again HALT_CANCEL_RETRY_NS later, until it works.
ABSENT_AFTER_FAILURES = 3
ABSENT_RECHECK_NS = 6 * 10**9
#: An order whose send had no answer (``OrderUnknown``) is asked about with
#: ``Venue.lookup`` this long after (market time), then twice as long each time up to
#: UNKNOWN_RECHECK_MAX_NS, until the venue says OPEN or CANCELLED: never re-sent blind.
#: A request the venue never got makes no execution, so waiting for one (or for a
#: restart) left a flatten pending for good and every further flatten blocked.
UNKNOWN_RECHECK_NS = 10 * 10**9
UNKNOWN_RECHECK_MAX_NS = 300 * 10**9
#: A basket unwind the market did not take in full (an IOC left unfilled: the book moved
#: away) is sent again for the rest, priced from the market then, HALT_CANCEL_RETRY_NS
#: after the last one and twice as long each time; after this many unwinds of one
#: instrument the rest is left to a person (an ``unwind_abandoned`` risk event, REDUCING).
UNWIND_TRIES = 5
#: The longest waits of the doubling backoffs above: an orphan's cancel (2 s .. 64 s) and
#: a flatten the venue refused (2 s .. 16 s: after a long rate-limit wait the kill switch
#: goes out at most this late).
ORPHAN_CANCEL_MAX_NS = 64 * 10**9
FLATTEN_REFUSED_MAX_NS = 16 * 10**9
#: A venue's refusal saying a reduce-only order has no position to reduce (Binance's
#: "ReduceOnly Order is rejected", Deribit's "reduce_only_order_would_increase_position",
#: Kraken Futures' "wouldNotReducePosition", Bybit's "current position is zero"): matched
#: on the text, as a third-party venue's refusal is a VenueError with the venue's words.
_NOTHING_TO_REDUCE = re.compile(
    r"would[ _-]?(?:not[ _-]?reduce|increase|open|reverse|flip)|nothing to reduce|"
    r"(?:no|zero)[ _-]?(?:open[ _-]?)?position|position[ _-]?(?:is[ _-]?)?(?:zero|flat|closed|"
    r"not[ _-]?found|does[ _-]?not[ _-]?exist)|reduce[ _-]?only[ _-]?(?:order[ _-]?)?"
    r"(?:is[ _-]?)?rejected", re.IGNORECASE)


def doubling(n: int, cap_ns: int, base_ns: int = HALT_CANCEL_RETRY_NS) -> int:
    """The wait before the ``n``-th try again (``n`` >= 1): ``base_ns``, twice as long
    each time, at most ``cap_ns`` (one backoff for every retry the engine owes)."""
    return min(base_ns << (n - 1), cap_ns)


class LoopPort(Protocol):
    """What the engine needs from the loop that drives it: transactions and the state."""

    def between_events(self, *, commit_now: bool = False
                       ) -> contextlib.AbstractContextManager[None]:
        """A write that arrives between two events (an ack, an execution, a cancel)."""

    def commit_now(self) -> None:
        """Make everything written so far durable at once (the transaction reopens)."""

    def mark_dirty(self) -> None:
        """Something was written that paper and live mode commit after this event."""

    def set_trading_state(self, state: TradingState, reason: str) -> None:
        """Escalate the trading state durably."""

    def persist_state_change(self) -> None:
        """Store the risk context's trading state if a check escalated it."""

    def before_fill(self, ts_ns: int) -> int:
        """A fill stamped ``ts_ns`` is about to move the account: value what is due
        before it (an equity row of an earlier timestamp); returns the stamp to book it
        at (later than ``ts_ns`` where a row after it is already final)."""


def _on_lot(quantity: Decimal, instrument: Instrument | None) -> Decimal:
    """An explicit quantity rounded down onto the instrument's lot grid (no minimum size
    here: an exit of a position below it is the venue's to refuse, not ours to block)."""
    lot = instrument.lot_size if instrument is not None else _LOT_1E8
    if quantity % lot == 0:  # the usual case: already on the grid, returned as given
        return quantity
    return (quantity / lot).to_integral_value(rounding=ROUND_DOWN) * lot


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a submission that raised ``exc`` may still have reached the venue.

    A venue adapter says "the venue did not act" with a :class:`VenueError` (a refusal)
    and "cannot tell" with :class:`OrderUnknown`; ``NotImplementedError`` is a venue with
    no order entry (nothing was sent).  Anything else is the adapter failing, possibly
    while reading the answer to an order the venue took (a ``KeyError`` on an answer of
    an unexpected shape): unknown, like ``OrderUnknown``, so the order stays pending for
    the executions stream or a restart's look-up instead of being marked REJECTED while
    it works at the venue."""
    return isinstance(exc, OrderUnknown) or not isinstance(exc, (VenueError, NotImplementedError))


def _unknown_why(exc: BaseException) -> str:
    return (f"the venue adapter failed with {type(exc).__name__}: {exc} (not a refusal: the "
            f"venue may have acted)")


def _said(reason: str) -> str:
    """A strategy's reason as the ledger keeps it: one plain line (``clean_reason``) when
    it holds a control or format character (an escape sequence for the terminals that
    show it, a new line and a forged log line, a bidi override); else as it is.  A lone
    surrogate is written out (``\\ud800``) first: no UTF-8 writer takes it as it is."""
    if reason.isprintable():
        return reason
    text = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if text.isprintable() else clean_reason(text)


class ExecutionEngine:
    """Owns the order lifecycle of one run (see the module docstring)."""

    def __init__(self, *, loop: LoopPort, ledger: Ledger, run_id: str, venue: Venue,
                 venue_name: str, market: MarketState, account: Account, broker: PaperBroker,
                 risk: RiskEngine, sizer: Sizer, live: bool,
                 unwind_slippage_bps: Decimal = Decimal(500)) -> None:
        self.loop, self.ledger, self.run_id = loop, ledger, run_id
        self.venue, self.venue_name = venue, venue_name
        self.market, self.account, self.broker = market, account, broker
        self.risk, self.sizer, self.live = risk, sizer, live
        # Sizers written before fees reached them take four arguments; ask once.
        self._sizer_takes_fees = "fees" in inspect.signature(sizer.size).parameters
        self.unwind_slippage_bps = unwind_slippage_bps
        self.n_orders = 0
        self.n_fills = 0
        self.seq = 0  # the loop's current event number (for client order ids)
        self._seq_of_k = -1
        self._k = 0
        #: fills committed with the next commit, for the on_fill observers
        self.pending_fills: list[Fill] = []
        #: (slot, fill) booked and not yet heard by the slot's strategy (``on_fill``)
        self.heard: list[tuple[str, Fill]] = []
        self.live_tasks: set[asyncio.Task[None]] = set()
        self._halt_enforced = False
        self._reduce_enforced = False  # REDUCING's cancel of orders adding risk was made
        self._halt_retry_ns = 0  # market time before which a failed halt cancel waits
        self.flatten_reason: str | None = None  # set while HALTED with flatten
        #: instruments whose flatten the venue refused: market time of the next attempt,
        #: sent without the venue's reduce-only flag (sized to the position by the engine)
        self.flatten_refused: dict[str, int] = {}
        self._flatten_refusals: dict[str, int] = {}  # refusals per instrument (the waits)
        #: instruments a flatten waits on: their market takes no orders, or what is held is
        #: below one lot (said once)
        self.flatten_closed: set[str] = set()
        #: live orders a cancel was asked for while they were still pending (by id: why);
        #: in memory only — after a restart the strategy or the halt asks again
        self.cancel_on_ack: dict[str, str] = {}
        #: live cancels the venue failed, asked again (market time) while the order works
        self.cancels_owed: dict[str, tuple[str, int]] = {}
        #: baskets whose unwind could not go out yet: settled again from this market time
        self._unwinds_owed: dict[str, int] = {}
        #: (basket, instrument) whose unwind was given up (UNWIND_TRIES) or skipped (it
        #: could not reduce the position): said once
        self._unwinds_said: set[tuple[str, str]] = set()
        #: (basket, instrument) whose unwind stands back for the kill's flatten: said once
        self._unwinds_to_flatten: set[tuple[str, str]] = set()
        #: failed cancels per live order; orders to look for among the venue's open orders
        #: (id: market time due), and when to read those again after a failed read
        self._cancel_failures: dict[str, int] = {}
        self.absent_checks: dict[str, int] = {}
        self._reread_open_ns: int | None = None
        self._reading_open: asyncio.Task[None] | None = None
        #: live orders whose send had no answer: (market time of the next lookup, its
        #: number); the lookups in flight; orders a lookup ended as never seen (one
        #: the venue then reports open, a late placement, is cancelled there)
        self.unknown_checks: dict[str, tuple[int, int]] = {}
        self._looking_up: asyncio.Task[None] | None = None
        self._ended_unseen: set[str] = set()
        #: a venue with a ``lookup`` of its own (the default never knows: not asked)
        self._looks_up = live and type(venue).lookup is not Venue.lookup
        #: fill ids reported again with other contents, said once each (a venue's repeats)
        self._conflicts_said: set[tuple[object, ...]] = set()
        #: orders the venue holds open that the ledger has ended: their cancels are owed
        #: whatever the ledger says (id: failed tries so far)
        self._orphans: dict[str, int] = {}
        #: live cancels in flight (id: task): an exit being cancelled leaves room for its
        #: requote, which waits for the cancel's answer before it goes out
        self._cancelling: dict[str, asyncio.Task[None]] = {}
        #: Each paper order this process sent and the broker may still fill (booking a
        #: fill needs its slot and basket); a miss — an order from before a restart, a
        #: settlement — reads the ledger's row.
        self._sent: dict[str, Order] = {}

    # -- entry points ---------------------------------------------------------------
    def submit(self, intents: Sequence[Intent | CancelIntent], ts: int, slot: str) -> None:
        """Route a strategy slot's (or scanner's) intents: cancels at once, baskets
        together, every other intent on its own."""
        baskets: dict[str, list[Intent]] = {}
        for intent in intents:
            if isinstance(intent, CancelIntent):
                self.cancel_working(slot, intent.instrument_id,
                                    f"cancelled by strategy {slot!r}"
                                    + (f": {_said(intent.reason)}" if intent.reason else ""),
                                    intent.side)
                continue
            if intent.strategy != slot:  # the ledger and the ids know the configured slot
                intent = attrs.evolve(intent, strategy=slot)
            if intent.basket_id:
                baskets.setdefault(intent.basket_id, []).append(intent)
            else:
                self._route([intent], ts)
        for legs in baskets.values():
            self._route(legs, ts)

    def submit_opportunity(self, opp: Opportunity, ts: int) -> None:
        """A scanner's opportunity: its legs as one IOC basket."""
        legs = [Intent(opp.scanner, leg.instrument_id, leg.side, quantity=leg.quantity,
                       limit_price=leg.limit_price, order_type=OrderType.LIMIT,
                       time_in_force=TimeInForce.IOC, reason=opp.reason,
                       basket_id=opp.opportunity_id) for leg in opp.legs]
        self._route(legs, ts)

    @property
    def owes_venue(self) -> bool:
        """Whether a live cancel is to be asked again or a check of the venue's open
        orders is due (market events drive both)."""
        return bool(self.cancels_owed or self.absent_checks or self._unwinds_owed
                    or self.unknown_checks) or self._reread_open_ns is not None

    def on_market_event(self, event: object) -> None:
        """Market data reaches working paper orders; a pending flatten is retried, a
        live cancel the venue failed is asked again while the order works, and the
        venue's open orders are read when a check of them is due."""
        for owed, due in list(self._unwinds_owed.items()):  # held back, or to send again
            if due <= self.market.now_ns:
                del self._unwinds_owed[owed]
                self._settle_basket(owed)
        if self.absent_checks or self._reread_open_ns is not None:
            self._check_open_orders()
        if self.unknown_checks:
            self._look_up_unknown()
        if self.cancels_owed:
            now = self.market.now_ns
            for coid, (reason, at) in list(self.cancels_owed.items()):
                if now < at:
                    continue
                if coid not in self._orphans and self.ledger.order_status(coid) not in WORKING:
                    del self.cancels_owed[coid]  # filled, or the venue said it ended
                    continue
                self.cancels_owed[coid] = (reason, now + HALT_CANCEL_RETRY_NS)
                self._spawn_cancel(coid, reason)
        if self.broker.working:
            working = set(self.broker.working)
            for fill in self.broker.on_event(event):  # type: ignore[arg-type]
                coid = fill.client_order_id
                sent = self._sent.get(coid)  # (book_fill forgets a finished order)
                basket = sent.basket_id if sent is not None else self.ledger.basket_of(coid)
                self.book_fill(fill)
                self._settle_basket(basket)
            # Closed without a fill (an IOC on an untradeable book): the ledger says so too,
            # or a flatten's order would look working for ever and never be sent again.
            for coid in working.difference(self.broker.working).intersection(self._sent):
                status, filled = self.broker.status(coid)
                self.ledger.set_order_status(coid, status, filled if filled >= 0 else None)
                ended = self._booked(coid)
                self._settle_basket(ended.basket_id if ended else None)  # a leg final unfilled
                self.loop.mark_dirty()
        if self.flatten_reason is not None:
            self._flatten_step()

    # -- routing ---------------------------------------------------------------------
    def reference_price(self, intent: Intent) -> Decimal | None:
        """The price risk checks and sizers judge an intent at: its limit, else the
        touch on a live book, else the last bar's close."""
        if intent.limit_price is not None:
            return intent.limit_price
        return self._market_price(intent.instrument_id, intent.side)

    def _market_price(self, instrument_id: str, side: Side) -> Decimal | None:
        """The touch ``side`` would take on a live book, else the last bar's close, else the
        last print (an instrument recorded as prints only)."""
        book = self.market.books.get(instrument_id)
        if book is not None and book.live:
            best = book.best_ask() if side is Side.BUY else book.best_bid()
            if best is not None:
                return to_decimal(best)
        bar = self.market.bars.get(instrument_id)
        if bar is not None:
            return to_decimal(bar.close)
        trade = self.market.trades.get(instrument_id)
        return to_decimal(trade.price) if trade is not None else None

    def _size(self, intent: Intent, price: Decimal, portfolio: Portfolio,
              instrument: Instrument | None) -> Decimal:
        """The sizer's quantity, with the instrument's fee schedule when it asks for it."""
        if self._sizer_takes_fees:
            return self.sizer.size(intent, price, portfolio, instrument,
                                   fees=self.market.fee_schedule(intent.instrument_id))
        return self.sizer.size(intent, price, portfolio, instrument)

    def _route(self, legs: list[Intent], ts: int, coid: str | None = None) -> list[Order]:
        """Size and risk-check every leg, persist, send; returns the orders sent
        (``coid``: the one leg's client order id, where it is not the event's)."""
        portfolio = self.account.portfolio()
        sized: list[tuple[Intent, Decimal, Decimal]] = []
        for intent in legs:
            if (intent.time_in_force is TimeInForce.POST_ONLY and self.live
                    and not self.venue.supports_post_only):
                self.risk_event(ts, "venue", "veto", f"venue {self.venue_name!r} takes no "
                                f"post-only orders", intent)
                return []
            price = self.reference_price(intent)
            if price is None or price <= 0:
                self.risk_event(ts, "pricing", "veto", "no reference price (no book, bar or "
                                "limit) for the intent", intent)
                return []
            inst = self.market.instruments.get(intent.instrument_id)
            if intent.quantity is not None:
                try:
                    qty = _on_lot(intent.quantity, inst)
                except ArithmeticError:  # e.g. 1E+999999: no lot count exists for it
                    qty = Decimal(-1)
                if qty < 0:
                    self.risk_event(ts, "sizing", "veto", f"quantity {intent.quantity:.6G} "
                                    f"cannot be put on the lot grid of "
                                    f"{intent.instrument_id}", intent)
                    return []
                if qty == 0:
                    self.risk_event(ts, "sizing", "skip", f"quantity {intent.quantity:.6G} "
                                    f"is below one lot of {intent.instrument_id}", intent)
                    return []
            else:
                try:
                    qty = self._size(intent, price, portfolio if self.sizer.whole_account
                                     else self.account.book_portfolio(intent.strategy), inst)
                except Exception as exc:  # a sizer's failure vetoes this intent, not the run
                    self.risk_event(ts, "sizing", "veto", f"sizer {self.sizer.name!r} failed: "
                                    f"{type(exc).__name__}: {str(exc)[:200]}", intent)
                    return []
            if qty <= 0:  # say so: a strategy that never trades should be able to see why
                self.risk_event(ts, "sizing", "skip", f"sizer {self.sizer.name!r} sized "
                                f"the intent to 0 (no forecast, or below one lot)", intent)
                return []
            if intent.reduce_only:
                qty = self._exit_room(intent, qty, portfolio, ts)
                if qty <= 0:
                    return []
            sized.append((intent, qty, price))
        allowed: list[Decimal] = []
        ctx = self.risk.ctx
        for k, (intent, qty, price) in enumerate(sized):
            # the basket's legs judged before this one count as working: none is sent yet,
            # and two legs each inside a limit could together walk past it
            ctx.pending, ctx.pending_exposure, ctx.pending_sides = self._pending(
                intent, [(i.instrument_id, i.side.value, a, p, i.reduce_only)
                         for (i, _, p), a in zip(sized[:k], allowed, strict=True)])
            ctx.pending_legs = k
            verdict = self.risk.evaluate(intent, qty, price, portfolio)
            for d in verdict.decisions:
                self.risk_event(ts, d.check, d.action.value, d.reason, intent)
            if not verdict.allowed:
                self.loop.persist_state_change()
                return []  # a denied intent never reaches the venue
            allowed.append(verdict.quantity)
        self.loop.persist_state_change()
        instruments = self.market.instruments
        if len(sized) == 1:  # a check's shrink goes back onto the lot grid (69.30693069 on 0.01)
            (one, asked, _), got = sized[0], allowed[0]
            quantities = [got if got == asked else
                          round_to_lot(got, instruments.get(one.instrument_id))]
        else:  # every leg shrinks by the same ratio so a basket stays a basket
            ratio = min(a / q for a, (_, q, _) in zip(allowed, sized, strict=True))
            quantities = [round_to_lot(q * ratio, instruments.get(i.instrument_id))
                          for i, q, _ in sized]
        if any(q <= 0 for q in quantities):
            return []
        orders: list[Order] = []
        for (intent, _, _), qty in zip(sized, quantities, strict=True):
            order = self._persist_order(intent, qty, ts, coid)
            if order is None:
                return orders  # a duplicate id: nothing of this basket goes out
            orders.append(order)
        if self.live:
            self._send_live(orders)
        else:
            for k, order in enumerate(orders):
                # A leg's fill may trip the kill switch (its risk checks' on_fill): the
                # legs after it are judged again, and cancelled unsent (the basket settled)
                # where the trading state no longer lets them out.
                if k and self._unsent_if_stale(orders[k:]):
                    return orders
                self._send_paper(order, ts)
            if len(orders) > 1:
                self._settle_basket(orders[0].basket_id)
        return orders

    def _pending(self, intent: Intent, legs: list[WorkingRow]
                 ) -> tuple[Decimal, Decimal, dict[str, tuple[Decimal, Decimal]]]:
        """``RiskContext.pending``, ``pending_exposure`` and ``pending_sides`` for
        ``intent``: what working orders (a live order whose cancel is in flight included,
        until the venue says it ended) and the basket's ``legs`` judged before it could
        still add if they filled."""
        if self.live:
            rows = self.ledger.working_quantities()
        elif self.broker.working:
            rows = [(w.order.instrument_id, w.order.side.value, w.remaining,
                     w.order.limit_price, w.order.reduce_only)
                    for w in self.broker.working.values()]
        elif not legs:
            return _ZERO, _ZERO, {}  # the common bar: nothing working
        else:
            rows = []
        pending = _ZERO
        sides: dict[str, tuple[Decimal, Decimal]] = {}
        for iid, side, remaining, limit, reduce_only in [*rows, *legs]:
            if iid == intent.instrument_id and side == intent.side.value:
                pending += remaining
            if not reduce_only:
                price = limit if limit is not None else self._market_price(iid, Side(side))
                buys, sells = sides.get(iid, (_ZERO, _ZERO))
                value = remaining * (price or _ZERO)
                sides[iid] = (buys + value, sells) if side == "buy" else (buys, sells + value)
        # per instrument the larger side: one side filling reduces what the other adds
        exposure = sum((max(pair) for pair in sides.values()), _ZERO)
        return (_ZERO if intent.reduce_only else pending), exposure, sides

    def _exit_room(self, intent: Intent, qty: Decimal, portfolio: Portfolio, ts: int
                   ) -> Decimal:
        """``qty`` of a reduce-only intent within the position it closes, less what orders
        already working on that instrument and side will sell (or buy) back, reduce-only
        or not: a strategy's exit beside the kill switch's flatten, a second exit, or a
        resting take-profit whose cancel is failing would otherwise trade the position
        twice and open the other way, HALTED included.  0 (with a risk event) when the
        working orders cover the position, or when the order would not reduce it (flat,
        or on the position's own side)."""
        held = portfolio.position(intent.instrument_id).quantity
        if held == 0 or (held > 0) == (intent.side is Side.BUY):
            self.risk_event(ts, "reduce_only", "veto", f"a reduce-only {intent.side.value} "
                            f"does not reduce the position in {intent.instrument_id} "
                            f"({held:f})", intent)
            return Decimal(0)
        if self.live:  # an order being cancelled is being replaced (the exit waits)
            working = self.ledger.working_on_side(intent.instrument_id, intent.side.value) \
                - sum(self._cancelling_on_side(intent.instrument_id, intent.side).values(),
                      Decimal(0))
        else:
            working = sum((w.remaining for w in self.broker.working.values()
                           if w.order.instrument_id == intent.instrument_id
                           and w.order.side is intent.side), Decimal(0))
        room = abs(held) - working
        if room >= qty:
            return qty
        if room <= 0:
            self.risk_event(ts, "reduce_only", "veto", f"orders already working on "
                            f"{intent.instrument_id} ({working:f} to {intent.side.value}) "
                            f"cover the position ({held:f})", intent)
            return Decimal(0)
        return room

    def _next_client_order_id(self, slot: str) -> str:
        if self._seq_of_k != self.seq:
            self._seq_of_k, self._k = self.seq, 0
        k, self._k = self._k, self._k + 1
        return f"{self.run_id}-{self.seq}-{slot or 'x'}-{k}"

    def _persist_order(self, intent: Intent, qty: Decimal, ts: int,
                       coid: str | None = None) -> Order | None:
        """Write the order row before anything can send it; None (with a risk event) when
        the client order id already exists."""
        coid = coid or self._next_client_order_id(intent.strategy)
        arrival, spread = self._arrival(intent.instrument_id)
        order = Order(coid, self.venue_name, intent.instrument_id, intent.side, qty,
                      intent.limit_price, intent.order_type, intent.time_in_force,
                      # paper: the broker takes it within this transaction, so no reader
                      # ever sees it unacknowledged; it works (open) until it fills
                      intent.strategy, ts,
                      OrderStatus.PENDING if self.live else OrderStatus.OPEN, intent.basket_id,
                      intent.reduce_only, _said(intent.reason),
                      intent.decision_price if intent.decision_price is not None else arrival,
                      arrival, spread)
        if not self.ledger.insert_order(order, self.run_id):
            reason = (f"client order id {coid} already exists in the ledger; the order is "
                      f"not sent (ids must be unique per run, slot and event)")
            log.error(reason)
            self.risk_event(ts, "order_id", "veto", reason, intent)
            return None
        self.n_orders += 1
        if not self.live:
            self._sent[coid] = order
        times = self.risk.ctx.order_times_ns
        times.append(ts)
        if len(times) > RECENT_ORDERS:  # as a checkpoint keeps them: a resumed run sees these
            del times[0]
        self.loop.mark_dirty()
        return order

    def _arrival(self, instrument_id: str) -> tuple[Decimal | None, Decimal | None]:
        """The market as the order goes out: a live two-sided book's mid and spread, else
        the last bar's close (spread unknown)."""
        book = self.market.books.get(instrument_id)
        if book is not None and book.live:
            bid, ask = book.best_bid(), book.best_ask()
            if bid is not None and ask is not None:
                bid_d, ask_d = to_decimal(bid), to_decimal(ask)
                return (bid_d + ask_d) / 2, ask_d - bid_d
        bar = self.market.bars.get(instrument_id)
        return (to_decimal(bar.close) if bar is not None else None), None

    def resume_paper_orders(self) -> None:
        """After a checkpoint restored the broker: its working orders are this engine's to
        book (a fill, or an end unfilled), as if this process had sent them."""
        self._sent.update((c, w.order) for c, w in self.broker.working.items())

    def _booked(self, coid: str) -> Order | None:
        """A paper order the broker has ended, its end now in the ledger: forgotten by
        both (the broker's closed orders grew by one per order for the whole run)."""
        self.broker.forget(coid)
        return self._sent.pop(coid, None)

    def _send_paper(self, order: Order, ts: int) -> None:
        coid = order.client_order_id
        fills = self.broker.submit(order, ts)
        for fill in fills:
            self.book_fill(fill)  # each writes the order's status as the broker left it
        if fills:
            return
        status, filled = self.broker.status(coid)
        if status is not OrderStatus.OPEN:  # refused or cancelled unfilled
            self.ledger.set_order_status(coid, status, filled if filled >= 0 else None)
            self._booked(coid)

    # -- unwinds and flattening ------------------------------------------------------
    def _settle_basket(self, basket: str | None) -> None:
        """Once every leg of a multi-leg basket is final (filled, cancelled, rejected),
        unwind what the legs filled unequally, net of the unwinds already sent (the
        unwind orders carry the basket id: the same across restarts); a fill that comes
        after a leg was final (a late fill) is unwound in its turn."""
        if not basket:
            return
        legs = self.ledger.basket_legs(basket)
        if len(legs) < 2 or any(o.status not in FINAL for o in legs):
            return
        self._unwind_excess(legs, self.market.now_ns)

    def _unwind_excess(self, orders: Sequence[Order], ts: int) -> None:
        """Partial-basket policy: never hold a naked leg.  Each leg's excess over the
        least-filled leg, less what unwinds of its instrument took or still work for, goes
        back out as a reduce-only IOC limit order (paper and live): the first through the
        leg's fill price, a later one (the market did not take the last in full) through
        the market's price, after a growing wait, UNWIND_TRIES at most."""
        basket = orders[0].basket_id
        filled = self.ledger.basket_fills(basket) if basket else {}
        unwinds = self.ledger.basket_unwinds(basket) if basket else []
        asked: dict[str, Decimal] = {}
        sent: dict[str, int] = {}  # unwinds per instrument: the next one's id
        last: dict[str, int] = {}  # the newest unwind's time per instrument
        for u in unwinds:
            took = filled.get(u.client_order_id, (_ZERO, _ZERO))[0] if u.status in FINAL \
                else u.quantity
            asked[u.instrument_id] = asked.get(u.instrument_id, _ZERO) + took
            sent[u.instrument_id] = sent.get(u.instrument_id, 0) + 1
            last[u.instrument_id] = max(last.get(u.instrument_id, 0), u.ts_ns)
        net = {o.client_order_id: filled.get(o.client_order_id, (_ZERO, _ZERO))[0]
               - asked.get(o.instrument_id, _ZERO) for o in orders}
        least = min(net.values())
        for order in orders:
            avg_price = filled.get(order.client_order_id, (_ZERO, _ZERO))[1]
            excess = net[order.client_order_id] - least
            if excess <= 0 or not avg_price:
                continue
            iid, done, ref = order.instrument_id, sent.get(order.instrument_id, 0), avg_price
            if not self._unwind_reduces(basket, iid, order.side.opposite(), excess):
                continue
            if self.flatten_reason is not None and basket:
                # One closer per position under a kill: the flatten closes it whole (and
                # drops a venue's refused reduce-only flag; an unwind kept it and went
                # first, the flatten standing back: seed 173617).  Owed again if the kill
                # is lifted before the position is closed.
                self._unwinds_owed[basket] = ts + HALT_CANCEL_RETRY_NS
                if (basket, iid) not in self._unwinds_to_flatten:
                    self._unwinds_to_flatten.add((basket, iid))
                    self.risk_event(ts, "basket", "unwind_skipped", f"partial basket {basket}: "
                                    f"{excess} of {iid} left to the kill switch's flatten", None)
                continue
            if done and basket:  # the market did not take the last unwind in full
                if done >= UNWIND_TRIES:
                    self._abandon_unwind(basket, iid, excess, done)
                    continue
                due = last[iid] + doubling(done, HALT_CANCEL_RETRY_NS << UNWIND_TRIES)
                if ts < due:
                    self._unwinds_owed[basket] = min(due, self._unwinds_owed.get(basket, due))
                    continue
                ref = self._mark_price(iid, order.side.opposite()) or avg_price
            reason = f"partial basket {basket}: unwinding {excess} of {iid}"
            self.risk_event(ts, "basket", "unwind", reason, None, order.strategy)
            limit = self._through_price(iid, order.side.opposite(), ref)
            unwind = Intent(order.strategy, order.instrument_id, order.side.opposite(),
                            quantity=excess, limit_price=limit, order_type=OrderType.LIMIT,
                            time_in_force=TimeInForce.IOC, reason="basket unwind",
                            reduce_only=True, basket_id=basket)
            # Its own id, from the leg's: an unwind made at a start (no event of its own)
            # took the resumed event's first id, a leg's, and was refused as a repeat.
            coid = f"{order.client_order_id}-unwind" + (f"-{done + 1}" if done else "")
            if not self._route([unwind], ts, coid) and basket:
                self._unwinds_owed[basket] = ts  # vetoed (no market data yet): asked again

    def _unwind_reduces(self, basket: str | None, instrument_id: str, side: Side,
                        excess: Decimal) -> bool:
        """Whether an unwind on ``side`` reduces the position held now.  A leg that closed
        part of a position held before the basket (or a position closed since) leaves
        nothing a reduce-only unwind could take back: said once, never retried (it was
        vetoed again on every event, two risk events each)."""
        pos = self.account.positions.get(instrument_id)
        held = pos.quantity if pos is not None else _ZERO
        if held != 0 and (held > 0) != (side is Side.BUY):
            return True
        key = (basket or "", instrument_id)  # said already, or the flatten closed it
        if basket and key not in self._unwinds_said and key not in self._unwinds_to_flatten:
            self._unwinds_said.add(key)
            self.risk_event(self.market.now_ns, "basket", "unwind_skipped",
                            f"partial basket {basket}: {excess} of {instrument_id} to take "
                            f"back, but a {side.value} would not reduce the position held "
                            f"({held:f}): the leg closed part of an earlier position; left "
                            f"as it is", None)
        return False

    def _abandon_unwind(self, basket: str, instrument_id: str, excess: Decimal,
                        tries: int) -> None:
        """A basket's leg the market would not take back UNWIND_TRIES times: said once,
        trading REDUCING (no new risk beside a naked leg) until a person has looked."""
        if (basket, instrument_id) in self._unwinds_said:
            return
        self._unwinds_said.add((basket, instrument_id))
        reason = (f"partial basket {basket}: {excess} of {instrument_id} still unhedged "
                  f"after {tries} unwinds the market did not take in full; close it by hand "
                  f"(argus kill --flatten closes every position)")
        log.error(reason)
        self.risk_event(self.market.now_ns, "basket", "unwind_abandoned", reason, None)
        self.loop.set_trading_state(TradingState.REDUCING, reason)

    def _through_price(self, instrument_id: str, side: Side, price: Decimal) -> Decimal:
        """A marketable limit ``unwind_slippage_bps`` through ``price``, on the tick grid
        (at least one tick through), kept positive."""
        inst = self.market.instruments.get(instrument_id)
        tick = inst.tick_size if inst is not None else Decimal("1e-8")
        shift = max(price * self.unwind_slippage_bps / _BPS, tick)
        if side is Side.SELL:
            limit = ((price - shift) / tick).to_integral_value(ROUND_FLOOR) * tick
            return max(limit, tick)
        limit = ((price + shift) / tick).to_integral_value(ROUND_CEILING) * tick
        # a binary outcome pays at most 1
        return min(limit, 1 - tick) if inst is not None and inst.kind == "binary" else limit

    def request_flatten(self, reason: str) -> None:
        """Close every open position through the engine (then stay HALTED)."""
        if self.flatten_reason is None:
            log.warning("flattening every position: %s", reason)
        self.flatten_reason = reason
        self._flatten_step()

    def _flatten_step(self) -> None:
        """Send a reduce-only IOC order for each open position that has no flattening
        order pending; ends the flatten once every position is flat."""
        reason = self.flatten_reason or ""
        open_positions = {i: p for i, p in self.account.positions.items() if p.quantity != 0}
        if not open_positions:
            self.flatten_reason = None
            self._flatten_refusals.clear()
            return
        busy = self.ledger.working_instruments(FLATTEN_SLOT)
        ts = self.market.now_ns
        for instrument_id, pos in sorted(open_positions.items()):
            if instrument_id in busy or ts < self.flatten_refused.get(instrument_id, 0):
                continue
            inst = self.market.instruments.get(instrument_id)
            closed = inst is not None and not inst.takes_orders  # its settlement ends it
            # below one lot (a fill off the grid): no order closes it; said once, not a
            # sizing skip per event
            if closed or _on_lot(abs(pos.quantity), inst) == 0:
                if instrument_id not in self.flatten_closed:  # said once, never vetoed per event
                    self.flatten_closed.add(instrument_id)
                    self.risk_event(ts, "flatten", "waiting", f"{instrument_id}: " + (
                        "its market takes no orders; the position waits for its settlement "
                        "or for the market to take orders again" if closed else
                        f"{pos.quantity:f} held is below one lot: left to a person"), None)
                continue
            self.flatten_closed.discard(instrument_id)
            side = Side.SELL if pos.quantity > 0 else Side.BUY
            ref = self._mark_price(instrument_id, side)
            if ref is None:
                continue  # no price yet; retried on the next event
            intent = Intent(FLATTEN_SLOT, instrument_id, side, quantity=abs(pos.quantity),
                            limit_price=self._through_price(instrument_id, side, ref),
                            order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC,
                            reason=f"flatten: {reason}", reduce_only=True)
            self._route([intent], ts)

    def _mark_price(self, instrument_id: str, side: Side) -> Decimal | None:
        """The market price, else (no data yet, e.g. right after a restart) the mark."""
        price = self._market_price(instrument_id, side)
        return price if price is not None else self.account.marks.get(instrument_id)

    # -- fills and settlement --------------------------------------------------------
    def book_fill(self, fill: Fill, slot: str | None = None, *, alone: bool = False,
                  undo: str | None = None) -> None:
        """Ledger, account, position row, order status, risk observers (``slot``: the
        order's, when the caller has read its row; ``alone``, ``undo``: see
        :meth:`Account.apply_to_books`).  A live book's mid marks the position, not the fill
        (the entry row shows the spread paid; a paper fill leaves the venue's book as it
        was)."""
        coid = fill.client_order_id
        if (stamp := self.loop.before_fill(fill.ts_ns)) != fill.ts_ns:
            fill = attrs.evolve(fill, ts_ns=stamp)
        self.ledger.insert_fill(fill)
        pos = self.account.apply(fill)
        if slot is None:
            sent = self._sent.get(coid)
            slot = sent.strategy if sent is not None else None
        if slot is None:
            row = self.ledger.order_row(coid)
            slot = row["strategy"] if row else ""
        self.account.apply_to_books(fill, slot, alone=alone, undo=undo)
        mid = self.market.live_mid(fill.instrument_id)
        if mid is not None:
            self.account.mark(fill.instrument_id, mid)
        self.ledger.upsert_position(pos, fill.ts_ns)
        status, filled = self.broker.status(coid)
        if filled >= 0:
            self.ledger.set_order_status(coid, status, filled)
            if coid not in self.broker.working:
                self._booked(coid)  # the broker holds it no more
        portfolio = self.account.portfolio()
        for check in self.risk.checks:
            try:
                check.on_fill(fill, portfolio, self.risk.ctx)
            except Exception as exc:  # the fill stands; a check that missed it fails safe
                why = f"failed on fill {fill.fill_id}: {type(exc).__name__}: {exc}"
                escalate(self.risk.ctx, TradingState.REDUCING, f"risk check {check.name!r} {why}")
                self.risk_event(fill.ts_ns, check.name or "risk_check", "error", why, None)
        self.loop.persist_state_change()
        self.n_fills += 1
        self.loop.mark_dirty()
        self.pending_fills.append(fill)
        if fill.liquidity is not Liquidity.SETTLEMENT:
            self.heard.append((slot, fill))
        settled = self.market.settled.get(fill.instrument_id)
        if settled is not None and pos.quantity and fill.liquidity is not Liquidity.SETTLEMENT:
            # A fill reported (or busted) after its instrument settled: what it leaves
            # settles at that price too, never a position held on a market that is gone;
            # stamped when that fill (or bust) was booked, not back at the settlement.
            self.settle(attrs.evolve(settled, ts_ns=max(settled.ts_ns, fill.ts_ns)),
                        again=f"-after-{fill.fill_id}")

    def settle(self, event: Settlement, again: str = "") -> None:
        """A resolved market or an expiry: the position closes at the settlement price
        (0 for a worthless expiry) as a settlement fill, so round trips include it.  A
        voided market (``price`` None) gives every position back at its own cost: each
        book holding it closes at its own average cost (one settlement order per book;
        priced at the account's, a book that bought dearer than another gained what the
        other lost)."""
        if not again:  # a market that is gone fills nothing more (venues cancel its orders)
            self.cancel_working(None, event.instrument_id, f"market settled: {event.instrument_id}")
        iid = event.instrument_id
        pos = self.account.positions.get(iid)
        flat = pos is None or pos.quantity == 0
        holders = [(slot, book.positions[iid]) for slot, book in sorted(
            self.account.books.items()) if iid in book.positions and book.positions[iid].quantity]
        # Each book on its own: a void (back at its own cost), or books that offset while
        # the account is flat (they kept positions on a market that is gone, forever).
        if flat or (event.price is None and len(holders) > 1):
            for slot, held in holders:
                self._settle_at(event, held.quantity, held.avg_price if event.price is None
                                else event.price, f"{again}-{slot}", slot)
            return
        assert pos is not None
        price = event.price if event.price is not None else pos.avg_price
        self._settle_at(event, pos.quantity, price, again, None)

    def _settle_at(self, event: Settlement, quantity: Decimal, price: Decimal, suffix: str,
                   book: str | None) -> None:
        """One settlement order closing ``quantity`` at ``price``, filled at once (in
        ``book`` alone when given, else shared by the books holding the instrument)."""
        coid = f"settle-{self.run_id}-{event.instrument_id}-{event.ts_ns}{suffix}"
        if self.ledger.order_exists(coid):
            return  # booked before a restart
        side = Side.SELL if quantity > 0 else Side.BUY
        order = Order(coid, self.venue_name or "settlement", event.instrument_id, side,
                      abs(quantity), None, OrderType.MARKET, TimeInForce.IOC,
                      "settlement", event.ts_ns, OrderStatus.FILLED)
        self.ledger.insert_order(order, self.run_id)
        fill = Fill(f"{coid}-1", coid, order.venue, event.instrument_id, side, price,
                    abs(quantity), Decimal(0), Liquidity.SETTLEMENT, event.ts_ns)
        self.book_fill(fill, book, alone=book is not None)  # a house book's own too
        self.ledger.set_order_status(coid, OrderStatus.FILLED, fill.quantity)

    # -- cancels and HALTED ----------------------------------------------------------
    def enforce_halt(self) -> None:
        """HALTED: cancel every working order once, when the state becomes HALTED.
        REDUCING: cancel, once when the state becomes REDUCING, every working order that
        would add to its position (only new orders were refused: an entry left resting
        could still fill and add the risk the state forbids); exits keep working."""
        ctx = self.risk.ctx
        reducing = ctx.trading_state == TradingState.REDUCING.value
        if reducing and not self._reduce_enforced:
            self.cancel_working(None, None, f"trading REDUCING ({ctx.state_reason}): a "
                                f"working order that adds to its position cancelled",
                                adds_only=True)
        self._reduce_enforced = reducing
        if ctx.trading_state != TradingState.HALTED.value:
            self._halt_enforced = False
            self.flatten_reason = None
            return
        if self._halt_enforced or self.market.now_ns < self._halt_retry_ns:
            return
        self._halt_enforced = True
        self.cancel_working(None, None,
                            f"trading HALTED ({ctx.state_reason}): working orders cancelled")
        # An order whose send had no answer may work at the venue, and a flatten waits for
        # it (it may close the position): the venue is asked now, not at its next lookup.
        now = self.market.now_ns
        self.unknown_checks = {c: (min(at, now), n) for c, (at, n) in self.unknown_checks.items()}
        self._look_up_unknown()

    def cancel_working(self, slot: str | None, instrument_id: str | None, reason: str,
                       side: Side | None = None, *, adds_only: bool = False) -> None:
        """Cancel working orders (of ``slot`` / on ``instrument_id`` / on ``side`` when
        given; ``adds_only``: those on the side that adds to the position): paper orders at
        once, live ones through ``venue.cancel``; a live order still pending (sent, not
        acknowledged) is cancelled when its acknowledgement arrives."""
        def wanted(order_slot: str, order_instrument: str, order_side: Side) -> bool:
            held = self.account.positions.get(order_instrument)
            return (slot is None or order_slot == slot) and \
                (instrument_id is None or order_instrument == instrument_id) and \
                (side is None or order_side is side) and \
                (not adds_only or held is None or held.quantity * order_side.sign >= 0)

        if not self.live:
            for coid, work in list(self.broker.working.items()):
                if wanted(work.order.strategy, work.order.instrument_id, work.order.side):
                    if self.broker.settings.latency_ms:  # it ends when the cancel arrives
                        self.broker.cancel(coid, self.market.now_ns)
                        continue
                    self.broker.cancel(coid)
                    self._booked(coid)
                    # with what the broker filled: a fill of the event that tripped a HALT
                    # may be booked after this cancel (the broker made it before)
                    self.ledger.set_order_status(coid, OrderStatus.CANCELLED, work.filled, reason)
                    self._settle_basket(work.order.basket_id)  # the other legs unwound
                    self.loop.mark_dirty()
            return
        for coid in [*(c for c, _, _ in self.ledger.working_orders()),
                     *self.ledger.order_ids_in(OrderStatus.PENDING)]:
            row = self.ledger.order_row(coid)
            if row is None or not wanted(row["strategy"], row["instrument_id"],
                                         Side(row["side"])):
                continue
            if row["status"] == OrderStatus.PENDING.value:
                self.cancel_on_ack[coid] = reason
            else:
                self._spawn_cancel(coid, reason)

    def _acknowledged(self, coid: str) -> None:
        """An order that was pending is now known to the venue (acknowledged, filled or
        refused): a cancel asked for meanwhile goes out now, if the order still works."""
        reason = self.cancel_on_ack.pop(coid, None)
        if reason is not None and self.ledger.order_status(coid) in WORKING:
            self._spawn_cancel(coid, reason)

    async def _cancel_live(self, coid: str, reason: str) -> None:
        try:
            await self.venue.cancel(coid)
        except Exception as exc:
            with self.loop.between_events():
                if coid in self._orphans:
                    self._orphan_cancel_failed(coid, reason, exc)
                    return
                failures = self._cancel_failures[coid] = self._cancel_failures.get(coid, 0) + 1
                if failures >= ABSENT_AFTER_FAILURES:  # ended unseen (its answer was lost)?
                    self.absent_checks.setdefault(coid, self.market.now_ns)
                halted = self.risk.ctx.trading_state == TradingState.HALTED.value
                self.risk_event(self.market.now_ns, "cancel", "cancel_failed",
                                f"could not cancel {coid} at the venue: {exc}"
                                + ("; asked again while HALTED" if halted else ""), None)
                if halted:  # the halt's cancel is owed until the order is final
                    self._halt_enforced = False
                    self._halt_retry_ns = self.market.now_ns + HALT_CANCEL_RETRY_NS
                else:  # owed too: a quote left live at the venue is an orphan
                    self.cancels_owed[coid] = (reason,
                                                self.market.now_ns + HALT_CANCEL_RETRY_NS)
            return
        self.cancels_owed.pop(coid, None)
        self._orphans.pop(coid, None)
        self._cancel_failures.pop(coid, None)
        with self.loop.between_events():  # the venue's own update may have said it already
            self.ledger.move_order_status(coid, OrderStatus.CANCELLED, WORKING, reason)
            self._settle_basket(self.ledger.basket_of(coid))
            self.loop.mark_dirty()

    def _check_open_orders(self) -> None:
        """Read the venue's open orders when a check is due: a live order the ledger has
        working that is not among them has ended (CANCELLED, with a risk event: a cancel
        whose answer was lost would otherwise keep it working for ever, its quantity
        blocking the flatten's room); after a start whose read failed, the start's
        checks are made then."""
        if self._reading_open is not None and not self._reading_open.done():
            return  # one read at a time
        now = self.market.now_ns
        due = [c for c, at in self.absent_checks.items() if at <= now]
        reread = self._reread_open_ns is not None and self._reread_open_ns <= now
        if due or reread:
            self._reading_open = self._spawn(self._read_open_orders(due, reread))

    async def _read_open_orders(self, due: list[str], reread: bool) -> None:
        try:
            held = {o.client_order_id for o in await self.venue.open_orders()}
        except Exception as exc:  # asked again later, never guessed
            later = self.market.now_ns + ABSENT_RECHECK_NS
            for coid in due:
                self.absent_checks[coid] = later
            if reread:  # orders the ledger ended may be open there: sooner
                self._reread_open_ns = self.market.now_ns + HALT_CANCEL_RETRY_NS
            log.warning("the venue's open orders could not be read (%s); asked again", exc)
            return
        if reread:
            self._reread_open_ns = None
            self._reconcile_open(held)
        with self.loop.between_events():
            for coid in due:
                self.absent_checks.pop(coid, None)
                if coid in held or self.ledger.order_status(coid) not in WORKING:
                    continue
                self._cancel_failures.pop(coid, None)
                self.cancels_owed.pop(coid, None)
                self.ledger.move_order_status(coid, OrderStatus.CANCELLED, WORKING,
                                              "not open at the venue: it ended unseen")
                self.risk_event(self.market.now_ns, "reconcile", "not_at_venue",
                                f"order {coid} is working in the ledger but not open at the "
                                f"venue (a cancel's answer lost?): CANCELLED; fills it had "
                                f"still come through the venue's executions", None)
                self._settle_basket(self.ledger.basket_of(coid))
                self.loop.mark_dirty()

    def _look_up_unknown(self) -> None:
        """Ask the venue about the orders whose send had no answer and whose next
        lookup is due (one round of lookups at a time)."""
        if self._looking_up is not None and not self._looking_up.done():
            return
        now = self.market.now_ns
        due = [c for c, (at, _) in self.unknown_checks.items() if at <= now]
        if due:
            self._looking_up = self._spawn(self._resolve_unknown(due))

    async def _resolve_unknown(self, due: list[str]) -> None:
        for coid in due:
            row = self.ledger.order_row(coid)
            if row is None or row["status"] != OrderStatus.PENDING.value:
                self.unknown_checks.pop(coid, None)  # the executions settled it meanwhile
                continue
            answer, why = await self._ask_venue(self.ledger.as_order(row))
            with self.loop.between_events(commit_now=True):
                if self.ledger.order_status(coid) is not OrderStatus.PENDING:
                    self.unknown_checks.pop(coid, None)
                elif answer is None:
                    n = self.unknown_checks[coid][1] + 1
                    wait = doubling(n, UNKNOWN_RECHECK_MAX_NS, UNKNOWN_RECHECK_NS)
                    self.unknown_checks[coid] = (self.market.now_ns + wait, n)
                    log.warning("order %s: %s; asked again in %d s (never re-sent blind)",
                                coid, why, wait // 10**9)
                else:
                    del self.unknown_checks[coid]
                    self.risk_event(self.market.now_ns, "reconcile", "send_resolved",
                                    f"order {coid}, whose send had no answer: the venue "
                                    f"says {answer.status.value}", None)
                    self._adopt_answer(answer)

    async def _ask_venue(self, order: Order) -> tuple[OrderUpdate | None, str]:
        """``Venue.lookup``'s answer for ``order`` and, when it gives none, why (a
        failure to ask is no answer: asked again later, never guessed)."""
        try:
            answer = await self.venue.lookup(order)
        except Exception as exc:  # OrderUnknown, a dead connection...
            return None, f"the venue could not be asked ({exc})"
        if answer is None or answer.client_order_id == order.client_order_id:
            return answer, "the venue cannot tell whether it received it"
        # an answer about another order is none (adopted, it ended a working order here)
        return None, f"the venue answered about {answer.client_order_id} instead"

    def _adopt_answer(self, answer: OrderUpdate) -> None:
        """A lookup's answer applied; an order it ended as never seen is watched for (one
        the venue then reports open, a late placement, is cancelled there)."""
        if answer.status is OrderStatus.CANCELLED:
            self._ended_unseen.add(answer.client_order_id)
        self.apply_order_update(answer)

    def _reconcile_open(self, held: set[str]) -> None:
        """A start's checks against the venue's open orders ``held``: an order open there
        that the ledger has ended is cancelled; one working here that is not listed is
        looked for again ``ABSENT_RECHECK_NS`` later."""
        for coid in sorted(held):  # ended here, open there: a late placement, a lost cancel
            ended = self.ledger.order_status(coid)
            if ended in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
                with self.loop.between_events(commit_now=True):
                    self._open_after_end(coid, ended)
        for coid, _slot, _iid in self.ledger.working_orders():
            if coid not in held:
                self.absent_checks.setdefault(coid, self.market.now_ns + ABSENT_RECHECK_NS)

    def _open_after_end(self, coid: str, ended: OrderStatus | None) -> None:
        """``coid`` is open at the venue though the ledger ended it: cancelled there
        (asked again while the venue fails the cancel, ORPHAN_CANCEL_TRIES)."""
        self._ended_unseen.discard(coid)
        self.risk_event(self.market.now_ns, "reconcile", "open_after_end",
                        f"order {coid} is open at the venue but "
                        f"{ended.value if ended else 'unknown'} in the ledger: cancelling it "
                        f"there", None)
        self._orphans.setdefault(coid, 0)
        self._spawn_cancel(coid, "open at the venue after it ended")

    def _orphan_cancel_failed(self, coid: str, reason: str, exc: Exception) -> None:
        """An ended order's cancel failed at the venue: asked again later (the ledger's
        status cannot say when to stop: it is already final), up to ORPHAN_CANCEL_TRIES."""
        tries = self._orphans[coid] = self._orphans[coid] + 1
        if tries >= ORPHAN_CANCEL_TRIES:
            del self._orphans[coid]
            self.cancels_owed.pop(coid, None)
            log.error("order %s is still open at the venue after %d failed cancels; cancel "
                      "it there (the next start asks again)", coid, tries)
            self.risk_event(self.market.now_ns, "reconcile", "cancel_abandoned",
                            f"could not cancel {coid} at the venue ({exc}) after {tries} "
                            f"tries: it may still be open there; cancel it at the venue "
                            f"(the next start asks again)", None)
            return
        wait = doubling(tries, ORPHAN_CANCEL_MAX_NS)
        self.cancels_owed[coid] = (reason, self.market.now_ns + wait)
        self.risk_event(self.market.now_ns, "reconcile", "cancel_failed",
                        f"could not cancel {coid} at the venue ({exc}); it is ended in the "
                        f"ledger but open there: asked again in {wait / 1e9:.0f} s", None)

    # -- live ------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_event_loop().create_task(coro)
        self.live_tasks.add(task)
        task.add_done_callback(self.live_tasks.discard)
        return task

    def _spawn_cancel(self, coid: str, reason: str) -> None:
        running = self._cancelling.get(coid)
        if running is not None and not running.done():
            return  # one cancel in flight per order is enough
        task = self._cancelling[coid] = self._spawn(self._cancel_live(coid, reason))
        task.add_done_callback(
            lambda t: self._cancelling.pop(coid) if self._cancelling.get(coid) is t else None)

    def _cancelling_on_side(self, instrument_id: str, side: Side) -> dict[str, Decimal]:
        """Live orders on ``instrument_id`` and ``side`` whose cancel is in flight: what
        each still wants to trade."""
        out: dict[str, Decimal] = {}
        for coid in self._cancelling:
            row = self.ledger.order_row(coid)
            if row is not None and row["side"] == side.value \
                    and row["instrument_id"] == instrument_id and row["status"] in WORKING:
                out[coid] = Decimal(row["quantity"]) - Decimal(row["filled_quantity"] or 0)
        return out

    async def _after_exit_cancels(self, order: Order) -> bool:
        """A live exit sized beside orders being cancelled on its side waits for those
        cancels' answers, then must still fit the position beside what works on (a cancel
        that failed, or an order that filled first); False (cancelled unsent) when it
        does not."""
        tasks = [self._cancelling[c] for c in self._cancelling_on_side(order.instrument_id,
                                                                        order.side)]
        if not tasks:
            return True
        await asyncio.wait(tasks)
        held = abs(self.account.portfolio().position(order.instrument_id).quantity)
        others = self.ledger.working_on_side(order.instrument_id, order.side.value) \
            - order.quantity  # this order is pending, so counted
        if held - others >= order.quantity:
            return True
        with self.loop.between_events():
            self.ledger.move_order_status(
                order.client_order_id, OrderStatus.CANCELLED, (OrderStatus.PENDING,),
                f"not sent: orders still working on {order.instrument_id} ({others:f}) "
                f"leave no room for it in the position ({held:f})")
            self.loop.mark_dirty()
        return False

    def _send_live(self, orders: list[Order]) -> None:
        self.loop.commit_now()  # the order rows are durable before the venue can know them
        self._spawn(self._submit_live(orders))

    def _unsent_if_stale(self, orders: list[Order]) -> bool:
        """Orders judged before the commit and the send (a kill or reduce adopted since, a
        fill booked since) are checked again against the trading state and the position
        now (HALTED lets reduce-only exits through, REDUCING whatever reduces; a basket
        goes whole or not at all); those that no longer pass are cancelled unsent."""
        ctx, portfolio = self.risk.ctx, self.account.portfolio()
        # A market settled (or closed) since: the venue would refuse it (a basket's leg
        # whose send waited for the leg before it went out after its market's void).
        gone = [o.instrument_id for o in orders if o.instrument_id in self.market.settled
                or not getattr(self.market.instruments.get(o.instrument_id), "takes_orders",
                               True)]
        if not gone and all(state_allows(ctx.trading_state, o, o.quantity, portfolio)  # type: ignore[arg-type]  # Intent-shaped
                            for o in orders):
            return False
        reason = f"not sent: {gone[0]} trades no more (settled or closed)" if gone else (
            f"not sent: trading {ctx.trading_state} ({ctx.state_reason}) and it does not "
            f"reduce the position as it stands now")
        unsent = OrderStatus.PENDING if self.live else OrderStatus.OPEN  # as persisted
        with self.loop.between_events():
            for order in orders:
                self.cancel_on_ack.pop(order.client_order_id, None)
                self._sent.pop(order.client_order_id, None)
                self.ledger.move_order_status(order.client_order_id, OrderStatus.CANCELLED,
                                              (unsent,), reason)
            for basket in dict.fromkeys(o.basket_id for o in orders):  # legs sent before
                self._settle_basket(basket)
            if self.flatten_reason is not None:  # it may have judged these as working
                self._flatten_step()
            self.loop.mark_dirty()
        return True

    async def _submit_live(self, orders: list[Order]) -> None:
        venue = self.venue
        if len(orders) == 1 and orders[0].reduce_only and self._cancelling \
                and not await self._after_exit_cancels(orders[0]):
            return
        if self._unsent_if_stale(orders):
            return
        try:
            if len(orders) > 1 and venue.supports_baskets:
                fills = await venue.submit_basket(orders)
            elif len(orders) > 1:
                fills = []
                for k, order in enumerate(orders):
                    if k and self._unsent_if_stale(orders[k:]):  # a kill between legs
                        orders = orders[:k]
                        break
                    try:
                        fills.extend(await self._submit_one(order))
                    except OrderUnknown as exc:
                        # Never send more legs while one leg's fate is unknown; the
                        # unwind waits until the venue's executions settle that leg.
                        with self.loop.between_events():
                            self._record_refusal([order], exc)
                            for rest in orders[k + 1:]:
                                self.ledger.move_order_status(
                                    rest.client_order_id, OrderStatus.CANCELLED,
                                    (OrderStatus.PENDING,),
                                    f"not sent: the outcome of {order.client_order_id} "
                                    f"is unknown")
                            # that leg's fill may have come before its send's answer
                            self._settle_basket(order.basket_id)
                        orders = orders[:k]
                        break
            else:
                order = orders[0]
                if order.strategy == FLATTEN_SLOT and order.instrument_id in \
                        self.flatten_refused and not venue.guards_reduce_only_on(
                            order.instrument_id):
                    order = attrs.evolve(order, reduce_only=False)
                fills = await venue.submit(order)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            with self.loop.between_events():
                self._record_refusal(orders, exc)
            return
        with self.loop.between_events(commit_now=True):
            for order in orders:  # a fill reported meanwhile has already moved it on
                self.ledger.move_order_status(order.client_order_id, OrderStatus.OPEN,
                                              (OrderStatus.PENDING,))
            for fill in fills:
                self.book_live_fill(fill)
            for order in orders:
                self._acknowledged(order.client_order_id)
                self._settle_basket(order.basket_id)
            self.loop.mark_dirty()

    async def _submit_one(self, order: Order) -> list[Fill]:
        try:
            return await self.venue.submit(order)
        except OrderUnknown:
            raise
        except Exception as exc:
            if outcome_unknown(exc):  # the basket's next legs must wait as for OrderUnknown
                raise OrderUnknown(_unknown_why(exc), [order.client_order_id]) from exc
            with self.loop.between_events():
                self._record_refusal([order], exc)
            return []

    def _flatten_refused(self, instrument_id: str, coid: str, why: object) -> None:
        """Never one refused flatten per event (a flood at the venue, the position never
        closed): the next goes 2 s later, then twice as long after each refusal in a row up
        to 16 s (a phantom position's flatten is not a request every 2 s for ever; a flatten
        the venue takes, filled or not, ends the row), without the venue's reduce-only flag
        (with it where the venue ``guards_reduce_only``); never again in this run where the
        venue says it holds nothing to reduce."""
        ts = self.market.now_ns
        if _NOTHING_TO_REDUCE.search(str(why)):
            self.flatten_refused[instrument_id] = 2**63 - 1  # the run's end
            held = self.account.positions[instrument_id].quantity
            self.risk_event(ts, "reconcile", "position_mismatch", f"venue refused flatten "
                            f"{coid}: {why}; the ledger holds {held:f} {instrument_id} "
                            f"and the venue says there is nothing to reduce: not "
                            f"flattened again in this run (a plain order could open the "
                            f"reverse position); check the position at the venue (a trade "
                            f"the ledger does not know, a fill the venue undid)", None)
            return
        n = self._flatten_refusals[instrument_id] = \
            self._flatten_refusals.get(instrument_id, 0) + 1
        wait = doubling(n, FLATTEN_REFUSED_MAX_NS)
        self.flatten_refused[instrument_id] = ts + wait
        how = "reduce-only" if self.venue.guards_reduce_only_on(instrument_id) else \
            "without the venue's reduce-only flag"
        self.risk_event(ts, "flatten", "refused", f"venue refused flatten {coid}: {why}; "
                        f"sent again in {wait // 10**9} s {how}", None)

    def _record_refusal(self, orders: list[Order], exc: BaseException) -> None:
        ids = ", ".join(o.client_order_id for o in orders)
        unknown = outcome_unknown(exc)
        ts = self.market.now_ns
        if isinstance(exc, BasketIncomplete):
            # Some legs executed, others did not: book what happened, even the legs out
            # with ordinary unwind orders, and stop adding risk until a person has looked.
            for fill in exc.fills:
                self.book_live_fill(fill)
            executed = {f.client_order_id for f in exc.fills}
            for order in orders:  # the venue killed the legs that did not execute
                if order.client_order_id not in executed:
                    self.ledger.move_order_status(order.client_order_id, OrderStatus.CANCELLED,
                                                  (OrderStatus.PENDING, OrderStatus.OPEN),
                                                  "basket leg killed by the venue")
                else:
                    self.ledger.move_order_status(order.client_order_id, OrderStatus.OPEN,
                                                  (OrderStatus.PENDING,))
            reason = f"basket {orders[0].basket_id} left incomplete at the venue: {exc}"
            log.error(reason)
            self.risk_event(ts, "basket", "reducing", reason, None)
            self.loop.set_trading_state(TradingState.REDUCING, reason)
            self._settle_basket(orders[0].basket_id)
        elif unknown:
            why = exc if isinstance(exc, OrderUnknown) else _unknown_why(exc)
            reason = (f"venue could not confirm or deny order(s) {ids}: {why}; left pending "
                      f"(never re-sent blind), resolved by the venue's executions or "
                      + (f"by asking it in {UNKNOWN_RECHECK_NS // 10**9} s" if
                         self._looks_up else "a restart's reconciliation"))
            log.error(reason)
            self.risk_event(ts, "venue", "order_unknown", reason, None)
            for order in orders:
                self._ask_later(order.client_order_id)
        else:
            log.error("venue refused order(s) %s: %s", ids, exc)
            for order in orders:  # what executions() already said stands
                self.ledger.move_order_status(order.client_order_id, OrderStatus.REJECTED,
                                              (OrderStatus.PENDING,), str(exc))
                self._settle_basket(order.basket_id)
                if order.strategy == FLATTEN_SLOT:
                    self._flatten_refused(order.instrument_id, order.client_order_id, exc)
        if not unknown:
            for order in orders:
                self._acknowledged(order.client_order_id)
        self.loop.mark_dirty()

    async def consume_executions(self) -> None:
        """Book the venue's private executions stream (fills, order updates) as it
        arrives; each item is durable as soon as it is known."""
        seen = False
        async for item in self.venue.executions():
            seen = True
            with self.loop.between_events(commit_now=True):
                if isinstance(item, OrderUpdate):
                    self.apply_order_update(item)
                elif isinstance(item, FillCorrection):
                    self.apply_fill_correction(item)
                else:
                    self.book_live_fill(item)
        if seen:  # a stream that ended after it worked: what follows would go unbooked
            raise VenueError(f"venue {self.venue_name!r}: its executions stream ended")

    def apply_fill_correction(self, correction: FillCorrection) -> None:
        """A venue's correction of a booked fill, applied once (see the module docstring)."""
        c, row = correction, self.ledger.fill_row(correction.fill_id)
        what = "a bust" if c.bust else f"fee {c.fee}"
        if row is None:
            why = (f"venue corrected fill {c.fill_id} ({what}: {c.reason}), which the ledger "
                   f"does not have: nothing booked")
            if not self.ledger.query("select 1 from risk_events where action = "
                                     "'unknown_correction' and reason = ?", (redact(why),)):
                self.risk_event(c.ts_ns, "reconcile", "unknown_correction", why, None)
            return
        coid, busted = row["client_order_id"], bust_id(c.fill_id)
        order = self.ledger.order_row(coid)
        assert order is not None  # a fill's order exists (a foreign key)
        slot = order["strategy"]
        if self.ledger.fill_exists(busted):
            return  # busted already: nothing of it stands to correct
        if not c.bust:
            assert c.fee is not None  # FillCorrection checks: a fee, or a bust
            old = Decimal(row["fee"])
            if c.fee != old:
                self.ledger.correct_fill(c.fill_id, "fee", c.ts_ns, str(old), str(c.fee),
                                         c.reason)
                self.account.refund_fee(old - c.fee, slot)
                self.loop.mark_dirty()
            return
        side, price, qty, fee = Side(row["side"]), row["price"], row["quantity"], row["fee"]
        if c.part:  # one trade of several reported as this fill: that part only
            busted, price, qty = bust_id(c.fill_id, c.part), str(c.price), str(c.quantity)
            fee = str(min(c.fee or Decimal(0), Decimal(fee)))
            if self.ledger.fill_exists(busted):
                return
        self.book_fill(Fill(busted, coid, row["venue"], row["instrument_id"], side.opposite(),
                            price, qty, -Decimal(fee), Liquidity(row["liquidity"]), c.ts_ns),
                       slot, undo=c.fill_id)
        self.ledger.correct_fill(c.fill_id, "bust", c.ts_ns, qty, "0", c.reason)
        self.risk_event(c.ts_ns, "reconcile", "bust", f"fill {c.fill_id} of order {coid} "
                        f"({side} {qty} {row['instrument_id']} @ {price}"
                        f"{f', part {c.part}' if c.part else ''}) did not happen "
                        f"({c.reason}): offset by {busted}", None, slot)
        filled, status = self.ledger.filled_quantity(coid, side), OrderStatus(order["status"])
        reason = None
        if status is OrderStatus.FILLED and filled < Decimal(order["quantity"]):
            status, reason = OrderStatus.CANCELLED, f"fill {c.fill_id} busted: {c.reason}"
        elif status is OrderStatus.PARTIALLY_FILLED and filled <= 0:
            status = OrderStatus.OPEN
        self.ledger.set_order_status(coid, status, max(filled, Decimal(0)), reason)
        self._settle_basket(order["basket_id"])  # a busted leg: the others are unwound

    def apply_order_update(self, update: OrderUpdate) -> None:
        """A venue's order-state news: never moves a final order back, never guesses
        about orders the ledger does not know."""
        current = self.ledger.order_status(update.client_order_id)
        if current is None:
            self.risk_event(update.ts_ns, "reconcile", "unknown_order",
                            f"venue reported {update.status} for unknown order "
                            f"{update.client_order_id}", None)
            return
        if update.venue_order_id:
            self.ledger.set_venue_order_id(update.client_order_id, update.venue_order_id)
        if update.status is OrderStatus.OPEN and update.client_order_id in self._ended_unseen:
            self._open_after_end(update.client_order_id, current)
            return
        if current in FINAL or update.status in (OrderStatus.PENDING, OrderStatus.FILLED,
                                                 OrderStatus.PARTIALLY_FILLED):
            return  # final states stay final; fills (their quantities) bring these
        if update.status is OrderStatus.OPEN and current is not OrderStatus.PENDING:
            return  # a late acknowledgement must not undo a partial fill or a cancel
        self.ledger.set_order_status(update.client_order_id, update.status,
                                     reason=update.reason or None)
        self._acknowledged(update.client_order_id)
        if update.status not in FINAL:
            return
        row = self.ledger.order_row(update.client_order_id)
        self._settle_basket(row["basket_id"] if row is not None else None)
        if rejected := update.status is OrderStatus.REJECTED:
            self.risk_event(update.ts_ns, "venue", "rejected",
                            f"venue rejected {update.client_order_id}: {update.reason}", None)
        if row is not None and row["strategy"] == FLATTEN_SLOT:
            if rejected:
                self._flatten_refused(row["instrument_id"], update.client_order_id, update.reason)
            else:  # the venue took it and ended it unfilled: the refusals' row ends
                self._flatten_refusals.pop(row["instrument_id"], None)

    def book_live_fill(self, fill: Fill) -> None:
        """Book a venue-reported fill once, and bring its order's status up to date."""
        booked = self.ledger.fill_row(fill.fill_id)
        if booked is not None:  # repeated after a reconnect, or already returned by submit()
            self._repeated_fill(fill, booked)
            return
        row = self.ledger.order_row(fill.client_order_id)
        if row is None:
            # Not ours (a manual trade on the account?): never guess, make it visible.
            self.risk_event(fill.ts_ns, "reconcile", "unknown_fill",
                            f"fill {fill.fill_id} for unknown order {fill.client_order_id} "
                            f"({fill.side} {fill.quantity} {fill.instrument_id} @ "
                            f"{fill.price})", None)
            return
        if (fill.instrument_id, fill.side.value) != (row["instrument_id"], row["side"]):
            # Booked as reported (the venue's position is the truth), never unseen: an
            # adapter that mixes up orders would otherwise trade on quietly.
            self.risk_event(fill.ts_ns, "reconcile", "fill_mismatch",
                            f"fill {fill.fill_id} of order {fill.client_order_id} is "
                            f"{fill.side.value} {fill.instrument_id}; the order was "
                            f"{row['side']} {row['instrument_id']}: booked as the venue "
                            f"reports it; check the venue adapter", None, row["strategy"])
        self.book_fill(fill, row["strategy"])
        filled = self.ledger.filled_quantity(fill.client_order_id, Side(row["side"]))
        total = Decimal(row["quantity"])
        status = OrderStatus(row["status"])
        if filled > total:  # booked as the venue reports it (its position is the truth), said
            self.risk_event(fill.ts_ns, "reconcile", "overfill",
                            f"order {fill.client_order_id} is filled {filled} of {total} "
                            f"{fill.instrument_id} (fill {fill.fill_id}): the venue filled "
                            f"more than was sent", None)
        if filled >= total:
            status = OrderStatus.FILLED
        elif status not in FINAL:  # a fill reported after the cancel of the rest
            status = OrderStatus.PARTIALLY_FILLED
        self.ledger.set_order_status(fill.client_order_id, status, min(filled, total))
        self._acknowledged(fill.client_order_id)
        if status in FINAL and row["basket_id"]:
            self._settle_basket(row["basket_id"])

    def _repeated_fill(self, fill: Fill, booked: dict[str, Any]) -> None:
        """A fill id reported again: the same fill is nothing; different contents (another
        quantity or price under one id) stay as first booked, and are said once each."""
        coid, side, price, quantity = (booked[k] for k in (
            "client_order_id", "side", "price", "quantity"))
        if (coid, side, Decimal(price), Decimal(quantity)) == (
                fill.client_order_id, fill.side.value, fill.price, fill.quantity):
            return
        seen = (fill.fill_id, fill.client_order_id, fill.side, fill.price, fill.quantity)
        if seen in self._conflicts_said:
            return
        self._conflicts_said.add(seen)
        reason = (f"fill {fill.fill_id} reported again with other contents ({fill.side.value}"
                  f" {fill.quantity:f} @ {fill.price:f} for {fill.client_order_id}; booked: "
                  f"{side} {quantity} @ {price} for {coid}): the first stays booked; check "
                  f"the position at the venue")
        log.error(reason)
        self.risk_event(fill.ts_ns, "reconcile", "fill_conflict", reason, None)

    async def start_live(self) -> asyncio.Task[None]:
        """Hand the venue what the ledger knows, reconcile orders left pending by an
        earlier process, and start consuming the executions stream."""
        self.venue.resume(self.ledger.venue_resume(self.venue_name))
        await self._reconcile_pending()
        return asyncio.get_event_loop().create_task(self.consume_executions())

    async def _reconcile_pending(self) -> None:
        """Orders persisted but never acknowledged (an earlier process died around the
        send) are asked about, never re-sent: those the venue holds open are OPEN; for the
        rest the venue's :meth:`~argus_core.interfaces.Venue.lookup` answers (acknowledged
        — fills follow through ``executions()`` —, or provably never seen: CANCELLED); an
        order it cannot tell about stays PENDING, with a risk event, until the venue's
        executions settle it.  Nothing is marked final on a guess: a basket is evened out
        only once its legs' fates are known.  An order the venue holds open that the
        ledger has ended (placed after it was given up as never placed) is cancelled, and
        asked again while the venue fails the cancel (ORPHAN_CANCEL_TRIES)."""
        pending = self.ledger.order_ids_in(OrderStatus.PENDING)
        try:
            held = {o.client_order_id for o in await self.venue.open_orders()}
        except Exception as exc:  # one failed read must not end the run: asked one by one
            log.warning("reconcile: the venue's open orders could not be read (%s)", exc)
            with self.loop.between_events(commit_now=True):
                self.risk_event(self.market.now_ns, "reconcile", "open_orders_unread",
                                f"the venue's open orders could not be read at the start "
                                f"({exc}): read again in {HALT_CANCEL_RETRY_NS // 10**9} s",
                                None)
            held = set()
            self._reread_open_ns = self.market.now_ns + HALT_CANCEL_RETRY_NS
        else:
            self._reconcile_open(held)
        for coid in pending:
            if coid in held:
                with self.loop.between_events(commit_now=True):
                    self.ledger.set_order_status(coid, OrderStatus.OPEN)
                    self._acknowledged(coid)  # a cancel parked for it (a halt's) goes now
                continue
            row = self.ledger.order_row(coid)
            answer, why = await self._ask_venue(self.ledger.as_order(row)) if row else \
                (None, "the venue cannot tell whether it received it")
            with self.loop.between_events(commit_now=True):
                if answer is not None:
                    self._adopt_answer(answer)
                    continue
                self.risk_event(
                    self.market.now_ns, "reconcile", "awaiting_venue",
                    f"order {coid} was persisted before a restart and is not open at the "
                    f"venue; {why}: it stays pending (never re-sent) until the venue's "
                    f"executions settle it" + (" or it is asked again" if self._looks_up
                                               else ""), None)
                self._ask_later(coid)

    def _ask_later(self, coid: str) -> None:
        """Look ``coid`` up UNKNOWN_RECHECK_NS from now (a live order left pending)."""
        if self._looks_up:
            self.unknown_checks.setdefault(coid, (self.market.now_ns + UNKNOWN_RECHECK_NS, 1))

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Let acknowledgements and cancels in flight land before the ledger closes."""
        if not self.live_tasks:
            return
        _done, late = await asyncio.wait(list(self.live_tasks), timeout=timeout_s)
        for task in late:
            log.error("no answer from the venue within %.0f s after the loop stopped; the "
                      "order stays pending and is reconciled on restart", timeout_s)
            task.cancel()

    # -- records ---------------------------------------------------------------------
    def risk_event(self, ts: int, check: str, action: str, reason: str,
                   intent: Intent | None, strategy: str | None = None) -> None:
        """One ``risk_events`` row (a denial, a skip, an unwind, a reconciliation)."""
        self.ledger.record_risk_event(ts, check, action, reason,
                                      intent.instrument_id if intent else None,
                                      intent.strategy if intent else strategy,
                                      intent_json(intent) if intent else None)
        self.loop.mark_dirty()
