"""Held-out audit of the paper broker's fills on bars and books: no lookahead, no fill at
a price the market did not offer after the order was sent, fees always charged.

Each scenario is built by hand with the price it must fill at worked out in the test.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from argus_core.config import PaperSection
from argus_core.interfaces import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    BookDelta,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from argus_core.paper import PaperBroker

INST = Instrument("v", "X/USD", tick_size="0.01", lot_size="0.001")
FEES = FeeSchedule(Decimal("10"), Decimal("40"))
HOUR = 3600 * 10**9


def _bars_broker() -> tuple[PaperBroker, MarketState]:
    """A bars-only market; no synthetic spread, so a fill's price is the open itself."""
    market = MarketState()
    market.add_instruments([INST])
    settings = PaperSection(bar_spread_bps=Decimal("0"))
    return PaperBroker(market, lambda _i: FEES, settings), market


def _bar(close_h: int, o: float, h: float, lo: float, c: float, v: float = 100.0) -> Bar:
    """The bar of hour ``close_h - 1 .. close_h``, stamped at its close."""
    return Bar(INST.id, close_h * HOUR, o, h, lo, c, v)


def _feed(b: PaperBroker, market: MarketState, bar: Bar) -> list[Fill]:
    market.apply(bar)
    return b.on_event(bar)


def _order(side: Side, qty: str, *, limit: str | None = None,
           tif: TimeInForce = TimeInForce.IOC, coid: str = "o1") -> Order:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    return Order(coid, "v", INST.id, side, qty, limit, kind, tif)


def test_a_signal_on_bar_t_fills_at_the_next_open_never_at_t_close() -> None:
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    assert b.submit(_order(Side.BUY, "1"), 1 * HOUR) == []  # decided on bar 1's close
    (fill,) = _feed(b, market, _bar(2, 104.0, 106.0, 103.0, 105.0))
    assert (fill.price, fill.ts_ns) == (Decimal("104.0"), 2 * HOUR)  # bar 2's open
    assert fill.fee == Decimal("104.0") * Decimal("0.004")  # taker fee, always


def test_an_order_sent_between_bars_skips_the_bar_in_progress() -> None:
    """An order sent at 1:15 (another instrument's event) must not fill at the open of
    the bar 1:00-2:00 (stamped 2:00): that price is from before the order existed."""
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    sent = 1 * HOUR + HOUR // 4
    assert b.submit(_order(Side.BUY, "1"), sent) == []
    # Bar 2 opened at 1:00 at 90, rallied to 110: a buy at 90 knowing the 1:15 price
    # would be lookahead.
    assert _feed(b, market, _bar(2, 90.0, 110.0, 89.0, 109.0)) == []
    assert b.status("o1") == (OrderStatus.OPEN, Decimal(0))
    (fill,) = _feed(b, market, _bar(3, 109.5, 111.0, 108.0, 110.0))
    assert fill.price == Decimal("109.5")  # bar 3 opened at 2:00, after the order


def test_a_repeat_of_the_bar_decided_on_does_not_fill() -> None:
    """A bar stamped at the send itself closed then: a recording that repeats bar 1 (or a
    second feed of it) must not fill an order decided on bar 1 at bar 1's own open."""
    b, market = _bars_broker()
    first = _bar(1, 100.0, 101.0, 99.0, 100.5)
    _feed(b, market, first)
    b.submit(_order(Side.BUY, "1"), 1 * HOUR)
    assert _feed(b, market, first) == []
    (fill,) = _feed(b, market, _bar(2, 104.0, 106.0, 103.0, 105.0))
    assert fill.price == Decimal("104.0")


def test_the_wait_for_the_next_bar_survives_a_checkpoint() -> None:
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1"), 1 * HOUR + 1)
    restored, _ = _bars_broker()
    restored.market = market
    restored.set_state(b.get_state())
    assert _feed(restored, market, _bar(2, 90.0, 110.0, 89.0, 109.0)) == []
    (fill,) = _feed(restored, market, _bar(3, 109.5, 111.0, 108.0, 110.0))
    assert fill.price == Decimal("109.5")


def test_an_order_decided_on_its_own_bar_is_checkpointed_as_before() -> None:
    """The usual order (sent at its instrument's bar close) writes no extra state."""
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1"), 1 * HOUR)
    (state,) = b.get_state()["working"]
    assert "sent_ns" not in state and "bar_ns" not in state


def test_a_limit_the_next_bar_gaps_through_fills_at_the_open() -> None:
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1", limit="98", tif=TimeInForce.GTC), 1 * HOUR)
    (fill,) = _feed(b, market, _bar(2, 95.0, 96.0, 94.0, 95.5))
    assert (fill.price, fill.liquidity) == (Decimal("95.0"), Liquidity.TAKER)


def test_a_resting_limit_a_later_bar_gaps_through_fills_at_its_limit() -> None:
    """Resting buy at 98 (bar 2 never went below 99); bar 3 opens at 95: in a continuous
    market the first sell at or under 98 met the resting bid, at 98 (a fill at the open,
    95, would flatter the backtest by the gap).  A resting sell at 100 that a bar opening
    at 103 gaps through fills at 100 likewise."""
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1", limit="98", tif=TimeInForce.GTC), 1 * HOUR)
    assert _feed(b, market, _bar(2, 100.0, 101.0, 99.0, 100.0)) == []
    assert b.working["o1"].resting
    (fill,) = _feed(b, market, _bar(3, 95.0, 97.0, 94.0, 96.0))
    assert (fill.price, fill.liquidity) == (Decimal("98"), Liquidity.MAKER)
    assert fill.fee == Decimal("98") * Decimal("0.001")
    b.submit(_order(Side.SELL, "1", limit="100", tif=TimeInForce.GTC, coid="o2"), 3 * HOUR)
    assert _feed(b, market, _bar(4, 96.0, 99.0, 95.0, 98.0)) == []
    (fill,) = _feed(b, market, _bar(5, 103.0, 104.0, 102.0, 103.5))
    assert fill.price == Decimal("100")


def test_a_resting_limit_inside_the_bar_fills_at_the_limit_and_a_touch_does_not() -> None:
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1", limit="98", tif=TimeInForce.GTC), 1 * HOUR)
    assert _feed(b, market, _bar(2, 100.0, 101.0, 99.0, 100.0)) == []
    assert _feed(b, market, _bar(3, 99.0, 100.0, 98.0, 99.0)) == []  # a touch: not through
    (fill,) = _feed(b, market, _bar(4, 99.0, 99.5, 97.0, 98.5))  # through, opened above
    assert fill.price == Decimal("98")


def test_the_last_bars_order_never_fills() -> None:
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    assert b.submit(_order(Side.BUY, "1"), 1 * HOUR) == []
    assert b.status("o1") == (OrderStatus.OPEN, Decimal(0))  # nothing after it: no fill


def test_a_zero_volume_bar_fills_nothing() -> None:
    b, market = _bars_broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1"), 1 * HOUR)
    assert _feed(b, market, _bar(2, 100.0, 100.0, 100.0, 100.0, v=0.0)) == []
    assert b.status("o1") == (OrderStatus.CANCELLED, Decimal(0))


def _book_broker() -> tuple[PaperBroker, MarketState]:
    market = MarketState()
    market.add_instruments([INST])
    market.apply(OrderBook(INST.id, 1, [[99.0, 1.0]], [[101.0, 1.0]]))
    return PaperBroker(market, lambda _i: FEES, PaperSection()), market


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_a_crossed_book_is_not_traded(side: Side) -> None:
    """A delta puts the bid at 102 over the ask at 101 (a feed that missed updates):
    buying at 101 and selling at 102 would be a free round trip no market offered."""
    b, market = _book_broker()
    market.apply(BookDelta(INST.id, 2, Side.BUY, "102", "1"))
    assert b.submit(_order(side, "1"), 3) == []
    assert b.status("o1") == (OrderStatus.CANCELLED, Decimal(0))
    # A resting limit waits for the book to uncross, then takes what is offered.
    gtc = _order(side, "1", limit="101" if side is Side.BUY else "99",
                 tif=TimeInForce.GTC, coid="o2")
    assert b.submit(gtc, 4) == []
    assert b.status("o2")[0] is OrderStatus.OPEN
    fix = BookDelta(INST.id, 5, Side.BUY, "102", "0")
    market.apply(fix)
    (fill,) = b.on_event(fix)
    assert fill.price == (Decimal("101.0") if side is Side.BUY else Decimal("99.0"))


def test_a_locked_book_is_not_traded_either() -> None:
    b, market = _book_broker()
    market.apply(BookDelta(INST.id, 2, Side.BUY, "101", "1"))
    assert b.submit(_order(Side.BUY, "1"), 3) == []
    assert b.status("o1") == (OrderStatus.CANCELLED, Decimal(0))
