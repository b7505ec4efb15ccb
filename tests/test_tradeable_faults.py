"""A book the feed left crossed (or holding a level no venue sends) is not tradeable: the
risk engine's market gate vetoes any order on it, live or paper, and says why."""

from __future__ import annotations

import math

from argus_core.interfaces import RiskContext
from argus_core.market_state import MarketState
from argus_core.models import BookDelta, Instrument, Intent, OrderBook, Side
from argus_core.risk import RiskEngine

INST = Instrument("v", "X/USD", tick_size="0.01", lot_size="0.001")


def market() -> MarketState:
    m = MarketState()
    m.add_instruments([INST])
    m.apply(OrderBook(INST.id, 1, [[99.0, 1.0]], [[101.0, 1.0], [102.0, 1.0]]))
    return m


def gate(m: MarketState) -> str | None:
    engine = RiskEngine([], RiskContext(market=m))
    decision = engine.market_gate(Intent("s", INST.id, Side.SELL, quantity="1"))
    return None if decision is None else decision.reason


def test_a_sound_book_passes() -> None:
    m = market()
    assert m.tradeable(INST.id) == (True, "")
    assert gate(m) is None


def test_a_book_crossed_by_deltas_is_not_tradeable() -> None:
    m = market()
    m.apply(BookDelta(INST.id, 2, Side.BUY, 101.5, 1.0))  # a bid through the best ask
    ok, why = m.tradeable(INST.id)
    assert not ok and "crossed book" in why
    assert gate(m) is not None and "crossed book" in gate(m)  # type: ignore[operator]
    assert m.live_mid(INST.id) is None  # and no mark either


def test_a_locked_book_is_not_tradeable() -> None:
    m = market()
    m.apply(BookDelta(INST.id, 2, Side.BUY, 101.0, 1.0))  # bid == ask
    assert not m.tradeable(INST.id)[0]


def test_a_level_written_past_the_checks_is_not_tradeable() -> None:
    m = market()
    m.books[INST.id].asks[103.0] = math.nan
    ok, why = m.tradeable(INST.id)
    assert not ok and "malformed" in why


def test_the_feed_repairing_the_book_makes_it_tradeable_again() -> None:
    m = market()
    m.apply(BookDelta(INST.id, 2, Side.BUY, 101.5, 1.0))
    m.apply(BookDelta(INST.id, 3, Side.BUY, 101.5, 0.0))
    assert m.tradeable(INST.id) == (True, "")
