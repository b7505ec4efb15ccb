"""Second held-out red team of the VRP strategy: sizing against the spread's max loss.

Found and fixed (the test below failed before):

* contracts were ``floor(budget / (width x 100 - credit))``: the commissions (per
  contract on both legs, at entry and again at an early exit, plus any per-fill charge)
  were left out, so a play sized to its budget could lose more than it: with a $1,800
  budget, a 10-point spread and a $100 credit the strategy sold 2 spreads whose worst
  loss is 2 x $900 + 8 x $0.65 = $1,805.20.  The worst loss per contract now includes
  the round-trip commissions and the slippage the IOC limits allow (``limit_ticks`` on
  each leg), and the per-fill charges come off the budget first.

Held (checked, no change needed): a long strike missing from the chain (a gap) or a
spread whose long leg costs the credit or more is skipped; an expiring spread with
``exit_dte = 0`` settles at intrinsic (``test_vrp_execution``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import MULTIPLIER, VENUE
from argus_strategy_vrp.instruments import PutContract
from argus_strategy_vrp.pricing import bs_put
from argus_strategy_vrp.strategy import VrpPutSpread

TODAY = dt.date(2020, 1, 2)
EXPIRY = dt.date(2020, 2, 6)  # 35 days out
NOW_NS = int(dt.datetime(2020, 1, 2, 21, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


class _Book:
    """The slice of a core book the strategy reads: the touch and its size."""

    def __init__(self, bid: float, ask: float, size: float = 1000.0) -> None:
        self.bid, self.ask, self.size = bid, ask, size
        self.ts_ns, self.live = NOW_NS, True

    def best_bid(self) -> float:
        return self.bid

    def best_ask(self) -> float:
        return self.ask

    def bid_levels(self) -> Any:
        return np.array([[self.bid, self.size]])

    def ask_levels(self) -> Any:
        return np.array([[self.ask, self.size]])


class _Market:
    def __init__(self, books: dict[str, _Book]) -> None:
        self.books, self.now_ns = books, NOW_NS

    def signal(self, name: str, sid: str) -> float:
        return {"bocpd_p_change": 0.01, "vol_regime": 0.0, "vol_spike": 0.0,
                "realised_vol": 0.05}[name]


class _Portfolio:
    def __init__(self, equity: float) -> None:
        self.equity = equity


class _Ctx:
    def __init__(self, books: dict[str, _Book], equity: float) -> None:
        self.market, self.portfolio, self.pricers = _Market(books), _Portfolio(equity), {}


def _chain(spot: float, vol: float) -> dict[str, _Book]:
    """Puts every 5 points, quoted 1 dollar either side of Black-Scholes (per contract)."""
    books = {}
    for strike in np.arange(200.0, 305.0, 5.0):
        mid = float(bs_put(spot, strike, 35 / 365, 0.01, vol)) * MULTIPLIER
        books[PutContract("SPY", EXPIRY, float(strike)).instrument_id] = _Book(
            max(mid - 1.0, 1.0), mid + 1.0)
    return books


def _bar(spot: float) -> Any:
    from argus_core import Bar

    return Bar(f"{VENUE}:SPY", NOW_NS, spot, spot, spot, spot, 1.0)


def _worst_loss(settings: VrpSettings, intents: list[Any]) -> float:
    """Independent tally of the play's worst loss: both legs filled at their limits (the
    worst fill the orders allow), the spread closed at its max loss, commissions paid on
    four fills (entry and an early close)."""
    short, long_ = intents
    contracts = float(short.quantity)
    credit = float(short.limit_price) - float(long_.limit_price)
    width = (PutContract.parse(short.instrument_id).strike
             - PutContract.parse(long_.instrument_id).strike)
    fees = 4 * contracts * settings.commission_per_contract + 4 * settings.commission_per_fill
    return contracts * (width * MULTIPLIER - credit) + fees


@pytest.mark.parametrize(("per_fill", "n_budget"), [(0.0, 2), (1.0, 2), (0.0, 7), (0.5, 1)])
def test_contracts_never_risk_more_than_the_budget_with_fees(per_fill: float,
                                                             n_budget: int) -> None:
    """Before: the budget was divided by width x 100 - credit, fees left out: a budget of
    exactly 2 x $900 sold 2 spreads whose worst loss is $1,805.20."""
    settings = VrpSettings(symbols=["SPY"], risk_budget=0.02, max_risk_per_play=1e9,
                           commission_per_contract=0.65, commission_per_fill=per_fill,
                           min_credit=0.0, max_contracts=1000, min_vrp=-1.0)
    spot = 300.0
    books = _chain(spot, 0.2)
    first = VrpPutSpread(settings)._enter("SPY", _bar(spot), _Ctx(books, 1e6))
    assert len(first) == 2
    # a credit of exactly $100: the fee-free max loss is $900 per contract
    books[first[1].instrument_id].ask = books[first[0].instrument_id].bid - 100.0
    equity = n_budget * (settings.width * MULTIPLIER - 100.0) / settings.risk_budget
    strategy = VrpPutSpread(settings)
    intents = strategy._enter("SPY", _bar(spot), _Ctx(books, equity))
    budget = settings.risk_budget * equity
    if n_budget == 1:
        assert intents == [] and "budget" in strategy.last_decision["SPY"]
        return
    assert [i.instrument_id for i in intents] == [i.instrument_id for i in first]
    assert _worst_loss(settings, intents) <= budget, (intents[0].reason, budget)
    assert float(intents[0].quantity) == n_budget - 1  # the fees take the last one
