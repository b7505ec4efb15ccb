"""Second held-out audit, the static filter: shapes the first corpus lacked.

The allow-list held against every shape below (each is refused, and the reason names
it).  One rule was only partly true: "identifiers are ASCII" was checked on the
tokens, and an f-string is one STRING token in Python 3.11, so ``f"{ｓｔａｔｅ}"``
(fullwidth letters, NFKC-normalised to ``state`` by the parser) was accepted.  The
names inside were still checked in their normalised form (``f"{ｅｖａｌ(...)}"`` was
refused as ``eval``), so nothing was reached, but the contract's rule did not hold;
now every name and attribute is checked as it is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_orchestrator.sandbox import validate_source

ESCAPES = Path(__file__).parent / "escapes"
GOOD = ("class Strategy:\n    EVENTS = (\"bar\",)\n\n"
        "    def on_event(self, event, state, portfolio):\n        return []\n")

#: Samples added to ``escapes/`` by this audit and a reason that names each technique
#: (3.12 syntax is only in SHAPES below: every corpus file must parse, for its docstring).
HELDOUT2_SAMPLES = {
    "fstring_fullwidth_identifier": "non-ASCII identifier 'ｅｖａｌ' (read as 'eval')",
}


@pytest.mark.parametrize(("name", "needle"), sorted(HELDOUT2_SAMPLES.items()))
def test_heldout2_sample_is_refused_and_names_its_technique(name: str, needle: str) -> None:
    result = validate_source((ESCAPES / f"{name}.py").read_text())
    assert not result.accepted
    assert any(needle in r and r.startswith("line ") for r in result.reasons), result.reasons


#: Shapes from the audit's list, each refused with a reason naming it.
SHAPES = [
    # Identifiers that NFKC-normalise to other names, inside f-strings.
    ("def f(state):\n    return f'{ｓｔａｔｅ}'", "non-ASCII identifier 'ｓｔａｔｅ'"),
    ("def f(x):\n    return f'{x.ｒｅａｌ}'", "non-ASCII identifier 'ｒｅａｌ'"),
    ("def f(x):\n    return f'{x . __ｃｌａｓｓ__}'", "'__class__'"),
    ("def f(x):\n    return f'{x.real:{ｘ}}'", "non-ASCII identifier 'ｘ'"),
    # match patterns, except*, 3.12 syntax.
    ("def f(x):\n    match x:\n        case object(__class__=c):\n            return c",
     "'match'"),
    ("def f(x):\n    match x:\n        case {'k': v, **rest}:\n            return rest",
     "'match'"),
    ("def f():\n    try:\n        pass\n    except* ValueError:\n        pass", "'except*'"),
    ("type Alias = int", "syntax error"),
    ("def g[T](x: T) -> T:\n    return x", "syntax error"),
    ("class Box[T]:\n    pass", "syntax error"),
    # Class hooks and descriptors.
    ("class A:\n    def __set_name__(self, owner, name):\n        pass", "'__set_name__'"),
    ("class A:\n    def __class_getitem__(cls, key):\n        pass", "'__class_getitem__'"),
    ("class A:\n    def __get__(self, obj, kind):\n        pass", "'__get__'"),
    ("class A:\n    def __init_subclass__(cls):\n        pass", "'__init_subclass__'"),
    ("class A(dict):\n    pass", "base classes"),
    ("class A(metaclass=int):\n    pass", "metaclasses"),
    ("def f():\n    return super().__init__", "'super'"),
    # Lambdas, walrus, scopes.
    ("def f():\n    return lambda: (yield)", "'yield'"),
    ("def f(x):\n    return [y := x.__class__ for _ in ()]", "'__class__'"),
    ("def f():\n    global FAST", "'global'"),
    ("X = [y := 1 for _ in ()]", "module-level"),
    # Frames of generators, coroutines, async generators; exceptions' chains.
    ("def f(x):\n    return x.gi_frame", "'gi_frame'"),
    ("def f(x):\n    return x.gi_code", "'gi_code'"),
    ("def f(x):\n    return x.cr_frame", "'cr_frame'"),
    ("def f(x):\n    return x.ag_frame", "'ag_frame'"),
    ("def f(e):\n    return e.__traceback__", "'__traceback__'"),
    ("def f(e):\n    return e.__context__", "'__context__'"),
    ("def f(e):\n    return e.__cause__", "'__cause__'"),
    ("class A:\n    def __init__(self):\n        self.tb_frame = 1", "'tb_frame'"),
    # Allowed modules' other attributes, other modules, formatting by attribute.
    ("import math\n\ndef f():\n    return math.__spec__", "math.__spec__ is not allowed"),
    ("import statistics\n\ndef f():\n    return statistics.sys", "statistics.sys"),
    ("from fractions import operator", "fractions.operator is not allowed"),
    ("from decimal import getcontext", "decimal.getcontext is not allowed"),
    ("from collections import namedtuple", "collections.namedtuple is not allowed"),
    ("from functools import partial", "functools.partial is not allowed"),
    ("import numpy", "import of 'numpy'"),
    ("from numpy import ctypeslib", "import from 'numpy'"),
    ("import operator", "import of 'operator'"),
    ("def f(s):\n    return s.format_map({})", "'format_map'"),
    ("def f(s):\n    return str.format(s, 1)", "'format'"),
    ("def f():\n    return '%(a)s' % vars()", "'vars'"),
    ("def f(x):\n    return x.obj", "'obj'"),
    ("async def f():\n    pass", "'async def'"),
]


@pytest.mark.parametrize(("snippet", "needle"), SHAPES)
def test_each_heldout2_shape_is_refused(snippet: str, needle: str) -> None:
    result = validate_source(GOOD + "\n" + snippet + "\n")
    assert not result.accepted
    assert any(needle in r for r in result.reasons), result.reasons


#: Non-ASCII text (not names) stays fine, in and out of f-strings.
IDIOMS = [
    "def f(x):\n    return f'é {x} ü {x.real:>{3}} → {\"ß\"}'",
    "LABEL = 'prix en €'\n\ndef f(x):\n    return LABEL + f'{x!r}'",
]


@pytest.mark.parametrize("snippet", IDIOMS)
def test_non_ascii_text_is_still_accepted(snippet: str) -> None:
    result = validate_source(GOOD + "\n" + snippet + "\n")
    assert result.accepted, result.reasons
