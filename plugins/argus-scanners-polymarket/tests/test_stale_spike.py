"""Stale-quote and spike scanners: planted situations found after the persistence filter,
depth filters, and fair (unmoved or fresh) books give nothing."""

from __future__ import annotations

from decimal import Decimal

from argus_scanners_polymarket.common import RESEARCH, lane_of
from argus_scanners_polymarket.config import StaleSettings
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.stale import SpikeScanner, StaleQuoteScanner

from argus_core import FeeSchedule, Side

D = Decimal
S = 10**9
T0 = 1_000 * S


def _event(b: MarketBuilder) -> list[tuple[str, str]]:
    ids = b.event("E", ["A", "B", "C"])
    (a, a_no), (bb, b_no), (c, c_no) = ids
    b.book(a, [(0.49, 40)], [(0.51, 40)], ts_ns=T0)       # mid 0.50
    b.book(a_no, [(0.49, 40)], [(0.51, 40)], ts_ns=T0)
    b.book(bb, [(0.29, 40)], [(0.31, 40)], ts_ns=T0)      # mid 0.30
    b.book(c, [(0.19, 40)], [(0.21, 40)], ts_ns=T0)       # mid 0.20
    for no in (b_no, c_no):
        b.book(no, [(0.60, 40)], [(0.70, 40)], ts_ns=T0)
    return ids


def _move_others(b: MarketBuilder, ids: list[tuple[str, str]], ts: int) -> None:
    (_, _), (bb, _), (c, _) = ids
    b.book(bb, [(0.39, 40)], [(0.41, 40)], ts_ns=ts)      # mid 0.40
    b.book(c, [(0.24, 40)], [(0.26, 40)], ts_ns=ts)       # mid 0.25


def test_stale_quote_found_after_persistence_with_hand_edge() -> None:
    b = MarketBuilder()
    ids = _event(b)
    scanner = StaleQuoteScanner()
    assert scanner.scan(b.market, T0) == []               # references recorded
    _move_others(b, ids, T0 + 60 * S)
    # A's books are 60s old; others' mids 0.30 + 0.20 -> 0.40 + 0.25 (+0.15 >= 0.05)
    assert scanner.scan(b.market, T0 + 60 * S) == []      # held 1 scan of 2
    (opp,) = scanner.scan(b.market, T0 + 61 * S)
    # fair A = 1 - 0.65 = 0.35; YES ask 0.51 is above it; NO fair 0.65, ask 0.51 <= 0.63
    assert [(leg.instrument_id, leg.side, leg.limit_price, leg.quantity) for leg in opp.legs] \
        == [(ids[0][1], Side.BUY, D("0.51"), D(40))]
    assert opp.expected_profit == D(40) * (D("0.65") - D("0.51")) == D("5.6")
    assert not opp.risk_free and lane_of(opp) == RESEARCH and opp.kind == "stale_quote"


def test_stale_quote_fees_and_filters() -> None:
    b = MarketBuilder(FeeSchedule(taker_bps=D(100)))
    ids = _event(b)
    scanner = StaleQuoteScanner(StaleSettings(persistence_scans=1))
    scanner.scan(b.market, T0)
    _move_others(b, ids, T0 + 60 * S)
    (opp,) = scanner.scan(b.market, T0 + 60 * S)
    assert opp.costs == D("0.204") and opp.expected_profit == D("5.6") - D("0.204")
    # too young, too small a move, too little depth, too small a gap: nothing
    for s in (StaleSettings(persistence_scans=1, min_age_s=61),
              StaleSettings(persistence_scans=1, move_threshold=D("0.16")),
              StaleSettings(persistence_scans=1, min_depth=D(41)),
              # 0.51 + 1% fee = 0.5151 > 0.65 - 0.135
              StaleSettings(persistence_scans=1, min_gap=D("0.135"))):
        b2 = MarketBuilder(FeeSchedule(taker_bps=D(100)))
        ids2 = _event(b2)
        sc = StaleQuoteScanner(s)
        sc.scan(b2.market, T0)
        _move_others(b2, ids2, T0 + 60 * S)
        assert sc.scan(b2.market, T0 + 60 * S) == [], s


def test_no_stale_quote_when_nothing_moved_or_the_quote_was_refreshed() -> None:
    b = MarketBuilder()
    ids = _event(b)
    scanner = StaleQuoteScanner(StaleSettings(persistence_scans=1))
    scanner.scan(b.market, T0)
    assert scanner.scan(b.market, T0 + 120 * S) == []      # old, but nothing moved
    _move_others(b, ids, T0 + 60 * S)
    (a, a_no) = ids[0]
    b.book(a, [(0.34, 40)], [(0.36, 40)], ts_ns=T0 + 60 * S)  # A requoted to fair
    b.book(a_no, [(0.64, 40)], [(0.66, 40)], ts_ns=T0 + 60 * S)
    assert scanner.scan(b.market, T0 + 90 * S) == []
    state = scanner.get_state()
    fresh = StaleQuoteScanner()
    fresh.set_state(state)
    assert fresh.get_state() == state


def _token(b: MarketBuilder) -> str:
    ((t, _),) = b.event("K", ["T"], neg_risk=False)
    return t


def test_spike_on_thin_book_is_faded_after_persistence() -> None:
    b = MarketBuilder()
    t = _token(b)
    scanner = SpikeScanner()
    for k in range(5):
        b.book(t, [(0.49, 500)], [(0.51, 500)], ts_ns=T0 + k * S)
        assert scanner.scan(b.market, T0 + k * S) == []
    b.book(t, [(0.30, 50)], [(0.32, 50)], ts_ns=T0 + 10 * S)   # mid 0.50 -> 0.31, 50 shares
    assert scanner.scan(b.market, T0 + 10 * S) == []          # 1 scan of 2
    (opp,) = scanner.scan(b.market, T0 + 11 * S)
    # EMA stayed 0.50 (constant mids, frozen during the spike); exit 0.31 + 0.5 * 0.19
    assert opp.legs[0].limit_price == D("0.32") and opp.max_size == D(50)
    assert opp.expected_profit == D(50) * (D("0.405") - D("0.32")) == D("4.25")
    assert not opp.risk_free and lane_of(opp) == RESEARCH and opp.kind == "spike_fade"


def test_no_spike_on_deep_books_single_blips_or_small_moves() -> None:
    cases = [
        ("deep", [(0.30, 1000)], [(0.32, 1000)], 2),  # information, not noise
        ("small", [(0.44, 50)], [(0.46, 50)], 2),  # 0.05 < min_move 0.08
        ("blip", [(0.30, 50)], [(0.32, 50)], 1),   # reverts before the second scan
    ]
    for name, bids, asks, scans in cases:
        b = MarketBuilder()
        t = _token(b)
        scanner = SpikeScanner()
        b.book(t, [(0.49, 500)], [(0.51, 500)], ts_ns=T0)
        scanner.scan(b.market, T0)
        for k in range(scans):
            b.book(t, bids, asks, ts_ns=T0 + (10 + k) * S)
            assert scanner.scan(b.market, T0 + (10 + k) * S) == [], name
        b.book(t, [(0.49, 500)], [(0.51, 500)], ts_ns=T0 + 20 * S)
        assert scanner.scan(b.market, T0 + 20 * S) == [], name
