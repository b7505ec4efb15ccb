"""The dirty-set scan (only books the core lists as changed are repacked, only their
baskets walked again) returns exactly what a from-scratch scan returns, after every step
of seeded random update sequences, including the updates a naive dirty set would miss;
so does a scan that packs a level (the default) or two per book until a walk needs more,
against one that packs every level."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import attrs
import numpy as np
import pytest
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.scanner import NegRiskScanner

from argus_core import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import BookDelta, BookStatus, Event, Instrument, OrderBook, Outcome, Side


def _levels(rng: random.Random, best: float, up: bool) -> np.ndarray:
    step = 0.01 if up else -0.01
    rows = [(round(best + step * k, 2), float(rng.choice([5, 20, 60, 150])))
            for k in range(rng.randint(1, 7))]
    return np.array([r for r in rows if 0.01 <= r[0] <= 0.99] or [(best, 10.0)])


def _snapshot(rng: random.Random, iid: str, ts: int) -> OrderBook:
    ask = round(rng.uniform(0.05, 0.6), 2)
    return OrderBook(iid, ts, _levels(rng, round(ask - 0.02, 2), up=False),
                     _levels(rng, ask, up=True))


def _add_event(market: MarketState, rng: random.Random, name: str,
               ts: int, with_books: bool = True) -> list[str]:
    n = rng.randint(2, 5)
    ids = [(f"polymarket:{name}o{i}y", f"polymarket:{name}o{i}n") for i in range(n)]
    market.add_instruments(Instrument("polymarket", iid.split(":")[1], kind="binary",
                                      tick_size="0.01", min_size="1")
                           for pair in ids for iid in pair)
    market.apply(Event("polymarket", name, name,
                       tuple(Outcome(f"o{i}", y, no) for i, (y, no) in enumerate(ids)),
                       neg_risk=True))
    flat = [iid for pair in ids for iid in pair]
    if with_books:
        for iid in flat:
            market.apply(_snapshot(rng, iid, ts))
    return flat


def _random_update(market: MarketState, rng: random.Random, ids: list[str], ts: int) -> None:
    iid = rng.choice(ids)
    roll = rng.random()
    if roll < 0.45:  # one level set or removed, through MarketState.apply
        book = market.book(iid)
        levels = sorted(book.asks) or [0.5]
        pick = rng.random()
        if pick < 0.2:  # the best level goes: the next ones move up into the top
            price = levels[0]
        elif pick < 0.4:  # a level beyond the first few (packed only once a walk needs it)
            price = levels[-1] if len(levels) < 3 else rng.choice(levels[2:])
        elif pick < 0.7:
            price = rng.choice(levels)
        else:
            price = round(rng.uniform(0.05, 0.95), 2)
        bid = book.best_bid()
        if bid is not None and price <= bid:
            price = round(bid + 0.01, 2)
        size = 0.0 if pick < 0.2 else rng.choice([0.0, 0.0, 7.0, 90.0])
        market.apply(BookDelta(iid, ts, Side.SELL, price, size))
    elif roll < 0.6:  # a batch straight on the L2Book (a venue adapter's fast path)
        book = market.book(iid)
        price = round((book.best_ask() or 0.5) + 0.01 * rng.randint(-1, 2), 2)
        if 0 < price < 1 and (book.best_bid() or 0) < price:
            book.apply_many(np.array([False, False]), np.array([price, round(price + 0.01, 2)]),
                            np.array([rng.choice([0.0, 30.0]), 12.0]), ts)
    elif roll < 0.8:  # a snapshot reload
        market.apply(_snapshot(rng, iid, ts))
    else:  # liveness flips
        market.apply(BookStatus(iid, ts, rng.random() < 0.4, "test"))
        if rng.random() < 0.5:
            market.book(iid).load_snapshot(_snapshot(rng, iid, ts))  # live again


@pytest.mark.parametrize("seed", range(4))
def test_dirty_set_scan_equals_a_full_scan_after_every_step(seed: int) -> None:
    rng = random.Random(seed)
    market = MarketState(stale_after_ns=40 if seed % 2 else 0)
    ids: list[str] = []
    for e in range(30):
        ids += _add_event(market, rng, f"E{e}", 1)
    settings = NegRiskSettings(min_edge=Decimal("0.001"), sell_yes_basket=seed == 3)
    dirty = NegRiskScanner(settings)
    full = NegRiskScanner(settings, incremental=False)
    slow = NegRiskScanner(settings)  # a second consumer of the same state, scanning less often
    shallow = NegRiskScanner(settings, first_levels=2)  # (dirty: 1, the default)
    hits = 0
    for step in range(2, 80):
        market.now_ns = max(market.now_ns, step)  # books also go stale by time alone
        for _ in range(rng.randint(1, 6)):
            _random_update(market, rng, ids, step)
        if step % 25 == 0:  # a new event: its books arrive later, one by one
            pending = _add_event(market, rng, f"N{step}", step, with_books=False)
            ids += pending
        got = dirty.scan(market, step)
        # the reference: a fresh scanner packing every level of every book
        want = NegRiskScanner(settings, first_levels=None).scan(market, step)
        assert got == want == full.scan(market, step) == shallow.scan(market, step), step
        if step % 7 == 0:
            assert slow.scan(market, step) == want
        hits += len(got)
        packed = dirty._packed
        if step > 2 and step % 25:  # (the first scan and a new event pack everything)
            assert packed is not None and packed.repacked <= 6
    assert hits > 20  # the sequences do find opportunities to compare
    # the partly packed scanners did have to pack rows deeper, and then saw them change
    for scanner in (dirty, shallow):
        assert scanner._packed is not None and scanner._packed.deepened > 0


@attrs.frozen
class MeddlingFees(FeeSchedule):
    """Free fees, but the first time a price is priced it runs ``hooks`` (changing the
    market in the middle of a scan)."""

    hooks: list[Callable[[], object]] = attrs.field(factory=list, eq=False, hash=False)

    def unit_fee(self, price: Decimal, *, maker: bool = False) -> Decimal:
        """No fee; runs and drops any pending hook first."""
        while self.hooks:
            self.hooks.pop()()
        return Decimal(0)


def test_a_book_changed_while_a_scan_is_packing_is_repacked_next_scan() -> None:
    rng = random.Random(5)
    fees = MeddlingFees()
    market = MarketState(fees=lambda iid: fees)
    ids: list[str] = []
    for e in range(6):
        ids += _add_event(market, rng, f"E{e}", 1)
    scanner = NegRiskScanner()
    scanner.scan(market, 1)
    victim = ids[0]  # already packed by the time the hook runs
    # the victim's best ask drops while the scan is mid-way (after its book was read)
    fees.hooks.append(lambda: market.apply(BookDelta(victim, 3, Side.SELL, 0.01, 500.0)))
    market.apply(BookDelta(ids[-1], 2, Side.SELL, 0.987, 3.0))  # a new price: the hook runs
    scanner.scan(market, 2)
    assert not fees.hooks and market.books[victim].best_ask() == 0.01
    assert scanner.scan(market, 3) == NegRiskScanner().scan(market, 3)
    assert scanner._packed is not None and scanner._packed.repacked == 1  # the victim only


def test_an_unchanged_market_repacks_nothing_and_reuses_every_result() -> None:
    rng = random.Random(8)
    market = MarketState()
    for e in range(10):
        _add_event(market, rng, f"E{e}", 1)
    scanner = NegRiskScanner()
    first = scanner.scan(market, 1)
    again = scanner.scan(market, 2)
    assert scanner._packed is not None and scanner._packed.repacked == 0
    assert again == [attrs.evolve(o, ts_ns=2) for o in first]
