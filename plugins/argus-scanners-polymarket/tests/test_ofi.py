"""Order-flow imbalance: CKS e_n by hand on constructed book sequences (touch and two
levels), trade flow, the window, normalisation, and both ways in (events, market state)."""

from __future__ import annotations

import numpy as np
import pytest
from argus_scanners_polymarket.fixtures import MarketBuilder, data_dir, ws_book
from argus_scanners_polymarket.ofi import SIGNAL, OfiTracker, market_ofi, ofi_step

from argus_core import OrderBook, Side, Trade

S = 10**9
T = "polymarket:tok"


def _a(levels: list[tuple[float, float]]) -> np.ndarray:
    return np.asarray(levels, dtype=np.float64).reshape(-1, 2)


#: (bids, asks) states, and e_n of each transition by hand
STATES = [
    ([(0.50, 100)], [(0.52, 80)]),
    ([(0.50, 150)], [(0.52, 80)]),   # bid added at the touch: +150 - 100 = +50
    ([(0.51, 30)], [(0.52, 80)]),    # bid improved: +30 (the old level is not subtracted)
    ([(0.51, 30)], [(0.53, 60)]),    # ask lifted away: +80 (old ask size)
    ([(0.50, 150)], [(0.53, 60)]),   # bid withdrawn to a lower price: -30
]
E = [50.0, 30.0, 80.0, -30.0]


def test_ofi_step_by_hand_at_the_touch() -> None:
    got = [ofi_step(_a(STATES[i][0]), _a(STATES[i][1]), _a(STATES[i + 1][0]),
                    _a(STATES[i + 1][1])) for i in range(4)]
    assert got == E
    # ask added at the touch, ask improved, ask side emptied, bid side emptied
    assert ofi_step(_a([(0.5, 1)]), _a([(0.52, 80)]), _a([(0.5, 1)]), _a([(0.52, 95)])) == -15
    assert ofi_step(_a([(0.5, 1)]), _a([(0.52, 80)]), _a([(0.5, 1)]), _a([(0.51, 10)])) == -10
    assert ofi_step(_a([(0.5, 1)]), _a([(0.52, 80)]), _a([(0.5, 1)]), _a([])) == 80
    assert ofi_step(_a([(0.5, 7)]), _a([(0.52, 80)]), _a([]), _a([(0.52, 80)])) == -7


def test_multi_level_weights_deeper_levels() -> None:
    before = (_a([(0.50, 100), (0.49, 200)]), _a([(0.52, 80)]))
    after = (_a([(0.50, 100), (0.49, 260)]), _a([(0.52, 80), (0.53, 40)]))
    # level 1: 0; level 2: bid +260 - 200 = +60, ask appears -40 -> +20, weighted 0.5
    assert ofi_step(*before, *after) == 0.0
    assert ofi_step(*before, *after, levels=2, level_decay=0.5) == 10.0
    assert ofi_step(*before, *after, levels=2, level_decay=1.0) == 20.0


def _fed(tracker: OfiTracker) -> None:
    for k, (bids, asks) in enumerate(STATES):
        tracker.on_event(OrderBook(T, k * S, _a(bids), _a(asks)))
    tracker.on_event(Trade(T, 2 * S, "0.52", "20", Side.BUY))
    tracker.on_event(Trade(T, 3 * S, "0.51", "5", Side.SELL))


def test_tracker_window_sums_and_normalises_by_hand() -> None:
    tracker = OfiTracker(window_s=60)
    _fed(tracker)
    r = tracker.reading(T, 4 * S)
    assert r is not None
    assert (r.book_ofi, r.trade_flow, r.transitions, r.trades) == (130.0, 15.0, 4, 2)
    assert r.flow == 145.0 and r.gross == 190.0 + 25.0
    assert r.imbalance == pytest.approx(145 / 215)
    # touch depths (b1 + a1) / 2 of the five states: 90, 115, 55, 45, 105 -> mean 82
    assert r.depth == 82.0 and r.per_depth == pytest.approx(145 / 82)
    assert tracker.imbalance("polymarket:unseen", 4 * S) == 0.0
    # a 2.5 s window at t=4 keeps the states at 2, 3, 4 s and both trades
    short = OfiTracker(window_s=2.5)
    _fed(short)
    r2 = short.reading(T, 4 * S)
    assert r2 is not None and r2.book_ofi == 30 + 80 - 30 and r2.trade_flow == 15
    # long after: nothing left in the window, imbalance 0, depth from the last state
    r3 = short.reading(T, 100 * S)
    assert r3 is not None and (r3.flow, r3.imbalance, r3.depth) == (0.0, 0.0, 105.0)


def test_trade_weight_and_unchanged_states() -> None:
    tracker = OfiTracker(window_s=60, trade_weight=0.0)
    _fed(tracker)
    tracker.on_book(T, _a(STATES[-1][0]), _a(STATES[-1][1]), 5 * S)  # same top: no step
    r = tracker.reading(T, 5 * S)
    assert r is not None and r.flow == 130.0 and r.transitions == 4
    assert r.imbalance == pytest.approx(130 / 190)
    with pytest.raises(ValueError, match="window_s > 0"):
        OfiTracker(window_s=0)


def test_observe_reads_the_market_state_and_publishes_signals() -> None:
    b = MarketBuilder()
    ((y, n),) = b.event("K", ["T"], neg_risk=False)
    tracker = OfiTracker(window_s=60)
    for k, (bids, asks) in enumerate(STATES):
        b.book(y, bids, asks, ts_ns=k * S)
        tracker.observe(b.market)          # sampled once per "scan"
    b.market.apply(Trade(y, 4 * S, "0.53", "10", Side.BUY))
    assert market_ofi(b.market, y, 4 * S, tracker) == pytest.approx((130 + 10) / (190 + 10))
    tracker.observe(b.market)               # the same trade is not counted twice
    r = tracker.reading(y, 4 * S)
    assert r is not None and r.trade_flow == 10
    # published as a Signal, then readable from the market state alone
    for sig in tracker.signals(4 * S):
        b.market.apply(sig)
    assert {s.instrument_id for s in tracker.signals(4 * S)} == {y}
    assert market_ofi(b.market, y, 4 * S) == pytest.approx(140 / 200)
    assert b.market.signal(SIGNAL, y) == pytest.approx(0.7)
    assert market_ofi(b.market, n, 4 * S) is None


@pytest.mark.skipif(not data_dir().is_dir(),
                    reason="bundled Polymarket data (../shared/data) missing")
def test_recorded_real_book_has_no_flow_until_it_changes() -> None:
    book = ws_book()
    bids, asks = book.bids, book.asks
    tracker = OfiTracker(window_s=60, levels=3)
    tracker.on_event(book)
    ts = book.ts_ns
    r = tracker.reading(book.instrument_id, ts)
    # touch 0.511 x 1304.72 / 0.514 x 20230.87: one state, no transition, no flow
    assert r is not None and r.flow == 0 and r.depth == pytest.approx((1304.72 + 20230.87) / 2)
    # someone lifts the whole 0.514 ask: level 1 +20230.87 (ask gone); levels 2-3 move up
    # too: +43551.96 * 0.5 and +28605.55 * 0.25 (each old level's size)
    tracker.on_book(book.instrument_id, bids, asks[1:], ts + S)
    r = tracker.reading(book.instrument_id, ts + S)
    assert r is not None and r.imbalance == 1.0
    assert r.book_ofi == pytest.approx(20230.87 + 43551.96 * 0.5 + 28605.55 * 0.25)


@pytest.mark.parametrize("decay", [0.5, 1.0])
def test_observe_touch_fast_path_equals_the_per_level_path(decay: float) -> None:
    # observe() with one level reads the touch without _dict_top/_on_top/ofi_step: it must
    # feed what those give (every state, step term and depth, to the bit), empty sides and
    # unchanged touches included; the reference feeds the same books through _on_top
    from decimal import Decimal as D

    from argus_scanners_polymarket.ofi import _dict_top
    from argus_scanners_polymarket.touch import touch_table

    from argus_core import BookDelta

    rng = np.random.default_rng(11)
    b = MarketBuilder()
    ids = [f"polymarket:t{k}" for k in range(6)]
    for iid in ids:
        b.book(iid, [(0.40, 50.0), (0.39, 10.0)], [(0.45, 20.0), (0.46, 5.0)], ts_ns=S)
    market = b.market
    fast = OfiTracker(60.0, levels=1, level_decay=decay)
    tab = OfiTracker(60.0, levels=1, level_decay=decay)  # the touch from the touch table
    ref = OfiTracker(60.0, levels=1, level_decay=decay)
    stamp = empty = crossed = 0
    for k in range(400):
        ts = (2 + k) * S
        iid = ids[int(rng.integers(len(ids)))]
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        price = round(float(rng.choice([0.38, 0.39, 0.40, 0.41, 0.44, 0.45, 0.46, 0.47])), 2)
        size = float(rng.choice([0.0, 0.0, 7.5, 20.0, 55.25]))
        market.apply(BookDelta(iid, ts, side, D(repr(price)), D(repr(size))))
        if k % 37 == 0:  # a side emptied
            book = market.books[iid]
            for p in list(book.bids if side is Side.BUY else book.asks):
                market.apply(BookDelta(iid, ts, side, D(repr(p)), D(0)))
        fast.observe(market)
        tab.observe(market, touch_table(market))
        empty += not market.books[iid].bids or not market.books[iid].asks
        crossed += bool(market.books[iid].fault())
        changed, stamp = market.changes_since(stamp)
        for cid in reversed(changed):
            book = market.books[cid]
            ref._on_top(cid, _dict_top(book.bids, 1, bid=True),
                        _dict_top(book.asks, 1, bid=False), book.ts_ns)
        for got in (fast, tab):
            assert got._last == ref._last and got.fed == ref.fed
            assert {i: list(q) for i, q in got._steps.items()} == {
                i: list(q) for i, q in ref._steps.items()}
    assert sum(s[3] for q in ref._steps.values() for s in q) > 50  # transitions
    assert empty > 0  # a side emptied: the 0 / inf stand-ins
    assert crossed > 0  # a crossed book: read from its dicts, not the table
    readings = [(fast.reading(i, 401 * S), tab.reading(i, 401 * S), ref.reading(i, 401 * S))
                for i in ids]
    assert all(a == b == c for a, b, c in readings)
    assert tab.get_state() == ref.get_state()
