"""CLOB books: the venue's hash check and conversion to core ``OrderBook`` objects.

The hash is py-clob-client-v2's ``generate_orderbook_summary_hash`` (sha1 of a
compact JSON in the server's key order), so we check books exactly the way
Polymarket's maintained client does rather than re-deriving the algorithm.
"""

from __future__ import annotations

import numpy as np
from py_clob_client_v2.clob_types import OrderBookSummary, OrderSummary
from py_clob_client_v2.utilities import generate_orderbook_summary_hash

from argus_core import OrderBook
from argus_venue_polymarket.schemas import ClobBook

#: Fields the server hashes besides the levels; a websocket frame lacking one cannot be checked.
HASHED_FIELDS = ("market", "asset_id", "timestamp", "min_order_size", "tick_size", "neg_risk",
                 "last_trade_price")


def book_hash(book: ClobBook) -> str:
    """The hash the venue computes for ``book`` (levels in the order they were sent)."""
    summary = OrderBookSummary(
        market=book.market,
        asset_id=book.asset_id,
        timestamp=book.timestamp,
        bids=[OrderSummary(price=lvl.price, size=lvl.size) for lvl in book.bids],
        asks=[OrderSummary(price=lvl.price, size=lvl.size) for lvl in book.asks],
        min_order_size=book.min_order_size,
        tick_size=book.tick_size,
        neg_risk=book.neg_risk,
        last_trade_price=book.last_trade_price,
        hash="",
    )
    return generate_orderbook_summary_hash(summary)


def hash_checkable(book: ClobBook) -> bool:
    """Whether ``book`` carries every field the hash covers (REST books do; doc WS samples not)."""
    return bool(book.hash) and None not in (book.min_order_size, book.tick_size, book.neg_risk,
                                            book.last_trade_price)


def hash_ok(book: ClobBook) -> bool:
    """True when the served hash matches the recomputed one."""
    return book_hash(book) == book.hash.removeprefix("0x")


def to_order_book(book: ClobBook, instrument_id: str, ts_ns: int) -> OrderBook:
    """A validated core book, bids best (highest) first, asks best (lowest) first.

    The API sends both sides worst-to-best; we sort explicitly instead of
    reversing so a server that changes its order cannot flip our book.
    """
    bids = _side(book.bids, descending=True)
    asks = _side(book.asks, descending=False)
    return OrderBook(instrument_id, ts_ns, bids, asks)


def _side(levels: tuple, *, descending: bool) -> np.ndarray:
    if not levels:
        return np.empty((0, 2), dtype=np.float64)
    arr = np.array([(float(lvl.price), float(lvl.size)) for lvl in levels], dtype=np.float64)
    arr = arr[arr[:, 1] > 0]
    order = np.argsort(-arr[:, 0] if descending else arr[:, 0], kind="stable")
    return arr[order]
