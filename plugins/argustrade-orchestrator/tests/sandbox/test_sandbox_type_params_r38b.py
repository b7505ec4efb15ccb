"""Red team r38b: PEP 695 type parameters were never checked (Python 3.12 and later).

Python 3.12 gave ``def`` and ``class`` a new field, ``type_params``.  The checker's
handlers for those nodes list the children they walk (arguments, body...) and did not
know the new field, so a bound or a default in brackets was never looked at: ``def
pick[U: eval("1")](x)`` and ``class Box[T: ().__class__]`` were *accepted*, with any
builtin, name or dunder inside.  Bounds and defaults are evaluated lazily, but 3.13
evaluates a default as soon as the class is subscripted with too few arguments
(``Box[()]`` in ``on_event`` ran it), and a ``class C[T]`` gets ``typing.Generic`` as
an implicit base, past the "no base classes" rule.

Now every child a handler leaves unwalked must be of an allowed node type, so the type
parameters (and any field a later Python adds) are refused where they stand.  On 3.11
the syntax does not parse at all (a syntax error, refused), so these tests run on 3.12+.
"""

from __future__ import annotations

import sys

import pytest
from argus_orchestrator.sandbox import validate_source

TEMPLATE = '''"""A strategy with a generic helper."""


{decl}


class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        return []
'''

needs_312 = pytest.mark.skipif(sys.version_info < (3, 12),
                               reason="PEP 695 type parameters need Python 3.12")
needs_313 = pytest.mark.skipif(sys.version_info < (3, 13),
                               reason="PEP 696 type parameter defaults need Python 3.13")


def _refusal(decl: str) -> list[str]:
    """The reasons ``decl`` (placed at line 4) is refused; fails the test if accepted."""
    result = validate_source(TEMPLATE.format(decl=decl))
    assert not result.accepted, f"accepted type parameters: {decl!r}"
    return result.reasons


@needs_312
@pytest.mark.parametrize(("decl", "col"), [
    ('def pick[U: eval("1")](x):\n    return x', 9),
    ("def pick[U: (open, __import__)](x):\n    return x", 9),
    ("class Box[T: ().__class__.__base__]:\n    VALUE = 1", 10),
    ("def pick[T](x):\n    return x", 9),
])
def test_type_parameter_bounds_are_refused_where_they_stand(decl: str, col: int) -> None:
    """A bound is code the checker never walked: the parameter itself is refused."""
    reasons = _refusal(decl)
    assert f"line 4:{col}: type parameters" in "\n".join(reasons), reasons


@needs_312
def test_param_spec_and_type_var_tuple_are_refused_too() -> None:
    """``*Ts`` and ``**P`` are type parameters of their own node types."""
    reasons = "\n".join(_refusal("def pick[*Ts, **P](x):\n    return x"))
    assert "line 4:9: type parameters ('def f[*Ts]')" in reasons, reasons
    assert "line 4:14: type parameters ('def f[**P]')" in reasons, reasons


@needs_313
def test_a_type_parameter_default_run_by_subscripting_is_refused() -> None:
    """3.13 evaluates ``T``'s default on ``Box[()]``: arbitrary code at run time."""
    source = TEMPLATE.format(decl="class Box[T = ().__class__.__base__.__subclasses__()]:\n"
                                  "    VALUE = 1").replace("return []", "Box[()]\n        "
                                                                       "return []")
    result = validate_source(source)
    assert not result.accepted, "a type parameter default that runs code was accepted"
    assert "line 4:10: type parameters" in "\n".join(result.reasons), result.reasons


@needs_312
def test_type_aliases_are_named_in_the_refusal() -> None:
    """``type X = ...`` was refused already (an unknown node); the reason now says what."""
    reasons = _refusal('type Alias = eval("1")')
    assert "line 4:0: 'type' aliases not allowed" in reasons, reasons
