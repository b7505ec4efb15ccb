"""The ``slippage_drift`` check on its own: the statistic, its guards (few fills, one
huge outlier), per-strategy REDUCING, and its state."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from argus_portfolio.drift import SlippageDrift, check_for
from argus_portfolio.settings import DriftSettings, PortfolioSettings

from argus_core import (
    ConfigError,
    Fill,
    Intent,
    Ledger,
    Liquidity,
    Order,
    Portfolio,
    RiskAction,
    RiskContext,
    Side,
    structure,
)

IID = "v:BTC/USD"


def guard(**drift: object) -> SlippageDrift:
    settings = structure({"drift": drift}, PortfolioSettings, "<test>",
                         prefix="plugins.portfolio")
    check = SlippageDrift(settings)
    check.attach(None)
    return check


def _portfolio() -> Portfolio:
    return Portfolio(cash=Decimal(100_000), positions={})


def test_a_strategy_with_fewer_than_min_fills_never_trips() -> None:
    check = guard(min_fills=20, window=50, assumed_slippage_bps=1.0)
    # 19 fills, each 500 bps worse than assumed: still too few to judge.
    assert all(check.observe("a", 500.0 + i) is None for i in range(19))
    assert "a" not in check.reducing
    reason = check.observe("a", 519.0)  # the 20th: judged, and it drifted
    assert reason is not None and "over its last 20 taker fills" in reason
    assert "assumed 1.00 bps" in reason and check.reducing == {"a": reason}


def test_drift_within_k_standard_errors_or_min_excess_does_not_trip() -> None:
    check = guard(min_fills=10, window=10, k=3.0, assumed_slippage_bps=5.0,
                  min_excess_bps=1.0)
    # mean 6 (1 bps over), SE = sd/sqrt(10) with sd ~ 3.2: about 1 SE, not 3.
    for x in (1.0, 11.0) * 5:
        assert check.observe("noisy", x) is None
    # no noise at all, but only 0.5 bps over: under min_excess_bps.
    for _ in range(10):
        assert check.observe("exact", 5.5) is None
    assert not check.reducing


@pytest.mark.parametrize("outlier", [1e3, 1e6, 1e12, -1e6])
def test_one_huge_outlier_alone_never_trips(outlier: float) -> None:
    """The t-statistic of one outlier among otherwise ordinary fills tends to 1 < k."""
    check = guard(min_fills=20, window=50, k=1.5, assumed_slippage_bps=2.0)
    ordinary = [2.0 + 0.1 * ((i % 5) - 2) for i in range(29)]  # on the assumption
    for x in ordinary[:15]:
        check.observe("a", x)
    assert check.observe("a", outlier) is None
    for x in ordinary[15:]:
        assert check.observe("a", x) is None
    assert not check.reducing


def test_an_outlier_masks_drift_until_it_leaves_the_window() -> None:
    check = guard(min_fills=10, window=20, k=3.0, assumed_slippage_bps=2.0)
    check.observe("a", 1e6)
    drifting = [10.0 + 0.5 * (i % 3) for i in range(40)]  # 8 bps too much, little noise
    tripped_at = next(i for i, x in enumerate(drifting) if check.observe("a", x))
    assert tripped_at == 19  # the 20th drifting fill pushes the outlier out of the window


def test_reducing_vetoes_the_strategys_new_exposure_only() -> None:
    check = guard(assumed_slippage_bps=0.0, min_fills=2, window=2)
    check.positions.held = {"a": {IID: Decimal("0.5")}, "b": {IID: Decimal("0.5")}}
    check.observe("a", 50.0)
    assert check.observe("a", 60.0) is not None
    ctx, p = RiskContext(), _portfolio()

    def judge(strategy: str, side: Side, qty: str) -> RiskAction:
        intent = Intent(strategy, IID, side, quantity=Decimal(qty))
        return check.check(intent, Decimal(qty), Decimal(100), p, ctx).action

    assert judge("a", Side.BUY, "0.1") is RiskAction.VETO  # adds to its position
    assert judge("a", Side.SELL, "0.6") is RiskAction.VETO  # flips it short
    assert judge("a", Side.SELL, "0.5") is RiskAction.ALLOW  # closes it
    assert judge("b", Side.BUY, "1") is RiskAction.ALLOW  # another strategy: untouched
    decision = check.check(Intent("a", IID, Side.BUY, quantity=Decimal(1)), Decimal(1),
                           Decimal(100), p, ctx)
    assert "strategy 'a' is REDUCING (slippage drift" in decision.reason
    assert ctx.trading_state == "active"  # the run's own state is not touched


def test_state_round_trips_through_json() -> None:
    check = guard(min_fills=3, window=4, assumed_slippage_bps=0.0)
    check.positions.held = {"a": {IID: Decimal("0.25")}}
    for x in (10.0, 11.0, 12.0):
        check.observe("a", x)
    check.observe("b", 1.0)
    state = json.loads(json.dumps(check.get_state()))
    again = guard(min_fills=3, window=4, assumed_slippage_bps=0.0)
    again.set_state(state)
    assert again.get_state() == check.get_state()
    assert again.reducing == check.reducing and "a" in again.reducing
    assert list(again.windows["a"]) == [10.0, 11.0, 12.0]
    assert again.windows["a"].maxlen == 4


def test_on_fill_reads_the_order_row_and_records_the_drift(tmp_path: Path) -> None:
    """Book order: slippage beyond the quoted half-spread; bar order: beyond the bar's."""
    check = guard(min_fills=2, window=5, assumed_slippage_bps=1.0, bar_half_spread_bps=2.0)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        check.attach(ledger)
        ledger.insert_order(Order("o1", "v", IID, Side.BUY, Decimal(1), strategy="a",
                                  arrival_price="100", arrival_spread="0.2"), "r")
        ledger.insert_order(Order("o2", "v", IID, Side.SELL, Decimal(1), strategy="a",
                                  arrival_price="100"), "r")
        p, ctx = _portfolio(), RiskContext()
        # 100.30 vs a mid of 100 with 10 bps half-spread: 20 bps beyond it
        check.on_fill(Fill("f1", "o1", "v", IID, Side.BUY, Decimal("100.30"), Decimal(1),
                           Decimal(0), Liquidity.TAKER, 1), p, ctx)
        assert list(check.windows["a"]) == pytest.approx([20.0])
        # 99.80 vs a close of 100, bar half-spread 2 bps: 18 bps beyond it
        check.on_fill(Fill("f2", "o2", "v", IID, Side.SELL, Decimal("99.80"), Decimal(1),
                           Decimal(0), Liquidity.TAKER, 2), p, ctx)
        assert list(check.windows["a"]) == pytest.approx([20.0, 18.0])
        assert check.positions.held["a"][IID] == 0  # bought 1, sold 1
        (event,) = ledger.query("select * from risk_events")
    assert (event["check_name"], event["action"], event["strategy"], event["ts_ns"]) == (
        "slippage_drift", "reducing", "a", 2)
    assert "19.00 bps beyond the half-spread" in event["reason"]
    assert "18.00 bps above the assumed 1.00 bps" in event["reason"]


def test_maker_fills_are_not_judged(tmp_path: Path) -> None:
    check = guard(min_fills=2, window=5, assumed_slippage_bps=0.0)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        check.attach(ledger)
        ledger.insert_order(Order("o1", "v", IID, Side.BUY, Decimal(1), strategy="a",
                                  arrival_price="100"), "r")
        check.on_fill(Fill("f1", "o1", "v", IID, Side.BUY, Decimal("105"), Decimal(1),
                           Decimal(0), Liquidity.MAKER, 1), _portfolio(), RiskContext())
    assert check.windows == {} and check.positions.held["a"][IID] == 1


def test_the_assumption_defaults_to_the_runs_paper_slippage() -> None:
    check = guard(strategy_slippage_bps={"b": 7.0})

    @attrs.frozen
    class Paper:
        slippage_bps: Decimal = Decimal("4")
        cost_multiplier: Decimal = Decimal("1.5")
        bar_spread_bps: Decimal = Decimal("3")

    check.attach(None, Paper())
    assert check.assumed_bps("a") == 6.0  # 4 x 1.5, as the replay charges it
    assert check.assumed_bps("b") == 7.0
    assert check.bar_half_spread_bps == 3.0
    assert guard(assumed_slippage_bps=2.5).assumed_bps("a") == 2.5


def test_the_check_is_found_by_its_runs_settings_object_only() -> None:
    a, b = PortfolioSettings(), PortfolioSettings()
    assert a == b  # equal settings of two runs...
    ca, cb = SlippageDrift(a), SlippageDrift(b)
    assert check_for(a) is ca and check_for(b) is cb  # ...never share a check
    assert check_for(PortfolioSettings()) is None


@pytest.mark.parametrize(("drift", "message"), [
    ({"k": 0.5}, r"k = 0.5 is outside the allowed range \[1, 100\]"),
    ({"min_fills": 1}, r"min_fills = 1 is outside the allowed range"),
    ({"min_fills": 30, "window": 20}, r"window = 20 is outside the allowed range \[30"),
    ({"strategy_slippage_bps": {"a": -1}}, r"strategy_slippage_bps.a = -1"),
    ({"assumed_slippage_bps": 20000}, r"assumed_slippage_bps = 20000"),
    ({"bogus": 1}, r"unknown key\(s\) \(bogus\)"),
])
def test_settings_out_of_range_are_refused_naming_the_key(drift: dict[str, object],
                                                          message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        structure({"drift": drift}, PortfolioSettings, "run.toml", prefix="plugins.portfolio")
    assert DriftSettings().k == 3.0
