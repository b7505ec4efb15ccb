"""Kalshi's trading fee as a core :class:`FeeSchedule`.

The fee schedule charges, per fill of ``C`` contracts at price ``P`` dollars::

    fee = round_up(rate * C * P * (1 - P))

to the cent (``rate`` 0.07 for takers; 0.035 on the S&P 500 / Nasdaq-100 series; 0.0175
for makers on the series that charge makers, 0 elsewhere).  Direct members' fees are
rounded up to the centicent instead (docs: getting_started/fee_rounding).  Kalshi's
per-order fee accumulator, which refunds whole cents of rounding overpaid across many
small fills of one order, is not modelled: each fill is charged as if it were alone,
which can only over-state the fee.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import attrs

from argus_core import FeeSchedule
from argus_venue_kalshi import constants as C


def kalshi_fee(rate: Decimal, contracts: Decimal, price: Decimal,
               rounding: Decimal = C.FEE_ROUNDING["cent"]) -> Decimal:
    """``rate * contracts * price * (1 - price)`` rounded up to ``rounding`` dollars."""
    raw = rate * contracts * price * (C.PAYOUT - price)
    return raw.quantize(rounding, rounding=ROUND_CEILING) if raw > 0 else Decimal(0)


@attrs.frozen
class KalshiFeeSchedule(FeeSchedule):
    """The fee of one Kalshi market: ``taker_rate`` / ``maker_rate`` multipliers of
    ``C * P * (1 - P)``, rounded up per fill to ``rounding``; plus the base class's bps /
    fixed / per-unit parts, which are zero unless a ``[paper]`` override sets them."""

    taker_rate: Decimal = C.TAKER_FEE_RATE
    maker_rate: Decimal = Decimal(0)
    rounding: Decimal = C.FEE_ROUNDING["cent"]

    def fee(self, price: Decimal, quantity: Decimal, *, maker: bool) -> Decimal:
        """Fee of one fill of ``quantity`` contracts at ``price`` dollars."""
        rate = self.maker_rate if maker else self.taker_rate
        return (kalshi_fee(rate, quantity, price, self.rounding)
                + super().fee(price, quantity, maker=maker))

    def unit_fee(self, price: Decimal, *, maker: bool = False) -> Decimal:
        """Per-contract fee before rounding: ``rate * P * (1 - P)`` (the marginal cost a
        scanner adds per contract; exact fills are always priced by :meth:`fee`)."""
        rate = self.maker_rate if maker else self.taker_rate
        bps = self.maker_bps if maker else self.taker_bps
        # The base class's per-unit parts, computed directly: FeeSchedule.unit_fee probes
        # self.fee, which here already includes the curve.
        return (rate * price * (C.PAYOUT - price) + price * bps / Decimal(10_000)
                + self.per_unit)
