"""Fourth held-out audit (red team) of the negRisk scanner: baskets the venue cannot fill
or that do not pay what they say.

Found (each reported a basket before, observed on the old code):

* an "Other"/placeholder outcome in an event marked exhaustive was bought as a leg of
  ``long_rebalance`` / ``short_rebalance`` (augmented negRisk placeholders must never be
  bought, whatever ``exhaustive`` says);
* a leg whose market had resolved (a ``Settlement`` in ``market.settled``, its book still
  quoted) was still used, by a scanner built before the settlement and by a fresh one;
* a two-outcome non-negRisk event whose outcomes are not each other's complement (two
  unrelated markets' YES) was reported as a ``binary`` paying 1;
* the size was rounded to 0.01 whatever the legs' ``lot_size`` (10.50 units of a
  whole-share instrument);
* levels no binary token can have -- a bid or ask over 1, a price off the leg's tick grid
  (e.g. 0.305 on a 0.01 grid, a tick change the instrument has not followed) -- were
  traded: a ``sell_yes_basket`` at 1.5 a share, a ``short_rebalance`` buying NO at 1.5,
  a limit the venue refuses (``signing``: "off the tick grid");
* settings of the wrong type were taken and failed later, or never: ``min_edge=0.01``
  (a float) raised ``TypeError`` in the scan, ``max_levels=10**9`` a ``MemoryError``,
  ``max_outcomes=2.5`` and ``bounded_subset="yes"`` were accepted.

A seeded random check compares every reported basket with an independent brute force
(each leg's book walked level by level at the reported size, fees per fill).
"""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
import pytest
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.reference import reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import (
    Event,
    FeeSchedule,
    Instrument,
    MarketState,
    Opportunity,
    OrderBook,
    Outcome,
    Settlement,
)

D = Decimal


def _instruments(market: MarketState, ids: list[str], *, tick: str = "0.01",
                 lot: str = "0.01", min_size: str = "5") -> None:
    market.add_instruments([Instrument("polymarket", iid.split(":")[1], kind="binary",
                                       tick_size=tick, lot_size=lot, min_size=min_size)
                            for iid in ids])


def _event(market: MarketState, eid: str, names: list[str], *, placeholder: str = "",
           **inst: Any) -> list[tuple[str, str]]:
    """A negRisk event (marked exhaustive) of ``polymarket:<eid><i>y`` / ``...n`` tokens."""
    ids = [(f"polymarket:{eid}{i}y", f"polymarket:{eid}{i}n") for i in range(len(names))]
    _instruments(market, [iid for pair in ids for iid in pair], **inst)
    market.apply(Event("polymarket", eid, eid, tuple(
        Outcome(n, y, no, placeholder=n == placeholder)
        for n, (y, no) in zip(names, ids, strict=True)), neg_risk=True))
    return ids


def _book(market: MarketState, iid: str, asks: list[tuple[float, float]],
          bids: list[tuple[float, float]] | None = None) -> None:
    market.apply(OrderBook(iid, 1, np.array(bids or np.empty((0, 2))).reshape(-1, 2),
                           np.array(asks).reshape(-1, 2)))


def _fill(market: MarketState, ids: list[tuple[str, str]], yes_asks: list[float],
          no_ask: float = 0.75) -> None:
    for (yes, no), ask in zip(ids, yes_asks, strict=True):
        _book(market, yes, [(ask, 100)])
        _book(market, no, [(no_ask, 100)])


def _scans(market: MarketState, settings: NegRiskSettings | None = None
           ) -> tuple[list[Opportunity], list[Opportunity]]:
    """The kernel scan (scanned twice: the dirty-set path) and the full-depth scanner."""
    inc = NegRiskScanner(settings)
    inc.scan(market, 5)
    return inc.scan(market, 6), NegRiskScanner(settings, incremental=False,
                                               first_levels=None).scan(market, 6)


def _kinds(market: MarketState, settings: NegRiskSettings | None = None) -> list[str]:
    kernel, full = _scans(market, settings)
    assert [o.kind for o in kernel] == [o.kind for o in full]
    return sorted(o.kind for o in kernel)


def test_a_placeholder_outcome_is_never_bought() -> None:
    """YES asks 0.30 each of "a", "b" and the placeholder "Other", the event marked
    exhaustive anyway.  Before: a ``long_rebalance`` buying 100 "Other" YES (profit 10).
    A placeholder's set is not exhaustive: no basket (its own pair is skipped already)."""
    market = MarketState()
    _fill(market, _event(market, "A", ["a", "b", "Other"], placeholder="Other"),
          [0.30, 0.30, 0.30])
    assert _kinds(market) == []
    assert reference_scan(market) == []


def test_a_settled_leg_gives_no_basket() -> None:
    """Outcome 0's market resolves (``Settlement`` of both its tokens) while its book is
    still quoted.  Before: the long_rebalance was reported by the scanner that saw it
    before the settlement and by a fresh one; the risk gate vetoes such a leg."""
    market = MarketState()
    ids = _event(market, "S", ["a", "b", "c"])
    _fill(market, ids, [0.30, 0.30, 0.30])
    scanner = NegRiskScanner()
    assert [o.kind for o in scanner.scan(market, 1)] == ["long_rebalance"]
    market.apply(Settlement(ids[0][0], 2, 0, "resolved"))
    market.apply(Settlement(ids[0][1], 2, 1, "resolved"))
    assert scanner.scan(market, 3) == []
    assert _kinds(market) == [] and reference_scan(market) == []


def test_a_binary_whose_outcomes_are_not_complements_gives_nothing() -> None:
    """A two-outcome, non-negRisk event naming two different markets' YES (X1 and Y1),
    each at 0.40.  Before: a ``binary`` (X1 + Y1 for 0.80, "profit" 20); both can resolve
    NO.  The two outcomes must be one market's YES and NO, swapped."""
    market = MarketState()
    tokens = ["polymarket:X1", "polymarket:X2", "polymarket:Y1", "polymarket:Y2"]
    _instruments(market, tokens)
    for iid in tokens:
        _book(market, iid, [(0.40, 100)])
    market.apply(Event("polymarket", "B", "B", (Outcome("Yes", tokens[0], tokens[1]),
                                                Outcome("No", tokens[2], tokens[3]))))
    assert _kinds(market) == [] and reference_scan(market) == []
    # the same market listed properly is found
    market.apply(Event("polymarket", "B", "B", (Outcome("Yes", tokens[0], tokens[1]),
                                                Outcome("No", tokens[1], tokens[0]))))
    assert _kinds(market) == ["binary"]


def test_the_size_is_whole_lots_of_every_leg() -> None:
    """Legs traded in whole shares (``lot_size`` 1), 10.5 shares at each best ask.  Before:
    10.50 units (a size the venue refuses); now 10."""
    market = MarketState()
    ids = _event(market, "L", ["a", "b", "c"], lot="1")
    for yes, no in ids:
        _book(market, yes, [(0.30, 10.5), (0.50, 100)])
        _book(market, no, [(0.75, 100)])
    kernel, full = _scans(market)
    assert kernel == full
    (opp,) = kernel
    assert opp.max_size == D(10) and {leg.quantity for leg in opp.legs} == {D(10)}
    assert opp.expected_profit == D("1.0")


@pytest.mark.parametrize("case", ["bid_over_one", "ask_over_one", "ask_at_one"])
def test_prices_outside_the_unit_interval_give_nothing(case: str) -> None:
    """A binary token trades in (0, 1).  Before: YES bids of 1.5 gave a
    ``sell_yes_basket`` "earning" 350; a NO ask of 1.5 (others 0.10) a ``short_rebalance``
    buying it (payout 4 - 1.9); a NO ask of exactly 1.0 was bought too."""
    market = MarketState()
    settings = NegRiskSettings(sell_yes_basket=True, pairs=False)
    if case == "bid_over_one":
        for yes, no in _event(market, "P", ["a", "b", "c"]):
            _book(market, yes, [(1.6, 100)], [(1.5, 100)])
            _book(market, no, [(0.75, 100)])
    else:
        bad = 1.5 if case == "ask_over_one" else 1.0
        for k, (yes, no) in enumerate(_event(market, "P", list("abcde"))):
            _book(market, yes, [(0.50, 100)])
            _book(market, no, [(bad if k == 0 else 0.10, 100)])
    assert _kinds(market, settings) == []


def test_a_level_off_the_tick_grid_gives_nothing_until_the_tick_follows() -> None:
    """A 0.305 ask on a 0.01 grid (the book moved to a 0.001 tick, the instrument not yet).
    Before: a long_rebalance with limit 0.305, which the venue refuses for the grid.  Once
    the instrument says 0.001 (replaced mid-run) it is found, by the same scanner."""
    market = MarketState()
    ids = _event(market, "T", ["a", "b", "c"])
    _fill(market, ids, [0.305, 0.30, 0.30])
    scanner = NegRiskScanner()
    assert scanner.scan(market, 1) == [] and _kinds(market) == []
    _instruments(market, [ids[0][0]], tick="0.001")
    (opp,) = scanner.scan(market, 2)
    assert opp.kind == "long_rebalance" and opp.legs[0].limit_price == D("0.305")
    assert opp.expected_profit == D("9.5")
    # and back to 0.01 (Polymarket widens the tick again): refused again
    _instruments(market, [ids[0][0]], tick="0.01")
    assert scanner.scan(market, 3) == []


@pytest.mark.parametrize(("key", "value"), [
    ("max_outcomes", 2.5), ("max_levels", 10**9), ("bounded_subset", "yes"),
    ("long_rebalance", 1), ("min_edge", "0.01"), ("max_levels", True)])
def test_settings_of_the_wrong_type_or_size_are_refused(key: str, value: Any) -> None:
    """Before: ``max_outcomes=2.5``, ``bounded_subset="yes"``, ``long_rebalance=1`` were
    accepted; ``max_levels=10**9`` failed at the first scan (``MemoryError``)."""
    with pytest.raises(ValueError, match=key):
        NegRiskSettings(**{key: value})


def test_a_float_setting_is_read_as_its_decimal() -> None:
    """Before: ``min_edge=0.01`` (a float, as Python callers write it) was accepted and the
    scan raised ``TypeError`` (float - Decimal)."""
    s = NegRiskSettings(min_edge=0.01, gas_usd_per_leg=0, max_basket_size=50,
                        tail_probability_cap=0.05)
    assert (s.min_edge, s.gas_usd_per_leg, s.max_basket_size, s.tail_probability_cap) == (
        D("0.01"), D(0), D(50), D("0.05"))
    market = MarketState()
    _fill(market, _event(market, "F", ["a", "b", "c"]), [0.30, 0.30, 0.30])
    (opp,) = NegRiskScanner(s).scan(market, 1)
    assert opp.max_size == D(50) and opp.expected_profit == D(5)


# --- every finding against a brute force ---------------------------------------------------

def _brute_cost(levels: list[tuple[Decimal, Decimal]], qty: Decimal, schedule: FeeSchedule
                ) -> tuple[Decimal, Decimal, Decimal] | None:
    """(price x quantity, fees, deepest price) of buying ``qty`` level by level; None when
    the book holds less."""
    value = fees = Decimal(0)
    deepest = Decimal(0)
    need = qty
    for price, size in levels:
        if need <= 0:
            break
        take = min(need, size)
        value += price * take
        fees += schedule.fee(price, take, maker=False)
        deepest = price
        need -= take
    return None if need > 0 else (value, fees, deepest)


def _random_market(rng: random.Random, schedule: FeeSchedule) -> MarketState:
    market = MarketState(fees=lambda iid: schedule)
    for e in range(12):
        n = rng.randint(2, 5)
        tick = rng.choice(["0.01", "0.001"])
        ids = _event(market, f"R{e}", [f"o{i}" for i in range(n)], tick=tick,
                     lot=rng.choice(["0.01", "0.1", "1"]), min_size=rng.choice(["0", "5"]))
        step = float(tick)
        for yes, no in ids:
            for iid, centre in ((yes, 1 / n), (no, 1 - 1 / n)):
                best = round(centre * rng.uniform(0.8, 1.0), 3 if step < 0.01 else 2)
                asks = [(round(best + step * k * rng.randint(1, 3), 3), round(
                    rng.choice([0.37, 2.5, 7.0, 30.0, 120.0]) * rng.random() + 0.01, 2))
                    for k in range(rng.randint(1, 6))]
                _book(market, iid, sorted({p: s for p, s in asks if 0 < p < 1}.items())
                      or [(0.5, 10.0)])
    return market


@pytest.mark.parametrize("seed", range(3))
def test_every_finding_survives_a_brute_force_walk(seed: int) -> None:
    """For each reported basket: equal quantity on every leg, a whole number of every leg's
    lot and at least its minimum, within each leg's depth, the limit the deepest level
    walked, on the leg's tick grid, and the expected profit exactly the brute-force
    payout - cost - fees, positive and at least ``min_edge`` a unit."""
    rng = random.Random(seed)
    schedule = FeeSchedule(taker_bps=D(rng.choice([0, 20, 150])))
    market = _random_market(rng, schedule)
    settings = NegRiskSettings(min_edge=D("0.002"))
    found = NegRiskScanner(settings).scan(market, 1)
    assert found, "the seeded books must hold something to check"
    for opp in found:
        qty = opp.max_size
        assert {leg.quantity for leg in opp.legs} == {qty}
        value = fees = Decimal(0)
        for leg in opp.legs:
            inst = market.instruments[leg.instrument_id]
            assert qty % inst.lot_size == 0 and qty >= inst.min_size
            book = market.books[leg.instrument_id]
            levels = [(Decimal(repr(p)), Decimal(repr(s))) for p, s in sorted(book.asks.items())]
            walked = _brute_cost(levels, qty, schedule)
            assert walked is not None, f"{leg.instrument_id} sized above its depth"
            value += walked[0]
            fees += walked[1]
            assert leg.limit_price == walked[2] and leg.limit_price % inst.tick_size == 0
        payout = {"long_rebalance": 1, "pair": 1,
                  "short_rebalance": len(opp.legs) - 1}[opp.kind] * qty
        assert opp.expected_profit == payout - value - fees > 0
        assert opp.edge_per_unit == (opp.expected_profit / qty).quantize(
            D("1e-8"), rounding=ROUND_DOWN) >= settings.min_edge
