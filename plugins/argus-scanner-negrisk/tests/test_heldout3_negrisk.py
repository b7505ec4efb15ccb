"""Third held-out audit of the negRisk scanner: opportunity ids and ``min_edge``.

Found: every ``pair`` basket of one event (YES + NO of each outcome) had the id
``negrisk:pair:<event>:<newest book ts>``, so two different pairs of one event found in
books of the same time had one id.  The core acts on an id once (the ledger keeps the
first), so the second pair was never traded nor even stored.  A pair's id now names its
outcome's YES token.

Found: ``min_edge`` was checked on the average edge of the whole walk, which went on while
a level earned anything at all, so a deep book at a thin edge behind a good first level
diluted the average below ``min_edge`` and the basket was dropped: 10 baskets at 0.05 an
unit were not reported.  The walk now takes only levels earning ``min_edge`` a unit (the
kernel, and the plain reference alike).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.reference import reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import Event, Instrument, MarketState, OrderBook, Outcome


def _event(market: MarketState, eid: str, names: list[str]) -> list[tuple[str, str]]:
    """A negRisk event of ``polymarket:<eid><i>y`` / ``...n`` tokens, min size 5, no fees,
    on a 0.001 tick (the thin level below is at 0.499: off a 0.01 grid, a price the venue
    refuses and the scanner does not trade)."""
    ids = [(f"polymarket:{eid}{i}y", f"polymarket:{eid}{i}n") for i in range(len(names))]
    market.add_instruments([Instrument(
        "polymarket", iid.split(":")[1], kind="binary", tick_size="0.001", lot_size="0.01",
        min_size="5") for pair in ids for iid in pair])
    market.apply(Event("polymarket", eid, eid, tuple(
        Outcome(n, y, no) for n, (y, no) in zip(names, ids, strict=True)), neg_risk=True))
    return ids


def _asks(market: MarketState, iid: str, asks: list[tuple[float, float]]) -> None:
    market.apply(OrderBook(iid, 1, np.empty((0, 2)), np.array(asks).reshape(-1, 2)))


def test_two_pairs_of_one_event_have_their_own_ids() -> None:
    """Outcomes a and b each have YES 0.30 + NO 0.65 = 0.95 (a pair earning 5 on 100).
    Before: both findings were ``negrisk:pair:E:1``."""
    market = MarketState()
    for (yes, no), ask in zip(_event(market, "E", ["a", "b", "c"]), [0.30, 0.30, 0.50],
                              strict=True):
        _asks(market, yes, [(ask, 100)])
        _asks(market, no, [(0.65, 100)])
    for scanner in (NegRiskScanner(), NegRiskScanner(incremental=False, first_levels=None)):
        pairs = [o for o in scanner.scan(market, 5) if o.kind == "pair"]
        assert sorted(o.legs[0].instrument_id for o in pairs) == [
            "polymarket:E0y", "polymarket:E1y"]
        ids = {o.opportunity_id for o in pairs}
        assert ids == {"negrisk:pair:E:polymarket:E0y:1", "negrisk:pair:E:polymarket:E1y:1"}
        # every finding of the scan has its own id
        found = scanner.scan(market, 6)
        assert len({o.opportunity_id for o in found}) == len(found)


def test_a_thin_edge_deeper_does_not_hide_the_edge_above_min_edge() -> None:
    """``min_edge = 0.01``.  YES a asks 0.45 (10) then 0.499 (1000); YES b 0.50 (2000):
    10 baskets at 0.95 (edge 0.05), then 1000 at 0.999 (edge 0.001).  Before: walked to
    1010 units (average edge 0.0015 < 0.01), nothing reported.  Now the 10 at 0.05,
    profit 0.50; with ``min_edge = 0`` the whole 1010 (profit 1.50) as before."""
    market = MarketState()
    (a, _), (b, _) = _event(market, "E", ["a", "b"])
    _asks(market, a, [(0.45, 10), (0.499, 1000)])
    _asks(market, b, [(0.50, 2000)])
    for min_edge, qty, profit in (("0.01", "10", "0.50"), ("0", "1010", "1.50")):
        settings = NegRiskSettings(min_edge=Decimal(min_edge))
        for scanner in (NegRiskScanner(settings),
                        NegRiskScanner(settings, incremental=False, first_levels=None)):
            (opp,) = scanner.scan(market, 5)
            assert opp.kind == "long_rebalance"
            assert opp.max_size == Decimal(qty) and opp.expected_profit == Decimal(profit)
            assert opp.edge_per_unit >= settings.min_edge
        (plain,) = reference_scan(market, settings)
        assert plain["qty"] == float(qty)
