"""Fourth held-out audit: every path from what a strategy may name to the interpreter.

The jail literature's core move is a walk of the object graph from some harmless
value to ``__globals__``, ``__builtins__``, ``sys``, ``os``, ``importlib``,
``ctypes``, ``gc`` or ``inspect``.  Three walks here, over this interpreter's
actual objects (``dir()``), bounded in depth:

* every member of every allowed module, under its own name and private ones
  (``statistics.sys``, ``fractions._RATIONAL_FORMAT``...): the checker accepts
  exactly the listed members, and none of those is a dangerous object;
* every path, through *any* attribute name (dunders included), from the values a
  strategy may name to a dangerous object: each path, written as code, is
  refused by the checker, with a finding on its line;
* every path through the names a strategy may *use* (listed or self-defined),
  following container items and zero-argument method calls too: none reaches a
  dangerous object (that walk found nothing to fix; it is here so that a new
  allowed name, or a new Python, cannot open one silently).
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import decimal
import fractions
import importlib
import itertools
import statistics
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from argus_orchestrator.sandbox import validate_source
from argus_orchestrator.sandbox import validator as v

STRATEGY = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        return []
'''
MODULES = sorted(m for m in v.ALLOWED_IMPORTS if m != "__future__")
#: Builtins whose mere possession is an escape (code, attribute walks, I/O, classes).
DANGEROUS_BUILTINS = ("eval", "exec", "compile", "open", "getattr", "setattr", "delattr",
                      "hasattr", "globals", "locals", "vars", "dir", "__import__", "breakpoint",
                      "input", "print", "memoryview", "type", "object", "super", "classmethod",
                      "property", "id", "format", "__build_class__")
_BAD_TYPES = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType,
              types.CellType, types.MappingProxyType, types.GeneratorType,
              types.CoroutineType, types.AsyncGeneratorType)


def _danger_check() -> Any:
    """A function telling what makes an object a step out of the jail (or None), for the
    modules loaded now: a module's globals dict, a dangerous builtin, a module, a frame,
    code, a traceback, a cell, a class namespace or a suspended generator."""
    # Each object is kept beside its id: an extension module's ``__dict__`` may be built on
    # each access (cffi's ``_openssl.lib``), and a freed one's id is soon another object's.
    special: dict[int, tuple[object, str]] = {}
    for name, module in list(sys.modules.items()):
        globals_ = getattr(module, "__dict__", None)
        if globals_ is not None:
            special[id(globals_)] = (globals_, f"the globals of {name}")
    for n in DANGEROUS_BUILTINS:
        special[id(getattr(builtins, n))] = (getattr(builtins, n), f"builtin {n}")

    def danger(obj: Any) -> str | None:
        if isinstance(obj, _BAD_TYPES):
            return type(obj).__name__
        held = special.get(id(obj))
        return held[1] if held is not None and held[0] is obj else None

    return danger


@pytest.mark.parametrize("module_name", MODULES)
def test_allowed_modules_give_exactly_their_listed_members(module_name: str) -> None:
    module = importlib.import_module(module_name)
    allowed = v.ALLOWED_IMPORTS[module_name]
    names = sorted(n for n in dir(module) if n.isidentifier())
    danger = _danger_check()
    for name in allowed:
        assert danger(getattr(module, name)) is None, f"{module_name}.{name}"
    # 'from M import name' for every name the module has, one per line.
    source = "".join(f"from {module_name} import {n} as x{i}\n" for i, n in enumerate(names))
    refused = {f.line for f in validate_source(source + STRATEGY).findings}
    for i, name in enumerate(names):
        assert ((i + 1) in refused) is (name not in allowed), f"from {module_name} import {name}"
    if module_name in v.PLAIN_IMPORTS:  # and 'M.name' after 'import M'
        body = "".join(f"        x = {module_name}.{n}\n" for n in names)
        source = f"import {module_name}\n" + STRATEGY.replace("        return []\n",
                                                               body + "        return []\n")
        result = validate_source(source)
        first = 5  # 'import M', a blank line, the class, the def: the first access line
        refused = {f.line for f in result.findings}
        for i, name in enumerate(names):
            assert ((first + i) in refused) is (name not in allowed), f"{module_name}.{name}"


def _named_roots() -> Iterator[tuple[str, Any, str]]:
    """(code for it, the value, the import it needs) for what a strategy may name."""
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for member in sorted(v.ALLOWED_IMPORTS[module_name]):
            if module_name in v.PLAIN_IMPORTS:
                yield f"{module_name}.{member}", getattr(module, member), f"import {module_name}"
            elif module_name != "typing":  # typing names are for annotations only
                yield member, getattr(module, member), f"from {module_name} import {member}"
    for name in sorted(v.ALLOWED_BUILTINS - {"True", "False", "None"}):
        yield name, getattr(builtins, name), ""
    for code in ("''", "0", "0.5", "()", "[]", "{}", "(x for x in ())", "(lambda: 0)",
                 "self", "self.on_event", "Strategy", "event", "...", "1j"):
        yield code, None, ""


def _paths_to_danger(depth: int) -> list[tuple[str, str, str]]:
    """Shortest attribute paths (any name) from the named roots to a dangerous object."""
    literal = {"''": "", "0": 0, "0.5": 0.5, "()": (), "[]": [], "{}": {}, "...": ...,
               "1j": 1j, "(x for x in ())": (x for x in ()), "(lambda: 0)": lambda: 0,
               "event": {}, "Strategy": type("Strategy", (), {"on_event": lambda s: 0})}
    literal["self"] = literal["Strategy"]()
    literal["self.on_event"] = literal["self"].on_event
    seen: set[int] = set()
    alive: list[Any] = []
    danger = _danger_check()
    frontier = [(code, literal.get(code, value), imp) for code, value, imp in _named_roots()]
    found = []
    for level in range(depth + 1):
        following = []
        for code, obj, imp in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            alive.append(obj)
            what = danger(obj) if level else None
            if what:
                found.append((code, what, imp))
                continue
            if level == depth:
                continue
            for name in dir(obj):
                try:
                    value = getattr(obj, name)
                except Exception:  # an attribute that raises leads nowhere
                    continue
                following.append((f"{code}.{name}", value, imp))
        frontier = following
    return found


@pytest.mark.slow  # ~20-35 s: tens of thousands of objects
def test_every_path_to_the_interpreter_is_refused_on_its_line() -> None:
    paths = _paths_to_danger(depth=3)
    reached = {what.split(" of ")[-1] for _, what, _ in paths}
    # The walk does reach what the literature goes for (else it proves nothing).
    assert {"builtins", "sys", "frame", "code"} & {r.split()[-1] for r in reached}
    assert len(paths) > 100
    imports = sorted({imp for _, _, imp in paths if imp})
    head = "".join(f"{imp}\n" for imp in imports)
    for start in range(0, len(paths), 400):
        chunk = paths[start:start + 400]
        body = "".join(f"        x = {code}\n" for code, _, _ in chunk)
        source = head + STRATEGY.replace("        return []\n", body + "        return []\n")
        refused = {f.line for f in validate_source(source).findings}
        first = len(imports) + 4
        missed = [(code, what) for i, (code, what, _) in enumerate(chunk)
                  if first + i not in refused]
        assert not missed, missed[:20]


def _user_roots() -> list[Any]:
    """Values a strategy can hold: allowed members, literals, instances, caught errors."""
    class Helper:
        def __init__(self) -> None:
            self.value = 1

        def method(self) -> int:
            return self.value

    caught: list[Any] = []
    for fault in (lambda: 1 / 0, lambda: {}["k"], lambda: Helper().nope,
                  lambda: decimal.Decimal("x"), lambda: statistics.mean([]),
                  lambda: fractions.Fraction(1, 0), lambda: int("x")):
        try:
            fault()
        except Exception as exc:
            caught.append(exc)
    roots: list[Any] = [value for _, value, _ in _named_roots() if value is not None]
    return [*roots, "s", 1, 1.5, 1j, True, None, [1], {"k": [1]}, {1}, (1,), range(3),
                    slice(1, 2), ..., Helper, Helper(), Helper().method,
                    collections.deque([1]), collections.Counter("ab"),
                    collections.OrderedDict(a=1), collections.defaultdict(list),
                    decimal.Decimal("1.5"), fractions.Fraction(1, 3),
                    statistics.NormalDist(0, 1), (x for x in [1]), lambda: 0,
                    itertools.count(), staticmethod(len), {}.keys(), {}.items(), *caught]


#: Zero-argument methods not called by the walk (they mutate the root or never end).
_NOT_CALLED = frozenset({"clear", "pop", "popitem", "popleft", "remove", "reverse", "sort",
                         "rotate", "cycle", "count", "repeat"})


@pytest.mark.slow  # ~20-35 s: tens of thousands of objects
def test_names_a_strategy_may_use_reach_nothing_dangerous() -> None:
    seen: set[int] = set()
    alive: list[Any] = []
    danger = _danger_check()
    frontier = [(r, repr(r)[:40]) for r in _user_roots()]
    reached = []
    for level in range(4):
        following = []
        for obj, path in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            alive.append(obj)
            what = danger(obj)
            if what and not (level == 0 and isinstance(obj, types.GeneratorType)):
                reached.append((path, what))
                continue
            for name in dir(obj):
                if v._user_attr_problem(name) is not None:
                    continue
                try:
                    value = getattr(obj, name)
                except Exception:
                    continue
                following.append((value, f"{path}.{name}"))
                if callable(value) and name not in _NOT_CALLED and not isinstance(obj, type):
                    with contextlib.suppress(BaseException):  # a failing call leads nowhere
                        following.append((value(), f"{path}.{name}()"))
            if isinstance(obj, list | tuple | dict) and len(obj) < 50:
                items = obj.items() if isinstance(obj, dict) else enumerate(obj)
                following += [(item, f"{path}[{key!r}]") for key, item in items]
        frontier = following
    assert not reached, reached[:20]
    assert len(seen) > 20_000  # the walk did cover the graph
