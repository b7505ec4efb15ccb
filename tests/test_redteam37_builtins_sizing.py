"""Red team of the builtin sizers: a size never bets against its own forecast, never
exceeds the cash a buy can pay, is never negative, and stays on the lot grid above the
minimum, for prices near 0 and 1, equity at or below zero and Decimal extremes.  Each
expectation is worked out here, independently of ``argus_core.builtins.sizers``."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from decimal import localcontext

import pytest

from argus_core.builtins.sizers import FixedFraction, Kelly, SizingSettings
from argus_core.interfaces import FeeSchedule
from argus_core.models import Forecast, Instrument, Intent, Portfolio, Position, Side

IID = "v:x"


def _intent(side: Side = Side.BUY, **forecast: float) -> Intent:
    return Intent("s", IID, side, forecast=Forecast(**forecast) if forecast else None)


def test_kelly_never_bets_a_return_forecast_against_the_intents_side() -> None:
    """A buy expecting a fall (mu < 0) was sized as if it expected a rise (``abs``)."""
    k, pf = Kelly(None), Portfolio(D(1000))
    assert k.size(_intent(Side.BUY, mu=-0.01, sigma=0.1), D(10), pf, None) == 0
    assert k.size(_intent(Side.SELL, mu=0.01, sigma=0.1), D(10), pf, None) == 0
    # by hand: 0.25 x 0.01 / 0.1**2 = 0.25 of equity, capped at 0.2 -> 200 / 10 = 20 units
    assert k.size(_intent(Side.SELL, mu=-0.01, sigma=0.1), D(10), pf, None) == 20
    assert k.size(_intent(Side.BUY, mu=0.01, sigma=0.1), D(10), pf, None) == 20


def test_kelly_sells_a_binary_contract_only_on_the_edge_against_it() -> None:
    """A sell of a contract believed 90% to pay 1, at 0.5, was sized on the buy's edge."""
    k, pf = Kelly(None), Portfolio(D(1000))
    assert k.size(_intent(Side.SELL, p_win=0.9), D("0.5"), pf, None) == 0
    # against it: wins 0.5 with p 0.8 risking 0.5: f* = (0.8 - 0.5) / (1 - 0.5) = 0.6,
    # x0.25 = 0.15 of 1000 = 150 at risk, 0.5 a contract -> 300 contracts
    assert k.size(_intent(Side.SELL, p_win=0.2), D("0.5"), pf, None) == 300


@pytest.mark.parametrize("equity", [D(0), D(-1000), D("-1E-30")])
@pytest.mark.parametrize("inst", [None, Instrument("v", "x", lot_size="1")])
def test_no_equity_sizes_nothing_never_a_negative_quantity(
        equity: D, inst: Instrument | None) -> None:
    for sizer, intent in ((FixedFraction(None), _intent()),
                          (Kelly(None), _intent(mu=0.01, sigma=0.1)),
                          (Kelly(None), _intent(p_win=0.9))):
        assert sizer.size(intent, D("0.5"), Portfolio(equity), inst) == 0


def test_a_buy_is_held_to_the_cash_the_account_can_pay() -> None:
    """Equity 1000 of which 900 is a position: a 100% fixed fraction bought 1000 of
    notional with 100 of cash."""
    pf = Portfolio(D(100), {"v:y": Position("v:y", D(9), D(100))}, {"v:y": D(100)})
    assert pf.equity == 1000
    sizer = FixedFraction(SizingSettings(fraction=D(1)))
    fees = FeeSchedule(taker_bps=D(100))  # 1%: 10.10 a unit at 10
    qty = sizer.size(_intent(), D(10), pf, None, fees=fees)
    assert qty * D("10.10") <= 100 and qty == D("9.90099009")  # floor(100 / 10.1, 1e-8)
    # a sell needs no cash: still the whole fraction
    assert sizer.size(_intent(Side.SELL), D(10), pf, None) == 100


@pytest.mark.parametrize("price", [D("0.99999999999999999999"), D("1E-400"), D(1), D(2)])
def test_binary_prices_at_the_edges_size_zero_not_an_error(price: D) -> None:
    """A cost below 1 in Decimal but 1.0 as a float (or 0.0) raised in kelly_binary."""
    assert Kelly(None).size(_intent(p_win=1.0), price, Portfolio(D(1000)), None) == 0


def test_a_huge_quantity_without_an_instrument_is_whole_units_not_an_error() -> None:
    """1e-8 steps of 5e58 need more than the Decimal context's 28 digits."""
    qty = FixedFraction(None).size(_intent(), D("1E-30"), Portfolio(D("1E+30")), None)
    assert qty == D("5E+58")


_LOTS = [(D("1e-8"), D(0)), (D(1), D(5)), (D(1000), D(2000))]
_PRICES = [D("1E-30"), D("0.001"), D("0.37"), D("0.999"), D(1), D(250), D("1E+30")]
_EQUITIES = [D("0.01"), D(3), D(1000), D("1E+12")]


@pytest.mark.parametrize(("lot", "minimum"), _LOTS)
def test_every_size_is_on_the_grid_above_the_minimum_and_within_the_budget(
        lot: D, minimum: D) -> None:
    """A sweep of prices, equities, forecasts and fees against invariants computed here."""
    inst = Instrument("v", "x", lot_size=lot, min_size=minimum)
    fees = FeeSchedule(taker_bps=D(50), per_unit=D("0.001"))
    kelly = Kelly(SizingSettings(max_fraction=0.2))
    cases = [(FixedFraction(None), _intent(), D("0.05"))]
    cases += [(kelly, _intent(side, p_win=p), D("0.2"))
              for side, p in itertools.product(Side, (0.0, 0.3, 0.9, 1.0))]
    cases += [(kelly, _intent(side, mu=mu, sigma=0.05), D("0.2"))
              for side, mu in itertools.product(Side, (-0.5, 0.001, 0.5))]
    for (sizer, intent, cap), price, equity in itertools.product(cases, _PRICES, _EQUITIES):
        pf = Portfolio(equity)
        qty = sizer.size(intent, price, pf, inst, fees=fees)
        where = f"{type(sizer).__name__} {intent.side} {intent.forecast} @ {price}, {equity}"
        with localcontext(prec=200):  # exact checks of up to 1e42 units
            _check(qty, lot, minimum, cap, intent, price, pf, fees, where)


def _check(qty: D, lot: D, minimum: D, cap: D, intent: Intent, price: D, pf: Portfolio,
           fees: FeeSchedule, where: str) -> None:
    """The invariants of one size."""
    assert qty >= 0, where
    assert qty % lot == 0 and (qty == 0 or qty >= minimum), where
    if intent.side is Side.BUY:  # pays price plus fee a unit out of cash
        assert qty * (price + fees.unit_fee(price)) <= pf.cash, where
    stake = price
    if intent.forecast is not None and intent.forecast.p_win is not None:
        stake = 1 - price if intent.side is Side.SELL else price
    assert qty * stake <= pf.equity * cap, where
