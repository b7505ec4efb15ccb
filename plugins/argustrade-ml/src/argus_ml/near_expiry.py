"""``ml_near_expiry``: buys binary contracts close to resolution that the market prices
high (0.85-0.95 by default) when the forecaster's ``p_win`` beats the ask net of fees.

Rules, on every book update of a binary instrument (``Instrument.kind == "binary"``)
whose ``meta["settles_ns"]`` states its scheduled resolution time (integer nanoseconds, or
a float holding one; anything else: no trade):

1. Only within ``expiry_window_s`` before resolution (and not after it: at 0 s left or
   later, nothing), on a contract that has not settled already (a market can resolve
   before its scheduled time) and whose book is tradeable (live, not stale).
2. Only when the best ask is within ``[min_price, max_price]``.
3. The forecaster (``[plugins.ml] forecaster``) gives ``p_win`` through
   :func:`~argus_ml.forecaster.gated_forecast` (shadow models and paper models in a
   live run give nothing); cost = ask + the venue's fee on it; buy when
   ``p_win - cost > near_edge``.
4. Stake = binary Kelly at that cost x ``kelly_fraction`` x the forecast's confidence,
   capped at ``max_fraction`` of equity; contracts floored to the lot and to the depth at
   the ask; a LIMIT at the ask, fill-or-kill.  One bet per contract; it is held to
   resolution (the venue's settlement closes it).

The ``ml`` forecaster only has a view at a window's opening, so on ``updown_replay``
(whose stated books sit at 0.5 anyway) this strategy never trades; it is meant for
venues with real quotes and a forecaster that prices a market mid-way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from argus_core import (
    BookDelta,
    Forecast,
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
)
from argus_ml.config import MLSettings
from argus_ml.forecaster import find_forecaster, gated_forecast
from argus_ml.market import kelly_fraction
from argus_ml.strategy import contract_cost, contracts_for


def _settles_ns(value: object) -> int | None:
    """``meta["settles_ns"]`` as integer nanoseconds, or None when it is not one (a
    string, NaN, a bool: ``int()`` of them raised inside the strategy, or read True as
    1 ns)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


class MLNearExpiry(Strategy):
    """High-priced binaries near resolution that the forecaster rates above ask + fee
    (module docstring: every rule)."""

    name = "ml_near_expiry"

    def __init__(self, settings: MLSettings | None) -> None:
        self.s = settings or MLSettings()
        self.bought: set[str] = set()
        self.stats = {"candidates": 0, "gated": 0, "no_edge": 0, "bets": 0}

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        """A book update of a binary near resolution may open one bet."""
        if not isinstance(event, OrderBook | BookDelta):
            return []
        iid = event.instrument_id
        inst = ctx.market.instruments.get(iid)
        if inst is None or inst.kind != "binary" or iid in self.bought:
            return []
        settles_ns = _settles_ns(inst.meta.get("settles_ns"))
        if settles_ns is None:
            return []
        left_ns = settles_ns - ctx.ts_ns
        if not 0 < left_ns <= self.s.expiry_window_s * 1e9:
            return []
        if iid in ctx.market.settled or not ctx.market.tradeable(iid)[0]:
            # resolved early (a Settlement before settles_ns) or its book closed: the
            # risk layer vetoes the order, but the contract was counted as a bet and never
            # looked at again
            return []
        ask, cost, shown = contract_cost(ctx, iid)
        if not self.s.min_price <= ask <= self.s.max_price or not 0.0 < cost < 1.0:
            return []
        self.stats["candidates"] += 1
        forecaster = find_forecaster(ctx, self.s.forecaster, self.name)
        fc, _why = gated_forecast(forecaster, iid, ctx)
        if fc is None or fc.p_win is None:
            self.stats["gated"] += 1
            return []
        edge = fc.p_win - cost
        if edge <= self.s.near_edge:
            self.stats["no_edge"] += 1
            return []
        f = min(kelly_fraction(fc.p_win, cost) * self.s.kelly_fraction * fc.confidence,
                self.s.max_fraction)
        qty = contracts_for(ctx, inst, f, cost, shown)
        if qty <= 0 or qty < inst.min_size:
            self.stats["no_edge"] += 1
            return []
        self.bought.add(iid)
        self.stats["bets"] += 1
        return [Intent(self.name, iid, Side.BUY, quantity=qty, limit_price=Decimal(repr(ask)),
                       order_type=OrderType.LIMIT, time_in_force=TimeInForce.FOK,
                       forecast=Forecast(p_win=fc.p_win, payoff=(1.0 - cost) / cost,
                                         confidence=fc.confidence),
                       decision_price=Decimal(repr(ask)),
                       reason=f"near expiry ({left_ns / 1e9:.0f}s left): p {fc.p_win:.3f} "
                              f"vs ask {ask} + fee = {cost:.4f}")]

    def get_state(self) -> dict[str, Any]:
        """Contracts already bought and the counters."""
        return {"bought": sorted(self.bought), "stats": dict(self.stats)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self.bought = set(state.get("bought", []))
        self.stats.update(state.get("stats", {}))
