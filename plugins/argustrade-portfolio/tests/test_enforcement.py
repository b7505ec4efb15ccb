"""The ``portfolio_caps`` risk check and the ``portfolio_weight`` sizer, by hand."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from argus_portfolio.allocation import inverse_vol_weights
from argus_portfolio.enforcement import PortfolioCaps, PortfolioWeight, position_room
from argus_portfolio.settings import PortfolioSettings, StrategyModel

from argus_core import (
    Forecast,
    Instrument,
    Intent,
    Portfolio,
    Position,
    RiskAction,
    RiskContext,
    Side,
)

BTC, ETH, SOL = "replay:BTC/USD", "replay:ETH/USD", "replay:SOL/USD"


def book(cash: str, **held: tuple[str, str]) -> Portfolio:
    """A portfolio holding ``{name: (quantity, mark)}`` (names: BTC, ETH, SOL)."""
    ids = {"BTC": BTC, "ETH": ETH, "SOL": SOL}
    return Portfolio(Decimal(cash),
                     {ids[k]: Position(ids[k], Decimal(q), Decimal(m))
                      for k, (q, m) in held.items()},
                     {ids[k]: Decimal(m) for k, (q, m) in held.items()})


def judge(check: PortfolioCaps, side: Side, qty: str, portfolio: Portfolio, *,
          iid: str = BTC, reduce_only: bool = False, price: str = "100"):
    intent = Intent("s", iid, side, quantity=Decimal(qty), reduce_only=reduce_only)
    return check.check(intent, Decimal(qty), Decimal(price), portfolio, RiskContext())


def test_position_room_on_both_sides():
    assert position_room(Decimal(60), +1, Decimal(70)) == 10     # add to a long
    assert position_room(Decimal(60), -1, Decimal(70)) == 130    # close, then short to cap
    assert position_room(Decimal(-20), -1, Decimal(70)) == 50
    assert position_room(Decimal(80), +1, Decimal(70)) == 0      # already past (price rose)
    assert position_room(Decimal(0), +1, Decimal(70)) == 70


def test_the_order_under_7pct_that_would_take_the_position_past_7pct_is_trimmed():
    # equity 100,000; 60 units at 100 = 6%; the order is 20 units = 2% of equity, far under
    # a per-order 7% cap, but would leave 8%: trimmed to the 10 units left under 7%.
    p = book("94000", BTC=("60", "100"))
    assert p.equity == 100_000
    d = judge(PortfolioCaps(None), Side.BUY, "20", p)
    assert Decimal("0.07") * p.equity > 20 * 100  # the order alone is under 7%
    assert d.action is RiskAction.SHRINK and d.quantity == 10 and "per-play" in d.reason
    # the order that fits passes; at the cap, the next unit is refused
    assert judge(PortfolioCaps(None), Side.BUY, "10", p).action is RiskAction.ALLOW
    full = book("93000", BTC=("70", "100"))
    d = judge(PortfolioCaps(None), Side.BUY, "1", full)
    assert d.action is RiskAction.VETO and "no room" in d.reason


def test_reduce_only_and_shrinking_orders_always_pass():
    over = book("50000", BTC=("500", "100"))  # 50% of equity, far past every cap
    check = PortfolioCaps(PortfolioSettings(max_gross_fraction=0.1))
    assert judge(check, Side.SELL, "500", over, reduce_only=True).action is RiskAction.ALLOW
    assert judge(check, Side.SELL, "100", over).action is RiskAction.ALLOW  # shrinks
    d = judge(check, Side.BUY, "1", over)
    assert d.action is RiskAction.VETO


def test_a_flip_is_capped_on_the_other_side():
    p = book("94000", BTC=("60", "100"))
    d = judge(PortfolioCaps(None), Side.SELL, "200", p)   # would leave -140 = 14% short
    assert d.action is RiskAction.SHRINK and d.quantity == 130


def test_instrument_family_and_aggregate_caps():
    p = book("100000")
    s = PortfolioSettings(instrument_caps={BTC: 0.03})
    assert judge(PortfolioCaps(s), Side.BUY, "50", p).quantity == 30
    fam = PortfolioSettings(families={BTC: "crypto", ETH: "crypto"}, family_caps={"crypto": 0.1})
    p = book("96000", ETH=("40", "100"))  # the family holds 4%
    d = judge(PortfolioCaps(fam), Side.BUY, "70", p)
    assert d.quantity == 60 and "family 'crypto'" in d.reason
    agg = PortfolioSettings(max_gross_fraction=0.1)
    p = book("88000", ETH=("60", "100"), SOL=("-60", "100"))  # gross 12% already
    d = judge(PortfolioCaps(agg), Side.BUY, "5", p)
    assert d.action is RiskAction.VETO and "aggregate" in d.reason
    p = book("95000", ETH=("50", "100"))  # gross 5%: 5% left for BTC
    assert judge(PortfolioCaps(agg), Side.BUY, "70", p).quantity == 50


def test_an_order_without_a_price_is_refused_and_one_with_a_price_passes():
    p = book("100000")
    assert judge(PortfolioCaps(None), Side.BUY, "1", p, price="0").action is RiskAction.VETO
    assert judge(PortfolioCaps(None), Side.BUY, "1", p, price="0.01").action \
        is RiskAction.ALLOW


def sizer_settings(**kw) -> PortfolioSettings:
    return PortfolioSettings(
        strategies={"a": StrategyModel(vol=0.1), "b": StrategyModel(vol=0.3)},
        target_vol=0.1, max_leverage=1.0, max_strategy_weight=1.0, **kw)


def test_the_sizer_uses_the_allocators_weight_capped_per_play():
    sizer = PortfolioWeight(sizer_settings(per_play_fraction=1.0))
    # zero correlation: inverse vol, then the vol target: 0.1 / sqrt(w'Σw)
    w = inverse_vol_weights([0.1, 0.3])
    vol = float(np.sqrt(w @ np.diag([0.01, 0.09]) @ w))
    expect = w * min(0.1 / vol, 1.0 / w.sum())
    assert [sizer.weights["a"], sizer.weights["b"]] == pytest.approx(expect.tolist())
    p = book("100000")
    qty = sizer.size(Intent("a", BTC, Side.BUY, forecast=Forecast(0.01, 0.1, confidence=0.5)),
                     Decimal("100"), p, None)
    assert qty == (Decimal(100000) * Decimal(repr(sizer.weights["a"] * 0.5)) / 100).quantize(
        Decimal("1e-8"), "ROUND_DOWN")
    capped = PortfolioWeight(sizer_settings())  # default per-play 7%
    assert capped.size(Intent("a", BTC, Side.BUY), Decimal("100"), p, None) == 70


def test_the_sizer_tops_up_to_the_target_and_skips_unknown_strategies():
    sizer = PortfolioWeight(sizer_settings())
    p = book("95000", BTC=("50", "100"))
    inst = Instrument("replay", "BTC/USD", lot_size=Decimal("1"), min_size=Decimal("5"))
    assert sizer.size(Intent("a", BTC, Side.BUY), Decimal("100"), p, inst) == 20
    near = book("93500", BTC=("66", "100"))
    assert sizer.size(Intent("a", BTC, Side.BUY), Decimal("100"), near, inst) == 0  # 4 < min
    assert sizer.size(Intent("zzz", BTC, Side.BUY), Decimal("100"), p, inst) == 0
    assert sizer.size(Intent("a", BTC, Side.BUY), Decimal("0"), p, inst) == 0


def test_rebalance_moves_each_weight_at_most_max_step():
    sizer = PortfolioWeight(sizer_settings(max_step=0.02))
    before = dict(sizer.weights)
    returns = np.random.default_rng(0).normal(size=(60, 2)) * [0.03, 0.003]  # vols swap
    out = sizer.rebalance(returns, [1, 1], [1, 1])
    after = sizer.weights
    assert all(abs(after[k] - before[k]) <= 0.02 + 1e-15 for k in before)
    assert not np.allclose(out.weights, out.target)
