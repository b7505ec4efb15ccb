"""Second held-out audit (issue 15) of the negRisk scanner: event structure changing under
it (a token listed twice, a market added mid-run, a book arriving before its event, an
instrument replaced mid-run) on the kernel scan, the full-depth reference scanner and the
plain-Python ``reference_scan``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from argus_scanner_negrisk.reference import reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import Event, Instrument, MarketState, Opportunity, OrderBook, Outcome


class Market:
    """Events of ``polymarket:<eid><i>y`` / ``...n`` tokens, min size 5, no fees (as in
    ``test_heldout_negrisk``)."""

    def __init__(self) -> None:
        self.market = MarketState()

    def event(self, eid: str, names: list[str], *, neg_risk: bool = True
              ) -> list[tuple[str, str]]:
        ids = [(f"polymarket:{eid}{i}y", f"polymarket:{eid}{i}n") for i in range(len(names))]
        self.market.add_instruments([Instrument(
            "polymarket", iid.split(":")[1], kind="binary", tick_size="0.01", lot_size="0.01",
            min_size="5") for pair in ids for iid in pair])
        if neg_risk:
            outcomes = tuple(Outcome(n, y, no) for n, (y, no) in zip(names, ids, strict=True))
        else:
            ((y, no),) = ids
            outcomes = (Outcome("Yes", y, no), Outcome("No", no, y))
        self.market.apply(Event("polymarket", eid, eid, outcomes, neg_risk=neg_risk))
        return ids

    def book(self, iid: str, asks: list[tuple[float, float]]) -> None:
        self.market.apply(OrderBook(iid, 1, np.empty((0, 2)), np.array(asks).reshape(-1, 2)))


def _all(market: MarketState) -> tuple[list[Opportunity], list[Opportunity],
                                       list[dict[str, Any]]]:
    """The kernel scan (scanned twice: the dirty-set path), the full-depth reference
    scanner and the plain-Python reference."""
    inc = NegRiskScanner()
    inc.scan(market, 5)
    return (inc.scan(market, 6),
            NegRiskScanner(incremental=False, first_levels=None).scan(market, 6),
            reference_scan(market))


def _event_at(m: Market, asks: list[float], no_ask: float = 0.75) -> list[tuple[str, str]]:
    ids = m.event("E", [f"o{i}" for i in range(len(asks))])
    for (yes, no), ask in zip(ids, asks, strict=True):
        m.book(yes, [(ask, 100)])
        m.book(no, [(no_ask, 100)])
    return ids


def test_an_event_listing_a_token_twice_gives_no_basket() -> None:
    """Outcome "c" names outcome "a"'s market again: YES asks 0.30 + 0.30 + 0.30.  Before:
    a long_rebalance of three legs, two of them the same book (200 shares taken from a
    100-share level) paying "1".  Now the event gives no basket (its outcome set is not
    what it says) in every path; the same event listed correctly is found."""
    m = Market()
    (a, a_no), _b, _c = _event_at(m, [0.30, 0.30, 0.30])
    assert [o.kind for o in _all(m.market)[0]] == ["long_rebalance"]
    ev = m.market.events["E"]
    m.market.apply(Event("polymarket", "E", "E", (*ev.outcomes[:2], Outcome("c", a, a_no)),
                         neg_risk=True))
    kernel, full, plain = _all(m.market)
    assert kernel == full == plain == []


@pytest.mark.parametrize("twice", ["yes_is_no", "binary_one_token"])
def test_other_repeated_tokens_give_no_basket(twice: str) -> None:
    m = Market()
    if twice == "yes_is_no":  # an outcome whose NO is its own YES: YES + "NO" at 0.30 each
        (a, _), (b, b_no) = _event_at(m, [0.30, 0.30], no_ask=0.30)
        m.market.apply(Event("polymarket", "E", "E", (Outcome("a", a, a), Outcome("b", b, b_no)),
                             neg_risk=True))
    else:  # a binary whose two outcomes are one token at 0.45: "YES + NO" for 0.90
        ((yes, _no),) = m.event("B", ["b"], neg_risk=False)
        m.book(yes, [(0.45, 100)])
        m.market.apply(Event("polymarket", "B", "B", (Outcome("Yes", yes, _no),
                                                      Outcome("No", yes, _no))))
    kernel, full, plain = _all(m.market)
    assert kernel == full == plain == []


def test_a_market_added_mid_run_changes_the_outcome_set() -> None:
    """Two outcomes at 0.45 + 0.45 (a basket), then a third market listed at 0.20: the
    three YES asks sum 1.10, so nothing; the incremental scanner follows the new set."""
    m = Market()
    _event_at(m, [0.45, 0.45], no_ask=0.60)
    scanner = NegRiskScanner()
    (opp,) = scanner.scan(m.market, 5)
    assert opp.kind == "long_rebalance" and opp.expected_profit == 10
    ids = m.event("E", ["o0", "o1", "o2"])
    m.book(ids[2][0], [(0.20, 100)])
    m.book(ids[2][1], [(0.85, 100)])
    assert scanner.scan(m.market, 6) == []
    kernel, full, plain = _all(m.market)
    assert kernel == full == plain == []


def test_books_that_arrive_before_their_event() -> None:
    m = Market()
    for i in range(3):
        for suffix, ask in (("y", 0.30), ("n", 0.75)):
            m.market.apply(OrderBook(f"polymarket:E{i}{suffix}", 1, np.empty((0, 2)),
                                     np.array([[ask, 100.0]])))
    scanner = NegRiskScanner()
    assert scanner.scan(m.market, 1) == []
    _event_at(m, [0.30, 0.30, 0.30])
    (opp,) = scanner.scan(m.market, 2)
    assert opp.kind == "long_rebalance" and opp.expected_profit == 10 and opp.max_size == 100


def test_a_leg_closed_mid_run_by_its_instrument() -> None:
    m = Market()
    ids = _event_at(m, [0.30, 0.30, 0.30])
    scanner = NegRiskScanner()
    assert [o.kind for o in scanner.scan(m.market, 5)] == ["long_rebalance"]
    old = m.market.instruments[ids[0][0]]
    m.market.add_instruments([Instrument(
        old.venue, old.symbol, kind="binary", tick_size=old.tick_size,
        lot_size=old.lot_size, min_size=old.min_size, meta={"acceptingOrders": False})])
    assert NegRiskScanner().scan(m.market, 6) == []
    assert scanner.scan(m.market, 6) == []
