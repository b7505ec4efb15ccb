"""Sixth held-out audit, the checker: work it does itself, and strings typing compiles.

Found (each regression below failed before its fix):

* the checker's own regular expression for a quoted type name in an annotation's
  brackets (``List['...']``) backtracked exponentially: a 100-character string
  ``'a[]|a[]|...|a[]!'`` held the checker (the host's process, the GIL with it) for
  seconds, twice as long with every four more characters, far past its 5 s limit (a
  regular expression is one C call: the deadline is never read inside it);
* bytes constants were folded although bytes literals are refused: ``b'%0999999999d' %
  1`` built a gigabyte *in the checker* (the width check covers ``str`` formats only),
  before the finding was made;
* a string on either side of ``|`` in an annotation is compiled at import too
  (``List[int] | 'a b'`` is ``Union[List[int], ForwardRef('a b')]``), but only
  strings inside the brackets were held to type names: such a module was accepted
  and then failed to load (``SyntaxError: Forward reference must be an expression``).
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
from argus_orchestrator.sandbox import validate_source

STRATEGY = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        return []
'''


def _annotated(annotation: str) -> str:
    return ("from typing import Dict, List, Optional\n\n\nclass Strategy:\n"
            f"    def on_event(self, event, state, portfolio: {annotation}):\n"
            "        return []\n")


@pytest.mark.parametrize("text", [
    "a" + "[]|a" * 25 + "[]!",
    "a" + "[]|a" * 25 + "[]\t",
    "a[" + "a]|a[" * 25 + "]]!",
    "a[" + "]|a[" * 25 + "] x",
])
def test_a_quoted_type_name_is_judged_in_linear_time(text: str) -> None:
    start = time.monotonic()
    result = validate_source(_annotated(f"List[{text!r}]"))
    elapsed = time.monotonic() - start
    assert elapsed < 2.0, elapsed  # 10 s and more before, for the first shape
    assert not result.accepted
    assert any("compiled at import" in f.message for f in result.findings), result.reasons


@pytest.mark.parametrize("text", [
    "Strategy", "int", "Dict[str, List[int]]", "a.b | c[d, e[f]]", "Optional[int]",
    "List[int] | None", "x[] | y[[]]", "a[b]\t|\tc",
])
def test_quoted_type_names_stay_accepted(text: str) -> None:
    result = validate_source(_annotated(f"List[{text!r}]"))
    assert result.accepted, result.reasons


@pytest.mark.parametrize("annotation", [
    "List[int] | 'a b'", "'a b' | List[int]", "Optional[int] | List[int] | '(1)(2)'",
    "List[int] | 'x' | '1 + 1'",
])
def test_a_string_beside_a_bar_in_an_annotation_is_a_type_name(annotation: str) -> None:
    result = validate_source(_annotated(annotation))
    assert not result.accepted
    assert any("compiled at import" in f.message for f in result.findings), result.reasons


@pytest.mark.parametrize("annotation", [
    "List[int] | 'Strategy'", "None | List['int']", "Dict[str, int] | 'List[int]'",
])
def test_a_type_name_beside_a_bar_stays_accepted(annotation: str) -> None:
    result = validate_source(_annotated(annotation))
    assert result.accepted, result.reasons


@pytest.mark.parametrize("prefix", [
    "X = b'%0200000000d' % 1\n",
    "X = b'%-200000000s' % b'a'\n",
    "X = b'%.200000000f' % 1.0\n",
    "def f():\n    return b'%0200000000x' % 1\n",
])
def test_the_checker_never_builds_a_bytes_format(prefix: str) -> None:
    """A refused bytes literal is not folded: 200 MB were built here before."""
    tracemalloc.start()
    try:
        result = validate_source(prefix + STRATEGY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not result.accepted
    assert any("bytes literals" in f.message for f in result.findings), result.reasons
    assert peak < 20 * 1024 * 1024, peak


#: Tried and held: each is refused (fragment of a reason).  New spellings of the brief's
#: classes that the earlier corpora did not hold in this form.
REFUSED = {
    "property_getter_on_module_class": (
        "from statistics import NormalDist\n\n\ndef f():\n    return NormalDist.mean.getter\n",
        "'getter'"),
    "decimal_logical_ops": ("from decimal import Decimal\n\n\ndef f():\n"
                            "    return Decimal(1).logical_and\n", "'logical_and'"),
    "generator_close": ("def f():\n    return (x for x in ()).close\n", "'close'"),
    "exception_value_chain": ("def f():\n    try:\n        next(iter(()))\n"
                              "    except StopIteration as e:\n        return e.value\n",
                              "'value'"),
    "names_via_exception_name": ("def f():\n    try:\n        abs.nope\n"
                                 "    except Exception as e:\n        return e.name\n",
                                 "'name'"),
    "format_via_fstring_conversion_spec": ("def f(x):\n    return f'{x!r:{x}}'.format\n",
                                           "'format'"),
    "class_getitem_dunder_store": ("class A:\n    def __init__(self):\n"
                                   "        A.__class_getitem__ = 1\n", "'__class_getitem__'"),
    "set_name_hook_method": ("class A:\n    def __set_name__(self, owner, name):\n"
                             "        pass\n", "'__set_name__'"),
    "init_subclass_hook_method": ("class A:\n    def __init_subclass__(cls):\n        pass\n",
                                  "'__init_subclass__'"),
    "getattr_hook_method": ("class A:\n    def __getattr__(self, name):\n        return 1\n",
                            "'__getattr__'"),
    "match_mapping_pattern": ("def f(x):\n    match x:\n        case {'a': y}:\n"
                              "            return y\n", "'match'"),
    "super_zero_arg": ("class A:\n    def f(self):\n        return super().f\n", "'super'"),
    "type_three_arg_via_class_of": ("def f(x):\n    return x.__class__('A', (), {})\n",
                                    "'__class__'"),
    "lambda_code": ("F = 1\n\n\ndef g():\n    return (lambda: 1).__code__\n", "'__code__'"),
    "lambda_globals_via_default": ("def g(h=lambda: 1):\n    return h\n", "literals"),
    "walrus_rebinds_module": ("import math\n\n\ndef g():\n    return [math := 1 for _ in ()]\n",
                              "rebind 'math'"),
    "builtins_via_keyword": ("def g():\n    return dict(__builtins__=1)\n", "'__builtins__'"),
    "decorator_payload_on_method": ("class A:\n    @abs\n    def f(self):\n        pass\n",
                                    "decorators"),
    "default_factory_to_refused_builtin": ("from collections import defaultdict\n\n\ndef g():\n"
                                           "    d = defaultdict(int)\n"
                                           "    d.default_factory = vars\n    return d\n",
                                           "'vars'"),
    "percent_walk_with_mapping_key_attr": ("def g(x):\n    return '%(a.__class__)s' % x\n", None),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_held_attempts_are_refused(name: str) -> None:
    prefix, fragment = REFUSED[name]
    result = validate_source(prefix + STRATEGY)
    if fragment is None:
        # '%(a.__class__)s' is only a key lookup (no attribute walk): accepted, and safe.
        assert result.accepted, result.reasons
        return
    assert not result.accepted, name
    assert any(fragment in f.message for f in result.findings), result.reasons
