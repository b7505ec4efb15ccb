"""The packed touch table: every book's top of book as numpy columns, shared by the scanners.

One :class:`TouchTable` per :class:`~argus_core.MarketState` (:func:`touch_table`), so the
seven scanners and ``ranked`` share one update per scan.  A row per book, in the order of
``market.books``; columns (float64 unless noted):

* per book, refreshed only for the books ``MarketState.changes_since`` lists: ``bid``,
  ``ask`` (NaN for an empty side), ``bid_size``, ``ask_size``, ``ts`` (int64), ``live``
  (bool), ``version`` (int64), ``ask_fee`` (the taker ``FeeSchedule.unit_fee`` at the best
  ask, memoised per schedule and price), ``sound`` (bool: no malformed level and not
  crossed, ``L2Book.fault``);
* per token, rebuilt when ``events_version`` or the instrument count changes: ``binary``
  (bool: ``instrument_of(...).kind == "binary"``), ``tick``, ``min_size``, ``accepting``
  (bool: ``Instrument.takes_orders``), ``event``
  (int64 index into :attr:`TouchTable.event_refs`, -1 for none), ``end_ts`` (int64, -1
  for none), ``closed`` (bool);
* from dicts the core does not report changes of, compared by identity on each refresh:
  ``trade_price`` / ``trade_ts`` (last trade, NaN / -1 without) and ``settle`` (the
  settlement price, NaN when unsettled, -1 when voided: settled, with no payout).

Every change stamps the row's :attr:`TouchTable.row_gen` with a new generation; a scanner
keeps the generation it last read and asks :meth:`TouchTable.changed_rows` (a vectorised
compare, not a walk), so each consumer reads exactly what changed since *its* last scan.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import numpy as np

from argus_core import FeeSchedule, Instrument, MarketState, Opportunity, Settlement
from argus_scanners_polymarket.common import (
    TICK_SIGNAL,
    TokenRef,
    by_profit,
    dec,
    instrument_of,
    restamp,
    tick_in_force,
    token_refs,
)

#: Margin of every float pre-check, in price units: a float rounding (1e-16) or the 9-digit
#: rounding of a forecast (5e-10) can never drop a finding the exact ``Decimal`` code keeps.
EPS = 1e-8

_TABLES: weakref.WeakKeyDictionary[MarketState, TouchTable] = weakref.WeakKeyDictionary()


def _settle_value(settled: Settlement | None) -> float:
    """The ``settle`` column's value: the price, NaN unsettled, -1 voided."""
    if settled is None:
        return float("nan")
    return -1.0 if settled.price is None else float(settled.price)


def touch_table(market: MarketState) -> TouchTable:
    """The table of ``market``, refreshed (made on first use; one per market state), unless
    a caller holds it refreshed (:meth:`TouchTable.held`)."""
    table = _TABLES.get(market)
    if table is None:
        table = _TABLES[market] = TouchTable()
    if not table.holds:
        table.refresh(market)
    return table


_COLUMNS: tuple[tuple[str, type, object], ...] = (
    ("bid", np.float64, np.nan), ("ask", np.float64, np.nan),
    ("bid_size", np.float64, 0.0), ("ask_size", np.float64, 0.0),
    ("ts", np.int64, 0), ("live", np.bool_, False), ("version", np.int64, -1),
    ("ask_fee", np.float64, 0.0), ("sound", np.bool_, True), ("accepting", np.bool_, True),
    ("binary", np.bool_, False),
    ("tick", np.float64, 0.01), ("min_size", np.float64, 0.0),
    ("event", np.int64, -1), ("end_ts", np.int64, -1), ("closed", np.bool_, False),
    ("trade_price", np.float64, np.nan), ("trade_ts", np.int64, -1),
    ("settle", np.float64, np.nan), ("row_gen", np.int64, 0))


def instruments_key(market: MarketState) -> tuple[int, int]:
    """What tells a scanner the instruments changed: their count and the core's
    ``MarketState.instruments_version``, which moves with every ``add_instruments`` (an
    instrument replaced under the same id, e.g. a market that stopped accepting orders,
    leaves the count as it was)."""
    return len(market.instruments), market.instruments_version


class TouchTable:
    """Top of book, fees and token facts of every book of one market state (module doc)."""

    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    ts: np.ndarray
    live: np.ndarray
    version: np.ndarray
    ask_fee: np.ndarray
    sound: np.ndarray
    accepting: np.ndarray
    binary: np.ndarray
    tick: np.ndarray
    min_size: np.ndarray
    event: np.ndarray
    end_ts: np.ndarray
    closed: np.ndarray
    trade_price: np.ndarray
    trade_ts: np.ndarray
    settle: np.ndarray
    row_gen: np.ndarray

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.gen = 0
        self.stamp = 0
        self._n_instruments: tuple[int, int] = (-1, -1)
        self._events_version = -1
        self.static_gen = 0  # generation of the last change of instrument or event facts
        self._row_refs: list[TokenRef | None] = []
        self._event_k: dict[str, int] = {}
        self.refs: dict[str, TokenRef] = {}
        self.event_refs: list[TokenRef] = []
        self.schedules: list[FeeSchedule] = []
        self.instruments: list[Instrument | None] = []  # instrument_of(market, row's id)
        # One price -> unit fee memo per distinct schedule object (kept alive beside it).
        self._memos: dict[int, tuple[FeeSchedule, dict[float, float]]] = {}
        self._trades: dict[str, object] = {}
        self._settled: dict[str, object] = {}
        self._ticks: dict[str, object] = {}  # token -> its tick signal as last read
        #: rows whose schedule moved with no instrument update (:meth:`terms_held`): read
        #: again at every refresh until the instruments change (a fee that rose and fell
        #: back would otherwise keep the row's unit fee high, its findings missed)
        self._drifting: set[int] = set()
        self.holds = 0  # > 0: refreshed by a caller that scans an unchanging state
        self._usable: tuple[tuple[int, ...] | None, np.ndarray, np.ndarray] = (
            None, np.zeros(0, bool), np.zeros(0, bool))
        self._alloc(0)

    # -- storage -------------------------------------------------------------------------
    def _alloc(self, n: int) -> None:
        def grow(old: np.ndarray | None, dtype: type, fill: object) -> np.ndarray:
            new: np.ndarray = np.full(n, fill, dtype=dtype)
            if old is not None:
                new[:len(old)] = old[:n]
            return new

        get = self.__dict__.get
        for name, dtype, fill in _COLUMNS:
            setattr(self, name, grow(get(name), dtype, fill))

    def __len__(self) -> int:
        return len(self.ids)

    @contextmanager
    def held(self) -> Iterator[TouchTable]:
        """Skip the refresh of :func:`touch_table` while inside: for a caller that has just
        refreshed the table and runs several scanners on a market state nothing changes
        during (``ranked``: one refresh a scan instead of one per component; each refresh
        walks the trade, settlement and signal dicts)."""
        self.holds += 1
        try:
            yield self
        finally:
            self.holds -= 1

    # -- refresh -------------------------------------------------------------------------
    def refresh(self, market: MarketState) -> None:
        """Bring the table up to ``market``: new books appended, changed books repacked,
        instrument facts re-read when the instruments changed, event facts for the
        tokens whose event changed when ``events_version`` moved, trades and settlements
        compared.  Costs what changed (plus one pass over the trade and settlement
        dicts, and one identity check per row when the events changed)."""
        changed_ids, self.stamp = market.changes_since(self.stamp)
        touched: list[int] = []
        grown = len(market.books) > len(self.ids)
        if grown:
            new = list(market.books)[len(self.ids):]  # market.books only grows, in order
            start = len(self.ids)
            self.ids.extend(new)
            self.index.update((iid, start + k) for k, iid in enumerate(new))
            self._alloc(len(self.ids))
            self.schedules += [FeeSchedule()] * len(new)
            self.instruments += [None] * len(new)
            self._row_refs += [None] * len(new)
            rows = range(start, len(self.ids))
            self._instrument_facts(market, rows)
            self._dict_facts(market, rows)
            self._pack(market, list(rows))
            touched.extend(rows)
        if instruments_key(market) != self._n_instruments:
            self._n_instruments = instruments_key(market)
            touched.extend(self._instrument_facts(market, range(len(self.ids))))
            self.static_gen = self.gen + 1
            self._drifting.clear()  # every schedule read again
        elif self._drifting:
            touched.extend(self._renew_schedules(market, sorted(self._drifting)))
        if grown or market.events_version != self._events_version:
            self._events_version = market.events_version
            touched.extend(self._event_facts(market))
            self.static_gen = self.gen + 1
        index = self.index
        rows_changed = [index[i] for i in changed_ids if i in index]
        self._pack(market, rows_changed)
        touched.extend(rows_changed)
        touched.extend(self._dicts(market))
        if touched:
            self.gen += 1
            self.row_gen[np.asarray(touched, dtype=np.int64)] = self.gen

    def _instrument_facts(self, market: MarketState, rows: range) -> list[int]:
        """Re-read the instruments and fee schedules of ``rows``; the rows whose changed
        (their best ask's unit fee repacked)."""
        changed = []
        known = market.instruments
        for r in rows:
            iid = self.ids[r]
            inst = known.get(iid)
            schedule = market.fee_schedule(iid)
            if inst is not None and inst is self.instruments[r] and schedule is self.schedules[r]:
                continue
            if inst is None:
                inst = instrument_of(market, iid)  # a stand-in for an unknown polymarket id
            self.instruments[r], self.schedules[r] = inst, schedule
            self.binary[r] = inst is not None and inst.kind == "binary"
            self.tick[r] = float(tick_in_force(market, inst)) if inst is not None else 0.01
            self.min_size[r] = float(inst.min_size) if inst is not None else 0.0
            self.accepting[r] = inst is None or inst.takes_orders
            changed.append(r)
        self._pack(market, changed)
        return changed

    def _event_facts(self, market: MarketState) -> list[int]:
        """Event index, end and closed flag of the rows whose token's event changed."""
        self.refs = refs = token_refs(market)
        changed = []
        row_refs, events = self._row_refs, self._event_k
        for r, iid in enumerate(self.ids):
            ref = refs.get(iid)
            if ref is row_refs[r]:
                continue
            row_refs[r] = ref
            changed.append(r)
            if ref is None:
                self.event[r], self.end_ts[r], self.closed[r] = -1, -1, False
                continue
            ev = ref.event
            k = events.get(ev.event_id)
            if k is None:
                k = events[ev.event_id] = len(self.event_refs)
                self.event_refs.append(ref)
            self.event_refs[k] = ref
            self.event[r] = k
            self.end_ts[r] = ev.end_ts_ns if ev.end_ts_ns is not None else -1
            self.closed[r] = ev.closed
        return changed

    def _dict_facts(self, market: MarketState, rows: range) -> None:
        """Last trade and settlement of new ``rows``."""
        for r in rows:
            iid = self.ids[r]
            trade = market.trades.get(iid)
            self._trades[iid] = trade
            self.trade_price[r] = float(trade.price) if trade is not None else np.nan
            self.trade_ts[r] = trade.ts_ns if trade is not None else -1
            settled = market.settled.get(iid)
            self._settled[iid] = settled
            self.settle[r] = _settle_value(settled)

    def _pack(self, market: MarketState, rows: list[int]) -> None:
        """Read the touch of ``rows``' books into the columns (one vectorised write per
        column: a numpy scalar write per cell would cost as much as the read)."""
        books, ids = market.books, self.ids
        nan = np.nan
        packed: list[tuple[int, float, float, float, float, float, int, bool, int, bool]] = []
        fee_at = self.unit_fee_at
        for r in rows:
            book = books.get(ids[r])
            if book is None:
                continue
            bids, asks = book.bids, book.asks
            if book.malformed():  # L2Book.fault's first half; the cross is read below
                packed.append((r, nan, 0.0, nan, 0.0, 0.0, book.ts_ns, book.live,
                               book.version, False))
                continue
            if bids:
                b = max(bids)
                bid, bid_size = b, bids[b]
            else:
                bid, bid_size = nan, 0.0
            if asks:
                a = min(asks)
                ask, ask_size, fee = a, asks[a], fee_at(r, a)
            else:
                ask, ask_size, fee = nan, 0.0, 0.0
            packed.append((r, bid, bid_size, ask, ask_size, fee, book.ts_ns, book.live,
                           book.version, not (bids and asks and bid >= ask)))
        if not packed:
            return
        cols = list(zip(*packed, strict=True))
        at = np.array(cols[0], dtype=np.int64)
        for name, col in zip(("bid", "bid_size", "ask", "ask_size", "ask_fee", "ts", "live",
                              "version", "sound"), cols[1:], strict=True):
            column = getattr(self, name)
            column[at] = np.array(col, dtype=column.dtype)

    def _dicts(self, market: MarketState) -> list[int]:
        out = []
        index, seen = self.index, self._trades
        for iid, trade in market.trades.items():
            if seen.get(iid) is not trade:
                seen[iid] = trade
                r = index.get(iid)
                if r is not None:
                    self.trade_price[r] = float(trade.price)
                    self.trade_ts[r] = trade.ts_ns
                    out.append(r)
        settled = self._settled
        for iid, s in market.settled.items():
            if settled.get(iid) is not s:
                settled[iid] = s
                r = index.get(iid)
                if r is not None:
                    self.settle[r] = _settle_value(s)
                    out.append(r)
        ticks = self._ticks
        for (name, iid), sig in market.signals.items():  # a venue's tick size change
            if name == TICK_SIGNAL and ticks.get(iid) is not sig:
                ticks[iid] = sig
                r = index.get(iid)
                inst = self.instruments[r] if r is not None else None
                if r is not None and inst is not None:
                    self.tick[r] = float(tick_in_force(market, inst))
                    out.append(r)
        return out

    # -- reading -------------------------------------------------------------------------
    def changed_rows(self, since_gen: int) -> np.ndarray:
        """Rows changed after generation ``since_gen`` (all rows for -1)."""
        return np.flatnonzero(self.row_gen > since_gen)

    def usable(self, market: MarketState, *, settled_ok: bool = False) -> np.ndarray:
        """:func:`~argus_scanners_polymarket.common.tradeable` of every row at
        ``market.now_ns``, vectorised: live and not stale (``market.tradeable``), sound,
        accepting orders, its event not closed, not settled (``settled_ok``: settled
        rows too).  Read-only, and the same array while the table's generation and (with a
        stale guard) the market's time are unchanged."""
        key = (self.gen, len(self.ids), market.stale_after_ns,
               market.now_ns if market.stale_after_ns else 0)
        if self._usable[0] != key:  # the components of one scan ask it in turn
            ok = self.live & self.sound & self.accepting & ~self.closed
            if market.stale_after_ns:
                ok &= (market.now_ns - self.ts) <= market.stale_after_ns
            unsettled = ok & np.isnan(self.settle)
            ok.setflags(write=False)  # shared by the callers until a row or the time moves
            unsettled.setflags(write=False)
            self._usable = (key, ok, unsettled)
        return self._usable[1] if settled_ok else self._usable[2]

    def unit_fee_at(self, row: int, price: float) -> float:
        """Taker ``unit_fee`` of ``row``'s schedule at ``price`` (memoised)."""
        schedule = self.schedules[row]
        memo = self._memos.get(id(schedule))
        if memo is None or memo[0] is not schedule:
            memo = self._memos[id(schedule)] = (schedule, {})
        fee = memo[1].get(price)
        if fee is None:
            fee = memo[1][price] = float(schedule.unit_fee(dec(price)))
        return fee

    def fee_of(self, row: int, price: Decimal, size: Decimal, *, maker: bool) -> Decimal:
        """``FeeSchedule.fee`` of ``row``'s schedule."""
        return self.schedules[row].fee(price, size, maker=maker)

    def terms_held(self, market: MarketState) -> Callable[[list[Opportunity]], bool]:
        """A check for :meth:`RowCache.collect` (``verify``): whether every leg of cached
        findings is still priced on the fee schedule in force (``market.fee_schedule``).

        The table reads schedules when the instruments change; a schedule that moved
        without an instrument update (a venue's fee change, a ``[paper]`` override
        swapped mid-run) left every cached finding on that book priced at the old fee (a
        loss reported as a profit, red team round 40).  A leg whose schedule moved has its
        row renewed (schedule, the best ask's unit fee, a new generation, so every
        scanner's cache on it moves) and the check answers False: the finding is built
        again on the new terms, and the row's schedule is read at every refresh from then
        on (a fee that rose and fell back is seen falling).  Only cached findings are
        checked (a handful of legs a scan): a schedule that moved on a book with no
        finding is read at the next instrument change (a finding missed, never one
        mispriced: the exact walks read the schedule in force)."""
        index = self.index

        def held(found: list[Opportunity]) -> bool:
            rows = [r for o in found for leg in o.legs
                    if (r := index.get(leg.instrument_id)) is not None]
            moved = self._renew_schedules(market, rows)
            if moved:
                self._drifting.update(moved)  # read again every refresh from now on
                self.gen += 1
                self.row_gen[np.asarray(moved, dtype=np.int64)] = self.gen
            return not moved

        return held

    def _renew_schedules(self, market: MarketState, rows: list[int]) -> list[int]:
        """Re-read ``rows``' fee schedules; those that moved (their best ask's unit fee
        repacked on the new one)."""
        schedules, ids = self.schedules, self.ids
        moved = []
        for r in dict.fromkeys(rows):
            now, old = market.fee_schedule(ids[r]), schedules[r]
            if now is not old and now != old:
                schedules[r] = now
                moved.append(r)
        if moved:
            self._pack(market, moved)
        return moved


class RowCache:
    """Exact findings per row, reused while the key they were built for is unchanged.

    A key is a row of int64 (floats by their bit pattern: ``keys_of``) naming every input
    of the exact code: the row's generation in the table, and whatever scan-time quantity
    the findings depend on.  The keys of all candidates are compared in one vectorised
    step; only rows whose key moved are built again."""

    def __init__(self) -> None:
        self.found: dict[int, list[Opportunity]] = {}
        self._keys = np.zeros((0, 0), dtype=np.int64)
        self._built = np.zeros(0, dtype=np.bool_)
        self.built = 0  # rows built by the exact code in the last scan (tests, benchmark)

    def collect(self, rows: np.ndarray, keys: np.ndarray,
                build: Callable[[int], list[Opportunity]],
                still: Callable[[int, list[Opportunity]], bool | list[Opportunity]] | None = None,
                verify: Callable[[list[Opportunity]], bool] | None = None
                ) -> list[list[Opportunity]]:
        """The findings of each of ``rows`` (ascending), building those whose ``keys``
        (one row of int64 per row) differ from the cached ones.  ``verify(cached)`` (when
        given: :meth:`TouchTable.terms_held`) checks a cached row's findings first: False
        builds it again.  ``still(row, cached)`` (when given) re-checks a cached row: True
        keeps it, False builds it again, a list replaces it (the same findings re-worded,
        say)."""
        n = int(rows[-1]) + 1 if len(rows) else 0
        width = keys.shape[1] if keys.ndim == 2 else 0
        if n > len(self._built) or width != self._keys.shape[1]:
            size = max(n, len(self._built))
            old_keys, old_built = self._keys, self._built
            self._keys = np.zeros((size, width), dtype=np.int64)
            self._built = np.zeros(size, dtype=np.bool_)
            if width == old_keys.shape[1]:
                self._keys[:len(old_keys)] = old_keys
                self._built[:len(old_built)] = old_built
        moved = ~self._built[rows] | (self._keys[rows] != keys).any(axis=1)
        if verify is not None:
            for k in np.flatnonzero(~moved).tolist():
                cached = self.found[int(rows[k])]
                if cached and not verify(cached):
                    moved[k] = True
        if still is not None:
            for k in np.flatnonzero(~moved).tolist():
                r = int(rows[k])
                verdict = still(r, self.found[r])
                if verdict is False:
                    moved[k] = True
                elif verdict is not True:
                    self.found[r] = verdict
        stale = rows[moved]
        found = self.found
        for r in stale.tolist():
            found[r] = build(r)
        self._keys[stale] = keys[moved]
        self._built[stale] = True
        self.built = len(stale)
        return [found[r] for r in rows.tolist()]

    def clear(self) -> None:
        """Forget everything."""
        self.found.clear()
        self._built[:] = False


def keys_of(*columns: np.ndarray | int) -> np.ndarray:
    """One int64 key row per candidate from int64 or float64 columns (floats by their bit
    pattern, so equal keys mean bit-identical inputs) or scalars."""
    cols = []
    size = max((len(c) for c in columns if isinstance(c, np.ndarray)), default=0)
    for c in columns:
        if isinstance(c, np.ndarray):
            cols.append(c.view(np.int64) if c.dtype == np.float64 else c.astype(np.int64))
        else:
            cols.append(np.full(size, c, dtype=np.int64))
    return np.column_stack(cols) if cols else np.zeros((size, 0), dtype=np.int64)


def stamped(lists: Iterable[list[Opportunity]], ts_ns: int) -> list[Opportunity]:
    """Every finding of ``lists`` restamped to ``ts_ns``, most profitable first (ties in
    row order, as the per-book loops returned them)."""
    return by_profit([restamp(o, ts_ns) for found in lists for o in found])
