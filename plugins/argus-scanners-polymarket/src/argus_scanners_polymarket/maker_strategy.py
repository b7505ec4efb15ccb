"""``pm_maker``: the maker lifecycle as a strategy, in the ExecutionEngine's terms.

Per quoted token, on every event of that token (book snapshot or delta, trade, book status)
and on each fill of its quotes (``on_fill``: the exit a fill calls for goes out at once,
not at the token's next book event):

1. **Fills.**  The change of the strategy's own position since its last look
   (``ctx.portfolio``: its slot's book) is booked against the side that can cause it
   (a rise against the bid, a fall against the ask); a side filled in full is gone, a
   partly filled side keeps resting with its remainder and is never topped up (no
   second order after a partial).  A change no working side explains (a flattening
   order, a settlement) makes the next action a full reset: cancel, then post; so
   does, live, a change on a side replaced (cancelled and posted again in one list)
   within 5 s of the first event after the replacement (that event's stamp, not the
   replacing one's, which may be old: a restart's first book): the old order may have
   filled before its cancel landed.
2. **Stale book.**  When the book is not tradeable (a disconnect, a checksum failure,
   a quiet feed), or its market takes no orders (instrument ``meta`` says not accepting
   or closed, or its event is closed), the token's quotes are cancelled
   (``cancel_when_stale``) and nothing is posted until that changes.  From
   ``stop_before_end_s`` (default an hour) before its event's end (``Event.end_ts_ns``)
   on, the quotes are cancelled whatever ``cancel_when_stale`` says, and nothing is
   posted again: near and past the end, takers often know the outcome first.
3. **Prices.**  :func:`argus_scanners_polymarket.maker.quote_sides` (the maker
   scanner's formulas: one tick inside, reservation price skewed by the position,
   rewards, OFI adverse selection, the maker fee from the instrument's
   ``FeeSchedule``) against the *others'* touch: live, the venue's book shows our own
   resting quote, so a level that is only ours is left out (else the quote would chase
   itself up the book).  A side is wanted when its edge exceeds ``min_edge``.  While the
   others' book is one-sided (or crossed mid-way through a run of deltas) nothing
   changes.
4. **Limits.**  No bid at ``position >= max_inventory``, and the bid is sized so a full
   fill stays within it; the ask sells only shares held (unless ``allow_short``) and is
   ``reduce_only`` when it only shrinks the position.  No bid while the OFI imbalance is
   at or below ``-cancel_ofi``, no ask at or above ``+cancel_ofi`` (the strategy's own
   OFI tracker, fed every event of the token; the published ``"ofi"`` signal when its
   window saw no flow, as the scanner does).
5. **Trading state** (``ctx.trading_state``).  In ``"reducing"`` and ``"halted"`` only
   the side that shrinks the position is wanted, sized to at most the position (so it
   is a reduce-only exit the core passes); the other side is cancelled at once with the
   state as its reason, and a working side whose remainder would carry the position
   through zero is replaced by the exit.  Nothing the risk engine would veto for the
   state is posted, so those states leave no ``trading_state`` vetoes.  Back in
   ``"active"``, quoting resumes (a side cancelled for the state waits
   ``min_requote_s`` like any other).  HALTED makes the core cancel every working order
   once, when the state is entered: a token that saw the state change forgets its quotes
   (no second cancel: live, it would race the core's and be refused) and posts its exit
   at once; a token whose previous state is unknown (a fresh or restored strategy that
   believes quotes) resets instead (cancel both, then post).
6. **Actions, per side.**  A side that is no longer wanted, or a quote that would now
   cross (or grow the position in REDUCING/HALTED), is cancelled at once; moving a quote
   to a new price and refreshing a quote older than ``refresh_s`` wait for
   ``min_requote_s`` since that side's last change, and so does posting a side again
   after it was cancelled (no flapping).  Each is a ``CancelIntent`` with ``side=`` that
   side only, followed by the side's new post in the same list (the engine handles them
   in order: never two working quotes on a side); the other side keeps resting, with its
   queue place.  A posted side never meets our own other quote: one that would (the
   other side still waiting to move) moves the other side with it.  A reset (position
   changed by something else, a live restart) cancels both sides (``side=None``), then
   posts the wanted ones, a side that was working at once; a stale book and a settled
   market cancel both sides too.

What the strategy cannot see.  ``StrategyContext`` shows positions and the trading
state, not working orders, so the strategy keeps its own belief of its quotes (in
``get_state``, checkpointed with the ledger).  A post the risk engine vetoes for another
reason (a risk check, a stale book) or the venue ends unseen stays believed until the
quote is moved or refreshed: at most one attempt per side per ``min_requote_s``, so the
strategy never spins.  Restarted live, it cancels and posts afresh on each token's first
event (the venue may have dropped its orders while it was down); resumed in replay or
paper, its state matches the broker's exactly.  A checkpoint written before the pacing
became per side (one ``last_change_ns`` per token) is read as that time for both sides.

Queue position and rewards.  Fills come from the core's queue-conservative rule (a
resting order fills only when a trade goes *through* its price); no queue position is
modelled here.  Liquidity rewards are not fees (the core refuses negative fees): they
enter the edge only (``reward_per_share`` / the rewards program), never the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any, ClassVar

import attrs

from argus_core import (
    BookDelta,
    BookStatus,
    CancelIntent,
    Fill,
    Instrument,
    Intent,
    MarketEvent,
    MarketState,
    OrderBook,
    OrderType,
    Position,
    Settlement,
    Side,
    Signal,
    Strategy,
    StrategyContext,
    TimeInForce,
    Trade,
)
from argus_scanners_polymarket.common import dec, tick_in_force, token_refs
from argus_scanners_polymarket.config import (
    MakerSettings,
    MakerStrategySettings,
    PmScannersSettings,
)
from argus_scanners_polymarket.maker import MakerQuote, QuotePlan, flow_of, quote_sides
from argus_scanners_polymarket.ofi import SIGNAL, OfiTracker

_NS = 10**9
#: Live, how long a fill on a replaced side may still be the old quote's rather than its
#: replacement's (the venue's answer and its fill reports come within seconds), counted
#: from the first event after the replacement (see ``TokenBook.cancelled_ns``).
_CANCEL_SETTLE_NS = 5 * _NS
_SIDES = ("bid", "ask")
_SIDE_OF = {"bid": Side.BUY, "ask": Side.SELL}
_OTHER = {"bid": "ask", "ask": "bid"}
_ACTIVE, _HALTED = "active", "halted"
#: A book level at most this much larger than our own remainder is only ours (floats).
_OWN_EPS = 1e-9


@attrs.define
class Resting:
    """A quote the strategy believes is working: its price, size and fills seen so far."""

    price: Decimal
    quantity: Decimal
    posted_ns: int
    filled: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        """Shares not yet filled."""
        return self.quantity - self.filled


@attrs.define
class TokenBook:
    """What the strategy knows of one token: its position at the last look, its quotes,
    when each side last changed (a cancel or a post) and the trading state last seen."""

    position: Decimal
    bid: Resting | None = None
    ask: Resting | None = None
    bid_changed_ns: int | None = None
    ask_changed_ns: int | None = None
    reset: str = ""  # why everything is cancelled before the next post ("": no reset)
    # Not checkpointed: None after a restore, when whether HALTED's cancel came is unknown.
    state_seen: str | None = None
    #: Live, per side: when a quote of that side was last replaced (cancelled and posted
    #: again in one list, the old order's cancel in flight); a fill on the side soon after
    #: is ambiguous.  Restamped by the first event after the replacement (``unstamped``):
    #: the replacing event's own stamp may be old -- a restart's first event is the book
    #: as it was before a slow start-up -- and the window then looked lapsed at once
    #: (campaign seed 12).  The cost: after a quiet spell, a fill of the replacement seen
    #: on that first event resets too.  Not checkpointed (a live restart resets anyway).
    cancelled_ns: dict[str, int] = attrs.Factory(dict)
    #: Sides replaced whose window waits for the next event's stamp.
    unstamped: set[str] = attrs.Factory(set)
    #: The position's (realized P&L, average price) at the last look (None: not yet seen
    #: in this process); fills on both sides that net out still move them.
    pnl_mark: tuple[Decimal, Decimal] | None = None

    def quote(self, label: str) -> Resting | None:
        """The ``"bid"`` or ``"ask"`` believed working."""
        return self.bid if label == "bid" else self.ask

    def set_quote(self, label: str, value: Resting | None) -> None:
        """Replace the ``"bid"`` or ``"ask"``."""
        if label == "bid":
            self.bid = value
        else:
            self.ask = value

    def changed_ns(self, label: str) -> int | None:
        """When the ``"bid"`` or ``"ask"`` was last cancelled or posted (None: never)."""
        return self.bid_changed_ns if label == "bid" else self.ask_changed_ns

    def set_changed(self, label: str, ts_ns: int | None) -> None:
        """Stamp a cancel or post of the ``"bid"`` or ``"ask"``."""
        if label == "bid":
            self.bid_changed_ns = ts_ns
        else:
            self.ask_changed_ns = ts_ns


@attrs.frozen
class Wanted:
    """A side the strategy wants posted now."""

    quote: MakerQuote
    size: Decimal
    reduce_only: bool


def _takes_orders(market: MarketState, iid: str, inst: Instrument) -> tuple[bool, str]:
    """Whether ``iid``'s market takes orders now, and why not: the scanners' rule
    (``Instrument.takes_orders``, and the event not closed), so
    quotes are pulled when Polymarket stops accepting orders or closes the event."""
    if not inst.takes_orders:
        return False, "the market takes no orders (closed or not accepting orders)"
    ref = token_refs(market).get(iid)
    if ref is not None and ref.event.closed:
        return False, f"its event {ref.event.event_id} is closed"
    return True, ""


def _ends_soon(market: MarketState, iid: str, now: int, window_ns: int) -> str:
    """Why ``iid`` is not quoted for its event's end ("" when it is): the end
    (``Event.end_ts_ns``) is within ``window_ns`` of ``now``, or past while the market
    still trades (its resolution pending: the outcome is often known by then)."""
    ref = token_refs(market).get(iid)
    if ref is None or ref.event.end_ts_ns is None or now < ref.event.end_ts_ns - window_ns:
        return ""
    left = (ref.event.end_ts_ns - now) / _NS
    when = f"in {left:.0f}s" if left > 0 else f"{-left:.0f}s ago"
    return f"its event {ref.event.event_id} ends {when}: no quote into a resolution"


class MakerStrategy(Strategy):
    """Posts, requotes and cancels maker quotes one tick inside (see the module docstring
    for every rule)."""

    name: ClassVar[str] = "pm_maker"

    def __init__(self, settings: PmScannersSettings | None = None) -> None:
        settings = settings or PmScannersSettings()
        self.pricing: MakerSettings = settings.maker
        self.settings: MakerStrategySettings = settings.pm_maker
        self.ofi = OfiTracker(self.pricing.ofi_window_s, levels=self.pricing.ofi_levels)
        self.books: dict[str, TokenBook] = {}
        self._wanted_tokens = set(self.settings.tokens)
        self._restored = False  # set_state ran: a live restart reconciles each token once
        self._reconciled: set[str] = set()

    # -- the Strategy contract --------------------------------------------------------
    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        """One token's lifecycle step (fills, stale book, prices, limits, trading state,
        actions)."""
        if not isinstance(event, OrderBook | BookDelta | Trade | BookStatus | Settlement
                          | Signal) or (isinstance(event, Signal) and event.name != SIGNAL):
            return ()
        iid = event.instrument_id
        market = ctx.market
        inst = market.instruments.get(iid)
        if inst is None or not self._quotes(inst):
            return ()
        if isinstance(event, OrderBook | BookDelta | Trade):
            self.ofi.on_event(event, market)
        st = self.books.get(iid)
        if isinstance(event, Settlement) or iid in market.settled:
            if st is None:
                return ()
            del self.books[iid]  # resolved: nothing more to quote
            return (CancelIntent(self.name, iid, "pm_maker: market settled"),) \
                if st.bid or st.ask else ()
        return self._step(iid, inst, ctx)

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[Intent | CancelIntent]:
        """A fill of a quote: the token's step at once, on the book as it stands (the exit
        of a position a fill opened is quoted now, not at the token's next book event: in
        a quiet market that came late)."""
        iid = fill.instrument_id
        inst = ctx.market.instruments.get(iid)
        if inst is None or iid not in self.books or iid in ctx.market.settled:
            return ()
        return self._step(iid, inst, ctx)

    def _step(self, iid: str, inst: Instrument, ctx: StrategyContext
              ) -> Sequence[Intent | CancelIntent]:
        """Steps 1-6 of the module docstring for one token, at ``ctx``'s time."""
        market, st = ctx.market, self.books.get(iid)
        held = ctx.portfolio.position(iid)
        position = held.quantity
        if st is None:
            st = self.books[iid] = TokenBook(position)
        self._book_fills(st, held, ctx.ts_ns, ctx.mode == "live")
        if st.bid or st.ask:
            self._see_orders(st, iid, ctx)
        if self._restored and ctx.mode == "live" and iid not in self._reconciled:
            self._reconciled.add(iid)
            st.reset = "restarted live: the venue may have ended our orders meanwhile"
        state = ctx.trading_state
        self._see_state(st, state, orders_seen=ctx.orders is not None)
        now = ctx.ts_ns
        before_end = self.settings.stop_before_end_s
        ending = "" if before_end is None else _ends_soon(market, iid, now,
                                                          int(before_end * _NS))
        if ending:  # a risk cancel: whatever cancel_when_stale says
            return [self._cancel_all(st, iid, now, ending)] if st.bid or st.ask or st.reset \
                else ()
        ok, why = market.tradeable(iid)
        if ok:
            ok, why = _takes_orders(market, iid, inst)
        book = market.books.get(iid)
        if not ok or book is None:
            if self.settings.cancel_when_stale and (st.bid or st.ask or st.reset):
                return [self._cancel_all(st, iid, now, f"book not tradeable: {why}")]
            return ()
        touch = self._others_touch(st, book.bid_levels(), book.ask_levels(), ctx.mode)
        if touch is None:
            # One-sided (for others) or crossed for a moment, as a book mid-way through a
            # run of deltas can be: nothing to price against, so nothing changes.
            return ()
        plan = quote_sides(self.pricing, inst, touch[0], touch[1], position,
                           flow_of(self.ofi, market, iid, now), market.fee_schedule(iid),
                           max_inventory=self.settings.max_inventory,
                           tick=tick_in_force(market, inst))
        verdicts = {label: self._wanted(plan, label, position, inst, state)
                    for label in _SIDES}
        wanted = {label: v[0] for label, v in verdicts.items()}
        why_not = {label: v[1] for label, v in verdicts.items()}
        return self._act(st, iid, now, plan, wanted, why_not, touch, ctx.mode, state)

    def get_state(self) -> dict[str, Any]:
        """Each token's position at the last look, believed quotes and when each side last
        changed, and the OFI window."""
        def quote(r: Resting | None) -> dict[str, Any] | None:
            return None if r is None else {"price": str(r.price), "quantity": str(r.quantity),
                                           "posted_ns": r.posted_ns, "filled": str(r.filled)}

        def token(st: TokenBook) -> dict[str, Any]:
            stamps = [t for t in (st.bid_changed_ns, st.ask_changed_ns) if t is not None]
            return {"position": str(st.position), "bid": quote(st.bid), "ask": quote(st.ask),
                    "changed_ns": {"bid": st.bid_changed_ns, "ask": st.ask_changed_ns},
                    # the one stamp a strategy from before per-side pacing reads
                    "last_change_ns": max(stamps) if stamps else None,
                    "reset": st.reset}

        return {"tokens": {iid: token(st) for iid, st in sorted(self.books.items())},
                "ofi": self.ofi.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (a resumed run, or a hot-swap hand-over); a
        state from before per-side pacing (one ``last_change_ns``) stamps both sides."""
        def quote(raw: dict[str, Any] | None) -> Resting | None:
            return None if raw is None else Resting(
                Decimal(raw["price"]), Decimal(raw["quantity"]), int(raw["posted_ns"]),
                Decimal(raw.get("filled", "0")))

        def token(raw: dict[str, Any]) -> TokenBook:
            old = raw.get("last_change_ns")
            changed = raw.get("changed_ns") or {"bid": old, "ask": old}
            return TokenBook(Decimal(raw["position"]), quote(raw.get("bid")),
                             quote(raw.get("ask")), changed.get("bid"), changed.get("ask"),
                             str(raw.get("reset") or ""))

        self.books = {iid: token(raw) for iid, raw in state.get("tokens", {}).items()}
        self.ofi.set_state(state.get("ofi", {}))
        self._restored, self._reconciled = True, set()

    # -- the steps --------------------------------------------------------------------
    def _quotes(self, inst: Instrument) -> bool:
        """Whether this strategy quotes ``inst`` (configured tokens, else every binary)."""
        if self._wanted_tokens:
            return inst.id in self._wanted_tokens or inst.symbol in self._wanted_tokens
        return inst.kind == "binary"

    @staticmethod
    def _book_fills(st: TokenBook, held: Position, now: int, live: bool) -> None:
        """Book the position change since the last look against the side that causes it.
        Live, a change on a side whose previous quote's cancel may still be in flight is
        ambiguous (the old order may have filled, not the replacement): a reset, whose
        cancel of both sides reaches whichever still works (campaign seed 9: booked
        against the replacement, that order was forgotten while live at the venue), for
        5 s from the first event after the replacement (seed 12: a restart's first event
        is stamped before a slow start-up, and 10 s seemed to have passed at once).  So
        are fills on both sides between two looks, seen by the realized P&L (or the
        average price) moving where the net change cannot have moved it: an unchanged
        quantity, or a change that only adds to the position (campaign seed 14: a sell
        and a buy of 5 netted to nothing, and the filled bid stayed believed)."""
        for label in st.unstamped:  # the window runs from the first event after
            st.cancelled_ns[label] = max(st.cancelled_ns[label], now)
        st.unstamped.clear()
        position, old = held.quantity, st.position
        change, st.position = position - old, position
        before, st.pnl_mark = st.pnl_mark, (held.realized_pnl, held.avg_price)
        netted = before is not None and (
            (change == 0 and before != st.pnl_mark) or (
                change != 0 and (old == 0 or (old > 0) == (change > 0))
                and before[0] != held.realized_pnl))
        if netted:
            st.reset = "fills on both sides between two looks"
            return
        if change == 0:
            return
        label = "bid" if change > 0 else "ask"
        cancelled = st.cancelled_ns.get(label)
        if live and cancelled is not None and now - cancelled < _CANCEL_SETTLE_NS \
                and st.quote(label) is not None:
            st.reset = (f"a {label} fill while the {label} it replaced was being cancelled: "
                        f"which order filled is unknown")
            return
        quote = st.quote(label)
        size = abs(change)
        if quote is None or size > quote.remaining:
            st.reset = "position changed by something other than our quotes"
            if quote is None:
                return
            size = quote.remaining
        quote.filled += size
        if quote.remaining <= 0:
            st.set_quote(label, None)  # filled in full: that order is final

    @staticmethod
    def _see_orders(st: TokenBook, iid: str, ctx: StrategyContext) -> None:
        """Forget a believed quote with no order of its side at its price among this
        slot's orders not yet final: it ended without our asking (a post the venue never
        placed after an ambiguous answer, a refusal, a post-only that would cross), so the
        venue holds nothing there (live campaign seed 12: believed until ``refresh_s``).
        The side's last change stays stamped: a venue that keeps refusing is not asked
        again on every event."""
        orders = ctx.orders
        if orders is None:  # a context built outside a run: nothing to check against
            return
        working = {(k.order.side, k.order.limit_price) for k in orders
                   if k.order.instrument_id == iid}
        for label, side in (("bid", Side.BUY), ("ask", Side.SELL)):
            quote = st.quote(label)
            if quote is not None and (side, quote.price) not in working:
                st.set_quote(label, None)

    @staticmethod
    def _see_state(st: TokenBook, state: str, *, orders_seen: bool) -> None:
        """Entering HALTED: the core cancelled every working order (once, as the state
        was entered), so the quotes are forgotten and may go back at once; with the
        previous state unknown (fresh or restored), a reset makes sure of it.  Where the
        slot's orders were seen (``_see_orders``: every run gives them), what the halt
        cancelled is already forgotten and what still works is known: nothing to guess."""
        if orders_seen:
            st.state_seen = state
            return
        if state == _HALTED and st.state_seen != _HALTED and (st.bid or st.ask):
            if st.state_seen is None:
                st.reset = st.reset or "trading is halted: every working order ends"
            else:
                for label in _SIDES:
                    if st.quote(label) is not None:
                        st.set_quote(label, None)
                        st.set_changed(label, None)  # not our churn: no wait to post again
        st.state_seen = state

    def _others_touch(self, st: TokenBook, bids: Any, asks: Any, mode: str
                      ) -> tuple[Decimal, Decimal] | None:
        """Best bid and ask without our own resting quotes (live only: a paper order is
        not in the venue's book); None for a one-sided book."""
        def best(levels: Any, own: Resting | None) -> Decimal | None:
            for price, size in levels:
                if (mode == "live" and own is not None and dec(price) == own.price
                        and size <= float(own.remaining) + _OWN_EPS):
                    continue  # this level is only our own quote
                return dec(price)
            return None

        bid, ask = best(bids, st.bid), best(asks, st.ask)
        if bid is None or ask is None or bid >= ask:
            return None
        return bid, ask

    def _wanted(self, plan: QuotePlan, label: str, position: Decimal, inst: Instrument,
                state: str) -> tuple[Wanted | None, str]:
        """The side to post now, sized within the limits, or None and why not (the
        trading state, no edge, adverse flow, the inventory limit, nothing to sell)."""
        s = self.settings
        exit_only = state != _ACTIVE
        if exit_only and (position >= 0 if label == "bid" else position <= 0):
            return None, f"trading is {state}: a {label} would grow the position {position}"
        if label == "bid" and position >= s.max_inventory:
            return None, f"inventory {position} at its limit {s.max_inventory}"
        if label == "ask" and position <= (-s.max_inventory if s.allow_short else 0):
            return None, f"inventory {position}: nothing to sell"
        quote = plan.side(label)
        if quote is None:
            return None, f"no {label} fits inside {plan.bid}/{plan.ask}"
        if quote.edge <= self.pricing.min_edge:
            return None, f"{label} edge {quote.edge:.6f} <= min_edge {self.pricing.min_edge}"
        if (label == "bid" and plan.flow <= -s.cancel_ofi) or (
                label == "ask" and plan.flow >= s.cancel_ofi):
            return None, f"adverse OFI {plan.flow:+.3f} against the {label}"
        if exit_only:  # an exit: at most the position, so the core passes it
            room = abs(position)
        else:
            room = s.max_inventory - position if label == "bid" else (
                position + s.max_inventory if s.allow_short else position)
        size = _floor_to(min(quote.size, room), inst.lot_size)
        if size <= 0 or size < inst.min_size:
            return None, f"{label} size {size} below the minimum {inst.min_size} (inventory)"
        # Only shrinking the position (never through zero): an exit the core passes in
        # REDUCING and HALTED.
        reduce_only = (position > 0 and label == "ask" and size <= position) or (
            position < 0 and label == "bid" and size <= -position)
        return Wanted(quote, size, reduce_only), ""

    def _side_step(self, st: TokenBook, label: str, now: int, want: Wanted | None,
                   why_not: str, touch: tuple[Decimal, Decimal], state: str
                   ) -> tuple[str, bool]:
        """One side's action: why to cancel it now ("": keep it, or nothing to cancel) and
        whether to post it now."""
        s = self.settings
        changed = st.changed_ns(label)
        waited = changed is None or now - changed >= s.min_requote_s * _NS
        have = st.quote(label)
        if have is None:
            return "", want is not None and waited
        if want is None:
            return f"{label} {have.price} cancelled: {why_not}", False
        crosses = have.price >= touch[1] if label == "bid" else have.price <= touch[0]
        if crosses:
            return f"{label} {have.price} would cross the touch {touch[0]}/{touch[1]}", True
        if state != _ACTIVE and have.remaining > abs(st.position):
            return (f"trading is {state}: {label} {have.price} ({have.remaining} left) "
                    f"would grow the position {st.position}"), True
        if want.quote.price != have.price:
            move = f"{label} {have.price} -> {want.quote.price}"
        elif s.refresh_s and now - have.posted_ns >= s.refresh_s * _NS:
            move = f"{label} {have.price} refreshed after {s.refresh_s:g}s"
        else:
            return "", False
        return (move, True) if waited else ("", False)  # a better price waits its turn

    def _act(self, st: TokenBook, iid: str, now: int, plan: QuotePlan,
             wanted: dict[str, Wanted | None], why_not: dict[str, str],
             touch: tuple[Decimal, Decimal], mode: str, state: str
             ) -> list[Intent | CancelIntent]:
        """Cancel, then post, side by side, as the rules in the module docstring say."""
        steps = {label: self._side_step(st, label, now, wanted[label], why_not[label],
                                        touch, state) for label in _SIDES}
        for label in _SIDES:  # never post onto our own other quote: move that one too
            want, other = wanted[label], _OTHER[label]
            rest = st.quote(other)
            if not steps[label][1] or want is None or rest is None or steps[other][0]:
                continue
            price = want.quote.price
            if (price >= rest.price) if label == "bid" else (price <= rest.price):
                steps[other] = (f"{other} {rest.price} moves with the {label} {price}",
                                wanted[other] is not None)
        out: list[Intent | CancelIntent] = []
        if st.reset:
            cancelled = {label for label in _SIDES if st.quote(label) is not None}
            reasons = [why for why, _ in steps.values() if why] + [st.reset]
            out.append(self._cancel_all(st, iid, now, "; ".join(reasons)))
            # A side cancelled only because a reset covers the whole token goes back at
            # once; any other waits as its own step said.
            posts = [label for label in _SIDES if wanted[label] is not None
                     and (label in cancelled or steps[label][1])]
        else:
            for label in _SIDES:
                why = steps[label][0]
                if why:
                    st.set_quote(label, None)
                    st.set_changed(label, now)
                    out.append(CancelIntent(self.name, iid, f"pm_maker: {why}",
                                            side=_SIDE_OF[label]))
            posts = [label for label in _SIDES if steps[label][1]]
            cancelled = {label for label in _SIDES if steps[label][0]}
        if mode == "live":  # a side replaced in one list: its old order's cancel is in flight
            for label in posts:
                if label in cancelled and wanted[label] is not None:
                    st.cancelled_ns[label] = now
                    st.unstamped.add(label)
        for label in posts:
            want = wanted[label]
            if want is not None:
                out.append(self._post(st, iid, now, plan, label, want, mode))
        return out

    def _cancel_all(self, st: TokenBook, iid: str, now: int, reason: str) -> CancelIntent:
        """Cancel every working order of the slot on ``iid`` (both sides) and forget the
        quotes.  Only a side that had a quote is stamped as changed: a side with nothing
        to cancel is not churn, and stamping it would hold its next post back
        ``min_requote_s`` (seed 73 of the paper campaign: an ask wanted on the first
        ACTIVE event after a HALTED reset waited 1.5 s)."""
        for label in _SIDES:
            if st.quote(label) is not None:
                st.set_quote(label, None)
                st.set_changed(label, now)
        st.reset = ""
        return CancelIntent(self.name, iid, f"pm_maker: {reason}")

    def _post(self, st: TokenBook, iid: str, now: int, plan: QuotePlan, label: str,
              want: Wanted, mode: str) -> Intent:
        """Post ``label`` as wanted and believe it working."""
        tif = self.settings.time_in_force
        post_only = tif == "post_only" or (tif == "auto" and mode != "live")
        quote = want.quote
        st.set_quote(label, Resting(quote.price, want.size, now))
        st.set_changed(label, now)
        return Intent(self.name, iid, quote.side, quantity=want.size, limit_price=quote.price,
                      order_type=OrderType.LIMIT,
                      time_in_force=TimeInForce.POST_ONLY if post_only else TimeInForce.GTC,
                      reduce_only=want.reduce_only, decision_price=plan.mid,
                      reason=f"pm_maker: {quote.explain(plan)}")


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step
