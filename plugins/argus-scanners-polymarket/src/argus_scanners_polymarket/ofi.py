"""Order-flow imbalance (OFI) per token, from consecutive L2 book states and signed trades.

**Book OFI** (Cont, Kukanov & Stoikov 2014, "The price impact of order book events").  For
two consecutive states ``n-1``, ``n`` of one token, with level-``m`` bid price/size
``B_m, b_m`` and ask price/size ``A_m, a_m``:

    e_n(m) =  b_m(n)   1{B_m(n) >= B_m(n-1)}  -  b_m(n-1) 1{B_m(n) <= B_m(n-1)}
            - a_m(n)   1{A_m(n) <= A_m(n-1)}  +  a_m(n-1) 1{A_m(n) >= A_m(n-1)}

(bids added or improved, and asks removed or lifted, push the price up: positive).  A
missing bid level counts as price 0 size 0 and a missing ask level as price +inf size 0,
so a level that appears or vanishes counts in full.  Multi-level OFI (Xu, Gould & Howison
2018) weights level ``m`` (1 = the touch) by ``level_decay ** (m - 1)``:
``e_n = sum_{m<=levels} level_decay**(m-1) e_n(m)``; ``levels = 1`` is CKS at the touch.

**Trade flow**: ``TF = sum(+size for a taker buy, -size for a taker sell)``.

Over a window of ``window_s`` seconds ending now (book transitions and trades stamped in
``(now - window_s, now]``):

    OFI        = sum e_n                       (shares)
    flow       = OFI + trade_weight * TF       (shares)
    gross      = sum |e_n| + trade_weight * sum |trade size|
    imbalance  = flow / gross      in [-1, 1]  (0 when nothing happened)
    depth      = mean over the window's states of (b_1 + a_1) / 2
    per_depth  = flow / depth                  (CKS: the mid moves ~ c * tick * OFI/depth)

``imbalance`` is the normalised signal the scanners and the ranking use; ``per_depth`` is
CKS's price-impact regressor.  A trade that the sampled book states also show (a lifted
ask) is counted in both terms; with ``trade_weight = 1`` the tape weighs as much as the
book, and states sampled once per scan miss trades between samples, which the tape keeps.

Two ways in:

* :class:`OfiTracker`, stateful: fed event by event (``on_book`` / ``on_trade`` /
  ``on_event``, what a strategy does) or by :meth:`OfiTracker.observe` (what a scanner
  does once per scan: every book changed since its last look, via
  ``MarketState.changes_since``, and each token's newest trade).
* :func:`market_ofi`: the imbalance for one token from a tracker, or else the published
  ``Signal`` named ``"ofi"`` in the market state (``OfiTracker.signals`` makes them).
"""

from __future__ import annotations

import math
import weakref
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from argus_core import BookDelta, MarketEvent, MarketState, OrderBook, Side, Signal, Trade

if TYPE_CHECKING:  # touch.py does not import this module; the annotation only
    from argus_scanners_polymarket.touch import TouchTable

#: Name of the published signal carrying :attr:`OfiReading.imbalance`.
SIGNAL = "ofi"
_NS = 10**9


Top = tuple[tuple[float, float], ...]  # a side's best levels, best first


def _level(levels: np.ndarray | Top, m: int, *, bid: bool) -> tuple[float, float]:
    if m < len(levels):
        return float(levels[m][0]), float(levels[m][1])
    return (0.0, 0.0) if bid else (math.inf, 0.0)


def ofi_step(prev_bids: np.ndarray | Top, prev_asks: np.ndarray | Top,
             bids: np.ndarray | Top, asks: np.ndarray | Top, *, levels: int = 1,
             level_decay: float = 1.0) -> float:
    """``e_n`` between two book states (``(k, 2)`` price/size arrays or tuples of
    ``(price, size)``, best first)."""
    total = 0.0
    for m in range(levels):
        pb0, qb0 = _level(prev_bids, m, bid=True)
        pb1, qb1 = _level(bids, m, bid=True)
        pa0, qa0 = _level(prev_asks, m, bid=False)
        pa1, qa1 = _level(asks, m, bid=False)
        e = ((qb1 if pb1 >= pb0 else 0.0) - (qb0 if pb1 <= pb0 else 0.0)
             - (qa1 if pa1 <= pa0 else 0.0) + (qa0 if pa1 >= pa0 else 0.0))
        total += level_decay ** m * e
    return total


@attrs.frozen
class OfiReading:
    """One token's order flow over the window (see the module docstring for each field)."""

    book_ofi: float
    trade_flow: float
    flow: float
    gross: float
    imbalance: float
    depth: float
    per_depth: float
    transitions: int
    trades: int


def _top(levels: np.ndarray | list[list[float]], n: int) -> Top:
    return tuple((float(p), float(q)) for p, q in np.asarray(levels, dtype=np.float64)
                 .reshape(-1, 2)[:n].tolist())


def _dict_top(ladder: dict[float, float], n: int, *, bid: bool) -> Top:
    """The ``n`` best levels of a book side's price -> size dict (no sorted view built)."""
    if not ladder:
        return ()
    if n == 1:
        best = max(ladder) if bid else min(ladder)
        return ((best, ladder[best]),)
    return tuple(sorted(ladder.items(), reverse=bid)[:n])


class OfiTracker:
    """Keeps each token's last book state and its window of OFI terms and signed trades."""

    def __init__(self, window_s: float = 60.0, *, levels: int = 1, level_decay: float = 0.5,
                 trade_weight: float = 1.0) -> None:
        if window_s <= 0 or levels < 1 or not 0 < level_decay <= 1 or trade_weight < 0:
            raise ValueError("OfiTracker: window_s > 0, levels >= 1, level_decay in (0, 1], "
                             f"trade_weight >= 0; got {window_s}, {levels}, {level_decay}, "
                             f"{trade_weight}")
        self.window_ns = int(window_s * _NS)
        self.levels = levels
        self.level_decay = level_decay
        self.trade_weight = trade_weight
        self._last: dict[str, tuple[Top, Top]] = {}
        #: token -> (ts_ns, e_n, touch depth of state n, 1 for a transition / 0 the first state)
        self._steps: dict[str, deque[tuple[int, float, float, int]]] = {}
        #: token -> (ts_ns, signed size)
        self._trades: dict[str, deque[tuple[int, float]]] = {}
        self._seen_trade: dict[str, Trade] = {}
        self._stamp = 0
        #: token -> (computed at, valid until, reading): what :meth:`reading_at` reuses
        self._memo: dict[str, tuple[int, float, OfiReading | None]] = {}
        #: tokens fed since the last :meth:`take_fed` (a scanner's dirty set)
        self.fed: set[str] = set()

    # -- feeding -------------------------------------------------------------------------
    def on_book(self, iid: str, bids: np.ndarray, asks: np.ndarray, ts_ns: int) -> None:
        """A new state of ``iid``'s book (best-first ``(k, 2)`` arrays)."""
        self._on_top(iid, _top(bids, self.levels), _top(asks, self.levels), ts_ns)

    def _on_top(self, iid: str, bids: Top, asks: Top, ts_ns: int) -> None:
        depth = (_level(bids, 0, bid=True)[1] + _level(asks, 0, bid=False)[1]) / 2
        prev = self._last.get(iid)
        steps = self._steps.setdefault(iid, deque())
        if prev is not None:
            if prev[0] == bids and prev[1] == asks:
                return  # nothing at the top levels moved: no transition
            e = ofi_step(prev[0], prev[1], bids, asks, levels=self.levels,
                         level_decay=self.level_decay)
            steps.append((ts_ns, e, depth, 1))
        else:
            steps.append((ts_ns, 0.0, depth, 0))  # the first state: depth only, no e_n
        self._last[iid] = (bids, asks)
        self._memo.pop(iid, None)
        self.fed.add(iid)

    def _on_touch(self, iid: str, bids: dict[float, float], asks: dict[float, float],
                  ts_ns: int) -> None:
        """:meth:`_on_top` of one level read from a book's dicts: the same tuples, the same
        step term and depth to the bit (``ofi_step``'s level-0 term is ``0.0 + 1.0 * e``),
        one call instead of a dozen (what ``observe`` pays per changed book)."""
        if bids:
            pb1 = max(bids)
            qb1 = bids[pb1]
            top_b: Top = ((pb1, qb1),)
            pb1, qb1 = float(pb1), float(qb1)
        else:
            top_b, pb1, qb1 = (), 0.0, 0.0
        if asks:
            pa1 = min(asks)
            qa1 = asks[pa1]
            top_a: Top = ((pa1, qa1),)
            pa1, qa1 = float(pa1), float(qa1)
        else:
            top_a, pa1, qa1 = (), math.inf, 0.0
        self._touch_step(iid, top_b, pb1, qb1, top_a, pa1, qa1, ts_ns)

    def _touch_step(self, iid: str, top_b: Top, pb1: float, qb1: float, top_a: Top,
                    pa1: float, qa1: float, ts_ns: int) -> None:
        """:meth:`_on_touch` once the touch is read: the transition from the last one."""
        depth = (qb1 + qa1) / 2
        prev = self._last.get(iid)
        steps = self._steps.setdefault(iid, deque())
        if prev is not None:
            pbids, pasks = prev
            if pbids == top_b and pasks == top_a:
                return  # nothing at the touch moved: no transition
            pb0, qb0 = (float(pbids[0][0]), float(pbids[0][1])) if pbids else (0.0, 0.0)
            pa0, qa0 = (float(pasks[0][0]), float(pasks[0][1])) if pasks else (math.inf, 0.0)
            e = ((qb1 if pb1 >= pb0 else 0.0) - (qb0 if pb1 <= pb0 else 0.0)
                 - (qa1 if pa1 <= pa0 else 0.0) + (qa0 if pa1 >= pa0 else 0.0))
            steps.append((ts_ns, 0.0 + self.level_decay ** 0 * e, depth, 1))
        else:
            steps.append((ts_ns, 0.0, depth, 0))  # the first state: depth only, no e_n
        self._last[iid] = (top_b, top_a)
        self._memo.pop(iid, None)
        self.fed.add(iid)

    def on_trade(self, trade: Trade) -> None:
        """A print: ``+size`` for a taker buy, ``-size`` for a taker sell."""
        size = float(trade.size)
        signed = size if trade.aggressor is Side.BUY else -size
        self._trades.setdefault(trade.instrument_id, deque()).append((trade.ts_ns, signed))
        self._seen_trade[trade.instrument_id] = trade
        self._memo.pop(trade.instrument_id, None)
        self.fed.add(trade.instrument_id)

    def on_event(self, event: MarketEvent, market: MarketState | None = None) -> None:
        """Feed one market event: an ``OrderBook`` snapshot, a ``Trade``, or a ``BookDelta``
        (read from ``market``'s book after the delta was applied)."""
        if isinstance(event, OrderBook):
            self.on_book(event.instrument_id, event.bids, event.asks, event.ts_ns)
        elif isinstance(event, Trade):
            self.on_trade(event)
        elif isinstance(event, BookDelta) and market is not None:
            book = market.books.get(event.instrument_id)
            if book is not None:
                self.on_book(event.instrument_id, book.bid_levels(), book.ask_levels(),
                             event.ts_ns)

    def observe(self, market: MarketState, table: TouchTable | None = None) -> None:
        """Read every book changed since the last call, and each token's newest trade.

        ``table``: ``market``'s touch table, refreshed since its last change; with one
        level, a sound book's touch is read from its columns (the same floats the
        book's dicts hold: the repack just read them) instead of the dicts again."""
        changed, self._stamp = market.changes_since(self._stamp)
        n = self.levels
        books = market.books
        if n == 1 and table is not None and changed:
            self._observe_table(changed, books, table)
        elif n == 1:  # the default: the touch only, without the per-level helpers
            for iid in reversed(changed):  # oldest change first
                book = books[iid]
                self._on_touch(iid, book.bids, book.asks, book.ts_ns)
        else:
            for iid in reversed(changed):
                book = books[iid]
                self._on_top(iid, _dict_top(book.bids, n, bid=True),
                             _dict_top(book.asks, n, bid=False), book.ts_ns)
        seen = self._seen_trade
        for iid, trade in market.trades.items():
            last = seen.get(iid)
            if last is not trade and last != trade:
                self.on_trade(trade)

    def _observe_table(self, changed: list[str], books: Any, table: TouchTable) -> None:
        """:meth:`observe`'s books through ``table``: its best bid/ask and sizes of the
        sound rows (a malformed or crossed book, or one without a row, read from its
        dicts by :meth:`_on_touch`); oldest change first, as there."""
        index = table.index
        at = np.fromiter((index.get(i, -1) for i in changed), dtype=np.int64,
                         count=len(changed))
        rows = np.maximum(at, 0)
        good = ((at >= 0) & table.sound[rows]).tolist()
        bid, bid_size = table.bid[rows].tolist(), table.bid_size[rows].tolist()
        ask, ask_size = table.ask[rows].tolist(), table.ask_size[rows].tolist()
        step, inf = self._touch_step, math.inf
        for k in range(len(changed) - 1, -1, -1):
            iid = changed[k]
            book = books[iid]
            if not good[k]:
                self._on_touch(iid, book.bids, book.asks, book.ts_ns)
                continue
            pb, qb, pa, qa = bid[k], bid_size[k], ask[k], ask_size[k]
            if pb == pb:  # not NaN: a bid side
                top_b: Top = ((pb, qb),)
            else:
                top_b, pb, qb = (), 0.0, 0.0
            if pa == pa:
                top_a: Top = ((pa, qa),)
            else:
                top_a, pa, qa = (), inf, 0.0
            step(iid, top_b, pb, qb, top_a, pa, qa, book.ts_ns)

    # -- checkpoints ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """JSON-able state of what :meth:`on_book` / :meth:`on_trade` were fed (each
        token's last top levels and its window), so a strategy resumed from a checkpoint
        reads the same imbalance as one never stopped.  What :meth:`observe` remembers of
        a market state (its stamp, the last trade seen) is not kept: a new market state
        is read afresh."""
        return {
            "last": {iid: [[list(x) for x in b], [list(x) for x in a]]
                     for iid, (b, a) in self._last.items()},
            "steps": {iid: [list(x) for x in q] for iid, q in self._steps.items()},
            "trades": {iid: [list(x) for x in q] for iid, q in self._trades.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output."""
        self._last = {iid: (_top(b, self.levels), _top(a, self.levels))
                      for iid, (b, a) in state.get("last", {}).items()}
        self._steps = {iid: deque((int(t), float(e), float(d), int(f)) for t, e, d, f in q)
                       for iid, q in state.get("steps", {}).items()}
        self._trades = {iid: deque((int(t), float(x)) for t, x in q)
                        for iid, q in state.get("trades", {}).items()}
        self._memo = {}

    # -- reading -------------------------------------------------------------------------
    def reading(self, iid: str, now_ns: int) -> OfiReading | None:
        """``iid``'s flow over ``(now - window, now]``; None if the token was never seen."""
        steps, trades = self._steps.get(iid), self._trades.get(iid)
        if steps is None and trades is None:
            return None
        lo = now_ns - self.window_ns
        for q in (steps, trades):
            while q and q[0][0] <= lo:
                q.popleft()
        # both bounds: a term stamped before the window (a book whose time went backwards,
        # fed after newer ones) sits behind a newer one, where the pops above stop
        in_steps = [s for s in (steps or ()) if lo < s[0] <= now_ns]
        in_trades = [t for t in (trades or ()) if lo < t[0] <= now_ns]
        book = sum(s[1] for s in in_steps)
        tape = sum(q for _, q in in_trades)
        flow = book + self.trade_weight * tape
        gross = (sum(abs(s[1]) for s in in_steps)
                 + self.trade_weight * sum(abs(q) for _, q in in_trades))
        if in_steps:
            depth = sum(s[2] for s in in_steps) / len(in_steps)
        else:
            last = self._last.get(iid)
            depth = ((_level(last[0], 0, bid=True)[1] + _level(last[1], 0, bid=False)[1]) / 2
                     if last is not None else 0.0)
        return OfiReading(
            book_ofi=book, trade_flow=tape, flow=flow, gross=gross,
            imbalance=flow / gross if gross > 0 else 0.0, depth=depth,
            per_depth=flow / depth if depth > 0 else 0.0,
            transitions=sum(s[3] for s in in_steps),
            trades=len(in_trades))

    def reading_at(self, iid: str, now_ns: int) -> OfiReading | None:
        """:meth:`reading`, reused while it cannot change: until the token is fed again,
        the oldest term in its window leaves it, or a term stamped after the last read
        enters it (time going backwards reads afresh).  What a scanner asks for thousands
        of quiet tokens every scan."""
        hit = self._memo.get(iid)
        if hit is not None and hit[0] <= now_ns < hit[1]:
            return hit[2]
        r = self.reading(iid, now_ns)
        until = math.inf
        for q in (self._steps.get(iid), self._trades.get(iid)):
            for entry in q or ():
                t = entry[0]
                if t + self.window_ns <= now_ns:
                    continue  # left the window already (stamped out of order)
                # a term in the window leaves at t + window; a later one enters at t
                until = min(until, t + self.window_ns if t <= now_ns else t)
        self._memo[iid] = (now_ns, until, r)
        return r

    def valid_until(self, iid: str) -> float:
        """Until when (ns) :meth:`reading_at`'s last answer for ``iid`` holds (-inf: none)."""
        hit = self._memo.get(iid)
        return hit[1] if hit is not None else -math.inf

    def take_fed(self) -> set[str]:
        """The tokens fed since the last call (and forget them)."""
        fed, self.fed = self.fed, set()
        return fed

    def imbalance(self, iid: str, now_ns: int) -> float:
        """:attr:`OfiReading.imbalance` of ``iid`` (0 when unseen or quiet)."""
        r = self.reading(iid, now_ns)
        return r.imbalance if r is not None else 0.0

    def tokens(self) -> Iterable[str]:
        """Every token seen so far."""
        return set(self._steps) | set(self._trades)

    def signals(self, now_ns: int) -> list[Signal]:
        """One ``Signal("ofi", token, now, imbalance)`` per token seen, for publishing."""
        return [Signal(SIGNAL, iid, now_ns, self.imbalance(iid, now_ns))
                for iid in sorted(self.tokens())]


def published_imbalance(value: float | None) -> float | None:
    """A published ``"ofi"`` signal's value as an imbalance: clipped to [-1, 1], and None
    (no reading) when it is NaN or infinite.  ``Signal`` values are not validated by the
    core, and one NaN would make every score it enters NaN (ranked first by a sort) and
    an infinite one outweigh every other term."""
    if value is None or not math.isfinite(value):
        return None
    return min(1.0, max(-1.0, float(value)))


def market_ofi(market: MarketState, iid: str, now_ns: int,
               tracker: OfiTracker | None = None) -> float | None:
    """The OFI imbalance of ``iid`` in [-1, 1]: from ``tracker`` (after it observes
    ``market``) when given, else the published ``"ofi"`` signal, else None."""
    if tracker is not None:
        tracker.observe(market)
        r = tracker.reading(iid, now_ns)
        return r.imbalance if r is not None else None
    return published_imbalance(market.signal(SIGNAL, iid))


def flow_of(tracker: OfiTracker, market: MarketState, iid: str, ts_ns: int) -> float:
    """``I`` of ``iid``: ``tracker``'s OFI imbalance when it saw flow in its window, else
    the published ``"ofi"`` signal, else 0."""
    r = tracker.reading(iid, ts_ns)
    if r is not None and (r.transitions or r.trades):
        return r.imbalance
    published = published_imbalance(market.signal(SIGNAL, iid))
    return published if published is not None else 0.0


class FlowColumn:
    """:func:`flow_of` for the rows of a touch table, as a numpy column, recomputed only
    where asked and only for rows whose value can have moved since it was computed:
    tokens the tracker was fed, tokens whose window lost or gained a term
    (:meth:`OfiTracker.valid_until`), and tokens whose published ``"ofi"`` signal changed.
    A row not asked about stays marked until it is."""

    def __init__(self, tracker: OfiTracker) -> None:
        self.tracker = tracker
        self.values = np.zeros(0, dtype=np.float64)
        self._until = np.zeros(0, dtype=np.float64)
        self._at = np.zeros(0, dtype=np.int64)
        self._dirty = np.zeros(0, dtype=np.bool_)
        self._signals: dict[str, float | None] = {}
        self.recomputed = 0  # rows recomputed by the last update (tests, benchmark)

    def update(self, market: MarketState, ids: list[str], index: dict[str, int], ts_ns: int,
               rows: np.ndarray | None = None) -> np.ndarray:
        """The column at ``ts_ns`` (``ids``: the table's rows, ``index``: id -> row), exact
        for ``rows`` (every row when None)."""
        n = len(ids)
        if n > len(self.values):
            grow = n - len(self.values)
            self.values = np.concatenate([self.values, np.zeros(grow)])
            self._until = np.concatenate([self._until, np.full(grow, -math.inf)])
            self._at = np.concatenate([self._at, np.zeros(grow, dtype=np.int64)])
            self._dirty = np.concatenate([self._dirty, np.ones(grow, dtype=np.bool_)])
        fed = self.tracker.take_fed()
        signals = ({iid: published_imbalance(sig.value)
                    for (name, iid), sig in market.signals.items()
                    if name == SIGNAL} if market.signals else {})
        if signals != self._signals:
            old = self._signals
            fed |= {i for i in signals.keys() | old.keys() if signals.get(i) != old.get(i)}
            self._signals = signals
        if fed:
            self._dirty[[index[i] for i in fed if i in index]] = True
        if rows is None:
            rows = np.arange(n)
        stale = rows[self._dirty[rows] | (self._until[rows] <= ts_ns) | (self._at[rows] > ts_ns)]
        tracker = self.tracker
        values, until, at = self.values, self._until, self._at
        for r in stale.tolist():
            iid = ids[r]
            reading = tracker.reading_at(iid, ts_ns)
            if reading is not None and (reading.transitions or reading.trades):
                values[r] = reading.imbalance
            else:
                published = signals.get(iid)
                values[r] = published if published is not None else 0.0
            until[r] = tracker.valid_until(iid)
            at[r] = ts_ns
        self._dirty[stale] = False
        self.recomputed = len(stale)
        return values


_SHARED: weakref.WeakKeyDictionary[MarketState, dict[tuple[int, int], FlowColumn]] = (
    weakref.WeakKeyDictionary())


def shared_flows(market: MarketState, window_s: float, levels: int = 1) -> FlowColumn:
    """The :class:`FlowColumn` (and its :class:`OfiTracker`, ``.tracker``) that every
    incremental scanner reading ``market`` with this window and these levels shares, like
    the touch table: ``maker`` and ``ranked`` (same window by default) feed one tracker and
    read one column, so each book transition is read and each reading computed once.

    The tracker is made on the first call for ``market`` and these parameters and fed by
    every sharer's :meth:`OfiTracker.observe` (idempotent: a second call in one scan reads
    nothing new), so its history starts at the first sharer's first scan."""
    columns = _SHARED.get(market)
    if columns is None:
        columns = _SHARED[market] = {}
    key = (int(window_s * _NS), levels)
    column = columns.get(key)
    if column is None:
        column = columns[key] = FlowColumn(OfiTracker(window_s, levels=levels))
    return column
