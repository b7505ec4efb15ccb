"""``ResolutionScanner``: decided markets still quoted below their payout.

A token is *decided* when

* ``resolved`` -- the venue reported its resolution (a ``Settlement`` in the market state)
  at payout ``P > 0`` (1 for the winning token); risk-free, **executable** lane; the
  horizon is ``tau = redemption_delay``;
* ``near_certain`` -- unresolved, its best bid is at least ``near_certain_price`` and its
  event ends within ``max_hours_to_expiry``; assumed payout ``P = 1`` but it can still
  lose, so ``risk_free=False``, **research** lane; ``tau = max(end - now, 0) +
  redemption_delay``.

Buying down the ask ladder ``(p_k, q_k)``, level ``k`` is taken while both

    e_k = P - p_k - f(p_k) >= max(min_edge, > 0)              (net edge per share)
    e_k / (p_k + f(p_k)) * YEAR / max(tau, min_horizon) >= min_annualized_return

where ``f = FeeSchedule.unit_fee`` of the venue's schedule for the token
(``market.fee_schedule``).  The reported opportunity is exact: ``Q = sum q_k`` (lots of
0.01, capped by ``max_size``), ``costs = sum FeeSchedule.fee(p_k, q_k)`` (one taker fill
per level), ``expected_profit = P Q - sum p_k q_k - costs``, ``edge_per_unit =
expected_profit / Q``, one IOC buy leg limited at the deepest price taken.

Ids name the book state, ``resolution:<kind>:<token>:<book ts_ns>``, so a re-scan of an
unchanged book reports the same opportunity (the core acts on an id once).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from argus_core import MarketState, Opportunity, Scanner
from argus_scanners_polymarket.common import (
    EXECUTABLE,
    NS_PER_HOUR,
    NS_PER_YEAR,
    RESEARCH,
    buy_leg,
    edge,
    lane_reason,
    token_map,
    walk_asks,
)
from argus_scanners_polymarket.config import PmScannersSettings, ResolutionSettings


def annualized(edge_per_share: Decimal, cost_per_share: Decimal, horizon_ns: int) -> Decimal:
    """Simple annualised return of paying ``cost_per_share`` to net ``edge_per_share``
    after ``horizon_ns``: ``edge / cost * YEAR / horizon``."""
    return edge_per_share / cost_per_share * Decimal(NS_PER_YEAR) / Decimal(horizon_ns)


class ResolutionScanner(Scanner):
    """Resolved or near-certain tokens quoted below payout net of fees and time."""

    name: ClassVar[str] = "resolution"

    def __init__(self, settings: PmScannersSettings | ResolutionSettings | None = None) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.resolution
        self.settings = settings or ResolutionSettings()

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every decided token with a profitable ask ladder, most profitable first."""
        s = self.settings
        refs = token_map(market)
        now = max(ts_ns, market.now_ns)
        delay_ns = int(s.redemption_delay_hours * NS_PER_HOUR)
        floor_ns = int(s.min_horizon_hours * NS_PER_HOUR)
        max_to_expiry_ns = int(s.max_hours_to_expiry * NS_PER_HOUR)
        found: list[Opportunity] = []
        for iid, book in market.books.items():
            if not book.asks or not market.tradeable(iid)[0]:
                continue
            ref = refs.get(iid)
            settled = market.settled.get(iid)
            if settled is not None:
                if settled.price <= 0:
                    continue
                kind, payout, horizon = "resolved", settled.price, delay_ns
                lane, risk_free = EXECUTABLE, True
                why = f"resolved upstream at {settled.price} ({settled.reason or 'settlement'})"
            else:
                if ref is None or ref.event.end_ts_ns is None or ref.event.closed:
                    continue
                to_end = ref.event.end_ts_ns - now
                bid = book.best_bid()
                if to_end > max_to_expiry_ns or bid is None or bid < float(s.near_certain_price):
                    continue
                kind, payout, horizon = "near_certain", Decimal(1), max(to_end, 0) + delay_ns
                lane, risk_free = RESEARCH, False
                why = (f"best bid {bid} >= {s.near_certain_price} with "
                       f"{max(to_end, 0) / NS_PER_HOUR:.1f}h to the event's end; can still lose")
            horizon = max(horizon, floor_ns)

            def keep(price: Decimal, unit_fee: Decimal, payout: Decimal = payout,
                     horizon: int = horizon) -> bool:
                e = payout - price - unit_fee
                return (e > 0 and e >= s.min_edge
                        and annualized(e, price + unit_fee, horizon) >= s.min_annualized_return)

            walk = walk_asks(book.ask_levels(), market.fee_schedule(iid), keep=keep,
                             max_qty=s.max_size)
            inst = market.instruments.get(iid)
            if walk.quantity <= 0 or (inst is not None and walk.quantity < inst.min_size):
                continue
            profit = payout * walk.quantity - walk.value - walk.fees
            if profit <= 0:
                continue
            avg = walk.value / walk.quantity
            rate = annualized(profit / walk.quantity, (walk.value + walk.fees) / walk.quantity,
                              horizon)
            name = ref.outcome.name if ref is not None else iid
            found.append(Opportunity(
                opportunity_id=f"resolution:{kind}:{iid}:{book.ts_ns}",
                scanner=self.name, ts_ns=ts_ns, kind=kind, legs=(buy_leg(iid, walk),),
                edge_per_unit=edge(profit, walk.quantity), max_size=walk.quantity,
                expected_profit=profit, costs=walk.fees,
                lane=lane,
                reason=lane_reason(lane, (
                    f"buy {walk.quantity} of {name!r} at avg {avg:.6f} (limit {walk.limit}), "
                    f"pays {payout}; {why}; {float(rate):.1%} annualised over "
                    f"{horizon / NS_PER_HOUR:.1f}h")),
                risk_free=risk_free, event_id=ref.event.event_id if ref is not None else ""))
        found.sort(key=lambda o: o.expected_profit, reverse=True)
        return found
