"""Transaction-cost figures on a ledger built by hand, every expected number worked out
below from the formulas in the README (not from the code under test)."""

from __future__ import annotations

import json
import statistics
from decimal import Decimal
from pathlib import Path

import pytest
from argus_portfolio.commands import tca, tca_calibrate
from argus_portfolio.tca import calibrate, daily_rollups, order_costs, read_run
from click.testing import CliRunner

from argus_core import ConfigError, Fill, Ledger, Liquidity, Order, OrderStatus, Side

D1 = 1_704_189_600 * 10**9  # 2024-01-02 10:00 UTC
D2 = 1_704_272_400 * 10**9  # 2024-01-03 09:00 UTC
BTC, ETH = "v:BTC/USD", "v:ETH/USD"


def _order(coid: str, strategy: str, iid: str, side: Side, qty: str, ts: int, *,
           decision: str | None, arrival: str | None, spread: str | None = None) -> Order:
    return Order(coid, "v", iid, side, Decimal(qty), strategy=strategy, ts_ns=ts,
                 status=OrderStatus.FILLED, reason=f"{strategy} {coid}",
                 decision_price=decision, arrival_price=arrival, arrival_spread=spread)


def _fill(fid: str, coid: str, iid: str, side: Side, price: str, qty: str, fee: str,
          liq: Liquidity, ts: int) -> Fill:
    return Fill(fid, coid, "v", iid, side, Decimal(price), Decimal(qty), Decimal(fee), liq, ts)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Two strategies over two days: alpha's partly filled book order (two taker fills)
    and a bar order (no spread); beta's maker order, an order that never filled, a taker
    order the next day, and a settlement (not an execution)."""
    d = tmp_path / "run"
    orders = [
        _order("o1", "alpha", BTC, Side.BUY, "3", D1, decision="100.00", arrival="100.10",
               spread="0.20"),
        _order("o2", "alpha", BTC, Side.SELL, "1", D1 + 60 * 10**9, decision="101.00",
               arrival="100.90"),
        _order("o3", "beta", ETH, Side.BUY, "10", D1 + 120 * 10**9, decision="50",
               arrival="50.05", spread="0.1"),
        _order("o4", "beta", ETH, Side.SELL, "5", D2, decision="52", arrival="52.00",
               spread="0.04"),
        _order("o5", "beta", ETH, Side.SELL, "5", D2 + 10**9, decision="52", arrival="52.00",
               spread="0.04"),
        _order("settle-1", "settlement", ETH, Side.SELL, "5", D2 + 2 * 10**9,
               decision=None, arrival=None),
    ]
    fills = [
        _fill("f1", "o1", BTC, Side.BUY, "100.20", "1.5", "0.15", Liquidity.TAKER, D1),
        _fill("f2", "o1", BTC, Side.BUY, "100.30", "0.5", "0.05", Liquidity.TAKER, D1),
        _fill("f3", "o2", BTC, Side.SELL, "100.70", "1", "0.10", Liquidity.TAKER, D1 + 61e9),
        _fill("f4", "o3", ETH, Side.BUY, "49.98", "4", "0.02", Liquidity.MAKER, D1 + 200e9),
        _fill("f5", "o3", ETH, Side.BUY, "49.99", "6", "0.03", Liquidity.MAKER, D1 + 300e9),
        _fill("f6", "o5", ETH, Side.SELL, "51.97", "5", "0.26", Liquidity.TAKER, D2 + 10**9),
        _fill("f7", "settle-1", ETH, Side.SELL, "0", "5", "0", Liquidity.SETTLEMENT,
              D2 + 2 * 10**9),
    ]
    with Ledger.in_dir(d) as ledger, ledger.transaction():
        for o in orders:
            ledger.insert_order(o, "r1")
        for f in fills:
            ledger.insert_fill(f)
    return d


def test_each_orders_costs_by_hand(run_dir: Path) -> None:
    run = read_run(run_dir)
    costs = {c.client_order_id: c for c in order_costs(run.orders, run.fills)}
    assert set(costs) == {"o1", "o2", "o3", "o4", "o5"}  # the settlement is no execution

    o1 = costs["o1"]  # buy 3, 1.5 @ 100.20 + 0.5 @ 100.30: notional 200.45, VWAP 100.225
    assert (o1.filled_quantity, o1.unfilled_quantity) == (Decimal(2), Decimal(1))
    assert (o1.notional, o1.vwap, o1.fees) == (Decimal("200.45"), Decimal("100.225"),
                                               Decimal("0.20"))
    assert o1.spread_paid == Decimal("0.25")  # 200.45 - 2 x 100.10
    assert o1.spread_paid_bps == pytest.approx(0.25 / 200.20 * 1e4)
    assert o1.slippage_bps == pytest.approx((100.225 / 100.10 - 1) * 1e4)
    assert o1.shortfall == Decimal("0.65")  # (200.45 - 2 x 100) + 0.20; the unfilled 1 free
    assert o1.shortfall_bps == pytest.approx(32.5)  # 0.65 / 200
    assert o1.taker_quantity == 2 and o1.maker_quantity == 0

    o2 = costs["o2"]  # a bar order: sell 1 @ 100.70 against a close of 100.90
    assert o2.spread_paid is None and o2.spread_paid_bps is None  # no mid to measure
    assert o2.slippage_bps == pytest.approx((1 - 100.70 / 100.90) * 1e4)  # ~19.82, adverse
    assert o2.shortfall == Decimal("0.40")  # -(100.70 - 101.00) + 0.10
    assert o2.shortfall_bps == pytest.approx(0.40 / 101 * 1e4)

    o3 = costs["o3"]  # maker buy 10 below the mid: negative costs (price improvement)
    assert (o3.notional, o3.vwap) == (Decimal("499.86"), Decimal("49.986"))
    assert o3.spread_paid == Decimal("-0.64")  # 499.86 - 10 x 50.05
    assert o3.shortfall == Decimal("-0.09")  # (499.86 - 500) + 0.05
    assert o3.shortfall_bps == pytest.approx(-1.8)
    assert o3.maker_quantity == 10 and o3.taker_quantity == 0

    o4 = costs["o4"]  # never filled: counted as an order, no prices, nothing charged
    assert o4.filled_quantity == 0 and o4.unfilled_quantity == 5
    assert o4.vwap is o4.slippage_bps is o4.shortfall is None

    o5 = costs["o5"]  # sell 5 @ 51.97 against a mid of 52
    assert o5.spread_paid == Decimal("0.15")
    assert o5.shortfall == Decimal("0.41")  # 0.15 + 0.26 fees
    assert o5.slippage_bps == pytest.approx((1 - 51.97 / 52) * 1e4)


def test_daily_rollups_by_hand(run_dir: Path) -> None:
    run = read_run(run_dir)
    rollups = {(r.day, r.strategy): r for r in daily_rollups(order_costs(run.orders,
                                                                         run.fills))}
    assert set(rollups) == {("2024-01-02", "alpha"), ("2024-01-02", "beta"),
                            ("2024-01-03", "beta")}
    alpha = rollups["2024-01-02", "alpha"]
    assert (alpha.instrument_id, alpha.orders, alpha.filled_orders) == (BTC, 2, 2)
    assert alpha.filled_quantity == Decimal(3)
    assert alpha.notional == Decimal("301.15")  # 200.45 + 100.70
    assert alpha.fees == Decimal("0.30")
    assert alpha.spread_paid == Decimal("0.25")  # the bar order has none
    assert alpha.shortfall == Decimal("1.05")  # 0.65 + 0.40
    assert alpha.shortfall_bps == pytest.approx(1.05 / 301 * 1e4)  # over 200 + 101
    slips = [(100.225 / 100.10 - 1) * 1e4, (1 - 100.70 / 100.90) * 1e4]
    assert alpha.mean_slippage_bps == pytest.approx(statistics.mean(slips))
    assert alpha.std_slippage_bps == pytest.approx(statistics.stdev(slips))

    day2 = rollups["2024-01-03", "beta"]
    assert (day2.orders, day2.filled_orders, day2.filled_quantity) == (2, 1, Decimal(5))
    assert (day2.notional, day2.fees, day2.shortfall) == (Decimal("259.85"),
                                                          Decimal("0.26"), Decimal("0.41"))
    assert day2.std_slippage_bps is None  # one filled order: no spread of values


def test_the_command_prints_orders_and_daily_rollups_as_json(run_dir: Path) -> None:
    out = CliRunner().invoke(tca, [str(run_dir), "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["client_order_id"]: r for r in json.loads(out.output)}
    # money as exact decimal strings
    assert Decimal(rows["o1"]["shortfall"]) == Decimal("0.65")
    assert Decimal(rows["o1"]["unfilled_quantity"]) == 1
    assert rows["o1"]["day"] == "2024-01-02"
    out = CliRunner().invoke(tca, [str(run_dir), "--daily", "--json"])
    assert out.exit_code == 0, out.output
    assert {(r["day"], r["strategy"], Decimal(r["shortfall"]))
            for r in json.loads(out.output)} == {
        ("2024-01-02", "alpha", Decimal("1.05")), ("2024-01-02", "beta", Decimal("-0.09")),
        ("2024-01-03", "beta", Decimal("0.41"))}
    table = CliRunner().invoke(tca, [str(run_dir), "--daily"])
    assert table.exit_code == 0 and "alpha" in table.output and "shortfall" in table.output


def test_the_command_refuses_a_directory_without_a_ledger(tmp_path: Path) -> None:
    out = CliRunner().invoke(tca, [str(tmp_path)])
    assert out.exit_code != 0 and "no run ledger" in out.output


def test_calibration_measures_beyond_the_half_spread_and_refuses_too_few_fills(
        run_dir: Path) -> None:
    run = read_run(run_dir)
    with pytest.raises(ConfigError, match=r"too few taker fills.*4 in.*at least 30"):
        calibrate([run], min_fills=30)
    result = calibrate([run], min_fills=3)
    # Taker fills, slippage vs arrival minus the half-spread (quoted, else the bar's 2 bps):
    beyond = [(100.20 / 100.10 - 1) * 1e4 - 0.10 / 100.10 * 1e4,
              (100.30 / 100.10 - 1) * 1e4 - 0.10 / 100.10 * 1e4,
              (1 - 100.70 / 100.90) * 1e4 - 2.0,
              (1 - 51.97 / 52) * 1e4 - 0.02 / 52 * 1e4]
    assert result.taker_fills == 4 and result.maker_fills == 2
    assert result.slippage_bps == pytest.approx(statistics.mean(beyond))
    assert result.stderr_bps == pytest.approx(statistics.stdev(beyond) / 2)
    assert result.maker_mean_bps == pytest.approx(statistics.mean(
        [(49.98 / 50.05 - 1) * 1e4, (49.99 / 50.05 - 1) * 1e4]))
    assert result.set_line() == f"--set paper.slippage_bps={statistics.mean(beyond):.2f}"
    cli = CliRunner().invoke(tca_calibrate, [str(run_dir)])
    assert cli.exit_code != 0 and "too few taker fills" in cli.output


def test_the_table_shows_sub_unit_vwaps_to_four_significant_digits() -> None:
    """A prediction market's fills at 0.003 and 0.014 printed as VWAP 0.00 and 0.01."""
    from argus_portfolio.commands import _price

    assert [_price(Decimal(v)) for v in ("0.003", "0.014", "0.64", "0.3333333333")] == [
        "0.003", "0.014", "0.64", "0.3333"]
    assert _price(Decimal("45123.456")) == "45123.46" and _price(None) == "-"
