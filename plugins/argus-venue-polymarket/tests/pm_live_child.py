"""A live run in a child process (the restart test kills it with SIGKILL).

``python pm_live_child.py CONFIG RUN_DIR [TOKEN PRICE QTY]`` runs the real core ``Runner``
in live mode (with :class:`RestOnce` in slot ``rest_once`` when TOKEN PRICE QTY are
given).  Not a test module (no ``test_`` prefix); the tests also import :class:`RestOnce`
from it by path.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from argus_core.interfaces import Strategy, StrategyContext
from argus_core.models import (
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Side,
    TimeInForce,
)


class RestOnce(Strategy):
    """Places one GTC buy (below the ask, so it rests) the first time it sees the book of
    ``instrument_id``; remembers that it did through ``get_state`` (the checkpoint)."""

    name = "rest_once"

    def __init__(self, instrument_id: str, price: str, quantity: str) -> None:
        self.instrument_id = instrument_id
        self.price = Decimal(price)
        self.quantity = Decimal(quantity)
        self.sent = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
        """One resting order on the first book of the instrument."""
        if self.sent or not isinstance(event, OrderBook) or \
                event.instrument_id != self.instrument_id:
            return []
        self.sent = True
        return [Intent("rest_once", self.instrument_id, Side.BUY, quantity=self.quantity,
                       limit_price=self.price, order_type=OrderType.LIMIT,
                       time_in_force=TimeInForce.GTC, reason="rest one order")]

    def get_state(self) -> dict[str, Any]:
        """Whether the order went out."""
        return {"sent": self.sent}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore after a restart: never place the order twice."""
        self.sent = bool(state.get("sent"))


class SendOnce(Strategy):
    """Sends each given order ``(instrument id, price, quantity, time in force)`` once, on
    the first book of its instrument."""

    name = "send_once"

    def __init__(self, orders: list[tuple[str, str, str, TimeInForce]]) -> None:
        self.orders = orders
        self.sent: set[str] = set()

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
        """The instrument's order, once."""
        if not isinstance(event, OrderBook) or event.instrument_id in self.sent:
            return []
        out = [Intent("send_once", iid, Side.BUY, quantity=Decimal(qty),
                      limit_price=Decimal(px), order_type=OrderType.LIMIT,
                      time_in_force=tif, reason="test order")
               for iid, px, qty, tif in self.orders if iid == event.instrument_id]
        if out:
            self.sent.add(event.instrument_id)
        return out

    def get_state(self) -> dict[str, Any]:
        """Which orders went out."""
        return {"sent": sorted(self.sent)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore after a restart."""
        self.sent = set(state.get("sent", []))


def main(argv: list[str]) -> None:
    """Run until killed."""
    from argus_core.config import load_config
    from argus_core.runner import Runner

    config, run_dir, *rest = argv
    strategies = {"rest_once": RestOnce(*rest)} if rest else None
    runner = Runner(load_config(config), Path(run_dir), live_confirmed=True,
                    strategies=strategies)
    runner.run_sync()


if __name__ == "__main__":
    main(sys.argv[1:])
