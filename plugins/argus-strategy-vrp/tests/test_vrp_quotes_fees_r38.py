"""Red team r38 of the VRP strategy: hostile quotes and the fees the fills really pay.

Found and fixed (each test below failed before):

* a crossed (or locked) short-leg book was traded: its mid gave an implied vol, its
  relative spread came out negative (so "liquid"), and the strategy sold at a bid above
  the ask, sizing the play on a credit the market never offered; a crossed long leg
  likewise inflated the credit.  Now a one-sided, crossed or locked leg is no quote:
  the strike is not scored and the play is skipped with that reason;
* sizing priced commissions from ``[plugins.vrp]`` alone, so a ``[paper] fixed_fee``
  (or ``taker_bps``) override, which the fills do pay, was left out of the worst loss:
  with a $25 ticket charge per fill the play lost up to $100 more than its budget.  Now
  the fees come from the schedule bound to the market (``market.fee_schedule``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
import pytest
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import MULTIPLIER, VENUE
from argus_strategy_vrp.instruments import PutContract
from argus_strategy_vrp.pricing import bs_put
from argus_strategy_vrp.strategy import VrpPutSpread

from argus_core import Bar, FeeSchedule, Intent

EXPIRY = dt.date(2020, 2, 6)  # 35 days after the bar
NOW_NS = int(dt.datetime(2020, 1, 2, 21, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
SPOT = 300.0


class _Book:
    """The slice of a core book the strategy reads; a side may be missing (None)."""

    def __init__(self, bid: float | None, ask: float | None) -> None:
        self.bid, self.ask = bid, ask
        self.ts_ns, self.live = NOW_NS, True

    def best_bid(self) -> float | None:
        return self.bid

    def best_ask(self) -> float | None:
        return self.ask

    def bid_levels(self) -> Any:
        return np.array([[self.bid, 1000.0]])

    def ask_levels(self) -> Any:
        return np.array([[self.ask, 1000.0]])


class _Market:
    """Calm regime signals, the books, and optionally a bound fee schedule (``fees``)."""

    def __init__(self, books: dict[str, _Book], fees: FeeSchedule | None) -> None:
        self.books, self.now_ns = books, NOW_NS
        self.fees = None if fees is None else (lambda _id: fees)

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return self.fees(instrument_id) if self.fees is not None else FeeSchedule()

    def signal(self, name: str, sid: str) -> float:
        return {"bocpd_p_change": 0.01, "vol_regime": 0.0, "vol_spike": 0.0,
                "realised_vol": 0.05}[name]


class _Ctx:
    def __init__(self, books: dict[str, _Book], equity: float,
                 fees: FeeSchedule | None = None) -> None:
        self.market = _Market(books, fees)
        self.portfolio = type("P", (), {"equity": equity})()
        self.pricers: dict[str, Any] = {}


def _settings(**kw: Any) -> VrpSettings:
    base: dict[str, Any] = dict(symbols=["SPY"], min_vrp=-1.0, min_credit=0.0,
                                max_risk_per_play=1e9, max_contracts=1000)
    return VrpSettings(**{**base, **kw})


def _chain() -> dict[str, _Book]:
    """Puts every 5 points quoted $1 either side of Black-Scholes at 20% (per contract)."""
    books = {}
    for strike in np.arange(200.0, 305.0, 5.0):
        mid = round(float(bs_put(SPOT, strike, 35 / 365, 0.01, 0.2)) * MULTIPLIER)
        books[PutContract("SPY", EXPIRY, float(strike)).instrument_id] = _Book(
            max(mid - 1.0, 1.0), mid + 1.0)
    return books


def _enter(settings: VrpSettings, ctx: _Ctx) -> tuple[list[Intent], str]:
    strategy = VrpPutSpread(settings)
    bar = Bar(f"{VENUE}:SPY", NOW_NS, SPOT, SPOT, SPOT, SPOT, 1.0)
    intents = strategy._enter("SPY", bar, ctx)  # type: ignore[arg-type]
    return intents, strategy.last_decision.get("SPY", "")


# -- crossed, locked and one-sided quotes --------------------------------------------------
@pytest.mark.parametrize("leg", [0, 1])
@pytest.mark.parametrize("gap", [5.0, 0.0])  # crossed by $5, locked
def test_a_crossed_or_locked_leg_is_no_quote_to_trade_on(leg: int, gap: float) -> None:
    """Before: a crossed short sold at its (too high) bid and a crossed long bought at
    its (too low) ask, each booking a credit the market never offered."""
    books = _chain()
    settings = _settings()
    first, _ = _enter(settings, _Ctx(books, 1e6))
    assert len(first) == 2, "the clean chain must trade"
    target = first[leg].instrument_id
    book = books[target]
    mid = 0.5 * (book.bid + book.ask)  # type: ignore[operator]
    book.bid, book.ask = mid + gap / 2, mid - gap / 2
    intents, why = _enter(settings, _Ctx(books, 1e6))
    assert target not in {i.instrument_id for i in intents}, (target, why)
    for intent in intents:  # any other play must itself be quoted properly
        b = books[intent.instrument_id]
        assert b.ask > b.bid, (intent.instrument_id, b.bid, b.ask)  # type: ignore[operator]


def test_a_long_leg_without_an_ask_skips_the_play_with_a_reason() -> None:
    """Before: the play was dropped silently (``last_decision`` kept the previous day's
    reason, so a report said why it traded on a day it did not)."""
    books = _chain()
    settings = _settings(short_delta=0.2)
    first, _ = _enter(settings, _Ctx(books, 1e6))
    books[first[1].instrument_id].ask = None
    intents, why = _enter(settings, _Ctx(books, 1e6))
    assert intents == [] or first[1].instrument_id not in {i.instrument_id for i in intents}
    if not intents:
        assert "one-sided" in why, why


# -- the fees the fills pay -----------------------------------------------------------------
def _worst_loss(intents: list[Intent], fees: FeeSchedule) -> float:
    """Independent tally: both legs filled at their limits, the spread lost in full, four
    fills (open and an early close) each paying the bound schedule at the worst price a
    put may have (its strike x 100) for the closes."""
    short, long_ = intents
    assert short.quantity is not None and short.limit_price is not None
    assert long_.limit_price is not None
    n = short.quantity
    k_short = PutContract.parse(short.instrument_id).strike
    k_long = PutContract.parse(long_.instrument_id).strike
    credit = float(short.limit_price - long_.limit_price)
    prices = (short.limit_price, long_.limit_price, Decimal(repr(k_short * MULTIPLIER)),
              Decimal(repr(k_long * MULTIPLIER)))
    paid = sum(float(fees.fee(px, n, maker=False)) for px in prices)
    return float(n) * ((k_short - k_long) * MULTIPLIER - credit) + paid


def _one_more(intents: list[Intent]) -> list[Intent]:
    return [attrs.evolve(i, quantity=Decimal(i.quantity or 0) + 1) for i in intents]


@pytest.mark.parametrize("fees", [
    FeeSchedule(per_unit=Decimal("0.65"), fixed_per_fill=Decimal("25")),  # [paper] fixed_fee
    FeeSchedule(per_unit=Decimal("0.65"), taker_bps=Decimal("2")),  # [paper] taker_bps
])
def test_sizing_prices_the_fees_the_fills_will_pay(fees: FeeSchedule) -> None:
    """Before: the worst loss counted ``commission_per_*`` of ``[plugins.vrp]`` only, so a
    ``[paper]`` override the broker charges on every fill took the play past its budget."""
    settings = _settings(commission_per_contract=0.65, commission_per_fill=0.0)
    books = _chain()
    probe, _ = _enter(settings, _Ctx(books, 1e9, fees))
    assert len(probe) == 2
    one = _worst_loss([attrs.evolve(i, quantity=Decimal(1)) for i in probe], fees)
    for n_budget in (3.001, 3.99, 7.2):  # 3.001: past float rounding of 3 exactly
        equity = n_budget * one / settings.risk_budget
        intents, why = _enter(settings, _Ctx(books, equity, fees))
        assert len(intents) == 2, why
        budget = settings.risk_budget * equity
        assert _worst_loss(intents, fees) <= budget, (n_budget, why)
        # and no fewer than fit
        assert _worst_loss(_one_more(intents), fees) > budget, (n_budget, why)


def test_without_a_bound_schedule_the_venue_commissions_still_count() -> None:
    """A market with no schedule bound (a bare unit test) sizes with the venue's own."""
    settings = _settings(commission_per_contract=0.65, commission_per_fill=3.0)
    venue_fees = FeeSchedule(per_unit=Decimal("0.65"), fixed_per_fill=Decimal("3"))
    books = _chain()
    probe, _ = _enter(settings, _Ctx(books, 1e9))
    one = _worst_loss([attrs.evolve(i, quantity=Decimal(1)) for i in probe], venue_fees)
    equity = 4.5 * one / settings.risk_budget
    intents, _ = _enter(settings, _Ctx(books, equity))
    assert _worst_loss(intents, venue_fees) <= settings.risk_budget * equity
    assert intents[0].quantity == 4
