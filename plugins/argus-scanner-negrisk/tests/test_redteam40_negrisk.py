"""Round 40 red team of the negRisk scanner.

Found (each observed on the old code):

* two baskets sharing a book side were each sized on its whole depth and both reported
  executable: a ``pair`` and the ``long_rebalance`` of one event both took the outcome's
  100 YES shares at 0.30 (the runner sends both; the second's YES leg fills short of its
  other legs: an unhedged position flattened at a loss).  Now each book side's depth goes
  to one executable basket a scan, the other is research naming it;
* ``bounded_long`` (a bet that no omitted tail outcome wins, ``risk_free=False``) was in
  the core's default lane, executable: the runner traded it.  Now research;
* an ``Event`` marked exhaustive without placeholder flags whose instruments' ``meta`` say
  ``placeholder`` / ``neg_risk_augmented`` (an event recorded or built without the
  flags) gave ``long_rebalance`` / ``short_rebalance`` baskets;
* the kernel stopped at a packed level of size 0 where the plain reference walks past it
  (no book packs one; the two walks now agree on it).

Checked and sound: the kernel against the reference on random ladders (hypothesis: buy and
sell baskets, one to eight legs, empty ladders, sizes from 1e-6 to 1e6, fee curves, payouts
of 1 and N - 1) and on 3,000-leg baskets; every finding of seeded random markets (ticks
0.01 / 0.001, prices at the grid's ends, crossed, stale and settled books, placeholder and
repeated outcomes) against a brute force of its own.
"""

from __future__ import annotations

import math
import random
from decimal import ROUND_DOWN, Decimal

import numpy as np
import pytest
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.kernel import walk_baskets
from argus_scanner_negrisk.reference import best_size, reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argus_core import (
    BookStatus,
    Event,
    FeeSchedule,
    Instrument,
    MarketState,
    Opportunity,
    OrderBook,
    Outcome,
    Settlement,
    Side,
)

D = Decimal


# --- the kernel against the plain reference ----------------------------------------------

def _kernel(books: list[list[tuple[float, float]]], fee: float, payout: float,
            sell: bool) -> tuple[float, float, float]:
    """``walk_baskets`` of one basket over ``books`` (best level first), every level's
    unit fee ``fee * p (1 - p)``."""
    n = len(books)
    depth = max([1, *map(len, books)])
    prices, sizes, fees = (np.zeros((depth, n)) for _ in range(3))
    nlev = np.zeros(n, dtype=np.int64)
    for r, levels in enumerate(books):
        for k, (p, q) in enumerate(levels):
            prices[k, r], sizes[k, r], fees[k, r] = p, q, fee * p * (1 - p)
        nlev[r] = len(levels)
    qty, value, fee_total = np.zeros(1), np.zeros(1), np.zeros(1)
    walk_baskets(prices, sizes, fees, nlev, np.zeros(n, dtype=np.bool_),
                 np.ones(n, dtype=np.bool_), np.array([0, n], dtype=np.int64),
                 np.arange(n, dtype=np.int64), np.array([payout]), np.array([sell]),
                 np.array([0], dtype=np.int64), np.zeros(1), qty, value, fee_total,
                 np.zeros(n, dtype=np.int64), np.zeros(1, dtype=np.bool_))
    return float(qty[0]), float(value[0]), float(fee_total[0])


def _plain(books: list[list[tuple[float, float]]], fee: float, payout: float,
           sell: bool) -> tuple[float, float, float]:
    curve = [lambda p: fee * p * (1 - p)] * len(books)
    return best_size(books, curve, payout, sell)


_PRICE = st.integers(1, 999).map(lambda k: k / 1000)
_SIZE = st.one_of(st.integers(1, 10_000).map(lambda k: k / 100), st.floats(1e-6, 1e6))


@st.composite
def _basket(draw: st.DrawFn) -> tuple[list[list[tuple[float, float]]], float, float, bool]:
    sell = draw(st.booleans())
    n = draw(st.integers(1, 8))
    books = []
    for _ in range(n):
        levels = dict(draw(st.lists(st.tuples(_PRICE, _SIZE), max_size=6)))
        books.append(sorted(levels.items(), reverse=sell))
    fee = draw(st.sampled_from([0.0, 0.01, 0.05, 0.25]))
    payout = draw(st.sampled_from([1.0, float(max(n - 1, 1)), 0.5, 2.0]))
    return books, fee, payout, sell


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(_basket())
def test_kernel_equals_the_reference_on_random_ladders(case: tuple) -> None:
    books, fee, payout, sell = case
    got, want = _kernel(books, fee, payout, sell), _plain(books, fee, payout, sell)
    for a, b in zip(got, want, strict=True):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-7), (got, want)


def test_kernel_equals_the_reference_on_edge_cases() -> None:
    """One leg, an empty ladder, a level of size 0 (before: the kernel stopped there, the
    reference walked on), a price of exactly the payout, and 3,000 legs."""
    cases: list[tuple[list[list[tuple[float, float]]], float, float, bool]] = [
        ([[(0.5, 10.0)]], 0.0, 1.0, False),
        ([[]], 0.0, 1.0, False),
        ([[(0.3, 5.0)], []], 0.0, 1.0, False),
        ([[(0.3, 0.0), (0.31, 5.0)], [(0.3, 5.0)]], 0.0, 1.0, False),
        ([[(0.3, 5.0), (0.31, 0.0), (0.32, 4.0)], [(0.3, 20.0)]], 0.02, 1.0, False),
        ([[(0.6, 0.0), (0.55, 5.0)], [(0.5, 5.0)]], 0.0, 1.0, True),
        ([[(0.5, 10.0)], [(0.5, 10.0)]], 0.0, 1.0, False),  # exactly 1: nothing
    ]
    rng = random.Random(40)
    for _ in range(3):
        big = [sorted({round(rng.uniform(1e-4, 4e-4), 4) + 1e-4 * k: rng.uniform(1, 50)
                       for k in range(rng.randint(1, 5))}.items()) for _ in range(3000)]
        cases.append((big, 0.01, 1.0, False))
    for books, fee, payout, sell in cases:
        got, want = _kernel(books, fee, payout, sell), _plain(books, fee, payout, sell)
        for a, b in zip(got, want, strict=True):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-7), (books[:3], got, want)
    assert _kernel(*cases[3])[0] == 5.0  # walked past the empty level


# --- markets ---------------------------------------------------------------------------------

def _instruments(market: MarketState, ids: list[str], *, tick: str = "0.01",
                 min_size: str = "5", meta: dict[str, object] | None = None) -> None:
    market.add_instruments([Instrument("polymarket", iid.split(":")[1], kind="binary",
                                       tick_size=tick, lot_size="0.01", min_size=min_size,
                                       meta=dict(meta or {}))
                            for iid in ids])


def _event(market: MarketState, eid: str, n: int, *, ids: list[tuple[str, str]] | None = None,
           **inst: object) -> list[tuple[str, str]]:
    ids = ids or [(f"polymarket:{eid}{i}y", f"polymarket:{eid}{i}n") for i in range(n)]
    _instruments(market, [iid for pair in ids for iid in pair], **inst)  # type: ignore[arg-type]
    market.apply(Event("polymarket", eid, eid, tuple(
        Outcome(f"o{i}", y, no) for i, (y, no) in enumerate(ids)), neg_risk=True))
    return ids


def _book(market: MarketState, iid: str, asks: list[tuple[float, float]],
          bids: list[tuple[float, float]] | None = None, ts: int = 1) -> None:
    market.apply(OrderBook(iid, ts, np.array(bids or np.empty((0, 2))).reshape(-1, 2),
                           np.array(asks).reshape(-1, 2)))


def _shared_yes() -> tuple[MarketState, list[tuple[str, str]]]:
    """YES asks 0.30 (100 each) of three outcomes: a long basket at 0.90; the first
    outcome's NO at 0.60: its pair at 0.90 too.  Both want the first YES's 100 shares."""
    market = MarketState()
    ids = _event(market, "E", 3)
    for k, (yes, no) in enumerate(ids):
        _book(market, yes, [(0.30, 100)])
        _book(market, no, [(0.60 if k == 0 else 0.75, 100)])
    return market, ids


def _lanes(found: list[Opportunity]) -> list[tuple[str, str]]:
    return [(o.kind, o.lane) for o in found]


@pytest.mark.parametrize("incremental", [True, False])
def test_a_book_side_is_offered_to_one_executable_basket(incremental: bool) -> None:
    market, ids = _shared_yes()
    scanner = NegRiskScanner(incremental=incremental)
    found = scanner.scan(market, 1)
    assert _lanes(found) == [("pair", "executable"), ("long_rebalance", "research")]
    pair, long = found
    assert not long.risk_free and pair.risk_free
    assert long.reason.startswith(f"not traded: {pair.opportunity_id}, at least as profitable")
    assert long.expected_profit == pair.expected_profit == D(10)  # each priced on the book
    # the pair is taken: its books move; the long basket, on the YES left, is executable
    _book(market, ids[0][0], [(0.30, 60)], ts=2)
    _book(market, ids[0][1], [(0.75, 100)], ts=2)
    (again,) = scanner.scan(market, 2)
    assert (again.kind, again.lane, again.risk_free, again.max_size) == (
        "long_rebalance", "executable", True, D(60))


def test_a_short_basket_and_a_pair_share_the_no_book() -> None:
    """NO asks 0.60 of three outcomes (1.80 < 2); the first outcome's YES at 0.30: its pair
    (0.90) wants the first NO's 100 shares too.  The short basket is more profitable."""
    market = MarketState()
    ids = _event(market, "S", 3)
    for k, (yes, no) in enumerate(ids):
        _book(market, yes, [(0.30 if k == 0 else 0.45, 100)])
        _book(market, no, [(0.60, 100)])
    found = NegRiskScanner().scan(market, 1)
    assert _lanes(found) == [("short_rebalance", "executable"), ("pair", "research")]
    assert found[0].expected_profit == D(20) and found[1].expected_profit == D(10)


def test_two_events_listing_one_market_give_one_executable_pair() -> None:
    """Gamma lists a market under two events (the venue marks both not exhaustive, but a
    pair pays 1 whatever the event): two pairs on one YES and one NO book."""
    market = MarketState()
    ids = _event(market, "A", 2)
    market.apply(Event("polymarket", "B", "B", (Outcome("o0", *ids[0]),), neg_risk=True,
                       exhaustive=False))
    market.apply(Event("polymarket", "A", "A", tuple(
        Outcome(f"o{i}", y, no) for i, (y, no) in enumerate(ids)), neg_risk=True,
        exhaustive=False))
    _book(market, ids[0][0], [(0.30, 100)])
    _book(market, ids[0][1], [(0.60, 100)])
    _book(market, ids[1][0], [(0.80, 100)])
    _book(market, ids[1][1], [(0.30, 100)])
    found = NegRiskScanner().scan(market, 1)
    assert sorted(_lanes(found)) == [("pair", "executable"), ("pair", "research")]
    assert len({o.opportunity_id for o in found}) == 2


def test_a_bounded_long_is_research() -> None:
    """A bet that none of the omitted tail outcomes wins is no arbitrage: never traded."""
    market = MarketState()
    ids = _event(market, "L", 5)
    for (yes, no), price in zip(ids, [0.50, 0.30, 0.15, 0.01, 0.005], strict=True):
        _book(market, yes, [(price, 10)])
        _book(market, no, [(round(1 - price + 0.01, 3), 10)])
    (o,) = NegRiskScanner(NegRiskSettings(max_outcomes=3, bounded_subset=True)).scan(market, 1)
    assert (o.kind, o.lane, o.risk_free) == ("bounded_long", "research", False)
    assert o.reason.startswith("not risk-free, research: bounded_long")


@pytest.mark.parametrize("flag", ["placeholder", "neg_risk_augmented"])
def test_an_instrument_flagged_augmented_gives_no_rebalance(flag: str) -> None:
    """The event says exhaustive and lists no placeholder; its instruments' ``meta`` (the
    Polymarket venue's) say otherwise: no basket that needs every outcome listed."""
    market = MarketState()
    ids = _event(market, "G", 3, meta={flag: True})
    for yes, no in ids:
        _book(market, yes, [(0.30, 100)])
        _book(market, no, [(0.60, 100)])
    kinds = {o.kind for o in NegRiskScanner().scan(market, 1)}
    assert "long_rebalance" not in kinds and "short_rebalance" not in kinds
    assert {r["kind"] for r in reference_scan(market)} == {"pair"}
    market.add_instruments([attrs_evolve_meta(market.instruments[i], {flag: False})
                            for pair in ids for i in pair])  # flags cleared: found
    assert "long_rebalance" in {o.kind for o in NegRiskScanner().scan(market, 2)}


def attrs_evolve_meta(inst: Instrument, meta: dict[str, object]) -> Instrument:
    return Instrument(inst.venue, inst.symbol, kind=inst.kind, tick_size=inst.tick_size,
                      lot_size=inst.lot_size, min_size=inst.min_size,
                      meta={**inst.meta, **meta})


# --- every finding of random markets against a brute force ---------------------------------

def _walk(levels: list[tuple[Decimal, Decimal]], qty: Decimal, schedule: FeeSchedule
          ) -> tuple[Decimal, Decimal, Decimal] | None:
    value = fees = deepest = Decimal(0)
    need = qty
    for price, size in levels:
        if need <= 0:
            break
        take = min(need, size)
        value += price * take
        fees += schedule.fee(price, take, maker=False)
        deepest, need = price, need - take
    return None if need > 0 else (value, fees, deepest)


def _random_market(rng: random.Random, schedule: FeeSchedule) -> MarketState:
    market = MarketState(stale_after_ns=50, fees=lambda iid: schedule)
    market.now_ns = 100
    for e in range(14):
        n = rng.randint(1, 5)
        tick = rng.choice(["0.01", "0.001"])
        step = float(tick)
        ids = [(f"polymarket:R{e}{i}y", f"polymarket:R{e}{i}n") for i in range(n)]
        if n > 1 and rng.random() < 0.1:
            ids[1] = ids[0]  # an outcome listed twice
        _instruments(market, sorted({i for pair in ids for i in pair}), tick=tick,
                     min_size=rng.choice(["0", "5"]))
        market.apply(Event("polymarket", f"R{e}", f"R{e}", tuple(
            Outcome(f"o{i}", y, no, placeholder=rng.random() < 0.05)
            for i, (y, no) in enumerate(ids)), neg_risk=True,
            exhaustive=rng.random() < 0.9))
        for yes, no in dict.fromkeys(ids):
            for iid, centre in ((yes, 1 / n), (no, 1 - 1 / n)):
                best = min(1 - step, max(step, round(centre * rng.uniform(0.75, 1.0),
                                                     3 if step < 0.01 else 2)))
                asks = {round(min(1 - step, best + step * k), 3): round(
                    rng.choice([0.37, 2.5, 7.0, 30.0, 120.0]) * rng.random() + 0.01, 2)
                    for k in range(rng.randint(1, 5))}
                bids = ([(round(best - step, 3), 10.0)] if best - step >= step
                        and rng.random() < 0.5 else [])
                ts = 100 if rng.random() < 0.9 else 10  # some books stale (> 50 old)
                _book(market, iid, sorted(asks.items()), bids, ts=ts)
                if rng.random() < 0.03:
                    market.apply(BookStatus(iid, ts, False, "hash mismatch"))
                if rng.random() < 0.02:
                    market.apply(Settlement(iid, ts, 0, "resolved"))
                if rng.random() < 0.03 and bids:  # crossed by a delta
                    market.books[iid].bids[0.999] = 5.0
    return market


@pytest.mark.parametrize("seed", range(4))
def test_every_executable_finding_is_sound(seed: int) -> None:
    """Each executable finding: legs of one exhaustive, placeholder-free event (or one
    market), tradeable (live, fresh, sound, unsettled), whole lots and at least the
    minimum, limits the deepest level walked on the tick grid in [tick, 1 - tick], the
    expected profit exactly payout - cost - fees > 0; and no two executable findings
    take one book side."""
    rng = random.Random(1000 + seed)
    schedule = FeeSchedule(taker_bps=D(rng.choice([0, 20, 150])))
    market = _random_market(rng, schedule)
    found = NegRiskScanner(NegRiskSettings(min_edge=D("0.001"))).scan(market, 100)
    full = NegRiskScanner(NegRiskSettings(min_edge=D("0.001")), incremental=False,
                          first_levels=None).scan(market, 100)
    assert [(o.opportunity_id, o.lane) for o in found] == [
        (o.opportunity_id, o.lane) for o in full]
    taken: set[tuple[str, Side]] = set()
    for opp in (o for o in found if o.lane == "executable"):
        assert opp.risk_free
        ev = market.events[opp.opportunity_id.split(":")[2]]
        tokens = [i for o in ev.outcomes for i in (o.yes_instrument_id, o.no_instrument_id)]
        assert len(set(tokens)) == len(tokens)
        if opp.kind != "pair":
            assert ev.exhaustive and not any(o.placeholder for o in ev.outcomes)
        qty = opp.max_size
        value = fees = D(0)
        for leg in opp.legs:
            key = (leg.instrument_id, leg.side)
            assert key not in taken, "a book side offered twice"
            taken.add(key)
            assert market.tradeable(leg.instrument_id)[0]
            assert leg.instrument_id not in market.settled
            inst = market.instruments[leg.instrument_id]
            assert qty % inst.lot_size == 0 and qty >= inst.min_size and leg.quantity == qty
            book = market.books[leg.instrument_id]
            levels = [(D(repr(p)), D(repr(s))) for p, s in sorted(book.asks.items())]
            walked = _walk(levels, qty, schedule)
            assert walked is not None, "sized beyond the book's depth"
            value, fees = value + walked[0], fees + walked[1]
            tick = inst.tick_size
            assert leg.limit_price == walked[2] and leg.limit_price % tick == 0
            assert tick <= leg.limit_price <= 1 - tick
        payout = {"long_rebalance": 1, "pair": 1, "binary": 1,
                  "short_rebalance": len(opp.legs) - 1}[opp.kind] * qty
        assert opp.expected_profit == payout - value - fees > 0
        assert opp.edge_per_unit == (opp.expected_profit / qty).quantize(
            D("1e-8"), rounding=ROUND_DOWN)
