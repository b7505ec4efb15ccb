"""Red team r38d: attribute reads CPython does not audit reached whole modules.

With the Python guards on and the static filter out of the way (as the escape corpus
runs), an allowed member was handed out as it is, so its own dunder attributes led
past the module views: ``mean.__globals__['sys']``, ``math.sqrt.__self__`` (the real
``math``), ``mean.__builtins__['__import__']``, ``deque.__class__`` (``type``),
``__import__.__globals__`` (the worker's own globals)...  None of these reads raises
an audit event.  Now the worker checks the compiled strategy before running a line of
it: a dunder name (attribute, global or import; nested code and class-pattern
keywords included) other than the few the compiler emits for ordinary classes and
functions, or ``format``/``format_map`` (format fields walk attributes named in a
string), refuses the load, naming the name and its line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess
from argus_orchestrator.sandbox.worker import COMPILE_FLAGS, StrategyRefused, check_names

#: Guards on (the default); the filter is never run here, as in the escape corpus.
POLICY = WorkerPolicy(call_timeout_s=2.0, start_timeout_s=6.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}},
        "event": {"type": "bar", "instrument_id": "test:X", "close": 1.0}}
REPO = Path(__file__).resolve().parents[4]

SOURCE = '''
import math
from collections import Counter, deque
from functools import reduce
from statistics import NormalDist, mean


class Strategy:
    def on_event(self, event, state, portfolio):
        state["got"] = repr({read})[:80]
        return []
'''
#: name -> (the read, the name the refusal gives)
ROUTES = {
    "function globals": ("mean.__globals__['sys']", "__globals__"),
    "method globals to os": ("NormalDist.__init__.__globals__['sys'].modules['os']",
                             "__globals__"),
    "private module alias": ("Counter.__init__.__globals__['_sys']", "__globals__"),
    "function builtins": ("mean.__builtins__['__import__']", "__builtins__"),
    "builtin's module": ("math.sqrt.__self__", "__self__"),
    "reduce's module": ("reduce.__self__", "__self__"),
    "reduce_ex reconstructor": ("(1).__reduce_ex__(2)[0].__globals__", "__reduce_ex__"),
    "class of a class": ("deque.__class__", "__class__"),
    "worker's import hook": ("__import__.__globals__", "__import__"),
    "format field walk": ("'{0.__globals__[sys]}'.format(mean)", "format"),
    "format_map field walk": ("'{m.__globals__[sys]}'.format_map({'m': mean})",
                              "format_map"),
    "format of a name made at run time": ("str.format('{0.' + '_' * 2 + 'self' + '_' * 2 "
                                          "+ '}', math.sqrt)", "format"),
}
#: The line of ``{read}`` in SOURCE.
READ_LINE = SOURCE.splitlines().index('        state["got"] = repr({read})[:80]') + 1


def _refusal(source: str) -> str:
    """The start-up failure of ``source`` under the guards (the test fails if it loads,
    showing what the strategy read)."""
    try:
        worker = WorkerProcess(source, POLICY)
    except WorkerFailure as exc:
        assert exc.kind == "startup", exc
        return str(exc)
    with worker:
        reply = worker.call(CALL)
    pytest.fail(f"loaded and ran: {reply.get('state') or reply.get('error')!r}")


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_an_unaudited_dunder_read_is_refused_at_load(route: str) -> None:
    """Each read, which ran before (the state held the module or the worker's globals),
    now stops the load with a refusal naming the name and its line."""
    read, name = ROUTES[route]
    message = _refusal(SOURCE.format(read=read))
    assert "StrategyRefused" in message, message
    assert f"sandbox: line {READ_LINE} uses the name " in message, message
    assert repr(name) in message, message


def test_a_class_pattern_keyword_is_checked_like_an_attribute() -> None:
    """``case int(__class__=k)`` reads ``__class__`` by a name the compiler keeps as a
    constant, not in ``co_names``."""
    source = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        match 1:
            case int(__class__=k):
                state["got"] = repr(k)
        return []
'''
    message = _refusal(source)
    assert "line 5 uses the name '__class__'" in message, message


def test_the_worker_globals_cannot_be_rebound_at_module_level() -> None:
    """A module-level dunder (``__builtins__``) is a name like any other."""
    message = _refusal("__builtins__ = {}\n\n\nclass Strategy:\n    pass\n")
    assert "line 1 uses the name '__builtins__'" in message, message


def test_every_refused_name_is_listed() -> None:
    """The first (by line) is named with its line; the others follow it."""
    code = compile("a = x.__dict__\nb = y.__class__.__mro__\n", "<s>", "exec")
    with pytest.raises(StrategyRefused) as refused:
        check_names(code)
    message = str(refused.value)
    assert "line 1 uses the name '__dict__' (also: '__class__', '__mro__')" in message, \
        message


#: What an accepted strategy writes, and what the compiler adds to it on 3.11-3.13.
LEGITIMATE = '''
from __future__ import annotations

import math
from collections import deque
from statistics import NormalDist


class Base:
    """A docstring."""

    WINDOW: int = 3

    def __init__(self, size: int = 3) -> None:
        self._window = deque(maxlen=size)


class Strategy(Base):
    EVENTS = ("bar",)

    def __init__(self) -> None:
        Base.__init__(self, 4)
        self._last: float | None = None

    def on_event(self, event: dict, state: dict, portfolio: dict) -> list:
        self._window.append(event["close"])
        match event:
            case {"type": "bar", "close": close} if close > 0:
                state["sqrt"] = math.sqrt(close)
        state["names"] = [deque.__name__, NormalDist.__module__, Strategy.__qualname__,
                          len(self._window), f"{close:.1f}"]
        return []
'''


def test_a_strategy_using_only_compiler_dunders_and_underscores_runs() -> None:
    """Class annotations, ``__init__``, docstrings, ``from __future__``, ``self._x`` and
    reading a class's ``__name__``: unchanged."""
    with WorkerProcess(LEGITIMATE, POLICY) as worker:
        reply = worker.call(CALL)
    assert reply["ok"] is True, reply.get("error")
    assert reply["state"]["names"] == ["deque", "statistics", "Strategy", 1, "1.0"]


@pytest.mark.parametrize("path", ["examples/orchestrator/seed_strategy.py",
                                  "examples/orchestrator/variants/ema_vol_target.py"])
def test_the_example_strategies_pass_the_check(path: str) -> None:
    code = compile((REPO / path).read_text(), path, "exec", COMPILE_FLAGS, dont_inherit=True)
    check_names(code)


def test_the_check_is_a_python_guard_only() -> None:
    """With the guards off (the escape corpus's OS-only mode) nothing is checked: the OS
    layer alone must hold there, and the corpus exercises it."""
    source = SOURCE.format(read="deque.__class__")
    with WorkerProcess(source, WorkerPolicy(python_guards=False, call_timeout_s=2.0,
                                            start_timeout_s=6.0, memory_mb=256)) as worker:
        reply = worker.call(CALL)
    assert reply["ok"] is True and reply["state"]["got"] == "<class 'type'>", reply
