"""``ResolutionScanner``: decided markets still quoted below their payout.

A token is *decided* when

* ``resolved`` -- the venue reported its resolution (a ``Settlement`` in the market state)
  at payout ``P > 0`` (1 for the winning token); the horizon is ``tau =
  redemption_delay``.  **Research** lane, ``risk_free=False``: the core's market gate
  refuses every order on a settled instrument (its positions were closed at the
  settlement; one bought after it would never be), so Argus cannot trade it: a flag for
  a person to act on at the venue;
* ``near_certain`` -- unresolved, its best bid is at least ``near_certain_price`` and its
  event ends within ``max_hours_to_expiry``; assumed payout ``P = 1`` but it can still
  lose, so ``risk_free=False``, **research** lane; ``tau = max(end - now, 0) +
  redemption_delay``.

Buying down the ask ladder ``(p_k, q_k)``, level ``k`` is taken while both

    e_k = P - p_k - f(p_k) >= max(min_edge, > 0)              (net edge per share)
    e_k / (p_k + f(p_k)) * YEAR / max(tau, min_horizon) >= min_annualized_return

where ``f = FeeSchedule.unit_fee`` of the venue's schedule for the token
(``market.fee_schedule``).  The reported opportunity is exact: ``Q = sum q_k`` (lots of
0.01, capped by ``max_size``), ``costs = sum FeeSchedule.fee(p_k, q_k)`` (one taker fill
per level), ``expected_profit = P Q - sum p_k q_k - costs``, ``edge_per_unit =
expected_profit / Q``, one IOC buy leg limited at the deepest price taken.

Ids name the book state, ``resolution:<kind>:<token>:<book ts_ns>``, so a re-scan of an
unchanged book reports the same opportunity (the core acts on an id once).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import ClassVar

import numpy as np

from argus_core import MarketState, Opportunity, Scanner
from argus_scanners_polymarket.common import (
    NS_PER_HOUR,
    NS_PER_YEAR,
    RESEARCH,
    Ladders,
    TokenRef,
    buy_leg,
    by_profit,
    edge,
    event_id_for,
    lane_reason,
    reworded,
    taker_tick,
    token_map,
    tradeable,
    walk_asks,
    walk_ladder,
)
from argus_scanners_polymarket.config import PmScannersSettings, ResolutionSettings
from argus_scanners_polymarket.touch import EPS, RowCache, keys_of, stamped, touch_table

_YEAR = Decimal(NS_PER_YEAR)


def annualized(edge_per_share: Decimal, cost_per_share: Decimal, horizon_ns: int) -> Decimal:
    """Simple annualised return of paying ``cost_per_share`` to net ``edge_per_share``
    after ``horizon_ns``: ``edge / cost * YEAR / horizon``."""
    return edge_per_share / cost_per_share * _YEAR / Decimal(horizon_ns)


class ResolutionScanner(Scanner):
    """Resolved or near-certain tokens quoted below payout net of fees and time.

    ``incremental=True`` (the default): a vectorised float pre-check over the shared
    :class:`~argus_scanners_polymarket.touch.TouchTable` (every book, every scan) selects
    the tokens whose best ask passes the test with a margin of :data:`EPS`; the exact
    ``Decimal`` walk builds their findings, reused while the row and (near-certain) the
    scan time are unchanged.  ``incremental=False``: the per-book reference loop."""

    name: ClassVar[str] = "resolution"

    def __init__(self, settings: PmScannersSettings | ResolutionSettings | None = None, *,
                 incremental: bool = True) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.resolution
        self.settings = settings or ResolutionSettings()
        self.incremental = incremental
        self.ladders = Ladders()
        self.cache = RowCache()
        #: near-certain token -> what its last exact walk decided and wrote that depends on
        #: the time to the event's end (``_holds`` re-checks it at a later scan time)
        self._timed: dict[str, _Timed] = {}
        self._checked: dict[str, int] = {}  # token -> the time its walk last held at

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every decided token with a profitable ask ladder, most profitable first."""
        if not self.incremental:
            return self.reference_scan(market, ts_ns)
        return stamped([self.unstamped(market, ts_ns)], ts_ns)

    def unstamped(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The incremental scan's findings as cached (``ts_ns`` of the scan that built
        each), in row order: what :meth:`scan` restamps and sorts, and what ``ranked``
        reads to recognise an unchanged finding by identity."""
        s = self.settings
        t = touch_table(market)
        now = max(ts_ns, market.now_ns)
        delay_ns = int(s.redemption_delay_hours * NS_PER_HOUR)
        floor_ns = int(s.min_horizon_hours * NS_PER_HOUR)
        ok = t.usable(market, settled_ok=True) & ~np.isnan(t.ask)
        settled = ~np.isnan(t.settle)
        to_end = t.end_ts - now
        with np.errstate(invalid="ignore"):
            near = (ok & ~settled & (t.event >= 0) & (t.end_ts != -1) & ~t.closed
                    & (to_end <= int(s.max_hours_to_expiry * NS_PER_HOUR))
                    & (t.bid >= float(s.near_certain_price)))
            resolved = ok & settled & (t.settle > 0)
        payout = np.where(resolved, t.settle, 1.0)
        horizon = np.maximum(np.where(resolved, delay_ns, np.maximum(to_end, 0) + delay_ns),
                             floor_ns).astype(np.float64)
        cost = t.ask + t.ask_fee
        e_up = payout - cost + EPS  # an upper bound of the exact first-level edge
        with np.errstate(invalid="ignore", divide="ignore"):
            rate_up = e_up / cost * (NS_PER_YEAR / horizon) * (1 + 1e-9)
            pre = ((resolved | near) & (e_up > 0) & (e_up >= float(s.min_edge))
                   & (rate_up >= float(s.min_annualized_return)))
        rows = np.flatnonzero(pre)
        refs, ids = t.refs, t.ids

        def build(r: int) -> list[Opportunity]:
            return self._token(market, ids[r], refs.get(ids[r]), now, ts_ns)

        delay_floor = (delay_ns, floor_ns)

        def still(r: int, cached: list[Opportunity]) -> bool | list[Opportunity]:
            # a near-certain finding depends on the time to the event's end
            return bool(resolved[r]) or self._holds(ids[r], now, cached, delay_floor)

        out = self.cache.collect(rows, keys_of(t.row_gen[rows]), build, still,
                                 verify=t.terms_held(market))
        return [o for found in out for o in found]

    @staticmethod
    def _texts(end_ns: int, now: int, horizon: int, rate: Decimal) -> tuple[str, str, str]:
        """The figures of a near-certain reason that move with time."""
        return (f"{max(end_ns - now, 0) / NS_PER_HOUR:.1f}", f"{float(rate):.1%}",
                f"{horizon / NS_PER_HOUR:.1f}")

    def _holds(self, iid: str, now: int, cached: list[Opportunity],
               delay_floor: tuple[int, int]) -> bool | list[Opportunity]:
        """Whether ``iid``'s near-certain walk, built at an earlier scan time on the same
        book, decides every level alike at ``now`` (False: build it again); if so, the
        cached finding (True) or, when its reason's figures moved, a re-worded copy.

        Each level's annualised return is ``e / cost * YEAR / horizon`` (:func:`annualized`,
        evaluated left to right); the walk kept ``e / cost * YEAR``, which does not move
        with time, so a re-check divides once: the same ``Decimal`` operations in the same
        order as a new walk, so the same decisions and the same texts."""
        if self._checked.get(iid) == now:
            return True  # built or checked at this very time (a full scan again)
        timed = self._timed.get(iid)
        if timed is None:
            return False
        end_ns, decisions, per_share, texts, reason = timed
        delay_ns, floor_ns = delay_floor
        horizon = max(max(end_ns - now, 0) + delay_ns, floor_ns)
        floor = self.settings.min_annualized_return
        h = Decimal(horizon)
        for yearly, taken in decisions:
            if (yearly / h >= floor) != taken:
                return False
        if per_share is None or reason is None or len(cached) != 1:
            holds = per_share is None and not cached
            if holds:
                self._checked[iid] = now
            return holds
        new_texts = self._texts(end_ns, now, horizon, per_share / h)
        self._checked[iid] = now
        if new_texts == texts:
            return True
        self._timed[iid] = (end_ns, decisions, per_share, new_texts, reason)
        return [reworded(cached[0], reason(new_texts))]

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The per-book loop over ``market.books`` (the reference of the tests)."""
        refs = token_map(market)
        now = max(ts_ns, market.now_ns)
        found: list[Opportunity] = []
        for iid in market.books:
            found.extend(self._token(market, iid, refs.get(iid), now, ts_ns))
        return by_profit(found)

    def _token(self, market: MarketState, iid: str, ref: TokenRef | None, now: int,
               ts_ns: int) -> list[Opportunity]:
        s = self.settings
        book = market.books[iid]
        delay_ns = int(s.redemption_delay_hours * NS_PER_HOUR)
        floor_ns = int(s.min_horizon_hours * NS_PER_HOUR)
        max_to_expiry_ns = int(s.max_hours_to_expiry * NS_PER_HOUR)
        if not book.asks or not tradeable(market, iid, settled_ok=True):
            return []
        settled = market.settled.get(iid)
        if settled is not None:
            if settled.price is None or settled.price <= 0:
                return []  # worthless, or voided (returned at cost: nothing to earn)
            kind, payout, horizon = "resolved", settled.price, delay_ns
            # research: the core's market gate refuses every order on a settled instrument
            # (a position bought after its settlement is never settled by the ledger), so
            # an executable finding was a veto each time its book moved (red team round 40)
            lane, risk_free = RESEARCH, False
            why = (f"resolved upstream at {settled.price} ({settled.reason or 'settlement'}); "
                   f"not traded: the core refuses orders on a settled instrument, redeem "
                   f"at the venue")
        else:
            if ref is None or ref.event.end_ts_ns is None or ref.event.closed:
                return []
            to_end = ref.event.end_ts_ns - now
            bid = book.best_bid()
            if to_end > max_to_expiry_ns or bid is None or bid < float(s.near_certain_price):
                return []
            kind, payout, horizon = "near_certain", Decimal(1), max(to_end, 0) + delay_ns
            lane, risk_free = RESEARCH, False
            why = ""  # written by reason() below: its hours move with time
        horizon = max(horizon, floor_ns)
        decisions: list[tuple[Decimal, bool]] = []
        h = Decimal(horizon)

        def keep(price: Decimal, unit_fee: Decimal) -> bool:
            e = payout - price - unit_fee
            if not (e > 0 and e >= s.min_edge):
                return False
            if not self.incremental:  # the reference: annualized() as written
                return annualized(e, price + unit_fee, horizon) >= s.min_annualized_return
            yearly = e / (price + unit_fee) * _YEAR  # annualized()'s operations but "/ h"
            taken = yearly / h >= s.min_annualized_return
            decisions.append((yearly, taken))  # _holds divides it again at a later time
            return taken

        schedule, tick = market.fee_schedule(iid), taker_tick(market, iid)
        if self.incremental:  # the ladder converted once per book version
            walk = walk_ladder(self.ladders.get(iid, book.version, book.ask_levels(), schedule),
                               schedule, keep=keep, max_qty=s.max_size, tick=tick)
        else:
            walk = walk_asks(book.ask_levels(), schedule, keep=keep, max_qty=s.max_size,
                             tick=tick)
        timed = kind == "near_certain" and ref is not None and ref.event.end_ts_ns is not None
        if timed:
            assert ref is not None and ref.event.end_ts_ns is not None
            self._timed[iid] = (ref.event.end_ts_ns, decisions, None, None, None)
            self._checked[iid] = now
        inst = market.instruments.get(iid)
        if walk.quantity <= 0 or (inst is not None and walk.quantity < inst.min_size):
            return []
        profit = payout * walk.quantity - walk.value - walk.fees
        if profit <= 0:
            return []
        avg = walk.value / walk.quantity
        cost = (walk.value + walk.fees) / walk.quantity
        per_share: Decimal | None = None
        if self.incremental:  # annualized(profit / Q, cost, horizon), its "* YEAR" kept
            per_share = yearly = profit / walk.quantity / cost * _YEAR
            rate = yearly / h
        else:
            rate = annualized(profit / walk.quantity, cost, horizon)
        name = ref.outcome.name if ref is not None else iid
        head = (f"buy {walk.quantity} of {name!r} at avg {avg:.6f} (limit {walk.limit}), "
                f"pays {payout}; ")
        if kind == "near_certain":
            bid_text = (f"best bid {book.best_bid()} >= {s.near_certain_price} with ")

            def reason(texts: tuple[str, str, str]) -> str:
                hours, rate_text, horizon_text = texts
                return lane_reason(lane, (
                    f"{head}{bid_text}{hours}h to the event's end; can still lose; "
                    f"{rate_text} annualised over {horizon_text}h"))
        else:
            def reason(texts: tuple[str, str, str]) -> str:
                return lane_reason(lane, f"{head}{why}; {texts[1]} annualised over {texts[2]}h")
        texts = ("", f"{float(rate):.1%}", f"{horizon / NS_PER_HOUR:.1f}")
        if timed:
            assert ref is not None and ref.event.end_ts_ns is not None
            end_ns = ref.event.end_ts_ns
            texts = self._texts(end_ns, now, horizon, rate)
            self._timed[iid] = (end_ns, decisions, per_share, texts, reason)
        return [Opportunity(
            opportunity_id=f"resolution:{kind}:{iid}:{book.ts_ns}",
            scanner=self.name, ts_ns=ts_ns, kind=kind, legs=(buy_leg(iid, walk),),
            edge_per_unit=edge(profit, walk.quantity), max_size=walk.quantity,
            expected_profit=profit, costs=walk.fees,
            lane=lane, reason=reason(texts), risk_free=risk_free,
            event_id=event_id_for(market, iid, ref.event.event_id if ref is not None else ""))]


#: a near-certain token's time-dependent parts: (event end, [(edge / cost * YEAR, taken) per
#: level walked], profit / cost * YEAR per share or None, the reason's moving figures, the
#: reason); a return over a horizon is the ``* YEAR`` part divided by it (:func:`annualized`)
_Timed = tuple[int, list[tuple[Decimal, bool]], Decimal | None,
               tuple[str, str, str] | None, Callable[[tuple[str, str, str]], str] | None]
