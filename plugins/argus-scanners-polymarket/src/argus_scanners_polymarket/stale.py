"""Stateful scanners: ``StaleQuoteScanner`` and ``SpikeScanner`` (state kept across scans).

**stale** -- a quote left behind after its event's other outcomes moved.  For outcome ``i``
of an exhaustive negRisk event whose every outcome has a two-sided YES book (mid ``m_j``):

    fair_i = 1 - sum_{j != i} m_j            (the others' implied probabilities)

The scanner remembers ``R_i = sum_{j != i} m_j`` as of the last change of ``i``'s own
books (YES and NO), or of the event's outcome set (a market added or removed changes the
sum without any quote moving: the reference is taken afresh).  Token ``i`` is *stale* when
its books are at least ``min_age_s`` old and ``|sum_{j != i} m_j - R_i| >=
move_threshold``.  Then each of its ask ladders is bought
while ``p + f(p) <= v - min_gap``, with ``v = fair_i`` for YES and ``1 - fair_i`` for NO
(``f = FeeSchedule.unit_fee``); reported when the condition held on ``persistence_scans``
consecutive scans and the size is at least ``min_depth``.  ``expected_profit = sum q (v -
p) - fees`` is an estimate against a fair value: research lane, ``risk_free=False``.

**spike** -- a sudden move on a thin book, likely to revert.  Per token the reference is an
EMA of the mid with time constant ``window_s``: ``ref += (1 - exp(-dt / window_s)) (mid -
ref)``, frozen while a spike is in progress (so the spike is measured against the
pre-spike level).  A *down-spike* is ``ref - mid >= min_move`` with the ask's top size at
most ``max_depth`` (thin: a deep move is information, not noise), seen on
``persistence_scans`` consecutive scans.  The fade buys the token's top ask ``a`` (size
``q``): expected exit ``x = mid + reversion_fraction (ref - mid)``, edge per share ``x - a -
f(a)``; reported when positive.  An up-spike is a down-spike of the complement token
(seen on its own book).  Research lane, ``risk_free=False``.

State is in memory (``get_state``/``set_state`` give it as JSON-able data, but the core
does not checkpoint scanners yet).
"""

from __future__ import annotations

import math
import zlib
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

import numpy as np

from argus_core import Event, Leg, MarketState, Opportunity, Outcome, Scanner, Side
from argus_scanners_polymarket.common import (
    LOT,
    RESEARCH,
    Ladders,
    Walk,
    buy_limit,
    by_profit,
    core_event_id,
    dec,
    edge,
    event_id_for,
    lane_reason,
    taker_tick,
    tradeable,
    walk_asks,
    walk_ladder,
)
from argus_scanners_polymarket.config import PmScannersSettings, SpikeSettings, StaleSettings
from argus_scanners_polymarket.touch import EPS, TouchTable, touch_table


def _mid(market: MarketState, iid: str) -> float | None:
    book = market.books.get(iid)
    if book is None or not book.bids or not book.asks or not tradeable(market, iid):
        return None
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    return (bid + ask) / 2


class StaleQuoteScanner(Scanner):
    """Quotes left behind after the event's other outcomes moved.

    ``incremental=True``: the outcomes of the eligible events are laid out once per
    change of the event set (rows of the shared touch table), and every scan computes the
    mids, the events' sums (``np.bincount``: the loop's order of additions), the version
    checks, ages and moves of all outcomes in one vectorised step; the exact walks run only
    for outcomes whose others moved and whose best ask passes a float pre-check (margin
    :data:`EPS`).  ``incremental=False``: the per-event reference loop."""

    name: ClassVar[str] = "stale"

    def __init__(self, settings: PmScannersSettings | StaleSettings | None = None, *,
                 incremental: bool = True) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.stale
        self.settings = settings or StaleSettings()
        self.incremental = incremental
        self.ladders = Ladders()
        #: YES token -> [its books' versions, R_i, consecutive scans the condition held]
        #: (the reference loop's state, and what the columns below are loaded from)
        self._state: dict[str, list[Any]] = {}
        self._layout: _Layout | None = None

    def get_state(self) -> dict[str, Any]:
        """JSON-able state (reference sums and persistence counters)."""
        tokens = {k: list(v) for k, v in self._state.items()}
        if self._layout is not None:
            tokens.update(self._layout.state())
        return {"tokens": tokens}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        self._state = {k: list(v) for k, v in state.get("tokens", {}).items()}
        self._layout = None

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Stale YES/NO ladders of every exhaustive negRisk event, best first."""
        if not self.incremental:
            return self.reference_scan(market, ts_ns)
        s = self.settings
        t = touch_table(market)
        lay = self._layout
        if lay is None or lay.key != (t.static_gen, len(t)):
            if lay is not None:
                self._state.update(lay.state())
            lay = self._layout = _Layout(market, t, self._state)
        if not len(lay.yes):
            return []
        yes, no = lay.yes, lay.no
        usable = t.usable(market)
        has_no = no >= 0
        no_r = np.where(has_no, no, 0)
        valid = usable[yes] & ~np.isnan(t.bid[yes]) & ~np.isnan(t.ask[yes])
        mids = (t.bid[yes] + t.ask[yes]) / 2
        bad = np.bincount(lay.event, weights=~valid, minlength=lay.n_events)
        totals = np.bincount(lay.event, weights=np.where(valid, mids, 0.0),
                             minlength=lay.n_events)
        ok = (bad == 0)[lay.event]
        others = totals[lay.event] - mids
        vy = t.version[yes]
        vn = np.where(has_no, t.version[no_r], -1)
        newest = np.where(has_no, np.maximum(t.ts[yes], t.ts[no_r]), t.ts[yes])
        reset = ok & (~lay.has | (lay.vy != vy) | (lay.vn != vn))
        lay.vy[reset], lay.vn[reset], lay.r[reset], lay.count[reset] = (
            vy[reset], vn[reset], others[reset], 0)
        lay.has[reset] = True
        kept = ok & ~reset
        age_s = (ts_ns - newest) / 1e9
        quiet = kept & ((age_s < s.min_age_s)
                        | (np.abs(others - lay.r) < float(s.move_threshold)))
        lay.count[quiet] = 0
        moved = kept & ~quiet
        gap = float(s.min_gap) - EPS
        with np.errstate(invalid="ignore"):
            yes_pre = usable[yes] & (t.ask[yes] + t.ask_fee[yes] <= 1 - others - gap)
            no_pre = has_no & usable[no_r] & (t.ask[no_r] + t.ask_fee[no_r] <= others - gap)
        lay.count[moved & ~yes_pre & ~no_pre] = 0  # no side can fill: no hit
        out: list[Opportunity] = []
        for k in np.flatnonzero(moved & (yes_pre | no_pre)).tolist():
            o = lay.outcomes[k]
            hits = self._hits(market, o, float(others[k]))
            lay.count[k] = lay.count[k] + 1 if hits else 0
            if lay.count[k] >= s.persistence_scans:
                out.extend(self._findings(o, hits, float(others[k]), float(lay.r[k]),
                                          int(newest[k]), float(age_s[k]), int(lay.count[k]),
                                          lay.event_ids[k], ts_ns))
        return by_profit(out)

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The per-event reference loop over ``market.events``."""
        found: list[Opportunity] = []
        for ev in market.events.values():
            if _eligible(ev):
                found.extend(self._event(market, ev, ts_ns))
        return by_profit(found)

    def _event(self, market: MarketState, ev: Event, ts_ns: int) -> list[Opportunity]:
        s = self.settings
        mids = [_mid(market, o.yes_instrument_id) for o in ev.outcomes]
        if any(m is None for m in mids):
            return []
        total = sum(m for m in mids if m is not None)
        sig = outcome_signature(ev)
        out = []
        for o, m in zip(ev.outcomes, mids, strict=True):
            assert m is not None
            others = total - m
            books = [market.books.get(i) for i in (o.yes_instrument_id, o.no_instrument_id)]
            versions = [b.version if b is not None else -1 for b in books]
            newest = max(b.ts_ns for b in books if b is not None)
            st = self._state.get(o.yes_instrument_id)
            if st is None or st[0] != versions or not _same_outcomes(st, sig):
                self._state[o.yes_instrument_id] = [versions, others, 0, sig]
                continue
            age_s = (ts_ns - newest) / 1e9
            if age_s < s.min_age_s or abs(others - st[1]) < float(s.move_threshold):
                st[2] = 0
                continue
            hits = self._hits(market, o, others)
            st[2] = st[2] + 1 if hits else 0
            if st[2] < s.persistence_scans:
                continue
            out.extend(self._findings(o, hits, others, st[1], newest, age_s, st[2],
                                      event_id_for(market, o.yes_instrument_id, ev.event_id),
                                      ts_ns))
        return out

    def _hits(self, market: MarketState, o: Outcome, others: float
              ) -> list[tuple[str, Decimal, Walk]]:
        """Each of ``o``'s ask ladders bought below its fair value, with the depth."""
        s = self.settings
        # a token pays 0 or 1: the others' mids summing above 1 (or a YES fair below 0)
        # value its NO at no more than 1 (before: "fair 1.3" for a NO, a 0.35 edge on an
        # ask of 0.95, red team round 40)
        fair = min(max(dec(round(1 - others, 9)), Decimal(0)), Decimal(1))
        hits = []
        for iid, value in ((o.yes_instrument_id, fair), (o.no_instrument_id, 1 - fair)):
            book = market.books.get(iid)
            if book is None or not book.asks or not tradeable(market, iid):
                continue
            limit = value - s.min_gap

            def keep(p: Decimal, f: Decimal, limit: Decimal = limit) -> bool:
                return p + f <= limit

            schedule, tick = market.fee_schedule(iid), taker_tick(market, iid)
            if self.incremental:  # the ladder converted once per book version
                walk = walk_ladder(self.ladders.get(iid, book.version, book.ask_levels(),
                                                    schedule), schedule, keep=keep, tick=tick)
            else:
                walk = walk_asks(book.ask_levels(), schedule, keep=keep, tick=tick)
            inst = market.instruments.get(iid)
            floor = max(s.min_depth, LOT, inst.min_size if inst is not None else LOT)
            if walk.quantity >= floor:  # deep enough, and an order the venue takes
                hits.append((iid, value, walk))
        return hits

    def _findings(self, o: Outcome, hits: list[tuple[str, Decimal, Walk]], others: float,
                  reference: float, newest: int, age_s: float, held: int, event_id: str,
                  ts_ns: int) -> list[Opportunity]:
        out = []
        for iid, value, walk in hits:
            profit = value * walk.quantity - walk.value - walk.fees
            side = "YES" if iid == o.yes_instrument_id else "NO"
            out.append(Opportunity(
                opportunity_id=f"stale:{iid}:{newest}", scanner=self.name, ts_ns=ts_ns,
                kind="stale_quote", legs=(Leg(iid, Side.BUY, walk.limit, walk.quantity),),
                edge_per_unit=edge(profit, walk.quantity), max_size=walk.quantity,
                expected_profit=profit, costs=walk.fees, risk_free=False,
                event_id=event_id,
                lane=RESEARCH,
                reason=lane_reason(RESEARCH, (
                    f"{side} of {o.name!r} quoted {age_s:.0f}s ago while the other "
                    f"outcomes moved {others - reference:+.4f}; fair {value} (1 - others' "
                    f"mids), {walk.quantity} asked up to {walk.limit}; held "
                    f"{held} scans"))))
        return out


def _eligible(ev: Event) -> bool:
    """An exhaustive negRisk event whose fair values ``1 - sum of the others' mids`` mean
    something: open, at least two outcomes, no placeholder outcome (an augmented "Other"
    stands for outcomes not listed, whatever ``exhaustive`` says) and no token listed
    twice (its mid would count twice in the others' sum)."""
    if not (ev.neg_risk and ev.exhaustive and not ev.closed and len(ev.outcomes) >= 2):
        return False
    if any(o.placeholder for o in ev.outcomes):
        return False
    tokens = [iid for o in ev.outcomes for iid in (o.yes_instrument_id, o.no_instrument_id)]
    return len(set(tokens)) == len(tokens)


def outcome_signature(ev: Event) -> int:
    """A checksum of ``ev``'s outcome set (its YES ids in order).  ``R_i`` is a sum over
    the *other* outcomes: a market added to (or removed from) the event changes that sum
    without any quote moving, so a reference taken over another outcome set is dropped
    and taken afresh (else listing a new outcome at 0.05 reads as "the others moved
    +0.05" and flags every old outcome stale)."""
    return zlib.crc32("\x1f".join(o.yes_instrument_id for o in ev.outcomes).encode())


def _same_outcomes(st: list[Any], sig: int) -> bool:
    """Whether a token's state was taken over the outcome set ``sig`` (a state from
    before the signature was kept has three fields: taken as the same)."""
    return len(st) < 4 or st[3] == sig


class _Layout:
    """The outcomes of the eligible events as touch-table rows, with the stale scanner's
    state as columns (one slot per outcome, events contiguous in ``market.events`` order)."""

    def __init__(self, market: MarketState, t: TouchTable, state: dict[str, list[Any]]
                 ) -> None:
        self.key = (t.static_gen, len(t))
        self.outcomes: list[Outcome] = []
        self.event_ids: list[str] = []
        yes, no, event = [], [], []
        sigs: list[int] = []
        index = t.index
        n_events = 0
        for ev in market.events.values():
            if not _eligible(ev):
                continue
            if any(o.yes_instrument_id not in index for o in ev.outcomes):
                continue  # a YES without a book: no mid, the loop skips the event too
            sig = outcome_signature(ev)
            for o in ev.outcomes:
                sigs.append(sig)
                self.outcomes.append(o)
                self.event_ids.append(event_id_for(market, o.yes_instrument_id, ev.event_id))
                yes.append(index[o.yes_instrument_id])
                no.append(index.get(o.no_instrument_id, -1))
                event.append(n_events)
            n_events += 1
        self.n_events = n_events
        self.yes = np.array(yes, dtype=np.int64)
        self.no = np.array(no, dtype=np.int64)
        self.event = np.array(event, dtype=np.int64)
        n = len(yes)
        self.vy = np.zeros(n, dtype=np.int64)
        self.vn = np.zeros(n, dtype=np.int64)
        self.r = np.zeros(n)
        self.count = np.zeros(n, dtype=np.int64)
        self.has = np.zeros(n, dtype=np.bool_)
        self.sigs = sigs  # per slot: its event's outcome_signature
        for k, o in enumerate(self.outcomes):
            st = state.pop(o.yes_instrument_id, None)
            if st is not None and _same_outcomes(st, sigs[k]):
                (self.vy[k], self.vn[k]), self.r[k], self.count[k] = st[:3]
                self.has[k] = True

    def state(self) -> dict[str, list[Any]]:
        """The slots' state in :meth:`StaleQuoteScanner.get_state`'s shape."""
        return {self.outcomes[k].yes_instrument_id: [
            [int(self.vy[k]), int(self.vn[k])], float(self.r[k]), int(self.count[k]),
            self.sigs[k]] for k in np.flatnonzero(self.has).tolist()}


class SpikeScanner(Scanner):
    """Sudden moves on thin books, faded when they persist.

    ``incremental=True``: the state is numpy columns over the shared touch table's rows,
    and every book's EMA, spike test and counter are updated in one vectorised step
    (the same float operations in the same order as the reference loop: ``exp`` through
    ``math.exp`` once per distinct elapsed time, so the states stay bit-identical); the
    exact ``Decimal`` fade is built only for the tokens whose spike has persisted.
    ``incremental=False``: the per-book reference loop."""

    name: ClassVar[str] = "spike"

    def __init__(self, settings: PmScannersSettings | SpikeSettings | None = None, *,
                 incremental: bool = True) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.spike
        self.settings = settings or SpikeSettings()
        self.incremental = incremental
        #: token -> [reference mid (EMA), last update ts_ns, consecutive spike scans]
        #: (the reference loop's state; the incremental one keeps columns, below)
        self._state: dict[str, list[float]] = {}
        self._ids: list[str] = []
        self._ref = np.zeros(0)
        self._last = np.zeros(0)
        self._count = np.zeros(0)
        self._has = np.zeros(0, dtype=np.bool_)

    def get_state(self) -> dict[str, Any]:
        """JSON-able state (EMA references and persistence counters)."""
        tokens = {k: list(v) for k, v in self._state.items()}
        for r in np.flatnonzero(self._has).tolist():
            tokens[self._ids[r]] = [float(self._ref[r]), float(self._last[r]),
                                    float(self._count[r])]
        return {"tokens": tokens}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        self._state = {k: list(v) for k, v in state.get("tokens", {}).items()}
        self._has[:] = False  # the incremental scan loads them into its columns

    def _columns(self, ids: list[str], index: dict[str, int]) -> None:
        n = len(ids)
        if n > len(self._has):
            grow = n - len(self._has)
            self._ref = np.concatenate([self._ref, np.zeros(grow)])
            self._last = np.concatenate([self._last, np.zeros(grow)])
            self._count = np.concatenate([self._count, np.zeros(grow)])
            self._has = np.concatenate([self._has, np.zeros(grow, dtype=np.bool_)])
        self._ids = ids
        if self._state:  # a restored state (or one kept before a row existed)
            for iid in [i for i in self._state if i in index]:
                r = index[iid]
                self._ref[r], self._last[r], self._count[r] = map(float, self._state.pop(iid))
                self._has[r] = True

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Persistent down-spikes on thin books, best first."""
        if not self.incremental:
            return self.reference_scan(market, ts_ns)
        s = self.settings
        t = touch_table(market)
        self._columns(t.ids, t.index)
        n = len(t)
        ref, last, count, has = self._ref[:n], self._last[:n], self._count[:n], self._has[:n]
        valid = t.usable(market) & ~np.isnan(t.bid) & ~np.isnan(t.ask)
        mid = (t.bid + t.ask) / 2
        fresh = valid & ~has
        seen = valid & has
        with np.errstate(invalid="ignore"):
            spiking = seen & (ref - mid >= float(s.min_move)) & (
                t.ask_size <= float(s.max_depth))
        calm = np.flatnonzero(seen & ~spiking)
        if len(calm):
            # dt_s = max(ts - last, 0) / 1e9, as the loop computes it (the int ts as a float)
            dt_s = np.maximum(float(ts_ns) - last[calm], 0.0) / 1e9
            d0 = float(dt_s[0])
            if (dt_s == d0).all():  # every calm book last seen at one scan: one factor
                ref[calm] = ref[calm] + (1 - math.exp(-d0 / s.window_s)) * (
                    mid[calm] - ref[calm])
            else:
                uniq, inverse = np.unique(dt_s, return_inverse=True)
                decay = np.array([1 - math.exp(-d / s.window_s) for d in uniq.tolist()])
                ref[calm] = ref[calm] + decay[inverse] * (mid[calm] - ref[calm])
            last[calm] = float(ts_ns)
            count[calm] = 0.0
        hot = np.flatnonzero(spiking)
        count[hot] += 1
        init = np.flatnonzero(fresh)
        ref[init], last[init], count[init] = mid[init], float(ts_ns), 0.0
        has[init] = True
        out: list[Opportunity] = []
        ids = t.ids
        for r in hot[count[hot] >= s.persistence_scans].tolist():
            opp = self._fade(market, ids[r], float(mid[r]), float(ref[r]), float(count[r]),
                             ts_ns)
            if opp is not None:
                out.append(opp)
        return by_profit(out)

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The per-book loop over ``market.books`` (the reference of the tests)."""
        s = self.settings
        out: list[Opportunity] = []
        for iid, book in market.books.items():
            mid = _mid(market, iid)
            if mid is None:
                continue
            st = self._state.get(iid)
            if st is None:
                self._state[iid] = [mid, float(ts_ns), 0.0]
                continue
            ref, last, count = st
            top_size = float(book.ask_levels()[0, 1])
            spiking = ref - mid >= float(s.min_move) and top_size <= float(s.max_depth)
            if not spiking:
                dt_s = max(ts_ns - last, 0) / 1e9
                st[0] = ref + (1 - math.exp(-dt_s / s.window_s)) * (mid - ref)
                st[1], st[2] = float(ts_ns), 0.0
                continue
            st[2] = count = count + 1
            if count < s.persistence_scans:
                continue
            opp = self._fade(market, iid, mid, ref, count, ts_ns)
            if opp is not None:
                out.append(opp)
        return by_profit(out)

    def _fade(self, market: MarketState, iid: str, mid: float, ref: float, count: float,
              ts_ns: int) -> Opportunity | None:
        """The exact fade of a persistent spike: buy the top ask."""
        s = self.settings
        book = market.books[iid]
        ask_levels = book.ask_levels()
        top_size = float(ask_levels[0, 1])
        ask = dec(ask_levels[0, 0])
        limit = buy_limit(ask, taker_tick(market, iid))  # on the tick in force
        if limit is None:
            return None
        # an order the venue takes: whole lots, at least the instrument's minimum size
        qty = dec(top_size).quantize(LOT, rounding=ROUND_DOWN)
        inst = market.instruments.get(iid)
        if inst is not None and qty < inst.min_size:
            return None
        schedule = market.fee_schedule(iid)
        exit_value = dec(round(mid + float(s.reversion_fraction) * (ref - mid), 9))
        fees = schedule.fee(ask, qty, maker=False)
        profit = (exit_value - ask) * qty - fees
        if profit <= 0 or qty <= 0:
            return None
        return Opportunity(
            opportunity_id=f"spike:{iid}:{book.ts_ns}", scanner=self.name, ts_ns=ts_ns,
            kind="spike_fade", legs=(Leg(iid, Side.BUY, limit, qty),),
            edge_per_unit=edge(profit, qty), max_size=qty, expected_profit=profit,
            costs=fees, risk_free=False,
            event_id=event_id_for(market, iid, core_event_id(market, iid)),
            lane=RESEARCH,
            reason=lane_reason(RESEARCH, (
                f"mid {mid:.4f} fell {ref - mid:.4f} below its {s.window_s:g}s EMA "
                f"{ref:.4f} on a thin ask ({top_size:g} shares) for {int(count)} scans; "
                f"fade to {exit_value} ({s.reversion_fraction} reversion)")))
