"""Option instruments, symbols and the listed monthly expiries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from argus_core import DataError, Instrument
from argus_strategy_vrp.constants import MULTIPLIER, TICK_PER_CONTRACT, VENUE


@attrs.frozen
class PutContract:
    """A listed put: underlying, expiry date and strike."""

    underlying: str
    expiry: dt.date
    strike: float

    @property
    def symbol(self) -> str:
        """``SPY-20200117-P-300``."""
        return f"{self.underlying}-{self.expiry:%Y%m%d}-P-{self.strike:g}"

    @property
    def instrument_id(self) -> str:
        """``vrp_options:SPY-20200117-P-300``."""
        return f"{VENUE}:{self.symbol}"

    @classmethod
    def parse(cls, symbol_or_id: str) -> PutContract:
        """Inverse of :attr:`symbol` (accepts an instrument id too)."""
        symbol = symbol_or_id.split(":", 1)[-1]
        try:
            und, ymd, right, strike = symbol.split("-")
            if right != "P":
                raise ValueError(right)
            return cls(und, dt.datetime.strptime(ymd, "%Y%m%d").date(), float(strike))
        except ValueError:
            raise DataError(f"{symbol_or_id!r} is not a VRP put symbol like "
                            f"'SPY-20200117-P-300'") from None

    def instrument(self) -> Instrument:
        """The core instrument (prices per contract)."""
        return Instrument(VENUE, self.symbol, kind="option", tick_size=Decimal(TICK_PER_CONTRACT),
                          lot_size=Decimal(1), min_size=Decimal(1), base=self.underlying,
                          meta={"multiplier": MULTIPLIER, "underlying": self.underlying,
                                "expiry": self.expiry.isoformat(), "strike": self.strike,
                                "right": "P", "price_unit": "USD per contract"})


def third_friday(year: int, month: int) -> dt.date:
    """The third Friday of a month (standard monthly equity-option expiry)."""
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


def monthly_expiries(first: dt.date, last: dt.date, trading_days: list[dt.date]) -> list[dt.date]:
    """Monthly expiries between ``first`` and ``last``, moved to the previous trading day
    when the third Friday is a holiday (e.g. Good Friday)."""
    days = sorted(trading_days)
    out = []
    y, m = first.year, first.month
    while dt.date(y, m, 1) <= last:
        fri = third_friday(y, m)
        i = _bisect_right(days, fri) - 1
        if i >= 0 and (fri - days[i]).days < 7:
            out.append(days[i])
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return [e for e in out if first <= e]


def _bisect_right(a: list[dt.date], x: dt.date) -> int:
    import bisect

    return bisect.bisect_right(a, x)
