"""Held-out planted opportunities (issue 15), in shapes the other tests do not use, each
computed by hand and checked on both paths: resolution near expiry with fees and a long
redemption delay, an edge a fee cancels exactly against one a cent wider, a spike that
reverts against one that persists, and a quote left stale after the event's other
outcomes moved (against one that moved with them)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from argus_scanners_polymarket.config import ResolutionSettings
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.resolution import ResolutionScanner
from argus_scanners_polymarket.stale import SpikeScanner, StaleQuoteScanner

from argus_core import FeeSchedule, Opportunity, Scanner

D = Decimal
H = 3600 * 10**9
S = 10**9
NOW = 1_000 * H
CENT = FeeSchedule(per_unit=D("0.01"))  # one cent a share per taker fill


def _both(make: type[Scanner], settings: object, market: object, *times: int
          ) -> list[Opportunity]:
    """The findings of the last scan of ``times``, asserting both paths agree."""
    inc, ref = make(settings), make(settings, incremental=False)  # type: ignore[call-arg]
    for ts in times:
        a, b = inc.scan(market, ts), ref.scan(market, ts)  # type: ignore[arg-type]
        assert a == b
    return a


def _near_expiry(b: MarketBuilder) -> str:
    # tick 0.001 (Polymarket's above 0.96): the 0.975 level is a limit the venue takes
    ((yes, _no),) = b.event("N", ["n"], neg_risk=False, end_ts_ns=NOW + 2 * H, tick="0.001")
    b.book(yes, [(0.96, 10)], [(0.97, 50), (0.975, 30), (0.985, 40)], ts_ns=NOW)
    return yes


def test_resolution_near_expiry_with_fees_and_time_to_redemption() -> None:
    """2 h to the end + 24 h to redeem = 26 h.  A cent a share: edges 0.02, 0.015, 0.005;
    min_edge 0.01 stops at the third level.  80 shares, value 48.50 + 29.25, fees 0.80,
    profit 1.45.  With 2000 h to redeem the best level annualises to 0.02 / 0.98 * 8760 /
    2002 = 8.9% < 10%: nothing."""
    b = MarketBuilder(CENT)
    yes = _near_expiry(b)
    s = ResolutionSettings(redemption_delay_hours=D(24), min_edge=D("0.01"))
    (opp,) = _both(ResolutionScanner, s, b.market, NOW)
    assert opp.kind == "near_certain" and opp.legs[0].instrument_id == yes
    assert opp.max_size == D(80) and opp.legs[0].limit_price == D("0.975")
    assert opp.costs == D("0.80") and opp.expected_profit == D("1.45")
    assert "2.0h to the event's end" in opp.reason and "over 26.0h" in opp.reason
    assert not opp.risk_free
    # an hour later the same book is still found (25 h), on both paths
    (later,) = _both(ResolutionScanner, s, b.market, NOW, NOW + H)
    assert "over 25.0h" in later.reason and later.expected_profit == D("1.45")
    slow = ResolutionSettings(redemption_delay_hours=D(2000), min_edge=D("0.01"))
    assert _both(ResolutionScanner, slow, b.market, NOW) == []


@pytest.mark.parametrize(("ask", "profit"), [(0.99, None), (0.98, D("1.00"))])
def test_resolved_edge_cancelled_by_the_fee_exactly(ask: float, profit: Decimal | None
                                                    ) -> None:
    """Resolved at 1, a cent a share: asked 0.99 nets exactly 0 (nothing); 0.98 nets a
    cent on 100 shares."""
    b = MarketBuilder(CENT)
    ((yes, _no),) = b.event("R", ["r"], neg_risk=False, end_ts_ns=NOW - H)
    b.book(yes, [], [(ask, 100)], ts_ns=NOW)
    b.settle(yes, 1)
    found = _both(ResolutionScanner, ResolutionSettings(), b.market, NOW)
    assert [o.expected_profit for o in found] == ([profit] if profit is not None else [])
    # a settled token: research, never traded (the core refuses orders on it)
    assert all(not o.risk_free and o.lane == "research" for o in found)


def _spike_market(fees: FeeSchedule | None = None) -> tuple[MarketBuilder, str]:
    b = MarketBuilder(fees)
    ((yes, _no),) = b.event("K", ["k"], neg_risk=False)
    b.book(yes, [(0.49, 50)], [(0.51, 50)], ts_ns=NOW)
    return b, yes


@pytest.mark.parametrize(("fees", "profit"), [(None, D("1.20")),
                                              (FeeSchedule(taker_bps=D(100)), D("1.126"))])
def test_a_spike_that_persists_is_faded(fees: FeeSchedule | None, profit: Decimal) -> None:
    """Mid 0.50 for a minute (the EMA stays 0.50), then 0.36 on a 20-share ask for two scans:
    exit 0.36 + 0.5 x 0.14 = 0.43, buy 20 at 0.37: 1.20 (less 1% fees: 0.074)."""
    b, yes = _spike_market(fees)
    inc, ref = SpikeScanner(), SpikeScanner(incremental=False)
    for ts in (NOW, NOW + 60 * S):
        assert inc.scan(b.market, ts) == ref.scan(b.market, ts) == []
    b.book(yes, [(0.35, 20)], [(0.37, 20)], ts_ns=NOW + 90 * S)
    assert inc.scan(b.market, NOW + 120 * S) == ref.scan(b.market, NOW + 120 * S) == []
    (opp,) = inc.scan(b.market, NOW + 180 * S)
    assert [opp] == ref.scan(b.market, NOW + 180 * S)
    assert opp.max_size == D(20) and opp.legs[0].limit_price == D("0.37")
    assert opp.expected_profit == profit


def test_a_spike_that_reverts_before_persisting_is_not() -> None:
    b, yes = _spike_market()
    inc, ref = SpikeScanner(), SpikeScanner(incremental=False)
    for ts in (NOW, NOW + 60 * S):
        assert inc.scan(b.market, ts) == ref.scan(b.market, ts) == []
    b.book(yes, [(0.35, 20)], [(0.37, 20)], ts_ns=NOW + 90 * S)
    assert inc.scan(b.market, NOW + 120 * S) == ref.scan(b.market, NOW + 120 * S) == []
    b.book(yes, [(0.49, 50)], [(0.51, 50)], ts_ns=NOW + 150 * S)  # back before scan two
    for ts in (NOW + 180 * S, NOW + 240 * S, NOW + 300 * S):
        assert inc.scan(b.market, ts) == ref.scan(b.market, ts) == []


def _three(b: MarketBuilder) -> list[tuple[str, str]]:
    ids = b.event("T", ["a", "b", "c"])
    for (yes, no), (bid, ask) in zip(ids, [(0.49, 0.51), (0.29, 0.31), (0.19, 0.21)],
                                     strict=True):
        b.book(yes, [(bid, 100)], [(ask, 100)], ts_ns=NOW)
        b.book(no, [(round(1 - ask, 2), 100)], [(round(1 - bid, 2), 100)], ts_ns=NOW)
    return ids


@pytest.mark.parametrize("a_requoted", [False, True])
def test_stale_quote_after_the_other_outcomes_moved(a_requoted: bool) -> None:
    """B and C requote up (mids 0.30 -> 0.40, 0.20 -> 0.30) while A's books sit at their
    0.50 mid: A's fair value is 1 - 0.70 = 0.30, its NO worth 0.70 is asked at 0.51: 100
    NO for 19.00, reported on the second scan past min_age_s.  A requoting with them
    (0.29/0.31) is not stale: nothing."""
    b = MarketBuilder()
    (a, a_no), (bb, bb_no), (c, c_no) = _three(b)
    inc, ref = StaleQuoteScanner(), StaleQuoteScanner(incremental=False)
    assert inc.scan(b.market, NOW) == ref.scan(b.market, NOW) == []
    t1 = NOW + 10 * S
    for yes, no, (bid, ask) in ((bb, bb_no, (0.39, 0.41)), (c, c_no, (0.29, 0.31))):
        b.book(yes, [(bid, 100)], [(ask, 100)], ts_ns=t1)
        b.book(no, [(round(1 - ask, 2), 100)], [(round(1 - bid, 2), 100)], ts_ns=t1)
    if a_requoted:
        b.book(a, [(0.29, 100)], [(0.31, 100)], ts_ns=t1)
        b.book(a_no, [(0.69, 100)], [(0.71, 100)], ts_ns=t1)
    assert inc.scan(b.market, t1) == ref.scan(b.market, t1) == []
    assert inc.scan(b.market, NOW + 60 * S) == ref.scan(b.market, NOW + 60 * S) == []
    found = inc.scan(b.market, NOW + 120 * S)
    assert found == ref.scan(b.market, NOW + 120 * S)
    if a_requoted:
        assert found == []
        return
    (opp,) = found
    assert opp.legs[0].instrument_id == a_no and opp.max_size == D(100)
    assert opp.legs[0].limit_price == D("0.51") and opp.expected_profit == D("19.00")
    assert not opp.risk_free


@pytest.mark.parametrize(("size", "taken"), [(3.337, None), (7.339, D("7.33"))])
def test_a_spike_fade_is_an_order_the_venue_takes(size: float, taken: Decimal | None) -> None:
    """The fade bought the top ask's size as read: 3.337 shares, off the 0.01 lot and under
    the instrument's minimum of 5.  Now whole lots, at least the minimum: nothing for 3.337,
    7.33 of 7.339."""
    b, yes = _spike_market()
    inc, ref = SpikeScanner(), SpikeScanner(incremental=False)
    for ts in (NOW, NOW + 60 * S):
        inc.scan(b.market, ts), ref.scan(b.market, ts)
    b.book(yes, [(0.35, size)], [(0.37, size)], ts_ns=NOW + 90 * S)
    inc.scan(b.market, NOW + 120 * S), ref.scan(b.market, NOW + 120 * S)
    found = inc.scan(b.market, NOW + 180 * S)
    assert found == ref.scan(b.market, NOW + 180 * S)
    assert [(o.max_size, o.legs[0].quantity) for o in found] == (
        [(taken, taken)] if taken is not None else [])


def test_a_stale_quote_below_the_minimum_order_size_is_not_reported() -> None:
    """The stale NO of the scenario above, 12 shares deep (over min_depth 10) on a market
    whose minimum order is 15: not an order the venue takes."""
    b = MarketBuilder()
    ids = b.event("T", ["a", "b", "c"], min_size="15")
    for (yes, no), (bid, ask) in zip(ids, [(0.49, 0.51), (0.29, 0.31), (0.19, 0.21)],
                                     strict=True):
        b.book(yes, [(bid, 100)], [(ask, 100)], ts_ns=NOW)
        b.book(no, [(round(1 - ask, 2), 12)], [(round(1 - bid, 2), 12)], ts_ns=NOW)
    inc, ref = StaleQuoteScanner(), StaleQuoteScanner(incremental=False)
    inc.scan(b.market, NOW), ref.scan(b.market, NOW)
    t1 = NOW + 10 * S
    for (yes, _no), (bid, ask) in zip(ids[1:], [(0.39, 0.41), (0.29, 0.31)], strict=True):
        b.book(yes, [(bid, 100)], [(ask, 100)], ts_ns=t1)
    for ts in (t1, NOW + 60 * S, NOW + 120 * S):
        assert inc.scan(b.market, ts) == ref.scan(b.market, ts) == []
