"""The local WebSocket v2 book, verified against Kraken's CRC32 checksum on every message.

Kraken's checksum is CRC32 over the top 10 asks (low to high) then the top 10
bids (high to low), each level rendered as its price and quantity text with
the ``.`` removed and leading zeros stripped.  The text must carry the pair's
full precision: the documented MATIC/USD examples only reproduce when
``0.566`` is read as ``0.5660`` (4 price decimals) and quantities at 8 lot
decimals.

So the book never holds floats.  Each price is kept as an integer count of
``10**-price_decimals`` (ticks) and each quantity as an integer count of
``10**-lot_decimals`` (units); both are exact, and "remove the dot, strip
leading zeros" of the padded decimal text is simply ``str(integer)``.  Each
level's checksum fragment is rendered once when the level changes and cached,
so a checksum is a 20-string join plus ``zlib.crc32``.

Why not sortedcontainers or a numpy ladder: the book is truncated to the
subscribed depth (10-1000 levels), so a plain sorted ``list`` with ``bisect``
is the fastest structure in CPython at these sizes, and it needs no
dependency.
"""

from __future__ import annotations

import re
import zlib
from bisect import bisect_left, insort
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from argus_core import DataError, OrderBook
from argus_venue_kraken.constants import CHECKSUM_LEVELS

_ZEROS = tuple("0" * n for n in range(40))
#: JSON's number grammar (ASCII digits, no sign but ``-``, no spaces or ``_``): Python's
#: ``int`` / ``Decimal`` also read " 101", "1_01", "+101" and non-ASCII digits, which no
#: Kraken message holds.
_JSON_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class BookError(DataError):
    """A book message could not be applied (bad level, precision overflow)."""


def _text(value: Any) -> str:
    """The decimal text of a JSON value (strings pass through; numbers keep their repr)."""
    if value.__class__ is str:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise BookError(f"expected a number, got {value!r}")
    return repr(value) if isinstance(value, float) else str(value)


def to_units(value: Any, decimals: int) -> int:
    """Exact integer count of ``10**-decimals`` in ``value`` (decimal text or number).

    Raises ``BookError`` when the value has more precision than ``decimals``
    (a level Kraken could not have sent for this pair) or is not a number.
    """
    text = value if value.__class__ is str else _text(value)
    whole, _, frac = text.partition(".")
    n = len(frac)
    digits = whole + frac
    if n <= decimals and whole and digits.isdigit() and digits.isascii():
        return int(digits + _ZEROS[decimals - n])
    # Slow path: exponents, excess trailing zeros, signs, junk.
    if _JSON_NUMBER.fullmatch(text) is None:
        raise BookError(f"{text[:40]!r} is not a decimal number")
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise BookError(f"{text!r} is not a decimal number") from None
    if not dec.is_finite() or dec < 0:
        raise BookError(f"{text!r} is not a finite non-negative number")
    scaled = dec.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise BookError(f"{text!r} has more than {decimals} decimals")
    return int(scaled)


class ChecksumBook:
    """One pair's L2 book at a subscribed depth, with exact levels and a CRC32 checksum.

    ``apply_snapshot`` / ``apply_update`` take the ``bids`` / ``asks`` lists of a
    v2 ``book`` message (``[{"price": ..., "qty": ...}, ...]``), apply them in
    order, truncate to ``depth`` and return the checksum of the result for the
    caller to compare with the message's ``checksum``.
    """

    __slots__ = ("_ask_keys", "_ask_qty", "_ask_str", "_bid_keys", "_bid_qty", "_bid_str",
                 "depth", "lot_decimals", "price_decimals", "symbol")

    def __init__(self, symbol: str, depth: int, price_decimals: int, lot_decimals: int) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.symbol = symbol
        self.depth = depth
        self.price_decimals = price_decimals
        self.lot_decimals = lot_decimals
        self.clear()

    def clear(self) -> None:
        """Forget every level."""
        # Asks keyed by ticks (ascending = best first); bids by *negated* ticks so both
        # sides are ascending lists where index 0 is the best level.
        self._ask_keys: list[int] = []
        self._bid_keys: list[int] = []
        self._ask_qty: dict[int, int] = {}
        self._bid_qty: dict[int, int] = {}
        self._ask_str: dict[int, str] = {}
        self._bid_str: dict[int, str] = {}

    # -- applying messages ---------------------------------------------------------
    def apply_snapshot(self, bids: Sequence[dict[str, Any]],
                       asks: Sequence[dict[str, Any]]) -> int:
        """Replace the book with a snapshot; return its checksum.

        Raises ``BookError`` for a snapshot that is no book: a price listed twice on one
        side or a level of quantity 0 (applied in order, the last copy of a price would
        win and a checksum over the collapsed book would hide it)."""
        self.clear()
        checksum = self.apply_update(bids, asks)
        for side, levels in (("bid", bids), ("ask", asks)):
            self._refuse_no_book(side, levels)
        return checksum

    def _refuse_no_book(self, side: str, levels: Sequence[dict[str, Any]]) -> None:
        """``BookError`` for a snapshot side listing a price twice or a quantity of 0
        (the levels already parsed in :meth:`apply_update`)."""
        seen: set[int] = set()
        for level in levels:
            tick = to_units(level["price"], self.price_decimals)
            if tick in seen:
                raise BookError(f"{self.symbol}: snapshot lists {side} price "
                                f"{level['price']!r} twice")
            if not to_units(level["qty"], self.lot_decimals):
                raise BookError(f"{self.symbol}: snapshot lists {side} price "
                                f"{level['price']!r} with quantity 0")
            seen.add(tick)

    def apply_update(self, bids: Sequence[dict[str, Any]], asks: Sequence[dict[str, Any]]) -> int:
        """Apply one update message's levels in order, truncate, return the checksum.

        Raises ``BookError`` for a level that is not a valid price/qty for this
        pair; the book must then be treated as stale (resubscribe).
        """
        try:
            return self._apply_fast(bids, asks)
        except (ValueError, TypeError, KeyError, IndexError):
            # Exponent notation or junk: replay the whole message on the checked path.
            # Re-applying levels already applied is harmless (set/delete are idempotent
            # and in-message order is preserved).
            return self._apply_checked(bids, asks)

    def _apply_checked(self, bids: Sequence[dict[str, Any]],
                       asks: Sequence[dict[str, Any]]) -> int:
        pd, ld = self.price_decimals, self.lot_decimals
        for is_bid, levels in ((False, asks), (True, bids)):
            if not isinstance(levels, list | tuple):
                raise BookError(f"{self.symbol}: levels must be a list, got {levels!r}")
            keys, qty, strs = ((self._bid_keys, self._bid_qty, self._bid_str) if is_bid
                               else (self._ask_keys, self._ask_qty, self._ask_str))
            for level in levels:
                if not isinstance(level, dict) or "price" not in level or "qty" not in level:
                    raise BookError(f"{self.symbol}: level {level!r} needs price and qty")
                tick = to_units(level["price"], pd)
                units = to_units(level["qty"], ld)
                if tick <= 0:
                    raise BookError(f"{self.symbol}: level price {level['price']!r} is not "
                                    f"positive")
                key = -tick if is_bid else tick
                if units:
                    if key not in qty:
                        insort(keys, key)
                    qty[key] = units
                    strs[key] = f"{tick}{units}"
                elif key in qty:
                    del qty[key], strs[key]
                    del keys[bisect_left(keys, key)]
            self._truncate(keys, qty, strs)
        return self.checksum()

    def _apply_fast(self, bids: Sequence[dict[str, Any]], asks: Sequence[dict[str, Any]]) -> int:
        if asks:
            self._apply_side_fast(asks, self._ask_keys, self._ask_qty, self._ask_str, 1)
        if bids:
            self._apply_side_fast(bids, self._bid_keys, self._bid_qty, self._bid_str, -1)
        return self.checksum()

    def _apply_side_fast(self, levels: Sequence[dict[str, Any]], keys: list[int],
                         qty: dict[int, int], strs: dict[int, str], sign: int) -> None:
        """One side's levels; ``sign`` -1 keys bids by negated ticks (ascending = best)."""
        pd, ld = self.price_decimals, self.lot_decimals
        zeros = _ZEROS
        for level in levels:
            p, q = level["price"], level["qty"]
            # Inlined fast path of to_units (this loop is the hot path).
            # ASCII digits only: int() alone also reads " 1", "1_0", "+1" and other scripts.
            if p.__class__ is str:
                w, _, f = p.partition(".")
                n, d = len(f), w + f
                tick = (int(d + zeros[pd - n]) if n <= pd and w and d.isdigit() and d.isascii()
                        else to_units(p, pd))
            else:
                tick = to_units(p, pd)
            if q.__class__ is str:
                w, _, f = q.partition(".")
                n, d = len(f), w + f
                units = (int(d + zeros[ld - n]) if n <= ld and w and d.isdigit() and d.isascii()
                         else to_units(q, ld))
            else:
                units = to_units(q, ld)
            if tick <= 0 or units < 0:
                raise ValueError("non-positive level")
            key = sign * tick
            if units:
                if key not in qty:
                    insort(keys, key)
                qty[key] = units
                strs[key] = f"{tick}{units}"
            elif key in qty:
                del qty[key], strs[key]
                del keys[bisect_left(keys, key)]
        self._truncate(keys, qty, strs)

    def _truncate(self, keys: list[int], qty: dict[int, int], strs: dict[int, str]) -> None:
        """Keep the subscribed depth: levels beyond it leave the book (Kraken's rule)."""
        if len(keys) > self.depth:
            for k in keys[self.depth:]:
                del qty[k], strs[k]
            del keys[self.depth:]

    def checksum(self) -> int:
        """CRC32 (unsigned) of the top-10 asks then top-10 bids, Kraken's v2 rule."""
        return zlib.crc32(self.checksum_text().encode())

    def checksum_text(self) -> str:
        """The string the checksum is computed over."""
        a, b = self._ask_str, self._bid_str
        return ("".join([a[k] for k in self._ask_keys[:CHECKSUM_LEVELS]])
                + "".join([b[k] for k in self._bid_keys[:CHECKSUM_LEVELS]]))

    # -- reading ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._bid_keys) + len(self._ask_keys)

    def is_crossed(self) -> bool:
        """Whether the best bid is at or above the best ask."""
        return bool(self._bid_keys and self._ask_keys
                    and -self._bid_keys[0] >= self._ask_keys[0])

    def bids_decimal(self) -> list[tuple[Decimal, Decimal]]:
        """Bid levels best first as exact (price, qty) Decimals."""
        pd, ld = self.price_decimals, self.lot_decimals
        return [(Decimal(-k).scaleb(-pd), Decimal(self._bid_qty[k]).scaleb(-ld))
                for k in self._bid_keys]

    def asks_decimal(self) -> list[tuple[Decimal, Decimal]]:
        """Ask levels best first as exact (price, qty) Decimals."""
        pd, ld = self.price_decimals, self.lot_decimals
        return [(Decimal(k).scaleb(-pd), Decimal(self._ask_qty[k]).scaleb(-ld))
                for k in self._ask_keys]

    def levels_array(self) -> tuple[np.ndarray, np.ndarray]:
        """(bids, asks) as float64 ``(n, 2)`` arrays, best first, for the core OrderBook."""
        bq, aq = self._bid_qty, self._ask_qty
        bids = np.array([(-k, bq[k]) for k in self._bid_keys], dtype=np.float64).reshape(-1, 2)
        asks = np.array([(k, aq[k]) for k in self._ask_keys], dtype=np.float64).reshape(-1, 2)
        # Divide exact integers once: the nearest float to the decimal value.
        if self.price_decimals:
            bids[:, 0] /= 10 ** self.price_decimals
            asks[:, 0] /= 10 ** self.price_decimals
        if self.lot_decimals:
            bids[:, 1] /= 10 ** self.lot_decimals
            asks[:, 1] /= 10 ** self.lot_decimals
        return bids, asks

    def to_order_book(self, instrument_id: str, ts_ns: int) -> OrderBook:
        """An immutable core ``OrderBook`` of the current levels."""
        bids, asks = self.levels_array()
        return OrderBook(instrument_id, ts_ns, bids, asks)
