"""VRP plugin: calibrated quote model vs the bundled chain, synthetic books, sizing rule,
and a short end-to-end backtest through the real loop."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import numpy as np
import pytest
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.data import VrpVenue
from argus_strategy_vrp.instruments import PutContract, third_friday
from argus_strategy_vrp.pricing import (
    bs_put,
    calibrated_model,
    implied_vol_put,
    lognormal_pop,
)
from scipy import stats as st

from argus_core.backtest import run_backtest
from argus_core.config import parse_config
from argus_core.models import OrderBook, Settlement, Signal


def test_black_scholes_put_matches_an_independent_formula_and_inverts():
    s, k, t, r, v = 300.0, 280.0, 30 / 365, 0.01, 0.22
    d1 = (math.log(s / k) + (r + v * v / 2) * t) / (v * math.sqrt(t))
    ref = k * math.exp(-r * t) * st.norm.cdf(-(d1 - v * math.sqrt(t))) - s * st.norm.cdf(-d1)
    assert float(bs_put(s, k, t, r, v)) == pytest.approx(ref, rel=1e-12)
    assert implied_vol_put(ref, s, k, t, r) == pytest.approx(v, abs=1e-7)
    assert lognormal_pop(s, s, t, v, 0.0) == pytest.approx(st.norm.cdf(-v * math.sqrt(t) / 2))


def test_skew_model_reproduces_the_calibration_chain():
    m = calibrated_model()
    assert m.skew_b1 < 0  # puts: vol rises as strikes fall
    assert 0.6 < m.vix_to_atm < 1.1
    # A 10% OTM 30-day put carries more vol than the money (SPX skew).
    assert float(m.iv(0.15, np.array([0.9]), 1.0, 30 / 365)[0]) > 0.15 * 1.2


def test_books_are_valid_and_settlements_are_intrinsic():
    venue = VrpVenue(VrpSettings(symbols=["SPY"], start="2019-01-02", end="2019-03-29"))

    async def collect():
        return [e async for e in venue.stream()]

    events = asyncio.run(collect())
    books = [e for e in events if isinstance(e, OrderBook)]
    assert books and all(b.bids[0, 0] < b.asks[0, 0] for b in books if len(b.bids))
    settles = [e for e in events if isinstance(e, Settlement)]
    assert settles and all(e.price >= 0 for e in settles)
    assert {s.name for s in events if isinstance(s, Signal)} >= {"vix", "bocpd_p_change",
                                                                  "vol_regime"}
    assert PutContract.parse("vrp_options:SPY-20190118-P-250").expiry == third_friday(2019, 1)


def test_backtest_trades_spreads_sized_by_the_risk_budget(tmp_path):
    raw = {"argus": {"plugins": ["vrp"]},
           "run": {"venue": "vrp_options", "strategies": ["vrp_put_spread"],
                   "starting_cash": "100000"},
           "plugins": {"vrp": {"symbols": ["SPY"], "start": "2017-06-01", "end": "2017-12-29",
                               "min_vrp": 0.0, "spread_scale": 0.25, "risk_budget": 0.02,
                               "width": 10.0},
                       "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.10"}}}
    res = run_backtest(parse_config(raw), tmp_path / "run")
    opens = [f for f in res.fills if f.side.value == "sell" and "open" not in f.fill_id]
    assert res.metrics["n_trades"] > 0 and opens
    from argus_core.ledger import Ledger

    with Ledger.in_dir(res.run_dir) as ledger:
        orders = ledger.query("select * from orders where basket_id like '%-open-%'")
    by_basket: dict[str, list[dict]] = {}
    for o in orders:
        by_basket.setdefault(o["basket_id"], []).append(o)
    for legs in by_basket.values():
        assert len(legs) == 2 and legs[0]["quantity"] == legs[1]["quantity"]
        short = next(o for o in legs if o["side"] == "sell")
        long = next(o for o in legs if o["side"] == "buy")
        credit = Decimal(short["limit_price"]) - Decimal(long["limit_price"])
        max_loss = Decimal(1000) - credit
        # contracts = floor(budget / max loss per contract), budget = 2% of ~100k equity
        assert int(Decimal(short["quantity"])) <= math.floor(2000 / float(max_loss)) + 1
        assert int(Decimal(short["quantity"])) >= 1
