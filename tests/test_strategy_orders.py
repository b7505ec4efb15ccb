"""``StrategyContext.orders``: a strategy sees its own orders not yet final, as the ledger
knows them now, so an order that ended without its asking (cancelled by a halt, refused,
never placed) stops being believed.  The maker's live seed 12: a post the venue ended
unseen was believed for ``refresh_s``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from argus_core.config import load_config
from argus_core.interfaces import StrategyContext
from argus_core.models import (
    Bar,
    CancelIntent,
    Intent,
    KnownOrder,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from argus_core.runner import Runner


class Poster:
    """Posts a resting bid far below the market on its 2nd bar, cancels it on its 6th;
    records what ``ctx.orders`` held on each bar."""

    name = "poster"

    def __init__(self) -> None:
        self.n = 0
        self.seen: list[tuple[KnownOrder, ...]] = []

    def on_event(self, event: Any, ctx: StrategyContext) -> list[Any]:
        if not isinstance(event, Bar):
            return []
        self.n += 1
        self.seen.append(tuple(ctx.orders))
        if self.n == 2:
            return [Intent("ma_cross", event.instrument_id, Side.BUY, quantity=Decimal("0.01"),
                           limit_price=Decimal(round(event.close * 0.5)),
                           order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC)]
        if self.n == 6:
            return [CancelIntent("ma_cross")]
        return []

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass


def test_a_strategy_sees_its_working_orders_and_their_end(demo_config: Path,
                                                          tmp_path: Path) -> None:
    poster = Poster()
    Runner(load_config(demo_config), tmp_path / "r", strategies={"ma_cross": poster},  # type: ignore[dict-item]
           max_events=10).run_sync()
    counts = [len(s) for s in poster.seen]
    assert counts[:2] == [0, 0]  # nothing yet; the bid is posted on the 2nd bar
    assert counts[2:6] == [1, 1, 1, 1]
    assert counts[6:] == [0] * len(counts[6:])  # cancelled on the 6th: gone
    (known,) = poster.seen[2]
    assert known.order.side is Side.BUY and known.order.status is OrderStatus.OPEN
    assert known.filled_quantity == 0 and known.order.strategy == "ma_cross"


def test_a_halt_ends_the_orders_a_strategy_sees(demo_config: Path, tmp_path: Path) -> None:
    """Cancelled by the kill switch, not by the strategy: gone from its view too."""
    from argus_core.risk import TradingState

    class Halted(Poster):
        def on_event(self, event: Any, ctx: StrategyContext) -> list[Any]:
            out = super().on_event(event, ctx)
            if self.n == 4:
                runner.set_trading_state(TradingState.HALTED, "a person's kill")
            return [i for i in out if not isinstance(i, CancelIntent)]

    poster = Halted()
    runner = Runner(load_config(demo_config), tmp_path / "r",
                    strategies={"ma_cross": poster}, max_events=10)  # type: ignore[dict-item]
    runner.run_sync()
    counts = [len(s) for s in poster.seen]
    assert counts[2:4] == [1, 1] and counts[5:] == [0] * len(counts[5:]), counts
