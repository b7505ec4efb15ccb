"""Second held-out audit of the paper broker's fills: what the first audit left.

Each scenario is built by hand with the fill it must (or must not) give worked out in the
test: a limit order that rests at the open of a bar whose range then trades through it,
an instrument that has only trade prints, an instrument's first bar straddling an order
decided on other data, fees under half the ledger's unit, touches, gaps, zero-volume
bars and orders larger than a bar's volume.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from argus_core.config import PaperSection, parse_config
from argus_core.interfaces import FeeSchedule, Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    Fill,
    Instrument,
    Intent,
    Liquidity,
    MarketEvent,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from argus_core.paper import PaperBroker
from argus_core.runner import Runner
from argus_core.serde import dump_event

INST = Instrument("v", "X/USD", tick_size="0.01", lot_size="0.001")
OTHER = Instrument("v", "Y/USD", tick_size="0.01", lot_size="0.001")
FEES = FeeSchedule(Decimal("10"), Decimal("40"))
HOUR = 3600 * 10**9


def _broker(**paper: object) -> tuple[PaperBroker, MarketState]:
    """A market without books; no synthetic spread unless asked, so a taker's price is
    the open (or the print) itself."""
    market = MarketState()
    market.add_instruments([INST, OTHER])
    settings = attrs.evolve(PaperSection(bar_spread_bps=Decimal("0")), **paper)
    return PaperBroker(market, lambda _i: FEES, settings), market


def _bar(close_h: int, o: float, h: float, lo: float, c: float, v: float = 100.0, *,
         inst: Instrument = INST) -> Bar:
    """The bar of hour ``close_h - 1 .. close_h``, stamped at its close."""
    return Bar(inst.id, close_h * HOUR, o, h, lo, c, v)


def _feed(b: PaperBroker, market: MarketState, event: MarketEvent) -> list[Fill]:
    market.apply(event)
    return b.on_event(event)


def _order(side: Side, qty: str, *, limit: str | None = None,
           tif: TimeInForce = TimeInForce.IOC, coid: str = "o1",
           inst: Instrument = INST) -> Order:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    return Order(coid, "v", inst.id, side, qty, limit, kind, tif)


# -- 1. a limit order that starts resting inside a bar ----------------------------------------
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_a_limit_that_rests_at_the_open_fills_on_the_rest_of_that_bar(side: Side) -> None:
    """Buy limit 98 decided on bar 1; bar 2 opens at 100 (no cross: it rests) and then
    trades down to 97.  The market traded through 98 after the order was in the book, so
    it fills at 98 as maker on bar 2.  Was: bar 2's range was never checked (a missed
    fill; only bar 3 onwards could fill it).  The sell at 102 mirrors it."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    limit = "98" if side is Side.BUY else "102"
    b.submit(_order(side, "1", limit=limit, tif=TimeInForce.GTC), 1 * HOUR)
    (fill,) = _feed(b, market, _bar(2, 100.0, 103.0, 97.0, 99.0))
    assert (fill.price, fill.liquidity, fill.ts_ns) == (Decimal(limit), Liquidity.MAKER,
                                                        2 * HOUR)
    assert fill.fee == Decimal(limit) * Decimal("0.001")  # the maker rate
    assert b.status("o1") == (OrderStatus.FILLED, Decimal(1))


def test_the_rest_of_the_bar_fills_at_most_its_depth_less_what_the_order_took() -> None:
    """Bar 2 has volume 10 (depth 10 x 0.1 = 1 a level).  A buy limit 98 of 3 rests at
    the open 100 and the range trades through: 1 fills as maker (the bar's depth), 2 keep
    resting.  A buy limit 100 of 8 takes 5 at the open (five levels of 1) and rests:
    the bar's range may give it at most the depth it has not already taken (none)."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "3", limit="98", tif=TimeInForce.GTC), 1 * HOUR)
    b.submit(_order(Side.BUY, "8", limit="100", tif=TimeInForce.GTC, coid="o2"), 1 * HOUR)
    fills = _feed(b, market, _bar(2, 100.0, 101.0, 97.0, 99.0, v=10.0))
    by = {coid: [(f.price, f.quantity, f.liquidity) for f in fills
                 if f.client_order_id == coid] for coid in ("o1", "o2")}
    assert by["o1"] == [(Decimal("98"), Decimal("1.000"), Liquidity.MAKER)]
    assert by["o2"] == [(Decimal("100.00"), Decimal("1.000"), Liquidity.TAKER)] * 5
    assert b.status("o1") == (OrderStatus.PARTIALLY_FILLED, Decimal(1))
    assert b.status("o2") == (OrderStatus.PARTIALLY_FILLED, Decimal(5))
    assert b.working["o1"].resting and b.working["o2"].resting


def test_a_touch_of_the_limit_in_the_bar_it_rests_on_does_not_fill() -> None:
    """Touch is not trade-through, in the bar the order starts resting on too."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1", limit="98", tif=TimeInForce.GTC), 1 * HOUR)
    b.submit(_order(Side.SELL, "1", limit="102", tif=TimeInForce.GTC, coid="o2"), 1 * HOUR)
    assert _feed(b, market, _bar(2, 100.0, 102.0, 98.0, 99.0)) == []
    assert b.working["o1"].resting and b.working["o2"].resting


def test_a_post_only_order_rests_and_the_rest_of_its_bar_may_fill_it() -> None:
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1", limit="99", tif=TimeInForce.POST_ONLY), 1 * HOUR)
    (fill,) = _feed(b, market, _bar(2, 100.0, 101.0, 98.5, 99.0))
    assert (fill.price, fill.liquidity) == (Decimal("99"), Liquidity.MAKER)
    # One that would cross the open is refused, never a taker, never a maker.
    b.submit(_order(Side.BUY, "1", limit="99.5", tif=TimeInForce.POST_ONLY, coid="o2"),
             2 * HOUR)
    assert _feed(b, market, _bar(3, 99.0, 100.0, 98.0, 99.5)) == []
    assert b.status("o2")[0] is OrderStatus.REJECTED


# -- 2. instruments with only trade prints ----------------------------------------------------
def _print(ts: int, price: str, size: str, inst: Instrument = INST) -> Trade:
    return Trade(inst.id, ts, price, size, Side.BUY)


def test_an_instrument_with_only_prints_fills_on_the_first_print_after_the_order() -> None:
    """A Polymarket-like recording of last-trade prints: no book, no bar.  Was: nothing
    ever filled (a market order waited for ever).  Now the first print stamped after the
    send fills it, at most that print's size, at its price; the rest of an IOC order is
    cancelled.  A second print stamped at the send itself (the instant decided on) does
    not fill it."""
    b, market = _broker()
    _feed(b, market, _print(10, "0.50", "100"))
    assert b.submit(_order(Side.BUY, "10"), 10) == []
    assert _feed(b, market, _print(10, "0.40", "100")) == []  # the same instant
    (fill,) = _feed(b, market, _print(20, "0.52", "4"))
    assert (fill.price, fill.quantity, fill.liquidity, fill.ts_ns) == (
        Decimal("0.52"), Decimal("4.000"), Liquidity.TAKER, 20)
    assert fill.fee == Decimal("0.52") * 4 * Decimal("0.004")
    assert b.status("o1") == (OrderStatus.CANCELLED, Decimal(4))


def test_a_print_pays_the_half_spread_and_slippage_rounded_against_the_trader() -> None:
    b, market = _broker(bar_spread_bps=Decimal("10"), slippage_bps=Decimal("5"))
    _feed(b, market, _print(10, "100", "100"))
    b.submit(_order(Side.BUY, "1"), 10)
    b.submit(_order(Side.SELL, "1", coid="o2"), 10)
    fills = _feed(b, market, _print(20, "100", "100"))
    # 100 x 1.001 x 1.0005 = 100.15005 -> 100.16 (up, a buy); 99.9 x 0.9995 = 99.85005
    # -> 99.85 (down, a sell).
    assert sorted((f.side, f.price) for f in fills) == [(Side.BUY, Decimal("100.16")),
                                                        (Side.SELL, Decimal("99.85"))]


def test_a_limit_on_prints_rests_and_fills_only_through_the_limit() -> None:
    b, market = _broker()
    _feed(b, market, _print(10, "0.50", "100"))
    b.submit(_order(Side.BUY, "5", limit="0.50", tif=TimeInForce.GTC), 10)
    assert _feed(b, market, _print(20, "0.51", "100")) == []  # above the limit: rests
    assert b.working["o1"].resting
    assert _feed(b, market, _print(30, "0.50", "100")) == []  # a touch
    (fill,) = _feed(b, market, _print(40, "0.49", "3"))  # through: at the limit, its size
    assert (fill.price, fill.quantity, fill.liquidity) == (Decimal("0.50"), Decimal("3.000"),
                                                           Liquidity.MAKER)


def test_a_limit_that_crosses_the_print_takes_it() -> None:
    b, market = _broker()
    _feed(b, market, _print(10, "0.50", "100"))
    b.submit(_order(Side.BUY, "5", limit="0.55", tif=TimeInForce.GTC), 10)
    (fill,) = _feed(b, market, _print(20, "0.52", "100"))
    assert (fill.price, fill.liquidity) == (Decimal("0.52"), Liquidity.TAKER)


def test_prints_do_not_fill_an_instrument_that_has_bars() -> None:
    """Bars decide for an instrument that has them (as before): a print between bars
    does not fill the order at its price."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    b.submit(_order(Side.BUY, "1"), 1 * HOUR)
    assert _feed(b, market, _print(1 * HOUR + 5, "95", "10")) == []
    (fill,) = _feed(b, market, _bar(2, 104.0, 106.0, 103.0, 105.0))
    assert fill.price == Decimal("104.0")


class _BuyOnFirstPrint(Strategy):
    """Buys 10 of the instrument at its first print: IOC, at a limit or at market."""

    name = "buy_print"

    def __init__(self, limit: Decimal | None) -> None:
        self.done = False
        self.limit = limit

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if self.done or type(event) is not Trade:
            return ()
        self.done = True
        kind = OrderType.MARKET if self.limit is None else OrderType.LIMIT
        return (Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal(10),
                       limit_price=self.limit, order_type=kind,
                       time_in_force=TimeInForce.IOC),)


def _prints_run(tmp_path: Path, limit: Decimal | None) -> list[dict[str, object]]:
    """A recording of four prints replayed by the runner; the ledger's fills."""
    iid = "replay:PM/USD"
    events = [Trade(iid, k * 10**9, px, "50", Side.BUY)
              for k, px in enumerate(["0.50", "0.52", "0.51", "0.53"], start=1)]
    path = tmp_path / "prints.ndjson"
    path.write_text("".join(json.dumps(dump_event(e)) + "\n" for e in events))
    config = parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": 1},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "starting_cash": "1000"},
        "plugins": {"replay": {"ndjson": str(path), "symbol": "PM/USD",
                               "tick_size": "0.01", "lot_size": "0.01"},
                    "risk": {"per_play_fraction": "0.5", "max_drawdown_fraction": "0.9",
                             "daily_loss_fraction": "0.9"}},
    }, tmp_path / "c.toml")
    Runner(config, tmp_path / "run",
           strategies={"buy_print": _BuyOnFirstPrint(limit)}).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        return ledger.query("select price, quantity, liquidity, ts_ns, fee from fills")


def test_a_recording_of_prints_only_fills_through_the_runner(tmp_path: Path) -> None:
    """End to end: a limit IOC decided on the first print of a recording of prints fills
    at the next print (plus the 2 bps half-spread, rounded up to the tick)."""
    (fill,) = _prints_run(tmp_path, Decimal("0.60"))
    # 0.52 x 1.0002 = 0.520104 -> 0.53: a buy is rounded up onto the tick.
    assert (fill["price"], Decimal(str(fill["quantity"])), fill["liquidity"],
            fill["ts_ns"]) == ("0.53", Decimal(10), "taker", 2 * 10**9)
    assert Decimal(str(fill["fee"])) == Decimal("0.53") * 10 * Decimal("0.004")


def test_a_market_order_on_prints_only_fills_through_the_runner(tmp_path: Path) -> None:
    (fill,) = _prints_run(tmp_path, None)
    assert (fill["price"], fill["ts_ns"]) == ("0.53", 2 * 10**9)


# -- 3. an instrument's first bar -------------------------------------------------------------
def test_an_order_sent_before_its_instruments_first_bar_skips_that_bar() -> None:
    """X's first bar (stamped 2:00) opened at 1:00, unknown to the broker.  An order on
    X sent at 1:30 on Y's data (the market was running) must not fill at X's 1:00 open
    of 90 while X rallied to 110: that was a price from before the order.  Was: the
    first bar filled it at 90.  It fills at the next bar's open (opened 2:00)."""
    b, market = _broker()
    _feed(b, market, _bar(1, 50.0, 51.0, 49.0, 50.0, inst=OTHER))
    sent = 1 * HOUR + HOUR // 2
    assert b.submit(_order(Side.BUY, "1"), sent) == []
    assert _feed(b, market, _bar(2, 90.0, 110.0, 89.0, 109.0)) == []
    assert b.status("o1") == (OrderStatus.OPEN, Decimal(0))
    (fill,) = _feed(b, market, _bar(3, 109.5, 111.0, 108.0, 110.0))
    assert (fill.price, fill.ts_ns) == (Decimal("109.5"), 3 * HOUR)


def test_a_resting_limit_is_not_filled_by_the_range_of_a_first_bar_that_may_predate_it(
        ) -> None:
    """The same for the range: X's first bar went down to 89 maybe before the order."""
    b, market = _broker()
    _feed(b, market, _bar(1, 50.0, 51.0, 49.0, 50.0, inst=OTHER))
    b.submit(_order(Side.BUY, "1", limit="95", tif=TimeInForce.GTC), 1 * HOUR + 1)
    assert _feed(b, market, _bar(2, 90.0, 110.0, 89.0, 109.0)) == []
    assert _feed(b, market, _bar(3, 109.5, 111.0, 108.0, 110.0)) == []  # rests at 95
    (fill,) = _feed(b, market, _bar(4, 100.0, 101.0, 94.0, 96.0))
    assert (fill.price, fill.liquidity) == (Decimal("95"), Liquidity.MAKER)


def test_the_first_bar_wait_survives_a_checkpoint() -> None:
    b, market = _broker()
    _feed(b, market, _bar(1, 50.0, 51.0, 49.0, 50.0, inst=OTHER))
    b.submit(_order(Side.BUY, "1"), 1 * HOUR + 1)
    restored, _ = _broker()
    restored.market = market
    restored.set_state(json.loads(json.dumps(b.get_state())))
    assert _feed(restored, market, _bar(2, 90.0, 110.0, 89.0, 109.0)) == []
    (fill,) = _feed(restored, market, _bar(3, 109.5, 111.0, 108.0, 110.0))
    assert fill.price == Decimal("109.5")


def test_an_order_sent_before_any_market_data_fills_on_the_first_bar() -> None:
    """It knew nothing (no event at all had been seen): the first bar's open is the first
    price it could meet, as the core's test_paper expects."""
    b, market = _broker()
    assert b.submit(_order(Side.BUY, "1"), 0) == []
    (fill,) = _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.5))
    assert fill.price == Decimal("100.0")


def test_an_order_on_the_same_stamp_as_its_instruments_first_bar_fills_on_the_next() -> None:
    """Y's bar and X's first bar both close at 1:00; Y's comes first and the order on X
    is sent then: X's 1:00 bar closed at the send, the 2:00 bar opened at it."""
    b, market = _broker()
    _feed(b, market, _bar(1, 50.0, 51.0, 49.0, 50.0, inst=OTHER))
    b.submit(_order(Side.BUY, "1"), 1 * HOUR)
    assert _feed(b, market, _bar(1, 90.0, 110.0, 89.0, 109.0)) == []
    (fill,) = _feed(b, market, _bar(2, 109.5, 111.0, 108.0, 110.0))
    assert fill.price == Decimal("109.5")


# -- 5. fees under half the ledger's unit ------------------------------------------------------
@pytest.mark.parametrize(("taker_bps", "expected"), [
    ("1", Decimal("1e-8")),      # 1e-9 used to round to 0
    ("4.9", Decimal("1e-8")),    # 4.9e-9 too
    ("15", Decimal("2e-8")),     # 1.5e-8: to the nearest unit, as before (half to even)
    ("0", Decimal("0")),         # no fee schedule: no fee
])
def test_a_fee_is_never_rounded_to_zero(taker_bps: str, expected: Decimal) -> None:
    """0.01 x 0.001 at 1 bps is a fee of 1e-9 of the quote currency; the ledger keeps
    1e-8.  Was: quantized half-to-even to 0 (no fee charged at all)."""
    market = MarketState()
    market.add_instruments([INST])
    fees = FeeSchedule(Decimal("0"), Decimal(taker_bps))
    b = PaperBroker(market, lambda _i: fees, PaperSection(bar_spread_bps=Decimal("0")))
    _feed(b, market, _bar(1, 0.01, 0.01, 0.01, 0.01))
    b.submit(_order(Side.BUY, "0.001"), 1 * HOUR)
    (fill,) = _feed(b, market, _bar(2, 0.01, 0.01, 0.01, 0.01))
    assert fill.fee == expected


# -- further attacks --------------------------------------------------------------------------
def test_a_market_exit_after_a_gap_fills_at_the_gapped_open_not_at_the_stop_level() -> None:
    """The core has no stop orders: a strategy's stop is a market order decided on a close
    under its level.  Bar 3 gaps down from 95 to 80: the sell fills at 80, the first price
    after the decision, never at the stop level (95) or bar 2's close."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.0))
    _feed(b, market, _bar(2, 100.0, 100.0, 94.0, 95.0))  # under a stop at 96: sell
    b.submit(_order(Side.SELL, "1"), 2 * HOUR)
    (fill,) = _feed(b, market, _bar(3, 80.0, 82.0, 78.0, 81.0))
    assert fill.price == Decimal("80.0")


def test_an_order_larger_than_the_bar_walks_five_levels_and_the_rest_is_cancelled() -> None:
    """Volume 10 with depth fraction 0.1: five levels of 1 each one half-spread worse
    (10 bps): an IOC of 8 takes 5 at rising prices, 3 are cancelled.  The synthetic
    book never shows more than half the bar's volume."""
    b, market = _broker(bar_spread_bps=Decimal("10"))
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.0))
    b.submit(_order(Side.BUY, "8"), 1 * HOUR)
    fills = _feed(b, market, _bar(2, 100.0, 101.0, 99.0, 100.0, v=10.0))
    assert [f.price for f in fills] == [Decimal(p) for p in
                                        ("100.10", "100.30", "100.50", "100.70", "100.90")]
    assert {f.quantity for f in fills} == {Decimal("1.000")}
    assert b.status("o1") == (OrderStatus.CANCELLED, Decimal(5))


def test_a_resting_order_takes_at_most_its_share_of_each_bars_volume() -> None:
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.0))
    b.submit(_order(Side.BUY, "5", limit="90", tif=TimeInForce.GTC), 1 * HOUR)
    assert _feed(b, market, _bar(2, 100.0, 101.0, 99.0, 100.0)) == []
    fills = [f for h in (3, 4, 5) for f in _feed(b, market, _bar(h, 95.0, 96.0, 85.0, 90.0,
                                                                   v=20.0))]
    assert [f.quantity for f in fills] == [Decimal("2.000")] * 2 + [Decimal("1.000")]
    assert b.status("o1") == (OrderStatus.FILLED, Decimal(5))


def test_a_zero_volume_bar_fills_no_resting_order_either() -> None:
    """No volume, no trade: a bar of zero volume that 'ranges' through a resting limit
    (a data vendor's filler bar) fills nothing; the order keeps resting."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.0))
    b.submit(_order(Side.BUY, "1", limit="98", tif=TimeInForce.GTC), 1 * HOUR)
    assert _feed(b, market, _bar(2, 100.0, 101.0, 97.0, 99.0, v=0.0)) == []
    assert b.working["o1"].resting
    (fill,) = _feed(b, market, _bar(3, 99.0, 99.5, 97.0, 98.5))
    assert fill.price == Decimal("98")


def test_an_order_decided_before_a_gap_of_days_fills_at_the_open_after_it() -> None:
    """Kraken omits hours without trades: bar 3 comes 72 hours after bar 2.  A market
    order decided on bar 2 fills at the first price after the gap (bar 3's open, 80); a
    buy limit at 90 resting since bar 2 fills at its limit (the market passed through it
    on the way down), never at the gapped open."""
    b, market = _broker()
    _feed(b, market, _bar(1, 100.0, 101.0, 99.0, 100.0))
    b.submit(_order(Side.BUY, "1", limit="90", tif=TimeInForce.GTC, coid="rest"), 1 * HOUR)
    assert _feed(b, market, _bar(2, 100.0, 100.5, 99.5, 100.0)) == []
    b.submit(_order(Side.BUY, "1", coid="mkt"), 2 * HOUR)
    fills = _feed(b, market, _bar(75, 80.0, 81.0, 79.0, 80.5))  # 72 hours later
    assert sorted((f.client_order_id, f.price, f.liquidity) for f in fills) == [
        ("mkt", Decimal("80.0"), Liquidity.TAKER), ("rest", Decimal("90"), Liquidity.MAKER)]
