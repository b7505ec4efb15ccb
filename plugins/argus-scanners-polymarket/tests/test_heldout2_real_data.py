"""Second held-out audit (issue 15): the recorded Gamma "Fed Decision in September?"
negRisk event (``shared/fixtures/polymarket_gamma_event_negrisk.json``) through the
Polymarket venue's own instrument builder and fee curves (``feeSchedule``: rate 0.05,
exponent 1, taker only; ticks 0.001 and 0.01 inside one event), each YES book at the
snapshot's ``bestBid`` / ``bestAsk`` and each NO book its mirror (negRisk books are one
book), 100 shares a level.  Every scanner, incremental and reference, and the negRisk
plugin: nothing on the recorded prices (checked by hand below), and a long rebalance
planted by moving one ask exactly as far as the venue's fees allow."""

from __future__ import annotations

import importlib
import json
from decimal import ROUND_DOWN
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_scanners_polymarket.config import PmScannersSettings
from argus_scanners_polymarket.plugin import SCANNERS
from argus_scanners_polymarket.value import BaselineForecaster

from argus_core import MarketState, Opportunity, OrderBook

FIXTURE = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / (
    "polymarket_gamma_event_negrisk.json")
pytestmark = pytest.mark.skipif(not FIXTURE.is_file(), reason="shared fixtures absent")
NOW = 1_786_000_000 * 10**9  # 2026-08-06, before the event's end (2026-09-16)


def _raw() -> dict[str, Any]:
    raw = json.loads(FIXTURE.read_text())
    return raw if isinstance(raw, dict) else raw[0]


def _state(asks: dict[str, float] | None = None) -> tuple[MarketState, dict[str, str]]:
    """The event as the venue builds it, books at the snapshot's touch (``asks``: YES asks
    replaced by outcome name); returns the state and outcome name -> YES instrument id."""
    pm = pytest.importorskip("argus_venue_polymarket.instruments")
    from argus_venue_polymarket.config import PolymarketSettings
    from argus_venue_polymarket.fees import PolymarketFeeSchedule
    from argus_venue_polymarket.schemas import GammaEvent

    raw = _raw()
    events, instruments = pm.build([GammaEvent.parse(raw)], PolymarketSettings())
    by_id = {i.id: i for i in instruments}
    market = MarketState(fees=lambda iid: PolymarketFeeSchedule.of(pm.fee_of(by_id[iid])))
    market.add_instruments(instruments)
    for ev in events:
        market.apply(ev)
    (ev,) = events
    yes_of = {}
    for m, o in zip(raw["markets"], ev.outcomes, strict=True):
        bid, ask = float(m["bestBid"]), float(m["bestAsk"])
        if o.name in (asks or {}):  # planted: the touch moved down, one tick wide
            ask = (asks or {})[o.name]
            bid = round(ask - float(market.instruments[o.yes_instrument_id].tick_size), 3)
        yes_of[o.name] = o.yes_instrument_id
        market.apply(OrderBook(o.yes_instrument_id, NOW, [(bid, 100.0)], [(ask, 100.0)]))
        market.apply(OrderBook(o.no_instrument_id, NOW, [(round(1 - ask, 3), 100.0)],
                               [(round(1 - bid, 3), 100.0)]))
    market.forecasters = {"baseline": BaselineForecaster()}
    return market, yes_of


def _every(market: MarketState) -> dict[str, list[Opportunity]]:
    from argus_scanner_negrisk.scanner import NegRiskScanner

    out = {"negrisk": NegRiskScanner().scan(market, NOW)}
    for name, (module, cls) in SCANNERS.items():
        for inc in (True, False):
            scanner = getattr(importlib.import_module(module), cls)(PmScannersSettings(),
                                                                  incremental=inc)
            for k in range(3):
                found = scanner.scan(market, NOW + k * 60 * 10**9)
            out[f"{name}{'' if inc else '/reference'}"] = found
    return out


def test_the_recorded_event_as_the_venue_builds_it() -> None:
    """Five outcomes, exhaustive (not augmented, every market accepting orders), ticks
    0.001 and 0.01, minimum size 5, the fee curve from ``feeSchedule``."""
    market, yes_of = _state()
    (ev,) = market.events.values()
    assert ev.neg_risk and ev.exhaustive and not ev.closed and len(ev.outcomes) == 5
    ticks = {name: market.instruments[iid].tick_size for name, iid in yes_of.items()}
    assert ticks == {"50+ bps decrease": D("0.001"), "25 bps decrease": D("0.001"),
                     "No change": D("0.01"), "25 bps increase": D("0.01"),
                     "50+ bps increase": D("0.001")}
    fee = market.fee_schedule(yes_of["No change"])
    assert fee.fee(D("0.69"), D(100), maker=False) == D("1.0695")  # 0.05 x 100 x .69 x .31
    assert fee.fee(D("0.69"), D(100), maker=True) == 0  # takerOnly


def test_nothing_on_the_recorded_prices() -> None:
    """By hand from the file: YES asks sum 0.003 + 0.014 + 0.69 + 0.31 + 0.005 = 1.022 (no
    long rebalance), bids 0.999 (selling YES gets less than 1), NO asks (1 - bid) sum
    4.001 against a payout of 4 (no short rebalance), every pair costs 1 + its spread; every
    spread is one tick (no maker quote inside it); no bid near certainty."""
    raw = _raw()
    asks = sum(D(str(m["bestAsk"])) for m in raw["markets"])
    bids = sum(D(str(m["bestBid"])) for m in raw["markets"])
    assert (asks, bids, 5 - bids) == (D("1.022"), D("0.999"), D("4.001"))
    market, _ = _state()
    found = {name: [o.kind for o in opps] for name, opps in _every(market).items() if opps}
    assert found == {}


def _fee(p: D) -> D:
    """The venue's taker fee of 100 shares at ``p``, by hand: 0.05 x 100 x p (1 - p),
    floored to 0.00001."""
    return (D("0.05") * 100 * p * (1 - p)).quantize(D("0.00001"), rounding=ROUND_DOWN)


@pytest.mark.parametrize(("no_change_ask", "found"), [("0.65", False), ("0.64", True)])
def test_a_long_rebalance_planted_against_the_venues_fees(no_change_ask: str,
                                                          found: bool) -> None:
    """"No change" quoted 0.64/0.65: the YES asks sum 0.982, under 1, but the venue's fees
    (0.05 p (1 - p) a share, floored per fill) take 2.31584 of 100 baskets: 0.51584 lost,
    nothing.  Quoted 0.63/0.64 (asks 0.972): 97.2 + 2.33034 of fees for 100 baskets,
    0.46966 of profit, the negRisk scanner's finding exactly; no other scanner reports
    anything."""
    market, yes_of = _state({"No change": float(no_change_ask)})
    out = _every(market)
    others = {name: [o.kind for o in opps] for name, opps in out.items()
              if opps and name != "negrisk"}
    assert others == {}
    asks = [D("0.003"), D("0.014"), D(no_change_ask), D("0.31"), D("0.005")]
    fees = sum(map(_fee, asks), D(0))
    profit = 100 - 100 * sum(asks, D(0)) - fees
    if not found:
        assert profit < 0 and out["negrisk"] == []
        return
    (opp,) = out["negrisk"]
    assert (fees, profit) == (D("2.33034"), D("0.46966"))
    assert opp.kind == "long_rebalance" and opp.risk_free and opp.max_size == 100
    assert opp.expected_profit == profit and opp.costs == fees
    assert opp.event_id == "481717"
    assert {leg.instrument_id: leg.limit_price for leg in opp.legs} == dict(
        zip(yes_of.values(), asks, strict=True))
