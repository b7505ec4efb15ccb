"""``pm_maker``: the maker lifecycle as a strategy, in the ExecutionEngine's terms.

Per quoted token, on every event of that token (book snapshot or delta, trade, book status):

1. **Fills.**  The change of the strategy's own position since its last look
   (``ctx.portfolio``: its slot's book) is booked against the side that can cause it
   (a rise against the bid, a fall against the ask); a side filled in full is gone, a
   partly filled side keeps resting with its remainder and is never topped up (no
   second order after a partial).  A change no working side explains (a flattening
   order, a settlement) makes the next action a full reset: cancel, then post.
2. **Stale book.**  When the book is not tradeable (a disconnect, a checksum failure,
   a quiet feed) the token's quotes are cancelled (``cancel_when_stale``) and nothing is
   posted until a fresh snapshot.
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
   ``reduce_only`` when it only shrinks the position, so it keeps working in REDUCING
   (and HALTED: the core passes exits) while the bid is vetoed.  No bid while the OFI
   imbalance is at or below ``-cancel_ofi``, no ask at or above ``+cancel_ofi`` (the
   strategy's own OFI tracker, fed every event of the token; the published ``"ofi"``
   signal when its window saw no flow, as the scanner does).
5. **Actions.**  A ``CancelIntent`` cancels every working order of the slot on the
   token, so any change is *cancel, then post* the wanted sides, in that order, in
   one list (the engine handles them in order): never two working quotes on a side.
   A side that is no longer wanted, or a quote that would now cross, is cancelled at
   once; moving a quote to a new price, posting after a cancel, and refreshing a
   quote older than ``refresh_s`` wait for ``min_requote_s`` since the last change.

What the strategy cannot see.  ``StrategyContext`` shows positions, not working orders
or the trading state, so the strategy keeps its own belief of its quotes (in
``get_state``, checkpointed with the ledger).  A post the risk engine vetoes (HALTED,
REDUCING, a stale book) or the venue ends unseen stays believed until the quote is
moved or refreshed: at most one attempt per side per ``min_requote_s``, each vetoed
once with its risk event, so the strategy never spins.  Restarted live, it cancels and
posts afresh on each token's first event (the venue may have dropped its orders while
it was down); resumed in replay or paper, its state matches the broker's exactly.

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
    Instrument,
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Settlement,
    Signal,
    Strategy,
    StrategyContext,
    TimeInForce,
    Trade,
)
from argus_scanners_polymarket.common import dec
from argus_scanners_polymarket.config import (
    MakerSettings,
    MakerStrategySettings,
    PmScannersSettings,
)
from argus_scanners_polymarket.maker import MakerQuote, QuotePlan, flow_of, quote_sides
from argus_scanners_polymarket.ofi import SIGNAL, OfiTracker

_NS = 10**9
_SIDES = ("bid", "ask")
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
    """What the strategy knows of one token: its position at the last look, its quotes."""

    position: Decimal
    bid: Resting | None = None
    ask: Resting | None = None
    last_change_ns: int | None = None  # last cancel or post
    reset: str = ""  # why everything is cancelled before the next post ("": no reset)

    def quote(self, label: str) -> Resting | None:
        """The ``"bid"`` or ``"ask"`` believed working."""
        return self.bid if label == "bid" else self.ask

    def set_quote(self, label: str, value: Resting | None) -> None:
        """Replace the ``"bid"`` or ``"ask"``."""
        if label == "bid":
            self.bid = value
        else:
            self.ask = value


@attrs.frozen
class Wanted:
    """A side the strategy wants posted now."""

    quote: MakerQuote
    size: Decimal
    reduce_only: bool


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
        """One token's lifecycle step (fills, stale book, prices, limits, actions)."""
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
        position = ctx.portfolio.position(iid).quantity
        if st is None:
            st = self.books[iid] = TokenBook(position)
        self._book_fills(st, position)
        if self._restored and ctx.mode == "live" and iid not in self._reconciled:
            self._reconciled.add(iid)
            st.reset = "restarted live: the venue may have ended our orders meanwhile"
        now = ctx.ts_ns
        ok, why = market.tradeable(iid)
        book = market.books.get(iid)
        if not ok or book is None:
            if self.settings.cancel_when_stale and (st.bid or st.ask or st.reset):
                return self._cancel(st, iid, now, f"book not tradeable: {why}")
            return ()
        touch = self._others_touch(st, book.bid_levels(), book.ask_levels(), ctx.mode)
        if touch is None:
            # One-sided (for others) or crossed for a moment, as a book mid-way through a
            # run of deltas can be: nothing to price against, so nothing changes.
            return ()
        plan = quote_sides(self.pricing, inst, touch[0], touch[1], position,
                           flow_of(self.ofi, market, iid, now), market.fee_schedule(iid),
                           max_inventory=self.settings.max_inventory)
        verdicts = {label: self._wanted(plan, label, position, inst) for label in _SIDES}
        wanted = {label: v[0] for label, v in verdicts.items()}
        why_not = {label: v[1] for label, v in verdicts.items()}
        return self._act(st, iid, now, plan, wanted, why_not, touch, ctx.mode)

    def get_state(self) -> dict[str, Any]:
        """Each token's position at the last look and believed quotes, and the OFI window."""
        def quote(r: Resting | None) -> dict[str, Any] | None:
            return None if r is None else {"price": str(r.price), "quantity": str(r.quantity),
                                           "posted_ns": r.posted_ns, "filled": str(r.filled)}

        return {"tokens": {iid: {"position": str(st.position), "bid": quote(st.bid),
                                 "ask": quote(st.ask), "last_change_ns": st.last_change_ns,
                                 "reset": st.reset}
                           for iid, st in sorted(self.books.items())},
                "ofi": self.ofi.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (a resumed run, or a hot-swap hand-over)."""
        def quote(raw: dict[str, Any] | None) -> Resting | None:
            return None if raw is None else Resting(
                Decimal(raw["price"]), Decimal(raw["quantity"]), int(raw["posted_ns"]),
                Decimal(raw.get("filled", "0")))

        self.books = {iid: TokenBook(Decimal(raw["position"]), quote(raw.get("bid")),
                                     quote(raw.get("ask")), raw.get("last_change_ns"),
                                     str(raw.get("reset") or ""))
                      for iid, raw in state.get("tokens", {}).items()}
        self.ofi.set_state(state.get("ofi", {}))
        self._restored, self._reconciled = True, set()

    # -- the steps --------------------------------------------------------------------
    def _quotes(self, inst: Instrument) -> bool:
        """Whether this strategy quotes ``inst`` (configured tokens, else every binary)."""
        if self._wanted_tokens:
            return inst.id in self._wanted_tokens or inst.symbol in self._wanted_tokens
        return inst.kind == "binary"

    @staticmethod
    def _book_fills(st: TokenBook, position: Decimal) -> None:
        """Book the position change since the last look against the side that causes it."""
        change, st.position = position - st.position, position
        if change == 0:
            return
        label = "bid" if change > 0 else "ask"
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

    def _wanted(self, plan: QuotePlan, label: str, position: Decimal, inst: Instrument
                ) -> tuple[Wanted | None, str]:
        """The side to post now, sized within the limits, or None and why not (no edge,
        adverse flow, the inventory limit, nothing to sell)."""
        s = self.settings
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

    def _act(self, st: TokenBook, iid: str, now: int, plan: QuotePlan,
             wanted: dict[str, Wanted | None], why_not: dict[str, str],
             touch: tuple[Decimal, Decimal], mode: str) -> list[Intent | CancelIntent]:
        """Cancel, then post, as the rules in the module docstring say."""
        s = self.settings
        waited = st.last_change_ns is None or now - st.last_change_ns >= s.min_requote_s * _NS
        urgent: list[str] = []  # reasons to cancel now
        moves: list[str] = []  # reasons to cancel and post again once the interval passed
        for label in _SIDES:
            have, want = st.quote(label), wanted[label]
            if have is None:
                continue
            crosses = have.price >= touch[1] if label == "bid" else have.price <= touch[0]
            if want is None:
                urgent.append(f"{label} {have.price} cancelled: {why_not[label]}")
            elif crosses:
                urgent.append(f"{label} {have.price} would cross the touch "
                              f"{touch[0]}/{touch[1]}")
            elif want.quote.price != have.price:
                moves.append(f"{label} {have.price} -> {want.quote.price}")
            elif s.refresh_s and now - have.posted_ns >= s.refresh_s * _NS:
                moves.append(f"{label} {have.price} refreshed after {s.refresh_s:g}s")
        if st.reset:
            urgent.append(st.reset)
        working = {label for label in _SIDES if st.quote(label) is not None}
        out: list[Intent | CancelIntent] = []
        if urgent or (moves and waited):
            out.extend(self._cancel(st, iid, now, "; ".join(urgent + moves)))
        elif moves:
            return out  # a better price waits for min_requote_s
        for label in _SIDES:
            want = wanted[label]
            if want is None or st.quote(label) is not None:
                continue
            # A side cancelled just now only because the cancel covers the whole token
            # goes back at once; a new side waits for the interval (no flapping).
            if (out and label in working) or waited:
                out.append(self._post(st, iid, now, plan, label, want, mode))
        if out:
            st.last_change_ns = now
        return out

    def _cancel(self, st: TokenBook, iid: str, now: int, reason: str) -> list[CancelIntent]:
        """Cancel every working order of the slot on ``iid`` and forget the quotes."""
        st.bid = st.ask = None
        st.reset = ""
        st.last_change_ns = now
        return [CancelIntent(self.name, iid, f"pm_maker: {reason}")]

    def _post(self, st: TokenBook, iid: str, now: int, plan: QuotePlan, label: str,
              want: Wanted, mode: str) -> Intent:
        tif = self.settings.time_in_force
        post_only = tif == "post_only" or (tif == "auto" and mode != "live")
        quote = want.quote
        st.set_quote(label, Resting(quote.price, want.size, now))
        return Intent(self.name, iid, quote.side, quantity=want.size, limit_price=quote.price,
                      order_type=OrderType.LIMIT,
                      time_in_force=TimeInForce.POST_ONLY if post_only else TimeInForce.GTC,
                      reduce_only=want.reduce_only, decision_price=plan.mid,
                      reason=f"pm_maker: {quote.explain(plan)}")


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step
