"""Builtin plugin ``example``: the moving-average crossover strategy ``ma_cross``.

It is deliberately plain (the AI orchestrator's first incumbent): long when
the fast simple moving average of closes is above the slow one, flat
otherwise.  It decides on a bar only after that bar has closed, and its
whole state is JSON, so it checkpoints and hot-swaps cleanly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs

from argus_core.hookspecs import RegisterStrategy, hookimpl
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.models import Bar, Forecast, Intent, MarketEvent, OrderType, Side, TimeInForce


@attrs.frozen
class ExampleSettings:
    """``[plugins.example]``: parameters of ``ma_cross``."""

    fast: int = attrs.field(default=10, validator=attrs.validators.gt(0))
    slow: int = attrs.field(default=40, validator=attrs.validators.gt(0))
    instrument_id: str | None = None  # trade only this instrument (default: any bar)

    def __attrs_post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")


class MovingAverageCross(Strategy):
    """Long when SMA(fast) > SMA(slow) of bar closes, flat otherwise."""

    name = "ma_cross"

    def __init__(self, settings: ExampleSettings | None) -> None:
        self.s = settings or ExampleSettings()
        #: The loop hands this strategy only its instrument's events (see Runner._route).
        self.listens_to = frozenset({self.s.instrument_id}) if self.s.instrument_id else None
        self.closes: deque[float] = deque(maxlen=self.s.slow)
        # The fast window's closes kept apart: summing it does not walk the slow window.
        self._recent: deque[float] = deque(maxlen=self.s.fast)
        self.long = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        s = self.s
        if type(event) is not Bar or (s.instrument_id and event.instrument_id != s.instrument_id):
            return ()
        closes = self.closes
        closes.append(event.close)
        self._recent.append(event.close)
        if len(closes) < s.slow:
            return ()
        # Sums recomputed from the window, oldest first (no running sum whose rounding
        # drifts over years of bars): cheap for windows this size.
        fast = sum(self._recent) / s.fast
        slow = sum(closes) / s.slow
        want_long = fast > slow
        if want_long == self.long:
            return ()
        self.long = want_long
        if want_long:
            edge = (fast - slow) / slow
            return (Intent(self.name, event.instrument_id, Side.BUY, order_type=OrderType.MARKET,
                           time_in_force=TimeInForce.IOC, reason="fast SMA crossed above slow",
                           forecast=Forecast(mu=edge, sigma=0.02, confidence=0.5)),)
        held = ctx.portfolio.position(event.instrument_id).quantity
        if held <= 0:
            return ()
        return (Intent(self.name, event.instrument_id, Side.SELL, quantity=held,
                       order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
                       reason="fast SMA crossed below slow", reduce_only=True),)

    def get_state(self) -> dict[str, Any]:
        return {"closes": list(self.closes), "long": self.long}

    def set_state(self, state: dict[str, Any]) -> None:
        self.closes = deque((float(c) for c in state.get("closes", [])), maxlen=self.s.slow)
        self._recent = deque(self.closes, maxlen=self.s.fast)
        self.long = bool(state.get("long", False))



@hookimpl
def config_class() -> type:
    """``[plugins.example]`` settings."""
    return ExampleSettings


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """Register ``ma_cross``."""
    register(MovingAverageCross.name, MovingAverageCross)
