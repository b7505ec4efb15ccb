"""Polymarket's price-dependent taker fee as a core :class:`FeeSchedule`.

The paper broker calls ``fee(price, quantity, maker=...)`` once per fill, so
paper and backtest fills pay exactly what the venue would charge (the curve
and the 0.00001 pUSD floor of :class:`~argus_venue_polymarket.schemas.FeeCurve`)
instead of a flat-bps bound.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from argus_core import FeeSchedule
from argus_venue_polymarket.schemas import FeeCurve


@attrs.frozen
class PolymarketFeeSchedule(FeeSchedule):
    """``rate * (p(1-p)) ** exponent`` per share for takers (makers too unless
    ``taker_only``), floored per fill; plus the base class's bps / fixed / per-unit parts,
    which are zero unless a ``[paper]`` override sets them (they then add to the curve)."""

    rate: Decimal = Decimal(0)
    exponent: Decimal = Decimal(1)
    taker_only: bool = True

    @classmethod
    def of(cls, curve: FeeCurve) -> PolymarketFeeSchedule:
        """The schedule of a market's fee curve."""
        return cls(rate=curve.rate, exponent=curve.exponent, taker_only=curve.taker_only)

    @property
    def curve(self) -> FeeCurve:
        """The fee curve this schedule charges."""
        return FeeCurve(self.rate, self.exponent, self.taker_only)

    def fee(self, price: Decimal, quantity: Decimal, *, maker: bool) -> Decimal:
        """Fee of one fill of ``quantity`` shares at ``price`` (pUSD)."""
        return (self.curve.fee(quantity, price, maker=maker)
                + super().fee(price, quantity, maker=maker))
