"""``maker`` scanner: quotes one tick inside against hand computations (half-spread,
inventory skew from settings or a signal, OFI adverse selection, maker fees, rewards),
tight books give nothing; the recorded Trump No book and the Gamma presidential snapshot."""

from __future__ import annotations

from decimal import Decimal

import pytest
from argus_scanners_polymarket.common import RESEARCH, lane_of
from argus_scanners_polymarket.config import MakerSettings
from argus_scanners_polymarket.fixtures import (
    MarketBuilder,
    data_dir,
    presidential_market,
    trump_no_market,
)
from argus_scanners_polymarket.maker import MakerScanner

from argus_core import FeeSchedule, Opportunity, Side, Signal

D = Decimal
needs_data = pytest.mark.skipif(not data_dir().is_dir(),
                                reason="bundled Polymarket data (../shared/data) missing")
S = 10**9
NOW = 100 * S


def _token(bids: list[tuple[float, float]], asks: list[tuple[float, float]],
           fees: FeeSchedule | None = None) -> tuple[MarketBuilder, str]:
    b = MarketBuilder(fees)
    ((y, _),) = b.event("M", ["T"], neg_risk=False)  # tick 0.01, min size 5
    b.book(y, bids, asks, ts_ns=NOW)
    return b, y


def _sides(opps: list[Opportunity]) -> dict[str, tuple[Side, Decimal, Decimal, Decimal]]:
    return {o.kind: (o.legs[0].side, o.legs[0].limit_price, o.legs[0].quantity,
                     o.edge_per_unit) for o in opps}


def test_wide_spread_quoted_one_tick_inside_by_hand() -> None:
    b, y = _token([(0.40, 100)], [(0.46, 100)])
    opps = MakerScanner().scan(b.market, NOW)
    # mid 0.43; bid 0.41 / ask 0.45 capture 0.02 each, less adverse floor 0.005
    assert _sides(opps) == {"maker_bid": (Side.BUY, D("0.41"), D(5), D("0.015")),
                            "maker_ask": (Side.SELL, D("0.45"), D(5), D("0.015"))}
    for o in opps:
        assert o.expected_profit == D("0.075") and o.costs == 0
        assert lane_of(o) == RESEARCH and not o.risk_free and y in o.opportunity_id


def test_inventory_skew_from_settings_and_from_a_signal() -> None:
    b, y = _token([(0.40, 100)], [(0.46, 100)])
    long50 = MakerScanner(MakerSettings(inventory={y: D(50)}))
    # r = 0.43 - 0.0001 * 50 = 0.425: bid 0.425 - 0.41 - 0.005; ask 0.45 - 0.425 - 0.005
    assert {k: v[3] for k, v in _sides(long50.scan(b.market, NOW)).items()} == {
        "maker_bid": D("0.010"), "maker_ask": D("0.020")}
    b.market.apply(Signal("inventory", y, NOW, -50.0))  # the signal wins: short 50
    assert {k: v[3] for k, v in _sides(long50.scan(b.market, NOW)).items()} == {
        "maker_bid": D("0.020"), "maker_ask": D("0.010")}
    b2, y2 = _token([(0.40, 100)], [(0.46, 100)])
    capped = MakerScanner(MakerSettings(inventory={y2: D(50)}, max_inventory=D(50)))
    assert set(_sides(capped.scan(b2.market, NOW))) == {"maker_ask"}  # no more buying


def test_order_flow_against_the_bid_raises_its_adverse_selection() -> None:
    b, y = _token([(0.40, 100)], [(0.46, 100)])
    scanner = MakerScanner()
    scanner.scan(b.market, NOW)
    b.book(y, [(0.40, 20)], [(0.46, 100)], ts_ns=NOW + S)  # 80 bid shares pulled: e = -80
    assert scanner.flow(b.market, y, NOW + S) == 0.0      # not observed yet
    opps = scanner.scan(b.market, NOW + S)
    assert scanner.flow(b.market, y, NOW + S) == -1.0
    # AS_bid = 0.005 + 0.02 * 1 = 0.025 > 0.02 captured: no bid; ask unchanged
    assert _sides(opps) == {"maker_ask": (Side.SELL, D("0.45"), D(5), D("0.015"))}
    # a published OFI signal is used for a token the scanner's tracker has no flow for
    b2, y2 = _token([(0.40, 100)], [(0.46, 100)])
    b2.market.apply(Signal("ofi", y2, NOW, 0.5))
    # AS_ask = 0.005 + 0.01: ask edge 0.005; bid 0.015
    assert {k: v[3] for k, v in _sides(MakerScanner().scan(b2.market, NOW)).items()} == {
        "maker_bid": D("0.015"), "maker_ask": D("0.005")}


def test_maker_fees_and_quote_size() -> None:
    b, _ = _token([(0.40, 100)], [(0.46, 100)], FeeSchedule(maker_bps=D(100)))
    opps = MakerScanner(MakerSettings(quote_size=D("7.004"))).scan(b.market, NOW)
    # size 7.004 rounded up to the 0.01 lot: 7.01; maker fee 1%: 0.0041 / 0.0045 per share
    got = {o.kind: o for o in opps}
    assert got["maker_bid"].max_size == D("7.01")
    assert got["maker_bid"].edge_per_unit == D("0.0109")
    assert got["maker_ask"].edge_per_unit == D("0.0105")
    assert got["maker_bid"].costs == D("0.41") * D("7.01") / 100


def test_tight_books_give_nothing_and_two_ticks_quote_one_side() -> None:
    for bids, asks in (([(0.43, 100)], [(0.44, 100)]),    # one tick: no price inside
                       ([(0.42, 100)], [(0.44, 100)]),    # two: at the mid, edge -0.005
                       ([(0.41, 100)], [(0.44, 100)]),    # three: 0.005 - 0.005 = 0
                       ([], [(0.44, 100)])):              # one-sided
        b, _ = _token(bids, asks)
        assert MakerScanner().scan(b.market, NOW) == [], (bids, asks)
    b, y = _token([(0.42, 100)], [(0.44, 100)])
    short = MakerScanner(MakerSettings(inventory={y: D(-100)}))
    # r = 0.44: bid at 0.43 earns 0.01 - 0.005; the ask at the same price loses: bid only
    assert _sides(short.scan(b.market, NOW)) == {
        "maker_bid": (Side.BUY, D("0.43"), D(5), D("0.005"))}


@needs_data
def test_recorded_trump_no_book_needs_rewards_to_quote() -> None:
    """The recorded book (0.511 x 1304.72 / 0.514 x 20230.87, tick 0.001): quotes at 0.512
    and 0.513 capture 0.0005 against the 0.005 adverse floor: nothing.  The market's
    rewards program (5000 USD/day, min 200 shares, 1.5 cents) with a 1% pool share over
    1000 filled shares a day pays 0.05/share: both sides, 200 shares, edge 0.0455; a 0.1%
    share pays 0.005: edge 0.0005 <= min_edge 0.001, nothing."""
    assert MakerScanner().scan(trump_no_market(with_rewards=False), 0) == []
    market = trump_no_market()
    assert MakerScanner().scan(market, market.now_ns) == []  # pool share 0: no rewards
    opps = MakerScanner(MakerSettings(reward_pool_share=0.01)).scan(market, market.now_ns)
    assert _sides(opps) == {"maker_bid": (Side.BUY, D("0.512"), D(200), D("0.0455")),
                            "maker_ask": (Side.SELL, D("0.513"), D(200), D("0.0455"))}
    assert MakerScanner(MakerSettings(reward_pool_share=0.001)).scan(
        market, market.now_ns) == []


@needs_data
def test_gamma_presidential_snapshot_gives_nothing() -> None:
    """Trump 0.654/0.655 and Harris 0.346/0.347 are one tick wide, the 15 long shots have
    no bid: no quote fits inside, rewards or not."""
    market = presidential_market()
    for s in (MakerSettings(), MakerSettings(reward_pool_share=0.5)):
        assert MakerScanner(s).scan(market, market.now_ns) == []
