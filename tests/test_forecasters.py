"""Forecasters: registered through ``register_forecasters``, built on first use, found
by strategies (``ctx.market.forecasters``) and scanners (``market.forecasters``) in a run
and in ``argus scan``; strategies also see the run's mode."""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from argus_test_helpers import BUNDLED_BARS

from argus_core import Forecast, Forecaster, Opportunity, Scanner, hookimpl
from argus_core.config import parse_config
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.market_state import MarketState
from argus_core.models import Bar, Intent, MarketEvent
from argus_core.runner import Runner
from argus_core.scan import snapshot_and_scan


class LastBarUp(Forecaster):
    """P(next bar up) = 0.6 after an up bar, 0.4 after a down bar (reads only the bar
    the market state holds at ``ts_ns``)."""

    name = "last_bar_up"
    built = 0

    def __init__(self) -> None:
        LastBarUp.built += 1

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        bar = market.bars.get(instrument_id)
        if bar is None or bar.ts_ns > ts_ns:
            return None
        return Forecast(p_win=0.6 if bar.close > bar.open else 0.4, payoff=1.0)


class Asks(Strategy):
    """Records the forecasts and the run mode it sees; trades nothing."""

    name = "asks"

    def __init__(self) -> None:
        self.seen: list[tuple[float | None, str]] = []

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is Bar:
            f = ctx.market.forecasters["last_bar_up"].forecast(event.instrument_id,
                                                                ctx.market, ctx.ts_ns)
            self.seen.append((f.p_win if f else None, ctx.mode))
        return ()


class Counts(Scanner):
    """Asks every forecaster about every bar's instrument; reports nothing."""

    name = "counts"
    asked: ClassVar[list[float | None]] = []

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        for iid in list(market.bars) or ["kraken:XBT/USD"]:  # a bare snapshot: no bars yet
            f = market.forecasters["last_bar_up"].forecast(iid, market, ts_ns)
            Counts.asked.append(f.p_win if f else None)
        return []


@pytest.fixture
def forecaster_plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    from argus_core import plugins

    module = types.ModuleType("argus_test_forecasters")

    def register_forecasters(register: Any) -> None:
        register("last_bar_up", lambda settings: LastBarUp())

    def register_scanners(register: Any) -> None:
        register("counts", lambda settings: Counts())

    module.register_forecasters = hookimpl(register_forecasters)  # type: ignore[attr-defined]
    module.register_scanners = hookimpl(register_scanners)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "argus_test_forecasters", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("forecasters", "argus_test_forecasters")))
    LastBarUp.built, Counts.asked = 0, []
    return module


def _config(tmp_path: Path, scanners: list[str]) -> Any:
    return parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": [], "scanners": scanners,
                "scan_every_events": 100, "sizer": "fixed_fraction"},
        "plugins": {"replay": {"bars_csv": str(BUNDLED_BARS), "start": "2022-01-01",
                               "end": "2022-01-15"}}}, tmp_path / "c.toml")


def test_a_strategy_and_a_scanner_find_the_forecaster_built_once(
        tmp_path: Path, forecaster_plugin: types.ModuleType) -> None:
    asks = Asks()
    summary = Runner(_config(tmp_path, ["counts"]), tmp_path / "run",
                     strategies={"asks": asks}).run_sync()
    assert len(asks.seen) == summary.events > 300
    assert {p for p, _ in asks.seen} == {0.4, 0.6}
    assert {mode for _, mode in asks.seen} == {"replay"}
    assert len(Counts.asked) == summary.events // 100 and None not in Counts.asked
    assert LastBarUp.built == 1  # one model per run, built on first use


def test_a_run_that_never_asks_never_builds_the_model(
        tmp_path: Path, forecaster_plugin: types.ModuleType) -> None:
    Runner(_config(tmp_path, []), tmp_path / "run").run_sync()
    assert LastBarUp.built == 0


def test_argus_scan_hands_scanners_the_forecasters(
        tmp_path: Path, forecaster_plugin: types.ModuleType) -> None:
    import asyncio

    assert asyncio.run(snapshot_and_scan(_config(tmp_path, ["counts"]))) == []
    assert LastBarUp.built == 1 and len(Counts.asked) == 1


def test_a_strategy_sees_the_trading_state(tmp_path: Path) -> None:
    """A strategy can stand aside while HALTED or REDUCING instead of proposing orders
    the risk engine will veto (a maker would otherwise re-quote into vetoes)."""
    from argus_core.ledger import Ledger

    class Watches(Strategy):
        name = "watches"

        def __init__(self) -> None:
            self.states: list[str] = []

        def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
            self.states.append(ctx.trading_state)
            return ()

    config = _config(tmp_path, [])
    first = Watches()
    Runner(config, tmp_path / "run", strategies={"watches": first}, max_events=100).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ledger.set_control("trading_state", '{"state": "halted", "reason": "test"}', 1)
    second = Watches()
    Runner(config, tmp_path / "run", strategies={"watches": second}).run_sync()
    assert set(first.states) == {"active"} and set(second.states) == {"halted"}
