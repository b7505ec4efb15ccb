"""``NegRiskScanner``: rebalancing arbitrage across the outcomes of negRisk events.

Baskets (each pays a fixed amount whatever the outcome):

* ``long_rebalance`` -- buy one YES of every outcome of an exhaustive negRisk
  event: pays exactly 1.
* ``short_rebalance`` -- buy one NO of every outcome: exactly one NO loses, so
  it pays N - 1.
* ``sell_yes_basket`` (opt-in) -- sell one YES of every outcome above 1; needs
  YES inventory of every outcome.
* ``binary`` -- YES + NO of a binary market: pays 1.
* ``pair`` -- YES + NO of one outcome inside a negRisk event: pays 1.
* ``bounded_long`` (opt-in, large events) -- YES of the likeliest outcomes
  only; loses the basket cost if an omitted outcome wins, so it is reported
  with ``risk_free=False`` and the tail's probability.

The scan packs the books it needs into fixed-depth numpy arrays and walks the
baskets' legs jointly in a numba kernel (:mod:`argus_scanner_negrisk.kernel`).  It
is incremental: the core lists the books changed since the scanner's last call
(:meth:`MarketState.changes_since`), only those are repacked, and only the baskets
with a changed (or newly stale) book are walked again; every other basket keeps its
last result.  A book side is packed to its best level (``FIRST_LEVELS``) until a walk
runs off it, then ``max_levels`` deep.  The few baskets with a profitable size are
then recomputed exactly in ``Decimal`` at the lot-rounded size, with tick size, minimum
order size, taker fees and gas (reused while the levels the walk reads are unchanged).

Each finding's ``score`` is on the ``pmscanners`` ranking's 0-1 scale (:func:`score`)
and its ``event_id`` the legs' venue event id
(``Instrument.meta["event_id"]``, the Gamma event) when they carry one, else the core
event's.

Fees come from the venue, never from a copy of its formula here: each leg's
:class:`~argus_core.FeeSchedule` in force is ``market.fee_schedule(instrument)``
(the Polymarket venue's curve, with any ``[paper]`` overrides).  The kernel reads
``FeeSchedule.unit_fee`` once per distinct price level (packed beside the prices
when a book is repacked); the exact recomputation charges each leg-level fill
``FeeSchedule.fee``, exactly what the paper broker books.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal
from itertools import chain
from operator import attrgetter
from typing import ClassVar

import attrs
import numpy as np

from argus_core import (
    Event,
    FeeSchedule,
    Instrument,
    L2Book,
    Leg,
    MarketState,
    Opportunity,
    Scanner,
    Side,
    ticks_of,
)
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.events import (
    is_one_binary_market,
    pays_on_every_outcome,
    repeats_a_token,
)
from argus_scanner_negrisk.kernel import walk_baskets

log = logging.getLogger(__name__)

EXECUTABLE, RESEARCH = "executable", "research"  # the values of argus_core.Opportunity.lane
LOT = Decimal("0.01")
#: Levels packed per book side until a walk needs more: most walks stop at the best level
#: (measured at 300 changes per scan, 30k books: 1 level ~10 % faster than 4, 20 % than 8).
FIRST_LEVELS = 1
_VERSION = attrgetter("version")
_BOOK_STATE = attrgetter("version", "live", "ts_ns")
_PROFIT = attrgetter("expected_profit")
# Opportunity's slots: a re-stamped copy is built field by field (attrs.evolve re-runs
# every converter and validator, ~3x slower, on values that were validated already).
_OPP_FIELDS = tuple(f.name for f in attrs.fields(Opportunity))
_OPP_VALUES = attrgetter(*_OPP_FIELDS)
_OPP_SETTERS = tuple(vars(Opportunity)[name].__set__ for name in _OPP_FIELDS)
_OPP_SET_TS = vars(Opportunity)["ts_ns"].__set__
_OPP_SET_ID = vars(Opportunity)["opportunity_id"].__set__


def restamped(opp: Opportunity, ts_ns: int, opportunity_id: str | None = None) -> Opportunity:
    """``attrs.evolve(opp, ts_ns=ts_ns)`` (and ``opportunity_id``, when given), without
    re-validating the unchanged fields."""
    new = object.__new__(Opportunity)
    for setter, value in zip(_OPP_SETTERS, _OPP_VALUES(opp), strict=True):
        setter(new, value)
    _OPP_SET_TS(new, ts_ns)
    if opportunity_id is not None:
        _OPP_SET_ID(new, opportunity_id)
    return new


#: The ``pmscanners`` ranking's default weights and scales (its ``RankingSettings``), so
#: that a negRisk finding sorts beside the ranking's findings on one 0-1 scale in
#: ``argus scan`` and the report: edge, capacity and confidence; a basket has no
#: persistence, order-flow or competition term here (they score 0).
W_EDGE, W_CAPACITY, W_CONFIDENCE = 0.35, 0.15, 0.25
EDGE_SCALE, CAPACITY_SCALE = 0.05, 1000.0
#: Confidence of a basket that is not risk-free (``bounded_long``: the omitted tail).
BOUNDED_CONFIDENCE = 0.5


def score(edge_per_unit: Decimal, notional: Decimal, risk_free: bool) -> float:
    """A finding's score in [0, 0.75]: ``0.35 E + 0.15 K + 0.25 C`` with
    ``E = clip(edge_per_unit / 0.05, 0, 1)`` (edge per unit after taker fees and gas),
    ``K = min(1, log10(1 + notional) / log10(1 + 1000))`` (the legs' limit x quantity)
    and ``C`` 1 for a risk-free basket, 0.5 for a ``bounded_long`` one."""
    e = min(1.0, max(0.0, float(edge_per_unit) / EDGE_SCALE))
    k = min(1.0, math.log10(1.0 + float(notional)) / math.log10(1.0 + CAPACITY_SCALE))
    c = 1.0 if risk_free else BOUNDED_CONFIDENCE
    return W_EDGE * e + W_CAPACITY * k + W_CONFIDENCE * c


def gamma_event_id(basket: Basket, market: MarketState) -> str:
    """The event id a finding reports: the legs' venue event id (``meta["event_id"]``, the
    Gamma event on Polymarket) when an instrument carries a non-empty one, else the core
    event's id.  The Polymarket venue makes each binary market its own core event
    (``<gamma id>:<market id>``), so every scanner reports the Gamma id to agree."""
    instruments = market.instruments
    for iid in basket.instrument_ids:
        inst = instruments.get(iid)
        if inst is not None:
            eid = inst.meta.get("event_id")
            if eid is not None and str(eid):
                return str(eid)
    return basket.event_id


@attrs.frozen
class Basket:
    """A basket the kernel walks: its legs (instrument ids), side and payout per unit."""

    kind: str
    event_id: str
    instrument_ids: tuple[str, ...]
    side: Side
    payout: Decimal
    names: tuple[str, ...] = ()
    risk_free: bool = True
    note: str = ""
    #: what tells this basket from the event's others of its kind (a pair: its outcome's
    #: YES token), in its opportunity id; "" when the event has one basket of the kind
    tag: str = ""


def static_baskets(events: list[Event], s: NegRiskSettings,
                   instruments: Mapping[str, Instrument] | None = None
                   ) -> tuple[list[Basket], list[Event]]:
    """The baskets whose legs do not depend on prices, and the large events left for
    bounded-subset mode (``instruments``: the market's, whose ``meta`` can say an
    outcome is a placeholder: :func:`~argus_scanner_negrisk.events.pays_on_every_outcome`)."""
    out: list[Basket] = []
    large: list[Event] = []
    for ev in events:
        if ev.closed:
            continue
        if repeats_a_token(ev):
            log.warning("negrisk: event %s lists a token more than once; no basket from it",
                        ev.event_id)
            continue
        names = tuple(o.name for o in ev.outcomes)
        n = len(ev.outcomes)
        if ev.neg_risk:
            if s.pairs:
                for o in ev.outcomes:
                    if o.placeholder:
                        continue
                    out.append(Basket("pair", ev.event_id, (o.yes_instrument_id,
                                                            o.no_instrument_id),
                                      Side.BUY, Decimal(1), (f"{o.name} YES", f"{o.name} NO"),
                                      tag=o.yes_instrument_id))
            if not pays_on_every_outcome(ev, instruments) or n < 2:
                continue
            if n > s.max_outcomes:
                if s.bounded_subset:
                    large.append(ev)
                continue
            yes = tuple(o.yes_instrument_id for o in ev.outcomes)
            if s.long_rebalance:
                out.append(Basket("long_rebalance", ev.event_id, yes, Side.BUY, Decimal(1),
                                  names))
            if s.short_rebalance and n > 2:  # with 2 outcomes NO_a + NO_b is the YES basket
                out.append(Basket("short_rebalance", ev.event_id,
                                  tuple(o.no_instrument_id for o in ev.outcomes), Side.BUY,
                                  Decimal(n - 1), names))
            if s.sell_yes_basket:
                out.append(Basket("sell_yes_basket", ev.event_id, yes, Side.SELL, Decimal(1),
                                  names, note="needs YES inventory of every outcome"))
        elif s.binary and pays_on_every_outcome(ev, instruments) and is_one_binary_market(ev):
            out.append(Basket("binary", ev.event_id, (ev.outcomes[0].yes_instrument_id,
                                                      ev.outcomes[1].yes_instrument_id),
                              Side.BUY, Decimal(1), names))
    return out, large


def _opp_id(basket: Basket, market: MarketState) -> str:
    """Names the basket *and the book state it was found in*: the newest update time of
    its legs' books.  Scanned again before any of those books changed (our own orders in
    flight, the venue not having reported their fills yet), the same opportunity keeps its
    id, so the core, which acts on an id once, does not send the basket twice.  The
    basket's ``tag`` (a pair's YES token) keeps two baskets of one kind and event apart."""
    books = market.books
    newest = max((books[iid].ts_ns for iid in basket.instrument_ids if iid in books),
                 default=0)
    name = f"{basket.event_id}:{basket.tag}" if basket.tag else basket.event_id
    return f"negrisk:{basket.kind}:{name}:{newest}"


class _Packed:
    """Book rows packed for the kernel, repacked only for books that changed.

    Rows are (instrument, side) pairs; several rows may share one book.  Each scan
    asks the core which books changed since this packing's stamp and repacks, and
    re-reads the liveness and timestamp of, only those.  ``full`` refreshes read every
    book's ``L2Book.version`` instead (the pre-dirty-set scan, kept for the benchmark
    and as the tests' reference).

    A row is packed ``first_levels`` deep at first (most walks stop at the best level);
    ``more`` marks rows whose book has levels beyond those packed, and :meth:`deepen`
    packs a row ``depth`` deep once a walk runs off its packed levels.  A deepened row
    stays deep when its book is repacked (a basket that reached its depth once is
    likely to again).
    """

    def __init__(self, keys: list[tuple[str, Side]], depth: int,
                 schedules: dict[str, FeeSchedule], first_levels: int | None = None,
                 closed_ids: frozenset[str] = frozenset()) -> None:
        self.keys = keys
        self.index = {k: i for i, k in enumerate(keys)}
        n = len(keys)
        self.depth = depth
        # Level-major (level, row): the first levels of all rows, all that most walks read,
        # are contiguous, and the deep levels of rows never packed deep are never written
        # (their zero pages are never touched, so they take no memory).
        self.prices = np.zeros((depth, n), dtype=np.float64)
        self.sizes = np.zeros((depth, n), dtype=np.float64)
        #: taker fee per share at each packed level (``FeeSchedule.unit_fee``)
        self.fees = np.zeros((depth, n), dtype=np.float64)
        # One price -> unit fee memo per distinct schedule (instruments share schedules and
        # prices sit on a tick grid, so the schedule is asked once per price level).
        memos: dict[FeeSchedule, tuple[FeeSchedule, dict[float, float]]] = {}
        self.row_fees = [memos.setdefault(schedules[iid], (schedules[iid], {}))
                         for iid, _side in keys]
        self.row_fee_of = [memo.__getitem__ for _schedule, memo in self.row_fees]
        self.nlev = np.zeros(n, dtype=np.int64)
        #: per row: the book has levels beyond the packed ones (and below ``depth``)
        self.more = np.zeros(n, dtype=np.bool_)
        first = depth if first_levels is None else min(first_levels, depth)
        #: per row: how many levels to pack (``first_levels``, or ``depth`` once deepened)
        self.want = [first] * n
        self.is_ask = [side is Side.SELL for _iid, side in keys]
        book_index: dict[str, int] = {}
        for iid, _side in keys:
            book_index.setdefault(iid, len(book_index))
        self.book_ids = list(book_index)
        self.book_pos = book_index
        nb = len(self.book_ids)
        #: row -> index of its book; book -> its rows
        self.row_book = np.fromiter((book_index[iid] for iid, _ in keys), dtype=np.int64,
                                    count=n)
        self.book_rows: list[list[int]] = [[] for _ in range(nb)]
        for row, (iid, _side) in enumerate(keys):
            self.book_rows[book_index[iid]].append(row)
        self.books: list[L2Book | None] = [None] * nb
        #: per book: its market takes orders (``closed_ids``: the instruments it does not)
        self.accepting = np.fromiter((iid not in closed_ids for iid in self.book_ids),
                                     dtype=np.bool_, count=nb)
        self.seen_version = np.full(nb, -1, dtype=np.int64)
        self.book_live = np.zeros(nb, dtype=np.bool_)
        self.book_ts = np.zeros(nb, dtype=np.int64)
        self._missing = list(range(nb))
        self.stamp = -1  # MarketState.changes_since stamp; -1: nothing packed yet
        self.book_usable = np.zeros(nb, dtype=np.bool_)
        self.usable = np.zeros(n, dtype=np.bool_)  # per row: its book is tradeable
        self.repacked = 0  # books repacked by the last refresh (tests, benchmark)
        self.deepened = 0  # rows packed deeper since this packing was built (tests)

    def refresh(self, market: MarketState, full: bool = False) -> np.ndarray | None:
        """Repack changed books and update :attr:`usable`; returns the books whose rows
        changed (levels or usability), or None for "all of them" (a full refresh)."""
        books = self.books
        everything = full or self.stamp < 0
        if everything:
            if not full:
                # Stamp first, read after: a change made while we read is listed next time.
                self.stamp = market.changes_since(0)[1]
            if self._missing:
                get = market.books.get
                for i in self._missing:
                    books[i] = get(self.book_ids[i])
                self._missing = [i for i in self._missing if books[i] is None]
            if self._missing:
                versions = np.fromiter((b.version if b is not None else -1 for b in books),
                                       dtype=np.int64, count=len(books))
            else:
                versions = np.fromiter(map(_VERSION, books), dtype=np.int64,
                                       count=len(books))
            changed = np.flatnonzero(versions != self.seen_version).tolist()
        else:
            ids, self.stamp = market.changes_since(self.stamp)
            pos = self.book_pos.get
            changed = [i for i in map(pos, ids) if i is not None]
            if self._missing:
                # (a book, once there, stays the same object: MarketState never replaces it)
                get = market.books.get
                for i in changed:
                    if books[i] is None:
                        books[i] = get(self.book_ids[i])
        read = [i for i in changed if books[i] is not None]
        live_books = [book for book in map(books.__getitem__, read) if book is not None]
        # The versions before the levels: a change made while packing leaves the recorded
        # version behind, so the next scan repacks and recomputes.
        state = np.array(list(map(_BOOK_STATE, live_books)), dtype=np.int64).reshape(-1, 3)
        book_rows, is_ask = self.book_rows, self.is_ask
        # L2Book.fault: a malformed level or crossed; such a book packs no level (its
        # prices are never read, nor priced by its fee schedule)
        ok = [not book.fault() for book in live_books]
        pairs = [(row, book, good) for i, book, good in zip(read, live_books, ok, strict=True)
                 for row in book_rows[i]]
        rows = [row for row, _book, _good in pairs]
        self._pack(rows, [(book.asks if is_ask[row] else book.bids) if good else {}
                          for row, book, good in pairs])
        self.seen_version[read] = state[:, 0]
        # live, sound and accepting orders
        live_read = (state[:, 1] != 0) & np.array(ok, dtype=np.bool_).reshape(-1)
        live_read &= self.accepting[read]
        self.book_live[read] = live_read
        self.book_ts[read] = state[:, 2]
        self.repacked = len(changed)
        if not market.stale_after_ns and not everything:
            # No staleness window: only the books just read can have changed usability.
            self.book_usable[read] = live_read
            self.usable[rows] = self.book_live[self.row_book[rows]]
            return np.asarray(changed, dtype=np.int64)
        live = self.book_live
        if market.stale_after_ns:
            live = live & ((market.now_ns - self.book_ts) <= market.stale_after_ns)
        np.take(live, self.row_book, out=self.usable)
        if everything:
            self.book_usable = live.copy()
            return None
        # Books whose usability moved without a change: gone stale as time passed.
        flipped = np.flatnonzero(live != self.book_usable)
        self.book_usable = live.copy()
        return np.union1d(np.asarray(changed, dtype=np.int64), flipped)

    def deepen(self, rows: list[int]) -> bool:
        """Pack ``rows`` (those with :attr:`more` levels) ``depth`` deep from their books
        now; False when none of them had more.  The books' recorded versions stay as
        they were: a book changed since it was read is listed, and repacked, next scan."""
        rows = [row for row in rows if self.more[row]]
        if not rows:
            return False
        books, row_book, is_ask = self.books, self.row_book, self.is_ask
        ladders = []
        for row in rows:
            self.want[row] = self.depth
            book = books[row_book[row]]
            assert book is not None  # a packed row has a book
            ladders.append(book.asks if is_ask[row] else book.bids)
        self._pack(rows, ladders)
        self.deepened += len(rows)
        return True

    def _pack(self, rows: list[int], ladders: list[dict[float, float]]) -> None:
        """Pack each row's best ``want[row]`` levels from its book's price -> size dict
        (the same levels, best first, as ``L2Book.ask_levels`` / ``bid_levels`` give,
        without building an array per book), with their unit fees: every level of every
        row read first, then one write per array for all the rows."""
        depth, want, is_ask = self.depth, self.want, self.is_ask
        # A full C sort beats a partial one (heapq) at book sizes; comprehensions, not a
        # loop with appends: the per-row Python overhead is most of a repack.
        tops = [sorted(ladder)[:want[row]] if is_ask[row]
                else sorted(ladder, reverse=True)[:want[row]]
                for row, ladder in zip(rows, ladders, strict=True)]
        more = [len(ladder) > want[row] and want[row] < depth
                for row, ladder in zip(rows, ladders, strict=True)]
        prices = list(chain.from_iterable(tops))
        sizes = list(chain.from_iterable(map(map, [ladder.__getitem__ for ladder in ladders],
                                             tops)))
        fee_of = self.row_fee_of
        try:
            fees = list(chain.from_iterable(map(map, [fee_of[row] for row in rows], tops)))
        except KeyError:  # a price a schedule has not priced yet
            for row, top in zip(rows, tops, strict=True):
                schedule, memo = self.row_fees[row]
                for price in top:
                    if price not in memo:
                        memo[price] = float(schedule.unit_fee(Decimal(repr(price))))
            fees = list(chain.from_iterable(map(map, [fee_of[row] for row in rows], tops)))
        counts = np.fromiter(map(len, tops), dtype=np.int64, count=len(tops))
        at = np.asarray(rows, dtype=np.int64)
        # each level's index in the flattened (depth, rows) arrays: level * rows + row
        level = np.arange(len(prices)) - np.repeat(np.cumsum(counts) - counts, counts)
        flat = level * len(self.keys) + np.repeat(at, counts)
        np.put(self.prices, flat, prices)
        np.put(self.sizes, flat, sizes)
        np.put(self.fees, flat, fees)
        self.nlev[at] = counts
        self.more[at] = more


def walk_threshold(payout: Decimal, sell: bool, min_edge: Decimal) -> float:
    """The marginal basket cost (price + unit fee; price - fee selling) a walk goes on
    below (above, selling): the payout less ``min_edge``.  Levels earning less than
    ``min_edge`` a unit are not taken, so a deep book at a thinner edge cannot dilute the
    average of the levels worth taking below ``min_edge`` (the whole basket dropped).  A
    margin of 1e-9 in the walk's favour: a level at exactly ``min_edge`` is taken, and the
    exact ``Decimal`` check of the average edge decides."""
    if not min_edge:
        return float(payout)
    margin = min_edge - Decimal("1e-9")
    return float(payout + margin) if sell else float(payout - margin)


class _Compiled:
    """Baskets as CSR arrays over packed rows."""

    def __init__(self, baskets: list[Basket], packed: _Packed,
                 min_edge: Decimal = Decimal(0)) -> None:
        self.baskets = baskets
        starts = [0]
        rows: list[int] = []
        for b in baskets:
            side = Side.SELL if b.side is Side.BUY else Side.BUY  # buy legs walk asks
            for iid in b.instrument_ids:
                rows.append(packed.index[(iid, side)])
            starts.append(len(rows))
        self.leg_start = np.asarray(starts, dtype=np.int64)
        self.leg_rows = np.asarray(rows, dtype=np.int64)
        self.payout = np.asarray([walk_threshold(b.payout, b.side is Side.SELL, min_edge)
                                  for b in baskets], dtype=np.float64)
        self.is_sell = np.asarray([b.side is Side.SELL for b in baskets], dtype=np.bool_)
        nb = len(baskets)
        self.max_qty = np.zeros(nb, dtype=np.float64)
        self.out_qty = np.zeros(nb, dtype=np.float64)
        self.out_value = np.zeros(nb, dtype=np.float64)
        self.out_fee = np.zeros(nb, dtype=np.float64)
        self.out_depth = np.zeros(len(rows), dtype=np.int64)
        self.out_short = np.zeros(nb, dtype=np.bool_)  # walk ran off a partly packed row
        self.all_baskets = np.arange(nb, dtype=np.int64)
        self.walked = np.zeros(nb, dtype=np.bool_)  # baskets walked by the last scan
        # book -> the baskets with a leg on it, as CSR: leg_basket[by_book[book_start[i]:...]]
        leg_book = packed.row_book[self.leg_rows]
        self._by_book = np.argsort(leg_book, kind="stable")
        self._leg_basket = np.repeat(np.arange(nb, dtype=np.int64), np.diff(self.leg_start))
        self._book_start = np.searchsorted(leg_book[self._by_book],
                                           np.arange(len(packed.book_ids) + 1))

    def baskets_of(self, books: np.ndarray) -> np.ndarray:
        """The baskets with a leg on any of ``books`` (packed book indices), ascending."""
        starts = self._book_start[books]
        counts = self._book_start[books + 1] - starts
        # every leg index of those books, without a Python loop: starts repeated, plus 0..n-1
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
        legs = self._by_book[offsets + np.arange(int(counts.sum()))]
        return np.unique(self._leg_basket[legs])

    def run(self, packed: _Packed, usable: np.ndarray,
            selected: np.ndarray | None = None) -> np.ndarray:
        """Walk the ``selected`` baskets (default all); indices of every basket whose last
        walk found a profitable size.  A walk that ran off a partly packed row has that
        row packed deeper (:meth:`_Packed.deepen`) and is walked again."""
        walk = self.all_baskets if selected is None else selected
        while len(walk):
            walk_baskets(packed.prices, packed.sizes, packed.fees, packed.nlev, packed.more,
                         usable, self.leg_start, self.leg_rows, self.payout, self.is_sell,
                         walk, self.max_qty, self.out_qty, self.out_value, self.out_fee,
                         self.out_depth, self.out_short)
            walk = walk[self.out_short[walk]]
            starts, ends = self.leg_start[walk].tolist(), self.leg_start[walk + 1].tolist()
            rows = [row for a, b in zip(starts, ends, strict=True)
                    for row in self.leg_rows[a:b].tolist()]
            if not packed.deepen(rows):
                break  # (cannot happen: a short walk has a row with more levels)
        return np.flatnonzero(self.out_qty > 0)


class NegRiskScanner(Scanner):
    """Depth-aware rebalancing-arbitrage scanner for negRisk and binary markets."""

    name: ClassVar[str] = "negrisk"

    def __init__(self, settings: NegRiskSettings | None = None, *,
                 incremental: bool = True, first_levels: int | None = FIRST_LEVELS) -> None:
        self.settings = settings or NegRiskSettings()
        #: False: read every book's version and walk every basket on each scan (the
        #: pre-dirty-set path; the benchmark and the tests compare against it)
        self.incremental = incremental
        #: levels packed per book side until a walk needs more (None: ``max_levels``
        #: always, the tests' and the benchmark's reference)
        self.first_levels = first_levels
        self._key: tuple[int, int, int, int, int] | None = None
        self._market_id = 0
        self._packed: _Packed | None = None
        self._static: _Compiled | None = None
        self._large: list[Event] = []
        self._schedules: dict[str, FeeSchedule] = {}
        self._dec: dict[float, Decimal] = {}  # price float -> exact Decimal (tick grid repeats)
        #: basket -> (the walk's inputs, the opportunity computed from them)
        self._opp_cache: dict[Basket, tuple[tuple[bytes, ...], Opportunity | None]] = {}
        #: static basket index -> its opportunity at the last scan that found it a hit
        self._static_opps: dict[int, Opportunity | None] = {}

    # --- structure ------------------------------------------------------------------------

    def _rebuild(self, market: MarketState) -> None:
        events = list(market.events.values())
        baskets, large = static_baskets(events, self.settings, market.instruments)
        keys: dict[tuple[str, Side], None] = {}
        ids: dict[str, None] = {}
        for b in baskets:
            side = Side.SELL if b.side is Side.BUY else Side.BUY
            for iid in b.instrument_ids:
                keys[(iid, side)] = None
                ids[iid] = None
        for ev in large:
            for o in ev.outcomes:
                keys[(o.yes_instrument_id, Side.SELL)] = None
                keys[(o.yes_instrument_id, Side.BUY)] = None  # bids: tail probability fallback
                ids[o.yes_instrument_id] = None
        self._schedules = {iid: market.fee_schedule(iid) for iid in ids}
        instruments, settled = market.instruments, market.settled
        # a resolved market (settled: the risk gate vetoes its legs) or one taking no orders
        closed = frozenset(iid for iid in ids if iid in settled or (
            (inst := instruments.get(iid)) is not None and not inst.takes_orders))
        self._packed = _Packed(list(keys), self.settings.max_levels, self._schedules,
                               self.first_levels, closed)
        self._static = _Compiled(baskets, self._packed, self.settings.min_edge)
        cap = self.settings.max_basket_size
        if cap is not None:
            self._static.max_qty[:] = float(cap)
        self._large = large
        self._opp_cache.clear()
        self._static_opps.clear()

    def _ensure(self, market: MarketState) -> None:
        # the instruments too: a leg's market closing (Instrument.takes_orders) or its
        # minimum size changing rebuilds: the core's MarketState.instruments_version moves
        # with every add_instruments (a replaced instrument leaves the count as it was);
        # a settlement (a market resolved: its legs trade no more) only grows the settled
        key = (market.events_version, len(market.events), len(market.instruments),
               market.instruments_version, len(market.settled))
        if key != self._key or id(market) != self._market_id or self._packed is None:
            self._rebuild(market)
            self._key = key
            self._market_id = id(market)

    # --- scanning -------------------------------------------------------------------------

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every profitable basket in ``market`` now, most profitable first.

        The fee schedules are read at a rebuild; a schedule that moved since (a venue's
        fee change that no instrument update announced) is caught before anything is
        reported: the scan is rebuilt and run again with the schedules now in force."""
        found = self._scan(market, ts_ns)
        if self._priced_on_old_terms(market, found):
            self._key = None  # rebuild: every packed unit fee and cached finding is stale
            found = self._scan(market, ts_ns)
        return one_taker_per_book(found)

    def _priced_on_old_terms(self, market: MarketState, found: list[Opportunity]) -> bool:
        """Whether a leg of a finding was priced on terms no longer in force: another fee
        schedule than the one packed, or a limit off the tick now in force (a
        ``tick_size_change`` signal no instrument update came with; a finding reused
        from an earlier scan never re-reads the tick).  Only reported legs are checked (a
        handful a scan): a finding priced on old terms may be a loss or refused; one
        missed because fees fell is found at the next rebuild."""
        schedules = self._schedules
        for opp in found:
            for leg in opp.legs:
                iid = leg.instrument_id
                if market.fee_schedule(iid) != schedules.get(iid):
                    return True
                if _on_grid(leg.limit_price, _leg_rules(market, iid)[1]) != leg.limit_price:
                    return True
        return False

    def _scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """One scan with the packing and schedules of the last rebuild (:meth:`scan`)."""
        self._ensure(market)
        packed, static = self._packed, self._static
        assert packed is not None and static is not None
        touched = packed.refresh(market, full=not self.incremental)
        usable = packed.usable
        selected = None if touched is None else static.baskets_of(touched)
        walked = static.walked
        walked[:] = selected is None
        if selected is not None:
            walked[selected] = True
        found: list[Opportunity] = []
        last = self._static_opps
        for b in static.run(packed, usable, selected).tolist():
            if not walked[b] and b in last:
                # None of its books changed since the last scan, which found it a hit too.
                opp = last[b]
                opp = None if opp is None else restamped(opp, ts_ns)
            else:
                opp = last[b] = self._cached_opportunity(static, b, packed, market, ts_ns)
            if opp is not None:
                found.append(opp)
        if self._large:
            bounded = self._bounded_baskets(packed, usable)
            if bounded:
                comp = _Compiled(bounded, packed, self.settings.min_edge)
                for b in comp.run(packed, usable):
                    opp = self._cached_opportunity(comp, int(b), packed, market, ts_ns)
                    if opp is not None:
                        found.append(opp)
        found.sort(key=_PROFIT, reverse=True)
        return found

    def _bounded_baskets(self, packed: _Packed, usable: np.ndarray) -> list[Basket]:
        """YES baskets of the likeliest ``max_outcomes`` outcomes of each large event."""
        s = self.settings
        out = []
        for ev in self._large:
            probs = []
            for o in ev.outcomes:
                ask = packed.index[(o.yes_instrument_id, Side.SELL)]
                bid = packed.index[(o.yes_instrument_id, Side.BUY)]
                if packed.nlev[ask] > 0 and usable[ask]:
                    p = Decimal(repr(float(packed.prices[0, ask])))
                elif packed.nlev[bid] > 0 and usable[bid]:
                    p = Decimal(repr(float(packed.prices[0, bid])))  # no ask: bid as estimate
                else:
                    p = None
                probs.append((p, o))
            priced = [(p, o) for p, o in probs if p is not None]
            if len(priced) < len(probs):
                continue  # an outcome with no price at all: its probability is unknown
            priced.sort(key=lambda t: t[0], reverse=True)
            kept, tail = priced[: s.max_outcomes], priced[s.max_outcomes:]
            tail_p = sum((p for p, _ in tail), Decimal(0))
            if tail_p > s.tail_probability_cap:
                continue
            out.append(Basket(
                "bounded_long", ev.event_id, tuple(o.yes_instrument_id for _, o in kept),
                Side.BUY, 1 - tail_p, tuple(o.name for _, o in kept), risk_free=False,
                note=(f"omits {len(tail)} tail outcomes whose YES asks sum to {tail_p}: if one "
                      f"of them wins the whole basket cost is lost; expected payout "
                      f"{1 - tail_p}/unit")))
        return out

    def _cached_opportunity(self, comp: _Compiled, b: int, packed: _Packed,
                            market: MarketState, ts_ns: int) -> Opportunity | None:
        """:meth:`_opportunity`, reused while the walk's inputs are unchanged: the kernel's
        size and, on every leg, the levels the exact walk can read (those the kernel used
        and the next one).  A change deeper in a leg's book (most of a busy book's
        updates) leaves them as they were, so the exact recomputation is skipped; only
        the id, which names the legs' newest book update, and the time are renewed."""
        basket = comp.baskets[b]
        lo, hi = int(comp.leg_start[b]), int(comp.leg_start[b + 1])
        rows = comp.leg_rows[lo:hi]
        reach = np.minimum(comp.out_depth[lo:hi] + 2, packed.nlev[rows])
        prices, sizes = packed.prices, packed.sizes
        key = [comp.out_qty[b].tobytes()]
        for row, n in zip(rows.tolist(), reach.tolist(), strict=True):
            key.append(prices[:n, row].tobytes())
            key.append(sizes[:n, row].tobytes())
        inputs = tuple(key)
        cached = self._opp_cache.get(basket)
        opp: Opportunity | None
        if cached is not None and cached[0] == inputs:
            prev = cached[1]
            if prev is None:
                return None
            opp_id = _opp_id(basket, market)
            if opp_id == prev.opportunity_id:
                return restamped(prev, ts_ns)
            opp = restamped(prev, ts_ns, opp_id)
        else:
            opp = self._opportunity(comp, b, packed, market, ts_ns)
        self._opp_cache[basket] = (inputs, opp)
        return opp

    def _opportunity(self, comp: _Compiled, b: int, packed: _Packed, market: MarketState,
                     ts_ns: int) -> Opportunity | None:
        """Exact ``Decimal`` recomputation of basket ``b`` at its lot-rounded size."""
        s = self.settings
        basket = comp.baskets[b]
        rules = [_leg_rules(market, iid) for iid in basket.instrument_ids]
        qty = Decimal(repr(float(comp.out_qty[b])))
        if s.max_basket_size is not None:
            qty = min(qty, s.max_basket_size)
        # whole lots of every leg (the coarsest lot, then each leg's checked: lots that are
        # not multiples of one another, e.g. 0.02 and 0.03, leave no size they all take)
        lot = max((lot for lot, _tick, _min in rules), default=LOT)
        qty = ((qty / lot).to_integral_value(ROUND_DOWN) * lot).quantize(LOT)  # as before: 0.01
        if qty <= 0 or any(qty % lot_j or qty < min_j for lot_j, _tick, min_j in rules):
            return None
        start = int(comp.leg_start[b])
        legs = []
        value = fees = Decimal(0)
        deepest = 0
        for j, iid in enumerate(basket.instrument_ids):
            row = int(comp.leg_rows[start + j])
            schedule = self._schedules[iid]
            tick = rules[j][1]
            need = qty
            limit = Decimal(0)
            level = 0
            nlev = int(packed.nlev[row])
            prices = packed.prices[:nlev, row].tolist()
            sizes = packed.sizes[:nlev, row].tolist()
            dec = self._dec
            while need > 0 and level < nlev:
                price = dec.get(prices[level])
                if price is None:
                    price = dec[prices[level]] = Decimal(repr(prices[level]))
                price = _on_grid(price, tick)
                if price is None:
                    return None  # no price of a binary token on its grid: the venue refuses it
                avail = Decimal(repr(sizes[level]))
                take = min(need, avail)
                value += price * take
                # one fill per level, as the paper broker fills it: the expected profit
                # is what a paper execution books
                fees += schedule.fee(price, take, maker=False)
                need -= take
                limit = price
                level += 1
            if need > 0:
                return None  # depth changed under us; the next scan will see it
            deepest = max(deepest, level)
            legs.append(Leg(iid, basket.side, limit, qty))
        gas = s.gas_usd_per_leg * len(legs)
        payout = basket.payout * qty
        gross = (value - payout) if basket.side is Side.SELL else (payout - value)
        profit = gross - fees - gas
        if profit <= 0:
            return None
        edge = (profit / qty).quantize(Decimal("1e-8"), rounding=ROUND_DOWN)
        if edge < s.min_edge:
            return None
        per_unit = (value / qty).quantize(Decimal("1e-6"))
        verb = "sell" if basket.side is Side.SELL else "buy"
        reason = (f"{basket.kind}: {verb} {len(legs)} legs ({', '.join(basket.names)}) at "
                  f"{per_unit}/unit + fees {(fees / qty).quantize(Decimal('1e-6'))}/unit vs "
                  f"payout {basket.payout}/unit; {qty} units over up to {deepest} levels")
        if basket.note:
            reason += f"; {basket.note}"
        if not basket.risk_free:  # a bet on the tail, not an arbitrage: never traded
            reason = f"not risk-free, research: {reason}"
        return Opportunity(
            opportunity_id=_opp_id(basket, market),
            scanner=self.name, ts_ns=ts_ns, kind=basket.kind, legs=tuple(legs),
            edge_per_unit=edge, max_size=qty, expected_profit=profit, costs=fees + gas,
            reason=reason, risk_free=basket.risk_free,
            lane=EXECUTABLE if basket.risk_free else RESEARCH,
            event_id=gamma_event_id(basket, market),
            score=score(edge, sum((leg.limit_price * leg.quantity for leg in legs),
                                  Decimal(0)), basket.risk_free))


def one_taker_per_book(found: list[Opportunity]) -> list[Opportunity]:
    """``found`` (most profitable first) with each book side's depth offered once: an
    executable basket with a leg on a book side (instrument and side) that an executable
    basket ranked before it (at least as profitable) already takes goes to the research lane
    (``risk_free=False``), its reason naming that basket.

    Two baskets of one event can share a book (a ``pair`` and the ``long_rebalance`` both
    buy the outcome's YES asks; a ``pair`` and the ``short_rebalance`` its NO asks), and two
    events listing one market both give its ``pair``: each was sized on the whole depth, so
    the runner sent both and the second's leg filled short of its other legs, an unhedged
    position to flatten at a loss (red team round 40).  The next scan, on the books the
    first basket left, finds the second again if it still pays."""
    taken: dict[tuple[str, Side], Opportunity] = {}
    out = found
    for i, opp in enumerate(found):
        if opp.lane != EXECUTABLE:
            continue
        keys = [(leg.instrument_id, leg.side) for leg in opp.legs]
        first = next((taken[k] for k in keys if k in taken), None)
        if first is None:
            taken.update(dict.fromkeys(keys, opp))
            continue
        if out is found:
            out = list(found)
        out[i] = attrs.evolve(opp, lane=RESEARCH, risk_free=False, reason=(
            f"not traded: {first.opportunity_id}, at least as profitable, takes the same book "
            f"depth; {opp.reason}"))
    return out


#: the grid of an instrument the market does not know: prices in (0, 1), no tick rule
_UNKNOWN_TICK = Decimal("1e-8")


def _on_grid(price: Decimal, tick: Decimal) -> Decimal | None:
    """``price`` on ``tick``'s grid within ``[tick, 1 - tick]`` (the prices a binary token
    trades at), snapped to it (0.30100000000000005 is 0.301: float noise, the core's
    ``ticks_of``); None when it is off the grid (a tick change the instrument has not
    followed, a corrupted level) or outside (0.998 + a tick on a 0.01 grid, 1.5)."""
    ticks = ticks_of(price, tick)
    if ticks != ticks.to_integral_value():
        return None
    snapped = ticks * tick
    return snapped if tick <= snapped <= 1 - tick else None


def _leg_rules(market: MarketState, iid: str) -> tuple[Decimal, Decimal, Decimal]:
    """A leg's (lot size, tick size, minimum order size): what the venue refuses an order
    off (Polymarket's signing: a limit off the tick grid or outside [tick, 1 - tick], a
    size not in whole lots or below the minimum)."""
    inst: Instrument | None = market.instruments.get(iid)
    if inst is None:
        return LOT, _UNKNOWN_TICK, Decimal(0)
    return max(inst.lot_size, LOT), _tick_in_force(market, inst), inst.min_size


#: The signal a venue publishes when a market's tick size changes (the Polymarket venue's
#: ``tick_size_change``; the ``pmscanners`` plugin reads the same one).
TICK_SIGNAL = "polymarket.tick_size"


def _tick_in_force(market: MarketState, inst: Instrument) -> Decimal:
    """``inst``'s tick now: the coarser of its own and the newest :data:`TICK_SIGNAL` for
    it (a number in (0, 1)).  The venue replaces the instrument next to the signal, but a
    stream may carry only the signal; Polymarket's ticks divide one another, so a limit on
    the coarser grid is on both (the ``pmscanners`` rule, ``common.tick_in_force``)."""
    value = market.signal(TICK_SIGNAL, inst.id)
    if value is not None and math.isfinite(value) and 0.0 < value < 1.0:
        return max(Decimal(repr(float(value))), inst.tick_size)
    return inst.tick_size
