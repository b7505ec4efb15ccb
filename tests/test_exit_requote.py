"""A live reduce-only exit requoted in one step (cancel the working exit, post its
replacement) is not refused because the exit it replaces still counts as working: the
replacement waits for the cancel's answer, then goes out only if it still fits the
position beside what works on (a cancel that failed leaves the old exit working; an exit
that filled before its cancel leaves nothing to close).  The maker campaign's seeds 5
and 11 (no exit at all while the strategy believed one quoted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

from argus_testkit.engine import EngineHarness

from argus_core import (
    Fill,
    Instrument,
    Intent,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
)
from argus_core.interfaces import Venue
from argus_core.models import MarketEvent

INST = Instrument("gated", "X", kind="binary", tick_size="0.01", lot_size="1")


class GatedCancels(Venue):
    """Fills market buys whole at 0.60, rests every limit order; each cancel waits for
    ``gate``, then lands, fails with a 500, or finds the order filled first."""

    name = "gated"

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.gate = asyncio.Event()
        self.sent: list[Order] = []
        self.feed: asyncio.Queue[Fill | OrderUpdate] = asyncio.Queue()

    async def instruments(self) -> list[Instrument]:
        return [INST]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        return
        yield  # pragma: no cover

    async def submit(self, order: Order) -> list[Fill]:
        self.sent.append(order)
        if order.order_type is OrderType.MARKET:
            return [Fill(f"{order.client_order_id}-f", order.client_order_id, self.name,
                         INST.id, order.side, D("0.60"), order.quantity, D(0),
                         Liquidity.TAKER, 1)]
        return []

    async def cancel(self, client_order_id: str) -> None:
        await self.gate.wait()
        if self.outcome == "500":
            raise VenueError("DELETE /order: HTTP 500 (not acted on)")
        if self.outcome == "filled":
            order = next(o for o in self.sent if o.client_order_id == client_order_id)
            self.feed.put_nowait(Fill(f"{client_order_id}-f", client_order_id, self.name,
                                      INST.id, order.side, order.limit_price,
                                      order.quantity, D(0), Liquidity.MAKER, 2))
            await asyncio.sleep(0.05)  # the fill reaches the engine before the answer
            raise VenueError("order already matched")

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate]:
        while True:
            yield await self.feed.get()


def _exit(h: EngineHarness, limit: str, qty: str = "5") -> list[Order]:
    intent = Intent("s", INST.id, Side.SELL, quantity=D(qty), limit_price=D(limit),
                    order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                    reduce_only=True)
    h.engine.seq += 1
    return h.engine._route([intent], 1)


async def _held_with_an_exit(tmp_path: Path, outcome: str) -> tuple[EngineHarness,
                                                                     GatedCancels, str]:
    venue = GatedCancels(outcome)
    h = EngineHarness(tmp_path / "run", venue, INST, D("0.60"))
    await h.start()
    h.order(1, Side.BUY, "5")
    await h.settle()
    assert h.account.portfolio().position(INST.id).quantity == 5
    with h.between_events():
        (old,) = _exit(h, "0.65")
    await h.settle()
    assert h.status(old.client_order_id)[0] is OrderStatus.OPEN
    return h, venue, old.client_order_id


async def _requote(h: EngineHarness) -> list[Order]:
    """Cancel the working exit and post its replacement in one step, as a maker
    strategy's requote does."""
    with h.between_events():
        h.engine.cancel_working("s", INST.id, "requote", Side.SELL)
        new = _exit(h, "0.64")
    await asyncio.sleep(0.05)
    return new


async def test_the_requote_waits_for_the_cancel_then_goes_out(tmp_path: Path) -> None:
    h, venue, old = await _held_with_an_exit(tmp_path, "ok")
    (new,) = await _requote(h)
    assert [o.client_order_id for o in venue.sent][-1] == old  # held back meanwhile
    venue.gate.set()
    await h.settle()
    assert h.status(old)[0] is OrderStatus.CANCELLED
    assert venue.sent[-1].client_order_id == new.client_order_id
    assert h.status(new.client_order_id)[0] is OrderStatus.OPEN
    await h.close()


async def test_a_failed_cancel_leaves_no_room_so_the_requote_is_not_sent(
        tmp_path: Path) -> None:
    h, venue, old = await _held_with_an_exit(tmp_path, "500")
    (new,) = await _requote(h)
    venue.gate.set()
    await h.settle()
    assert h.status(old)[0] is OrderStatus.OPEN  # still working at the venue
    assert new.client_order_id not in [o.client_order_id for o in venue.sent]
    row = h.ledger.order_row(new.client_order_id)
    assert row is not None and row["status"] == OrderStatus.CANCELLED.value
    assert "no room" in row["status_reason"]
    await h.close()


async def test_an_exit_filled_before_its_cancel_leaves_nothing_to_requote(
        tmp_path: Path) -> None:
    h, venue, old = await _held_with_an_exit(tmp_path, "filled")
    (new,) = await _requote(h)
    venue.gate.set()
    await h.settle()
    assert h.status(old)[0] is OrderStatus.FILLED
    assert h.account.portfolio().position(INST.id).quantity == 0
    assert new.client_order_id not in [o.client_order_id for o in venue.sent]
    assert h.status(new.client_order_id)[0] is OrderStatus.CANCELLED
    await h.close()


async def test_a_second_exit_beside_a_working_one_is_still_refused(tmp_path: Path) -> None:
    """The guard's own attack: without a cancel in flight the working exit covers the
    position, so a second exit is vetoed before it is written."""
    h, _venue, _old = await _held_with_an_exit(tmp_path, "ok")
    with h.between_events():
        assert _exit(h, "0.64") == []
    assert any("cover the position" in e["reason"] for e in h.events("veto"))
    await h.close()


async def test_a_bigger_requote_is_cut_to_the_position(tmp_path: Path) -> None:
    """Room freed by a cancel in flight is the cancelled exit's, not more: a requote of
    8 against a position of 5 goes out as 5."""
    h, venue, _old = await _held_with_an_exit(tmp_path, "ok")
    with h.between_events():
        h.engine.cancel_working("s", INST.id, "requote", Side.SELL)
        (new,) = _exit(h, "0.64", qty="8")
    assert new.quantity == 5
    venue.gate.set()
    await h.settle()
    assert venue.sent[-1].client_order_id == new.client_order_id
    await h.close()
