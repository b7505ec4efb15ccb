"""A plain-Python reference scan: the independent check of the kernel, and the benchmark's
baseline.

It enumerates the same baskets from ``market.events`` with its own loops and
finds each basket's maximum profitable size by a *different* algorithm than
the kernel's joint walk: it merges the cumulative-depth breakpoints of all
legs, then evaluates the marginal basket cost on each segment between
breakpoints.  Fees per share are the market's fee schedule
(``FeeSchedule.unit_fee``), asked per level here.  Pure Python floats, no numpy in
the walk.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from argus_core import MarketState
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.events import (
    is_one_binary_market,
    pays_on_every_outcome,
    repeats_a_token,
)


def best_size(books: list[list[tuple[float, float]]], fees: list[Callable[[float], float]],
              payout: float, sell: bool = False) -> tuple[float, float, float]:
    """(units, sum of price x units, fees) of the largest profitable basket size;
    ``fees[i](price)`` is leg ``i``'s taker fee per share at ``price``."""
    if not books or any(not levels for levels in books):
        return 0.0, 0.0, 0.0
    cumulative = []
    points = set()
    for levels in books:
        acc, cum = 0.0, []
        for _, size in levels:
            acc += size
            cum.append(acc)
            points.add(acc)
        cumulative.append(cum)
    qty = value = fee_total = 0.0
    prev = 0.0
    for point in sorted(points):
        if point > min(cum[-1] for cum in cumulative) + 1e-12:
            break
        # every leg's level for the segment (prev, point]
        unit = unit_fee = 0.0
        for levels, cum, fee in zip(books, cumulative, fees, strict=True):
            idx = next(i for i, c in enumerate(cum) if c > prev + 1e-12)
            price = levels[idx][0]
            unit += price
            unit_fee += fee(price)
        ok = (unit - unit_fee > payout) if sell else (unit + unit_fee < payout)
        if not ok:
            break
        step = point - prev
        qty += step
        value += unit * step
        fee_total += unit_fee * step
        prev = point
    return qty, value, fee_total


def reference_scan(market: MarketState, settings: NegRiskSettings | None = None
                   ) -> list[dict[str, Any]]:
    """Every basket with a profitable size: dicts of kind, event, legs, qty, value, fees."""
    s = settings or NegRiskSettings()
    out = []

    def levels(iid: str, bids: bool) -> list[tuple[float, float]] | None:
        ok, _ = market.tradeable(iid)
        inst = market.instruments.get(iid)
        if not ok or iid in market.settled or (inst is not None and not inst.takes_orders):
            return None
        book = market.books[iid]
        if book.fault():  # a malformed level, or crossed
            return None
        arr = book.bid_levels() if bids else book.ask_levels()
        return [(float(p), float(q)) for p, q in arr.tolist()[: s.max_levels]]

    def fee_of(iid: str) -> Callable[[float], float]:
        schedule = market.fee_schedule(iid)
        return lambda price: float(schedule.unit_fee(Decimal(repr(price))))

    def try_basket(kind: str, event_id: str, ids: list[str], payout: float, sell: bool) -> None:
        books = [levels(i, sell) for i in ids]
        if any(b is None for b in books):
            return
        # a level earning less than min_edge a unit is not taken (the scanner's rule, with
        # its 1e-9 margin in the level's favour)
        edge = float(s.min_edge - Decimal("1e-9")) if s.min_edge else 0.0
        threshold = payout + edge if sell else payout - edge
        qty, value, fees = best_size(books, [fee_of(i) for i in ids], threshold, sell)  # type: ignore[arg-type]
        if qty > 0:
            out.append({"kind": kind, "event_id": event_id, "legs": ids, "qty": qty,
                        "value": value, "fees": fees})

    for ev in market.events.values():
        if ev.closed or repeats_a_token(ev):
            continue
        n = len(ev.outcomes)
        if ev.neg_risk:
            if s.pairs:
                for o in ev.outcomes:
                    if not o.placeholder:
                        try_basket("pair", ev.event_id, [o.yes_instrument_id,
                                                         o.no_instrument_id], 1.0, False)
            if not pays_on_every_outcome(ev, market.instruments) or n < 2 \
                    or n > s.max_outcomes:
                continue
            yes = [o.yes_instrument_id for o in ev.outcomes]
            if s.long_rebalance:
                try_basket("long_rebalance", ev.event_id, yes, 1.0, False)
            if s.short_rebalance and n > 2:
                try_basket("short_rebalance", ev.event_id,
                           [o.no_instrument_id for o in ev.outcomes], float(n - 1), False)
            if s.sell_yes_basket:
                try_basket("sell_yes_basket", ev.event_id, yes, 1.0, True)
        elif s.binary and pays_on_every_outcome(ev, market.instruments) \
                and is_one_binary_market(ev):
            try_basket("binary", ev.event_id, [ev.outcomes[0].yes_instrument_id,
                                               ev.outcomes[1].yes_instrument_id], 1.0, False)
    return out
