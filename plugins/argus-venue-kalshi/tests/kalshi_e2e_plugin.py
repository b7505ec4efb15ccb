"""The test plugin of ``test_kalshi_argus_run.py``: strategy ``kalshi_e2e`` buys
``quantity`` YES contracts once, IOC at ``limit``, on the first YES book, and places
``rests`` post-only buys from ``rest_limit`` down beside it (they rest: maker orders that
never take).

Child processes load it through a real ``argus`` entry point (a ``*.dist-info`` written
next to a ``PYTHONPATH`` entry, as ``tests/kill9_support.py`` does), so they run the
unmodified ``argus run`` CLI.  It imports only ``argus_core``'s public API.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from argus_core import (
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    RegisterStrategy,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
    hookimpl,
)

PLUGIN_NAME = "kalshi_e2e"


@attrs.frozen
class Settings:
    """``[plugins.kalshi_e2e]``: what to buy and where to rest."""

    instrument_id: str = ""
    quantity: Decimal = attrs.field(default=Decimal(5), converter=Decimal)
    limit: Decimal = attrs.field(default=Decimal("0.45"), converter=Decimal)
    rest_limit: Decimal = attrs.field(default=Decimal("0.30"), converter=Decimal)
    #: post-only buys to rest, one a cent below the other from ``rest_limit`` down
    rests: int = 1


class BuyOnce(Strategy):
    """One marketable IOC buy and one resting post-only buy, on the first YES book."""

    name = PLUGIN_NAME

    def __init__(self, settings: Settings | None) -> None:
        self.s = settings or Settings()
        self.done = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        """Trade once, on the first book of the configured instrument."""
        if self.done or not isinstance(event, OrderBook) or \
                event.instrument_id != self.s.instrument_id:
            return []
        self.done = True
        take = Intent(PLUGIN_NAME, self.s.instrument_id, Side.BUY, quantity=self.s.quantity,
                      limit_price=self.s.limit, order_type=OrderType.LIMIT,
                      time_in_force=TimeInForce.IOC, reason="e2e: take")
        return [take, *(Intent(PLUGIN_NAME, self.s.instrument_id, Side.BUY,
                               quantity=Decimal(1),
                               limit_price=self.s.rest_limit - Decimal("0.01") * k,
                               order_type=OrderType.LIMIT, time_in_force=TimeInForce.POST_ONLY,
                               reason=f"e2e: rest {k}") for k in range(self.s.rests))]

    def get_state(self) -> dict[str, Any]:
        """Whether it traded (checkpointed, so a resumed run does not trade again)."""
        return {"done": self.done}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore after a restart."""
        self.done = bool(state.get("done"))


@hookimpl
def config_class() -> type:
    """``[plugins.kalshi_e2e]``."""
    return Settings


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """Register ``kalshi_e2e``."""
    register(PLUGIN_NAME, BuyOnce)
