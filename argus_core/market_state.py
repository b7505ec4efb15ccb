"""Market state: the latest books, bars, trades and events, with a stale-data guard.

Books are kept as two ``dict[price, size]`` ladders per instrument.  A dict
write is the cheapest correct structure for level updates in Python; sorted
views are built lazily and cached until the next change, because scanners
read far less often than venues write.

Every change to a book (through ``L2Book``'s methods or :meth:`MarketState.apply`)
adds its instrument id to one set the state shares with its books: a set.add on
the hot path.  Consumers ask :meth:`MarketState.changes_since` with their own
stamp, so a scan costs what changed rather than a read of every book.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from argus_core.errors import DataError
from argus_core.interfaces import FeeSchedule, Forecaster
from argus_core.models import (
    Bar,
    BookDelta,
    BookStatus,
    Event,
    Instrument,
    MarketEvent,
    OrderBook,
    Settlement,
    Side,
    Signal,
    Trade,
)

_EMPTY = np.empty((0, 2), dtype=np.float64)


def _ladder_fault(ladder: dict[float, float]) -> bool:
    """A price or size NaN, infinite or not positive (``sum`` is NaN or infinite if any one
    is: C loops, no Python per level)."""
    if not ladder:
        return False
    sizes = ladder.values()
    return not (math.isfinite(sum(ladder)) and math.isfinite(sum(sizes))
                and min(ladder) > 0 and min(sizes) > 0)
_INF = float("inf")
_NO_FEES = FeeSchedule()


class L2Book:
    """A mutable price-level book for one instrument."""

    __slots__ = ("_ask_view", "_bid_view", "_changed", "asks", "bids", "instrument_id", "live",
                 "snapshots", "stale_reason", "ts_ns", "version")

    def __init__(self, instrument_id: str, changed: set[str] | None = None) -> None:
        self.instrument_id = instrument_id
        # The owning MarketState's set of changed ids (a private one for a standalone book).
        self._changed = changed if changed is not None else set()
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.ts_ns = 0
        self.live = False
        self.stale_reason = "no snapshot yet"
        self._bid_view: np.ndarray | None = None
        self._ask_view: np.ndarray | None = None
        # Bumped on every change (levels or liveness): a scanner that remembers the version
        # it last read can skip the books that did not change since.
        self.version = 0
        self.snapshots = 0  # how many whole books the venue has sent (each one resets all)

    def load_snapshot(self, book: OrderBook) -> None:
        """Replace both sides with ``book`` and mark the book live."""
        self.bids = {float(p): float(q) for p, q in book.bids if q > 0}
        self.asks = {float(p): float(q) for p, q in book.asks if q > 0}
        self.ts_ns = book.ts_ns
        self.live = True
        self.stale_reason = ""
        self._bid_view = self._ask_view = None
        self.version += 1
        self.snapshots += 1
        self._changed.add(self.instrument_id)

    def apply(self, side: Side, price: float, size: float, ts_ns: int) -> None:
        """Set one level (``size == 0`` deletes it); ``DataError`` for a price that is not
        finite and positive or a size that is not finite and >= 0 (NaN fails both), as a
        ``BookDelta`` refuses them: scanners read these levels as they are."""
        if not (0.0 < price < _INF and 0.0 <= size < _INF):
            raise DataError(f"{self.instrument_id}: book level {price!r} x {size!r}: the "
                            f"price must be finite and > 0, the size finite and >= 0")
        ladder = self.bids if side is Side.BUY else self.asks
        if size > 0:  # plain floats: a numpy scalar (a float too) made the mid unreadable
            ladder[float(price)] = float(size)
        else:
            ladder.pop(price, None)
        self.ts_ns = ts_ns
        self.version += 1
        self._changed.add(self.instrument_id)
        if side is Side.BUY:
            self._bid_view = None
        else:
            self._ask_view = None

    def apply_many(self, is_bid: np.ndarray, prices: np.ndarray, sizes: np.ndarray,
                   ts_ns: int) -> None:
        """Apply a batch of level updates (the fast path for venue adapters); a level
        :meth:`apply` would refuse raises ``DataError`` with the levels before it applied
        (as the same updates one by one would leave the book)."""
        bids, asks = self.bids, self.asks
        for bid, price, size in zip(is_bid.tolist(), prices.tolist(), sizes.tolist(),
                                    strict=True):
            if not (0.0 < price < _INF and 0.0 <= size < _INF):
                self.ts_ns = ts_ns
                self._bid_view = self._ask_view = None
                self.version += 1
                self._changed.add(self.instrument_id)
                raise DataError(f"{self.instrument_id}: book level {price!r} x {size!r}: "
                                f"the price must be finite and > 0, the size finite and >= 0")
            ladder = bids if bid else asks
            if size > 0:
                ladder[price] = size
            else:
                ladder.pop(price, None)
        self.ts_ns = ts_ns
        self._bid_view = self._ask_view = None
        self.version += 1
        self._changed.add(self.instrument_id)

    def bid_levels(self) -> np.ndarray:
        """Bids as an (n, 2) array, best (highest) first."""
        if self._bid_view is None:
            self._bid_view = (np.array(sorted(self.bids.items(), reverse=True), dtype=np.float64)
                              if self.bids else _EMPTY)
        return self._bid_view

    def ask_levels(self) -> np.ndarray:
        """Asks as an (n, 2) array, best (lowest) first."""
        if self._ask_view is None:
            self._ask_view = (np.array(sorted(self.asks.items()), dtype=np.float64)
                              if self.asks else _EMPTY)
        return self._ask_view

    def snapshot(self) -> OrderBook:
        """An immutable, validated copy (raises ``DataError`` if the book is crossed)."""
        return OrderBook(self.instrument_id, self.ts_ns, self.bid_levels(), self.ask_levels())

    def malformed(self) -> bool:
        """A level no validated input could hold on either side (see :meth:`fault`)."""
        return _ladder_fault(self.bids) or _ladder_fault(self.asks)

    def fault(self) -> str:
        """Why this book cannot be read as one ("" when it can): a level no validated input
        could hold (a price or size NaN, infinite or not positive: written into the dicts
        directly, past :meth:`apply`'s checks), or a crossed touch (best bid >= best ask,
        which a snapshot refuses but a run of deltas can leave behind)."""
        bids, asks = self.bids, self.asks
        if self.malformed():
            return "malformed level (NaN, infinite or non-positive price or size)"
        if bids and asks and max(bids) >= min(asks):
            return f"crossed book (best bid {max(bids)} >= best ask {min(asks)})"
        return ""

    def best_bid(self) -> float | None:
        """Highest bid price."""
        return max(self.bids) if self.bids else None

    def best_ask(self) -> float | None:
        """Lowest ask price."""
        return min(self.asks) if self.asks else None


class MarketState:
    """Everything the loop knows about the market at the simulated (or real) now.

    ``stale_after_ns`` > 0 enables the stale-data guard: a book not updated
    within that window, or one a venue marked not live, is untradeable.

    ``fees`` looks up the fee schedule in force for an instrument (the runner binds the
    venue's, with any ``[paper]`` overrides; ``argus scan`` the venue's): scanners read it
    through :meth:`fee_schedule`.  Unbound, every instrument trades free.
    """

    def __init__(self, stale_after_ns: int = 0,
                 fees: Callable[[str], FeeSchedule] | None = None) -> None:
        self.stale_after_ns = stale_after_ns
        self.fees = fees
        self.books: dict[str, L2Book] = {}
        self.bars: dict[str, Bar] = {}
        self.trades: dict[str, Trade] = {}
        self.events: dict[str, Event] = {}
        self.signals: dict[tuple[str, str], Signal] = {}
        #: the run's forecasters by name (``register_forecasters``), built on first use
        self.forecasters: Mapping[str, Forecaster] = {}
        self.instruments: dict[str, Instrument] = {}
        self.instruments_version = 0  # moves with every add_instruments
        self.settled: dict[str, Settlement] = {}
        self.now_ns = 0
        self._changed: set[str] = set()  # books changed since the last changes_since call
        # instrument id -> stamp of its book's last change, oldest first (re-inserted on change)
        self._stamps: dict[str, int] = {}
        self._stamp = 0
        #: bumped whenever :meth:`apply` stores an ``Event``: scanners rebuild their baskets
        self.events_version = 0

    def add_instruments(self, instruments: Iterable[Instrument]) -> None:
        """Make instruments known (tick sizes, minimum sizes) to scanners and the broker;
        :attr:`instruments_version` moves, so a scanner that packed them sees a replaced
        one (a market that stopped taking orders, a new tick size) under the same id."""
        for inst in instruments:
            self.instruments[inst.id] = inst
        self.instruments_version += 1

    def book(self, instrument_id: str) -> L2Book:
        """The book of ``instrument_id`` (created empty and not live when unseen)."""
        book = self.books.get(instrument_id)
        if book is None:
            book = self.books[instrument_id] = L2Book(instrument_id, self._changed)
            self._changed.add(instrument_id)  # a new book is news to every consumer
        return book

    def changes_since(self, stamp: int) -> tuple[list[str], int]:
        """Instrument ids whose book changed after ``stamp``, and the stamp to pass next.

        Start from ``stamp=0`` (every book ever changed or created).  Each consumer keeps its
        own stamp, so several scanners read one state independently; a book changed twice
        is listed once.  Read the books *after* this call: a change made later (even while
        the caller is still reading) is listed by the next call.  Counts changes made
        through ``L2Book``'s methods and :meth:`apply`; writing a book's attributes
        directly bypasses it.
        """
        changed, stamps = self._changed, self._stamps
        if changed:
            self._stamp += 1
            now = self._stamp
            for iid in list(changed):
                stamps.pop(iid, None)
                stamps[iid] = now
            changed.clear()  # clear, not pop: it also shrinks the table (pop scans it)
        out = []
        for iid in reversed(stamps):  # newest first: stop at the first one already seen
            if stamps[iid] <= stamp:
                break
            out.append(iid)
        return out, self._stamp

    def apply(self, event: MarketEvent) -> None:
        """Fold one market event into the state.  Time never goes backwards."""
        kind = type(event)
        if kind is BookDelta or kind is Bar:  # the hot ones first, without the chain below
            ts = event.ts_ns  # type: ignore[union-attr]
            if ts > self.now_ns:
                self.now_ns = ts
            iid = event.instrument_id  # type: ignore[union-attr]
            if kind is Bar:
                last = self.bars.get(iid)
                # an older bar (a candle a venue sends again on reconnect) is not news
                if last is None or ts >= last.ts_ns:
                    self.bars[iid] = event  # type: ignore[assignment]
                return
            book = self.books.get(iid) or self.book(iid)
            # L2Book.apply inlined (the hot path of a book feed)
            if event.side is Side.BUY:  # type: ignore[union-attr]
                ladder, book._bid_view = book.bids, None
            else:
                ladder, book._ask_view = book.asks, None
            size = event.size_f  # type: ignore[union-attr]
            if size > 0:
                ladder[event.price_f] = size  # type: ignore[union-attr]
            else:
                ladder.pop(event.price_f, None)  # type: ignore[union-attr]
            book.ts_ns = ts
            book.version += 1
            book._changed.add(iid)
            return
        ts = getattr(event, "ts_ns", None)
        if ts is not None and ts > self.now_ns:
            self.now_ns = ts
        if isinstance(event, BookDelta):
            self.book(event.instrument_id).apply(event.side, event.price_f, event.size_f,
                                                 event.ts_ns)
        elif isinstance(event, OrderBook):
            self.book(event.instrument_id).load_snapshot(event)
        elif isinstance(event, Bar):  # a Bar subclass; the newest is kept, as above
            last = self.bars.get(event.instrument_id)
            if last is None or event.ts_ns >= last.ts_ns:
                self.bars[event.instrument_id] = event
        elif isinstance(event, Trade):  # the newest print: one replayed is not the market
            last_trade = self.trades.get(event.instrument_id)
            if last_trade is None or event.ts_ns >= last_trade.ts_ns:
                self.trades[event.instrument_id] = event
        elif isinstance(event, BookStatus):
            book = self.book(event.instrument_id)
            book.live = event.live and book.live
            book.stale_reason = "" if book.live else (event.reason or "marked stale by venue")
            book.version += 1
            self._changed.add(event.instrument_id)
        elif isinstance(event, Event):
            self.events[event.event_id] = event
            self.events_version += 1
        elif isinstance(event, Settlement):
            self.settled[event.instrument_id] = event
        elif isinstance(event, Signal):
            self.signals[(event.name, event.instrument_id)] = event
        elif isinstance(event, Instrument):
            self.add_instruments((event,))
        else:
            raise DataError(f"market state cannot apply {type(event).__name__}")

    def has_data(self, instrument_id: str) -> bool:
        """Whether a book, a bar or a print of ``instrument_id`` has been seen (a price to
        judge an order by)."""
        return instrument_id in self.books or instrument_id in self.bars \
            or instrument_id in self.trades

    def tradeable(self, instrument_id: str) -> tuple[bool, str]:
        """Whether the book may be traded now, and why not (not live, stale, or a
        :meth:`L2Book.fault`: a crossed book is a feed that missed updates, its prices
        were never offered)."""
        book = self.books.get(instrument_id)
        if book is None:
            return False, "no book"
        if not book.live:
            return False, book.stale_reason or "book not live"
        if self.stale_after_ns and self.now_ns - book.ts_ns > self.stale_after_ns:
            age_s = (self.now_ns - book.ts_ns) / 1e9
            return False, f"book is stale ({age_s:.1f}s since last update)"
        fault = book.fault()
        return not fault, fault

    def bounded_mark(self, instrument_id: str, mark: Decimal) -> Decimal:
        """``mark`` held inside a live one-sided book of ``instrument_id``: never above its
        best ask when it shows asks only (anyone can buy there, so nothing is worth more),
        never below its best bid when it shows bids only; ``mark`` itself otherwise.  A
        market whose buyers left (a prediction market collapsing) no longer keeps the
        mid it had, and the drawdown kill switch sees the fall."""
        book = self.books.get(instrument_id)
        if book is None or not book.live or bool(book.bids) == bool(book.asks):
            return mark
        if book.asks:
            ask = Decimal(repr(min(book.asks)))
            return ask if mark > ask else mark
        bid = Decimal(repr(max(book.bids)))
        return bid if mark < bid else mark

    def live_mid(self, instrument_id: str) -> float | None:
        """The mid of a live, two-sided, uncrossed book of ``instrument_id``, else None (a
        crossed book is a feed that missed updates: its mid is no price)."""
        book = self.books.get(instrument_id)
        if book is None or not book.live or not book.bids or not book.asks:
            return None
        bid, ask = max(book.bids), min(book.asks)
        return (bid + ask) / 2 if bid < ask else None

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """The fee schedule in force for ``instrument_id`` (no fees when none is bound)."""
        return self.fees(instrument_id) if self.fees is not None else _NO_FEES

    def signal(self, name: str, instrument_id: str) -> float | None:
        """Latest value of a published signal (regime features, P(change), ...)."""
        sig = self.signals.get((name, instrument_id))
        return sig.value if sig else None

    def summary(self) -> dict[str, Any]:
        """Counts for logs and status displays."""
        return {"books": len(self.books), "bars": len(self.bars), "events": len(self.events),
                "now_ns": self.now_ns}
