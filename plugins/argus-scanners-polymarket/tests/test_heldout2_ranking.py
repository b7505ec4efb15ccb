"""Second held-out audit (issue 15) of the ranking and the signals it reads: published
``"ofi"`` / inventory signals that are NaN or infinite (the core does not validate a
``Signal``'s value), the same opportunity found by two scanners, persistence across a
checkpoint and restart, lanes when the thresholds are met exactly, and an instrument
replaced mid-run.  Every case runs the incremental path and the reference loop."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import attrs
import pytest
from argus_scanners_polymarket.config import (
    CorrelationSettings,
    PmScannersSettings,
    RankingSettings,
    ValueSettings,
)
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.maker import MakerScanner
from argus_scanners_polymarket.ranking import RankedScanner
from argus_scanners_polymarket.resolution import ResolutionScanner
from argus_scanners_polymarket.scoring import reported_confidence
from argus_scanners_polymarket.value import BaselineForecaster

from argus_core import Forecast, Forecaster, Instrument, MarketState, Signal

D = Decimal
BAD = [math.nan, math.inf, -math.inf]
PATHS = pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "reference"])


class Fixed(Forecaster):
    """P = 0.9 for every token, confidence 0.9."""

    name = "fixed"

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int) -> Forecast:
        return Forecast(p_win=0.9, confidence=0.9)


def _two_resolved() -> tuple[MarketBuilder, str, str]:
    """Two tokens resolved at 1, asks 0.40 and 0.41 (100 each): two findings (research
    since round 40: the core refuses orders on a settled token)."""
    b = MarketBuilder()
    (a, _), (c, _) = b.event("E", ["A", "C"], neg_risk=False)
    b.book(a, bids=[(0.30, 100)], asks=[(0.40, 100)])
    b.book(c, bids=[(0.30, 100)], asks=[(0.41, 100)])
    b.settle(a, 1)
    b.settle(c, 1)
    b.market.forecasters = {"baseline": BaselineForecaster()}
    return b, a, c


@PATHS
@pytest.mark.parametrize("bad", BAD)
def test_a_published_ofi_that_is_not_a_number_is_no_reading(incremental: bool,
                                                            bad: float) -> None:
    """Before: a NaN ``"ofi"`` signal on A made its findings' scores NaN (the reference
    sorted one first), +inf ranked A's findings first whatever their edge, -inf last.
    Now the signal is no reading (0): every score is finite and equals the score with no
    signal at all."""
    clean, a, _c = _two_resolved()
    want = {o.opportunity_id: o.score
            for o in RankedScanner(incremental=incremental).scan(clean.market, 2)}
    b, a, _c = _two_resolved()
    b.market.apply(Signal("ofi", a, 1, bad))
    out = RankedScanner(incremental=incremental).scan(b.market, 2)
    assert all(o.score is not None and math.isfinite(o.score) for o in out)
    assert {o.opportunity_id: o.score for o in out} == want
    assert out[0].kind == "resolved" and out[0].legs[0].instrument_id.endswith("E-1-y")


@PATHS
def test_a_published_ofi_outside_its_range_is_clipped(incremental: bool) -> None:
    """An imbalance is in [-1, 1]: a published 50 counts as 1."""
    scores = []
    for value in (1.0, 50.0):
        b, a, _c = _two_resolved()
        b.market.apply(Signal("ofi", a, 1, value))
        ranked = RankedScanner(incremental=incremental)
        ranked.scan(b.market, 2)
        scores.append(sorted(s.score for s in ranked.scores.values()))
    assert scores[0] == scores[1]


@PATHS
@pytest.mark.parametrize("bad", BAD)
def test_an_inventory_signal_that_is_not_a_number_quotes_nothing(incremental: bool,
                                                                 bad: float) -> None:
    """Before: decimal.InvalidOperation out of the maker's scan (inside ``ranked``: every
    maker finding of the scan lost).  Now that token is not quoted (its inventory is
    unknown); the other token still is."""
    b = MarketBuilder()
    (a, _), (c, _) = b.event("E", ["A", "C"], neg_risk=False)
    b.book(a, bids=[(0.30, 100)], asks=[(0.40, 100)])
    b.book(c, bids=[(0.30, 100)], asks=[(0.40, 100)])
    settings = PmScannersSettings()
    b.market.apply(Signal(settings.maker.inventory_signal, a, 1, bad))
    out = MakerScanner(settings, incremental=incremental).scan(b.market, 2)
    assert sorted((o.legs[0].instrument_id, o.kind) for o in out) == [
        (c, "maker_ask"), (c, "maker_bid")]


def test_a_reported_confidence_is_a_number_in_the_unit_interval() -> None:
    assert reported_confidence(math.nan, "value") == 0.1  # the kind's default
    assert reported_confidence(math.inf, "latency") == 0.3
    assert reported_confidence("x", "spike_fade") == 0.3
    assert reported_confidence(1.7, "value") == 1.0
    assert reported_confidence(-0.2, "value") == 0.0
    assert reported_confidence(0.42, "value") == 0.42
    assert reported_confidence(None, "near_certain") == 0.8


def _value_settings(**ranked: object) -> PmScannersSettings:
    ranked.setdefault("scanners", ["value", "resolution"])
    return PmScannersSettings(
        value=ValueSettings(forecaster="fixed", executable_min_edge=D("0.01"),
                            executable_min_confidence=0.5),
        ranked=RankingSettings(**ranked))  # type: ignore[arg-type]  # a test's keywords


def _nested() -> tuple[MarketBuilder, str, str]:
    """A cut of 50+ bps (A) implies one of at least 25 bps (B): YES(B) asked 0.40 and NO(A)
    0.50 (100 each), a proven basket at 0.90; each ask is also ``value``'s (P 0.9)."""
    b = MarketBuilder()
    (_a_yes, a_no), (b_yes, _b_no) = b.event(
        "E", ["A", "B"], neg_risk=False,
        questions=["Will the Fed cut rates by 50 bps or more at the March 2026 meeting?",
                   "Will the Fed cut rates by at least 25 bps at the March 2026 meeting?"])
    b.book(b_yes, bids=[(0.30, 100)], asks=[(0.40, 100)])
    b.book(a_no, bids=[(0.40, 100)], asks=[(0.50, 100)])
    b.market.forecasters = {"fixed": Fixed()}
    return b, b_yes, a_no


@PATHS
def test_the_same_opportunity_from_two_scanners_is_executable_once(incremental: bool) -> None:
    """YES(B)'s ask at 0.40 and NO(A)'s at 0.50 (100 shares each) are ``correlation``'s
    proven basket (risk-free with ``trade_proven``) and each ``value``'s (P 0.9,
    executable by its thresholds).  Before: all executable, so the runner sent two IOC
    buys for the same 100 shares.  Now the better-ranked one keeps the executable lane,
    the others are research naming it (and their scores say so too).  (This test used a
    resolved token's ask before round 40; a settled token is research now.)"""
    b, b_yes, a_no = _nested()
    settings = _value_settings(scanners=["value", "correlation"])
    settings = attrs.evolve(settings, correlation=CorrelationSettings(trade_proven=True))
    ranked = RankedScanner(settings, incremental=incremental)
    first, *rest = ranked.scan(b.market, 5)
    assert (first.scanner, first.lane, first.risk_free) == ("correlation", "executable", True)
    assert sorted(o.legs[0].instrument_id for o in rest) == sorted([b_yes, a_no])
    for second in rest:
        assert (second.scanner, second.lane, second.risk_free) == ("value", "research", False)
        assert second.reason.startswith(
            f"lane=research: duplicate: correlation's {first.opportunity_id}")
        assert ranked.scores[second.opportunity_id].lane == "research"
    assert ranked.scores[first.opportunity_id].lane == "executable"
    # alone (correlation not run), value's findings are executable: the rule is the duplicate
    alone = RankedScanner(_value_settings(scanners=["value"]), incremental=incremental)
    assert [o.lane for o in alone.scan(b.market, 5)] == ["executable", "executable"]


@PATHS
def test_different_tokens_are_not_duplicates(incremental: bool) -> None:
    b, _b_yes, _a_no = _nested()
    out = RankedScanner(_value_settings(scanners=["value"]),
                        incremental=incremental).scan(b.market, 2)
    assert sorted(o.lane for o in out if o.kind == "value") == ["executable", "executable"]


@PATHS
def test_persistence_is_kept_across_a_restart(incremental: bool) -> None:
    """``executable_min_persistence = 3``: research, research, executable; then a
    checkpoint (JSON), a new scanner restored from it: still executable.  Before: the
    streaks were not in the state, so a restart sent it back to research for two scans."""
    b = MarketBuilder()
    (a, _), = b.event("E", ["A"], neg_risk=False)
    b.book(a, bids=[(0.30, 100)], asks=[(0.40, 100)])
    b.market.forecasters = {"fixed": Fixed()}
    settings = _value_settings(scanners=["value"], executable_min_persistence=3)
    ranked = RankedScanner(settings, incremental=incremental)
    assert [ranked.scan(b.market, 10 + k)[0].lane for k in range(3)] == [
        "research", "research", "executable"]
    state = json.loads(json.dumps(ranked.get_state()))
    again = RankedScanner(settings, incremental=incremental)
    again.set_state(state)
    assert [again.scan(b.market, 20 + k)[0].lane for k in range(2)] == [
        "executable", "executable"]
    assert again.scores[again.scan(b.market, 30)[0].opportunity_id].persistence == 1.0
    # a state from before this change (no streaks) or a malformed one starts afresh
    for old in ({}, {"ranked_streaks": [["value", "value", [[a, "sideways"]], 3], "x"]}):
        fresh = RankedScanner(settings, incremental=incremental)
        fresh.set_state(old)
        assert fresh.scan(b.market, 40)[0].lane == "research"


@PATHS
def test_lane_thresholds_met_exactly_are_met(incremental: bool) -> None:
    b = MarketBuilder()
    (a, _), = b.event("E", ["A"], neg_risk=False)
    b.book(a, bids=[(0.30, 100)], asks=[(0.40, 100)])
    b.market.forecasters = {"fixed": Fixed()}
    probe = RankedScanner(_value_settings(scanners=["value"]), incremental=incremental)
    score = probe.scan(b.market, 1)[0].score
    assert score is not None
    exact = RankedScanner(_value_settings(
        scanners=["value"], executable_min_score=score, executable_min_confidence=0.9,
        executable_min_persistence=1), incremental=incremental)
    assert exact.scan(b.market, 1)[0].lane == "executable"
    above = RankedScanner(_value_settings(
        scanners=["value"], executable_min_score=math.nextafter(score, 2.0)),
        incremental=incremental)
    assert above.scan(b.market, 1)[0].lane == "research"


def test_an_instrument_replaced_mid_run_is_seen_by_the_incremental_scan() -> None:
    b = MarketBuilder()
    (a, _), = b.event("E", ["A"], neg_risk=False)
    b.book(a, bids=[(0.30, 100)], asks=[(0.40, 100)])
    b.settle(a, 1)
    scanner = ResolutionScanner()
    assert [o.kind for o in scanner.scan(b.market, 2)] == ["resolved"]
    old = b.market.instruments[a]
    b.market.add_instruments([Instrument(
        old.venue, old.symbol, kind="binary", tick_size=old.tick_size,
        lot_size=old.lot_size, min_size=old.min_size,
        meta={**old.meta, "acceptingOrders": False})])
    assert ResolutionScanner(incremental=False).scan(b.market, 3) == []
    assert scanner.scan(b.market, 3) == []
