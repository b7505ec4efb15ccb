"""An order resting on a book, sent before its instrument's first bar, is not filled by
that bar's range: the bar is stamped at its close, its open time unknown, so its low may
predate the order (an order on a bar-only instrument already waited; one on a book was
filled by the first bar's range)."""

from __future__ import annotations

from decimal import Decimal

from test_heldout2_replay_fills import HOUR, INST, OTHER, _bar, _broker, _feed, _order

from argus_core.models import Liquidity, OrderBook, OrderStatus, Side, TimeInForce


def test_a_resting_book_order_skips_its_instruments_first_bar() -> None:
    b, market = _broker()
    _feed(b, market, _bar(1, 50.0, 51.0, 49.0, 50.0, inst=OTHER))  # the market is running
    _feed(b, market, OrderBook(INST.id, HOUR + 10, [(99.0, 5.0)], [(101.0, 5.0)]))
    sent = HOUR + HOUR // 2
    assert b.submit(_order(Side.BUY, "1", limit="95", tif=TimeInForce.GTC), sent) == []
    assert b.status("o1") == (OrderStatus.OPEN, Decimal(0))  # resting at 95 on the book
    # X's first bar (1:00-2:00) went down to 89, maybe before 1:30: no fill
    assert _feed(b, market, _bar(2, 100.0, 101.0, 89.0, 100.0)) == []
    (fill,) = _feed(b, market, _bar(3, 100.0, 101.0, 94.0, 96.0))  # opened after the send
    assert (fill.price, fill.liquidity, fill.ts_ns) == (Decimal("95"), Liquidity.MAKER,
                                                        3 * HOUR)


def test_a_book_order_sent_before_any_market_data_may_fill_on_the_first_bar() -> None:
    """The guard's other side: nothing was known at the send (no event at all), so the
    first bar is the first the order could meet."""
    b, market = _broker()
    assert b.submit(_order(Side.BUY, "1", limit="95", tif=TimeInForce.GTC), 0) == []
    _feed(b, market, OrderBook(INST.id, 10, [(99.0, 5.0)], [(101.0, 5.0)]))
    (fill,) = _feed(b, market, _bar(1, 100.0, 101.0, 94.0, 96.0))
    assert fill.price == Decimal("95")
