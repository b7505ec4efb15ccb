"""Websocket order books: Kalshi's bid-only ladders with per-subscription ``seq`` checks,
turned into the core's YES and NO books.

Kalshi books hold bids only: a YES bid at ``p`` is a NO ask at ``1 - p``.  So the YES
instrument's book is (YES bids, asks at 1 - NO bids) and the NO instrument's the mirror.
Every frame of a subscription carries ``seq`` one above the last; anything else is a gap
and the books of that subscription are no longer trustworthy.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from argus_core import BookDelta, DataError, OrderBook, Side
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.instruments import NO, YES, instrument_id
from argus_venue_kalshi.schemas import dec

#: The finest grids Kalshi's fixed-point fields use: ``price_dollars`` to 4 decimals
#: (sub-penny markets included), ``count_fp`` / ``delta_fp`` to 2.  A value off them (or
#: beyond any real count, as ``1e400`` is) is a corrupted frame, never a level.
PRICE_QUANTUM = Decimal("0.0001")
COUNT_QUANTUM = Decimal("0.01")
MAX_COUNT = Decimal(10) ** 12


def on_grid(value: Decimal, quantum: Decimal) -> bool:
    """Whether ``value`` is a whole number of ``quantum`` (and of a real magnitude)."""
    return abs(value) < MAX_COUNT and value % quantum == 0


def _check(price: Decimal, count: Decimal, where: object) -> None:
    if not (0 < price < 1) or not on_grid(price, PRICE_QUANTUM):
        raise DataError(f"kalshi: book price {price} at {where!r} is not a Kalshi price")
    if not on_grid(count, COUNT_QUANTUM):
        raise DataError(f"kalshi: book count {count} at {where!r} is not a Kalshi count")


#: Keys under which Kalshi has sent one side's levels, current and older: ``yes`` / ``no``
#: ([cents, count]), ``yes_dollars`` / ``no_dollars`` ([dollars, count]; in the REST
#: answer's ``orderbook_fp`` the current key, with fp counts), ``yes_dollars_fp`` /
#: ``no_dollars_fp`` (the websocket snapshot's current key).
LEVEL_KEYS = {side: (side, f"{side}_dollars", f"{side}_dollars_fp", f"{side}_fp")
              for side in ("yes", "no")}


def book_sides(book: dict[str, Any], suffix: str, where: str) -> tuple[list[Any], list[Any]]:
    """The YES and NO levels of a book object, read under ``yes<suffix>`` /
    ``no<suffix>`` only.  A side absent (or null, or empty) is empty: Kalshi leaves out
    empty sides.  A side absent while another of its keys (:data:`LEVEL_KEYS`: an older
    shape) lists levels is a ``DataError``: those levels would be read as an empty book.
    A side that is not a list is a ``DataError`` too."""
    out: list[list[Any]] = []
    for side, keys in LEVEL_KEYS.items():
        key = f"{side}{suffix}"
        levels = book.get(key)
        if levels is None:
            unread = [k for k in keys if k != key and book.get(k)]
            if unread:
                raise DataError(f"kalshi: {where}: {side} levels under {', '.join(unread)}, "
                                f"which are not read ({key} is absent)")
            levels = []
        if not isinstance(levels, list):
            raise DataError(f"kalshi: {where}: {key} is {type(levels).__name__}, not a list "
                            f"of levels")
        out.append(levels)
    return out[0], out[1]


class SequenceGap(Exception):
    """A frame's ``seq`` is not one above the last of its subscription."""


class Ladders:
    """YES and NO bid ladders of one market (dollar price -> contracts)."""

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.bids: dict[str, dict[Decimal, Decimal]] = {"yes": {}, "no": {}}

    def load(self, yes: list[list[str]], no: list[list[str]]) -> None:
        """Replace both ladders from ``[[price_dollars, count_fp], ...]`` lists."""
        for side, levels in (("yes", yes), ("no", no)):
            ladder: dict[Decimal, Decimal] = {}
            for level in levels:
                if not isinstance(level, list | tuple) or len(level) != 2:
                    raise DataError(f"kalshi: book level {level!r} is not [price, count]")
                price, size = dec(level[0], "price"), dec(level[1], "count")
                _check(price, size, level)
                if size < 0:
                    raise DataError(f"kalshi: book level {level!r} out of range")
                if price in ladder:  # which of the two is the level? neither is trusted
                    raise DataError(f"kalshi: {self.ticker} {side} snapshot lists price "
                                    f"{price} twice")
                if size > 0:
                    ladder[price] = size
            self.bids[side] = ladder

    def apply(self, side: str, price: Decimal, delta: Decimal) -> Decimal:
        """Add ``delta`` contracts at ``price``; the level's new size."""
        if side not in self.bids or not (0 < price < 1):
            raise DataError(f"kalshi: delta on side {side!r} at {price} is invalid")
        _check(price, delta, f"{side} delta")
        size = self.bids[side].get(price, Decimal(0)) + delta
        if size < 0:
            raise DataError(f"kalshi: delta leaves {side} {price} at {size} contracts")
        if size == 0:
            self.bids[side].pop(price, None)
        else:
            self.bids[side][price] = size
        self._uncrossed(f"{side} delta at {price}")
        return size

    def _uncrossed(self, where: str) -> None:
        """A YES bid and a NO bid summing to $1 or more would have matched at Kalshi: the
        ladders missed an update (a ``DataError``: the stream resyncs)."""
        yes, no = self.bids["yes"], self.bids["no"]
        if yes and no and max(yes) + max(no) >= C.PAYOUT:
            raise DataError(f"kalshi: {self.ticker} book crossed after the {where}: best "
                            f"YES bid {max(yes)} + best NO bid {max(no)} >= 1")

    def books(self, ts_ns: int) -> list[OrderBook]:
        """The YES and NO core books."""
        out = []
        for outcome, own, other in ((YES, "yes", "no"), (NO, "no", "yes")):
            bids = sorted(self.bids[own].items(), reverse=True)
            asks = sorted((C.PAYOUT - p, q) for p, q in self.bids[other].items())
            out.append(OrderBook(instrument_id(self.ticker, outcome), ts_ns,
                                 _levels(bids), _levels(asks)))
        return out

    def deltas(self, side: str, price: Decimal, size: Decimal, ts_ns: int) -> list[BookDelta]:
        """One bid level change as the two core deltas (a bid on one, an ask on the other)."""
        own, other = (YES, NO) if side == "yes" else (NO, YES)
        return [BookDelta(instrument_id(self.ticker, own), ts_ns, Side.BUY, price, size),
                BookDelta(instrument_id(self.ticker, other), ts_ns, Side.SELL,
                          C.PAYOUT - price, size)]


def _levels(levels: list[tuple[Decimal, Decimal]]) -> np.ndarray:
    if not levels:
        return np.empty((0, 2), dtype=np.float64)
    return np.array([(float(p), float(q)) for p, q in levels], dtype=np.float64)


class SequenceCheck:
    """Last ``seq`` per subscription id."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}

    def check(self, frame: dict[str, Any]) -> None:
        """Accept ``frame`` or raise :class:`SequenceGap` (a snapshot may restart it)."""
        sid, seq = frame.get("sid"), frame.get("seq")
        if type(sid) is not int or type(seq) is not int:  # ``true`` is no seq
            raise SequenceGap(f"frame without integer sid/seq: {frame.get('type')}")
        last = self.last.get(sid)
        if last is not None and seq != last + 1:
            raise SequenceGap(f"sid {sid}: seq {seq} after {last}")
        self.last[sid] = seq

    def forget(self, sid: int) -> None:
        """Drop a subscription's counter (after unsubscribing)."""
        self.last.pop(sid, None)
