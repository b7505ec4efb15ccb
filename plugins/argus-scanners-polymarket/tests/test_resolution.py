"""Resolution scanner: constructed books against hand computations, fair books give nothing,
and the bundled FOMC July 2024 prints before and after the decision."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from argus_scanners_polymarket.common import RESEARCH, lane_of
from argus_scanners_polymarket.config import ResolutionSettings
from argus_scanners_polymarket.fixtures import (
    MarketBuilder,
    data_dir,
    fomc_market,
    fomc_markets,
    fomc_prints,
)
from argus_scanners_polymarket.resolution import ResolutionScanner

from argus_core import BookStatus, FeeSchedule, Side

D = Decimal
H = 3600 * 10**9
NOW = 1_000 * H
ONE_PCT = FeeSchedule(taker_bps=D(100))  # 1% of notional per taker fill


def _built() -> tuple[MarketBuilder, dict[str, list[tuple[str, str]]]]:
    b = MarketBuilder(ONE_PCT)
    ev = {}
    ev["R"] = b.event("R", ["A", "B"], end_ts_ns=NOW - H)  # ended; A resolved YES
    (a, a_no), (bb, b_no) = ev["R"]
    b.book(a, [(0.96, 10)], [(0.97, 100), (0.99, 50), (0.995, 10)], ts_ns=NOW)
    b.book(a_no, [], [(0.02, 100)], ts_ns=NOW)
    b.book(bb, [], [(0.02, 100)], ts_ns=NOW)
    b.settle(a, 1)
    b.settle(a_no, 0)
    b.settle(bb, 0)
    b.settle(b_no, 1)  # no book: nothing to buy
    ev["F"] = b.event("F", ["X", "Y"], end_ts_ns=NOW + 10 * H)  # near-certain, 10h left
    (x, _), (y, _) = ev["F"]
    b.book(x, [(0.96, 50)], [(0.97, 200)], ts_ns=NOW)
    b.book(y, [(0.02, 50)], [(0.03, 200)], ts_ns=NOW)
    ev["G"] = b.event("G", ["P"], end_ts_ns=NOW + 500 * H)  # near-certain, but 500h left
    (p, _), = ev["G"]
    b.book(p, [(0.97, 50)], [(0.98, 200)], ts_ns=NOW)
    ev["S"] = b.event("S", ["Q"], end_ts_ns=NOW - H)  # resolved, but its book is stale
    (q, _), = ev["S"]
    b.book(q, [], [(0.90, 100)], ts_ns=NOW)
    b.settle(q, 1)
    b.market.apply(BookStatus(q, NOW, False, "websocket disconnected"))
    return b, ev


def test_hand_computed_resolved_and_near_certain() -> None:
    b, ev = _built()
    s = ResolutionSettings(min_edge=D("0.001"))
    opps = {o.kind + ":" + o.event_id: o for o in ResolutionScanner(s).scan(b.market, NOW)}
    assert set(opps) == {"resolved:R", "near_certain:F"}

    res = opps["resolved:R"]
    # level 1: 1 - 0.97 - 0.0097 (1% fee) = 0.0203 >= 0.001; level 2: 1 - 0.99 - 0.0099 =
    # 0.0001 < min_edge 0.001: stop.  100 shares, fee 0.97
    assert res.max_size == D(100) and res.costs == D("0.97")
    assert res.expected_profit == D(100) - D(97) - D("0.97") == D("2.03")
    assert res.edge_per_unit == D("0.0203")
    (leg,) = res.legs
    assert (leg.instrument_id, leg.side, leg.limit_price, leg.quantity) == (
        ev["R"][0][0], Side.BUY, D("0.97"), D(100))
    # research: the core's market gate refuses orders on a settled token (round 40)
    assert not res.risk_free and lane_of(res) == RESEARCH
    assert "the core refuses orders on a settled instrument" in res.reason
    assert res.opportunity_id == f"resolution:resolved:{ev['R'][0][0]}:{NOW}"

    near = opps["near_certain:F"]
    # 200 at 0.97, 1% fee: 200 - 194 - 1.94; horizon 10h + 1h redemption delay
    assert near.max_size == D(200) and near.expected_profit == D("4.06")
    assert not near.risk_free and lane_of(near) == RESEARCH
    assert "11.0h" in near.reason


def test_without_min_edge_the_thin_second_level_is_taken() -> None:
    b, _ = _built()
    opps = {o.kind: o for o in ResolutionScanner().scan(b.market, NOW) if o.event_id == "R"}
    res = opps["resolved"]
    # + 50 at 0.99 (edge 0.0001/share): fees 0.97 + 0.495
    assert res.max_size == D(150) and res.costs == D("1.465")
    assert res.expected_profit == D(150) - D("146.5") - D("1.465") == D("2.035")
    assert res.legs[0].limit_price == D("0.99")


def test_annualised_threshold_and_size_cap() -> None:
    b, _ = _built()
    # near_certain:F earns 0.0203 / 0.9797 over 11h = 16.50 a year (simple); 17 excludes it
    ann = D("0.0203") / D("0.9797") * D(8760) / D(11)
    assert D(16) < ann < D(17)
    kinds = {o.kind for o in ResolutionScanner(ResolutionSettings(
        min_annualized_return=D(17))).scan(b.market, NOW)}
    assert kinds == {"resolved"}  # resolved: 0.0203/0.9797 over 1h = 181.5 a year
    capped = ResolutionScanner(ResolutionSettings(max_size=D(30))).scan(b.market, NOW)
    assert {o.max_size for o in capped} == {D(30)}


def test_fair_books_give_nothing() -> None:
    b = MarketBuilder(ONE_PCT)
    (a, a_no), (bb, _) = b.event("R", ["A", "B"], end_ts_ns=NOW + 2 * H)
    b.book(a, [(0.985, 10)], [(0.991, 100)], ts_ns=NOW)  # 1 - 0.991 - 0.00991 < 0
    b.book(bb, [(0.40, 10)], [(0.45, 100)], ts_ns=NOW)  # far from certain
    b.settle(a, 1)
    b.book(a_no, [], [(0.01, 100)], ts_ns=NOW)
    b.settle(a_no, 0)
    assert ResolutionScanner().scan(b.market, NOW) == []


def test_rescanning_an_unchanged_book_keeps_the_id() -> None:
    b, _ev = _built()
    first = {o.opportunity_id for o in ResolutionScanner().scan(b.market, NOW)}
    again = {o.opportunity_id for o in ResolutionScanner().scan(b.market, NOW + 5)}
    assert first == again


FOMC = data_dir() / "fomc_timeseries"
needs_data = pytest.mark.skipif(not FOMC.is_dir(), reason="bundled Polymarket data missing")


def _utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())


@needs_data
def test_fomc_july_2024_after_the_decision_resolved_tokens_at_0999() -> None:
    """After the 31 Jul 2024 decision (no change) the winners' last prints are 0.999 (sizes
    400, 999.99, 100, 93): with the resolution reported and no fees, each is 0.001/share
    below its payout, flagged in the research lane (the core refuses orders on a settled
    token); the losers (settled 0) give nothing."""
    markets = [m for m in fomc_markets() if m.event_slug == "fed-interest-rates-july-2024"]
    prints = fomc_prints([FOMC / "Fed_Interest_Rates_2024_07_July.csv"])
    market = fomc_market(markets, prints, None, settle=True)
    opps = ResolutionScanner().scan(market, market.now_ns)
    winners = {f"polymarket:{m.yes}" if m.outcome_yes == 1 else f"polymarket:{m.no}": m.title
               for m in markets}
    got = {o.legs[0].instrument_id: o for o in opps}
    assert set(got) == set(winners)
    sizes = {"No Change": D(400), "25 bps decrease": D("999.99"),
             "50+ bps decrease": D(100), "25+ bps increase": D(93)}
    for iid, o in got.items():
        qty = sizes[winners[iid]]
        assert o.kind == "resolved" and not o.risk_free and lane_of(o) == RESEARCH
        assert o.max_size == qty and o.costs == 0
        assert o.expected_profit == qty - qty * D("0.999")
        assert o.legs[0].limit_price == D("0.999")


@needs_data
def test_fomc_july_2024_six_hours_before_the_decision_near_certain() -> None:
    """At 12:00 UTC on 31 Jul 2024 (decision 18:00 UTC), the last prints at or above 0.95+1
    tick are: NO of "25 bps decrease" 0.95800000078792 (1190.476189 shares), YES of "No
    Change" 0.967999986365105 (25.816114), NO of "50+ bps decrease" 0.996999926919891
    (10.030089), NO of "25+ bps increase" 0.996 (900) -- all four are the tokens that
    did resolve 1; reported in the research lane (7h horizon: 6h + 1h redemption)."""
    markets = [m for m in fomc_markets() if m.event_slug == "fed-interest-rates-july-2024"]
    prints = fomc_prints([FOMC / "Fed_Interest_Rates_2024_07_July.csv"])
    at = _utc(2024, 7, 31, 12)
    market = fomc_market(markets, prints, at,
                         end_s={"fed-interest-rates-july-2024": _utc(2024, 7, 31, 18)})
    opps = ResolutionScanner().scan(market, at * 10**9)
    by_title = {}
    for m in markets:
        for tok, side in ((m.yes, "YES"), (m.no, "NO")):
            by_title[f"polymarket:{tok}"] = f"{side} {m.title}"
    got = {by_title[o.legs[0].instrument_id]: o for o in opps}
    want = {"NO 25 bps decrease": ("0.95800000078792", "1190.47"),
            "YES No Change": ("0.967999986365105", "25.81"),
            "NO 50+ bps decrease": ("0.996999926919891", "10.03"),
            "NO 25+ bps increase": ("0.996", "900")}
    assert set(got) == set(want)
    for name, (price, qty) in want.items():
        o = got[name]
        assert o.kind == "near_certain" and not o.risk_free and lane_of(o) == RESEARCH
        assert o.max_size == D(qty)
        assert o.expected_profit == D(qty) * (1 - D(price))
        assert "7.0h" in o.reason
    resolved_one = {f"polymarket:{m.yes}" if m.outcome_yes == 1 else f"polymarket:{m.no}"
                    for m in markets}
    assert {o.legs[0].instrument_id for o in opps} == resolved_one
