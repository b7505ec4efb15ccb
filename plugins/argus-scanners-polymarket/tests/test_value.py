"""``value`` scanner and ``baseline`` forecaster: hand-computed walks with fees, lanes and
their gate, fair books give nothing, planted mispricings are found; the bundled FOMC
July 2024 prints with the baseline (nothing) and with an oracle of the resolutions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from argus_scanners_polymarket import plugin
from argus_scanners_polymarket.common import EXECUTABLE, RESEARCH, lane_of
from argus_scanners_polymarket.config import BaselineSettings, ValueSettings
from argus_scanners_polymarket.fixtures import (
    MarketBuilder,
    data_dir,
    fomc_market,
    fomc_markets,
    fomc_prints,
)
from argus_scanners_polymarket.value import BaselineForecaster, ValueScanner

from argus_core import ConfigError, FeeSchedule, Forecast, Forecaster, MarketState, Side, Trade

D = Decimal
S = 10**9
NOW = 5_000 * S
ONE_PCT = FeeSchedule(taker_bps=D(100))


class Fixed(Forecaster):
    """P = a fixed number per token (others: no view)."""

    name = "fixed"

    def __init__(self, p: dict[str, float], confidence: float = 0.6) -> None:
        self.p, self.confidence = p, confidence

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        p = self.p.get(instrument_id)
        return None if p is None else Forecast(p_win=p, confidence=self.confidence)


def _book(fees: FeeSchedule | None = None) -> tuple[MarketBuilder, str, str]:
    b = MarketBuilder(fees)
    ((y, n),) = b.event("V", ["T"], neg_risk=False)
    b.book(y, [(0.40, 100)], [(0.45, 100), (0.50, 50), (0.56, 100)], ts_ns=NOW)
    b.book(n, [(0.55, 100)], [(0.60, 100)], ts_ns=NOW)
    return b, y, n


def test_hand_computed_walk_with_fees_and_research_lane() -> None:
    b, y, n = _book(ONE_PCT)
    b.market.forecasters = {"fixed": Fixed({y: 0.58, n: 0.42})}
    (opp,) = ValueScanner(ValueSettings(forecaster="fixed")).scan(b.market, NOW)
    # 0.58 - 0.45 - 0.0045 = 0.1255; 0.58 - 0.50 - 0.005 = 0.075; 0.58 - 0.56 - 0.0056 =
    # 0.0144 < 0.02: stop.  150 shares for 70, fees 0.45 + 0.25
    assert opp.max_size == D(150) and opp.costs == D("0.70")
    assert opp.expected_profit == D("0.58") * 150 - D(70) - D("0.70") == D("16.3")
    assert opp.edge_per_unit == D("0.10866666")
    assert [(leg.instrument_id, leg.side, leg.limit_price, leg.quantity) for leg in opp.legs] \
        == [(y, Side.BUY, D("0.50"), D(150))]
    assert not opp.risk_free and lane_of(opp) == RESEARCH and opp.kind == "value"
    assert "confidence 0.6" in opp.reason


def test_executable_only_above_both_thresholds() -> None:
    b, y, _ = _book(ONE_PCT)
    gate = {"forecaster": "fixed", "executable_min_edge": D("0.1"),
            "executable_min_confidence": 0.5}
    for confidence, edge_min, lane in ((0.6, D("0.1"), EXECUTABLE), (0.4, D("0.1"), RESEARCH),
                                       (0.6, D("0.11"), RESEARCH)):
        b.market.forecasters = {"fixed": Fixed({y: 0.58}, confidence)}
        sc = ValueScanner(ValueSettings(**{**gate, "executable_min_edge": edge_min}))
        (opp,) = sc.scan(b.market, NOW)
        assert lane_of(opp) == lane and not opp.risk_free
        assert sc.confidences[opp.opportunity_id] == confidence
    b.market.forecasters = {"fixed": Fixed({y: 0.58})}
    (opp,) = ValueScanner(ValueSettings(forecaster="fixed",
                                        executable_min_edge=D("0.01"))).scan(b.market, NOW)
    assert lane_of(opp) == RESEARCH  # one threshold unset: never executable


def test_fair_books_give_nothing() -> None:
    b, y, n = _book(ONE_PCT)
    # forecasts at the mids, or just under the ask + fee + min_edge
    b.market.forecasters = {"fixed": Fixed({y: 0.425, n: 0.6 + 0.006 + 0.0199})}
    assert ValueScanner(ValueSettings(forecaster="fixed")).scan(b.market, NOW) == []
    b.market.forecasters = {"baseline": BaselineForecaster()}
    assert ValueScanner().scan(b.market, NOW) == []


def test_baseline_by_hand_and_a_planted_trade_above_the_ask() -> None:
    b, y, _ = _book()
    base = BaselineForecaster()
    f = base.forecast(y, b.market, NOW)
    assert f is not None and f.p_win == pytest.approx(0.425) and f.confidence == 0.1
    b.market.apply(Trade(y, NOW - 10 * S, "0.60", "30", Side.BUY))
    f = base.forecast(y, b.market, NOW)
    assert f is not None and f.p_win == pytest.approx((0.425 + 0.60) / 2)
    b.market.forecasters = {"baseline": base}
    (opp,) = ValueScanner().scan(b.market, NOW)
    # p = 0.5125: 0.5125 - 0.45 = 0.0625 >= 0.02; 0.5125 - 0.50 = 0.0125 < 0.02
    assert opp.legs[0].instrument_id == y and opp.max_size == D(100)
    assert opp.expected_profit == D("6.25")
    # the trade is too old for a 5 s horizon, or stamped after the asked time: book mid only
    assert BaselineForecaster(BaselineSettings(max_trade_age_s=5)).forecast(
        y, b.market, NOW).p_win == pytest.approx(0.425)  # type: ignore[union-attr]  # never None here
    assert base.forecast(y, b.market, NOW - 20 * S) is None  # the book is newer too
    # no book, no trade: no view
    assert base.forecast("polymarket:none", b.market, NOW) is None


def test_unknown_forecaster_is_a_config_error_naming_the_registered_ones() -> None:
    b, _, _ = _book()
    b.market.forecasters = {"baseline": BaselineForecaster()}
    with pytest.raises(ConfigError, match=r"forecaster = 'ml' is not registered.*baseline"):
        ValueScanner(ValueSettings(forecaster="ml")).scan(b.market, NOW)


def test_baseline_is_registered_through_register_forecasters() -> None:
    got: dict[str, object] = {}
    plugin.register_forecasters(lambda name, factory: got.__setitem__(name, factory))
    assert set(got) == {"baseline"}
    made = got["baseline"](None)  # type: ignore[operator]  # a factory, typed object here
    assert isinstance(made, BaselineForecaster) and made.settings.confidence == 0.1


FOMC = data_dir() / "fomc_timeseries"
needs_data = pytest.mark.skipif(not FOMC.is_dir(), reason="bundled Polymarket data missing")


def _utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())


class Oracle(Forecaster):
    """Knows how every FOMC token resolved (a planted perfect forecast)."""

    name = "oracle"

    def __init__(self, payout: dict[str, float]) -> None:
        self.payout = payout

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        p = self.payout.get(instrument_id)
        return None if p is None else Forecast(p_win=p, confidence=1.0)


@needs_data
def test_fomc_july_2024_baseline_finds_nothing_and_an_oracle_finds_the_cheap_winners() -> None:
    """At 12:00 UTC on 31 Jul 2024 the baseline (each token's own one-tick book) finds
    nothing.  An oracle of the final prices finds the winners asked below 1 - 0.02: NO of
    "25 bps decrease" at 0.958 and YES of "No Change" at 0.968 (the other two winners are
    asked 0.997 and 0.996: under min_edge); no loser."""
    markets = [m for m in fomc_markets() if m.event_slug == "fed-interest-rates-july-2024"]
    prints = fomc_prints([FOMC / "Fed_Interest_Rates_2024_07_July.csv"])
    at = _utc(2024, 7, 31, 12)
    market = fomc_market(markets, prints, at)
    market.forecasters = {"baseline": BaselineForecaster()}
    assert ValueScanner().scan(market, at * S) == []
    payout = {f"polymarket:{tok}": float(out) for m in markets
              for tok, out in ((m.yes, m.outcome_yes), (m.no, m.outcome_no))}
    market.forecasters = {"oracle": Oracle(payout)}
    opps = ValueScanner(ValueSettings(forecaster="oracle")).scan(market, at * S)
    names = {f"polymarket:{m.no}": f"NO {m.title}" for m in markets}
    names.update({f"polymarket:{m.yes}": f"YES {m.title}" for m in markets})
    assert {names[o.legs[0].instrument_id] for o in opps} == {"NO 25 bps decrease",
                                                                "YES No Change"}
    assert all(lane_of(o) == RESEARCH and not o.risk_free for o in opps)


@needs_data
@pytest.mark.parametrize("month", ["2023_03_March", "2024_03_March", "2024_06_June"])
def test_fomc_months_baseline_finds_nothing_midway(month: str) -> None:
    path = FOMC / f"Fed_Interest_Rates_{month}.csv"
    prints = fomc_prints([path])
    tokens = {p[1] for p in prints}
    markets = [m for m in fomc_markets() if m.yes in tokens or m.no in tokens]
    at = (prints[0][0] + prints[-1][0]) // 2
    market = fomc_market(markets, prints, at, fees=ONE_PCT)
    market.forecasters = {"baseline": BaselineForecaster()}
    assert ValueScanner(ValueSettings(min_edge=D(0))).scan(market, at * S) == []
