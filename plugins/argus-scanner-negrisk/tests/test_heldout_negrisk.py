"""Held-out scenarios (issue 15) for the negRisk scanner: fair events just over 1 after
fees, an augmented event with an "Other" placeholder, an arbitrage that needs several
levels of every leg to reach the minimum size, an edge fees cancel exactly against one a
cent wider, and books or markets no basket may use (crossed, malformed, closed, not
accepting orders).  Each is checked on the kernel scan, the full-depth reference scanner
and the plain-Python ``reference_scan``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.reference import reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import (
    BookDelta,
    Event,
    FeeSchedule,
    Instrument,
    MarketState,
    Opportunity,
    OrderBook,
    Outcome,
    Side,
)

D = Decimal
PER_CENT = FeeSchedule(per_unit=D("0.01"))  # one cent a share, every taker fill


class Market:
    """Events of ``polymarket:<eid><i>y`` / ``...n`` tokens; every instrument min size 5."""

    def __init__(self, fees: FeeSchedule | None = None) -> None:
        schedule = fees or FeeSchedule()
        self.market = MarketState(fees=lambda iid: schedule)

    def event(self, eid: str, names: list[str], *, neg_risk: bool = True,
              exhaustive: bool = True, placeholder: str = "", closed: bool = False,
              meta: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        ids = [(f"polymarket:{eid}{i}y", f"polymarket:{eid}{i}n") for i in range(len(names))]
        for pair in ids:
            for iid in pair:
                self.market.add_instruments([Instrument(
                    "polymarket", iid.split(":")[1], kind="binary", tick_size="0.01",
                    lot_size="0.01", min_size="5", meta=dict(meta or {}))])
        if neg_risk:
            outcomes = tuple(Outcome(n, y, no, placeholder=n == placeholder)
                             for n, (y, no) in zip(names, ids, strict=True))
        else:
            ((y, no),) = ids
            outcomes = (Outcome("Yes", y, no), Outcome("No", no, y))
        self.market.apply(Event("polymarket", eid, eid, outcomes, neg_risk=neg_risk,
                                exhaustive=exhaustive, closed=closed))
        return ids

    def book(self, iid: str, asks: list[tuple[float, float]],
             bids: list[tuple[float, float]] | None = None) -> None:
        self.market.apply(OrderBook(iid, 1, np.array(bids or np.empty((0, 2))).reshape(-1, 2),
                                    np.array(asks).reshape(-1, 2)))


def _all(market: MarketState, settings: NegRiskSettings | None = None
         ) -> tuple[list[Opportunity], list[Opportunity], list[dict[str, Any]]]:
    """The kernel scan (scanned twice: the dirty-set path), the full-depth reference scanner
    and the plain-Python reference."""
    inc = NegRiskScanner(settings)
    inc.scan(market, 5)
    return (inc.scan(market, 6),
            NegRiskScanner(settings, incremental=False, first_levels=None).scan(market, 6),
            reference_scan(market, settings))


def _nothing(market: MarketState, settings: NegRiskSettings | None = None) -> None:
    kernel, full, plain = _all(market, settings)
    assert kernel == [] and full == [] and plain == []


@pytest.mark.parametrize("fees", [None, "curve"])
def test_fair_event_just_over_one_after_fees(fees: str | None) -> None:
    """YES asks sum 0.99: an arbitrage without fees (100 baskets earn 1); with a taker fee
    of 2% of notional (0.0198 a basket) a basket costs 1.0098, just over its payout:
    nothing."""
    schedule = FeeSchedule(taker_bps=D(200)) if fees else None
    m = Market(schedule)
    for (yes, no), ask in zip(m.event("E", ["a", "b", "c"]), [0.50, 0.30, 0.19], strict=True):
        m.book(yes, [(ask, 100)])
        m.book(no, [(round(1 - ask + 0.02, 2), 100)])  # NO asks over 1 - YES: no pair
    kernel, full, plain = _all(m.market)
    if schedule is None:
        assert [o.kind for o in kernel] == [o.kind for o in full] == ["long_rebalance"]
        assert kernel[0].expected_profit == D(100) - D(99) and len(plain) == 1
    else:
        assert kernel == full == plain == []


def test_augmented_event_with_an_other_placeholder() -> None:
    """An augmented event (not exhaustive) whose named YES asks sum to 0.60: buying them is
    not a basket that pays 1 (the unnamed "Other" can win); the placeholder's own YES + NO
    (0.95) is not used either.  The named outcomes' pairs are fair."""
    m = Market()
    ids = m.event("A", ["x", "y", "Other"], exhaustive=False, placeholder="Other")
    for (yes, no), (ask, no_ask) in zip(ids, [(0.30, 0.72), (0.30, 0.72), (0.10, 0.85)],
                                        strict=True):
        m.book(yes, [(ask, 100)])
        m.book(no, [(no_ask, 100)])
    _nothing(m.market)


def test_arbitrage_found_only_by_walking_several_levels() -> None:
    """Each leg's best level holds less than the minimum size (5): the basket reaches 6
    units only through A's three levels, B's two and C's first.  Marginal costs 0.95 (2
    units), 0.96 (1), 0.97 (1), 0.98 (2), then 1.50: 6 units, value A 1.86 + B 1.95 + C
    1.98 = 5.79, profit 0.21."""
    m = Market()
    (a, a_no), (b, b_no), (c, c_no) = m.event("W", ["a", "b", "c"])
    m.book(a, [(0.30, 2), (0.31, 2), (0.32, 2), (0.50, 100)])
    m.book(b, [(0.32, 3), (0.33, 3), (0.50, 100)])
    m.book(c, [(0.33, 6), (0.50, 100)])
    for no in (a_no, b_no, c_no):
        m.book(no, [(0.75, 100)])
    kernel, full, plain = _all(m.market)
    assert kernel == full
    (opp,) = kernel
    assert opp.kind == "long_rebalance" and opp.max_size == D(6)
    assert opp.expected_profit == D("0.21") and opp.costs == 0
    assert [(leg.instrument_id, leg.limit_price, leg.quantity) for leg in opp.legs] == [
        (a, D("0.32"), D(6)), (b, D("0.33"), D(6)), (c, D("0.33"), D(6))]
    (row,) = plain
    assert row["qty"] == pytest.approx(6) and row["value"] == pytest.approx(5.79)
    # the best levels alone (2 units) are below the minimum size: nothing at one level
    one = Market()
    ids = one.event("W", ["a", "b", "c"])
    for (yes, no), ask in zip(ids, [0.30, 0.32, 0.33], strict=True):
        one.book(yes, [(ask, 2), (0.50, 100)])
        one.book(no, [(0.75, 100)])
    assert _all(one.market)[0] == []


@pytest.mark.parametrize(("last_ask", "profit"), [(0.31, None), (0.30, D("1.00"))])
def test_fees_cancelling_the_edge_exactly_and_a_cent_more(last_ask: float,
                                                          profit: Decimal | None) -> None:
    """A cent a share per leg: asks 0.33 + 0.33 + 0.31 = 0.97 plus 0.03 of fees is exactly
    the payout (nothing); with the last ask a cent lower, 100 baskets earn 1.00."""
    m = Market(PER_CENT)
    ids = m.event("F", ["a", "b", "c"])
    for (yes, no), ask in zip(ids, [0.33, 0.33, last_ask], strict=True):
        m.book(yes, [(ask, 100)])
        m.book(no, [(0.75, 100)])
    kernel, full, _plain = _all(m.market)
    assert kernel == full
    if profit is None:
        assert kernel == []
    else:
        (opp,) = kernel
        assert opp.expected_profit == profit and opp.costs == D(3) and opp.max_size == 100


@pytest.mark.parametrize(("no_ask", "found"), [(0.50, False), (0.49, True)])
def test_binary_edge_cancelled_by_fees_exactly(no_ask: float, found: bool) -> None:
    m = Market(PER_CENT)
    ((yes, no),) = m.event("B", ["b"], neg_risk=False)
    m.book(yes, [(0.48, 100)])
    m.book(no, [(no_ask, 100)])
    kernel, full, _ = _all(m.market)
    assert kernel == full
    assert [o.expected_profit for o in kernel] == ([D("1.00")] if found else [])


def _planted(m: Market, **kw: Any) -> tuple[str, str]:
    """A binary whose YES + NO asks cost 0.90 and a two-outcome event whose YES asks do."""
    ((yes, no),) = m.event("B", ["b"], neg_risk=False, **kw)
    m.book(yes, [(0.45, 100)], [(0.40, 100)])
    m.book(no, [(0.45, 100)], [(0.40, 100)])
    for y, n in m.event("N", ["x", "y"], **kw):
        m.book(y, [(0.45, 100)], [(0.40, 100)])
        m.book(n, [(0.60, 100)], [(0.50, 100)])
    return yes, no


def test_planted_control_is_found() -> None:
    m = Market()
    _planted(m)
    kernel, full, plain = _all(m.market)
    assert sorted(o.kind for o in kernel) == sorted(o.kind for o in full) == [
        "binary", "long_rebalance"]
    assert len(plain) == 2


@pytest.mark.parametrize("how", ["closed", "tradeable", "acceptingOrders"])
def test_markets_that_take_no_orders_give_nothing(how: str) -> None:
    m = Market()
    if how == "closed":
        _planted(m, closed=True)
    else:
        _planted(m, meta={how: False})
    _nothing(m.market)


def test_a_crossed_leg_is_skipped() -> None:
    m = Market()
    yes, _no = _planted(m)
    m.market.apply(BookDelta(yes, 2, Side.BUY, "0.50", "10"))  # bid 0.50 over ask 0.45
    kernel, full, plain = _all(m.market)
    assert [o.kind for o in kernel] == [o.kind for o in full] == ["long_rebalance"]
    assert [r["kind"] for r in plain] == ["long_rebalance"]
    m.market.apply(BookDelta(yes, 3, Side.BUY, "0.50", "0"))  # uncrossed again: found
    assert sorted(o.kind for o in NegRiskScanner().scan(m.market, 7)) == [
        "binary", "long_rebalance"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
@pytest.mark.parametrize("where", ["size", "price"])
def test_malformed_levels_written_past_validation_are_skipped(bad: float, where: str) -> None:
    """Levels an adapter writes into ``L2Book``'s dicts (no snapshot would pass them): the
    book is skipped, the other baskets are still scanned, nothing raises."""
    m = Market()
    yes, _no = _planted(m)
    inc = NegRiskScanner()
    inc.scan(m.market, 5)
    book = m.market.book(yes)
    book.apply(Side.SELL, 0.45, 100.0, 2)  # a change the core records ...
    if where == "size":
        book.asks[0.45] = bad              # ... then the level overwritten
    else:
        book.asks[bad] = 100.0
    kernel, full, plain = inc.scan(m.market, 6), *_all(m.market)[1:]
    assert [o.kind for o in kernel] == [o.kind for o in full] == ["long_rebalance"]
    assert [r["kind"] for r in plain] == ["long_rebalance"]
