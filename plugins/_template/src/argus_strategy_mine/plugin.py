"""Argus plugin ``mine``: settings from ``[plugins.mine]`` and the ``breakout`` strategy."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from argus_core import (
    Bar,
    Forecast,
    Intent,
    MarketEvent,
    RegisterStrategy,
    Side,
    Strategy,
    StrategyContext,
    hookimpl,
)


@attrs.frozen
class Settings:
    """``[plugins.mine]``: when ``breakout`` buys and how sure it is."""

    threshold: float = attrs.field(default=0.01, validator=attrs.validators.gt(0))
    sigma: float = attrs.field(default=0.02, validator=attrs.validators.gt(0))


class Breakout(Strategy):
    """Buys when a bar closes ``threshold`` above its open; sells the whole position on
    the next bar that closes below its open.

    The buy carries a ``Forecast`` and no quantity, so the configured sizer sizes it
    (``kelly``: ``kelly_fraction * mu / sigma**2`` of equity, capped).  An intent with
    neither would be sized 0 by ``kelly`` and never trade.  The sell names its quantity.
    """

    name = "breakout"

    def __init__(self, settings: Settings | None) -> None:
        self.s = settings or Settings()

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if not isinstance(event, Bar):
            return []
        move = event.close / event.open - 1
        held = ctx.portfolio.position(event.instrument_id).quantity
        if held == 0 and move > self.s.threshold:
            return [Intent(self.name, event.instrument_id, Side.BUY,
                           forecast=Forecast(mu=move, sigma=self.s.sigma),
                           reason=f"closed {move:.2%} above its open")]
        if held > 0 and move < 0:
            return [Intent(self.name, event.instrument_id, Side.SELL, quantity=held,
                           reduce_only=True, reason="closed below its open")]
        return []


@hookimpl
def config_class() -> type:
    """The attrs class validating ``[plugins.mine]``."""
    return Settings


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """Register ``breakout``; the core builds it as ``Breakout(settings)``."""
    register(Breakout.name, Breakout)
