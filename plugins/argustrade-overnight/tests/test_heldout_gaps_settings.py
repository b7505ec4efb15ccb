"""Held-out red team of ``overnight_session``: a missing bar at a session cut, and
settings that switched a guard off without a word.

What was found (each test failed before its fix):

* the strategy decided only at a bar whose close *is* a cut; with the bar ending at
  Monday 00:00 UTC missing (a feed gap), the weekend position was held through the whole
  Monday Asia segment, which the rules do not want, and sold 8 hours late at the Europe
  open;
* ``min_risk_flow = nan`` (TOML accepts ``nan``) was taken: every score compares false
  against NaN, so the risk-flow gate passed everything; ``min_t = nan`` refused every
  segment; neither was range-checked;
* ``bar_seconds = 7200`` was taken, though every cut is a whole UTC hour and a two-hour
  bar straddles one (its return is booked to the wrong segment).
"""

from __future__ import annotations

import math
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from argus_overnight.config import Settings
from argus_overnight.config import utc_seconds as ts
from argus_overnight.sessions import WEEKEND, segment_of
from argus_overnight.strategy import OvernightSession

from argus_core import Bar, ConfigError, FeeSchedule, Side, structure

IID = "replay:BTC/USD"
HOUR = 3600


def constructed_bars(start: str, end: str) -> list[Bar]:
    """Flat hourly bars whose weekends gain 1.5% or 2.5% (alternately) in their first
    hour and give 0.5% back on Monday (as ``test_overnight_strategy``): weekends are held."""
    bars, price, n_weekend = [], 100.0, 0
    for open_s in range(ts(start), ts(end), HOUR):
        seg, key = segment_of(open_s)
        if seg == WEEKEND and segment_of(open_s - HOUR) != (seg, key):
            price *= 1.015 if n_weekend % 2 == 0 else 1.025
            n_weekend += 1
        elif segment_of(open_s - HOUR)[0] == WEEKEND and seg != WEEKEND:
            price *= 0.995
        bars.append(Bar(IID, (open_s + HOUR) * 1_000_000_000, price, price, price, price, 1.0))
    return bars


def drive(bars: list[Bar]) -> list[tuple[int, Side]]:
    """The strategy's decisions (close time in s, side); intents fill at once."""
    strategy = OvernightSession(Settings(train_end="2022-03-01", min_samples=3, min_t=2.0,
                                         regime_gate=False))
    market = SimpleNamespace(fee_schedule=lambda _i: FeeSchedule(Decimal(25), Decimal(40)),
                             signal=lambda _n, _i: None)
    held, decisions = Decimal(0), []
    for bar in bars:
        ctx: Any = SimpleNamespace(market=market, portfolio=SimpleNamespace(
            position=lambda _i, q=held: SimpleNamespace(quantity=q)))
        for intent in strategy.on_event(bar, ctx):
            decisions.append((bar.ts_ns // 1_000_000_000, intent.side))
            held = Decimal(1) if intent.side is Side.BUY else Decimal(0)
    return decisions


def test_a_missing_bar_at_the_cut_is_decided_at_the_next_bar() -> None:
    """Weekends are held; the bar closing at Monday 2022-03-21 00:00 UTC is missing.  The
    sell comes with the next bar (01:00), not at the Europe open (08:00)."""
    bars = constructed_bars("2022-01-03", "2022-03-22")
    whole = drive(bars)
    assert whole[-1] == (ts("2022-03-21T00:00"), Side.SELL)
    gap = [b for b in bars if b.ts_ns // 10**9 != ts("2022-03-21T00:00")]
    got = drive(gap)
    assert got[:-1] == whole[:-1]
    assert got[-1] == (ts("2022-03-21T01:00"), Side.SELL)


def test_a_gap_inside_one_segment_changes_no_decision() -> None:
    """Bars missing in the middle of a weekend (no cut crossed) leave every decision as
    it was: only a skipped cut makes a late decision."""
    bars = constructed_bars("2022-01-03", "2022-03-22")
    whole = drive(bars)
    hole = range(ts("2022-03-19T03:00"), ts("2022-03-19T09:00"), 3600)
    gap = [b for b in bars if b.ts_ns // 10**9 not in hole]
    assert drive(gap) == whole


@pytest.mark.parametrize(("table", "said"), [
    ({"min_risk_flow": math.nan}, "min_risk_flow = nan is outside the allowed range"),
    ({"min_risk_flow": 5.0}, "min_risk_flow = 5.0 is outside the allowed range [-1, 1]"),
    ({"min_t": math.nan}, "min_t = nan is outside the allowed range"),
    ({"min_t": math.inf}, "min_t = inf is outside the allowed range"),
    ({"bar_seconds": 7200}, "bar_seconds = 7200 must divide an hour"),
    ({"bar_seconds": 7}, "bar_seconds = 7 must divide an hour"),
])
def test_settings_that_would_switch_a_guard_off_are_refused(table: dict[str, Any],
                                                            said: str) -> None:
    with pytest.raises(ConfigError) as err:
        structure(table, Settings, "run.toml", prefix="plugins.overnight")
    assert said in str(err.value) and "run.toml" in str(err.value), str(err.value)


def test_the_usual_settings_still_pass() -> None:
    s = structure({"min_t": -1.5, "min_risk_flow": -0.002, "bar_seconds": 900},
                  Settings, "run.toml", prefix="plugins.overnight")
    assert (s.min_t, s.min_risk_flow, s.bar_seconds) == (-1.5, -0.002, 900)
