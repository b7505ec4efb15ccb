"""The static filter: the contract's allow-list, every reason reported, and the CLI."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from argus_orchestrator.sandbox import validate_source
from argus_orchestrator.sandbox.validator import (
    ALLOWED_BUILTINS,
    ALLOWED_IMPORTS,
    FORBIDDEN_NAMES,
    MAX_SOURCE_BYTES,
)

SEED = Path(__file__).parents[4] / "examples" / "orchestrator" / "seed_strategy.py"

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


#: One input per guard that tries to get past it (attacking the allow-list itself).
BYPASSES = [
    # Module objects flow nowhere: every use other than module.<listed member> is refused.
    ("import statistics\ndef f():\n    m = statistics\n    return m.sys", "may only be used as"),
    ("import statistics\ndef f():\n    return [statistics][0].sys", "may only be used as"),
    ("import statistics\ndef f():\n    return (statistics,)[0]", "may only be used as"),
    ("import statistics\ndef f():\n    return statistics", "may only be used as"),
    ("import statistics\ndef f(m=statistics):\n    return m", "may only be used as"),
    ("import statistics\ndef f():\n    return (lambda m=statistics: m)()", "may only be used as"),
    ("import statistics\ndef f():\n    return (m := statistics)", "may only be used as"),
    ("import statistics\ndef f(g):\n    return g(statistics)", "may only be used as"),
    ("import statistics\ndef f():\n    return statistics.sys", "statistics.sys is not allowed"),
    ("import statistics\ndef f():\n    return statistics.random", "statistics.random"),
    ("import math\ndef f():\n    math.sqrt = abs", "modules are read-only"),
    ("import math\ndef f():\n    del math.pi", "modules are read-only"),
    ("import math\ndef f():\n    return math.sqrt.__self__", "'__self__'"),
    # ... and a module's name is never rebound, so math.<x> always means the module.
    ("import math\ndef f(math):\n    return math.modules", "cannot rebind 'math'"),
    ("import math\ndef f(x):\n    for math in x:\n        pass", "cannot rebind 'math'"),
    ("import math\ndef f(x):\n    return [1 for math in x]", "cannot rebind 'math'"),
    ("import math\ndef f():\n    try:\n        pass\n    except ValueError as math:\n"
     "        pass", "cannot rebind 'math'"),
    ("import math\ndef f():\n    del math", "cannot rebind 'math'"),
    ("import math\nclass math:\n    pass", "cannot rebind 'math'"),
    ("import math\nimport statistics as math", "bound more than once"),
    ("import os.path", "import of 'os.path'"),
    ("def f():\n    import math\n    return math.pi", "only allowed at module level"),
    ("from __future__ import barry_as_FLUFL", "__future__.barry_as_FLUFL"),
    ("from fractions import sys", "fractions.sys"),
    ("from statistics import namedtuple", "statistics.namedtuple"),
    ("from functools import partial", "functools.partial"),
    ("from typing import get_type_hints", "typing.get_type_hints"),
    ("from typing import Any\ndef f():\n    return Any", "only appear in annotations"),
    ("from typing import Any\nAny = 1", "cannot rebind 'Any'"),
    # Attributes: unknown values get only the listed ordinary method names.
    ("def f(x):\n    return x.sys", "'sys' is not in the allowed list"),
    ("def f(x):\n    return x.modules", "'modules' is not allowed"),
    ("def f():\n    return str.format", "'format'"),
    ("def f(x):\n    return '{0.real}'.format_map(x)", "'format_map'"),
    ("def f():\n    return str.mro()", "'mro'"),
    ("def f(e):\n    return e.with_traceback", "'with_traceback'"),
    ("def f(x):\n    return x.encode('rot13')", "'encode'"),
    ("def f(x):\n    return x.f_back", "'f_back'"),
    ("def f(x):\n    return x.cr_frame", "'cr_frame'"),
    ("def f(x):\n    return x.ag_frame", "'ag_frame'"),
    ("def f(x):\n    return x.co_consts", "'co_consts'"),
    ("def f(x):\n    return x.cell_contents", "'cell_contents'"),
    ("def f(x):\n    return x.keys().mapping", "'mapping'"),
    # A strategy may define its own attribute names, but not these.
    ("class A:\n    def m(self):\n        self.format = 1\n        return self.format", "'format'"),
    ("class A:\n    def m(self):\n        self.gi_frame = 1", "'gi_frame'"),
    ("class A:\n    mro = 1\n    def m(self):\n        return self.mro", "'mro'"),
    ("class A:\n    def m(self):\n        self._hidden = 1", "'_hidden'"),
    # Names: builtins outside the list can be neither used nor shadowed.
    ("def f():\n    return BaseException", "the builtin 'BaseException'"),
    ("def f():\n    return __builtins__", "'__builtins__'"),
    ("def f():\n    return undefined_name", "neither defined in this module"),
    ("def f(open):\n    return open", "shadows a builtin"),
    ("def f():\n    memoryview = 1", "'memoryview'"),
    ("def staticmethod(f):\n    return f", "cannot rebind 'staticmethod'"),
    ("def f():\n    return \uff45val('1')", "non-ASCII identifier"),
    ("def f():\n    return dict(__class__=1)", "keyword argument '__class__'"),
    # Statements and syntax outside the allow-list.
    ("def f(x):\n    match x:\n        case str(format=g):\n            return g", "'match'"),
    ("def f():\n    try:\n        pass\n    except* ValueError:\n        pass", "'except*'"),
    ("def f():\n    return (x for x in ()).gi_frame", "'gi_frame'"),
    ("def f():\n    yield from ()", "'yield from'"),
    ("async def f():\n    await g()", "'async def'"),
    ("def f():\n    nonlocal x", "'nonlocal'"),
    ("def f(x):\n    return x @ x", "'@'"),
    # Import-time work: annotations, defaults, decorators, class bodies, constants.
    ("def f(x: 10 ** 10 ** 8):\n    pass", "annotations may only combine"),
    ("def f(x: list[print()]):\n    pass", "annotations may only name types"),
    ("def f(x='a' * 3_000_000_000):\n    pass", "huge value"),
    ("def f(x=10 ** 10 ** 8):\n    pass", "huge value"),
    ("class A:\n    @staticmethod\n    @staticmethod\n    def m():\n        pass\n"
     "    X = [i for i in range(3)]", "class body"),
    ("@staticmethod\ndef f():\n    pass", "decorators other than @staticmethod"),
    ("class A:\n    @(lambda f: f)\n    def m(self):\n        pass", "decorators other than"),
    ("X = (lambda: 1)()", "module-level Assign"),
    ("X = 2 ** 2000", "huge value"),
    ("X = 1 << 5000", "huge value"),
    ("X = (1,) * 100_000 * 100_000", "huge value"),
    ("X = 100_000 * 100_000 * (1,)", "huge value"),
    ("X = 'a' * 60_000 + 'b' * 60_000", "huge value"),
    ("X = 1 / 0", "raises ZeroDivisionError"),
    ("X = " + "9" * 400, "integer literal"),
    ("def f():\n    return pow(10, 10 ** 8)", "huge value"),
    ("N = 10 ** 9\ndef f():\n    return 'a' * N", "huge value"),
    ("def f():\n    return '%0999999999d' % 1", "format width"),
    ("def f(x):\n    return '%*d' % (x, 1)", "'*' widths"),
    ("def f(x):\n    return '%(a)999999999s' % x", "format width"),
    ("def f(x):\n    return f'{x:>999999999}'", "format width"),
    ("def f(x):\n    return f'{x:>{10 ** 9}}'", "format width"),
    ("W = '>999999999'\ndef f(x):\n    return f'{x:{W}}'", "format width"),
    ("def f(x):\n    return x.ljust(10 ** 9)", "padding"),
    ("def f():\n    while True:\n        pass", "can never end"),
    ("def f():\n    while 1:\n        for i in range(3):\n            break", "can never end"),
    ("# coding: unicode_escape\nX = 1", "encoding declaration"),
    ("".join(f"X{i} = [0] * 99_999\n" for i in range(20)), "in all"),
    ("# a comment\rX = " + "-" * 40 + "1", "prefix operators"),
    ("Strategy = 1", "'Strategy' is bound more than once"),
    ("from math import sqrt as staticmethod", "cannot rebind 'staticmethod'"),
    ("import math as open", "cannot bind the name 'open'"),
]


@pytest.mark.parametrize(("snippet", "needle"), BYPASSES)
def test_each_guard_refuses_the_input_meant_to_get_past_it(snippet: str, needle: str) -> None:
    source = snippet + "\n" + GOOD if snippet.startswith("# coding") else GOOD + "\n" + snippet
    result = validate_source(source + "\n")
    assert not result.accepted
    assert any(needle in r for r in result.reasons), result.reasons


#: Ordinary code the allow-list must keep accepting (false positives break real strategies).
IDIOMS = [
    "from statistics import mean\ndef f(x):\n    mean = 1\n    return mean",
    "import math\ndef f(x):\n    return math.sqrt(x) + math.log(x) * math.pi",
    "import itertools\ndef f(x):\n    return list(itertools.chain.from_iterable(x))",
    "from collections import deque, Counter\ndef f(x):\n    d = deque(x, maxlen=5)\n"
    "    d.appendleft(1)\n    return Counter(x).most_common(1), d.maxlen",
    "from decimal import Decimal, ROUND_HALF_UP\ndef f(x):\n"
    "    return Decimal(str(x)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)",
    "from fractions import Fraction\ndef f():\n    return Fraction(1, 3).limit_denominator(10)",
    "from typing import Dict, List, Optional\nX: Dict[str, float] = {}\n"
    "def f(x: Optional[List[float]] = None) -> Dict[str, float]:\n    return {}",
    "def f(x: list[float] | None = None) -> dict[str, float]:\n    return {}",
    "DECAY = 0.5 ** (1 / 336)\nSPEEDS = ((24, 168), (72, 480))\nZEROS = [0.0] * 1000",
    "NEG = -1.5\nMASK = ~0\nBIG = 10 ** 300\nSHIFTED = 1 << 64",
    "def f(x):\n    for _ in range(3):\n        x += 1\n    return x",
    "def f(x):\n    while True:\n        x -= 1\n        if x < 0:\n            break\n"
    "    return x",
    "def f(x):\n    while True:\n        if x:\n            return x",
    "def f(xs):\n    if (n := len(xs)) > 3:\n"
    "        return sorted(xs, key=lambda p, k=n: abs(p - k))",
    "def f(x):\n    try:\n        return 1 / x\n    except ZeroDivisionError as exc:\n"
    "        return str(exc.args)\n    except Exception:\n        raise ValueError('bad')",
    "def f(x):\n    return f'{x:.2%} {x:>10} {x:,.0f} {-x!r}' + '%.4f %5d' % (x, 3)",
    "def f(d):\n    return {k: v for k, v in d.items() if v} | dict.fromkeys(d, 0)",
    "class Ema:\n    \"\"\"Helper.\"\"\"\n    ALPHA = 0.1\n\n    def __init__(self, x):\n"
    "        self.value = x\n\n    def update(self, x):\n        self.value += self.ALPHA * "
    "(x - self.value)\n        return self.value\n\n    @staticmethod\n    def make():\n"
    "        return Ema(0.0)",
    "def f(x):\n    assert x, 'empty'\n    del x[:-3]\n"
    "    return x[::-1], x[1:2], slice(1, 2).start",
    "import heapq\nimport bisect\ndef f(x):\n    heapq.heappush(x, 1)\n"
    "    return bisect.bisect_left(x, 2)",
    "import statistics\ndef f(x):\n    n = statistics.NormalDist.from_samples(x)\n"
    "    return n.cdf(0.0), statistics.linear_regression(x, x).slope",
]


@pytest.mark.parametrize("snippet", IDIOMS)
def test_ordinary_code_stays_accepted(snippet: str) -> None:
    result = validate_source(GOOD + "\n" + snippet + "\n")
    assert result.accepted, result.reasons


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
    worker = Path(__file__).parents[2] / "src" / "argus_orchestrator" / "sandbox" / "worker.py"
    worker_src = worker.read_text()
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
    from argus_orchestrator.commands import sandbox_group
    from click.testing import CliRunner

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
