"""Held-out phrasings for the correlation scanner (issue 15): thresholds written as "at
least 50 bps", "more than 25 bps", "above $100,000", "$90k", "over 3%", "below" / "under"
(the implication reverses), dates and ordinals that name *different* questions (December
30 vs 31, 1st vs 31st, Q1 vs Q2, 10-year vs 2-year yield), unrelated events worded alike,
a correctly ordered family, and the scanner pricing a dollar-threshold violation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from argus_scanners_polymarket.constraints import implication, parse_bound
from argus_scanners_polymarket.correlation import CorrelationScanner
from argus_scanners_polymarket.fixtures import MarketBuilder

from argus_core import FeeSchedule

D = Decimal
ONE_PCT = FeeSchedule(taker_bps=D(100))

#: (tighter, looser): the first implies the second
NESTED = [
    ("Will the Fed cut rates by at least 50 bps in March 2025?",
     "Will the Fed cut rates by at least 25 bps in March 2025?"),
    ("Will the Fed cut rates by at least 50 bps in March 2025?",
     "Will the Fed cut rates by more than 25 bps in March 2025?"),
    ("Will the Fed hike by more than 50 basis points at its June 2025 meeting?",
     "Will the Fed hike by 25+ bps at its June 2025 meeting?"),
    ("Will Bitcoin be above $100,000 on December 31, 2025?",
     "Will Bitcoin be above $90,000 on December 31, 2025?"),
    ("Will Bitcoin be above $100k on December 31, 2025?",
     "Will Bitcoin be above $95,000 on December 31, 2025?"),
    ("Will Bitcoin close above $1.2M in 2030?", "Will Bitcoin close above $900k in 2030?"),
    ("Will US inflation be over 4% in 2025?", "Will US inflation be over 3% in 2025?"),
    ("Will US CPI inflation be 4% or higher in 2025?",
     "Will US CPI inflation be above 3% in 2025?"),
    # below / under: the *lower* threshold is the tighter one
    ("Will US unemployment be under 3.5% in 2025?", "Will US unemployment be below 4% in 2025?"),
    ("Will Bitcoin be below $70,000 on December 31, 2025?",
     "Will Bitcoin be under $80,000 on December 31, 2025?"),
    ("Will Bitcoin trade under $60k on the 1st of July 2025?",
     "Will Bitcoin trade less than $65,000 on the 1st of July 2025?"),
    ("Will the Fed set interest rates above 2.50% after the July 2022 meeting?",
     "Will the Fed set interest rates above 2.25% after the July 2022 meeting?"),
]


@pytest.mark.parametrize(("tight", "loose"), NESTED)
def test_nested_thresholds_in_other_phrasings(tight: str, loose: str) -> None:
    for a, b in ((tight, loose), (loose, tight)):  # either order
        c = implication("x" if a == tight else "y", a, "y" if a == tight else "x", b)
        assert c is not None, (a, b)
        assert (c.antecedent, c.consequent, c.proven) == ("x", "y", True)


#: pairs worded alike that constrain nothing
UNRELATED = [
    # different dates / ordinals / periods / maturities
    ("Will Bitcoin be above $100,000 on December 31, 2025?",
     "Will Bitcoin be above $90,000 on December 30, 2025?"),
    ("Will Bitcoin be above $100,000 on December 1st, 2025?",
     "Will Bitcoin be above $90,000 on December 31st, 2025?"),
    ("Will GDP growth in Q1 2025 be above 2%?", "Will GDP growth in Q2 2025 be above 1%?"),
    ("Will the 10-year yield be above 4.5% on June 30?",
     "Will the 2-year yield be above 4% on June 30?"),
    ("Will the Fed cut rates by at least 50 bps at its 2nd meeting of 2025?",
     "Will the Fed cut rates by at least 25 bps at its 3rd meeting of 2025?"),
    # another subject, another year, another direction, another unit
    ("Will Ethereum be above $4,000 on December 31, 2025?",
     "Will Bitcoin be above $3,000 on December 31, 2025?"),
    ("Will the ECB cut rates by at least 50 bps in March 2025?",
     "Will the Fed cut rates by at least 25 bps in March 2025?"),
    ("Will US inflation be over 4% in 2025?", "Will US inflation be over 3% in 2026?"),
    ("Will Bitcoin be above $100,000 on December 31, 2025?",
     "Will Bitcoin be below $90,000 on December 31, 2025?"),
    ("Will Bitcoin be above $100 on December 31, 2025?",
     "Will Bitcoin be above 90% on December 31, 2025?"),
    # a bucket (two bounds) and an exact change bound nothing
    ("Will Bitcoin be between $90,000 and $100,000 on December 31, 2025?",
     "Will Bitcoin be above $80,000 on December 31, 2025?"),
    ("Will Bitcoin be above $90,000 and below $100,000 on December 31, 2025?",
     "Will Bitcoin be above $80,000 on December 31, 2025?"),
    ("Will the Fed cut rates by 50 bps in March 2025?",
     "Will the Fed cut rates by 25 bps in March 2025?"),
    # equal thresholds
    ("Will US inflation be over 3% in 2025?", "Will US inflation be above 3% in 2025?"),
    # presidency, different elections
    ("Will Gavin Newsom win the presidency in 2028?",
     "Will Gavin Newsom win the 2032 Democratic nomination?"),
]


@pytest.mark.parametrize(("a", "b"), UNRELATED)
def test_similar_wording_without_a_constraint(a: str, b: str) -> None:
    assert implication("x", a, "y", b) is None
    assert implication("y", b, "x", a) is None


def test_bounds_read_from_the_text() -> None:
    bound = parse_bound("Will Bitcoin be above $100,000 on December 31, 2025?")
    assert bound is not None and (bound.op, bound.value) == (">", D(100000))
    assert "31" in bound.subject and "2025" in bound.subject
    bound = parse_bound("Will Bitcoin dip below $1.5k?")
    assert bound is not None and (bound.op, bound.value) == ("<", D(1500))
    bound = parse_bound("Will the Fed cut rates by more than 25 bps?")
    assert bound is not None and (bound.variable, bound.value) == ("change_down", D(25))


def _family(b: MarketBuilder, prices: dict[int, float]) -> dict[int, tuple[str, str]]:
    """Three binary markets "BTC above $80k / $90k / $100k on Dec 31" with YES asks
    ``prices`` and NO asks at 1 - YES + 0.01."""
    ids = {}
    for level, yes_ask in prices.items():
        ((yes, no),) = b.event(f"btc{level}", [f"{level}k"], neg_risk=False, questions=[
            f"Will Bitcoin be above ${level},000 on December 31, 2025?"])
        b.book(yes, [], [(yes_ask, 100)], ts_ns=3)
        b.book(no, [], [(round(1 - yes_ask + 0.01, 2), 100)], ts_ns=3)
        ids[level] = (yes, no)
    return ids


def test_a_correctly_ordered_family_gives_nothing() -> None:
    b = MarketBuilder(ONE_PCT)
    _family(b, {80: 0.70, 90: 0.50, 100: 0.30})
    sc = CorrelationScanner()
    assert sc.scan(b.market, 5) == []
    assert len(sc.constraints) == 3  # 100 => 90, 100 => 80, 90 => 80: found, not violated


def test_a_dollar_threshold_violation_is_priced() -> None:
    """"above $100k" asked at 0.55 while "above $90k" is asked at 0.40: YES(90k) 0.40 +
    NO(100k) 0.46 + 1% fees = 0.8686 pays at least 1; 100 units, profit 13.14."""
    b = MarketBuilder(ONE_PCT)
    ids = _family(b, {90: 0.40, 100: 0.55})
    (opp,) = CorrelationScanner().scan(b.market, 5)
    assert [leg.instrument_id for leg in opp.legs] == [ids[90][0], ids[100][1]]
    assert opp.max_size == D(100) and opp.costs == D("0.86")
    assert opp.expected_profit == D(100) - D(40) - D(46) - D("0.86") == D("13.14")
    assert "level" in opp.reason


def test_two_unrelated_events_with_similar_wording_are_never_flagged() -> None:
    """ETH above $4,000 asked far above BTC above $3,000 (cheap): similar text, no rule."""
    b = MarketBuilder(ONE_PCT)
    ((eth, eth_no),) = b.event("eth", ["eth"], neg_risk=False, questions=[
        "Will Ethereum be above $4,000 on December 31, 2025?"])
    ((btc, btc_no),) = b.event("btc", ["btc"], neg_risk=False, questions=[
        "Will Bitcoin be above $3,000 on December 31, 2025?"])
    b.book(eth, [], [(0.90, 100)], ts_ns=3)
    b.book(eth_no, [], [(0.11, 100)], ts_ns=3)
    b.book(btc, [], [(0.20, 100)], ts_ns=3)
    b.book(btc_no, [], [(0.81, 100)], ts_ns=3)
    sc = CorrelationScanner()
    assert sc.scan(b.market, 5) == [] and sc.constraints == []
