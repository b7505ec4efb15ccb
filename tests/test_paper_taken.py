"""What a paper taker takes stays out of the venue's book: the next paper order cannot
take it again, but marks, scanners and strategies keep reading the market, and the venue
changing a level (or resending the book) gives it back."""

from __future__ import annotations

from decimal import Decimal

from argus_core.config import PaperSection
from argus_core.interfaces import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import BookDelta, Instrument, Order, OrderBook, OrderType, Side, TimeInForce
from argus_core.paper import PaperBroker

INST = Instrument("v", "X/USD", tick_size="0.01", lot_size="0.001")
FEES = FeeSchedule(Decimal("10"), Decimal("40"), Decimal("0"))
ASKS = [[101.0, 1.0], [102.0, 2.0], [103.0, 5.0]]


def setup() -> tuple[PaperBroker, MarketState]:
    market = MarketState()
    market.add_instruments([INST])
    market.apply(OrderBook(INST.id, 1, [[99.0, 1.0], [98.0, 2.0]], ASKS))
    return PaperBroker(market, lambda _i: FEES, PaperSection()), market


def buy(qty: str, coid: str, side: Side = Side.BUY) -> Order:
    return Order(coid, "v", INST.id, side, qty, None, OrderType.MARKET, TimeInForce.IOC)


def taken(fills: list) -> list[tuple[Decimal, Decimal]]:  # type: ignore[type-arg]
    return [(f.price, f.quantity) for f in fills]


def test_the_venue_book_and_its_mid_do_not_move_with_a_paper_fill() -> None:
    b, market = setup()
    version = market.books[INST.id].version
    assert taken(b.submit(buy("1.5", "o1"), 10)) == [(Decimal("101.0"), Decimal("1.000")),
                                                     (Decimal("102.0"), Decimal("0.500"))]
    book = market.books[INST.id]
    assert book.asks == {101.0: 1.0, 102.0: 2.0, 103.0: 5.0}
    assert book.version == version  # scanners' dirty set and versions see no change
    assert market.live_mid(INST.id) == 100.0  # the mark: (99 + 101) / 2, not (99 + 102) / 2


def test_the_next_paper_order_cannot_take_it_again() -> None:
    b, _ = setup()
    b.submit(buy("1.5", "o1"), 10)
    assert taken(b.submit(buy("2", "o2"), 11)) == [(Decimal("102.0"), Decimal("1.500")),
                                                   (Decimal("103.0"), Decimal("0.500"))]
    # The other side of the book is untouched.
    assert taken(b.submit(buy("1", "o3", Side.SELL), 12)) == [(Decimal("99.0"), Decimal("1.000"))]


def test_a_level_the_venue_changes_comes_back_at_its_new_size() -> None:
    b, market = setup()
    b.submit(buy("1.5", "o1"), 10)
    market.apply(BookDelta(INST.id, 20, Side.SELL, 101.0, 0.4))  # the venue's new size
    assert taken(b.submit(buy("3", "o2"), 21)) == [(Decimal("101.0"), Decimal("0.400")),
                                                   (Decimal("102.0"), Decimal("1.500")),
                                                   (Decimal("103.0"), Decimal("1.100"))]


def test_a_delta_elsewhere_keeps_what_was_taken() -> None:
    b, market = setup()
    b.submit(buy("1.5", "o1"), 10)
    market.apply(BookDelta(INST.id, 20, Side.SELL, 104.0, 1.0))
    assert taken(b.submit(buy("1", "o2"), 21)) == [(Decimal("102.0"), Decimal("1.000"))]


def test_a_resent_book_gives_everything_back() -> None:
    b, market = setup()
    b.submit(buy("8", "o1"), 10)
    assert b.submit(buy("1", "o2"), 11) == []
    market.apply(OrderBook(INST.id, 30, [[99.0, 1.0]], ASKS))  # the whole book again
    assert taken(b.submit(buy("1", "o3"), 31)) == [(Decimal("101.0"), Decimal("1.000"))]


def test_what_was_taken_survives_a_checkpoint() -> None:
    b, market = setup()
    b.submit(buy("1.5", "o1"), 10)
    state = b.get_state()
    b2 = PaperBroker(market, lambda _i: FEES, PaperSection())
    b2.set_state(state)
    assert taken(b2.submit(buy("1", "o2"), 11)) == [(Decimal("102.0"), Decimal("1.000"))]
