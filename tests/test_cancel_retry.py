"""A live cancel the venue fails (a 5xx it did not act on, an unreachable venue) is owed:
the engine asks again on later market events, every 2 s of market time, while the order
still works, so a quote is never left live at the venue while the strategy believes it
gone; once the order is final it stops asking."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

from argus_testkit.engine import EngineHarness

from argus_core import (
    Bar,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
)
from argus_core.interfaces import Venue
from argus_core.models import MarketEvent

INST = Instrument("flaky", "X", kind="binary", tick_size="0.01", lot_size="1")


class FlakyCancels(Venue):
    """Acknowledges every order; refuses the first ``failures`` cancels with a 500."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures, self.cancels = failures, 0
        self.feed: asyncio.Queue[Fill | OrderUpdate] = asyncio.Queue()

    async def instruments(self) -> list[Instrument]:
        return [INST]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        return
        yield  # pragma: no cover

    async def submit(self, order: Order) -> list[Fill]:
        return []

    async def cancel(self, client_order_id: str) -> None:
        self.cancels += 1
        if self.cancels <= self.failures:
            raise VenueError("DELETE /order: HTTP 500 (not acted on)")

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate]:
        while True:
            yield await self.feed.get()


def bar(h: EngineHarness, ts_s: float) -> None:
    event = Bar(INST.id, int(ts_s * 1e9), 0.4, 0.4, 0.4, 0.4, 1.0)
    h.market.apply(event)
    with h.between_events():
        h.engine.on_market_event(event)


async def test_a_failed_cancel_is_asked_again_until_it_lands(tmp_path: Path) -> None:
    venue = FlakyCancels(failures=2)
    h = EngineHarness(tmp_path / "run", venue, INST, D("0.40"))
    await h.start()
    coid = h.order(1, Side.BUY, "10", limit="0.39", tif=TimeInForce.GTC)
    await h.settle()
    await h.cancel(coid)
    assert venue.cancels == 1 and h.status(coid)[0] is OrderStatus.OPEN
    bar(h, 1.0)  # within 2 s: not yet
    await h.settle()
    assert venue.cancels == 1
    bar(h, 3.0)
    await h.settle()
    assert venue.cancels == 2 and h.status(coid)[0] is OrderStatus.OPEN  # failed again
    bar(h, 5.5)
    await h.settle()
    assert venue.cancels == 3 and h.status(coid)[0] is OrderStatus.CANCELLED
    bar(h, 9.0)
    await h.settle()
    assert venue.cancels == 3  # done: never asked again


async def test_an_order_that_ended_meanwhile_is_not_cancelled_again(tmp_path: Path) -> None:
    venue = FlakyCancels(failures=1)
    h = EngineHarness(tmp_path / "run", venue, INST, D("0.40"))
    await h.start()
    coid = h.order(1, Side.BUY, "10", limit="0.39", tif=TimeInForce.GTC)
    await h.settle()
    await h.cancel(coid)
    venue.feed.put_nowait(OrderUpdate(coid, OrderStatus.CANCELLED, ts_ns=2_000_000_000,
                                      reason="cancelled at the venue"))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if h.status(coid)[0] is OrderStatus.CANCELLED:
            break
    bar(h, 3.0)
    await h.settle()
    assert venue.cancels == 1
