"""Third held-out audit: are the scanners' legs orders the venue takes?

Found: a ``max_size`` cap that is not a whole number of 0.01 lots (``7.555``, or ``0.001``,
both accepted by the settings' range) was copied into the leg as it was, so ``resolution``
(executable, risk-free), ``value`` and ``latency`` sent a quantity off Polymarket's lot
and reported the profit of shares that cannot be bought.  The cap is now rounded down to
the lot inside the shared walks (``common.walk_asks`` / ``common.walk_ladder``).
Incremental and reference paths side by side.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from argus_scanners_polymarket.common import LOT
from argus_scanners_polymarket.config import ResolutionSettings, ValueSettings
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.resolution import ResolutionScanner
from argus_scanners_polymarket.value import ValueScanner

from argus_core import FeeSchedule, Forecast, Forecaster, MarketState, Opportunity, Scanner

D = Decimal
H = 3600 * 10**9
NOW = 1_000 * H
CENT = FeeSchedule(per_unit=D("0.01"))  # one cent a share per taker fill


class _Fixed(Forecaster):
    """P = 0.9 for every token."""

    name = "fixed"

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        return Forecast(p_win=0.9, confidence=0.5)


def _both(scanner: type[Scanner], settings: object, market: MarketState) -> list[Opportunity]:
    inc = scanner(settings)  # type: ignore[call-arg]
    ref = scanner(settings, incremental=False)  # type: ignore[call-arg]
    a, b = inc.scan(market, NOW), ref.scan(market, NOW)
    assert a == b
    return a


def _resolved(min_size: str = "0") -> MarketState:
    b = MarketBuilder(CENT)
    ((yes, _no),) = b.event("R", ["r"], neg_risk=False, end_ts_ns=NOW - H, min_size=min_size)
    b.book(yes, [], [(0.50, 100)], ts_ns=NOW)
    b.settle(yes, 1)
    return b.market


@pytest.mark.parametrize(("cap", "qty"), [("7.555", "7.55"), ("0.019", "0.01"),
                                          ("0.001", None)])
def test_a_size_cap_off_the_lot_is_rounded_down_to_it(cap: str, qty: str | None) -> None:
    """Resolved at 1, asked 0.50 (100 shares), ``max_size = 7.555``.  Before: one leg of
    7.555 shares, profit 3.70195 (0.49 a share); a 0.001 cap gave a 0.001-share leg.  Now
    7.55 shares (profit 3.6995), 0.01 of a 0.019 cap, nothing under one lot."""
    found = _both(ResolutionScanner, ResolutionSettings(max_size=D(cap)), _resolved())
    if qty is None:
        assert found == []
        return
    (opp,) = found
    assert opp.max_size == opp.legs[0].quantity == D(qty)
    assert opp.legs[0].quantity % LOT == 0
    assert opp.expected_profit == D(qty) * (1 - D("0.50") - D("0.01"))


def test_the_value_scanners_cap_is_on_the_lot_too() -> None:
    """``value`` with ``max_size = 7.555``: before, a 7.555-share leg."""
    b = MarketBuilder(CENT)
    ((yes, _no),) = b.event("V", ["v"], neg_risk=False, min_size="0")
    b.book(yes, [(0.40, 100)], [(0.50, 100)], ts_ns=NOW)
    b.market.forecasters = {"fixed": _Fixed()}
    settings = ValueSettings(forecaster="fixed", max_size=D("7.555"))
    (opp,) = [o for o in _both(ValueScanner, settings, b.market)
              if o.legs[0].instrument_id == yes]
    assert opp.legs[0].quantity == opp.max_size == D("7.55")
