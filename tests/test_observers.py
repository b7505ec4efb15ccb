"""Observer hooks and scanners are fenced like strategies: a plugin's bug is logged and
recorded as a risk event, and the run goes on; a failing on_startup stops the run before
it trades, naming the plugin."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from argus_test_helpers import BUNDLED_BARS

from argus_core import Opportunity, PluginError, Scanner, hookimpl
from argus_core.config import parse_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner


class Broken(Scanner):
    """A scanner whose every scan raises."""

    name = "broken"

    def scan(self, market: Any, ts_ns: int) -> list[Opportunity]:
        raise ZeroDivisionError("bug in the scanner")


def _config(tmp_path: Path, scanners: list[str]) -> Any:
    return parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": ["ma_cross"], "scanners": scanners,
                "scan_every_events": 500, "sizer": "fixed_fraction"},
        "plugins": {"replay": {"bars_csv": str(BUNDLED_BARS), "start": "2022-01-01",
                               "end": "2022-03-01"},
                    "example": {"fast": 5, "slow": 20}}}, tmp_path / "c.toml")


@pytest.fixture
def observer_plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    from argus_core import plugins

    module = types.ModuleType("argus_test_observers")
    module.calls = []  # type: ignore[attr-defined]

    def on_fill(fill: Any, ctx: Any) -> None:
        module.calls.append(fill.fill_id)  # type: ignore[attr-defined]
        raise RuntimeError("observer bug")

    module.on_fill = hookimpl(on_fill)  # type: ignore[attr-defined]
    module.register_scanners = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("broken", lambda s: Broken()))
    monkeypatch.setitem(sys.modules, "argus_test_observers", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("observers", "argus_test_observers")))
    return module


def test_a_failing_observer_and_scanner_are_recorded_and_the_run_goes_on(
        tmp_path: Path, observer_plugin: types.ModuleType) -> None:
    summary = Runner(_config(tmp_path, ["broken"]), tmp_path / "run").run_sync()
    assert summary.fills > 5 and summary.events > 1000  # the run went to the end
    assert len(observer_plugin.calls) == summary.fills  # every fill still observed
    with Ledger.in_dir(tmp_path / "run") as ledger:
        checks = {r["check_name"]: r["n"] for r in ledger.query(
            "select check_name, count(*) as n from risk_events group by check_name")}
        assert checks["observer_error"] == summary.fills
        assert checks["scanner_error"] == summary.events // 500
        why = ledger.query("select reason from risk_events where check_name = "
                           "'observer_error' limit 1")[0]["reason"]
        assert "'observers'" in why and "observer bug" in why


def test_a_failing_on_startup_stops_the_run_naming_the_plugin(
        tmp_path: Path, observer_plugin: types.ModuleType) -> None:
    def on_startup(ctx: Any) -> None:
        raise RuntimeError("cannot start")

    observer_plugin.on_startup = hookimpl(on_startup)  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="'observers' failed in hook on_startup"):
        Runner(_config(tmp_path, []), tmp_path / "run").run_sync()


class CountingScanner(Scanner):
    """Counts its scans; the count is its state."""

    name = "counting"

    def __init__(self) -> None:
        self.scans = 0

    def scan(self, market: Any, ts_ns: int) -> list[Opportunity]:
        self.scans += 1
        return []

    def get_state(self) -> dict[str, Any]:
        return {"scans": self.scans}

    def set_state(self, state: dict[str, Any]) -> None:
        self.scans = int(state["scans"])


def test_a_scanners_state_survives_a_restart(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_core import plugins

    built: list[CountingScanner] = []

    def make(settings: Any) -> CountingScanner:
        built.append(CountingScanner())
        return built[-1]

    module = types.ModuleType("argus_test_counting")
    module.register_scanners = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("counting", make))
    monkeypatch.setitem(sys.modules, "argus_test_counting", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("counting", "argus_test_counting")))
    config = parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": [], "scanners": ["counting"],
                "scan_every_events": 100, "checkpoint_every_events": 100},
        "plugins": {"replay": {"bars_csv": str(BUNDLED_BARS), "start": "2022-01-01",
                               "end": "2022-03-01"}}}, tmp_path / "c.toml")
    whole = Runner(config, tmp_path / "whole").run_sync()
    total = built[-1].scans
    assert total == whole.events // 100 == 14
    Runner(config, tmp_path / "split", max_events=700).run_sync()
    assert built[-1].scans == 7
    Runner(config, tmp_path / "split").run_sync()  # resumes at the checkpoint
    assert built[-1].scans == total  # 7 restored + 7 more, not 7 alone
