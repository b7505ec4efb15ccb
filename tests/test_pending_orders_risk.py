"""Position and exposure limits count the run's working orders as if they filled: a
strategy (or an AI rewrite of one) resting ten buys of the position limit's size holds
the limit once, not ten times, at a venue that could fill them all.  A live order whose
cancel is in flight still counts until the venue says it ended; an exit is never held by
what works beside it (the kill switch's flatten must always go out)."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_test_helpers import BUNDLED_BARS
from argus_testkit.engine import EngineHarness

from argus_core import (
    Fill,
    Instrument,
    Intent,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Strategy,
    TimeInForce,
    hookimpl,
)
from argus_core.builtins.risk_checks import GrossExposure, MaxPosition, RiskSettings
from argus_core.config import parse_config
from argus_core.interfaces import RiskContext, Venue
from argus_core.ledger import Ledger
from argus_core.models import MarketEvent, Portfolio, Position
from argus_core.risk import RiskEngine, TradingState, reduces_position, state_allows
from argus_core.runner import Runner

INST = Instrument("x", "X", kind="binary", tick_size="0.01", lot_size="1")


# -- the checks themselves --------------------------------------------------------------
def _buy(qty: str = "1", reduce_only: bool = False, side: Side = Side.BUY) -> Intent:
    return Intent("s", INST.id, side, quantity=D(qty), limit_price=D("0.50"),
                  order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                  reduce_only=reduce_only)


def _portfolio(held: str = "0") -> Portfolio:
    positions = {INST.id: Position(INST.id, D(held), D("0.50"))} if held != "0" else {}
    return Portfolio(D(1000), positions, {INST.id: D("0.50")})


def test_max_position_counts_the_sides_working_orders() -> None:
    check, ctx = MaxPosition(RiskSettings(max_position_qty=D(10))), RiskContext()
    assert check.check(_buy("10"), D(10), D("0.5"), _portfolio(), ctx).action.value == "allow"
    ctx.pending = D(10)  # ten already resting: nothing more may open
    decision = check.check(_buy("10"), D(10), D("0.5"), _portfolio(), ctx)
    assert decision.action.value == "veto" and "position limit" in decision.reason
    ctx.pending = D(4)
    decision = check.check(_buy("10"), D(10), D("0.5"), _portfolio("3"), ctx)
    assert decision.action.value == "shrink" and decision.quantity == 3  # 10 - (3 + 4)


def test_gross_exposure_counts_the_working_orders_exposure() -> None:
    check = GrossExposure(RiskSettings(max_gross_exposure_fraction=D(1)))
    ctx = RiskContext(pending_exposure=D(900))  # of an equity of 1,000
    decision = check.check(_buy("1000"), D(1000), D("0.5"), _portfolio(), ctx)
    assert decision.action.value == "shrink" and decision.quantity == 200
    assert "working orders' 900.00" in decision.reason


def test_two_reducing_orders_that_together_flip_the_position_are_not_both_reducing() -> None:
    """REDUCING lets through what reduces the position: a second sell of the whole long
    beside a working one would, if both filled, open a short of the same size."""
    sell = _buy("5", side=Side.SELL)
    assert reduces_position(sell, D(5), _portfolio("5"))
    assert not reduces_position(sell, D(5), _portfolio("5"), pending=D(5))
    assert not state_allows(TradingState.REDUCING, sell, D(5), _portfolio("5"), D(5))
    assert state_allows(TradingState.REDUCING, sell, D(5), _portfolio("5"), D(0))
    engine = RiskEngine([MaxPosition(RiskSettings(max_position_qty=D(1)))],
                        RiskContext(trading_state="reducing", pending=D(5)))
    assert not engine.evaluate(sell, D(5), D("0.5"), _portfolio("5")).allowed


def test_a_halted_exit_is_never_held_by_working_orders() -> None:
    exit_ = _buy("5", reduce_only=True, side=Side.SELL)
    engine = RiskEngine([MaxPosition(RiskSettings(max_position_qty=D(1)))],
                        RiskContext(trading_state="halted", pending=D(50)))
    assert engine.evaluate(exit_, D(5), D("0.5"), _portfolio("5")).allowed


# -- a paper run ------------------------------------------------------------------------
class RestingBuys(Strategy):
    """On every bar, one more GTC buy of 0.01 BTC far below the market (it never fills)."""

    name = "resting_buys"

    def on_event(self, event: Any, ctx: Any) -> list[Intent]:
        close = getattr(event, "close", None)
        if close is None:
            return []
        limit = (D(str(close)) / 2).quantize(D("0.1"))
        return [Intent(ctx.slot if hasattr(ctx, "slot") else "", event.instrument_id,
                       Side.BUY, quantity=D("0.01"), limit_price=limit,
                       order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                       reason="rest")]


@pytest.fixture
def resting_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_core import plugins

    module = types.ModuleType("argus_test_resting")
    module.register_strategies = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("resting_buys", lambda settings: RestingBuys()))
    monkeypatch.setitem(sys.modules, "argus_test_resting", module)
    monkeypatch.setattr(plugins, "BUILTINS",
                        (*plugins.BUILTINS, ("resting", "argus_test_resting")))


def test_a_paper_strategy_resting_buys_cannot_stack_past_the_position_limit(
        tmp_path: Path, resting_plugin: None) -> None:
    config = parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": ["resting_buys"],
                "sizer": "fixed_fraction"},
        "plugins": {"replay": {"bars_csv": str(BUNDLED_BARS), "start": "2022-01-01",
                               "end": "2022-01-03"},
                    "risk": {"max_position_qty": "0.03", "max_orders_per_minute": 1000}}},
        tmp_path / "c.toml")
    Runner(config, tmp_path / "run").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = ledger.query("select quantity, status from orders")
        vetoes = ledger.query("select reason from risk_events where check_name = "
                              "'max_position' and action = 'veto'")
    assert sum(D(o["quantity"]) for o in orders) == D("0.03")  # three, then none
    assert {o["status"] for o in orders} == {"open"}
    assert len(vetoes) > 20 and "position limit" in vetoes[0]["reason"]


# -- live: an order whose cancel is in flight still counts -----------------------------
class SlowCancels(Venue):
    """Rests every limit order; a cancel lands only when ``gate`` opens."""

    name = "slow"

    def __init__(self) -> None:
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
        return []

    async def cancel(self, client_order_id: str) -> None:
        await self.gate.wait()

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate]:
        while True:
            yield await self.feed.get()


async def test_a_live_bid_being_cancelled_still_counts_until_the_venue_says_so(
        tmp_path: Path) -> None:
    """A maker's requote (cancel the bid, post the new one in one step) at the position
    limit: the new bid is vetoed while the old one may still fill; once the cancel is
    answered the same requote goes out."""
    venue = SlowCancels()
    h = EngineHarness(tmp_path / "run", venue, INST, D("0.50"))
    h.risk.checks = [MaxPosition(RiskSettings(max_position_qty=D(5)))]
    await h.start()

    def bid(limit: str) -> list[Order]:
        h.engine.seq += 1
        return h.engine._route([Intent("s", INST.id, Side.BUY, quantity=D(5),
                                       limit_price=D(limit), order_type=OrderType.LIMIT,
                                       time_in_force=TimeInForce.GTC)], 1)

    with h.between_events():
        (old,) = bid("0.48")
    await h.settle()
    assert h.status(old.client_order_id)[0] is OrderStatus.OPEN
    with h.between_events():
        h.engine.cancel_working("s", INST.id, "requote", Side.BUY)
        assert bid("0.49") == []  # the old bid could still fill: no second one
    await asyncio.sleep(0.05)
    assert [o.client_order_id for o in venue.sent] == [old.client_order_id]
    venue.gate.set()
    await h.settle()
    assert h.status(old.client_order_id)[0] is OrderStatus.CANCELLED
    with h.between_events():
        (new,) = bid("0.49")
    await h.settle()
    assert venue.sent[-1].client_order_id == new.client_order_id
    await h.close()


# -- a basket's legs count towards each other -------------------------------------------
def _leg(qty: str, side: Side = Side.BUY) -> Intent:
    return Intent("s", INST.id, side, quantity=D(qty), limit_price=D("0.50"),
                  order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, basket_id="b1")


async def test_a_baskets_legs_cannot_together_walk_past_the_position_limit(
        tmp_path: Path) -> None:
    """Every leg of a basket is judged before any is sent, so none was working when the
    next was judged: two buys of 8 under a limit of 10 were both allowed whole (16)."""
    h = EngineHarness(tmp_path / "run", SlowCancels(), INST, D("0.50"))
    h.risk.checks = [MaxPosition(RiskSettings(max_position_qty=D(10)))]
    await h.start()
    with h.between_events():
        orders = h.engine._route([_leg("8"), _leg("8")], 1)
    assert orders and sum(o.quantity for o in orders) <= 10, [o.quantity for o in orders]
    assert len({o.quantity for o in orders}) == 1  # shrunk together: still a basket
    await h.close()


async def test_a_baskets_legs_count_in_the_gross_exposure_and_per_instrument(
        tmp_path: Path) -> None:
    """The second leg sees the first as working exposure, and ``pending_sides`` tells
    checks which instrument it is on (what a family cap needs)."""
    seen: list[tuple[D, dict[str, tuple[D, D]]]] = []

    class Spy(GrossExposure):
        def check(self, intent: Intent, quantity: D, price: D, portfolio: Portfolio,
                  ctx: RiskContext) -> Any:
            seen.append((ctx.pending_exposure, dict(ctx.pending_sides)))
            return super().check(intent, quantity, price, portfolio, ctx)

    h = EngineHarness(tmp_path / "run", SlowCancels(), INST, D("0.50"))
    h.risk.checks = [Spy(RiskSettings(max_gross_exposure_fraction=D("0.001")))]  # $100
    await h.start()
    with h.between_events():
        orders = h.engine._route([_leg("150"), _leg("150", Side.SELL)], 1)
    assert seen[0] == (D(0), {})
    assert seen[1] == (D("75.00"), {INST.id: (D("75.00"), D(0))})
    # the sell alone would be within $100; beside the buy's $75 only $25 is left
    assert orders and all(o.quantity == 50 for o in orders), [o.quantity for o in orders]
    await h.close()
