"""Paper broker: book walking, partial fills, resting orders, fees — never a mid fill."""

from __future__ import annotations

from decimal import Decimal

from argus_core.config import PaperSection
from argus_core.interfaces import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    Instrument,
    Liquidity,
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
FEES = FeeSchedule(Decimal("10"), Decimal("40"), Decimal("0"))


def broker(**paper: object) -> tuple[PaperBroker, MarketState]:
    market = MarketState()
    market.add_instruments([INST])
    market.apply(OrderBook(INST.id, 1, [[99.0, 1.0], [98.0, 2.0]],
                           [[101.0, 1.0], [102.0, 2.0], [103.0, 5.0]]))
    return PaperBroker(market, lambda _i: FEES, PaperSection(**paper)), market  # type: ignore[arg-type]


def order(side: Side, qty: str, *, limit: str | None = None, tif: TimeInForce = TimeInForce.IOC,
          coid: str = "o1") -> Order:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    return Order(coid, "v", INST.id, side, qty, limit, kind, tif)


def test_taker_walks_levels_and_pays_vwap_plus_taker_fee() -> None:
    b, _ = broker()
    fills = b.submit(order(Side.BUY, "2.5"), 10)
    assert [(f.price, f.quantity) for f in fills] == [(Decimal("101.0"), Decimal("1.000")),
                                                      (Decimal("102.0"), Decimal("1.500"))]
    vwap = sum(f.price * f.quantity for f in fills) / Decimal("2.5")
    assert vwap == Decimal("101.6")
    assert all(f.liquidity is Liquidity.TAKER for f in fills)
    assert fills[0].fee == Decimal("101.0") * Decimal("0.004")


def test_never_beyond_displayed_depth_and_depth_is_consumed() -> None:
    b, market = broker()
    fills = b.submit(order(Side.BUY, "100"), 10)
    assert sum(f.quantity for f in fills) == Decimal(8)  # all displayed depth, no more
    # The rest of a taker order is cancelled: final, with what it filled (a venue's words)
    assert b.status("o1") == (OrderStatus.CANCELLED, Decimal(8))
    # Taken for the next paper order; the venue's book (marks, scanners) is as it was.
    assert b.submit(order(Side.BUY, "1", coid="o2"), 11) == []
    assert market.books[INST.id].asks == {101.0: 1.0, 102.0: 2.0, 103.0: 5.0}


def test_limit_stops_the_walk_and_fok_is_all_or_nothing() -> None:
    b, _ = broker()
    fills = b.submit(order(Side.BUY, "5", limit="102"), 10)
    assert sum(f.quantity for f in fills) == Decimal(3)
    b2, _ = broker()
    assert b2.submit(order(Side.BUY, "5", limit="102", tif=TimeInForce.FOK), 10) == []
    assert b2.status("o1")[0] is OrderStatus.CANCELLED


def test_no_fill_is_ever_at_the_mid() -> None:
    b, _ = broker()
    buy = b.submit(order(Side.BUY, "0.5"), 10)
    sell = b.submit(order(Side.SELL, "0.5", coid="o2"), 10)
    assert buy[0].price == Decimal("101.0") and sell[0].price == Decimal("99.0")


def test_resting_limit_fills_only_when_traded_through() -> None:
    b, market = broker()
    assert b.submit(order(Side.BUY, "2", limit="100", tif=TimeInForce.GTC), 10) == []
    touch = Trade(INST.id, 20, "100", "5", Side.SELL)  # at the limit: not through
    market.apply(touch)
    assert b.on_event(touch) == []
    through = Trade(INST.id, 30, "99.5", "1.5", Side.SELL)
    market.apply(through)
    fills = b.on_event(through)
    assert [(f.price, f.quantity, f.liquidity) for f in fills] == [
        (Decimal("100"), Decimal("1.500"), Liquidity.MAKER)]
    assert fills[0].fee == Decimal("150") * Decimal("0.001")


def test_a_print_or_bar_stamped_before_a_resting_order_never_fills_it() -> None:
    """A late print (a venue's trade sent again, a feed's reordering) or a late bar was
    in the market before the order was: it traded with someone else (seed 6286 of the run
    campaign: a sell resting from 8 s filled by a print stamped 6 s, its fill dated before
    the order).  One at or after the order is in the book fills it."""
    b, market = broker()
    assert b.submit(order(Side.BUY, "2", limit="100", tif=TimeInForce.GTC), 10) == []
    for late in (Trade(INST.id, 9, "99", "5", Side.SELL),
                 Trade(INST.id, 10, "99", "5", Side.SELL),  # the send's own moment
                 Bar(INST.id, 10, 99.5, 99.5, 98.0, 99.0, 50.0)):
        market.apply(late)
        assert b.on_event(late) == [], late
    after = Trade(INST.id, 11, "99", "5", Side.SELL)
    market.apply(after)
    assert [(f.quantity, f.ts_ns) for f in b.on_event(after)] == [(Decimal("2.000"), 11)]


def test_a_late_print_after_the_order_fills_it_stamped_at_the_markets_clock() -> None:
    """A print stamped after the order rested but before the market's clock (the feed
    delivered it late) traded with the order; the account learns of it now, so the fill
    is stamped now, not inside an equity row already written (seed 7056)."""
    b, market = broker()
    assert b.submit(order(Side.BUY, "2", limit="100", tif=TimeInForce.GTC), 10) == []
    market.apply(OrderBook(INST.id, 30, [[99.0, 1.0]], [[101.0, 1.0]]))
    late = Trade(INST.id, 20, "99", "5", Side.SELL)
    market.apply(late)
    assert [(f.quantity, f.ts_ns) for f in b.on_event(late)] == [(Decimal("2.000"), 30)]


def test_a_fill_or_kill_order_on_bars_fills_whole_or_not_at_all() -> None:
    """The next bar's synthetic levels hold 2.9 each; on a lot of 1 the walk takes 2 of
    each, so a FOK of 14 cannot fill whole on five levels (14.5 summed): nothing fills
    (the replay campaign's seed 7680 filled 10 of 14).  One of 10 fills whole."""
    from argus_core.paper import SYNTHETIC_LEVELS

    lot1 = Instrument("v", "Y/USD", tick_size="0.01", lot_size="1")
    for qty, want in (("14", Decimal(0)), ("10", Decimal(10))):
        market = MarketState()
        market.add_instruments([lot1])
        b = PaperBroker(market, lambda _i: FEES, PaperSection(bar_depth_fraction=0.1))
        fok = Order("f", "v", lot1.id, Side.BUY, qty, None, OrderType.MARKET, TimeInForce.FOK)
        assert b.submit(fok, 100) == []
        nxt = Bar(lot1.id, 200, 50.0, 51.0, 49.0, 50.5, 29.0)  # 2.9 a level
        market.apply(nxt)
        fills = b.on_event(nxt)
        assert SYNTHETIC_LEVELS * 2 == 10
        assert sum((f.quantity for f in fills), Decimal(0)) == want, (qty, fills)
        assert b.status("f")[0] is (OrderStatus.FILLED if want else OrderStatus.CANCELLED)


def test_bar_only_orders_fill_on_the_next_bars_open_with_spread() -> None:
    market = MarketState()
    market.add_instruments([INST])
    b = PaperBroker(market, lambda _i: FEES, PaperSection(bar_spread_bps=Decimal("10"),
                                                          bar_depth_fraction=0.5))
    assert b.submit(order(Side.BUY, "1"), 100) == []  # no book: waits for the next bar
    nxt = Bar(INST.id, 200, 50.0, 51.0, 49.0, 50.5, 10.0)
    fills = b.on_event(nxt)
    assert fills[0].price == Decimal("50.05")  # open + 10 bps half-spread, rounded up
    assert fills[0].price > Decimal("50.0")


def test_cost_multiplier_scales_fees_and_slippage() -> None:
    b1, _ = broker(slippage_bps=Decimal("10"))
    b2, _ = broker(slippage_bps=Decimal("10"), cost_multiplier=Decimal("1.5"))
    f1 = b1.submit(order(Side.BUY, "1"), 1)[0]
    f2 = b2.submit(order(Side.BUY, "1"), 1)[0]
    assert f1.price == Decimal("101.11") and f2.price == Decimal("101.16")
    assert f2.fee / f2.price == (f1.fee / f1.price) * Decimal("1.5")


def test_latency_delays_activation() -> None:
    b, market = broker(latency_ms=5)
    assert b.submit(order(Side.BUY, "1"), 0) == []
    early = OrderBook(INST.id, 1_000_000, [[99.0, 1.0]], [[101.0, 1.0]])
    market.apply(early)
    assert b.on_event(early) == []
    late = OrderBook(INST.id, 6_000_000, [[99.0, 1.0]], [[101.5, 1.0]])
    market.apply(late)
    assert [f.price for f in b.on_event(late)] == [Decimal("101.5")]


def test_stale_book_cancels_ioc_orders() -> None:
    from argus_core.models import BookStatus

    b, market = broker()
    market.apply(BookStatus(INST.id, 2, False, "checksum mismatch"))
    assert b.submit(order(Side.BUY, "1"), 3) == []
    assert b.status("o1")[0] is OrderStatus.CANCELLED


def test_post_only_rests_as_a_maker_or_is_refused_when_it_would_take() -> None:
    b, _ = broker()
    # A buy at 101 would take the ask: refused, nothing filled.
    assert b.submit(order(Side.BUY, "1", limit="101.00", tif=TimeInForce.POST_ONLY), 10) == []
    assert b.status("o1") == (OrderStatus.REJECTED, Decimal(0))
    assert "o1" not in b.working
    # Inside the spread it rests, and fills only when the market trades through it.
    assert b.submit(order(Side.BUY, "1", limit="100.00", tif=TimeInForce.POST_ONLY,
                          coid="o2"), 11) == []
    assert b.working["o2"].resting
    assert b.on_event(Trade(INST.id, 12, 100.0, 5.0, Side.SELL)) == []  # at, not through
    (fill,) = b.on_event(Trade(INST.id, 13, 99.5, 5.0, Side.SELL))
    assert (fill.price, fill.liquidity) == (Decimal("100.00"), Liquidity.MAKER)
    assert fill.fee == Decimal("100.00") * Decimal("0.001")  # the maker rate


def test_slippage_never_prices_a_limit_fill_past_its_limit() -> None:
    """A level inside the limit whose slipped price is past it is not taken: no venue
    fills a limit order beyond its limit.  (It filled at 101.11 on a limit of 101.)"""
    b, _ = broker(slippage_bps=Decimal("10"))
    assert b.submit(order(Side.BUY, "1", limit="101"), 1) == []
    sell, _ = broker(slippage_bps=Decimal("10"))
    assert sell.submit(order(Side.SELL, "1", limit="99"), 1) == []
    fok, _ = broker(slippage_bps=Decimal("10"))
    assert fok.submit(order(Side.BUY, "1", limit="101", tif=TimeInForce.FOK), 1) == []
    # The guard's attack: a limit with room for the slipped price still fills there, and
    # the walk stops at the first level whose slipped price is past the limit.
    ok, _ = broker(slippage_bps=Decimal("10"))
    fills = ok.submit(order(Side.BUY, "3", limit="102.05"), 1)
    assert [(f.price, f.quantity) for f in fills] == [(Decimal("101.11"), Decimal("1.000"))]


def test_a_bar_fill_is_never_past_its_limit() -> None:
    market = MarketState()
    market.add_instruments([INST])
    b = PaperBroker(market, lambda _i: FEES, PaperSection(bar_spread_bps=Decimal("10"),
                                                          bar_depth_fraction=0.5))
    assert b.submit(order(Side.BUY, "1", limit="50.01", tif=TimeInForce.GTC), 100) == []
    fills = b.on_event(Bar(INST.id, 200, 50.0, 51.0, 49.0, 50.5, 10.0))
    assert all(f.price <= Decimal("50.01") for f in fills)
