"""The orchestrator's strategy wrappers pass ``on_fill`` on with the rules their
``on_event`` keeps: the slot's supervisor lets only cancels through while the slot is
being swapped (no order of a rolled-back version goes out), the canary caps what a fill
makes it buy, and the gates count what a fill asks for."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from argus_orchestrator.gates import IntentCounter
from argus_orchestrator.ladder import CanaryCap, Orchestrator, Supervised, _PendingSwap

from argus_core import (
    Bar,
    CancelIntent,
    Fill,
    Intent,
    Liquidity,
    MarketEvent,
    Side,
    Strategy,
    StrategyContext,
)

IID = "replay:BTC/USD"
FILL = Fill("f1", "c1", "replay", IID, Side.BUY, Decimal(100), Decimal(1), Decimal(0),
            Liquidity.TAKER, 1)


class Answers(Strategy):
    """Answers every fill with a buy of 5 and a cancel."""

    name = "answers"

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Any]:
        return []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Intent | CancelIntent]:
        return [Intent(self.name, IID, Side.BUY, quantity=Decimal(5), reason="again"),
                CancelIntent(self.name, IID, "old quote")]


class Controller:
    """What ``Supervised.on_fill`` reads of its controller."""

    swapping = False

    def heard_fill(self, fill: Fill, ctx: StrategyContext | None) -> None:
        """(A canary's fills are counted: see ``Orchestrator.heard_fill``.)"""


def test_the_supervisor_passes_fills_on_and_only_cancels_while_swapping() -> None:
    controller = Controller()
    wrapped = Supervised(Answers(), controller)  # type: ignore[arg-type]
    assert [type(i) for i in wrapped.on_fill(FILL, None)] == [Intent, CancelIntent]  # type: ignore[arg-type]
    controller.swapping = True
    assert [type(i) for i in wrapped.on_fill(FILL, None)] == [CancelIntent]  # type: ignore[arg-type]


def test_the_slot_is_swapping_from_a_rollback_until_its_swap_is_applied() -> None:
    orchestrator = Orchestrator.__new__(Orchestrator)
    orchestrator._rolled_back, orchestrator._pending_swap = False, None
    assert not orchestrator.swapping
    orchestrator._rolled_back = True  # flagged, not yet taken by the next event
    assert orchestrator.swapping
    orchestrator._rolled_back = False  # taken; the swap back is asked and not applied
    loop = asyncio.new_event_loop()
    try:
        future: asyncio.Future[None] = loop.create_future()
        orchestrator._pending_swap = _PendingSwap(future, "v2", Answers(), {})
        assert orchestrator.swapping
        future.set_result(None)  # the runner applied it
        assert not orchestrator.swapping
    finally:
        loop.close()


def test_the_canary_caps_what_a_fill_makes_it_buy() -> None:
    canary = CanaryCap(Answers(), Decimal(200))
    canary.on_event(Bar(IID, 1, 100.0, 100.0, 100.0, 100.0, 1.0), None)  # type: ignore[arg-type]
    buy, cancel = canary.on_fill(FILL, None)  # type: ignore[arg-type]
    assert isinstance(buy, Intent) and buy.quantity == Decimal(2)  # 200 at 100, not 5
    assert "[canary cap]" in buy.reason and isinstance(cancel, CancelIntent)


def test_the_gates_count_what_a_fill_asks_for() -> None:
    counter = IntentCounter(Answers())
    counter.on_fill(FILL, None)  # type: ignore[arg-type]
    assert (counter.intents, counter.cancels) == (1, 1)
