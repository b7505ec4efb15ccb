"""The static filter: the contract's allow-list, every reason reported, and the CLI."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from argus_core.sandbox import validate_source
from argus_core.sandbox.validator import (
    ALLOWED_BUILTINS,
    ALLOWED_IMPORTS,
    FORBIDDEN_NAMES,
    MAX_SOURCE_BYTES,
)

SEED = Path(__file__).parents[2] / "examples" / "orchestrator" / "seed_strategy.py"

GOOD = '''"""Buy when the close rises twice in a row."""
import math
from collections import deque

WINDOW = 3


class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        closes = state.setdefault("closes", [])
        closes.append(event["close"])
        del closes[:-WINDOW]
        if len(closes) == WINDOW and closes[0] < closes[1] < closes[2]:
            return [{"instrument_id": event["instrument_id"], "side": "buy",
                     "reason": f"rising {math.log(closes[2] / closes[0]):.4f}"}]
        return []
'''


def test_good_module_is_accepted() -> None:
    result = validate_source(GOOD)
    assert result.accepted, result.reasons


def test_seed_strategy_is_accepted() -> None:
    result = validate_source(SEED.read_text())
    assert result.accepted, result.reasons


@pytest.mark.parametrize(("snippet", "needle"), [
    ("import os", "import of 'os'"),
    ("import subprocess as sp", "import of 'subprocess'"),
    ("from statistics import sys", "statistics.sys"),
    ("from collections import namedtuple", "collections.namedtuple"),
    ("from math import *", "import *"),
    ("from . import x", "relative imports"),
    ("import collections", "use 'from collections import"),
    ("X = open('/etc/passwd')", "module-level Assign"),
    ("print('hi')", "module-level Expr"),
    ("for i in range(3):\n    pass", "module-level For"),
    ("if True:\n    X = 1", "module-level If"),
    ("X = 10 ** 10 ** 10", "huge value"),
    ("def f():\n    return eval('1')", "'eval'"),
    ("def f():\n    return getattr(1, 'real')", "'getattr'"),
    ("def f():\n    return ().__class__", "'__class__'"),
    ("def f(x):\n    return x._private", "'_private'"),
    ("def f():\n    return '{0.__class__}'.format(1)", "'format'"),
    ("def f():\n    return (i for i in ()).gi_frame", "'gi_frame'"),
    ("def f(e):\n    return e.tb_frame", "'tb_frame'"),
    ("def f():\n    return __builtins__", "'__builtins__'"),
    ("def f():\n    global X", "'global'"),
    ("def f():\n    with open('x'):\n        pass", "'with'"),
    ("def f():\n    yield 1", "'yield'"),
    ("async def f():\n    pass", "'async def'"),
    ("def f(x=open('a')):\n    pass", "default values must be literals"),
    ("def f(x: print()):\n    pass", "annotations may only name types"),
    ("class A(object):\n    pass", "base classes"),
    ("class A:\n    x = compute()", "class body"),
    ("@decorate\ndef f():\n    pass", "decorators"),
    ("def __getattr__(name):\n    pass", "'__getattr__'"),
    ("def f():\n    return type(1)", "'type'"),
    ("def f():\n    return b'raw'", "bytes literals"),
    ("def f():\n    import math as _m", "only allowed at module level"),
    ("import math as _m", "cannot bind"),
])
def test_forbidden_constructs_are_reported(snippet: str, needle: str) -> None:
    result = validate_source(GOOD + "\n" + snippet + "\n")
    assert not result.accepted
    assert any(needle in r for r in result.reasons), result.reasons


def test_every_reason_is_reported_at_once() -> None:
    bad = GOOD + "\nimport os\nimport socket\nX = open('f')\n"
    reasons = validate_source(bad).reasons
    assert sum("import of" in r for r in reasons) == 2
    assert any("module-level" in r for r in reasons)
    assert all(r.startswith("line ") for r in reasons)


def test_contract_shape_is_checked() -> None:
    no_class = validate_source("X = 1\n")
    assert any("class Strategy" in r for r in no_class.reasons)
    wrong_sig = validate_source(
        "class Strategy:\n    def on_event(self, event):\n        return []\n")
    assert any("exactly (self, event, state, portfolio)" in r for r in wrong_sig.reasons)
    bad_events = validate_source(GOOD.replace('("bar",)', '("bars", "x")'))
    assert any("EVENTS" in r for r in bad_events.reasons)


def test_size_limits_and_garbage() -> None:
    assert not validate_source("#" * (MAX_SOURCE_BYTES + 1)).accepted
    assert any("syntax error" in r for r in validate_source("def (:\n").reasons)
    assert not validate_source("x = 1\x00").accepted
    deep = "X = " + "(" * 300 + "1" + ")" * 300 + "\n"
    assert not validate_source(deep).accepted


def test_allowed_import_members_hold_no_modules() -> None:
    import importlib
    import types

    for module_name, members in ALLOWED_IMPORTS.items():
        if module_name == "__future__":
            continue
        module = importlib.import_module(module_name)
        for member in members:
            assert not isinstance(getattr(module, member), types.ModuleType), member


def test_allow_and_deny_lists_do_not_overlap() -> None:
    assert not ALLOWED_BUILTINS & FORBIDDEN_NAMES
    import builtins

    assert {n for n in ALLOWED_BUILTINS if n not in {"True", "False", "None"}} <= set(dir(builtins))


def test_worker_exposes_exactly_the_allowed_builtins() -> None:
    """The worker's restricted builtins equal the filter's list (plus a few exception types)."""
    worker_src = (Path(__file__).parents[2] / "argus_core" / "sandbox" / "worker.py").read_text()
    tree = ast.parse(worker_src)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "names" for t in node.targets):
            names = {e.value for e in node.value.elts}  # type: ignore[attr-defined]
    assert names >= ALLOWED_BUILTINS
    extra = names - ALLOWED_BUILTINS
    assert all(n.endswith("Error") for n in extra), extra


def test_cli_sandbox_check(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from argus_core.builtins.orchestrator_plugin import sandbox_group

    good = tmp_path / "good.py"
    good.write_text(GOOD)
    bad = tmp_path / "bad.py"
    bad.write_text(GOOD + "\nimport os\nX = open('f')\n")
    runner = CliRunner()
    ok = runner.invoke(sandbox_group, ["check", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "accepted" in ok.output
    res = runner.invoke(sandbox_group, ["check", str(bad), "--json"])
    assert res.exit_code == 8
    payload = json.loads(res.output)
    assert payload["accepted"] is False
    assert len(payload["reasons"]) >= 2
    missing = runner.invoke(sandbox_group, ["check", str(tmp_path / "nope.py")])
    assert missing.exit_code == 4
