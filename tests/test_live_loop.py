"""Live mode through the one loop: the venue's fills stream, baskets, restarts, signals,
zero-price settlement and per-unit / price-dependent fees."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from argus_core import plugins
from argus_core.builtins.risk_checks import ConsecutiveLosses, RiskSettings
from argus_core.config import PaperSection, parse_config
from argus_core.errors import VenueError
from argus_core.hookspecs import hookimpl
from argus_core.interfaces import FeeSchedule, RiskCheck, RiskContext, Strategy, Venue
from argus_core.ledger import Ledger
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    BookDelta,
    BookStatus,
    Fill,
    Instrument,
    Intent,
    Liquidity,
    MarketEvent,
    Order,
    OrderBook,
    OrderType,
    Portfolio,
    Position,
    RiskDecision,
    Settlement,
    Side,
    Signal,
    TimeInForce,
)
from argus_core.paper import PaperBroker
from argus_core.runner import Runner

IID = "fake:X/USD"
IID2 = "fake:Y/USD"


class FakeLiveVenue(Venue):
    """A live venue: bars, acknowledgements without fills, and a private fills stream that
    reports every order's execution twice (as after a reconnect) plus a stranger's fill."""

    name = "fake"
    supports_live_orders = True
    supports_baskets = True
    submitted: ClassVar[list[Order]] = []
    baskets: ClassVar[list[list[Order]]] = []
    held: ClassVar[list[Order]] = []
    n_bars: ClassVar[int] = 6

    def __init__(self, settings: object) -> None:
        self._queue: asyncio.Queue[Fill] = asyncio.Queue()

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument("fake", "X/USD"), Instrument("fake", "Y/USD")]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for i in range(self.n_bars):
            for iid in (IID, IID2):
                yield Bar(iid, (i + 1) * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
            for _ in range(5):  # real time passes: acknowledgements and fills arrive
                await asyncio.sleep(0)

    def _execute(self, order: Order) -> None:
        fill = Fill(f"T-{order.client_order_id}", order.client_order_id, "fake",
                    order.instrument_id, order.side, "100.5", order.quantity, "0.1",
                    Liquidity.TAKER, 10**9)
        self._queue.put_nowait(fill)
        self._queue.put_nowait(fill)  # repeated: must be booked once

    async def submit(self, order: Order) -> list[Fill]:
        FakeLiveVenue.submitted.append(order)
        self._execute(order)
        return []

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        FakeLiveVenue.baskets.append(orders)
        for order in orders:
            self._execute(order)
        return []

    async def open_orders(self) -> list[Order]:
        return list(FakeLiveVenue.held)

    async def executions(self) -> AsyncIterator[Fill]:
        yield Fill("T-stranger", "not-ours", "fake", IID, Side.BUY, "1", "1", "0",
                   Liquidity.TAKER, 1)
        while True:
            yield await self._queue.get()


class OneShot(Strategy):
    """Buys X once, on the first bar."""

    name = "oneshot"

    def __init__(self) -> None:
        self.done = False

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if self.done or not isinstance(event, Bar):
            return []
        self.done = True
        return [Intent("oneshot", IID, Side.BUY, quantity="2")]

    def get_state(self) -> dict[str, Any]:
        return {"done": self.done}

    def set_state(self, state: dict[str, Any]) -> None:
        self.done = state["done"]


class Pair(Strategy):
    """Buys X and sells Y together, once, as one basket."""

    name = "pair"

    def __init__(self) -> None:
        self.done = False

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if self.done or not isinstance(event, Bar) or event.instrument_id != IID2:
            return []
        self.done = True
        return [Intent("pair", IID, Side.BUY, quantity="1", basket_id="b1",
                       order_type=OrderType.LIMIT, limit_price="101",
                       time_in_force=TimeInForce.FOK),
                Intent("pair", IID2, Side.SELL, quantity="1", basket_id="b1",
                       order_type=OrderType.LIMIT, limit_price="99",
                       time_in_force=TimeInForce.FOK)]

    def get_state(self) -> dict[str, Any]:
        return {"done": self.done}

    def set_state(self, state: dict[str, Any]) -> None:
        self.done = state["done"]


class EveryBar(OneShot):
    """Buys one unit of X on every fifth X bar (quiet in between: no ledger writes)."""

    name = "every"

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if not isinstance(event, Bar) or event.instrument_id != IID or \
                event.ts_ns // 10**9 % 5:
            return []
        return [Intent("every", IID, Side.BUY, quantity="1")]


@pytest.fixture
def fake_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeLiveVenue.submitted, FakeLiveVenue.baskets, FakeLiveVenue.held = [], [], []
    module = types.ModuleType("argus_test_fake_live")

    def register_strategies(register: Any) -> None:
        register("oneshot", lambda s: OneShot())
        register("pair", lambda s: Pair())
        register("every", lambda s: EveryBar())

    module.register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", FakeLiveVenue))
    module.register_strategies = hookimpl(register_strategies)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "argus_test_fake_live", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("fake", "argus_test_fake_live")))


def _runner(tmp_path: Path, strategy: str, run: str = "run") -> Runner:
    config = parse_config({"argus": {"plugins": [], "mode": "live"},
                           "run": {"venue": "fake", "strategies": [strategy],
                                   "risk_checks": []}}, tmp_path / "c.toml")
    return Runner(config, tmp_path / run, live_confirmed=True)


def test_live_fills_come_from_the_venue_stream_once_each(tmp_path: Path,
                                                         fake_plugin: None) -> None:
    summary = _runner(tmp_path, "oneshot").run_sync()
    assert len(FakeLiveVenue.submitted) == 1
    coid = FakeLiveVenue.submitted[0].client_order_id
    with Ledger.in_dir(tmp_path / "run") as ledger:
        fills = ledger.query("select * from fills")
        assert [(f["fill_id"], f["client_order_id"]) for f in fills] == [(f"T-{coid}", coid)]
        order = ledger.query("select status, filled_quantity from orders")[0]
        assert (order["status"], Decimal(order["filled_quantity"])) == ("filled", Decimal(2))
        pos = ledger.query("select quantity from positions where instrument_id = ?", (IID,))
        assert Decimal(pos[0]["quantity"]) == 2
        unknown = ledger.query("select reason from risk_events where action = 'unknown_fill'")
        assert len(unknown) == 1 and "not-ours" in unknown[0]["reason"]
    assert summary.fills == 1
    assert summary.fees == Decimal("0.1")


def test_live_baskets_go_to_the_venue_in_one_call(tmp_path: Path, fake_plugin: None) -> None:
    _runner(tmp_path, "pair").run_sync()
    assert FakeLiveVenue.submitted == []
    assert len(FakeLiveVenue.baskets) == 1
    legs = FakeLiveVenue.baskets[0]
    assert [(o.instrument_id, o.side) for o in legs] == [(IID, Side.BUY), (IID2, Side.SELL)]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        assert {r["basket_id"] for r in ledger.query("select basket_id from orders")} == {"b1"}
        assert ledger.query("select count(*) as n from fills")[0]["n"] == 2


def test_an_incomplete_basket_is_booked_and_stops_new_risk(tmp_path: Path,
                                                          fake_plugin: None) -> None:
    from argus_core.errors import BasketIncomplete

    class Naked(FakeLiveVenue):
        async def submit_basket(self, orders: list[Order]) -> list[Fill]:
            leg = orders[0]
            raise BasketIncomplete("leg 2 killed, unwind refused", [Fill(
                "T-leg1", leg.client_order_id, "fake", leg.instrument_id, leg.side, "100.5",
                leg.quantity, "0.1", Liquidity.TAKER, 10**9)])

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Naked))
    runner = _runner(tmp_path, "pair")
    runner.run_sync()
    assert runner.trading_state.value == "reducing"
    with Ledger.in_dir(tmp_path / "run") as ledger:
        legs = ledger.query("select * from orders where reduce_only = 0 order by "
                            "client_order_id")
        assert [r["status"] for r in legs] == ["filled", "cancelled"]
        # The core's one unwind policy: an ordinary, reduce-only, ledgered order sells the
        # naked leg back (REDUCING lets it through), booked to its own order row.
        unwinds = ledger.query("select * from orders where reduce_only = 1")
        assert len(unwinds) == 1
        unwind = unwinds[0]
        assert unwind["side"] == "sell" and unwind["basket_id"] == legs[0]["basket_id"]
        assert unwind["quantity"] == legs[0]["quantity"] and unwind["status"] == "filled"
        assert unwind["time_in_force"] == "ioc" and Decimal(unwind["limit_price"]) < Decimal(
            "100.5")
        fills = ledger.query("select fill_id, client_order_id from fills order by ts_ns, "
                             "fill_id")
        assert {r["client_order_id"] for r in fills} == {legs[0]["client_order_id"],
                                                         unwind["client_order_id"]}
        assert ledger.query("select quantity from positions")[0]["quantity"] in ("0", "0.0")
        why = ledger.query("select reason from risk_events where check_name = 'basket' "
                           "order by id")
        assert "unwind refused" in why[0]["reason"] and "unwinding" in why[1]["reason"]
        assert "reducing" in ledger.query("select value from control")[0]["value"]


def test_order_updates_set_venue_ids_and_end_an_ioc_order(tmp_path: Path,
                                                         fake_plugin: None) -> None:
    from argus_core.models import OrderStatus, OrderUpdate

    class Ioc(FakeLiveVenue):
        def _execute(self, order: Order) -> None:
            q = self._queue
            q.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1, "OX-1"))  # type: ignore[arg-type]
            q.put_nowait(Fill("T-1", order.client_order_id, "fake", order.instrument_id,
                              order.side, "100.5", "0.5", "0.01", Liquidity.TAKER, 2))
            q.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED, 3,  # type: ignore[arg-type]
                                     reason="IOC rest"))
            q.put_nowait(Fill("T-2", order.client_order_id, "fake", order.instrument_id,
                              order.side, "100.5", "0.25", "0.01", Liquidity.TAKER, 4))
            q.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, 4))  # type: ignore[arg-type]  (late: ignored)
            q.put_nowait(OrderUpdate("someone-else", OrderStatus.REJECTED, 5))  # type: ignore[arg-type]

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Ioc))
    _runner(tmp_path, "oneshot").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        order = ledger.query("select status, filled_quantity, venue_order_id, status_reason "
                             "from orders")[0]
        # a fill reported after the cancel adds its quantity; the order stays cancelled
        assert (order["status"], Decimal(order["filled_quantity"]), order["venue_order_id"],
                order["status_reason"]) == ("cancelled", Decimal("0.75"), "OX-1", "IOC rest")
        unknown = ledger.query("select reason from risk_events where action = 'unknown_order'")
        assert len(unknown) == 1 and "someone-else" in unknown[0]["reason"]


def test_a_failing_fills_stream_halts_trading_at_once(tmp_path: Path,
                                                     fake_plugin: None) -> None:
    from argus_core.errors import ArgusError, VenueError

    class Deaf(FakeLiveVenue):
        async def executions(self) -> AsyncIterator[Fill]:
            raise VenueError("executions token refused")
            yield  # pragma: no cover

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Deaf))
    runner = _runner(tmp_path, "every")
    with pytest.raises(ArgusError, match="token refused"):
        runner.run_sync()
    assert runner.trading_state.value == "halted"
    assert FakeLiveVenue.submitted == []  # the first intent came after the failure
    with Ledger.in_dir(tmp_path / "run") as ledger:
        assert "halted" in ledger.query("select value from control")[0]["value"]
        assert ledger.query("select count(*) as n from risk_events where "
                            "check_name = 'fills_stream'")[0]["n"] == 1


def test_a_restarted_live_run_reconciles_and_never_reuses_an_order_id(
        tmp_path: Path, fake_plugin: None) -> None:
    _runner(tmp_path, "oneshot").run_sync()
    first = FakeLiveVenue.submitted[0].client_order_id
    with Ledger.in_dir(tmp_path / "run") as ledger:  # a crash left an unacknowledged order
        ledger.conn.execute("update orders set status = 'pending'")
        ledger.conn.execute("update checkpoints set state_json = json_set(state_json, "
                            "'$.strategies.oneshot.done', json('false'))")
    FakeLiveVenue.submitted = []
    _runner(tmp_path, "oneshot").run_sync()
    assert len(FakeLiveVenue.submitted) == 1
    second = FakeLiveVenue.submitted[0].client_order_id
    assert second != first  # the live event numbering continued after the restart
    with Ledger.in_dir(tmp_path / "run") as ledger:
        status = {r["client_order_id"]: r["status"] for r in ledger.query(
            "select client_order_id, status from orders")}
        # The venue cannot tell (no lookup): never re-sent, never guessed final.
        assert status == {first: "pending", second: "filled"}
        reason = ledger.query("select reason from risk_events where action = 'awaiting_venue'")
        assert len(reason) == 1 and first in reason[0]["reason"]


@pytest.mark.parametrize("answer", ["acknowledged", "never_seen", "unreachable"])
def test_a_restart_asks_the_venue_about_each_unacknowledged_order(
        tmp_path: Path, fake_plugin: None, answer: str) -> None:
    """Orders persisted before a crash but never acknowledged: the venue's lookup decides
    (OPEN with its id / CANCELLED, never seen / left pending when it cannot be asked);
    none is ever sent again."""
    from argus_core.errors import OrderUnknown
    from argus_core.models import OrderStatus, OrderUpdate

    class Asked(FakeLiveVenue):
        async def lookup(self, order: Order) -> OrderUpdate | None:
            if answer == "unreachable":
                raise OrderUnknown("connection refused", [order.client_order_id])
            if answer == "acknowledged":
                return OrderUpdate(order.client_order_id, OrderStatus.OPEN, 5, "OX-9")
            return OrderUpdate(order.client_order_id, OrderStatus.CANCELLED, 5,
                               reason="never reached the venue")

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Asked))
    _runner(tmp_path, "oneshot").run_sync()
    first = FakeLiveVenue.submitted[0].client_order_id
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ledger.conn.execute("delete from fills")
        ledger.conn.execute("update orders set status = 'pending', filled_quantity = '0'")
    FakeLiveVenue.submitted = []
    _runner(tmp_path, "oneshot").run_sync()
    assert FakeLiveVenue.submitted == []  # nothing re-sent (oneshot's state says done)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        row = ledger.query("select * from orders where client_order_id = ?", (first,))[0]
        expected = {"acknowledged": ("open", "OX-9"), "never_seen": ("cancelled", None),
                    "unreachable": ("pending", None)}[answer]
        assert (row["status"], row["venue_order_id"]) == expected


# -- signals, settlement, fees, versions, loss streaks ---------------------------------

class SignalGate(RiskCheck):
    """Vetoes while the published P(change) is high: a risk check reading a regime signal."""

    name = "signal_gate"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal, portfolio: Portfolio,
              ctx: RiskContext) -> RiskDecision:
        assert ctx.market is not None
        p = ctx.market.signal("p_change", intent.instrument_id)
        if p is not None and p > 0.5:
            return RiskDecision.veto(self.name, f"p_change {p:.2f} > 0.5")
        return RiskDecision.allow(self.name)


def test_signals_are_persisted_and_risk_checks_can_read_them(tmp_path: Path) -> None:
    from argus_core.risk import RiskEngine

    market = MarketState()
    market.apply(Bar(IID, 1, 1.0, 1.0, 1.0, 1.0, 1.0))
    engine = RiskEngine([SignalGate()], RiskContext(market=market))
    intent = Intent("s", IID, Side.BUY)
    assert engine.evaluate(intent, Decimal(1), Decimal(1), Portfolio(Decimal(100))).allowed
    market.apply(Signal("p_change", IID, 5, 0.9))
    verdict = engine.evaluate(intent, Decimal(1), Decimal(1), Portfolio(Decimal(100)))
    assert not verdict.allowed and "0.90" in verdict.decisions[0].reason


def test_a_worthless_expiry_is_a_zero_price_settlement_fill(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="0 only for a settlement"):
        Fill("f", "o", "v", IID, Side.SELL, "0", "1", "0", Liquidity.TAKER, 1)
    fill = Fill("f", "o", "v", IID, Side.SELL, "0", "3", "0", Liquidity.SETTLEMENT, 1)
    pos = Position(IID, Decimal(3), Decimal("0.4")).apply(fill)
    assert pos.quantity == 0 and pos.realized_pnl == Decimal("-1.2")


def test_settlement_fills_are_booked_and_round_trips_see_them(tmp_path: Path,
                                                              fake_plugin: None) -> None:
    from argus_core.metrics import round_trips

    class Expiring(FakeLiveVenue):
        async def stream(self) -> AsyncIterator[MarketEvent]:
            yield Bar(IID, 10**9, 0.4, 0.4, 0.4, 0.4, 1000.0)
            yield Bar(IID, 2 * 10**9, 0.4, 0.4, 0.4, 0.4, 1000.0)
            yield Signal("p_change", IID, 2 * 10**9, 0.25)
            yield Settlement(IID, 3 * 10**9, "0")

    plugins.BUILTINS  # noqa: B018  (the fixture registered the module)
    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Expiring))
    config = parse_config({"argus": {"plugins": [], "mode": "replay"},
                           "run": {"venue": "fake", "strategies": ["oneshot"],
                                   "risk_checks": []}}, tmp_path / "c.toml")
    Runner(config, tmp_path / "run").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        fills = ledger.query("select price, quantity, liquidity from fills order by ts_ns")
        assert [f["liquidity"] for f in fills] == ["taker", "settlement"]
        orders = ledger.query("select status, filled_quantity from orders order by ts_ns")
        assert [(o["status"], Decimal(o["filled_quantity"])) for o in orders] == [
            ("filled", Decimal(2)), ("filled", Decimal(2))]
        assert Decimal(fills[1]["price"]) == 0
        trips = round_trips(ledger.query("select * from fills order by ts_ns, fill_id"))
        assert len(trips) == 1 and trips[0]["pnl"] < 0
        sig = ledger.query("select name, instrument_id, value from signals")
        assert sig == [{"name": "p_change", "instrument_id": IID, "value": 0.25}]


@attrs.frozen
class BinaryFee(FeeSchedule):
    """A price-dependent fee like a prediction market's: rate x min(p, 1 - p) per share."""

    rate: Decimal = Decimal("0.02")

    def fee(self, price: Decimal, quantity: Decimal, *, maker: bool) -> Decimal:
        return Decimal(0) if maker else self.rate * min(price, 1 - price) * quantity


def _paper(fees: FeeSchedule, **paper: Any) -> PaperBroker:
    market = MarketState()
    market.add_instruments([Instrument("v", "X/USD", tick_size="0.01", lot_size="1")])
    market.apply(OrderBook("v:X/USD", 1, [[0.2, 100.0]], [[0.3, 100.0], [0.8, 100.0]]))
    return PaperBroker(market, lambda _i: fees, PaperSection(**paper))


def _buy(qty: str) -> Order:
    return Order("o1", "v", "v:X/USD", Side.BUY, qty, None, OrderType.MARKET, TimeInForce.IOC)


def test_per_unit_commission_and_price_dependent_fees_reach_paper_fills() -> None:
    fills = _paper(FeeSchedule(per_unit=Decimal("0.65"), fixed_per_fill=Decimal("1"))).submit(
        _buy("150"), 5)
    assert [f.fee for f in fills] == [Decimal("0.65") * 100 + 1, Decimal("0.65") * 50 + 1]
    fills = _paper(BinaryFee(), cost_multiplier=Decimal("1.5")).submit(_buy("150"), 5)
    # 0.3 -> min(0.3, 0.7); 0.8 -> min(0.8, 0.2); x1.5 cost multiplier; subclass kept
    assert [f.fee for f in fills] == [Decimal("0.02") * Decimal("0.3") * 100 * Decimal("1.5"),
                                      Decimal("0.02") * Decimal("0.2") * 50 * Decimal("1.5")]


def test_book_version_moves_on_every_change_and_only_then() -> None:
    market = MarketState()
    market.apply(OrderBook(IID, 1, [[1.0, 1.0]], [[2.0, 1.0]]))
    v = market.books[IID].version
    market.book(IID).bid_levels()  # reading changes nothing
    assert market.books[IID].version == v
    market.apply(BookDelta(IID, 2, Side.BUY, "1.5", "2"))
    assert market.books[IID].version == v + 1
    market.apply(BookStatus(IID, 3, False, "gap"))
    assert market.books[IID].version == v + 2


def test_a_basket_closing_together_counts_as_one_trade_by_its_net_result() -> None:
    check = ConsecutiveLosses(RiskSettings(max_consecutive_losses=2))
    ctx = RiskContext()
    pf = Portfolio(Decimal(1000), positions={
        "a": Position("a", 0, 0, Decimal("-5")), "b": Position("b", 0, 0, Decimal("3"))})

    def fill(iid: str, ts: int) -> Fill:
        return Fill(f"{iid}{ts}", "o", "v", iid, Side.SELL, "1", "1", "0", Liquidity.TAKER, ts)

    check.on_fill(fill("a", 10), pf, ctx)  # short leg loses 5 ...
    check.on_fill(fill("b", 10), pf, ctx)  # ... long leg gains 3, same moment: one trade, -2
    intent = Intent("s", "a", Side.BUY, quantity="1")
    assert check.check(intent, Decimal(1), Decimal(1), pf, ctx).action.value == "allow"
    assert ctx.consecutive_losses == 1
    pf2 = Portfolio(Decimal(1000), positions={
        "a": Position("a", 0, 0, Decimal("-9")), "b": Position("b", 0, 0, Decimal("3"))})
    check.on_fill(fill("a", 20), pf2, ctx)
    assert check.check(intent, Decimal(1), Decimal(1), pf2, ctx).action.value == "veto"
    assert ctx.trading_state == "reducing"


def test_argus_kill_during_a_paper_run_is_not_blocked_and_takes_effect(
        tmp_path: Path, fake_plugin: None) -> None:
    import threading
    import time

    from click.testing import CliRunner

    from argus_core.cli import cli

    class Slow(FakeLiveVenue):
        async def stream(self) -> AsyncIterator[MarketEvent]:
            for i in range(20):
                yield Bar(IID, (i + 1) * 10**9, 100.0, 101.0, 99.0, 100.0, 1000.0)
                await asyncio.sleep(0.1)  # a quiet live market: the loop waits for data

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Slow))
    config = parse_config({"argus": {"plugins": [], "mode": "paper"},
                           "run": {"venue": "fake", "strategies": ["every"],
                                   "risk_checks": ["per_play_cap"]}}, tmp_path / "c.toml")
    runner = Runner(config, tmp_path / "run")
    thread = threading.Thread(target=runner.run_sync)
    thread.start()
    time.sleep(0.2)
    # While the loop waits for data it holds no lock: a writer that waits at most 200 ms
    # (one event and a commit take far less) always gets in.
    import apsw
    probe = apsw.Connection(str(tmp_path / "run" / "argus.db"))
    probe.setbusytimeout(200)
    for _ in range(4):
        probe.execute("begin immediate; commit;")
        time.sleep(0.15)
    probe.close()
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["kill", "--run-dir", str(tmp_path / "run"),
                                      "--reason", "test kill"])
    waited = time.perf_counter() - started
    thread.join()
    assert result.exit_code == 0, result.output
    assert waited < 2.0  # not stuck behind the loop's transaction (busy timeout is 5 s)
    assert runner.trading_state.value == "halted"
    with Ledger.in_dir(tmp_path / "run") as ledger:
        n_orders = ledger.query("select count(*) as n from orders")[0]["n"]
        vetoes = ledger.query("select count(*) as n from risk_events where "
                              "check_name = 'trading_state' and action = 'veto'")[0]["n"]
    assert 0 < n_orders < 4 and n_orders + vetoes == 4  # every intent after the kill: denied


def test_a_basket_is_one_play_in_the_metrics() -> None:
    from argus_core.metrics import plays, round_trips

    def fill(coid: str, iid: str, side: str, price: str, ts: int) -> dict[str, Any]:
        return {"client_order_id": coid, "instrument_id": iid, "side": side, "price": price,
                "quantity": "1", "fee": "0.01", "ts_ns": ts}

    # a put spread: short the 400 put for 5.00, long the 390 put for 2.00; closed for 1.00/0.20
    fills = [fill("o1", "P400", "sell", "5.00", 1), fill("o2", "P390", "buy", "2.00", 1),
             fill("c1", "P400", "buy", "1.00", 9), fill("c2", "P390", "sell", "0.20", 9),
             fill("x1", "SPY", "buy", "100", 10), fill("x2", "SPY", "sell", "99", 11)]
    trips = round_trips(fills, {"o1": "spread-1", "o2": "spread-1"})
    assert [t["pnl"] for t in trips] == [Decimal("3.98"), Decimal("-1.82"), Decimal("-1.02")]
    joined = plays(trips)
    assert [(p["instruments"], p["pnl"]) for p in joined] == [
        (["P400", "P390"], Decimal("2.16")), (["SPY"], Decimal("-1.02"))]


class RestingBuy(OneShot):
    """One GTC limit buy far below the market on the first X bar: it rests."""

    name = "resting"

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        if self.done or not isinstance(event, Bar) or event.instrument_id != IID:
            return []
        self.done = True
        return [Intent(self.name, IID, Side.BUY, quantity="1", order_type=OrderType.LIMIT,
                       limit_price="50", time_in_force=TimeInForce.GTC)]


class RestingMarket(FakeLiveVenue):
    """Eight bars that trade through 50 from the sixth on; live orders are acknowledged and
    rest; cancels are recorded."""

    cancelled: ClassVar[list[str]] = []

    async def bars(self) -> AsyncIterator[tuple[int, Bar]]:
        for i in range(8):
            low = 40.0 if i >= 5 else 99.0
            yield i, Bar(IID, (i + 1) * 10**9, 100.0, 101.0, low, 100.0, 1000.0)
            for _ in range(5):
                await asyncio.sleep(0)

    async def stream(self) -> AsyncIterator[MarketEvent]:
        async for _n, bar in self.bars():
            yield bar

    def _execute(self, order: Order) -> None:
        from argus_core.models import OrderStatus, OrderUpdate

        self._queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1,  # type: ignore[arg-type]
                                           "OX-7"))

    async def cancel(self, client_order_id: str) -> None:
        RestingMarket.cancelled.append(client_order_id)


def _kill_from_outside(run_dir: Path) -> None:
    """What `argus kill` does: write the control row through another connection."""
    from click.testing import CliRunner

    from argus_core.cli import cli

    result = CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir), "--reason", "test"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_kill_cancels_every_working_order(tmp_path: Path, fake_plugin: None,
                                            mode: str) -> None:

    run_dir = tmp_path / "run"
    RestingMarket.cancelled = cancelled = []

    class Market(RestingMarket):
        async def stream(self) -> AsyncIterator[MarketEvent]:
            async for n, bar in self.bars():
                yield bar
                if n == 2:
                    _kill_from_outside(run_dir)

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Market))
    sys.modules["argus_test_fake_live"].register_strategies = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("resting", lambda s: RestingBuy()))
    config = parse_config({"argus": {"plugins": [], "mode": mode},
                           "run": {"venue": "fake", "strategies": ["resting"],
                                   "risk_checks": [], "checkpoint_every_events": 1}},
                          tmp_path / "c.toml")
    runner = Runner(config, run_dir, live_confirmed=mode == "live")
    runner.run_sync()
    assert runner.trading_state.value == "halted"
    with Ledger.in_dir(run_dir) as ledger:
        (order,) = ledger.query("select client_order_id, status, status_reason from orders")
        assert order["status"] == "cancelled" and "HALTED" in order["status_reason"]
        assert ledger.query("select count(*) as n from fills")[0]["n"] == 0  # never traded
    assert runner.broker.working == {}
    assert cancelled == ([order["client_order_id"]] if mode == "live" else [])


def run_fake(tmp_path: Path, mode: str, venue: type, slot: str,
             make: Callable[[], Strategy]) -> Runner:
    """Run the fake plugin's ``venue`` with one strategy slot in ``mode`` (no risk
    checks) into ``tmp_path / "run"``; returns the finished runner."""
    module = sys.modules["argus_test_fake_live"]
    module.register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", venue))
    module.register_strategies = hookimpl(  # type: ignore[attr-defined]
        lambda register: register(slot, lambda s: make()))
    config = parse_config({"argus": {"plugins": [], "mode": mode},
                           "run": {"venue": "fake", "strategies": [slot],
                                   "risk_checks": []}}, tmp_path / "c.toml")
    runner = Runner(config, tmp_path / "run", live_confirmed=mode == "live")
    runner.run_sync()
    return runner


class RestThenCancel(RestingBuy):
    """Rests a GTC buy on the first X bar, cancels it on bar ``cancel_on``."""

    name = "rest_then_cancel"
    cancel_on, why = 3, "stale quote"

    def __init__(self) -> None:
        super().__init__()
        self.bars = 0

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Any]:
        from argus_core.models import CancelIntent

        if not isinstance(event, Bar) or event.instrument_id != IID:
            return []
        self.bars += 1
        if self.bars == self.cancel_on:
            return [CancelIntent(self.name, IID, reason=self.why)]
        return super().on_event(event, ctx)


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_strategy_cancels_its_own_working_orders(tmp_path: Path, fake_plugin: None,
                                                   mode: str) -> None:

    RestingMarket.cancelled = cancelled = []
    run_fake(tmp_path, mode, RestingMarket, "rest_then_cancel", RestThenCancel)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (order,) = ledger.query("select client_order_id, status, status_reason from orders")
        assert order["status"] == "cancelled" and "stale quote" in order["status_reason"]
        assert ledger.query("select count(*) as n from fills")[0]["n"] == 0  # never traded
    assert cancelled == ([order["client_order_id"]] if mode == "live" else [])


@pytest.mark.parametrize("mode", ["live", "paper"])
def test_orders_never_go_out_on_a_dead_or_stale_book(tmp_path: Path, fake_plugin: None,
                                                     mode: str) -> None:
    """A book that failed its checksum (and got no fresh snapshot) or went quiet past the
    venue's staleness: every order a strategy proposes on it is a risk event, none is
    sent; a fresh snapshot makes it tradeable again."""

    class DeadBook(FakeLiveVenue):
        default_stale_after_s = 5.0

        async def stream(self) -> AsyncIterator[MarketEvent]:
            book = [[99.0, 5.0]], [[101.0, 5.0]]
            yield OrderBook(IID, 10**9, *book)
            yield BookStatus(IID, 2 * 10**9, False, "checksum mismatch")
            for i in range(3, 19):  # 16 bars while the book is dead
                yield Bar(IID, i * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
                await asyncio.sleep(0)
            yield OrderBook(IID, 19 * 10**9, *book)  # a fresh snapshot: live again
            yield Bar(IID, 20 * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
            for i in range(30, 33):  # ten seconds later, no book update: stale
                yield Bar(IID, i * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
            for _ in range(5):
                await asyncio.sleep(0)

    class Always(OneShot):
        name = "always"

        def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
            if not isinstance(event, Bar):
                return []
            return [Intent("always", IID, Side.BUY, quantity="1")]

    module = sys.modules["argus_test_fake_live"]
    module.register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", DeadBook))
    module.register_strategies = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("always", lambda s: Always()))
    config = parse_config({"argus": {"plugins": [], "mode": mode},
                           "run": {"venue": "fake", "strategies": ["always"],
                                   "risk_checks": []}}, tmp_path / "c.toml")
    Runner(config, tmp_path / "run", live_confirmed=True).run_sync()
    # Only on the bar after the fresh snapshot.
    assert len(FakeLiveVenue.submitted) == (1 if mode == "live" else 0)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        blocked = ledger.query("select reason from risk_events where check_name = "
                               "'market_state' order by id")
        assert len(blocked) == 16 + 3
        assert all("checksum" in r["reason"] for r in blocked[:16])
        assert all("stale" in r["reason"] for r in blocked[16:])
        assert ledger.query("select count(*) as n from orders")[0]["n"] == 1


def test_a_venue_without_baskets_gets_legs_one_by_one_and_the_core_evens_them_out(
        tmp_path: Path, fake_plugin: None) -> None:
    """Legs sent one by one; the second is refused, the first fills later through the
    executions stream: only once every leg is final does the unwind go out (an ordinary
    reduce-only order, booked to its own row), exactly once."""

    class NoBaskets(FakeLiveVenue):
        supports_baskets = False

        async def submit(self, order: Order) -> list[Fill]:
            FakeLiveVenue.submitted.append(order)
            if order.instrument_id == IID2 and not order.reduce_only:
                raise VenueError("EOrder:Insufficient funds")
            self._execute(order)
            return []

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", NoBaskets))
    runner = _runner(tmp_path, "pair")
    runner.run_sync()
    sent = [(o.instrument_id, o.side, o.reduce_only) for o in FakeLiveVenue.submitted]
    assert sent == [(IID, Side.BUY, False), (IID2, Side.SELL, False), (IID, Side.SELL, True)]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = {r["instrument_id"] + r["side"]: r for r in ledger.query("select * from orders")}
        assert rows[IID + "buy"]["status"] == "filled"
        assert rows[IID2 + "sell"]["status"] == "rejected"
        unwind = rows[IID + "sell"]
        assert unwind["reduce_only"] == 1 and unwind["basket_id"] == "b1"
        assert unwind["status"] == "filled"
        assert Decimal(ledger.query("select quantity from positions where instrument_id = ?",
                                    (IID,))[0]["quantity"]) == 0


@pytest.mark.parametrize("failure", [KeyError("orderID"), TypeError("'NoneType' object is "
                                                                 "not subscriptable")])
def test_an_adapter_failing_after_the_venue_acted_leaves_the_order_pending(
        tmp_path: Path, fake_plugin: None, failure: Exception) -> None:
    """A venue adapter that raises something other than a refusal (``VenueError``) --
    here after the venue executed the order, reading an answer of an unexpected shape --
    may have reached the venue: the leg is not REJECTED but left pending (a risk event
    says why), the next leg is not sent, and the executions stream settles the first:
    filled, booked once."""

    class Garbled(FakeLiveVenue):
        supports_baskets = False

        async def submit(self, order: Order) -> list[Fill]:
            FakeLiveVenue.submitted.append(order)
            self._execute(order)  # the venue took it ...
            if not order.reduce_only:
                raise failure  # ... and the adapter failed reading the answer
            return []

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Garbled))
    _runner(tmp_path, "pair").run_sync()
    first = [o for o in FakeLiveVenue.submitted if not o.reduce_only]
    assert [o.instrument_id for o in first] == [IID]  # the second leg never went out
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = {r["instrument_id"] + r["side"]: r for r in ledger.query(
            "select * from orders where reduce_only = 0")}
        assert rows[IID + "buy"]["status"] == "filled"  # by the executions stream
        assert rows[IID2 + "sell"]["status"] == "cancelled"
        assert "unknown" in rows[IID2 + "sell"]["status_reason"]
        fills = ledger.query("select * from fills where client_order_id = ?",
                             (rows[IID + "buy"]["client_order_id"],))
        assert len(fills) == 1  # reported twice by the stream, booked once
        why = ledger.query("select reason from risk_events where action = 'order_unknown'")
        assert len(why) == 1 and type(failure).__name__ in why[0]["reason"]
        assert "may have acted" in why[0]["reason"]


def test_a_refusal_is_still_rejected_and_the_rule_is_written_down() -> None:
    from argus_core.errors import OrderUnknown
    from argus_core.execution import outcome_unknown

    assert not outcome_unknown(VenueError("EOrder:Insufficient funds"))
    assert not outcome_unknown(NotImplementedError("no live order entry"))
    assert outcome_unknown(OrderUnknown("timeout", ["o1"]))
    assert outcome_unknown(KeyError("orderID")) and outcome_unknown(ValueError("bad json"))


class TwoSided(Strategy):
    """Rests a bid at 50 and an offer at 150 on the first X bar, cancels the bid side on
    the third: a maker pulling one side of its quote."""

    name = "two_sided"

    def __init__(self) -> None:
        self.bars = 0

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Any]:
        from argus_core.models import CancelIntent

        if not isinstance(event, Bar) or event.instrument_id != IID:
            return []
        self.bars += 1
        if self.bars == 1:
            return [Intent(self.name, IID, side, quantity="1", order_type=OrderType.LIMIT,
                           limit_price=price, time_in_force=TimeInForce.GTC)
                    for side, price in ((Side.BUY, "50"), (Side.SELL, "150"))]
        if self.bars == 3:
            return [CancelIntent(self.name, IID, reason="pull the bid", side=Side.BUY)]
        return []


class Quiet(RestingMarket):
    """Bars that never trade through 50 or 150."""

    async def bars(self) -> AsyncIterator[tuple[int, Bar]]:
        for i in range(6):
            yield i, Bar(IID, (i + 1) * 10**9, 100.0, 101.0, 99.0, 100.0, 1000.0)
            for _ in range(5):
                await asyncio.sleep(0)


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_cancel_intent_can_pull_one_side_only(tmp_path: Path, fake_plugin: None,
                                                mode: str) -> None:
    RestingMarket.cancelled = cancelled = []
    runner = run_fake(tmp_path, mode, Quiet, "two_sided", TwoSided)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = {r["side"]: r for r in ledger.query(
            "select client_order_id, side, status, status_reason from orders")}
    assert rows["buy"]["status"] == "cancelled" and "pull the bid" in rows["buy"]["status_reason"]
    assert rows["sell"]["status"] == "open"  # the offer still works (paper too: not "pending")
    if mode == "live":
        assert cancelled == [rows["buy"]["client_order_id"]]
    else:
        assert list(runner.broker.working) == [rows["sell"]["client_order_id"]]


class SlowAck(RestingMarket):
    """Acknowledges (or refuses) an order only three bars after it was sent: a cancel
    asked for in between finds the order still pending."""

    refuse: ClassVar[bool] = False
    log: ClassVar[list[str]] = []

    async def submit(self, order: Order) -> list[Fill]:
        for _ in range(40):  # about three bars of the stream
            await asyncio.sleep(0)
        if SlowAck.refuse:
            SlowAck.log.append("refused")
            raise VenueError("fake: insufficient balance")
        SlowAck.log.append("acknowledged")
        return []

    async def cancel(self, client_order_id: str) -> None:
        SlowAck.log.append("cancel")
        await super().cancel(client_order_id)


class SendThenCancel(RestThenCancel):
    """Sends a resting buy on the first bar and cancels it on the next."""

    name = "send_then_cancel"
    cancel_on, why = 2, "changed my mind"


@pytest.mark.parametrize("refuse", [False, True])
def test_a_cancel_of_a_pending_order_goes_out_once_the_venue_knows_it(
        tmp_path: Path, fake_plugin: None, refuse: bool) -> None:
    """The cancel waits for the acknowledgement (it cannot overtake the order at the
    venue), then goes out once; a refused order needs no cancel."""
    RestingMarket.cancelled = cancelled = []
    SlowAck.refuse, SlowAck.log = refuse, []
    runner = run_fake(tmp_path, "live", SlowAck, "send_then_cancel", SendThenCancel)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (order,) = ledger.query("select client_order_id, status, status_reason from orders")
    if refuse:
        assert SlowAck.log == ["refused"] and cancelled == []
        assert order["status"] == "rejected" and "insufficient balance" in order["status_reason"]
    else:
        assert SlowAck.log == ["acknowledged", "cancel"]
        assert cancelled == [order["client_order_id"]]
        assert order["status"] == "cancelled" and "changed my mind" in order["status_reason"]
    assert runner.engine.cancel_on_ack == {}


def test_a_restart_whose_open_orders_read_fails_asks_order_by_order(
        tmp_path: Path, fake_plugin: None) -> None:
    """The venue's open-orders list fails at start-up (a gateway 502): the run goes on,
    the unacknowledged order is asked about by itself and left pending, never re-sent (the
    read's failure ended the run at start-up)."""
    from argus_core.errors import VenueError

    _runner(tmp_path, "oneshot").run_sync()
    first = FakeLiveVenue.submitted[0].client_order_id
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ledger.conn.execute("update orders set status = 'pending'")

    class Flaky(FakeLiveVenue):
        async def open_orders(self) -> list:
            raise VenueError("GET /orders: 502 Bad Gateway")

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Flaky))
    FakeLiveVenue.submitted = []
    _runner(tmp_path, "oneshot").run_sync()
    assert FakeLiveVenue.submitted == []  # the strategy is done; nothing re-sent
    with Ledger.in_dir(tmp_path / "run") as ledger:
        assert ledger.query("select status from orders where client_order_id = ?",
                            [first])[0]["status"] == "pending"
        reason = ledger.query("select reason from risk_events where action = 'awaiting_venue'")
        assert len(reason) == 1 and first in reason[0]["reason"]


@pytest.mark.parametrize("ended", ["cancelled", "rejected"])
def test_a_restart_cancels_an_order_the_venue_holds_open_that_the_ledger_ended(
        tmp_path: Path, fake_plugin: None, ended: str) -> None:
    """An order the ledger has ended (given up as never placed, say) that the venue lists
    open at the next start (its send was placed late): cancelled there, with a risk event,
    even when nothing was pending; the ledger keeps it ended, an open order of the ledger
    is left alone.  Before, only a start with pending orders read the venue's list, and
    then only for those."""
    _runner(tmp_path, "oneshot").run_sync()
    first = FakeLiveVenue.submitted[0]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ledger.conn.execute("update orders set status = ?", (ended,))
    cancels: list[str] = []

    class Holding(FakeLiveVenue):
        async def open_orders(self) -> list[Order]:
            return [first, Order("stranger-1", "x", IID, Side.BUY, "1", limit_price="1")]

        async def cancel(self, client_order_id: str) -> None:
            cancels.append(client_order_id)

    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Holding))
    FakeLiveVenue.submitted = []
    _runner(tmp_path, "oneshot").run_sync()
    assert cancels == [first.client_order_id]  # a stranger's order is not ours to cancel
    with Ledger.in_dir(tmp_path / "run") as ledger:
        assert ledger.query("select status from orders where client_order_id = ?",
                            [first.client_order_id])[0]["status"] == ended
        (event,) = ledger.query("select * from risk_events where action = 'open_after_end'")
        assert event["check_name"] == "reconcile" and first.client_order_id in event["reason"]
        assert ended in event["reason"]


def _orphan_run(tmp_path: Path, fails: int, n_bars: int) -> tuple[str, list[str]]:
    """A run whose one order the ledger then ends; the next start finds it open at the
    venue, whose cancel fails ``fails`` times before it works (``n_bars`` bars 1 s apart,
    after the first run's)."""
    _runner(tmp_path, "oneshot").run_sync()
    first = FakeLiveVenue.submitted[0]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ledger.conn.execute("update orders set status = 'cancelled'")
    cancels: list[str] = []

    class Stubborn(FakeLiveVenue):
        async def open_orders(self) -> list[Order]:
            return [first]

        async def cancel(self, client_order_id: str) -> None:
            cancels.append(client_order_id)
            if len(cancels) <= fails:
                raise VenueError("DELETE /order: 503 Service Unavailable")

        async def stream(self) -> AsyncIterator[MarketEvent]:
            for i in range(n_bars):
                yield Bar(IID, (FakeLiveVenue.n_bars + 1 + i) * 10**9, 100.0, 101.0, 99.0,
                          100.0, 10.0)
                for _ in range(5):  # real time passes: the cancel's answer arrives
                    await asyncio.sleep(0)
    sys.modules["argus_test_fake_live"].register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fake", Stubborn))
    FakeLiveVenue.submitted = []
    _runner(tmp_path, "oneshot").run_sync()
    return first.client_order_id, cancels


def test_an_orphans_failed_cancel_is_asked_again_until_the_venue_takes_it(
        tmp_path: Path, fake_plugin: None) -> None:
    """The start-up cancel of an order the ledger ended but the venue holds open fails
    twice (503): it is asked again, 2 s and then 4 s of market time later, until it works,
    each failure a risk event; the ledger keeps the order ended.  Before, the retry of a
    failed cancel stopped because the ledger said the order was final: one try, and the
    order stayed open at the venue."""
    coid, cancels = _orphan_run(tmp_path, fails=2, n_bars=12)
    assert cancels == [coid] * 3
    with Ledger.in_dir(tmp_path / "run") as ledger:
        failed = [r["reason"] for r in ledger.query(
            "select reason from risk_events where action = 'cancel_failed' order by id")]
        assert len(failed) == 2 and all(coid in r and "503" in r for r in failed)
        assert "again in 2 s" in failed[0] and "again in 4 s" in failed[1]
        assert ledger.query("select status from orders")[0]["status"] == "cancelled"
        assert not ledger.query("select 1 from risk_events where action = 'cancel_abandoned'")


def test_an_orphans_cancel_is_given_up_after_its_tries_with_a_risk_event(
        tmp_path: Path, fake_plugin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel the venue never takes is asked ORPHAN_CANCEL_TRIES times, then given up with
    a risk event telling the operator to cancel it at the venue."""
    from argus_core import execution

    monkeypatch.setattr(execution, "ORPHAN_CANCEL_TRIES", 3)
    coid, cancels = _orphan_run(tmp_path, fails=99, n_bars=30)
    assert cancels == [coid] * 3
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (gave_up,) = ledger.query("select reason from risk_events"
                                  " where action = 'cancel_abandoned'")
        assert coid in gave_up["reason"] and "cancel it at the venue" in gave_up["reason"]


@pytest.mark.parametrize("wrong", ["side", "instrument"])
def test_a_venue_fill_unlike_its_order_is_booked_and_said(tmp_path: Path, fake_plugin: None,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          wrong: str) -> None:
    """A venue fill of another side or instrument than its order's (an adapter mixing up
    orders) was booked without a word: the position followed the venue, the order stayed
    working, and nothing in the ledger said why."""
    def execute(self: FakeLiveVenue, order: Order) -> None:
        side = order.side.opposite() if wrong == "side" else order.side
        iid = IID2 if wrong == "instrument" else order.instrument_id
        self._queue.put_nowait(Fill(f"T-{order.client_order_id}", order.client_order_id,
                                    "fake", iid, side, "100.5", order.quantity, "0.1",
                                    Liquidity.TAKER, 10**9))

    monkeypatch.setattr(FakeLiveVenue, "_execute", execute)
    _runner(tmp_path, "oneshot").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        said = ledger.query("select reason, strategy from risk_events "
                            "where action = 'fill_mismatch'")
        assert len(said) == 1 and said[0]["strategy"] == "oneshot"
        assert "the order was buy fake:X/USD" in said[0]["reason"]
        fill = ledger.query("select instrument_id, side from fills")[0]
        assert (fill["instrument_id"], fill["side"]) == (
            (IID, "sell") if wrong == "side" else (IID2, "buy"))
