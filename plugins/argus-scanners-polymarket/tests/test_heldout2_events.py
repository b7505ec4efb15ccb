"""Second held-out audit (issue 15): event structure and prices that change under the
stateful scanners -- a negRisk market listed or withdrawn mid-run (the stale scanner's
reference sums are over the event's other outcomes) -- float prices a hair off the tick
grid (the maker's incremental pre-check and its exact quote must read them alike), and a
market's tick size changed by the venue mid-run (the maker and ``pm_maker`` quote on the
tick in force).
Incremental and reference paths side by side."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from argus_scanners_polymarket.config import MakerStrategySettings, PmScannersSettings
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.maker import MakerScanner
from argus_scanners_polymarket.maker_strategy import MakerStrategy
from argus_scanners_polymarket.stale import StaleQuoteScanner

from argus_core import (
    CancelIntent,
    Event,
    Instrument,
    MarketState,
    OrderBook,
    Portfolio,
    Signal,
    StrategyContext,
)

D = Decimal
S = 10**9
NOW = 1_000_000 * S


def _three(b: MarketBuilder, names: tuple[str, ...] = ("a", "b", "c")) -> list[tuple[str, str]]:
    """Mids 0.50 / 0.30 / 0.20 (one cent either side, 100 a level), NO books mirrored."""
    ids = b.event("T", list(names))
    for (yes, no), (bid, ask) in zip(ids, [(0.49, 0.51), (0.29, 0.31), (0.19, 0.21)],
                                     strict=True):
        b.book(yes, [(bid, 100)], [(ask, 100)], ts_ns=NOW)
        b.book(no, [(round(1 - ask, 2), 100)], [(round(1 - bid, 2), 100)], ts_ns=NOW)
    return ids


def _quote(b: MarketBuilder, yes: str, no: str, bid: float, ask: float, ts: int) -> None:
    b.book(yes, [(bid, 100)], [(ask, 100)], ts_ns=ts)
    b.book(no, [(round(1 - ask, 2), 100)], [(round(1 - bid, 2), 100)], ts_ns=ts)


def test_a_market_listed_mid_run_is_not_the_others_moving() -> None:
    """A fourth outcome "d" is listed at 0.04/0.06 (mid 0.05).  Before: a, b and c's
    "others" rose by 0.05 with no quote moving, so all three were stale_quote findings
    two scans later (e.g. buy a's NO at 0.51 against a "fair" 0.55).  Now the references
    are taken afresh over the new outcome set: nothing; a real move afterwards (b and c
    requote up 0.10 each) is still found on a."""
    b = MarketBuilder()
    (_a, a_no), (bb, bb_no), (c, c_no) = _three(b)
    inc, ref = StaleQuoteScanner(), StaleQuoteScanner(incremental=False)
    assert inc.scan(b.market, NOW) == ref.scan(b.market, NOW) == []
    ids = b.event("T", ["a", "b", "c", "d"])
    _quote(b, *ids[3], 0.04, 0.06, NOW + 10 * S)
    for k in range(1, 5):
        ts = NOW + k * 60 * S
        assert inc.scan(b.market, ts) == ref.scan(b.market, ts) == []
    t1 = NOW + 300 * S
    _quote(b, bb, bb_no, 0.39, 0.41, t1)
    _quote(b, c, c_no, 0.29, 0.31, t1)
    _quote(b, *ids[3], 0.04, 0.06, t1)
    found: list[object] = []
    for k in range(1, 4):
        ts = t1 + k * 60 * S
        found = inc.scan(b.market, ts)
        assert found == ref.scan(b.market, ts)
    assert {o.legs[0].instrument_id for o in found} == {a_no}  # type: ignore[attr-defined]


def test_a_market_withdrawn_mid_run_resets_the_references() -> None:
    """"c" withdrawn (the event lists a and b, exhaustive as the venue says): a's others
    fell by 0.20 with no quote moving: nothing, in both paths, and the scanners' states
    agree (the outcome set is part of each token's state)."""
    b = MarketBuilder()
    _three(b)
    inc, ref = StaleQuoteScanner(), StaleQuoteScanner(incremental=False)
    assert inc.scan(b.market, NOW) == ref.scan(b.market, NOW) == []
    ev = b.market.events["T"]
    b.market.apply(Event(ev.venue, ev.event_id, ev.title, ev.outcomes[:2], neg_risk=True))
    for k in range(1, 5):
        ts = NOW + k * 60 * S
        assert inc.scan(b.market, ts) == ref.scan(b.market, ts) == []
    assert inc.get_state() == ref.get_state()
    restored = StaleQuoteScanner()
    restored.set_state(json.loads(json.dumps(inc.get_state())))
    assert restored.scan(b.market, NOW + 600 * S) == []


def test_a_state_from_before_the_outcome_signature_still_loads() -> None:
    """Three-field token states (written before this change) load as they were."""
    b = MarketBuilder()
    _three(b)
    old = StaleQuoteScanner()
    old.scan(b.market, NOW)
    state = {"tokens": {k: v[:3] for k, v in old.get_state()["tokens"].items()}}
    for incremental in (True, False):
        again = StaleQuoteScanner(incremental=incremental)
        again.set_state(state)
        assert again.scan(b.market, NOW + 60 * S) == []


@pytest.mark.parametrize("incremental", [True, False])
def test_float_prices_a_hair_off_the_tick_grid(incremental: bool) -> None:
    """Books written from float arithmetic: bid 0.99 - 0.3 - 0.01 = 0.6799999999999999,
    ask 0.75.  The tick is 0.68: the quotes inside are 0.69 (bid) and 0.74 (ask).  Before,
    the exact quote floored the bid to 0.67 and "improved" it to 0.68 -- joining the best
    bid, with an edge the incremental pre-check (reading the tick 0.68) did not bound, so
    the two paths could disagree.  Now both quote 0.69 / 0.74."""
    b = MarketBuilder()
    ((yes, _no),) = b.event("M", ["m"], neg_risk=False)
    b.book(yes, [(0.99 - 0.3 - 0.01, 100)], [(0.75, 100)], ts_ns=NOW)
    settings = PmScannersSettings()
    found = MakerScanner(settings, incremental=incremental).scan(b.market, NOW)
    other = MakerScanner(settings, incremental=not incremental).scan(b.market, NOW)
    assert found == other
    assert {o.kind: o.legs[0].limit_price for o in found} == {
        "maker_bid": D("0.69"), "maker_ask": D("0.74")}


@pytest.mark.parametrize("incremental", [True, False])
def test_the_maker_scanner_quotes_on_the_tick_in_force(incremental: bool) -> None:
    """A market listed with tick 0.001 (0.40/0.46: quotes 0.401 / 0.459); the venue then
    says the tick is 0.01 (``Signal("polymarket.tick_size", ...)``, what its websocket's
    ``tick_size_change`` becomes).  Before: still 0.401 / 0.459, prices the venue refuses
    on a 0.01 grid.  Now 0.41 / 0.45, in both paths."""
    b = MarketBuilder()
    ((yes, _no),) = b.event("M", ["m"], neg_risk=False, tick="0.001")
    b.book(yes, [(0.40, 100)], [(0.46, 100)], ts_ns=NOW)
    scanner = MakerScanner(PmScannersSettings(), incremental=incremental)
    assert {o.kind: o.legs[0].limit_price for o in scanner.scan(b.market, NOW)} == {
        "maker_bid": D("0.401"), "maker_ask": D("0.459")}
    b.market.apply(Signal("polymarket.tick_size", yes, NOW + S, 0.01))
    assert {o.kind: o.legs[0].limit_price for o in scanner.scan(b.market, NOW + 2 * S)} == {
        "maker_bid": D("0.41"), "maker_ask": D("0.45")}


def test_pm_maker_moves_its_quote_to_the_tick_in_force() -> None:
    """``pm_maker`` live on a 0.001-tick market posts its bid at 0.401; after the venue's
    tick change to 0.01 the next book moves it to 0.41 (cancel, then post), never a
    0.001-step price the venue would refuse."""
    inst = Instrument("polymarket", "TOK", "binary", D("0.001"), D("0.01"), D("5"))
    market = MarketState()
    market.add_instruments([inst])
    strategy = MakerStrategy(PmScannersSettings(
        pm_maker=MakerStrategySettings(min_requote_s=0.0)))

    def ctx(t: int) -> StrategyContext:
        return StrategyContext(NOW + t * S, Portfolio(D(1000)), market, mode="live")

    def posts(event: Any, t: int) -> list[tuple[str, Decimal | None]]:
        market.apply(event)
        return [("cancel", None) if isinstance(x, CancelIntent) else
                (x.side.value, x.limit_price) for x in strategy.on_event(event, ctx(t))]

    first = OrderBook(inst.id, NOW + S, [(0.40, 100)], [(0.50, 100)])
    assert posts(first, 1) == [("buy", D("0.401"))]
    assert posts(Signal("polymarket.tick_size", inst.id, NOW + 2 * S, 0.01), 2) == []
    later = OrderBook(inst.id, NOW + 3 * S, [(0.40, 100)], [(0.50, 100)])
    assert posts(later, 3) == [("cancel", None), ("buy", D("0.41"))]
