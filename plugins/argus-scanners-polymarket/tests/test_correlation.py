"""Correlation scanner: the rules, constructed books against hand computations, consistent
books give nothing, and the bundled FOMC data (which nested pairs exist, which are violated)."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from argus_scanners_polymarket.common import EXECUTABLE, RESEARCH, dec, lane_of
from argus_scanners_polymarket.config import CorrelationSettings
from argus_scanners_polymarket.constraints import implication, parse_bound
from argus_scanners_polymarket.correlation import CorrelationScanner
from argus_scanners_polymarket.fixtures import (
    MarketBuilder,
    data_dir,
    fomc_market,
    fomc_markets,
    fomc_prints,
)

from argus_core import FeeSchedule, Side

D = Decimal
ONE_PCT = FeeSchedule(taker_bps=D(100))
CUT50 = "Will the Fed cut rates by 50 bps or more at the March 2026 meeting?"
CUT25 = "Will the Fed cut rates by at least 25 bps at the March 2026 meeting?"
CUT75 = "Will the Fed cut rates by 75+ bps at the March 2026 meeting?"


def test_rules() -> None:
    assert parse_bound(CUT50).value == 50 and parse_bound(CUT50).variable == "change_down"
    assert parse_bound("25 bps decrease") is None  # an exact bucket bounds nothing
    c = implication("a", CUT50, "b", CUT25)
    assert c is not None and (c.antecedent, c.consequent, c.proven) == ("a", "b", True)
    c = implication("b", CUT25, "a", CUT50)  # either order
    assert c is not None and (c.antecedent, c.consequent) == ("a", "b")
    # other meeting, other year, other direction, exact buckets, equal thresholds: none
    assert implication("a", CUT50, "b", CUT25.replace("March", "June")) is None
    assert implication("a", CUT50, "b", CUT25.replace("2026", "2027")) is None
    assert implication("a", CUT50, "b", CUT25.replace("cut", "raise")) is None
    assert implication("a", "50 bps decrease after March", "b", "25 bps decrease after March") \
        is None
    assert implication("a", CUT50, "b", CUT50.replace("50 bps or more", "50+ bps")) is None
    c = implication("p", "Will Gavin Newsom win the 2028 US Presidential Election?",
                    "n", "Will Gavin Newsom win the 2028 Democratic presidential nomination?")
    assert c is not None and (c.antecedent, c.consequent, c.proven) == ("p", "n", False)
    assert implication("p", "Will Gavin Newsom win the 2028 US Presidential Election?",
                       "n", "Will Kamala Harris win the 2028 Democratic nomination?") is None


def _nested(b: MarketBuilder, yes_b: list[tuple[float, float]],
            no_a: list[tuple[float, float]]) -> tuple[tuple[str, str], tuple[str, str]]:
    """Event A asks "cut >= 50", event B asks "cut >= 25" (A => B)."""
    (a,) = b.event("A", ["cut 50+"], questions=[CUT50], neg_risk=False)
    (bb,) = b.event("B", ["cut 25+"], questions=[CUT25], neg_risk=False)
    b.book(bb[0], [], yes_b, ts_ns=5)
    b.book(a[1], [], no_a, ts_ns=7)
    return a, bb


def test_hand_computed_violation_with_fees() -> None:
    b = MarketBuilder(ONE_PCT)
    a, bb = _nested(b, [(0.40, 100)], [(0.50, 60), (0.55, 100)])
    (opp,) = CorrelationScanner().scan(b.market, 9)
    # 60 at 0.40 + 0.50 (+1% fees: unit edge 0.091), then 40 at 0.40 + 0.55 (0.0405); B's
    # YES is exhausted at 100.  value 40 + 30 + 22 = 92, fees 0.40 + 0.30 + 0.22
    assert opp.max_size == D(100) and opp.costs == D("0.92")
    assert opp.expected_profit == D(100) - D(92) - D("0.92") == D("7.08")
    assert [(leg.instrument_id, leg.side, leg.limit_price, leg.quantity) for leg in opp.legs] \
        == [(bb[0], Side.BUY, D("0.40"), D(100)), (a[1], Side.BUY, D("0.55"), D(100))]
    assert opp.kind == "implication" and opp.event_id == "A"  # the Gamma event (meta)
    assert not opp.risk_free and lane_of(opp) == RESEARCH
    assert opp.opportunity_id == f"correlation:{a[0]}:{bb[0]}:7"
    (proven,) = CorrelationScanner(CorrelationSettings(trade_proven=True)).scan(b.market, 9)
    assert proven.risk_free and lane_of(proven) == EXECUTABLE


def test_consistent_books_and_unrelated_pairs_give_nothing() -> None:
    b = MarketBuilder(ONE_PCT)
    _nested(b, [(0.60, 100)], [(0.45, 100)])  # 1.05 + fees > 1: consistent
    # exact buckets look alike to TF-IDF and are "cheap", but bound nothing
    ex = b.event("X", ["50", "25"], questions=["50 bps decrease after March 2026 meeting",
                                               "25 bps decrease after March 2026 meeting"],
                 neg_risk=False)
    for yes, no in ex:
        b.book(yes, [], [(0.30, 100)])
        b.book(no, [], [(0.30, 100)])
    scanner = CorrelationScanner()
    assert scanner.scan(b.market, 9) == []
    assert len(scanner.constraints) == 1 and scanner.candidates >= 2


def test_min_violation_liquidity_floor_and_per_event_cap() -> None:
    b = MarketBuilder()
    (a,) = b.event("A", ["75+"], questions=[CUT75], neg_risk=False)
    (m,) = b.event("M", ["50+"], questions=[CUT50], neg_risk=False)
    (c,) = b.event("C", ["25+"], questions=[CUT25], neg_risk=False)
    # 75 => 50 => 25 and 75 => 25; every YES ask 0.30, every NO ask 0.60: 0.90 < 1 each
    for yes, no in (a, m, c):
        b.book(yes, [], [(0.30, 50)])
        b.book(no, [], [(0.60, 50)])
    scanner = CorrelationScanner()
    opps = scanner.scan(b.market, 1)
    # three violated constraints, but 75 => 25 shares NO(75) with 75 => 50 and YES(25)
    # with 50 => 25: each book's 50 shares are offered once (test_heldout9_scanners)
    assert len(scanner.constraints) == 3 and len(opps) == 2
    assert all(o.expected_profit == D(5) for o in opps)  # 50 x (1 - 0.90)
    legs = [leg.instrument_id for o in opps for leg in o.legs]
    assert len(legs) == len(set(legs))
    assert CorrelationScanner(CorrelationSettings(max_per_event=1)).scan(b.market, 1) \
        .__len__() == 1  # every pair shares an event with the first one kept
    assert CorrelationScanner(CorrelationSettings(min_liquidity=D(51))).scan(b.market, 1) == []
    assert CorrelationScanner(CorrelationSettings(min_violation=D("0.11"))).scan(
        b.market, 1) == []


def test_presidency_nomination_is_a_research_flag_even_when_trading_proven() -> None:
    b = MarketBuilder()
    (p,) = b.event("P", ["Newsom"], questions=[
        "Will Gavin Newsom win the 2028 US Presidential Election?"], neg_risk=False)
    (n,) = b.event("N", ["Newsom"], questions=[
        "Will Gavin Newsom win the 2028 Democratic presidential nomination?"], neg_risk=False)
    b.book(n[0], [], [(0.20, 100)])  # nomination YES 0.20
    b.book(p[1], [], [(0.70, 100)])  # presidency NO 0.70 (presidency YES ~0.30 > 0.20)
    (opp,) = CorrelationScanner(CorrelationSettings(trade_proven=True)).scan(b.market, 1)
    assert opp.expected_profit == D(10) and not opp.risk_free and lane_of(opp) == RESEARCH
    assert "not proven" in opp.reason


FOMC = data_dir() / "fomc_timeseries"
needs_data = pytest.mark.skipif(not FOMC.is_dir(), reason="bundled Polymarket data missing")


@needs_data
def test_fomc_nested_pairs_are_exactly_the_2022_level_markets() -> None:
    """By hand, from fomc_tokens.csv: the only nested thresholds are June 2022 ("Above
    1.50%" => "Above 1%") and July 2022 ("Above 2.50%" => "Above 2.25%" => "Above 2.00%", and
    2.50 => 2.00).  Every later event is exclusive buckets ("25 bps decrease" exact vs
    "50+ bps decrease"), "25+ bps increase" and "50+ bps decrease" bound different
    directions, and same-month events of different years ("March 2024" / "March 2025") or
    different months never constrain each other."""
    markets = fomc_markets()
    scanner = CorrelationScanner()
    scanner.scan(fomc_market(markets, [], None), 0)
    title = {f"polymarket:{m.yes}": m.title for m in markets}
    got = {(title[c.antecedent][:11], title[c.consequent][:11]) for c in scanner.constraints}
    assert got == {("Above 1.50%", "Above 1% af"), ("Above 2.50%", "Above 2.25%"),
                   ("Above 2.25%", "Above 2.00%"), ("Above 2.50%", "Above 2.00%")}
    assert all(c.proven and c.rule == "nested_threshold" for c in scanner.constraints)


@pytest.mark.slow
@needs_data
def test_fomc_prints_violate_no_nested_pair() -> None:
    """The time series (Dec 2022 - Jul 2024) has no print of a 2022 "above X%" token, so no
    nested pair is ever priced: at the end of every day of every file, nothing is flagged."""
    markets = fomc_markets()
    prints = fomc_prints(sorted(FOMC.glob("Fed_Interest_Rates_*.csv")))
    nested = {f"polymarket:{t}" for m in markets if m.title.startswith("Above")
              for t in (m.yes, m.no)}
    assert not {f"polymarket:{tok}" for _, tok, _, _ in prints} & nested
    days = sorted({ts - ts % 86_400 + 86_399 for ts, *_ in prints})
    scanner = CorrelationScanner(CorrelationSettings(min_violation=D(0), min_liquidity=D(0)))
    for day in days[:: max(1, len(days) // 40)]:
        market = fomc_market(markets, prints, day)
        assert scanner.scan(market, day * 10**9) == []


@needs_data
def test_fomc_final_prices_violate_june_2022_by_3e_7() -> None:
    """The only violation in the bundled data is in the final (resolution) prices: June
    2022 "Above 1.50%" settled YES at 0.99999957631936... but "Above 1%" at
    0.99999927231123... (P(A) > P(B) by 3.04e-7).  Quoted at those prices (YES of B and NO
    of A), the basket costs 0.99999927231123... + 0.00000042368063... < 1; July 2022 is
    consistent (2.50: 0.0000015 <= 2.25: 0.9999985 <= 2.00: 0.9999992)."""
    markets = fomc_markets()
    b = MarketBuilder()
    market = fomc_market(markets, [], None)
    # the resolution prices are on no venue grid (a limit must be on the tick in force):
    # a grid fine enough to quote them, so the data's violation is what is priced
    market.add_instruments([attrs.evolve(i, tick_size=D("1e-12"))
                            for i in market.instruments.values()])
    b.market = market
    for m in markets:
        if m.title.startswith("Above"):
            b.book(f"polymarket:{m.yes}", [], [(float(m.outcome_yes), 100)])
            b.book(f"polymarket:{m.no}", [], [(float(m.outcome_no), 100)])
    loose = CorrelationScanner(CorrelationSettings(min_violation=D(0), min_liquidity=D(0)))
    (opp,) = loose.scan(market, 1)
    june = {m.title[:11]: m for m in markets if m.event_slug == "fed-interest-rates-june-2022"}
    a, bb = june["Above 1.50%"], june["Above 1% af"]
    cost = dec(float(bb.outcome_yes)) + dec(float(a.outcome_no))
    assert [leg.instrument_id for leg in opp.legs] == [f"polymarket:{bb.yes}",
                                                       f"polymarket:{a.no}"]
    assert opp.expected_profit == D(100) * (1 - cost)
    assert D("3.0e-7") < 1 - cost < D("3.1e-7")
    assert CorrelationScanner().scan(market, 1) == []  # below the default min_violation


def test_blocked_candidates_equal_the_full_similarity_matrix(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import random

    import numpy as np
    from argus_scanners_polymarket import correlation
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = random.Random(3)
    words = ["fed", "cut", "rates", "march", "june", "bps", "election", "trump", "wins",
             "nomination", "senate"]
    texts = [" ".join(rng.choice(words) for _ in range(6)) for _ in range(40)]
    monkeypatch.setattr(correlation, "_BLOCK", 7)
    got = correlation.candidate_pairs(texts, 0.3, 10_000)
    x = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), sublinear_tf=True,
                        token_pattern=r"(?u)\b\w[\w.]*\b").fit_transform(texts)
    full = np.asarray((x @ x.T).todense())
    want = {(i, j) for i in range(40) for j in range(i + 1, 40) if full[i, j] >= 0.3}
    assert {(i, j) for i, j, _ in got} == want and len(got) == len(want)
    sims = [v for *_, v in got]
    assert sims == sorted(sims, reverse=True)
    capped = correlation.candidate_pairs(texts, 0.3, 10_000, per_row=2)
    per_row: dict[int, int] = {}
    for i, _, _ in capped:
        per_row[i] = per_row.get(i, 0) + 1
    assert max(per_row.values()) == 2


def test_the_per_event_cap_counts_the_gamma_event_of_nested_markets() -> None:
    """The Polymarket venue makes each binary market its own core event; nested thresholds
    of one Gamma event (meta ``event_id``) share one cap, as their findings share that
    event id (six violated pairs of four markets in one event, three of them on books no
    better one took: a cap of 2 keeps the best two)."""
    b = MarketBuilder()
    cuts = [CUT25.replace("at least 25 bps", "at least 100 bps"), CUT75, CUT50, CUT25]
    markets = b.event("G", ["100+", "75+", "50+", "25+"], questions=cuts, neg_risk=False)
    for k, (yes, no) in enumerate(markets):  # cheaper the further apart: distinct profits
        b.book(yes, [], [(0.30 - 0.01 * k, 50)])
        b.book(no, [], [(0.60 - 0.01 * k, 50)])
    assert len({b.market.instruments[y].meta["event_id"] for y, _ in markets}) == 1
    scanner = CorrelationScanner(CorrelationSettings(max_per_event=2))
    everything = CorrelationScanner(CorrelationSettings(max_per_event=10)).scan(b.market, 1)
    assert len(everything) == 3 and len(scanner.scan(b.market, 1)) == 2
    kept = scanner.scan(b.market, 1)
    assert kept == everything[:2] and {o.event_id for o in kept} == {"G"}
