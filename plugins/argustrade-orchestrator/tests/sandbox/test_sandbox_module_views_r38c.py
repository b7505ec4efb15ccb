"""Red team r38c: an allowed import handed the strategy the whole module.

With the Python guards on and the static filter out of the way (as the escape corpus
runs), the worker's ``__import__`` returned ``sys.modules[name]``: every attribute of
an allowed module was the strategy's, not only its listed members.  ``statistics.sys``
and ``typing.sys`` gave ``sys`` (then ``sys.modules['_signal']``, ``sys.modules['os']``,
``sys.setrecursionlimit``...), ``from collections import abc`` fell back to the
submodule in ``sys.modules``, and ``math.pi = 3`` changed the worker's own ``math``.
Now each import gets a read-only view holding the listed members only (the host sends
the lists in the policy), a name outside them in ``from x import y`` is an ImportError
naming it, and a worker sent no lists, or malformed ones, refuses to start.
"""

from __future__ import annotations

from typing import Any

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess

#: Guards on (the default); the filter is never run here, as in the escape corpus.
POLICY = WorkerPolicy(call_timeout_s=2.0, start_timeout_s=6.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}},
        "event": {"type": "bar", "instrument_id": "test:X", "close": 1.0}}

SOURCE = '''
{imports}


class Strategy:
    def on_event(self, event, state, portfolio):
        {statement}
        return []
'''
#: name -> (imports, expression that reaches past the allowed members)
READS = {
    "statistics.sys": ("import statistics", "statistics.sys.modules['_signal']"),
    "typing.sys": ("import typing", "typing.sys.setrecursionlimit"),
    "collections helper": ("import collections", "collections._sys"),
    "functools globals": ("import functools", "functools.WRAPPER_ASSIGNMENTS"),
    "decimal internals": ("import decimal", "decimal.getcontext"),
}


def _source(imports: str, read: str = "1", statement: str = "") -> str:
    """A strategy with ``imports`` whose ``on_event`` runs ``statement`` (by default:
    keeps the repr of ``read`` in the state)."""
    return SOURCE.format(imports=imports,
                         statement=statement or f"state['got'] = repr({read})[:60]")


def _call(source: str) -> dict[str, Any]:
    with WorkerProcess(source, POLICY) as worker:
        return worker.call(CALL)


@pytest.mark.parametrize("read", sorted(READS))
def test_an_allowed_module_gives_only_its_listed_members(read: str) -> None:
    imports, expression = READS[read]
    reply = _call(_source(imports, expression))
    assert reply["ok"] is False, f"{expression} was read: state {reply.get('state')!r}"
    assert reply["error"].startswith("AttributeError"), reply["error"]


def test_a_modules_dunder_is_refused_at_load_naming_it() -> None:
    """``math.__loader__`` (a module's private side, spelt as a dunder): the worker's
    load-time name check (r38d) refuses the strategy before it runs."""
    with pytest.raises(WorkerFailure) as failure:
        WorkerProcess(_source("import math", "math.__loader__"), POLICY)
    assert "'__loader__'" in str(failure.value), str(failure.value)


@pytest.mark.parametrize("line", ["from statistics import sys",
                                  "from collections import abc",
                                  "from math import mean, sqrt"])
def test_from_import_of_a_name_outside_the_list_fails_naming_it(line: str) -> None:
    """Refused at load, by the name: 'abc' is a submodule the bare 'from' would have
    taken from sys.modules, 'mean' is a name math lacks anyway."""
    source = _source(line)
    with pytest.raises(WorkerFailure) as failure:
        WorkerProcess(source, POLICY)
    message = str(failure.value)
    name, module = line.split()[3].rstrip(","), line.split()[1]
    assert "ImportError" in message and f"cannot import {name!r} from {module!r}" in message, \
        message


@pytest.mark.parametrize("statement", ["math.pi = 3.0", "del math.pi", "math.extra = 1"])
def test_an_allowed_module_view_refuses_attribute_setting(statement: str) -> None:
    """The view is read-only: nothing the strategy sets lands on the worker's module."""
    source = _source("import math", statement=statement)
    reply = _call(source)
    assert reply["ok"] is False, f"{statement!r} ran: state {reply.get('state')!r}"
    assert reply["error"].startswith("AttributeError"), reply["error"]


def test_listed_members_are_handed_out_as_they_are() -> None:
    """Functions unbound, classes themselves, constants as values, both import forms."""
    source = '''
import math
import statistics as st
from collections import deque
from decimal import Decimal, ROUND_HALF_UP
from statistics import NormalDist, mean


class Strategy:
    def on_event(self, event, state, portfolio):
        d = deque([1, 2], maxlen=3)
        d.append(3)
        state["calc"] = [math.sqrt(4.0), math.pi > 3, st.fmean([1.0, 3.0]), mean([2, 4]),
                         list(d), str(Decimal("1.25").quantize(Decimal("0.1"), ROUND_HALF_UP)),
                         round(NormalDist(0.0, 1.0).cdf(0.0), 3)]
        state["same"] = [deque.__name__, Decimal.__module__, isinstance(d, deque)]
        return []
'''
    reply = _call(source)
    assert reply["ok"] is True, reply.get("error")
    assert reply["state"]["calc"] == [2.0, True, 2.0, 3, [1, 2, 3], "1.3", 0.5]
    assert reply["state"]["same"] == ["deque", "decimal", True]


#: name -> how the host's policy is spoilt before the worker reads it
SPOILT: dict[str, Any] = {
    "missing": None,
    "module names only (the old shape)": ["math", "statistics"],
    "member list not a list": {"math": "sqrt"},
    "member not a string": {"math": ["sqrt", 1]},
    "dunder member": {"math": ["sqrt", "__getattribute__"]},
    "member the module lacks": {"math": ["sqrt", "system"]},
    "bad module name": {"os.path": ["join"]},
}


@pytest.mark.parametrize("how", sorted(SPOILT))
def test_missing_or_malformed_member_lists_refuse_the_start(
        how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: no strategy line runs without lists the worker can enforce."""
    handshake = WorkerProcess._handshake

    def spoilt(self: WorkerProcess, init: dict[str, Any]) -> None:
        init["policy"].pop("allowed_imports", None)
        if SPOILT[how] is not None:
            init["policy"]["allowed_imports"] = SPOILT[how]
        handshake(self, init)

    monkeypatch.setattr(WorkerProcess, "_handshake", spoilt)
    with pytest.raises(WorkerFailure) as failure:
        WorkerProcess(_source("import math", "math.pi"), POLICY)
    message = str(failure.value)
    assert failure.value.kind == "startup" and "allowed_imports" in message, message
