"""The ``crossvenue`` scanner against hand computations: both venues' fee formulas and
roundings, lot and tick grids, the joint capacity walk, same vs complementary pairs, and
pairs that are not risk-free."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.scanner import CrossVenueScanner, _on_tick, segment_ends

from argus_core import MarketState, Opportunity, Side

TICKER = "KXFEDCUT-26SEP"
K_YES, K_NO = f"kalshi:{TICKER}/YES", f"kalshi:{TICKER}/NO"
P_YES, P_NO = "polymarket:111", "polymarket:222"


def k_fee(qty: int | str, price: str) -> D:
    """Kalshi taker fee of one fill, by hand: 0.07 C P (1 - P) rounded up to the cent."""
    p = D(price)
    return (D("0.07") * D(qty) * p * (1 - p)).quantize(D("0.01"), rounding=ROUND_CEILING)


def p_fee(qty: int | str, price: str) -> D:
    """Polymarket taker fee of one fill, by hand: 0.05 C p (1 - p) floored to 0.00001."""
    p = D(price)
    return (D("0.05") * D(qty) * p * (1 - p)).quantize(D("0.00001"), rounding=ROUND_DOWN)


def scan(market: MarketState, mapping: Path, **settings: Any) -> list[Opportunity]:
    return CrossVenueScanner(CrossVenueSettings(mapping=mapping, **settings)).scan(market, 2_000)


# The example's planted books: Kalshi YES asks 0.42 x 50, 0.43 x 30, 0.44 x 200;
# Polymarket NO-token asks 0.52 x 40, 0.53 x 60, 0.56 x 500; the other route is dear.
EXAMPLE = {
    K_YES: ([(0.37, 100.0)], [(0.42, 50.0), (0.43, 30.0), (0.44, 200.0)]),
    K_NO: ([(0.56, 200.0)], [(0.62, 100.0), (0.63, 100.0)]),
    P_YES: ([(0.46, 100.0)], [(0.49, 100.0), (0.50, 200.0)]),
    P_NO: ([(0.47, 100.0)], [(0.52, 40.0), (0.53, 60.0), (0.56, 500.0)]),
}


def test_capacity_walks_several_levels_of_both_books_and_profit_is_exact(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path]) -> None:
    market = make_market(EXAMPLE)
    (opp,) = scan(market, write_mapping())
    # Segments (Kalshi level x Polymarket level, units, marginal 1 - a_K - a_P - fees/unit):
    #   0.42 x 0.52, 40: 1 - 0.94 - 0.07*.42*.58 - 0.05*.52*.48 = 0.030468
    #   0.42 x 0.53, 10: 1 - 0.95 - 0.017052 - 0.012455          = 0.020493
    #   0.43 x 0.53, 30: 1 - 0.96 - 0.017157 - 0.012455          = 0.010388
    #   0.44 x 0.53, 20: 1 - 0.97 - 0.017248 - 0.012455          = 0.000297
    #   0.44 x 0.56:     1 - 1.00 - ...                           < 0: stop
    assert opp.max_size == 100
    kalshi_fees = k_fee(50, "0.42") + k_fee(30, "0.43") + k_fee(20, "0.44")
    pm_fees = p_fee(40, "0.52") + p_fee(60, "0.53")
    assert (kalshi_fees, pm_fees) == (D("0.86") + D("0.52") + D("0.35"),
                                      D("0.49920") + D("0.74730"))
    cost = D(50) * D("0.42") + 30 * D("0.43") + 20 * D("0.44") + 40 * D("0.52") + \
        60 * D("0.53")
    assert cost == D("95.3")
    assert opp.costs == kalshi_fees + pm_fees == D("2.9765")
    assert opp.expected_profit == 100 - cost - kalshi_fees - pm_fees == D("1.7235")
    assert opp.edge_per_unit == D("0.017235")
    # legs: IOC limit buys at the deepest level walked; Polymarket's book is the thinner
    # within its limit (100 vs 280), so its leg goes first
    assert [(leg.instrument_id, leg.side, leg.limit_price, leg.quantity)
            for leg in opp.legs] == [(P_NO, Side.BUY, D("0.53"), 100),
                                     (K_YES, Side.BUY, D("0.44"), 100)]
    assert opp.risk_free and opp.lane == "executable" and opp.event_id == "fed-cut"
    assert opp.kind == "cross_complementary"


def test_the_size_of_the_largest_exact_profit_wins_over_the_last_marginal_segment(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path]) -> None:
    market = make_market(EXAMPLE)
    scanner = CrossVenueScanner(CrossVenueSettings(mapping=write_mapping()))
    (opp,) = scanner.scan(market, 2_000)
    # at 80 (the previous segment end) the exact profit is lower: 80 - 33.9 - 42.0 -
    # (0.86 + 0.52) - (0.4992 + 0.4982) = 1.7226 < 1.7235 at 100
    at_80 = (80 - (50 * D("0.42") + 30 * D("0.43")) - (40 * D("0.52") + 40 * D("0.53"))
             - k_fee(50, "0.42") - k_fee(30, "0.43") - p_fee(40, "0.52") - p_fee(40, "0.53"))
    assert at_80 == D("1.7226") < opp.expected_profit
    # a minimum edge per unit above the last segment's 0.000297 stops the walk at 80
    (opp80,) = scan(market, write_mapping(), min_edge="0.0003")
    assert opp80.max_size == 80 and opp80.expected_profit == at_80


def test_per_fill_fee_rounding_decides_whether_a_thin_margin_pays(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path]) -> None:
    # 0.45 + 0.52: marginal 1 - 0.97 - 0.07*.45*.55 - 0.05*.52*.48 = 0.000195 > 0 per unit,
    # but Kalshi rounds each fill's fee up to the cent
    thin = {K_YES: ([], [(0.45, 5.0)]), P_NO: ([], [(0.52, 5.0)])}
    # 5 units (Polymarket's minimum): 5 * 0.03 - 0.09 (0.086625 up) - 0.0624 = -0.0024
    assert 5 * D("0.03") - k_fee(5, "0.45") - p_fee(5, "0.52") == D("-0.0024")
    assert scan(make_market(thin), write_mapping()) == []
    deep = {K_YES: ([], [(0.45, 100.0)]), P_NO: ([], [(0.52, 100.0)])}
    (opp,) = scan(make_market(deep), write_mapping())
    # 100 units: 3 - 1.74 (1.7325 up) - 1.248 = 0.012
    assert opp.max_size == 100
    assert opp.costs == k_fee(100, "0.45") + p_fee(100, "0.52") == D("2.988")
    assert opp.expected_profit == D("0.012")


def test_sizes_respect_both_lot_grids_and_minimum_sizes_and_limits_the_tick(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path]) -> None:
    # Polymarket shows 37.5 (0.01 lots), Kalshi trades whole contracts: 37
    books = {K_YES: ([], [(0.42, 50.0)]), P_NO: ([], [(0.52, 37.5)])}
    (opp,) = scan(make_market(books), write_mapping())
    assert opp.max_size == 37
    assert opp.expected_profit == 37 * D("0.06") - k_fee(37, "0.42") - p_fee(37, "0.52")
    # below Polymarket's 5-share minimum: nothing
    tiny = {K_YES: ([], [(0.42, 50.0)]), P_NO: ([], [(0.52, 4.0)])}
    assert scan(make_market(tiny), write_mapping()) == []
    # a limit is put on the tick grid upwards (a buy never limits below its level)
    assert _on_tick(D("0.425"), D("0.01")) == D("0.43")
    assert _on_tick(D("0.42"), D("0.01")) == D("0.42")
    assert _on_tick(D("0.4213"), D("0.001")) == D("0.422")


def test_same_outcome_bid_above_the_other_venues_ask_is_bought_as_the_complement(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path]) -> None:
    # Kalshi YES bid 0.60 is Kalshi's NO ask 0.40 (Kalshi serves both); Polymarket YES ask
    # 0.50: "sell YES on Kalshi at 0.60, buy YES on Polymarket at 0.50" is the basket
    # NO_kalshi + YES_polymarket for 0.90
    books = {K_YES: ([(0.60, 20.0)], [(0.62, 20.0)]), K_NO: ([(0.38, 20.0)], [(0.40, 20.0)]),
             P_YES: ([(0.48, 50.0)], [(0.50, 50.0)]), P_NO: ([(0.49, 50.0)], [(0.51, 50.0)])}
    (opp,) = scan(make_market(books), write_mapping())
    assert {leg.instrument_id for leg in opp.legs} == {K_NO, P_YES}
    assert opp.max_size == 20
    assert opp.expected_profit == 20 * D("0.10") - k_fee(20, "0.40") - p_fee(20, "0.50")


def test_a_complementary_pair_maps_the_other_token(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path]) -> None:
    market = make_market(EXAMPLE)
    same = scan(market, write_mapping())
    # Kalshi YES ("cut") is the complement of Polymarket's "No" token: the same baskets
    complement = scan(market, write_mapping(**{
        "relation": "complement", "polymarket.token_id": "222", "polymarket.outcome": "No"}))
    assert [(o.legs, o.expected_profit) for o in complement] == [
        (o.legs, o.expected_profit) for o in same]
    # mapped as "same" to the No token instead, the baskets pair Kalshi YES with
    # Polymarket YES (the mapping alone decides what hedges what: a person writes it)
    wrong = scan(market, write_mapping(**{"polymarket.token_id": "222",
                                          "polymarket.outcome": "No"}))
    assert {leg.instrument_id for o in wrong for leg in o.legs} == {K_YES, P_YES}
    # a mapping naming the wrong outcome of a token is refused (pair skipped)
    assert scan(market, write_mapping(**{"polymarket.outcome": "No"})) == []


@pytest.mark.parametrize(("change", "why"), [
    ({"polymarket.settles": "2026-09-17"}, "settlement dates differ (kalshi: 2026-09-16, "
                                           "polymarket: 2026-09-17)"),
    ({"polymarket.resolution_source": "Fed website"}, "resolution sources differ"),
])
def test_different_settlement_dates_or_sources_are_not_risk_free(
        make_market: Callable[..., MarketState], write_mapping: Callable[..., Path],
        change: dict[str, str], why: str) -> None:
    market = make_market(EXAMPLE)
    (opp,) = scan(market, write_mapping(**change))
    assert not opp.risk_free and why in opp.reason and "NOT risk-free" in opp.reason
    assert opp.lane == "research"  # reported, never traded by default
    (traded,) = scan(market, write_mapping(**change), trade_not_risk_free=True)
    assert traded.lane == "executable" and not traded.risk_free
    assert traded.expected_profit == opp.expected_profit == D("1.7235")


def test_first_leg_setting_orders_the_legs(make_market: Callable[..., MarketState],
                                           write_mapping: Callable[..., Path]) -> None:
    market = make_market(EXAMPLE)
    (opp,) = scan(market, write_mapping(), first_leg="kalshi")
    assert [leg.instrument_id for leg in opp.legs] == [K_YES, P_NO]


def test_stale_or_missing_books_are_not_scanned(make_market: Callable[..., MarketState],
                                               write_mapping: Callable[..., Path]) -> None:
    books = {k: v for k, v in EXAMPLE.items() if k != P_NO}
    assert scan(make_market(books), write_mapping()) == []


def test_segment_ends_stop_at_the_first_unprofitable_segment() -> None:
    from argus_crossvenue.scanner import VenueLeg
    from argus_venue_kalshi.fees import KalshiFeeSchedule
    from argus_venue_polymarket.fees import PolymarketFeeSchedule

    k = VenueLeg(K_YES, [(D("0.42"), D(50)), (D("0.43"), D(30)), (D("0.44"), D(200))],
                 KalshiFeeSchedule())
    p = VenueLeg(P_NO, [(D("0.52"), D(40)), (D("0.53"), D(60)), (D("0.56"), D(500))],
                 PolymarketFeeSchedule(rate=D("0.05")))
    assert segment_ends(k, p) == [40, 50, 80, 100]
    assert segment_ends(k, p, D("0.015")) == [40, 50]
