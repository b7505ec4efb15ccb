"""``argus_testkit.components``: a strategy's and a risk check's contract checked in a unit
test, before a run.  Each broken component below got through the kit before (it had no
check but the venue suite) and failed only mid-run: a bare ``Intent`` as the answer
crashed ``argus backtest`` with "TypeError: 'Intent' object is not iterable" naming no
strategy; Decimal state stopped the run at its first checkpoint; a number key or a tuple
came back changed after a restart, unsaid; a private core import was never flagged."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.components import check_risk_check, check_strategy, core_private_imports

from argus_core import (
    Bar,
    Intent,
    MarketEvent,
    PluginError,
    RiskAction,
    RiskCheck,
    RiskContext,
    RiskDecision,
    Side,
    Strategy,
    StrategyContext,
)
from argus_core.plugins import PluginHost

TEMPLATE_SRC = Path(__file__).resolve().parents[2] / "_template" / "src"


class Dip(Strategy):
    """Buys a bar that fell 1%: trades on the sample bars."""

    name = "dip"

    def __init__(self, state: Any = None) -> None:
        self.state: Any = state if state is not None else {"n": 0}

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Any:
        if isinstance(event, Bar) and event.close < event.open * 0.99:
            return [Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal(1))]
        return []

    def get_state(self) -> dict[str, Any]:
        return dict(self.state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.state = dict(state)


class Allow(RiskCheck):
    name = "allow"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal, portfolio: Any,
              ctx: RiskContext) -> Any:
        return RiskDecision.allow(self.name)


def test_a_good_strategy_and_check_pass_and_say_what_they_asked() -> None:
    intents = check_strategy(Dip())
    assert [i.side for i in intents] == [Side.BUY, Side.BUY]  # two bars fall 1%+
    assert [d.action for d in check_risk_check(Allow())] == [RiskAction.ALLOW] * 2


def test_every_builtin_and_the_template_pass() -> None:
    host = PluginHost()
    host.load([])
    for reg in host.registry["risk_check"].values():
        check_risk_check(reg.factory(None))
    for reg in host.registry["strategy"].values():
        check_strategy(reg.factory(None))
    assert core_private_imports(TEMPLATE_SRC) == []


class _One(Dip):
    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Any:
        out = super().on_event(event, ctx)
        return out[0] if out else []


class _Text(Dip):
    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Any:
        return "BUY"


class _Raises(Dip):
    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Any:
        raise ValueError("boom")


class _Forgets(Dip):
    def set_state(self, state: dict[str, Any]) -> None:
        self.state = {}


@pytest.mark.parametrize(("strategy", "said"), [
    (_One(), "on_event returned Intent .*return a list"),
    (_Text(), "on_event returned str 'BUY'"),
    (_Raises(), "on_event raised ValueError: boom"),
    (Dip({"d": Decimal(1)}), r"get_state\(\)\['d'\] is Decimal"),
    (Dip({"seen": {1: 2}}), r"get_state\(\)\[.seen.\] has the key 1, not a text"),
    (Dip({"pair": (1, 2)}), r"get_state\(\)\[.pair.\] is tuple"),
    (_Forgets(), r"set_state\(get_state\(\)\) changed the state"),
])
def test_a_broken_strategy_is_named_with_what_to_change(strategy: Strategy, said: str) -> None:
    with pytest.raises(PluginError, match=f"strategy 'dip': {said}"):
        check_strategy(strategy)


class _True(Allow):
    def check(self, *args: Any) -> Any:
        return True


class _Grows(Allow):
    def check(self, intent: Intent, quantity: Decimal, *args: Any) -> Any:
        return RiskDecision(RiskAction.SHRINK, self.name, "more", quantity * 2)


class _Unnamed(Allow):
    name = ""


@pytest.mark.parametrize(("check", "said"), [
    (_True(), "risk check 'allow': check returned bool True; return RiskDecision"),
    (_Grows(), "risk check 'allow': check shrank 0.01 to 0.02"),
    (_Unnamed(), "_Unnamed has no name"),
])
def test_a_broken_risk_check_is_named_with_what_to_change(check: RiskCheck, said: str) -> None:
    with pytest.raises(PluginError, match=said):
        check_risk_check(check)


def test_private_core_imports_are_listed_by_file_and_line(tmp_path: Path) -> None:
    pkg = tmp_path / "argus_mine"
    pkg.mkdir()
    (pkg / "plugin.py").write_text(
        "from argus_core import Strategy\nimport argus_core.metrics\n"
        "from argus_core.runner import Runner\nimport argus_core.models as m\n"
        "from . import argus_core_like\n")
    assert core_private_imports(pkg) == [f"{pkg / 'plugin.py'}:3: argus_core.runner",
                                         f"{pkg / 'plugin.py'}:4: argus_core.models"]
