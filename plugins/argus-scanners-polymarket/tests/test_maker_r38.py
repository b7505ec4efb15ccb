"""Round 38 red team of ``pm_maker``: quoting into a market about to resolve.

Found (observed on the old code): a token whose event ends in a minute (``Event.end_ts_ns``),
or ended an hour ago with its resolution pending, was quoted on both sides like any other,
and quotes resting from earlier were left working through the end: near and after the
end the outcome is often known to takers before the book moves, and a resting quote is
only picked off.  Now, with ``stop_before_end_s`` set, the quotes are cancelled (whatever
``cancel_when_stale``) and none is posted from that long before the end.  On by default
(3600 s): the live tests serve the example snapshot (whose events ended 2026-09) with its
end dates moved a month ahead (``tests/live_snapshot.py``); unset, it quotes as before.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from argus_scanners_polymarket.config import (
    MakerSettings,
    MakerStrategySettings,
    PmScannersSettings,
)
from argus_scanners_polymarket.maker_strategy import MakerStrategy

from argus_core import (
    CancelIntent,
    Event,
    Instrument,
    Intent,
    MarketState,
    OrderBook,
    Outcome,
    Portfolio,
    StrategyContext,
)

D = Decimal
S = 10**9
T0 = 1_786_000_000 * S
INST = Instrument("polymarket", "TOK", "binary", D("0.01"), D("0.01"), D("5"))
NO = Instrument("polymarket", "NOTOK", "binary", D("0.01"), D("0.01"), D("5"))


def _market(end_ts_ns: int | None) -> MarketState:
    """A binary market whose book is 0.40 / 0.50 (wide: the maker quotes inside)."""
    market = MarketState()
    market.add_instruments([INST, NO])
    market.apply(Event("polymarket", "ev", "ev", (Outcome("Yes", INST.id, NO.id),
                                                   Outcome("No", NO.id, INST.id)),
                       neg_risk=False, end_ts_ns=end_ts_ns))
    return market


def _step(strategy: MakerStrategy, market: MarketState, t: float,
          **state: object) -> list[Intent | CancelIntent]:
    book = OrderBook(INST.id, T0 + int(t * S), [(0.40, 100.0)], [(0.50, 100.0)])
    market.apply(book)
    ctx = StrategyContext(T0 + int(t * S), Portfolio(D(1000), {}), market, mode="paper",
                          **state)  # type: ignore[arg-type]
    return list(strategy.on_event(book, ctx))


def _strategy(**lifecycle: object) -> MakerStrategy:
    """``pm_maker`` with the careful window (an hour) unless ``lifecycle`` says otherwise."""
    lifecycle = {"stop_before_end_s": 3600.0, **lifecycle}
    return MakerStrategy(PmScannersSettings(
        maker=MakerSettings(), pm_maker=MakerStrategySettings(
            min_requote_s=0.0, **lifecycle)))  # type: ignore[arg-type]


def _posts(out: list[Intent | CancelIntent]) -> list[Intent]:
    return [x for x in out if isinstance(x, Intent)]


def test_quotes_far_from_the_end() -> None:
    out = _step(_strategy(), _market(T0 + 48 * 3600 * S), 0)
    assert _posts(out), f"expected a bid inside 0.40/0.50, got {out}"


@pytest.mark.parametrize("end_in_s", [60, 0, -3600])
def test_no_quote_into_a_resolution(end_in_s: int) -> None:
    out = _step(_strategy(), _market(T0 + end_in_s * S), 0)
    assert _posts(out) == [], f"quoted {end_in_s}s before the end: {out}"


@pytest.mark.parametrize("cancel_when_stale", [True, False])
def test_resting_quotes_cancelled_as_the_end_nears(cancel_when_stale: bool) -> None:
    strategy = _strategy(cancel_when_stale=cancel_when_stale)
    market = _market(T0 + 3700 * S)
    assert _posts(_step(strategy, market, 0))
    out = _step(strategy, market, 200)  # 3500 s left: inside the default hour
    assert _posts(out) == [] and [x for x in out if isinstance(x, CancelIntent)], (
        f"quotes left working into the end: {out}")
    assert "ends in 3500s" in out[0].reason
    assert _step(strategy, market, 201) == [], "cancelled once, then nothing"


def test_window_zero_quotes_until_the_end() -> None:
    market = _market(T0 + 60 * S)
    assert _posts(_step(_strategy(stop_before_end_s=0.0), market, 0))
    assert _posts(_step(_strategy(stop_before_end_s=0.0), _market(T0), 0)) == []


def test_default_window_is_an_hour() -> None:
    """On by default (it was opt-in while the live tests served a snapshot that had ended;
    they now serve it with its end dates moved, ``tests/live_snapshot.py``)."""
    strategy = MakerStrategy(PmScannersSettings())
    assert strategy.settings.stop_before_end_s == 3600
    market = _market(T0 + 1800 * S)
    book = OrderBook(INST.id, T0, [(0.40, 100.0)], [(0.50, 100.0)])
    market.apply(book)
    ctx = StrategyContext(T0, Portfolio(D(1000), {}), market, mode="paper")
    assert _posts(list(strategy.on_event(book, ctx))) == []


def test_unset_window_quotes_as_before() -> None:
    strategy = _strategy(stop_before_end_s=None)
    assert strategy.settings.stop_before_end_s is None
    assert _posts(_step(strategy, _market(T0 - 3600 * S), 0))


def test_negative_window_refused() -> None:
    with pytest.raises((ValueError, TypeError)):
        MakerStrategySettings(stop_before_end_s=-1.0)
