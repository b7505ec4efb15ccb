"""A tick coarser than the market's prices is refused, never filled outside the market.

The paper broker rounds a taker's price onto the tick against the trader.  Where the data
trades between the ticks and a tick is a large share of the price (a tick of 0.01 on
prices of 0.004, a configured tick of 100 on BTC at 40,000), that rounding put a buy at
0.01 and a sell at 0: fills the market never offered.  Such a tick contradicts the data,
and the fill says so (a DataError naming the instrument, the price and the tick); a fine
tick on float-noisy prices, a binary contract's coarse tick on its grid and a tick a small
share of the price still round as before.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml, error_line, invoke_argus

from argus_core.config import PaperSection
from argus_core.errors import DataError
from argus_core.interfaces import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import Bar, Fill, Instrument, Order, OrderType, Side, TimeInForce, Trade
from argus_core.paper import PaperBroker

HOUR = 3600 * 10**9
FEES = FeeSchedule(Decimal("10"), Decimal("40"))


def _broker(inst: Instrument, **paper: object) -> tuple[PaperBroker, MarketState]:
    market = MarketState()
    market.add_instruments([inst])
    settings = attrs.evolve(PaperSection(bar_spread_bps=Decimal("0")), **paper)
    return PaperBroker(market, lambda _i: FEES, settings), market


def _market_order(inst: Instrument, side: Side, qty: str = "1") -> Order:
    return Order("o1", inst.venue, inst.id, side, qty, None, OrderType.MARKET,
                 TimeInForce.IOC)


def _fill_on_next_bar(inst: Instrument, side: Side, o: float, h: float, lo: float, c: float,
                      **paper: object) -> list[Fill]:
    """A market order sent after bar 1 fills on bar 2's open (o, h, lo, c)."""
    broker, market = _broker(inst, **paper)
    first = Bar(inst.id, HOUR, o, h, lo, c, 1000.0)
    market.apply(first)
    broker.on_event(first)
    broker.submit(_market_order(inst, side), HOUR)
    second = Bar(inst.id, 2 * HOUR, o, h, lo, c, 1000.0)
    market.apply(second)
    return broker.on_event(second)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize(("tick", "o", "h", "lo"), [
    ("0.01", 0.004, 0.005, 0.003),     # the tick above the price: a buy at 0.01, a sell at 0
    ("0.01", 0.0104, 0.0106, 0.0102),  # a tick ~96 % of the price, the data between ticks
    ("1", 40123.4, 40200.0, 40000.0),  # not the case: a tick ~0.0025 % (fine below)
    ("100", 40123.4, 40200.0, 40000.0),  # today's coarse tick on finer data: 0.25 %
    ("0.01", 0.505, 0.51, 0.5),        # half a tick off a binary contract's grid
])
def test_a_tick_the_data_trades_between_is_refused_at_the_fill(
        side: Side, tick: str, o: float, h: float, lo: float) -> None:
    inst = Instrument("v", "X/USD", tick_size=tick, lot_size="0.001")
    if Decimal(tick) <= Decimal(repr(o)) * Decimal("1e-3"):
        fills = _fill_on_next_bar(inst, side, o, h, lo, o)  # a small share: rounded
        assert len(fills) == 1 and abs(fills[0].price - Decimal(repr(o))) <= Decimal(tick)
        return
    with pytest.raises(DataError) as err:
        _fill_on_next_bar(inst, side, o, h, lo, o)
    message = str(err.value)
    assert message.startswith(f"v:X/USD: the market trades at {o!r}, between the "
                              f"instrument's ticks of {tick}"), message
    assert "configure tick_size" in message


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize(("tick", "o"), [
    ("0.01", 0.02),     # a binary contract on its grid: a tick is half the price
    ("0.01", 0.07),     # 0.07 / 0.01 is 7.000000000000001 in floats: still on the grid
    ("0.01", 0.99),
    ("1e-8", 100.12345678901234),  # float-noisy synthetic prices under an inferred tick
    ("0.1", 162.9811),  # Kraken's 2013 five-decimal bars under today's 0.1: 0.06 %
])
def test_a_fill_on_the_grid_or_under_a_fine_tick_is_rounded_as_before(
        side: Side, tick: str, o: float) -> None:
    inst = Instrument("v", "X/USD", tick_size=tick, lot_size="0.001")
    (fill,) = _fill_on_next_bar(inst, side, o, o * 1.01, o * 0.99, o)
    step = Decimal(tick)
    assert fill.price % step == 0
    assert abs(fill.price - Decimal(repr(o))) < step  # at most one tick against the trader
    assert (fill.price >= Decimal(repr(o))) if side is Side.BUY else \
        (fill.price <= Decimal(repr(o)))


def test_a_print_between_coarse_ticks_is_refused_too() -> None:
    """An instrument with prints only: the print's price is the market's."""
    inst = Instrument("v", "X/USD", tick_size="0.01", lot_size="0.001")
    broker, market = _broker(inst)
    broker.submit(_market_order(inst, Side.SELL), HOUR)
    trade = Trade(inst.id, HOUR + 1, Decimal("0.004"), Decimal("5"), Side.BUY)
    market.apply(trade)
    with pytest.raises(DataError, match=r"trades at 0\.004, between the instrument's ticks"):
        broker.on_event(trade)


def test_a_replay_with_a_tick_coarser_than_its_bars_stops_with_the_reason(
        tmp_path: Path) -> None:
    """The bundled BTC bars of 2022 (one-decimal prices near 40,000) under a configured
    tick of 100: the first fill stops the run with a data error, no traceback."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-03-01").replace(
        "[plugins.replay]\n", '[plugins.replay]\ntick_size = "100"\n'))
    result = invoke_argus(["backtest", "--config", str(cfg), "--no-progress",
                           "--run-dir", str(tmp_path / "run")])
    line = error_line(result, DataError.exit_code)
    assert "between the instrument's ticks of 100" in line, line
    assert "configure tick_size to the data's own" in line, line


def test_the_same_replay_under_the_datas_tick_runs(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-03-01").replace(
        "[plugins.replay]\n", '[plugins.replay]\ntick_size = "0.1"\n'))
    result = invoke_argus(["backtest", "--config", str(cfg), "--no-progress",
                           "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
