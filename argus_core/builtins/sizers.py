"""Builtin plugin ``sizing``: fractional Kelly, fixed fraction and risk-budget sizers.

Formulas (each a pure function, tested against hand computations):

* binary payoff bought at ``price`` paying 1:  ``f* = (p - price) / (1 - price)``
* continuous forecast:                       ``f = c * mu / sigma**2``
* volatility-target overlay:                 ``f *= target_vol / sigma`` (capped)
* confidence shrinkage:                       ``f *= confidence``
* contracts from a risk budget:              ``floor(budget / max_loss_per_contract)``
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

import attrs

from argus_core.config import FRACTION, POSITIVE, optional
from argus_core.errors import DataError
from argus_core.hookspecs import RegisterSizer, hookimpl
from argus_core.interfaces import FeeSchedule, Sizer
from argus_core.models import Instrument, Intent, Portfolio, Side

_ZERO = Decimal(0)


def kelly_binary(p_win: float, price: float) -> float:
    """Kelly fraction of wealth to stake on a binary contract costing ``price``, paying 1."""
    if not 0.0 < price < 1.0:
        raise DataError(f"kelly_binary: price {price} must be in (0, 1)")
    if not 0.0 <= p_win <= 1.0:
        raise DataError(f"kelly_binary: p_win {p_win} must be in [0, 1]")
    return max(0.0, (p_win - price) / (1.0 - price))


def kelly_continuous(mu: float, sigma: float, fraction: float = 1.0) -> float:
    """Fractional Kelly leverage for a return forecast: ``fraction * mu / sigma**2``."""
    if sigma <= 0 or not math.isfinite(sigma):
        raise DataError(f"kelly_continuous: sigma {sigma} must be a positive number")
    variance = sigma * sigma
    if variance == 0.0:  # sigma below ~1e-154 underflows: the leverage is unbounded
        return math.copysign(math.inf, fraction * mu) if mu and fraction else 0.0
    return fraction * mu / variance


def vol_target_scale(sigma: float, target_vol: float, max_scale: float = 1.0) -> float:
    """Scale factor bringing forecast volatility ``sigma`` to ``target_vol``."""
    if sigma <= 0:
        return max_scale
    return min(max_scale, target_vol / sigma)


def contracts_from_budget(budget: Decimal, max_loss_per_contract: Decimal) -> int:
    """Whole contracts whose worst case fits the budget: ``floor(budget / max_loss)``."""
    if max_loss_per_contract <= 0:
        raise DataError("contracts_from_budget: max loss per contract must be > 0")
    if budget <= 0:
        return 0
    return int((budget / max_loss_per_contract).to_integral_value(rounding=ROUND_DOWN))


def round_to_lot(quantity: Decimal, instrument: Instrument | None) -> Decimal:
    """Round a quantity down to the instrument's lot size (0 below its minimum size)."""
    if instrument is None:  # whole units past 1e18: 1e-8 steps need more than 28 digits
        if quantity.adjusted() >= 18:
            return quantity.to_integral_value(rounding=ROUND_DOWN)
        return quantity.quantize(Decimal("1e-8"), rounding=ROUND_DOWN)
    lots = (quantity / instrument.lot_size).to_integral_value(rounding=ROUND_DOWN)
    qty = lots * instrument.lot_size
    return qty if qty >= instrument.min_size else Decimal(0)


def affordable(budget: Decimal, price: Decimal, unit_cost: Decimal, intent: Intent,
               portfolio: Portfolio, instrument: Instrument | None) -> Decimal:
    """Units of a ``budget`` at ``price`` on the lot grid, 0 for no budget (an equity at or
    below zero); a buy that opens or adds to a long is held to the cash it can pay at
    ``unit_cost`` (price plus fee) a unit: equity counts positions it cannot spend."""
    if budget <= 0 or price <= 0:
        return Decimal(0)
    qty = budget / price
    if intent.side is Side.BUY and portfolio.position(intent.instrument_id).quantity >= 0:
        qty = min(qty, portfolio.cash / max(unit_cost, price))  # a rebate is not cash
    return round_to_lot(qty, instrument) if qty > 0 else Decimal(0)


@attrs.frozen
class SizingSettings:
    """``[plugins.sizing]``: parameters of the builtin sizers."""

    # fixed_fraction: share of equity per order
    fraction: Decimal = attrs.field(default=Decimal("0.05"), validator=FRACTION)
    # multiplier on full Kelly (above 1 bets more than the growth-optimal stake)
    kelly_fraction: float = attrs.field(default=0.25, validator=FRACTION)
    # annualised; enables the vol-target overlay
    target_vol: float | None = attrs.field(default=None, validator=optional(POSITIVE))
    # hard cap on the share of equity per order
    max_fraction: float = attrs.field(default=0.2, validator=FRACTION)


class FixedFraction(Sizer):
    """Notional = ``fraction`` x equity, converted to units at ``price``."""

    name = "fixed_fraction"

    def __init__(self, settings: SizingSettings | None) -> None:
        self.s = settings or SizingSettings()

    def size(self, intent: Intent, price: Decimal, portfolio: Portfolio,
             instrument: Instrument | None, fees: FeeSchedule | None = None) -> Decimal:
        """``fraction`` of equity at ``price`` (fees do not change a fixed budget)."""
        cost = price + (fees.unit_fee(price) if fees is not None else 0)
        return affordable(portfolio.equity * self.s.fraction, price, cost, intent, portfolio,
                          instrument)


class Kelly(Sizer):
    """Fractional Kelly from the intent's forecast (binary if it has ``p_win``), shrunk by
    confidence, optionally vol-targeted, capped at ``max_fraction`` of equity.

    A binary bet costs the price plus the taker fee per unit of the instrument's fee
    schedule (``fees.unit_fee(price)``): a bet whose edge the fee eats is not made."""

    name = "kelly"

    def __init__(self, settings: SizingSettings | None) -> None:
        self.s = settings or SizingSettings()

    @staticmethod
    def stake(intent: Intent, price: Decimal, fee: Decimal) -> Decimal:
        """What one unit risks: a binary contract's price plus its fee (sold, a bet against
        it: ``1 - price`` plus the fee); else its price (the fraction is of notional)."""
        fc = intent.forecast
        if fc is None or fc.p_win is None:
            return price
        return (1 - price if intent.side is Side.SELL else price) + fee

    def fraction(self, intent: Intent, price: Decimal, fees: FeeSchedule | None = None
                 ) -> float:
        """Share of equity to commit; 0 when the forecast is against the intent's side."""
        fc = intent.forecast
        if fc is None:
            return 0.0
        if fc.p_win is not None:
            cost = float(self.stake(intent, price, fees.unit_fee(price) if fees else _ZERO))
            if not 0.0 < cost < 1.0:
                return 0.0  # the fee leaves nothing to win (or a price no float holds)
            p = fc.p_win if intent.side is Side.BUY else 1.0 - fc.p_win
            f = kelly_binary(p, cost) * self.s.kelly_fraction
        else:
            if fc.sigma <= 0:
                return 0.0
            # a return forecast against the side (a buy expecting a fall) is no edge
            f = kelly_continuous(fc.mu, fc.sigma, self.s.kelly_fraction) * intent.side.sign
            if self.s.target_vol is not None:
                f *= vol_target_scale(fc.sigma, self.s.target_vol, max_scale=1.0)
        # An unbounded leverage (a tiny sigma) is capped below; with no confidence it is
        # no bet at all (inf * 0 would be NaN, which no comparison caps).
        f = f * fc.confidence if fc.confidence else 0.0
        if math.isnan(f):
            return 0.0
        return min(max(f, 0.0), self.s.max_fraction)

    def size(self, intent: Intent, price: Decimal, portfolio: Portfolio,
             instrument: Instrument | None, fees: FeeSchedule | None = None) -> Decimal:
        """Kelly's share of equity in units of what one risks (:meth:`stake`)."""
        if price <= 0:
            return Decimal(0)
        f = Decimal(repr(self.fraction(intent, price, fees)))
        fee = fees.unit_fee(price) if fees is not None else _ZERO
        return affordable(portfolio.equity * f, self.stake(intent, price, fee), price + fee,
                          intent, portfolio, instrument)


@hookimpl
def config_class() -> type:
    """``[plugins.sizing]`` settings."""
    return SizingSettings


@hookimpl
def register_sizers(register: RegisterSizer) -> None:
    """Register the builtin sizers."""
    register(FixedFraction.name, FixedFraction)
    register(Kelly.name, Kelly)
