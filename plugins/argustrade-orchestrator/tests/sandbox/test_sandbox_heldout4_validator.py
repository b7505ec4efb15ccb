"""Fourth held-out audit, the checker: the public Python-jail literature, shape by shape.

Sources gone through (techniques, not code): the pyjail cheatsheets
(salvatore-abello/python-ctf-cheatsheet ``pyjails/README.md``,
jeff-160/The-Definitive-Guide-to-Pyjails, shirajuki's cheatsheet, the jailctf
pyjailbreaker gadget list and pyjail-collection), HackTricks' "bypass Python
sandboxes", Jessica McKellar's "Building and breaking a Python sandbox"
(PyCon 2014, pysandbox), RestrictedPython's guards and PEP 578 audit-hook
bypasses.  Each technique is a corpus file in ``escapes/`` (see
``test_sandbox_heldout4_corpus.py``); this file holds what was found.

Bypasses found (accepted before, each test below failed):

* a dict display was never folded, so the constant-size limits stopped at it:
  ``X = ({},) * 10**9`` (8 GB at import), ``X = ({1: 'a' * 99_999},) * 99_999``
  (10**10 characters through its nesting), and a constant that raises at import
  (``{[]}``, ``{{}: 1}``, ``-{}``, ``{'a': 1} | 5``).  Folding dicts opened a
  worse hole in the checker itself, closed with it: ``'%(a)s' * 14_000 %
  {'a': 'x' * 50_000}`` would have built 700 MB *in the host*; a mapping's
  value now counts once per field;
* ``from __future__ import annotations as __builtins__`` bound any name,
  dunders and refused builtins included (the alias skipped every binding
  check): an alias of a ``__future__`` import is refused;
* annotations run at import: ``X: 'abc'[5] = 1`` raised there, and a string
  inside a typing subscript (``List['...']``) is compiled there by
  ``typing.ForwardRef``: a subscript's base must name a type, and a string in
  it must be a type name.
"""

from __future__ import annotations

import tracemalloc

import pytest
from argus_orchestrator.sandbox import validate_source

STRATEGY = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        return []
'''

#: Module-level shapes that were accepted: (source prefix, a fragment of the reason).
BYPASSES = {
    "tuple_of_dict_repeated": ("X = ({},) * 10**9\n", "huge value"),
    "list_of_dict_repeated": ("X = [{}] * 10**9\n", "huge value"),
    "dict_weight_through_nesting": ("X = ({1: 'a' * 99_999},) * 99_999\n", "huge value"),
    "dict_in_dict_repeated": ("X = {1: [{2: 3}] * 10**8}\n", "huge value"),
    "set_of_list": ("X = {[]}\n", "raises TypeError"),
    "set_of_tuple_of_list": ("X = {(1, [])}\n", "raises TypeError"),
    "dict_key_dict": ("X = {{}: 1}\n", "raises TypeError"),
    "dict_key_list_in_class": ("class A:\n    K = {[]: 1}\n", "raises TypeError"),
    "dict_or_int": ("X = {'a': 1} | 5\n", "raises TypeError"),
    "negated_dict": ("X = -{}\n", "raises TypeError"),
    "percent_mapping_bomb": ("X = ('%(a)s' * 14_000) % {'a': 'x' * 50_000}\n", "huge value"),
    "percent_mapping_via_constant": ("M = {'a': 'x' * 50_000}\nX = ('%(a)s' * 14_000) % M\n",
                                     "huge value"),
    "future_alias_builtins": ("from __future__ import annotations as __builtins__\n",
                              "alias"),
    "future_alias_refused_builtin": ("from __future__ import annotations as eval\n", "alias"),
    "annotation_subscript_of_constant": ("X: 'abc'[5] = 1\n", "annotations"),
    "annotation_subscript_of_tuple": ("X: (1, 2)[5] = 1\n", "annotations"),
    "annotation_forward_ref_code": ("from typing import List\nX: List['(lambda: 1)()'] = 1\n",
                                    "compiled at import"),
    "method_annotation_forward_ref": (
        "from typing import Dict\n\n\nclass A:\n    def f(self, x: Dict[str, 'open(1)']) -> None:"
        "\n        pass\n", "compiled at import"),
}


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_each_bypass_is_refused_where_it_is(name: str) -> None:
    prefix, fragment = BYPASSES[name]
    result = validate_source(prefix + STRATEGY)
    assert not result.accepted, name
    assert any(fragment in f.message and f.line >= 1 for f in result.findings), result.reasons


@pytest.mark.parametrize("body", [
    "return [({},) * 10**9]",
    "x = [{}] * 10**9",
    "x = {[]}",
    "x = '%(a)s%(a)s' * 9_000 % {'a': 'y' * 50_000}",
])
def test_the_same_shapes_in_a_method_are_refused(body: str) -> None:
    source = STRATEGY.replace("return []", body + "\n        return []")
    assert not validate_source(source).accepted


def test_the_checker_never_builds_a_mapping_format_bomb() -> None:
    """The checker refuses the format without building it (700 MB in the host before)."""
    tracemalloc.start()
    try:
        result = validate_source("X = ('%(a)s' * 14_000) % {'a': 'x' * 50_000}\n" + STRATEGY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not result.accepted
    assert peak < 50 * 1024 * 1024, peak


#: Ordinary code near the new rules that must stay accepted.
ORDINARY = [
    "X = {'a': [1, 2], (1, 2): 3, 'b': {'c': None}}\n",
    "X = {'bar': 1} | {'trade': 2}\n",
    "X = '%(a)s and %(b)d' % {'a': 'x', 'b': 2}\n",
    "X = ({'a': 1},) * 100\n",
    "X = [{}] * 1000\n",
    "X = {(1, 'a'), (2, 'b')}\n",
    "from __future__ import annotations\n",
    "from typing import Dict, List, Optional\nX: Dict[str, List[int]] = {}\n"
    "Y: Optional['Strategy'] = None\nZ: 'Strategy | None' = None\n",
    "from typing import List\n\ndef f(x: List['Strategy']) -> 'List[int]':\n    return []\n",
    "def f(x: dict[str, list[int]] | None = None) -> tuple[int, ...]:\n    return ()\n",
]


@pytest.mark.parametrize("prefix", ORDINARY)
def test_ordinary_constants_and_annotations_stay_accepted(prefix: str) -> None:
    result = validate_source(prefix + STRATEGY)
    assert result.accepted, result.reasons


def test_unpacking_and_loop_targets_are_not_folded() -> None:
    body = ("a, b = 1, 2\n        [c, d] = [a, b]\n        for e, f in [(1, 2)]:\n"
            "            state['x'] = (a, b, c, d, e, f)\n        return []")
    result = validate_source(STRATEGY.replace("return []", body))
    assert result.accepted, result.reasons
