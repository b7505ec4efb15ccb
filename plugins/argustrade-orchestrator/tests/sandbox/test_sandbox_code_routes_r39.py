"""Red team r39: code made from strings at import, and 'format' named by a class pattern.

With the Python guards on and the static filter out of the way (as the escape corpus
runs), two of the guards' promises did not hold:

* The audit hook let every ``compile`` and ``exec`` event through while the module body
  ran (a latch opened for the worker's own compile and exec of the source).  typing
  compiles the text of a forward reference, and ``Union['...']`` of one string *is*
  that ``ForwardRef``, whose ``_evaluate`` (one leading underscore, so not a refused
  name) evals it: at module level that ran any expression with the real builtins
  (``__import__('sys').modules['os']``, ``getattr``, ``type``...).  Now the hook lets
  exactly one compile (the worker's) and one exec (of the code object it checked)
  through; anything else the body compiles or runs is refused, naming the line.
* The load-time name check searched a class pattern's keywords (a constant tuple) for
  dunders only, so ``case str(format=fmt)`` handed out ``str.format``, whose fields walk
  attributes named at run time (``'{0.__class__.__base__.__subclasses__}'``).  In code
  holding a class pattern, a constant tuple's strings are now checked as names.
"""

from __future__ import annotations

from typing import Any

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess
from argus_orchestrator.sandbox.worker import COMPILE_FLAGS, StrategyRefused, check_names

#: Guards on (the default); the filter is never run here, as in the escape corpus.
POLICY = WorkerPolicy(call_timeout_s=2.0, start_timeout_s=6.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}},
        "event": {"type": "bar", "instrument_id": "test:X", "close": 1.0}}

#: The payload: the worker's own ``os`` module, reached through the real ``__import__``.
PAYLOAD = "__import__('sys').modules['os'].getpid()"

#: name -> (source, the line the refusal names: the module-level statement that was
#: running, as a traceback's lines are all the worker may read).  Each keeps GOT.
AT_IMPORT = {
    "Union of one string": (f'''from typing import Union

GOT = Union["{PAYLOAD}"]._evaluate({{}}, {{}}, frozenset())
''', 3),
    "Union of a tuple of one string": (f'''from typing import Union

REF = Union[("{PAYLOAD}",)]
GOT = REF._evaluate({{}}, {{}}, frozenset())
''', 3),
    "in a class body": (f'''from typing import Union


class Holder:
    REF = Union["{PAYLOAD}"]


GOT = Holder.REF._evaluate({{}}, {{}}, frozenset())
''', 4),  # the module-level statement running (the class), as for a call below
    "in a function the body calls": (f'''from typing import Union


def reach():
    return Union["{PAYLOAD}"]._evaluate({{}}, {{}}, frozenset())


GOT = reach()
''', 8),
}
STRATEGY = '''

class Strategy:
    def on_event(self, event, state, portfolio):
        state["got"] = repr(GOT)[:80]
        return []
'''


def _start(source: str) -> dict[str, Any]:
    with WorkerProcess(source, POLICY) as worker:
        return worker.call(CALL)


@pytest.mark.parametrize("route", sorted(AT_IMPORT))
def test_code_made_from_a_string_at_import_is_refused_naming_the_line(route: str) -> None:
    source, line = AT_IMPORT[route]
    with pytest.raises(WorkerFailure) as failure:
        reply = _start(source + STRATEGY)
        pytest.fail(f"the string ran at import: state {reply.get('state')!r}")
    message = str(failure.value)
    assert failure.value.kind == "startup", message
    assert f"line {line} compile refused" in message, message
    assert "StrategyRefused" in message, message


def test_code_made_from_a_string_in_a_call_stays_refused() -> None:
    """After the load (the latch closed) it always was; the message now says why."""
    source = f'''from typing import Union


class Strategy:
    def on_event(self, event, state, portfolio):
        state["got"] = repr(Union["{PAYLOAD}"]._evaluate({{}}, {{}}, frozenset()))
        return []
'''
    reply = _start(source)
    assert reply["ok"] is False, reply
    assert "compile refused" in reply["error"], reply["error"]


def test_an_accepted_shape_with_typing_and_forward_names_still_loads() -> None:
    """What must pass: annotations are text (never compiled), typing names imported at
    module level, string constants, classes and a call of Strategy() at load."""
    source = '''"""Doc."""
from __future__ import annotations

import math
from typing import Dict, List, Optional

NAMES = ("bar", "trade", "format")
LIMIT: Optional["Strategy"] = None


class Strategy:
    EVENTS = ("bar",)
    WINDOW: List["Strategy"] = []

    def __init__(self) -> None:
        self.seen: Dict[str, List["Strategy"]] = {}

    def on_event(self, event, state, portfolio) -> List[Dict[str, "Strategy"]]:
        state["got"] = [math.sqrt(4.0), NAMES[2], str(LIMIT)]
        return []
'''
    reply = _start(source)
    assert reply["ok"] is True, reply
    assert reply["state"]["got"] == [2.0, "format", "None"]


MATCH_FORMAT = '''

class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        match "{{0.__class__.__base__.__subclasses__}}":
            case str({keyword}=fmt):
                out.append(fmt(()))
        state["got"] = out
        return []
'''


@pytest.mark.parametrize("keyword", ["format", "format_map"])
def test_a_class_pattern_naming_format_is_refused_at_load(keyword: str) -> None:
    source = MATCH_FORMAT.format(keyword=keyword)
    with pytest.raises(WorkerFailure) as failure:
        reply = _start(source)
        pytest.fail(f"str.{keyword} was handed out: state {reply.get('state')!r}")
    message = str(failure.value)
    assert f"line 7 uses the name {keyword!r}" in message, message


def _check(source: str) -> None:
    check_names(compile(source, "<strategy>", "exec", COMPILE_FLAGS, dont_inherit=True))


def test_class_patterns_with_plain_keywords_and_format_as_data_pass() -> None:
    """What must pass the new check: a class pattern's ordinary keywords, and 'format'
    as data (a string, or a tuple's item in code without a class pattern)."""
    _check('''
KINDS = ("format", "bar")


class Point:
    def __init__(self, x):
        self.x = x


def pick(value):
    match value:
        case Point(x=0):
            return ("origin", "bar")
    return "format"
''')


def test_format_in_a_tuple_beside_a_class_pattern_is_refused() -> None:
    """The cost of not telling the pattern's tuple from the others: in one function."""
    with pytest.raises(StrategyRefused, match="'format'"):
        _check('''
def pick(value):
    match value:
        case str(upper=u):
            return ("format", "x") if u else ()
''')
