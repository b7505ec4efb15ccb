"""Fourth held-out audit of the paper broker's fills: liquidity shared between orders.

Each scenario is built by hand and every fill checked against a price and a size worked
out here.  What was found:

1. Orders sent together on a bars-only instrument each walked the next bar's synthetic
   book from its best level: five orders of 1 all paid the first level's price where one
   order of 5 walked five levels (splitting an order bought a better fill).
2. Resting limit orders each took ``volume x bar_depth_fraction`` of a bar that traded
   through them: ten orders of 1 filled ten times what one order of 10 could.
3. A limit order resting on a book was filled by the range of the bar in progress when
   it was sent (a bar stamped at its close): a low that may have traded before the order.
4. A sell at the tick floor (open or print at one tick) crashed the replay with "under
   one tick: its tick_size does not fit its prices": no bid below the floor exists.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import attrs
import pytest

from argus_core.config import PaperSection
from argus_core.interfaces import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    Fill,
    Instrument,
    Liquidity,
    MarketEvent,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from argus_core.paper import PaperBroker

INST = Instrument("v", "X/USD", tick_size="0.01", lot_size="0.001")
FLOOR = Instrument("v", "P", tick_size="0.01", lot_size="1")
FEES = FeeSchedule(Decimal("10"), Decimal("40"))
HOUR = 3600 * 10**9
TICK = Decimal("0.01")


def _broker(**paper: object) -> tuple[PaperBroker, MarketState]:
    """A market without books; the default 2 bps synthetic half-spread, no slippage."""
    market = MarketState()
    market.add_instruments([INST, FLOOR])
    return PaperBroker(market, lambda _i: FEES, attrs.evolve(PaperSection(), **paper)), market


def _bar(close_h: int, o: float, h: float, lo: float, c: float, v: float = 100.0, *,
         inst: Instrument = INST) -> Bar:
    """The bar of hour ``close_h - 1 .. close_h``, stamped at its close."""
    return Bar(inst.id, close_h * HOUR, o, h, lo, c, v)


def _feed(b: PaperBroker, market: MarketState, event: MarketEvent) -> list[Fill]:
    market.apply(event)
    return b.on_event(event)


def _order(side: Side, qty: str, coid: str, *, limit: str | None = None,
           tif: TimeInForce = TimeInForce.IOC, inst: Instrument = INST) -> Order:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    return Order(coid, "v", inst.id, side, qty, limit, kind, tif)


def _buy_level(open_: str, k: int, half_spread_bps: str = "2") -> Decimal:
    """Level ``k`` of the synthetic asks: the open, 2k+1 half-spreads up, rounded up to
    the tick (against the buyer)."""
    price = Decimal(open_) * (1 + Decimal(half_spread_bps) / 10_000 * (2 * k + 1))
    return (price / TICK).to_integral_value(rounding=ROUND_CEILING) * TICK


def test_orders_split_on_one_bar_share_its_synthetic_depth() -> None:
    """Volume 10 x 0.1: the synthetic book shows 1 a level.  Five market buys of 1 sent on
    bar 1 must pay what one buy of 5 pays (levels 0..4).  Was: all five paid level 0's
    100.02, five units at a price the book showed for one."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100, 100, 100, 100, 10))
    for i in range(5):
        b.submit(_order(Side.BUY, "1", f"o{i}"), HOUR)
    fills = _feed(b, market, _bar(2, 100, 101, 99, 100, 10))
    expected = [_buy_level("100", k) for k in range(5)]
    assert expected == [Decimal("100.02"), Decimal("100.06"), Decimal("100.10"),
                        Decimal("100.14"), Decimal("100.18")]
    assert sorted(f.price for f in fills) == expected
    assert all(f.quantity == 1 and f.liquidity is Liquidity.TAKER for f in fills)
    assert all(f.fee == f.price * f.quantity * Decimal("0.004") for f in fills)


def test_resting_orders_split_on_one_bar_share_its_volume_fraction() -> None:
    """Ten GTC buys of 1 at 99.5 rest (bar 2 stays above); bar 3 trades down to 99 on a
    volume of 10: at most 10 x 0.1 = 1 fills among them, as for one order of 10.  Was:
    each took 1, ten in all (the bar's whole volume)."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100, 100, 100, 100, 10))
    for i in range(10):
        b.submit(_order(Side.BUY, "1", f"o{i}", limit="99.5", tif=TimeInForce.GTC), HOUR)
    assert _feed(b, market, _bar(2, 100, 101, 99.9, 100, 10)) == []
    fills = _feed(b, market, _bar(3, 100, 101, 99, 100, 10))
    assert sum(f.quantity for f in fills) == Decimal(10) * Decimal("0.1")
    assert all(f.price == Decimal("99.5") and f.liquidity is Liquidity.MAKER for f in fills)


def test_a_limit_resting_on_a_book_is_not_filled_by_the_bar_in_progress() -> None:
    """A book and hourly bars: a buy limit 99.5 rests on the book at 1:15.  The bar
    stamped 2:00 (1:00-2:00) went down to 98, maybe at 1:05, before the order.  Was: it
    filled at 99.5.  The next bar (2:00-3:00), wholly after the order, fills it."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100, 100, 100, 100))
    market.apply(OrderBook(INST.id, HOUR + HOUR // 4, [[99.0, 1.0]], [[101.0, 1.0]]))
    assert b.submit(_order(Side.BUY, "1", "o1", limit="99.5", tif=TimeInForce.GTC),
                    HOUR + HOUR // 4) == []
    assert _feed(b, market, _bar(2, 100, 100, 98, 99.9)) == []
    fills = _feed(b, market, _bar(3, 99.9, 100, 98, 99))
    assert [(f.price, f.quantity, f.liquidity) for f in fills] == [
        (Decimal("99.5"), Decimal(1), Liquidity.MAKER)]
    assert fills[0].fee == Decimal("99.5") * Decimal("0.001")


@pytest.mark.parametrize("event", [
    _bar(2, 0.01, 0.01, 0.01, 0.01, 1000, inst=FLOOR),
    Trade(FLOOR.id, 2 * HOUR, Decimal("0.01"), Decimal(1000)),
], ids=["bar", "print"])
def test_a_sell_at_the_tick_floor_finds_no_bid(event: Bar | Trade) -> None:
    """Open (or print) at 0.01, one tick: the synthetic bid 0.009998 is under the floor,
    no venue quotes it, so a market sell fills nothing and is cancelled; a buy pays the
    ask rounded up, 0.02.  Was: DataError "tick_size does not fit its prices", the
    replay stopped."""
    b, market = _broker()
    first = _bar(1, 0.01, 0.01, 0.01, 0.01, 1000, inst=FLOOR) if isinstance(event, Bar) \
        else Trade(FLOOR.id, HOUR, Decimal("0.01"), Decimal(1000))
    _feed(b, market, first)
    b.submit(_order(Side.SELL, "10", "s", inst=FLOOR), HOUR)
    b.submit(_order(Side.BUY, "10", "b", inst=FLOOR), HOUR)
    fills = _feed(b, market, event)
    assert [(f.side, f.price, f.quantity) for f in fills] == [
        (Side.BUY, Decimal("0.02"), Decimal(10))]
    assert b.status("s") == (OrderStatus.CANCELLED, Decimal(0))
