"""Which books and instruments a basket may use beyond ``MarketState.tradeable``.

The core validates snapshots (``OrderBook``) and deltas (``BookDelta``), but not the book a
stream of deltas leaves (it can cross) nor levels an adapter writes into ``L2Book``'s dicts
(or through ``L2Book.apply``, which stores a NaN price).  Such a book is skipped, and so is
an instrument whose market takes no orders (the Polymarket venue's ``meta["tradeable"]``).
The ``pmscanners`` plugin applies the same rules (its ``common.book_fault`` and
``common.accepting``); a plugin imports only the core, so they are restated here.
"""

from __future__ import annotations

import math

from argus_core import Instrument, L2Book

#: instrument ``meta`` entries saying the market takes no orders
NOT_ACCEPTING: tuple[tuple[str, bool], ...] = (
    ("tradeable", False), ("accepting_orders", False), ("acceptingOrders", False),
    ("closed", True))


def accepting(inst: Instrument | None) -> bool:
    """False when ``inst``'s ``meta`` says its market takes no orders (compared by identity
    with the bool: a missing key or any other value accepts)."""
    if inst is None:
        return True
    meta = inst.meta
    return not any(meta.get(key) is value for key, value in NOT_ACCEPTING)


def ladder_fault(ladder: dict[float, float]) -> bool:
    """True when a ladder holds a price or size that is NaN, infinite or not positive
    (``sum`` is NaN or infinite if any one is; C loops)."""
    if not ladder:
        return False
    sizes = ladder.values()
    return not (math.isfinite(sum(ladder)) and math.isfinite(sum(sizes))
                and min(ladder) > 0 and min(sizes) > 0)


def sound(book: L2Book) -> bool:
    """No malformed level on either side and not crossed (best bid < best ask)."""
    bids, asks = book.bids, book.asks
    if ladder_fault(bids) or ladder_fault(asks):
        return False
    return not (bids and asks and max(bids) >= min(asks))
