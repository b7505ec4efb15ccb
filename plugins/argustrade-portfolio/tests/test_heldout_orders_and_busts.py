"""Held-out red team of the portfolio plugin: orders still working at the venue, busted
fills and overflowing forecasts.

What was found (each test failed before its fix):

* ``portfolio_caps`` judged the position an order would leave from the *filled* position
  only: resting limit orders (the core's ``RiskContext.pending``) were not counted, so ten
  resting buys of 6% each all passed a 7% per-play cap, and sells beyond a long position
  split over several working orders each passed as "shrinking" and built a short past
  the cap; the aggregate cap ignored the working orders of other instruments
  (``pending_exposure``);
* TCA summed a busted fill's offset (the core books ``<fill id>:bust`` on the *other*
  side of the same order, fee refunded) as more quantity: a 2-unit buy fully busted
  reported 4 units filled and a notional twice the trade; the offset and the busted
  fill were both slippage samples (the offset with its sign flipped), in calibration
  and in the ``slippage_drift`` window;
* ``risk_budgets`` summed the raw budgets before normalising: two forecasts of 1e308
  summed to inf and both strategies got budget 0.

Expected figures are worked out by hand in each test.
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_portfolio.allocation import risk_budgets
from argus_portfolio.drift import SlippageDrift
from argus_portfolio.enforcement import PortfolioCaps
from argus_portfolio.settings import PortfolioSettings
from argus_portfolio.tca import fill_slippages, order_costs

from argus_core import (
    Fill,
    Intent,
    Ledger,
    Liquidity,
    Order,
    Portfolio,
    Position,
    RiskAction,
    RiskContext,
    Side,
    structure,
)

BTC, ETH = "v:BTC/USD", "v:ETH/USD"


def _book(cash: str, **held: tuple[str, str]) -> Portfolio:
    """A portfolio holding ``{BTC|ETH: (quantity, mark)}``."""
    ids = {"BTC": BTC, "ETH": ETH}
    return Portfolio(Decimal(cash),
                     {ids[k]: Position(ids[k], Decimal(q), Decimal(m))
                      for k, (q, m) in held.items()},
                     {ids[k]: Decimal(m) for k, (q, m) in held.items()})


def _judge(check: PortfolioCaps, side: Side, qty: str, portfolio: Portfolio, *,
           pending: str = "0", pending_exposure: str = "0") -> Any:
    ctx = RiskContext(pending=Decimal(pending), pending_exposure=Decimal(pending_exposure))
    intent = Intent("s", BTC, side, quantity=Decimal(qty))
    return check.check(intent, Decimal(qty), Decimal(100), portfolio, ctx)


def test_resting_buys_count_towards_the_per_play_cap() -> None:
    """Flat, equity 100,000, price 100 (7% = 70 units): 60 units already rest as buys.
    A buy of 20 would leave 80 units (8%) once all fill; only 10 fit.  Before: allowed
    whole (the check looked at the filled position only)."""
    flat = _book("100000")
    d = _judge(PortfolioCaps(None), Side.BUY, "20", flat, pending="60")
    assert d.action is RiskAction.SHRINK and d.quantity == 10, d
    d = _judge(PortfolioCaps(None), Side.BUY, "1", flat, pending="70")
    assert d.action is RiskAction.VETO, d


def test_sells_split_over_working_orders_cannot_build_a_short_past_the_cap() -> None:
    """Long 60 (6%), 120 units of sells already working: the position heads to -60.  One
    more sell of 60 would leave -120 (12% short); 10 fit.  Before: allowed, because 60 on
    its own "shrinks" a long of 60."""
    long60 = _book("94000", BTC=("60", "100"))
    d = _judge(PortfolioCaps(None), Side.SELL, "60", long60, pending="120")
    assert d.action is RiskAction.SHRINK and d.quantity == 10, d


def test_orders_that_reduce_risk_still_pass_beside_working_orders() -> None:
    """The fix must not freeze a position: a long of 500 (50%, past every cap, e.g. the
    price rose) with 100 units of sells working can still be sold down, and a sell that
    only shrinks it passes beside working buys."""
    over = _book("50000", BTC=("500", "100"))
    check = PortfolioCaps(PortfolioSettings(max_gross_fraction=0.1))
    assert _judge(check, Side.SELL, "400", over, pending="100").action is RiskAction.ALLOW
    # 450 + 100 working > 500: leaves -50 short, within the 7% cap: allowed
    assert _judge(check, Side.SELL, "450", over, pending="100").action is RiskAction.ALLOW
    long60 = _book("94000", BTC=("60", "100"))
    assert _judge(PortfolioCaps(None), Side.SELL, "60", long60).action is RiskAction.ALLOW


def test_working_orders_of_other_instruments_count_towards_the_aggregate_cap() -> None:
    """Aggregate cap 10% of 100,000 = 10,000; 8,000 of ETH buys rest (pending_exposure).
    A BTC buy of 30 units (3,000) has 2,000 = 20 units left.  Before: allowed whole."""
    check = PortfolioCaps(PortfolioSettings(max_gross_fraction=0.1, per_play_fraction=0.07))
    d = _judge(check, Side.BUY, "30", _book("100000"), pending_exposure="8000")
    assert d.action is RiskAction.SHRINK and d.quantity == 20 and "aggregate" in d.reason, d


def _order(coid: str, side: Side, qty: str) -> dict[str, Any]:
    return {"client_order_id": coid, "strategy": "a", "instrument_id": BTC,
            "side": side.value, "ts_ns": 1, "reason": "", "quantity": qty,
            "decision_price": "100", "arrival_price": "100", "arrival_spread": None}


def _fill(fid: str, coid: str, side: Side, price: str, qty: str, fee: str) -> dict[str, Any]:
    return {"fill_id": fid, "client_order_id": coid, "instrument_id": BTC,
            "side": side.value, "price": price, "quantity": qty, "fee": fee,
            "liquidity": "taker", "ts_ns": 2}


def test_a_busted_fill_is_taken_back_in_the_order_costs() -> None:
    """A buy of 3: f1 2 @ 101 (fee 0.2) busted (offset f1:bust, a sell of 2 @ 101, fee
    -0.2), f2 1 @ 102 (fee 0.1) stands.  By hand: filled 1, notional 102, fees 0.1,
    VWAP 102, shortfall (102 - 100) + 0.1 = 2.1, slippage 200 bps, 2 unfilled.  Before:
    filled 5, notional 506, VWAP 101.2."""
    orders = [_order("o1", Side.BUY, "3")]
    fills = [_fill("f1", "o1", Side.BUY, "101", "2", "0.2"),
             _fill("f2", "o1", Side.BUY, "102", "1", "0.1"),
             _fill("f1:bust", "o1", Side.SELL, "101", "2", "-0.2")]
    (c,) = order_costs(orders, fills)
    assert (c.filled_quantity, c.notional, c.fees, c.vwap) == (1, 102, Decimal("0.1"), 102)
    assert c.shortfall == Decimal("2.1") and c.unfilled_quantity == 2
    assert c.slippage_bps == pytest.approx(200.0)
    # only f2 happened: one slippage sample of 200 bps
    assert [(s.fill_id, round(s.slippage_bps, 9)) for s in fill_slippages(orders, fills)] \
        == [("f2", 200.0)]


def test_a_wholly_busted_order_has_no_fill() -> None:
    """A sell of 2 filled at 99 and busted: nothing was traded (before: 4 filled)."""
    orders = [_order("o1", Side.SELL, "2")]
    fills = [_fill("f1", "o1", Side.SELL, "99", "2", "0.2"),
             _fill("f1:bust", "o1", Side.BUY, "99", "2", "-0.2")]
    (c,) = order_costs(orders, fills)
    assert (c.filled_quantity, c.notional, c.fees) == (0, 0, 0)
    assert c.vwap is None and c.shortfall is None and c.unfilled_quantity == 2
    assert fill_slippages(orders, fills) == []


def test_a_bust_offset_is_not_a_slippage_sample_of_the_drift_monitor(tmp_path: Path) -> None:
    """The offset of a busted taker fill paid no slippage; before, it entered the window
    with the busted fill's slippage negated (+50 then -50 bps), hiding the drift."""
    settings = structure({"drift": {"min_fills": 2, "window": 5, "assumed_slippage_bps": 0.0,
                                    "bar_half_spread_bps": 0.0}},
                         PortfolioSettings, "<test>", prefix="plugins.portfolio")
    check = SlippageDrift(settings)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        check.attach(ledger)
        ledger.insert_order(Order("o1", "v", BTC, Side.BUY, Decimal(1), strategy="a",
                                  arrival_price="100"), "r")
        p, ctx = Portfolio(cash=Decimal(100_000), positions={}), RiskContext()
        check.on_fill(Fill("f1", "o1", "v", BTC, Side.BUY, Decimal("100.5"), Decimal(1),
                           Decimal(0), Liquidity.TAKER, 1), p, ctx)
        check.on_fill(Fill("f1:bust", "o1", "v", BTC, Side.SELL, Decimal("100.5"),
                           Decimal(1), Decimal(0), Liquidity.TAKER, 2), p, ctx)
    # neither the offset nor the busted fill is a sample (the busted fill's own sample left
    # with the bust since test_heldout3_portfolio.py; it stayed as [50.0] before)
    assert list(check.windows["a"]) == []
    assert check.positions.held["a"][BTC] == 0  # the position is still taken back


def test_huge_forecasts_do_not_overflow_the_budgets() -> None:
    """Two equal forecasts of 1e308 are equal budgets, 0.5 each (before: 0 and 0, so no
    strategy got any capital); 1e308 beside 1 leaves the small one under 1e-12: none."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning is a failure too
        np.testing.assert_allclose(risk_budgets([1e308, 1e308], [1, 1]), [0.5, 0.5])
        np.testing.assert_allclose(risk_budgets([1e308, 1.0], [1, 1]), [1.0, 0.0])
        np.testing.assert_allclose(risk_budgets([3e307, 1e307], [1, 1]), [0.75, 0.25])
