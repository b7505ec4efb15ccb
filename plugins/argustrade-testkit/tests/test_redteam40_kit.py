"""Red team of the plugin kit (round 40): a first plugin written from the template, then
broken in the ways a newcomer breaks one.  Each test failed before its fix; each guard
also has the input that must get past it.

Found and fixed:

* ``check_strategy`` passed intents whose fields have the wrong types (``side="buy"``,
  ``order_type="limit"``, a dict as ``forecast``): the core does not check them, so a run
  ended in a bare ``AttributeError`` naming no strategy, or never traded while every
  risk check "raised AttributeError: 'str' object has no attribute 'sign'";
* ``check_strategy`` passed an intent for an instrument none of its events was about: a
  run skips it with "no reference price", naming neither strategy nor instrument;
* ``check_strategy`` refused a ``get_state`` holding NaN (which a checkpoint keeps: a
  warming indicator) as "changes when stored as JSON", because ``nan != nan``;
* ``core_private_imports`` missed ``from argus_core import runner``, ``from argus_core
  import _SUBMODULES`` and ``importlib.import_module("argus_core.ledger")``;
* the template README's contract snippet imported ``check_risk_check`` unused, so the
  test file it tells you to write failed ``ruff check`` (F401).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.components import check_strategy, core_private_imports, sample_bars

from argus_core import (
    Bar,
    CancelIntent,
    Forecast,
    Intent,
    MarketEvent,
    OrderType,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
)
from argus_core.errors import PluginError

TEMPLATE = Path(__file__).resolve().parents[2] / "_template"
Answer = Callable[[Bar], list[Any]]


class _Scripted(Strategy):
    """Answers the third event with ``answer(event)``; nothing otherwise."""

    name = "scripted"

    def __init__(self, answer: Answer, state: dict[str, Any] | None = None) -> None:
        self.answer, self.state, self.n = answer, state or {}, 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Any]:
        self.n += 1
        return self.answer(event) if self.n == 3 and isinstance(event, Bar) else []

    def get_state(self) -> dict[str, Any]:
        return self.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.state = state


def _buy(event: Bar, **fields: Any) -> Intent:
    return Intent("scripted", event.instrument_id, fields.pop("side", Side.BUY),
                  quantity=Decimal("0.01"), **fields)


# -- intent field types --------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "field"), [
    (lambda e: [_buy(e, side="buy")], "side"),
    (lambda e: [_buy(e, side=1)], "side"),
    (lambda e: [_buy(e, order_type="limit", limit_price=16000)], "order_type"),
    (lambda e: [_buy(e, time_in_force="GTC")], "time_in_force"),
    (lambda e: [_buy(e, forecast={"mu": 0.01, "sigma": 0.02})], "forecast"),
    (lambda e: [_buy(e, reduce_only="yes")], "reduce_only"),
    (lambda e: [CancelIntent("scripted", e.instrument_id, side="sell")], "side"),
], ids=["side-text", "side-int", "order-type", "tif", "forecast-dict", "reduce-only",
        "cancel-side"])
def test_an_intent_field_of_the_wrong_type_is_refused_naming_it(answer: Answer,
                                                                 field: str) -> None:
    # the core refuses it where it is made; the kit names the strategy and the field
    with pytest.raises(PluginError, match=rf"strategy 'scripted': on_event raised "
                                          rf"DataError: \w*Intent.*{field} must be"):
        check_strategy(_Scripted(answer))


def test_every_field_used_rightly_gets_past() -> None:
    def answer(e: Bar) -> list[Any]:
        return [_buy(e, order_type=OrderType.LIMIT, limit_price=16000,
                     time_in_force=TimeInForce.GTC, forecast=Forecast(mu=0.01, sigma=0.02),
                     reduce_only=True, basket_id="b1", reason="all of them"),
                Intent("scripted", e.instrument_id, Side.SELL, forecast=None),
                CancelIntent("scripted"), CancelIntent("scripted", e.instrument_id, side=Side.BUY)]
    assert len(check_strategy(_Scripted(answer))) == 4


# -- instruments ---------------------------------------------------------------------------

def test_an_instrument_no_event_was_about_is_refused() -> None:
    with pytest.raises(PluginError, match=r"strategy 'scripted': on_event returned an Intent "
                                          r"for 'kraken:ETH/USD', which no event was about "
                                          r"\(events: kraken:XBT/USD\)"):
        check_strategy(_Scripted(lambda e: [Intent("scripted", "kraken:ETH/USD", Side.BUY)]))
    with pytest.raises(PluginError, match="CancelIntent for 'kraken:ETH/USD'"):
        check_strategy(_Scripted(lambda e: [CancelIntent("scripted", "kraken:ETH/USD")]))


def test_a_second_instrument_among_the_events_gets_past() -> None:
    events = sorted(sample_bars() + sample_bars("kraken:ETH/USD"), key=lambda b: b.ts_ns)
    hedge = _Scripted(lambda e: [Intent("scripted", "kraken:ETH/USD", Side.SELL)])
    assert [i.instrument_id for i in check_strategy(hedge, events)] == ["kraken:ETH/USD"]


# -- state ---------------------------------------------------------------------------------

def test_a_nan_in_the_state_gets_past_as_a_checkpoint_keeps_it() -> None:
    state = {"ema": float("nan"), "window": [1.5, float("nan")], "n": 3}
    check_strategy(_Scripted(lambda e: [], state))


@pytest.mark.parametrize("state", [{"pair": (1, 2)}, {"by_id": {1: "a"}},
                                   {"ema": float("nan"), "x": [float("nan"), (1,)]}])
def test_state_json_cannot_keep_is_still_refused(state: dict[str, Any]) -> None:
    with pytest.raises(PluginError, match="a checkpoint stores state as JSON"):
        check_strategy(_Scripted(lambda e: [], state))


# -- private imports -----------------------------------------------------------------------

@pytest.fixture
def package(tmp_path: Path) -> Iterator[Callable[[str], list[str]]]:
    def write(source: str) -> list[str]:
        (tmp_path / "mod.py").write_text(source)
        return [line.split(": ", 1)[1] for line in core_private_imports(tmp_path)]
    yield write


def test_private_modules_imported_any_way_are_listed(package: Callable[[str], list[str]]
                                                     ) -> None:
    assert package("from argus_core import runner\n"
                   "from argus_core import Bar, _SUBMODULES\n"
                   "import importlib\n"
                   "importlib.import_module('argus_core.ledger')\n"
                   "__import__('argus_core.paper')\n") == [
        "argus_core.runner", "argus_core._SUBMODULES", "argus_core.ledger", "argus_core.paper"]


def test_public_imports_get_past(package: Callable[[str], list[str]]) -> None:
    assert package("import argus_core\nimport argus_core.metrics\n"
                   "from argus_core import Bar, Strategy, hookimpl, metrics, testing\n"
                   "from argus_core import *\nfrom argus_core.metrics import sharpe\n"
                   "from . import runner\nimport importlib\n"
                   "importlib.import_module('argus_core.metrics')\n"
                   "importlib.import_module(name)\nimportlib.import_module('json')\n") == []


# -- the template README -------------------------------------------------------------------

def _readme_snippet() -> str:
    text = (TEMPLATE / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "the template README shows one test file"
    return blocks[0]


def test_the_template_readme_contract_test_runs_and_imports_only_what_it_uses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = _readme_snippet()
    tree = ast.parse(source)
    imported = {a.asname or a.name for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom | ast.Import) for a in n.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert imported <= used, f"imported and unused (ruff F401): {sorted(imported - used)}"
    monkeypatch.syspath_prepend(str(TEMPLATE / "src"))
    namespace: dict[str, Any] = {}
    try:
        exec(compile(tree, "README.md", "exec"), namespace)  # the README's own test
        tests = [f for name, f in namespace.items() if name.startswith("test_")]
        assert tests
        for test in tests:
            test()
    finally:
        for name in [m for m in sys.modules if m.startswith("argus_strategy_mine")]:
            del sys.modules[name]
