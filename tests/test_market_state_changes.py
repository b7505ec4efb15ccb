"""``MarketState.changes_since``: every way a book can change is listed, once, to every
consumer, each with its own stamp."""

from __future__ import annotations

import numpy as np
import pytest

from argus_core.market_state import L2Book, MarketState
from argus_core.models import BookDelta, BookStatus, Event, OrderBook, Outcome, Side


def _snapshot(iid: str, ask: float = 0.5) -> OrderBook:
    return OrderBook(iid, 1, np.array([[ask - 0.1, 10.0]]), np.array([[ask, 10.0]]))


def test_each_consumer_has_its_own_stamp() -> None:
    market = MarketState()
    market.apply(_snapshot("a"))
    market.apply(_snapshot("b"))
    first, stamp_1 = market.changes_since(0)
    assert sorted(first) == ["a", "b"]
    market.apply(BookDelta("a", 2, Side.SELL, 0.6, 5.0))
    market.apply(BookDelta("a", 3, Side.SELL, 0.7, 5.0))  # changed twice: listed once
    changed, stamp_2 = market.changes_since(stamp_1)
    assert changed == ["a"] and stamp_2 > stamp_1
    assert market.changes_since(stamp_2) == ([], stamp_2)  # nothing new
    # a second consumer that last looked at stamp_1 still sees "a"; one from 0 sees all
    assert market.changes_since(stamp_1)[0] == ["a"]
    assert sorted(market.changes_since(0)[0]) == ["a", "b"]
    market.apply(BookStatus("b", 4, False, "hash mismatch"))
    assert market.changes_since(stamp_2)[0] == ["b"]
    assert sorted(market.changes_since(stamp_1)[0]) == ["a", "b"]


def test_changes_that_skip_market_state_apply_are_listed() -> None:
    """A naive dirty set fed only by ``MarketState.apply`` would miss these."""
    market = MarketState()
    market.apply(_snapshot("a"))
    market.apply(_snapshot("b"))
    market.apply(_snapshot("c"))
    _, stamp = market.changes_since(0)
    market.books["a"].apply_many(np.array([False]), np.array([0.55]), np.array([3.0]), 5)
    market.books["b"].load_snapshot(_snapshot("b", ask=0.4))  # a snapshot reload
    market.books["c"].apply(Side.BUY, 0.1, 0.0, 6)  # a level removed
    changed, stamp = market.changes_since(stamp)
    assert sorted(changed) == ["a", "b", "c"]
    market.book("new")  # a new instrument, empty: still news to a consumer
    assert market.changes_since(stamp)[0] == ["new"]


def test_a_change_while_the_consumer_reads_is_listed_next_time() -> None:
    market = MarketState()
    market.apply(_snapshot("a"))
    changed, stamp = market.changes_since(0)
    for iid in changed:  # the consumer reads the book... and it changes under it
        market.apply(BookDelta(iid, 2, Side.SELL, 0.9, 1.0))
        market.books[iid].ask_levels()
    assert market.changes_since(stamp)[0] == ["a"]


def test_events_bump_events_version_and_a_standalone_book_still_works() -> None:
    market = MarketState()
    before = market.events_version
    market.apply(Event("polymarket", "E", "e", (Outcome("x", "polymarket:1", "polymarket:2"),)))
    assert market.events_version == before + 1
    book = L2Book("solo")
    book.apply(Side.SELL, 0.5, 1.0, 1)
    assert book.best_ask() == 0.5 and book.version == 1


@pytest.mark.parametrize("price, size", [(float("nan"), 1.0), (0.5, float("nan")),
                                         (float("inf"), 1.0), (0.5, float("inf")),
                                         (-0.5, 1.0), (0.0, 1.0), (0.5, -1.0)])
def test_a_book_refuses_levels_a_delta_would_refuse(price: float, size: float) -> None:
    """``L2Book.apply`` / ``apply_many`` (the raw-float paths) refuse what ``BookDelta``
    refuses: scanners read the levels as they are (a NaN size once crashed one)."""
    from argus_core.errors import DataError
    from argus_core.market_state import L2Book

    book = L2Book("pm:x")
    book.apply(Side.BUY, 0.40, 10.0, 1)
    with pytest.raises(DataError, match="pm:x"):
        book.apply(Side.SELL, price, size, 2)
    with pytest.raises(DataError, match="finite"):
        book.apply_many(np.array([False, True]), np.array([0.6, price]), np.array([5.0, size]),
                        3)
    assert book.bids == {0.40: 10.0} and book.asks == {0.6: 5.0}  # the level before it stands
    assert all(np.isfinite(p) and p > 0 and np.isfinite(q) and q > 0
               for ladder in (book.bids, book.asks) for p, q in ladder.items())


def test_a_book_says_why_it_cannot_be_read_and_an_instrument_whether_it_takes_orders() -> None:
    """The one rule every scanner applies (it was restated in two plugins)."""
    from argus_core.models import Instrument

    book = L2Book("pm:x")
    book.apply(Side.BUY, 0.40, 10.0, 1)
    book.apply(Side.SELL, 0.50, 10.0, 1)
    assert book.fault() == "" and not book.malformed()
    book.apply(Side.BUY, 0.55, 1.0, 2)  # a run of deltas left it crossed
    assert book.fault().startswith("crossed book") and not book.malformed()
    book.bids[0.30] = float("nan")  # written past apply's checks
    assert book.malformed() and book.fault().startswith("malformed level")
    inst = Instrument("polymarket", "T", "binary", "0.01", "0.01")
    assert inst.takes_orders
    for meta in ({"tradeable": False}, {"acceptingOrders": False}, {"closed": True}):
        assert not Instrument("polymarket", "T", "binary", "0.01", "0.01", meta=meta).takes_orders
    assert Instrument("polymarket", "T", "binary", "0.01", "0.01",
                      meta={"tradeable": "false"}).takes_orders  # only the bool counts
