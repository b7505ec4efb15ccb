"""``resolution``'s re-check of a near-certain finding at a later scan time (``_holds``)
equals a new walk by the reference loop (``annualized()`` as written), on seeded random
sequences of time passing toward the events' ends, with and without books moving; the
re-check's three outcomes (unchanged, re-worded, walked again) are each reached."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from argus_scanners_polymarket.common import field_copier
from argus_scanners_polymarket.config import PmScannersSettings, ResolutionSettings
from argus_scanners_polymarket.resolution import ResolutionScanner
from argus_scanners_polymarket.synthetic import NOW_NS, synthetic
from argus_scanners_polymarket.touch import stamped

from argus_core import BookDelta, Opportunity, Side

S = 10**9
_at = field_copier("ts_ns")


def _plain(found: list[Opportunity]) -> list[Opportunity]:
    return [_at(o, 0) for o in found]


@pytest.mark.parametrize(("seed", "floor"), [(5, "3"), (6, "0.5"), (7, "0.6"), (8, "2")])
def test_recheck_equals_a_new_walk(seed: int, floor: str) -> None:
    rng = np.random.default_rng(seed)
    market = synthetic(60, seed=seed)
    # a threshold the deeper levels cross as the horizon shrinks: decisions flip with time
    settings = PmScannersSettings(
        resolution=ResolutionSettings(min_annualized_return=Decimal(floor)))
    fast = ResolutionScanner(settings, incremental=True)
    ref = ResolutionScanner(settings, incremental=False)
    ids = list(market.books)
    ts = NOW_NS
    outcomes = {"walked by time alone": 0, "reworded": 0, "kept": 0}
    moved = True
    before: dict[str, Opportunity] = {}
    for k in range(80):
        market.now_ns = max(market.now_ns, ts)
        found = fast.unstamped(market, ts)  # what scan() restamps and sorts
        assert _plain(stamped([found], ts)) == _plain(ref.scan(market, ts)), f"step {k}"
        if not moved and fast.cache.built:
            outcomes["walked by time alone"] += 1
        for o in found:
            old = before.get(o.opportunity_id)
            if old is not None:
                outcomes["kept" if o is old else "reworded"] += 1
        before = {o.opportunity_id: o for o in found}
        ts += int(rng.choice([S, 60 * S, 1800 * S, 2 * 3600 * S]))
        moved = rng.random() < 0.3
        if moved:  # a few books move too
            for iid in rng.choice(ids, size=3, replace=False).tolist():
                book = market.books[iid]
                if len(book.asks) > 1:
                    market.apply(BookDelta(iid, ts, Side.SELL, Decimal(repr(min(book.asks))),
                                           Decimal(0)))
    assert all(outcomes.values()), outcomes
