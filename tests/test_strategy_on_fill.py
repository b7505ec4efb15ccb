"""A strategy hears the fills of its own orders (``Strategy.on_fill``) as they are booked:
a paper fill before the strategies hear the event that made it, a live fill as soon as the
loop is free (a quiet market does not wait for the instrument's next event: a maker's
exit was quoted only when the next book came), and what it asks for takes the one order
path.  A strategy whose every fill asks for an order that fills at once is heard in
bounded rounds, never in an endless loop.  A fill committed but not yet heard when the
process stops is heard once after the restart, when its instrument has data again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_live_loop import (  # the fake venue, its fixture and the run helper
    IID,
    FakeLiveVenue,
    RestingBuy,
    RestingMarket,
    fake_plugin,
    run_fake,
)

from argus_core import (
    Bar,
    Fill,
    Intent,
    Ledger,
    MarketEvent,
    Order,
    OrderBook,
    OrderType,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
)
from argus_core import runner as runner_module

__all__ = ["fake_plugin"]  # the fixture, imported for pytest


class ExitOnFill(RestingBuy):
    """Rests a buy at 50 (filled from the sixth bar on); on its fill, rests the exit at 110
    (above every bar) and notes what it saw: every call, in order, and the position at the fill."""

    name = "exit_on_fill"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []
        self.held_at_fill: list[Decimal] = []

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        self.calls.append(("event", ctx.ts_ns))
        return super().on_event(event, ctx)

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Intent]:
        self.calls.append(("fill", ctx.ts_ns))
        self.held_at_fill.append(ctx.portfolio.position(IID).quantity)
        return [Intent(self.name, IID, Side.SELL, quantity=fill.quantity,
                       order_type=OrderType.LIMIT, limit_price="110",
                       time_in_force=TimeInForce.GTC, reduce_only=True,
                       reason="exit on fill")]


def test_a_paper_fill_is_heard_once_before_the_event_and_its_exit_is_an_order(
        tmp_path: Path, fake_plugin: None) -> None:
    made: list[ExitOnFill] = []

    def make() -> ExitOnFill:
        made.append(ExitOnFill())
        return made[-1]

    run_fake(tmp_path, "paper", RestingMarket, "exit_on_fill", make)
    (strategy,) = made
    fills = [c for c in strategy.calls if c[0] == "fill"]
    assert len(fills) == 1 and strategy.held_at_fill == [Decimal(1)]
    at = strategy.calls.index(fills[0])
    assert strategy.calls[at + 1] == ("event", fills[0][1])  # that bar's event, after
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = ledger.query("select side, limit_price, status, reason, strategy, ts_ns "
                            "from orders order by ts_ns, client_order_id")
    assert [(r["side"], r["strategy"]) for r in rows] == [("buy", "exit_on_fill"),
                                                           ("sell", "exit_on_fill")]
    assert rows[1]["reason"] == "exit on fill" and Decimal(rows[1]["limit_price"]) == 110
    assert rows[1]["ts_ns"] == fills[0][1] and rows[1]["status"] == "open"


class QuietAfterFill(FakeLiveVenue):
    """Live: two bars, with a quiet spell between them that ends only when the strategy
    has heard its fill (or after 5 s): the fill comes through ``executions()``."""

    heard = asyncio.Event()
    waited_out = False

    async def stream(self) -> AsyncIterator[MarketEvent]:
        yield Bar(IID, 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
        try:
            await asyncio.wait_for(QuietAfterFill.heard.wait(), 5)
        except TimeoutError:
            QuietAfterFill.waited_out = True
        yield Bar(IID, 2 * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
        for _ in range(20):
            await asyncio.sleep(0)

    def _execute(self, order: Order) -> None:
        if order.side is Side.BUY:  # the entry fills; the exit rests
            super()._execute(order)


class BuyThenExit(Strategy):
    """Buys 2 at the first bar; on the fill, sells them (limit 60, resting)."""

    name = "buy_then_exit"

    def __init__(self) -> None:
        self.bars = 0
        self.heard_before_bar: int | None = None

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if not isinstance(event, Bar):
            return []
        self.bars += 1
        return [Intent(self.name, IID, Side.BUY, quantity="2")] if self.bars == 1 else []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Intent]:
        self.heard_before_bar = self.bars + 1
        QuietAfterFill.heard.set()
        return [Intent(self.name, IID, Side.SELL, quantity=fill.quantity,
                       order_type=OrderType.LIMIT, limit_price="60",
                       time_in_force=TimeInForce.GTC, reduce_only=True, reason="exit")]


def test_a_live_fill_in_a_quiet_market_is_heard_at_once_and_its_exit_sent(
        tmp_path: Path, fake_plugin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The idle tick would also deliver it, once a second: far longer than the wait here.
    monkeypatch.setattr(runner_module, "QUIET_TICK_S", 60.0)
    QuietAfterFill.heard, QuietAfterFill.waited_out = asyncio.Event(), False
    made: list[BuyThenExit] = []

    def make() -> BuyThenExit:
        made.append(BuyThenExit())
        return made[-1]

    run_fake(tmp_path, "live", QuietAfterFill, "buy_then_exit", make)
    assert not QuietAfterFill.waited_out, "the fill was not heard while the market was quiet"
    assert made[0].heard_before_bar == 2
    assert [(o.side, o.limit_price) for o in FakeLiveVenue.submitted] == [
        (Side.BUY, None), (Side.SELL, Decimal(60))]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (exit_row,) = ledger.query("select status, reason from orders where side = 'sell'")
    assert exit_row["reason"] == "exit"


class DeepBook(RestingMarket):
    """Paper: one deep two-sided book, then a few bars' worth of books."""

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for i in range(4):
            yield OrderBook(IID, (i + 1) * 10**9, ((99.0, 1e9),), ((101.0, 1e9),))
            for _ in range(3):
                await asyncio.sleep(0)


class BuyOnEveryFill(Strategy):
    """The guard's attack: every fill asks for another market buy, which a deep book
    fills at once (latency 0), which asks for another..."""

    name = "buy_on_every_fill"

    def __init__(self) -> None:
        self.started = False
        self.heard = 0

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if self.started or not isinstance(event, OrderBook):
            return []
        self.started = True
        return [Intent(self.name, IID, Side.BUY, quantity="1", time_in_force=TimeInForce.IOC)]

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Intent]:
        self.heard += 1
        return [Intent(self.name, IID, Side.BUY, quantity="1", time_in_force=TimeInForce.IOC)]


def test_fills_that_ask_for_fills_are_heard_in_bounded_rounds(
        tmp_path: Path, fake_plugin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[BuyOnEveryFill] = []
    per_look: list[int] = []
    hear = runner_module.Runner._hear_fills

    def counted(self: runner_module.Runner) -> None:
        before = made[0].heard
        hear(self)
        per_look.append(made[0].heard - before)

    monkeypatch.setattr(runner_module.Runner, "_hear_fills", counted)

    def make() -> BuyOnEveryFill:
        made.append(BuyOnEveryFill())
        return made[-1]

    runner = run_fake(tmp_path, "paper", DeepBook, "buy_on_every_fill", make)
    # Each look hears at most HEAR_ROUNDS rounds (one fill each here); what the last
    # round's orders filled waits for the next look (an event or an idle point).
    assert max(per_look) == runner_module.HEAR_ROUNDS
    assert made[0].heard == sum(per_look)
    assert runner.n_fills == made[0].heard + len(runner.engine.heard)


class Died(BaseException):
    """The process dies here (what a kill -9 at that point leaves: no further commit)."""


class HearsEachFill(Strategy):
    """Buys 2 at the first bar and keeps the id of every fill it hears in its state (so a
    checkpoint holds what it has heard); ``die_in_on_fill``: the process dies as the
    strategy is about to hear a fill."""

    name = "hears_each_fill"
    die_in_on_fill = False

    def __init__(self) -> None:
        self.bars = 0
        self.heard_ids: list[str] = []

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if not isinstance(event, Bar):
            return []
        self.bars += 1
        return [Intent(self.name, IID, Side.BUY, quantity="2")] if self.bars == 1 else []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Intent]:
        if HearsEachFill.die_in_on_fill:
            raise Died
        self.heard_ids.append(fill.fill_id)
        QuietAfterFill.heard.set()
        return []

    def get_state(self) -> dict[str, Any]:
        return {"bars": self.bars, "heard_ids": self.heard_ids}

    def set_state(self, state: dict[str, Any]) -> None:
        self.bars, self.heard_ids = state["bars"], list(state["heard_ids"])


class LaterBars(FakeLiveVenue):
    """Live, after a restart: two more bars; no order fills again."""

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for i in (3, 4):
            yield Bar(IID, i * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
            for _ in range(5):
                await asyncio.sleep(0)

    def _execute(self, order: Order) -> None:
        pass


def _dies_hearing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  strategy: type[HearsEachFill]) -> tuple[list[Any], Callable[[], Any]]:
    """The run before a restart: live, a quiet spell after the first bar, the process dying
    in ``strategy.on_fill``.  Returns the strategies made so far and their factory (the
    restarts make theirs with it), with the strategies no longer dying."""
    monkeypatch.setattr(runner_module, "QUIET_TICK_S", 60.0)
    QuietAfterFill.heard, QuietAfterFill.waited_out = asyncio.Event(), False
    made: list[Any] = []

    def make() -> Any:
        made.append(strategy())
        return made[-1]

    monkeypatch.setattr(strategy, "die_in_on_fill", True)
    with pytest.raises(Died):
        run_fake(tmp_path, "live", QuietAfterFill, strategy.name, make)
    monkeypatch.setattr(strategy, "die_in_on_fill", False)
    return made, make


def test_a_fill_committed_but_not_yet_heard_is_heard_once_after_a_crash(
        tmp_path: Path, fake_plugin: None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A live fill in a quiet market is booked and committed at once, and its strategy
    hears it at the loop's next look.  The process dies in between: the restarted run
    hears it, once (the checkpoint committed with the fill keeps it as not yet heard),
    and a fill heard before the last checkpoint is not heard again."""
    made, make = _dies_hearing(tmp_path, monkeypatch, HearsEachFill)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (fill,) = ledger.query("select fill_id from fills")  # booked, committed
    assert made[0].heard_ids == []

    caplog.set_level(logging.INFO, logger="argus_core.runner")
    run_fake(tmp_path, "live", LaterBars, "hears_each_fill", make)
    assert "resuming with 1 fill(s) committed before the stop and not yet heard" \
        in caplog.text  # said
    assert made[1].bars == 3  # resumed: the first bar was heard before the crash
    assert made[1].heard_ids == [fill["fill_id"]]
    assert len(FakeLiveVenue.submitted) == 1  # the entry alone: never sent again

    run_fake(tmp_path, "live", LaterBars, "hears_each_fill", make)  # and once only
    assert made[2].heard_ids == [fill["fill_id"]] and made[2].bars == 5


class TwoBuysExitEach(HearsEachFill):
    """Buys 1 twice at the first bar; on each fill rests its exit (limit 60), and the
    process dies as it is about to hear the second (``die_in_on_fill``)."""

    name = "two_buys_exit_each"

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if not isinstance(event, Bar):
            return []
        self.bars += 1
        return [Intent(self.name, IID, Side.BUY, quantity="1", reason=f"entry {i}")
                for i in (1, 2)] if self.bars == 1 else []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Intent]:
        if self.heard_ids and TwoBuysExitEach.die_in_on_fill:
            raise Died
        self.heard_ids.append(fill.fill_id)
        if len(self.heard_ids) == 2:
            QuietAfterFill.heard.set()
        return [Intent(self.name, IID, Side.SELL, quantity="1", order_type=OrderType.LIMIT,
                       limit_price="60", time_in_force=TimeInForce.GTC, reduce_only=True,
                       reason=f"exit of {fill.fill_id}")]


def test_fills_left_unheard_when_an_answer_commits_are_heard_after_a_crash(
        tmp_path: Path, fake_plugin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two fills wait to be heard; the first one's exit is a live order, durable (a commit
    with a checkpoint) before it is sent; the process dies as the strategy is about to
    hear the second.  After the restart the second is heard once, the first not again,
    and no exit is sent twice."""
    made, make = _dies_hearing(tmp_path, monkeypatch, TwoBuysExitEach)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        fill_ids = sorted(r["fill_id"] for r in ledger.query("select fill_id from fills"))
    assert len(fill_ids) == 2 and len(made[0].heard_ids) == 1

    run_fake(tmp_path, "live", LaterBars, "two_buys_exit_each", make)
    assert sorted(made[1].heard_ids) == fill_ids
    sells = [o for o in FakeLiveVenue.submitted if o.side is Side.SELL]
    assert sorted(o.reason for o in sells) == [f"exit of {i}" for i in fill_ids]
