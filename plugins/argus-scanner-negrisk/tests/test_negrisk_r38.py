"""Round 38 red team of the negRisk scanner: terms that change after a basket's books
were read.

Found (each reported a basket before, observed on the old code):

* a fee schedule in force that moved mid-run without an instrument update (the core's
  ``market.fee_schedule`` answers the new one; the scanner read schedules only at a
  rebuild): a basket priced at the old, zero fee was reported at a profit of 7.65 while
  the 20 % taker fee makes it a loss;
* a ``tick_size_change`` signal (``polymarket.tick_size``) with no instrument update:
  the basket kept its 0.305 limits on a leg now on a 0.01 grid (the venue refuses them;
  the ``pmscanners`` scanners already read the signal).

Sound (checked here too): a tick change that comes as a replaced instrument rebuilds
the scan and drops the off-grid basket.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import numpy as np
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import (
    Event,
    FeeSchedule,
    Instrument,
    MarketState,
    OrderBook,
    Outcome,
    Signal,
)

Ids = list[tuple[str, str]]


def _market(fees: dict[str, FeeSchedule]) -> tuple[MarketState, Ids]:
    """A three-outcome negRisk event on a 0.001 grid whose YES asks (0.305 each) sum to
    0.915: a long basket earning 0.085 a unit before fees, 100 units deep."""
    market = MarketState(fees=lambda iid: fees.get(iid, FeeSchedule()))
    ids = [(f"polymarket:e{i}y", f"polymarket:e{i}n") for i in range(3)]
    market.add_instruments([Instrument("polymarket", iid.split(":")[1], kind="binary",
                                       tick_size="0.001", min_size="5")
                            for pair in ids for iid in pair])
    market.apply(Event("polymarket", "e", "e", tuple(
        Outcome(f"o{i}", y, n) for i, (y, n) in enumerate(ids)), neg_risk=True))
    for yes, no in ids:
        _book(market, yes, 0.305, 100)
        _book(market, no, 0.9, 100)
    return market, ids


def _book(market: MarketState, iid: str, ask: float, size: float) -> None:
    market.apply(OrderBook(iid, 1, np.empty((0, 2)), np.array([[ask, size]])))


def _kinds(found: list) -> list[str]:
    return [o.kind for o in found]


def test_fee_change_mid_run_is_priced() -> None:
    fees: dict[str, FeeSchedule] = {}
    market, ids = _market(fees)
    scanner = NegRiskScanner()
    assert _kinds(scanner.scan(market, 1)) == ["long_rebalance"]
    for yes, _no in ids:  # a 20 % taker fee: 0.061 a share, the basket loses 0.098 a unit
        fees[yes] = FeeSchedule(taker_bps=Decimal(2000))
    _book(market, ids[0][0], 0.305, 90)  # one leg's book moves: that basket is re-walked
    assert _kinds(NegRiskScanner().scan(market, 2)) == [], "a fresh scanner sees the loss"
    found = scanner.scan(market, 2)
    seen = [(o.kind, o.expected_profit) for o in found]
    assert found == [], f"a basket priced on the old fees was reported: {seen}"
    assert scanner.scan(market, 3) == [], "unchanged books: still no basket"


def test_fee_change_without_book_change_is_priced() -> None:
    fees: dict[str, FeeSchedule] = {}
    market, ids = _market(fees)
    scanner = NegRiskScanner()
    assert scanner.scan(market, 1)
    fees[ids[1][0]] = FeeSchedule(taker_bps=Decimal(4000))
    assert scanner.scan(market, 2) == [], "the reused finding kept the old, zero fee"


def test_fee_change_that_keeps_the_basket_reprices_it() -> None:
    fees: dict[str, FeeSchedule] = {}
    market, ids = _market(fees)
    scanner = NegRiskScanner()
    before = scanner.scan(market, 1)[0]
    fees[ids[2][0]] = FeeSchedule(taker_bps=Decimal(100))  # 1 %: still profitable
    after = scanner.scan(market, 2)
    fresh = NegRiskScanner().scan(market, 2)
    assert [o.expected_profit for o in after] == [o.expected_profit for o in fresh]
    assert after[0].expected_profit < before.expected_profit


def test_tick_signal_without_instrument_update_drops_off_grid_limits() -> None:
    market, ids = _market({})
    scanner = NegRiskScanner()
    assert scanner.scan(market, 1)
    market.apply(Signal("polymarket.tick_size", ids[0][0], 2, 0.01))  # 0.305 is off 0.01
    found = scanner.scan(market, 2)
    assert found == [], f"limits off the tick in force: {[o.legs for o in found]}"
    assert NegRiskScanner().scan(market, 2) == []


def test_finer_tick_signal_keeps_the_basket() -> None:
    market, ids = _market({})
    market.apply(Signal("polymarket.tick_size", ids[0][0], 2, 0.0001))  # coarser grid wins
    assert _kinds(NegRiskScanner().scan(market, 2)) == ["long_rebalance"]


def test_tick_change_as_replaced_instrument_drops_the_basket() -> None:
    market, ids = _market({})
    scanner = NegRiskScanner()
    assert scanner.scan(market, 1)
    inst = market.instruments[ids[0][0]]
    market.add_instruments([attrs.evolve(inst, tick_size=Decimal("0.01"))])
    assert scanner.scan(market, 2) == []
