"""``ranked``: the score's terms by hand (edge, capacity, confidence, persistence, OFI,
competition), the lane rule and its reasons, ranking order; the FOMC July 2024 prints."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from argus_scanners_polymarket.common import EXECUTABLE, RESEARCH, lane_of
from argus_scanners_polymarket.config import PmScannersSettings, RankingSettings, ValueSettings
from argus_scanners_polymarket.fixtures import (
    MarketBuilder,
    data_dir,
    fomc_market,
    fomc_markets,
    fomc_prints,
)
from argus_scanners_polymarket.ranking import RankedScanner
from argus_scanners_polymarket.value import BaselineForecaster

from argus_core import ConfigError, Forecast, Forecaster, MarketState

D = Decimal
H = 3600 * 10**9
NOW = 1_000 * H
LOG1001 = math.log10(1001)


class Fixed(Forecaster):
    """P = 0.58 for one token, confidence 0.6."""

    name = "fixed"

    def __init__(self, iid: str) -> None:
        self.iid = iid

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        return Forecast(p_win=0.58, confidence=0.6) if instrument_id == self.iid else None


def _market(v_bids: list[tuple[float, float]] | None = None) -> tuple[MarketBuilder, str, str]:
    b = MarketBuilder()
    (a, _), _ = b.event("R", ["A", "B"], end_ts_ns=NOW - H)
    b.book(a, [], [(0.97, 100)], ts_ns=NOW)
    b.settle(a, 1)                                  # resolved: 0.03 x 100, research
    ((v, _),) = b.event("V", ["T"], neg_risk=False)
    b.book(v, v_bids or [], [(0.45, 100), (0.50, 50)], ts_ns=NOW)
    b.market.forecasters = {"fixed": Fixed(v)}
    return b, a, v


def _settings(scanners: list[str] | None = None, gate: tuple[Decimal, float] | None = None,
              **ranked: Any) -> PmScannersSettings:
    """Components (default resolution + value, value asking ``fixed``; ``gate``: value's
    executable edge and confidence) and ranking knobs."""
    edge, confidence = gate if gate else (None, None)
    return PmScannersSettings(
        value=ValueSettings(forecaster="fixed", executable_min_edge=edge,
                            executable_min_confidence=confidence),
        ranked=RankingSettings(scanners=scanners or ["resolution", "value"], **ranked))


def test_score_terms_and_lanes_by_hand() -> None:
    b, a, v = _market()
    ranked = RankedScanner(_settings())
    # value (edge 0.113, clipped to 1) outscores the resolved one: best score first
    val, res = ranked.scan(b.market, NOW)
    assert res.legs[0].instrument_id == a and val.legs[0].instrument_id == v
    r, w = ranked.scores[res.opportunity_id], ranked.scores[val.opportunity_id]
    # resolution: edge 0.03/0.05; notional 97; confidence 1 (the kind's: a settled token
    # is research, the core refuses orders on it); 1 scan of 5; no flow; alone
    assert (r.edge, r.confidence, r.persistence, r.ofi, r.competition) == (
        pytest.approx(0.6), 1.0, 0.2, 0.0, 0.0)
    assert r.capacity == pytest.approx(math.log10(98) / LOG1001)
    assert r.score == pytest.approx(0.35 * 0.6 + 0.15 * math.log10(98) / LOG1001 + 0.25 + 0.02)
    assert (r.lane, r.why) == (RESEARCH, "resolution reports it as research")
    assert lane_of(res) == RESEARCH and not res.risk_free
    assert res.reason.startswith("lane=research: resolution reports it as research; score 0.")
    # value: 150 shares, edge 17/150 = 0.1133 (clipped to 1); notional 0.50 * 150 = 75
    assert (w.edge, w.confidence) == (1.0, 0.6)
    assert w.score == pytest.approx(0.35 + 0.15 * math.log10(76) / LOG1001 + 0.15 + 0.02)
    assert lane_of(val) == RESEARCH and not val.risk_free
    assert val.reason.startswith("lane=research: value reports it as research; score ")
    assert "fixed says P=0.58" in val.reason  # the scanner's own reason follows


def test_persistence_ofi_and_competition() -> None:
    b, _a, v = _market([(0.30, 100)])
    ranked = RankedScanner(_settings(scanners=["value", "maker"]))
    first = ranked.scan(b.market, NOW)
    # value + maker bid 0.31 + maker ask 0.44 on one token: two others each -> X = 2/3
    assert sorted(o.kind for o in first) == ["maker_ask", "maker_bid", "value"]
    for o in first:
        sc = ranked.scores[o.opportunity_id]
        assert sc.competition == pytest.approx(2 / 3) and sc.persistence == 0.2
        if o.kind.startswith("maker_"):
            assert lane_of(o) == RESEARCH and "needs the maker lifecycle" in o.reason
    # 60 shares bid added at the touch: e = +60, imbalance +1 for the next scan
    b.book(v, [(0.30, 160)], [(0.45, 100), (0.50, 50)], ts_ns=NOW + 1)
    second = {o.kind: ranked.scores[o.opportunity_id] for o in ranked.scan(b.market, NOW + 1)}
    assert second["value"].ofi == 1.0 and second["maker_bid"].ofi == 1.0
    assert second["maker_ask"].ofi == -1.0
    assert {s.persistence for s in second.values()} == {0.4}


def test_executable_only_through_thresholds() -> None:
    gate = (D("0.1"), 0.5)
    b, _a, _v = _market()
    ranked = RankedScanner(_settings(scanners=["value"], gate=gate))
    (o,) = ranked.scan(b.market, NOW)  # value's own gate met, no ranking thresholds
    assert lane_of(o) == EXECUTABLE and not o.risk_free
    assert "value's thresholds and the ranking's met" in o.reason
    ranked = RankedScanner(_settings(scanners=["value"], gate=gate,
                                     executable_min_persistence=2))
    (o,) = ranked.scan(b.market, NOW)
    assert lane_of(o) == RESEARCH and "seen 1 scans < 2" in o.reason
    (o,) = ranked.scan(b.market, NOW + 1)
    assert lane_of(o) == EXECUTABLE
    for thresholds, needle in (({"executable_min_score": 0.99}, "score 0."),
                               ({"executable_min_confidence": 0.7}, "confidence 0.6 < 0.7")):
        (o,) = RankedScanner(_settings(scanners=["value"], gate=gate,
                                       **thresholds)).scan(b.market, NOW)
        assert lane_of(o) == RESEARCH and needle in o.reason


def test_weights_reorder_and_unknown_components_are_refused() -> None:
    b, a, v = _market()
    only_capacity = _settings(w_edge=0, w_confidence=0, w_persistence=0, w_ofi=0,
                              w_competition=0)
    first = RankedScanner(only_capacity).scan(b.market, NOW)[0]
    assert first.legs[0].instrument_id == a  # notional 97 > 75
    only_edge = _settings(w_capacity=0, w_confidence=0, w_persistence=0, w_ofi=0,
                          w_competition=0)
    assert RankedScanner(only_edge).scan(b.market, NOW)[0].legs[0].instrument_id == v
    with pytest.raises(ConfigError, match=r"unknown \['nope', 'ranked'\]"):
        RankedScanner(_settings(scanners=["value", "nope", "ranked"]))


FOMC = data_dir() / "fomc_timeseries"
needs_data = pytest.mark.skipif(not FOMC.is_dir(), reason="bundled Polymarket data missing")


@needs_data
def test_fomc_july_2024_after_the_decision_all_components() -> None:
    """Every component over the resolved July 2024 event: only the four resolved winners
    (research: the core refuses orders on a settled token); the baseline value and the
    maker find nothing on one-tick (and settled) books; the ranking keeps them research."""
    markets = [m for m in fomc_markets() if m.event_slug == "fed-interest-rates-july-2024"]
    prints = fomc_prints([FOMC / "Fed_Interest_Rates_2024_07_July.csv"])
    market = fomc_market(markets, prints, None, settle=True)
    market.forecasters = {"baseline": BaselineForecaster()}
    ranked = RankedScanner(PmScannersSettings())
    assert {c.name for c in ranked.components} == {
        "resolution", "correlation", "stale", "spike", "value", "maker", "latency"}
    opps = ranked.scan(market, market.now_ns)
    winners = {f"polymarket:{m.yes}" if m.outcome_yes == 1 else f"polymarket:{m.no}"
               for m in markets}
    assert {o.legs[0].instrument_id for o in opps} == winners
    # research (round 40): the core's market gate refuses orders on a settled token
    assert all(o.kind == "resolved" and lane_of(o) == RESEARCH and not o.risk_free
               and "resolution reports it as research; score" in o.reason for o in opps)
    scores = [ranked.scores[o.opportunity_id].score for o in opps]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("tail", ["plain reason", "a reason holding the separator \x1f here"])
def test_batch_formatted_reasons_equal_the_reference_f_string(tail: str) -> None:
    """``ScoreColumns`` formats every rescored reason in one ``%`` call split at a separator;
    its text equals the reference's f-string (``ranking._score``) for each row, signed
    zeros and rounding edges included, and a finding's own text holding the separator
    falls back to one row at a time with the same result."""
    from argus_scanners_polymarket.scoring import ScoreColumns

    s = RankingSettings(w_confidence=0.3, w_ofi=0.125)
    cols = ScoreColumns(s, RankedScanner(PmScannersSettings(ranked=s))._lane)
    rows = [("lane=research: why; score ", 0.41585, " = 0.35*edge 0.204 + 0.15*cap 0.830",
             c, p, ofi, x, tail)
            for c, p, ofi, x in [(0.8, 0.2, 0.0, 0.0), (-0.0, 1.0, -0.0, 0.05),
                                 (0.0005, 0.6, -0.00049, 0.2), (1.0, 0.4, 0.99951, 1.0)]]
    rows += [("lane=research: why; score ", 0.5, " = e", c, 0.2, 0.0, x, tail)
             for c, x in [(0.8, 0.0), (0.0, -0.0), (0.0005, 0.05), (0.8, 0.0)]]
    for batch in (rows[:4], rows[4:], rows):  # -0.0 in one column or another; repeats
        pre, sc, ek, c, p, ofi, x, t = (list(col) for col in zip(*batch, strict=True))
        got = cols._reasons(pre, sc, ek, cols._fixed3(np.array(c)), cols._fixed3(np.array(p)),
                            ofi, cols._fixed3(np.array(x)), t)
        want = [f"{pre}{sc:.4f}{ek} + {s.w_confidence:g}*conf {c:.3f} + {s.w_persistence:g}*"
                f"persist {p:.3f} + {s.w_ofi:g}*ofi {ofi:+.3f} - {s.w_competition:g}*comp "
                f"{x:.3f}; {t}" for pre, sc, ek, c, p, ofi, x, t in batch]
        assert got == want
    assert "conf -0.000" in want[1] and "ofi -0.000" in want[1] and "comp -0.000" in want[5]


@pytest.mark.parametrize("seed", range(6))
def test_row_gathers_equal_the_per_row_comprehension(seed: int) -> None:
    """``scoring._gather`` / ``_pick`` (one ``itemgetter`` call per list) give what the
    per-row comprehensions they replaced give: each list at ``src``, None where a row is
    new (-1), for empty, one-row, all-new and no-new cases."""
    from argus_scanners_polymarket.scoring import _gather, _pick

    rng = np.random.default_rng(seed)
    for _ in range(40):
        n_old, n = int(rng.integers(0, 6)), int(rng.integers(0, 7))
        olds = [[f"{name}{j}" for j in range(n_old)] for name in "abc"]
        p_new = rng.choice([0.0, 0.3, 1.0])
        src = np.array([-1 if n_old == 0 or rng.random() < p_new
                        else int(rng.integers(0, n_old)) for _ in range(n)], dtype=np.int64)
        miss = np.flatnonzero(src < 0)
        got = _gather(src, miss, *olds)
        assert got == [[old[j] if j >= 0 else None for j in src.tolist()] for old in olds]
        order = rng.permutation(n).tolist()
        assert _pick(got[0], order) == [got[0][i] for i in order]
