"""The paper broker: simulated execution that never flatters a strategy.

Rules (each one tested):

* Taker orders walk the opposite side of the book level by level up to their
  limit (VWAP), partially fill, and never take more than the displayed depth;
  what they take is gone for a second paper order until the venue changes that
  level (or resends the book).  It is kept in the broker, not written into the
  shared book: the market never saw a paper order, so marks, scanners and
  strategies keep reading the venue's book.
* When an instrument has only bars, an order waits for the *next* bar that
  opened after it was sent and walks a synthetic book around that bar's open
  (half-spread + depth per level from ``[paper]``), because the close it was
  decided on is already gone.  An order sent between two of the instrument's
  bars (on another instrument's event) skips the bar in progress: that bar's
  open is a price from before the order existed.  So does an order sent, once
  market data was flowing, before its instrument's *first* bar: a bar is
  stamped at its close and its open time is unknown, so that bar may have
  opened before the order (an order sent before any market data at all, time
  0, knew nothing and may fill on the first bar).  There are no mid-price fills
  anywhere.
* When an instrument has only trade prints (no book, no bar), an order waits
  for the first print stamped *after* it was sent and takes up to that print's
  size at its price moved against the trader by the synthetic half-spread and
  slippage (a print shows a price and a size that traded, not the depth behind
  them); what it cannot take is cancelled (IOC/market) or rests.
* Resting limit orders fill, as maker, only when the market trades *through*
  them (a trade or a bar's range strictly beyond the limit; a touch at exactly
  the limit does not fill: the queue ahead of the order may have taken it), at
  the limit: also when a bar opens beyond it, since in a continuous market the
  first trade past the limit meets the resting order at its price (a gap fill
  at the open would flatter the backtest).  An order that arrives after the gap
  is a taker at the next bar's open instead.  A limit order that did not cross
  at the open (or the print) it arrived on rests from then on, so the rest of
  *that* bar's range (or that print) may fill it too, with what is left of the
  bar's depth (``volume x bar_depth_fraction``, less what the order took).
* Fills never exceed the data's liquidity: a bar's synthetic book shows
  ``volume x bar_depth_fraction`` per level over five levels each one
  half-spread worse, a resting order takes at most ``volume x
  bar_depth_fraction`` of a bar or a print's size; a bar of zero volume fills
  nothing (an IOC/market order is cancelled, a limit keeps resting).  A print's
  size and a bar's volume are shared by every order they fill: together they
  never take more than the print or the bar traded.  So are a bar's synthetic
  levels and its ``volume x bar_depth_fraction`` for resting orders, per side:
  orders split in pieces fill as one order would (each piece took the best level).
* A resting order is filled by a bar's range only when the bar opened after the
  order was sent: an order resting on a book is not filled by the bar in progress
  then (its low may have traded before the order).
* A sell whose price (the synthetic bid, less slippage) falls under one tick finds
  no bid: no venue quotes under its floor (it took no fill, not a crash).
* A reduce-only order never fills beyond the position it closes (the engine
  sizes it so; the broker holds to it when the position moved meanwhile).
* A crossed book (best bid >= best ask: a feed that missed updates) is not
  traded: an IOC/FOK order is cancelled, a resting one waits, as on a stale book.
* Fees come from the venue's schedule (or ``[paper]`` overrides) and, like
  slippage, scale with ``cost_multiplier``.  Each fill's fee is kept to 1e-8 of
  the quote currency (the ledger's unit; half to even) but a positive fee is
  never rounded to zero: under 5e-9 it is charged as 1e-8.  Latency delays
  activation; on bars an order that arrives within a bar's first
  ``latency_ms`` still meets that bar's open (bars carry no later first price),
  with the half-spread and slippage against it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import attrs

from argus_core.config import PaperSection
from argus_core.errors import DataError
from argus_core.interfaces import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import (
    GRID_NOISE,
    WIDE,
    Bar,
    Fill,
    Instrument,
    Liquidity,
    MarketEvent,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
    ticks_of,
    to_decimal,
)
from argus_core.serde import converter

SYNTHETIC_LEVELS = 5
#: ``Working.bar_ns`` of an order sent while market data was flowing but before its
#: instrument's first bar: that bar may have opened before the order, so it is skipped.
NO_BAR_YET = -1


@attrs.define
class Working:
    """An order the broker still holds."""

    order: Order
    activate_ns: int
    remaining: Decimal
    filled: Decimal = Decimal(0)
    n_fills: int = 0
    resting: bool = False
    status: OrderStatus = OrderStatus.OPEN
    #: When the order was sent (before latency).
    sent_ns: int = 0
    #: Close time of the instrument's latest bar the order has seen (None: none, and the
    #: order was sent before any market data; ``NO_BAR_YET``: none, sent on other data):
    #: a bar may fill the order only if the bar before it closed at or after ``sent_ns``.
    bar_ns: int | None = None
    #: When a cancel sent with latency reaches the market (None: none sent): the order
    #: can fill until then, as a venue's can while a cancel is on its way.
    cancel_ns: int | None = None


class PaperBroker:
    """Simulated execution against the runner's market state."""

    def __init__(self, market: MarketState, fee_schedule: Callable[[str], FeeSchedule],
                 settings: PaperSection | None = None,
                 held: Callable[[str], Decimal] | None = None) -> None:
        self.market = market
        #: The account's position in an instrument: a reduce-only fill never passes it.
        self._held = held
        #: Signed quantities filled in this call and not yet booked by the engine (it
        #: books them when the call returns): part of the position a reduce-only fill sees.
        self._unbooked: dict[str, Decimal] = {}
        #: What the market event being handled leaves to fill (a print's size, a bar's
        #: volume): every order it fills shares it.  None outside a print or a bar.
        self._event_room: Decimal | None = None
        #: What orders of each side took of that print or bar: as takers (the next taker
        #: of that side walks the synthetic book below it), and in all (a resting order
        #: fills on the volume fraction left).
        self._event_taken: dict[Side, Decimal] = {}
        self._event_used: dict[Side, Decimal] = {}
        self.settings = settings or PaperSection()
        self._fee_schedule = fee_schedule
        self.working: dict[str, Working] = {}
        # How many working orders each instrument has: an event of an instrument with none
        # skips the walk over every working order (many symbols, a few orders each).
        self._working_on: dict[str, int] = {}
        self.closed: dict[str, tuple[OrderStatus, Decimal]] = {}  # status, filled
        #: What paper takers took of one side of a book: (instrument, the asks?) -> (the
        #: book's snapshot count then, {price: (the venue's size then, size taken)}).  A
        #: level whose size the venue changed since, or a whole book sent since, is the
        #: market's again.  Counted, not the dicts' identity: a resumed replay rebuilds the
        #: book from the same events, so it decides as the run straight through.
        self._taken: dict[tuple[str, bool], tuple[int, dict[float, tuple[float, float]]]] = {}
        s = self.settings
        self._overrides = {k: v for k, v in (("maker_bps", s.maker_bps),
                                             ("taker_bps", s.taker_bps),
                                             ("fixed_per_fill", s.fixed_fee)) if v is not None}
        m = self.settings.cost_multiplier
        self._slip = self.settings.slippage_bps * m / Decimal(10_000)
        self._half_spread = float(self.settings.bar_spread_bps) / 10_000.0

    # -- public API ----------------------------------------------------------------
    def fees(self, instrument_id: str) -> FeeSchedule:
        """The fee schedule in force: the venue's, with any ``[paper]`` overrides."""
        base = self._fee_schedule(instrument_id)
        # evolve keeps a venue's FeeSchedule subclass (price-dependent formulas) intact.
        return attrs.evolve(base, **self._overrides) if self._overrides else base

    def submit(self, order: Order, ts_ns: int) -> list[Fill]:
        """Accept an order; fill what is possible now (latency 0 and a live book)."""
        self._unbooked = {}
        last_bar = self.market.bars.get(order.instrument_id)
        # Before the instrument's first bar: that bar's open time is unknown (bars are
        # stamped at their close), so unless the order was sent before any market data
        # (it knew nothing) that bar is treated as the bar in progress: also for an order
        # resting on a book, which a bar's range fills like a print.
        bar_ns = last_bar.ts_ns if last_bar is not None else (
            NO_BAR_YET if self.market.now_ns > 0 else None)
        work = Working(order, ts_ns + self.settings.latency_ms * 1_000_000, order.quantity,
                       sent_ns=ts_ns, bar_ns=bar_ns)
        self._hold(work)
        if order.instrument_id in self.market.books and ts_ns >= work.activate_ns:
            return self._activate_on_book(work, ts_ns)
        return []

    def cancel(self, client_order_id: str, ts_ns: int | None = None) -> bool:
        """Cancel a working order; False when it is no longer working.  Sent at ``ts_ns``
        with ``latency_ms``, the cancel reaches the market that much later: the order
        works (and may fill) until then, and ends at its instrument's first event from
        then on (:meth:`on_event`); else it ends at once."""
        work = self.working.get(client_order_id)
        if work is None:
            return False
        if ts_ns is not None and self.settings.latency_ms:
            at = ts_ns + self.settings.latency_ms * 1_000_000
            work.cancel_ns = at if work.cancel_ns is None else min(work.cancel_ns, at)
            return True
        self._finish(work, OrderStatus.CANCELLED)
        return True

    def status(self, client_order_id: str) -> tuple[OrderStatus, Decimal]:
        """``(status, filled quantity)`` of an order this broker has seen."""
        work = self.working.get(client_order_id)
        if work is not None:
            return work.status, work.filled
        return self.closed.get(client_order_id, (OrderStatus.REJECTED, Decimal(-1)))

    def forget(self, client_order_id: str) -> None:
        """Drop an ended order's status (the engine has booked it)."""
        self.closed.pop(client_order_id, None)

    def on_event(self, event: MarketEvent) -> list[Fill]:
        """Let market data reach working orders: activation after latency, resting fills."""
        inst_id = getattr(event, "instrument_id", None)
        if not self.has_working(inst_id):
            return []
        fills: list[Fill] = []
        ts = getattr(event, "ts_ns", 0)
        self._unbooked, self._event_taken, self._event_used = {}, {}, {}
        self._event_room = event.size if isinstance(event, Trade) else \
            to_decimal(event.volume) if isinstance(event, Bar) else None
        for work in list(self.working.values()):
            if work.order.instrument_id != inst_id:
                continue
            if work.cancel_ns is not None and ts >= work.cancel_ns:  # the cancel arrived
                self._finish(work, OrderStatus.CANCELLED)
                continue
            if not work.resting:
                if isinstance(event, Bar) and inst_id not in self.market.books:
                    # Every bar counts for "opened after sent", latency or not.
                    if self._opened_after_sent(work, event) and ts >= work.activate_ns:
                        fills += self._take_then_rest(
                            work, self._synthetic_book(event, work.order.side), event)
                elif ts >= work.activate_ns and inst_id in self.market.books:
                    fills += self._activate_on_book(work, ts)
                elif (isinstance(event, Trade) and inst_id not in self.market.books
                      and inst_id not in self.market.bars
                      and ts > work.sent_ns and ts >= work.activate_ns):
                    # Prints only (no book, no bar): the first print after the send.  One
                    # stamped at the send itself may be the print the order was decided on.
                    fills += self._take_then_rest(
                        work, self._print_book(event, work.order.side), event)
            else:
                fills += self._rest_fill(work, event)
        self._event_room = None
        return fills

    def _room(self, order: Order, from_event: bool) -> Decimal | None:
        """The most ``order`` may fill now (None: no bound): what the print or bar leaves
        (``from_event``), and for a reduce-only order the position it closes."""
        room = self._event_room if from_event else None
        if order.reduce_only and self._held is not None:
            held = self._held(order.instrument_id) + self._unbooked.get(order.instrument_id, 0)
            closes = max(-held if order.side is Side.BUY else held, Decimal(0))
            room = closes if room is None else min(room, closes)
        return room

    def get_state(self) -> dict[str, Any]:
        """JSON state for checkpoints: working orders and their progress."""
        state: dict[str, Any] = {"working": [self._work_state(w) for w in self.working.values()]}
        # As held: pruned only when a walk reads the level (a resumed run must decide as
        # the run straight through did, whose checkpoints fall elsewhere).
        taken = [[iid, asks, gen, [[p, size, qty] for p, (size, qty) in levels.items()]]
                 for (iid, asks), (gen, levels) in self._taken.items() if levels]
        if taken:  # what paper takers took and the venue has not changed since
            state["taken"] = taken
        return state

    @staticmethod
    def _work_state(w: Working) -> dict[str, Any]:
        state = {"order": converter.unstructure(w.order), "activate_ns": w.activate_ns,
                 "remaining": str(w.remaining), "filled": str(w.filled),
                 "n_fills": w.n_fills, "resting": w.resting, "status": w.status.value}
        if w.bar_ns is not None and w.bar_ns < w.sent_ns:
            # Only an order waiting out the bar in progress needs them: restored without
            # them, any next bar may fill it (checkpoints of every other order unchanged).
            state["sent_ns"], state["bar_ns"] = w.sent_ns, w.bar_ns
        if w.cancel_ns is not None:
            state["cancel_ns"] = w.cancel_ns
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state`` output."""
        self.working, self._working_on = {}, {}
        self._taken = {(iid, asks): (gen, {p: (size, qty) for p, size, qty in levels})
                       for iid, asks, gen, levels in state.get("taken", [])}
        for w in state.get("working", []):
            order = converter.structure(w["order"], Order)
            # Without bar_ns (see _work_state) any next bar may fill the order; it was sent
            # at its own time (a print stamped then never fills it, resumed or not).
            self._hold(Working(
                order, w["activate_ns"], Decimal(w["remaining"]), Decimal(w["filled"]),
                w["n_fills"], w["resting"], OrderStatus(w["status"]),
                w.get("sent_ns", order.ts_ns), w.get("bar_ns"), w.get("cancel_ns")))

    def has_working(self, instrument_id: str | None) -> bool:
        """Whether any order on ``instrument_id`` is working (what :meth:`on_event` acts
        on; ``None``: events of no instrument reach no order)."""
        return instrument_id is not None and self._working_on.get(instrument_id, 0) > 0

    # -- internals -----------------------------------------------------------------
    @staticmethod
    def _opened_after_sent(work: Working, bar: Bar) -> bool:
        """Whether ``bar`` opened after ``work`` was sent: the bar before it closed at or
        after the send.  A bar is stamped at its close, so the bar in progress when an
        order is sent between two bars (on another instrument's event) opened earlier,
        at a price from before the order: it is skipped, and the order waits for the
        next one.  An order sent before its instrument's first bar (``NO_BAR_YET``)
        skips that bar likewise: its open time is unknown, maybe before the order.  Only
        an order sent before any market data (``bar_ns`` None) may fill on the first
        bar, and a restored order from a checkpoint that did not need to say."""
        seen, work.bar_ns = work.bar_ns, bar.ts_ns
        # A bar stamped at the send itself (a duplicate of the bar decided on) closed then.
        return (seen is None or seen >= work.sent_ns) and bar.ts_ns > work.sent_ns

    def _activate_on_book(self, work: Working, ts_ns: int) -> list[Fill]:
        if not self.market.tradeable(work.order.instrument_id)[0]:  # stale, crossed...
            if work.order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                self._close(work, OrderStatus.CANCELLED)
                self._release(work.order.client_order_id)
            return []  # GTC/GTD waits for a live book
        book = self.market.books[work.order.instrument_id]
        ladder = book.asks if work.order.side is Side.BUY else book.bids
        levels = sorted(self._left((work.order.instrument_id, work.order.side is Side.BUY),
                                   ladder, book.snapshots), reverse=work.order.side is Side.SELL)
        fills = self._walk(work, levels, ts_ns, from_bar=False, ladder=ladder,
                           snapshots=book.snapshots)
        self._after_taker(work)
        return fills

    def _left(self, key: tuple[str, bool], ladder: dict[float, float], snapshots: int
              ) -> list[tuple[float, float]]:
        """``ladder``'s levels less what paper takers took of them since the venue last
        changed them (entries the venue has overtaken are dropped)."""
        gen, taken = self._taken.get(key, (snapshots, {}))
        if gen != snapshots:  # a whole book since: everything is the market's again
            del self._taken[key]
            return list(ladder.items())
        if not taken:
            return list(ladder.items())
        for price in [p for p, (size, _) in taken.items() if ladder.get(p) != size]:
            del taken[price]  # the venue changed that level: its size is the market's
        return [(p, q - taken[p][1] if p in taken else q) for p, q in ladder.items()
                if p not in taken or q - taken[p][1] > 1e-12]

    def _take_then_rest(self, work: Working, levels: list[tuple[float, float]],
                        event: Bar | Trade) -> list[Fill]:
        """A taker attempt on the bar's open (or the print); a limit order left resting
        is then checked against the rest of that bar's range (or that print), which
        traded after the order was in the book, with the liquidity the taker part left."""
        taken = self._event_taken.get(work.order.side, Decimal(0))
        fills = self._walk(work, _below_taken(levels, taken), event.ts_ns, from_bar=True)
        self._after_taker(work)
        if work.resting:
            fills += self._rest_fill(work, event)
        return fills

    def _after_taker(self, work: Working) -> None:
        order = work.order
        if work.remaining <= 0:
            self._finish(work, OrderStatus.FILLED)
        elif work.status is OrderStatus.REJECTED:
            self._finish(work, OrderStatus.REJECTED)
        elif order.order_type is OrderType.LIMIT and order.time_in_force in _RESTING:
            work.resting = True
        else:
            # An IOC/FOK/market order's unfilled rest is cancelled: the order is final
            # (CANCELLED with its filled quantity, as a venue reports it).  Left
            # PARTIALLY_FILLED, the core kept it working for ever: a partly filled
            # flatten was never re-sent and a basket with such a leg never unwound.
            self._finish(work, OrderStatus.CANCELLED)

    def _walk(self, work: Working, levels: list[tuple[float, float]], ts_ns: int, *,
              from_bar: bool, ladder: dict[float, float] | None = None,
              snapshots: int = 0) -> list[Fill]:
        order = work.order
        limit = float(order.limit_price) if order.limit_price is not None else None
        inst = self.market.instruments.get(order.instrument_id)
        if order.time_in_force is TimeInForce.POST_ONLY:  # never takes: rests or is refused
            if limit is None or (levels and _within(order.side, levels[0][0], limit)):
                work.status = OrderStatus.REJECTED
            return []
        takes = self._takes(order, work.remaining, levels, inst, from_bar)
        if order.time_in_force is TimeInForce.FOK \
                and sum((q for _, _, q in takes), Decimal(0)) < work.remaining:
            return []  # all or nothing, as the walk would take it (lots, room, limit)
        fills = []
        for price, px, qty in takes:
            if from_bar:
                self._use(order.side, qty, self._event_taken)
            fills.append(self._fill(work, px, qty, ts_ns, Liquidity.TAKER))
            if ladder is not None:  # what we took is gone for the next paper order too
                key = (order.instrument_id, order.side is Side.BUY)
                taken = self._taken.setdefault(key, (snapshots, {}))[1]
                taken[price] = (ladder[price], taken.get(price, (0.0, 0.0))[1] + float(qty))
        return fills

    def _takes(self, order: Order, remaining: Decimal, levels: list[tuple[float, float]],
               inst: Instrument | None, from_bar: bool) -> list[tuple[float, Decimal, Decimal]]:
        """What a taker walk takes, best level first: (level, taker price, quantity), each
        within the limit (slippage that would pass it is no fill), the level's size, the
        lot grid and the room (the print or bar's liquidity, the position a reduce-only
        order closes).  Pure: a fill-or-kill order is judged on it before anything fills
        (summing the levels' sizes let one fill 10 of 14 where each level's lot floor
        fell short)."""
        limit = float(order.limit_price) if order.limit_price is not None else None
        room = self._room(order, from_bar)
        out = []
        for price, size in levels:
            if remaining <= 0:
                break
            px = self._taker_price(order, price, inst, from_bar)
            if px is None or (limit is not None and not _within(order.side, float(px), limit)):
                break  # no venue fills past a limit (or under the tick floor)
            qty = min(remaining, Decimal(repr(size)))
            qty = _lot_floor(qty if room is None else min(qty, room), inst)
            if qty <= 0:
                if room is not None and _lot_floor(room, inst) <= 0:
                    break  # the print, the bar or the position is used up
                continue
            if room is not None:
                room -= qty
            remaining -= qty
            out.append((price, px, qty))
        return out

    def _taker_price(self, order: Order, price: float, inst: Instrument | None,
                     from_bar: bool) -> Decimal | None:
        """What a taker pays at a level: its price with the slippage against the trader,
        rounded against the trader onto the tick; None for a sell under one tick (a bid
        below the floor: no venue quotes it)."""
        px = Decimal(repr(price))
        if self._slip or from_bar:
            if inst is not None and not from_bar:  # a book's level: the market's own price
                _check_on_grid(price, inst)
            px = px * (1 + self._slip) if order.side is Side.BUY else px * (1 - self._slip)
            if order.side is Side.SELL and _under_one_tick(px, inst):
                return None
            px = _tick_round(px, order.side, inst)
        return px

    def _rest_fill(self, work: Working, event: MarketEvent) -> list[Fill]:
        """A maker fill at the limit when ``event`` trades through it, of at most the
        event's liquidity less what orders of this side already took of it."""
        order = work.order
        assert order.limit_price is not None
        if not isinstance(event, Trade | Bar) \
                or event.ts_ns <= work.sent_ns or event.ts_ns < work.activate_ns:
            return []  # (a late print or bar: stamped before the order was in the book)
        if isinstance(event, Bar) and not self._opened_after_sent(work, event):
            return []  # the bar in progress at the send: its range may predate the order
        limit = float(order.limit_price)
        if isinstance(event, Trade):
            through = (float(event.price) < limit) if order.side is Side.BUY \
                else (float(event.price) > limit)
            available = event.size
        else:
            through = event.low < limit if order.side is Side.BUY else event.high > limit
            available = to_decimal(event.volume * self.settings.bar_depth_fraction)
        if not through:
            return []
        qty = min(work.remaining, available - self._event_used.get(order.side, 0))
        room = self._room(order, True)
        qty = _lot_floor(qty if room is None else min(qty, room),
                         self.market.instruments.get(order.instrument_id))
        if qty <= 0:
            return []
        self._use(order.side, qty)
        # At the limit even when the bar opened beyond it: the resting order was in the
        # book, so the first trade past the limit was with it, at its price.
        fill = self._fill(work, order.limit_price, qty, event.ts_ns, Liquidity.MAKER)
        if work.remaining <= 0:
            self._finish(work, OrderStatus.FILLED)
        return [fill]

    def _use(self, side: Side, qty: Decimal, *counts: dict[Side, Decimal]) -> None:
        """Count ``qty`` filled against the print or bar being handled (in ``counts``
        too: the takers' count)."""
        if self._event_room is not None:
            self._event_room -= qty
        for count in (self._event_used, *counts):
            count[side] = count.get(side, Decimal(0)) + qty

    def _fill(self, work: Working, price: Decimal, qty: Decimal, ts_ns: int,
              liquidity: Liquidity) -> Fill:
        order = work.order
        work.n_fills += 1
        work.remaining -= qty
        work.filled += qty
        work.status = OrderStatus.PARTIALLY_FILLED if work.remaining > 0 else OrderStatus.FILLED
        self._unbooked[order.instrument_id] = self._unbooked.get(order.instrument_id, 0) + (
            qty if order.side is Side.BUY else -qty)
        fee = self.fees(order.instrument_id).fee(price, qty, maker=liquidity is Liquidity.MAKER)
        fee *= self.settings.cost_multiplier  # the cost-sensitivity gates scale every fee
        # Fees always: a positive fee under half the unit is one unit, not zero.
        kept = fee.quantize(_FEE_UNIT, context=WIDE)  # (a fee of 1e20 has 29 digits)
        kept = max(kept, _FEE_UNIT) if fee > 0 else kept
        # Stamped when the account learns of it: a late print (stamped before the market's
        # clock) fills at the clock, not inside an equity row already written.
        now = self.market.now_ns
        return Fill(f"{order.client_order_id}-{work.n_fills}", order.client_order_id,
                    order.venue, order.instrument_id, order.side, price, qty,
                    kept, liquidity, ts_ns if ts_ns >= now else now)

    def _synthetic_book(self, bar: Bar, side: Side) -> list[tuple[float, float]]:
        # A ladder around the next bar's open: the first price anyone could have traded at.
        depth = bar.volume * self.settings.bar_depth_fraction
        sign = 1.0 if side is Side.BUY else -1.0
        if (inst := self.market.instruments.get(bar.instrument_id)) is not None:
            _check_on_grid(bar.open, inst)
        return [(bar.open * (1.0 + sign * self._half_spread * (2 * k + 1)), depth)
                for k in range(SYNTHETIC_LEVELS)]

    def _print_book(self, trade: Trade, side: Side) -> list[tuple[float, float]]:
        """One level at the print's price, a half-spread against the trader, of the
        print's size: what a print shows of the market (no depth behind it)."""
        sign = 1.0 if side is Side.BUY else -1.0
        if (inst := self.market.instruments.get(trade.instrument_id)) is not None:
            _check_on_grid(float(trade.price), inst)
        return [(float(trade.price) * (1.0 + sign * self._half_spread), float(trade.size))]

    def _hold(self, work: Working) -> None:
        iid = work.order.instrument_id
        self.working[work.order.client_order_id] = work
        self._working_on[iid] = self._working_on.get(iid, 0) + 1

    def _release(self, client_order_id: str) -> Working | None:
        work = self.working.pop(client_order_id, None)
        if work is not None:
            self._working_on[work.order.instrument_id] -= 1
        return work

    def _finish(self, work: Working, status: OrderStatus) -> None:
        self._release(work.order.client_order_id)
        self._close(work, status)

    def _close(self, work: Working, status: OrderStatus) -> None:
        work.status = status
        self.closed[work.order.client_order_id] = (status, work.filled)


_RESTING = (TimeInForce.GTC, TimeInForce.GTD, TimeInForce.POST_ONLY)
#: The ledger keeps fees to 1e-8 of the quote currency.
_FEE_UNIT = Decimal("1e-8")


def _within(side: Side, price: float, limit: float) -> bool:
    return price <= limit if side is Side.BUY else price >= limit


def _below_taken(levels: list[tuple[float, float]], taken: Decimal
                 ) -> list[tuple[float, float]]:
    """A synthetic book less ``taken`` from its best level down (what takers before this
    one took of the same bar or print: they walked the same levels)."""
    if not taken:
        return levels
    out = []
    for price, size in levels:
        depth = Decimal(repr(size))
        if taken >= depth:
            taken -= depth
            continue
        out.append((price, float(depth - taken)))
        taken = Decimal(0)
    return out


def _lot_floor(qty: Decimal, inst: Instrument | None) -> Decimal:
    step = inst.lot_size if inst else Decimal("1e-8")
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


_OFF_TICK = float(GRID_NOISE)  # ticks_of's rule for the float prices of the grid check


#: Rounding a fill onto the tick moves it by up to a tick against the trader: within the
#: market's noise while a tick is a small share of the price; past this share, where the
#: data trades between the ticks, the rounded fill can lie outside the market (a tick of
#: 0.01 on prices of 0.004: a buy at 0.01, a sell at 0).
_COARSE_TICK = 1e-3


def _check_on_grid(price: float, inst: Instrument) -> None:
    """Refuse to fill at ``price`` when it lies between ``inst``'s ticks and a tick is a
    coarse share of it: the tick contradicts the market (a tick configured coarser than
    the replayed data, or an instrument the venue describes wrongly).  A binary
    contract's coarse tick is fine wherever its prices are on the grid."""
    tick = float(inst.tick_size)
    if price <= 0 or tick <= price * _COARSE_TICK:
        return
    steps = price / tick  # under 1 / _COARSE_TICK: a float holds it to ~1e-13 of a tick
    if abs(steps - round(steps)) > _OFF_TICK:
        raise DataError(
            f"{inst.id}: the market trades at {price!r}, between the instrument's ticks of "
            f"{inst.tick_size} (a tick is {tick / price:.2%} of the price): a fill rounded onto "
            f"the tick would lie outside the market.  The tick is coarser than the data: "
            f"configure tick_size to the data's own (a replay infers it when tick_size is not "
            f"set)")


def _under_one_tick(price: Decimal, inst: Instrument | None) -> bool:
    """Whether ``price`` lies under the instrument's first tick (beyond float noise)."""
    return ticks_of(price, inst.tick_size if inst else Decimal("1e-8")) < 1


def _tick_round(price: Decimal, side: Side, inst: Instrument | None) -> Decimal:
    """``price`` on the instrument's tick grid, rounded against the trader (buys up, sells
    down).  The tick is the instrument's as the venue serves it -- for replays, the data's
    own era's (see :mod:`argus_core.builtins.replay_venue`), never today's."""
    tick = inst.tick_size if inst else Decimal("1e-8")
    nearest = ticks_of(price, tick).to_integral_value(
        rounding=ROUND_CEILING if side is Side.BUY else ROUND_FLOOR)
    if not nearest:  # a sell under one tick: no venue quotes it (a tick set too coarse)
        raise DataError(f"{inst.id if inst else 'an instrument'}: price {price} is under "
                        f"one tick ({tick}): its tick_size does not fit its prices")
    return nearest * tick
