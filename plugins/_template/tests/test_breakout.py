"""The breakout strategy, tested with the fixtures of ``argus_testkit``."""

from collections.abc import Callable
from pathlib import Path

from argus_testkit import ConfigRunner, PluginHost


def test_breakout_trades_under_kelly(run_config: ConfigRunner, bars_csv: Path) -> None:
    result = run_config.run({
        "argus": {"plugins": ["mine"]},
        "run": {"venue": "replay", "strategies": ["breakout"], "sizer": "kelly"},
        "plugins": {"replay": {"bars_csv": str(bars_csv)}, "mine": {"threshold": 0.0005}},
    })
    assert result.orders, result.risk_events  # no orders? the risk events say why
    assert not result.risk_events_of("sizing")  # kelly sized every buy from its forecast


def test_breakout_is_registered(argus_host: PluginHost,
                                register_plugin: Callable[[object, str], None]) -> None:
    from argus_strategy_mine import plugin

    register_plugin(plugin, "mine")
    assert argus_host.get("strategy", "breakout").plugin == "mine"
