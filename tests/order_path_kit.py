"""A scriptable live venue driven through the real ``Runner`` (a red team's kit, used by
``test_order_path_redteam.py``): each script step is a market event, a callable run
between events, ``"fill"`` (fill every held order) or ``"sleep S"``; what the venue
received and published is kept for the tests to compare with the ledger."""
from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from argus_core import plugins
from argus_core.cli import cli
from argus_core.config import parse_config
from argus_core.hookspecs import hookimpl
from argus_core.interfaces import Strategy, StrategyContext, Venue
from argus_core.ledger import Ledger
from argus_core.models import (
    Bar,
    Fill,
    Instrument,
    Intent,
    Liquidity,
    MarketEvent,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from argus_core.runner import Runner

X, Y = "rt:X/USD", "rt:Y/USD"
S = 10**9


def cli_(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output


class RTVenue(Venue):
    """Script steps: market events; callables (run between events; may be async-free);
    "fill" fills every held order in full.  Orders are acknowledged then rest; with
    fill_at_once, non-GTC orders fill at once.  Everything the venue received is in
    ``submitted``; ``trades`` every fill it published (the venue's truth)."""

    name = "rt"
    supports_live_orders = True
    supports_baskets = False
    default_stale_after_s = 0.0
    script: ClassVar[list[Any]] = []
    fill_at_once: ClassVar[bool] = True
    submitted: ClassVar[list[Order]] = []
    cancelled: ClassVar[list[str]] = []
    held: ClassVar[list[Order]] = []
    trades: ClassVar[list[Fill]] = []
    inst: ClassVar[object] = None  # the live instance
    n: ClassVar[int] = 0

    def __init__(self, settings: object) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        RTVenue.inst = self

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument("rt", "X/USD"), Instrument("rt", "Y/USD")]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for step in list(type(self).script):
            if step == "fill":
                for order in list(RTVenue.held):
                    self.fill(order)
            elif isinstance(step, str) and step.startswith("sleep"):
                await asyncio.sleep(float(step.split()[1]))
            elif callable(step):
                r = step()
                if asyncio.iscoroutine(r):
                    await r
            else:
                yield step
            for _ in range(10):
                await asyncio.sleep(0)

    def fill(self, order: Order, qty: Decimal | None = None, price: Decimal | None = None,
             fill_id: str | None = None, publish: bool = True) -> Fill:
        RTVenue.n += 1
        q = order.quantity if qty is None else Decimal(qty)
        f = Fill(fill_id or f"F{RTVenue.n}-{order.client_order_id}", order.client_order_id,
                 "rt", order.instrument_id, order.side,
                 price if price is not None else (order.limit_price or Decimal(100)),
                 q, Decimal(0), Liquidity.TAKER, 1)
        done = sum((t.quantity for t in RTVenue.trades
                    if t.client_order_id == order.client_order_id), Decimal(0)) + q
        if done >= order.quantity and order in RTVenue.held:
            RTVenue.held.remove(order)
        RTVenue.trades.append(f)
        if publish:
            self.queue.put_nowait(f)
        return f

    async def submit(self, order: Order) -> list[Fill]:
        RTVenue.submitted.append(order)
        RTVenue.held.append(order)
        self.queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1,
                                          f"V-{len(RTVenue.submitted)}"))
        if type(self).fill_at_once and order.time_in_force is not TimeInForce.GTC:
            self.fill(order)
        return []

    async def cancel(self, client_order_id: str) -> None:
        RTVenue.cancelled.append(client_order_id)
        for order in list(RTVenue.held):
            if order.client_order_id == client_order_id:
                RTVenue.held.remove(order)
                self.queue.put_nowait(OrderUpdate(client_order_id, OrderStatus.CANCELLED,
                                                  1, reason="cancelled"))

    async def open_orders(self) -> list[Order]:
        return list(RTVenue.held)

    async def executions(self) -> AsyncIterator[Any]:
        while True:
            yield await self.queue.get()


def register(monkeypatch: pytest.MonkeyPatch, cls: type[RTVenue] = RTVenue) -> None:
    RTVenue.script, RTVenue.fill_at_once = [], True
    RTVenue.submitted, RTVenue.cancelled, RTVenue.held, RTVenue.trades = [], [], [], []
    RTVenue.n = 0
    module = types.ModuleType("order_path_kit_venue")
    module.register_venues = hookimpl(lambda register: register("rt", cls))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "order_path_kit_venue", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS, ("rt", "order_path_kit_venue")))


def reregister(cls: type[RTVenue]) -> None:
    sys.modules["order_path_kit_venue"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("rt", cls))


def runner(tmp_path: Path, strategies: dict[str, Strategy], *, checks: Sequence[str] = (),
           extra: dict[str, Any] | None = None, mode: str = "live") -> Runner:
    raw: dict[str, Any] = {"argus": {"plugins": [], "mode": mode},
                           "run": {"venue": "rt", "strategies": [],
                                   "risk_checks": list(checks), "starting_cash": "100000"}}
    for table, values in (extra or {}).items():
        raw.setdefault(table, {}).update(values)
    config = parse_config(raw, tmp_path / "c.toml")
    return Runner(config, tmp_path / "run", live_confirmed=mode == "live",
                  strategies=strategies)


def bar(iid: str, t: int, price: float = 100.0) -> Bar:
    return Bar(iid, t * S, price, price + 1, price - 1, price, 1000.0)


def book(iid: str, t: int, bid: float = 99.0, ask: float = 101.0, size: float = 100.0) -> OrderBook:
    return OrderBook(iid, t * S, bids=((bid, size),), asks=((ask, size),))


def q(run_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    with Ledger.in_dir(run_dir) as ledger:
        return ledger.query(sql, params)


def position(run_dir: Path, iid: str = X) -> Decimal:
    rows = q(run_dir, "select quantity from positions where instrument_id = ?", (iid,))
    return Decimal(rows[0]["quantity"]) if rows else Decimal(0)


def venue_position(iid: str = X) -> Decimal:
    return sum((t.quantity * (1 if t.side is Side.BUY else -1) for t in RTVenue.trades
                if t.instrument_id == iid), Decimal(0))


def ledger_position_from_fills(run_dir: Path, iid: str = X) -> Decimal:
    rows = q(run_dir, "select side, quantity from fills where instrument_id = ?", (iid,))
    return sum((Decimal(r["quantity"]) * (1 if r["side"] == "buy" else -1) for r in rows),
               Decimal(0))


class Scripted(Strategy):
    """Emits, on the k-th event it sees (counting from 1), the intents plan[k] returns."""

    name = "s"

    def __init__(self, plan: dict[int, Callable[[MarketEvent, StrategyContext], Sequence[Intent]]]
                 ) -> None:
        self.plan, self.k = plan, 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        self.k += 1
        f = self.plan.get(self.k)
        return tuple(f(event, ctx)) if f else ()

    def get_state(self) -> dict[str, Any]:
        return {"k": self.k}

    def set_state(self, state: dict[str, Any]) -> None:
        self.k = int(state.get("k", 0))


def buy(iid: str = X, qty: str = "2", limit: str = "101", tif: TimeInForce = TimeInForce.IOC,
        slot: str = "s", **kw: Any) -> Intent:
    return Intent(slot, iid, Side.BUY, quantity=Decimal(qty), order_type=OrderType.LIMIT,
                  limit_price=Decimal(limit), time_in_force=tif, **kw)


def sell(iid: str = X, qty: str = "2", limit: str = "99", tif: TimeInForce = TimeInForce.IOC,
         slot: str = "s", **kw: Any) -> Intent:
    return Intent(slot, iid, Side.SELL, quantity=Decimal(qty), order_type=OrderType.LIMIT,
                  limit_price=Decimal(limit), time_in_force=tif, **kw)
