"""``ma_cross`` without ``instrument_id`` on a run carrying several instruments: it follows
the first instrument it sees and never averages another's closes into its windows (one
window of closes mixing BTC at 60,000 with SPY at 500 crossed on every bar), on the event
path and on the quiet stretches alike, and across a checkpoint."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from argus_core.bar_runs import BarRun
from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.interfaces import StrategyContext
from argus_core.market_state import MarketState
from argus_core.models import Bar, Portfolio, Position

BTC, SPY = "replay:BTC/USD", "replay:SPY/USD"


def bar(iid: str, i: int, close: float) -> Bar:
    return Bar(iid, 1_700_000_000_000_000_000 + i * 3_600_000_000_000, close, close, close,
               close, 1.0)


def ctx() -> StrategyContext:
    held = {BTC: Position(BTC, Decimal(1), Decimal(60_000))}
    return StrategyContext(0, Portfolio(Decimal(0), held), MarketState())


def interleaved(n: int) -> list[Bar]:
    """BTC rising slowly near 60,000 and SPY flat at 500, one bar of each per hour."""
    out = []
    for i in range(n):
        out.append(bar(BTC, i, 60_000.0 + i))
        out.append(bar(SPY, i, 500.0))
    return out


def test_the_windows_hold_the_first_instruments_closes_only(
        caplog: pytest.LogCaptureFixture) -> None:
    s = MovingAverageCross(ExampleSettings(2, 4))
    intents = []
    with caplog.at_level(logging.WARNING, "argus.ma_cross"):
        for b in interleaved(12):
            intents.extend(s.on_event(b, ctx()))
    assert list(s.closes) == [60_008.0, 60_009.0, 60_010.0, 60_011.0]
    # a steady rise: one entry, on BTC, never a flip per bar between the two prices
    assert [(i.instrument_id, i.side.value) for i in intents] == [(BTC, "buy")]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and SPY in said[0] and "instrument_id" in said[0]


def test_a_named_instrument_is_followed_even_when_another_comes_first() -> None:
    s = MovingAverageCross(ExampleSettings(2, 4, SPY))
    for b in interleaved(6):
        s.on_event(b, ctx())
    assert list(s.closes) == [500.0] * 4 and s.instrument == SPY


def test_quiet_stretches_of_another_instrument_are_not_taken() -> None:
    s = MovingAverageCross(ExampleSettings(2, 4))
    btc = BarRun([bar(BTC, i, 60_000.0 + i) for i in range(10)])
    spy = BarRun([bar(SPY, i, 500.0) for i in range(10)])
    n = s.quiet_bars(btc, 0, 3)
    s.take_bars(btc, 0, n)
    assert s.instrument == BTC
    assert s.quiet_bars(spy, 0, 10) == 10  # ignored: all of it "quiet" for this strategy
    s.take_bars(spy, 0, 10)
    assert list(s.closes) == [60_000.0 + i for i in range(n)]


def test_the_followed_instrument_survives_a_checkpoint() -> None:
    s = MovingAverageCross(ExampleSettings(2, 4))
    for b in interleaved(5):
        s.on_event(b, ctx())
    state = s.get_state()
    assert state["instrument"] == BTC
    again = MovingAverageCross(ExampleSettings(2, 4))
    again.set_state(state)
    again.on_event(bar(SPY, 9, 1.0), ctx())  # SPY first after the restart: still ignored
    assert again.instrument == BTC and list(again.closes) == list(s.closes)
    # a checkpoint written before the instrument was kept: the next bar's is followed
    old = MovingAverageCross(ExampleSettings(2, 4))
    old.set_state({"closes": [1.0, 2.0], "long": False})
    assert old.instrument is None
    old.set_state({"closes": [], "long": False, "instrument": 7})  # damaged: not a text
    assert old.instrument is None
