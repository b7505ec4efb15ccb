"""Core gaps found writing a third-party plugin (round 38), each failing before the core's
fix: a strategy answering a bare ``Intent`` (or a string) ended the run with "'Intent'
object is not iterable", naming no strategy (now that strategy's error: REDUCING, a risk
event naming it); a ``register_*`` hook that returned its factories instead of calling
``register`` registered nothing, and only "no strategy named ... is registered" came later
(now refused at load, naming the plugin and the hook)."""

from __future__ import annotations

import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_testkit import ConfigRunner, extra_plugins

from argus_core import Bar, Intent, MarketEvent, PluginError, Side, Strategy, hookimpl
from argus_core.plugins import PluginHost


class _BareIntent(Strategy):
    """Returns one ``Intent``, not a list: the commonest slip."""

    name = "bare"

    def __init__(self, settings: object = None) -> None:
        pass

    def on_event(self, event: MarketEvent, ctx: Any) -> Any:
        if isinstance(event, Bar):
            return Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal("0.01"))
        return []


@hookimpl
def _register_bare(register: Any) -> None:
    register("bare", _BareIntent)


def test_a_strategy_returning_a_bare_intent_is_its_error_not_the_runs(
        run_config: ConfigRunner, bars_csv: Path) -> None:
    plugin = types.SimpleNamespace(register_strategies=_register_bare)
    with extra_plugins({"bare": plugin}):
        result = run_config.run({
            "argus": {"plugins": []},
            "run": {"venue": "replay", "strategies": ["bare"], "sizer": "fixed_fraction"},
            "plugins": {"replay": {"bars_csv": str(bars_csv)}}})
    assert any("strategy 'bare'" in str(e.get("reason")) for e in result.risk_events)


@hookimpl(specname="register_strategies")
def _returns_factories(register: Any) -> Any:
    return [_BareIntent]  # the datasette/llm habit: return, instead of register(...)


def test_a_register_hook_that_returns_its_factories_is_refused_by_name() -> None:
    host = PluginHost()
    host.load([])
    plugin = types.SimpleNamespace(register_strategies=_returns_factories)
    with pytest.raises(PluginError, match=r"plugin .returns.*register_strategies returned"):
        host.add_plugin(plugin, "returns")
