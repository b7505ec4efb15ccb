"""Eighth held-out audit (a red team of the checker): work the checker did past its
deadline, and modules it accepted that Python then refused to load.

Found (each regression below failed before its fix):

* constant folding read the deadline only between nodes, and weighed a value by its
  leaves alone: ``T = (((...(0,)...),),) * 99_998`` (1-tuples nested 37 deep) weighed
  99,998 and took 3.8 million steps to weigh, so ``(T * 1, T * 1, ...)`` in one
  statement held the checker (in the host's process, with the GIL) for hours; with a flat
  ``T`` of 99,999 items each ``T * 1`` added 1 to the module's total (its length), and
  2,900 of them took four minutes.  A container now weighs one more than its items, the
  total counts weights, folding stops once the total is spent, and ``_fold`` reads the
  deadline too;
* the pure-Python tokenizer of the pre-check makes an error token per character after
  an invalid one, each rescanning the rest of the line: ``'x' + ' ' * 65_000 + '$'``
  took 40 s.  The first error token is the verdict (a syntax error);
* the checker only parsed: ``break`` outside a loop, a repeated argument or keyword, two
  starred targets, a walrus rebinding a comprehension's variable, 21 nested loops were
  accepted and then failed to compile in the worker.  Accepted source is now compiled;
* annotations ran at import: ``S = "a b"`` then ``X: List[S] = 1`` (a string by name
  escaped the sixth audit's check of quoted type names), ``int[int]``, ``Dict[int]``, a
  name bound later, were accepted and failed to load.  The worker (and the checker)
  compile with postponed annotations (PEP 563): they are never evaluated;
* ``Fraction(1, -2, **{'_normalize': False})`` passed a private parameter by ``**`` (a
  broken fraction, ``-1/2`` with a negative denominator): ``**`` in a call now takes only
  a dict display of plain string keys (keyword arguments by name, spelled so).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from argus_orchestrator.sandbox import SandboxedStrategy, WorkerPolicy, validate_source

from argus_core.interfaces import StrategyContext
from argus_core.models import Bar, Portfolio

BAR = Bar("replay:BTC/USD", 3_600_000_000_000, 100.0, 101.0, 99.0, 100.5, 5.0)
CTX = StrategyContext(BAR.ts_ns, Portfolio(cash=Decimal(1000)), None)  # type: ignore[arg-type]
OVERTIME = "took longer than"


def _module(constant: str, body: str) -> str:
    return (f"T = {constant}\n\n\nclass Strategy:\n"
            f"    def on_event(self, event, state, portfolio):\n"
            f"        {body}\n        return []\n")


def test_a_deeply_nested_constant_weighs_its_containers() -> None:
    nested = "(0,)"
    for _ in range(36):
        nested = f"({nested},)"
    verdict = validate_source(_module(f"{nested} * 99_998", "x = T"))
    assert not verdict.accepted
    assert "would build a huge value" in verdict.reasons[0], verdict.reasons


def test_copies_of_a_large_constant_count_their_weight_in_the_module_total() -> None:
    # Each product is a one-item tuple holding 49,000 zeros: 1 by length, 49,002 by weight.
    body = "x = (" + ", ".join(["T * 1"] * 200) + ")"
    verdict = validate_source(_module("((0,) * 49_000,)", body))
    assert not verdict.accepted
    assert any("in all" in r for r in verdict.reasons), verdict.reasons
    assert not any(OVERTIME in r for r in verdict.reasons)


def test_a_few_copies_of_a_small_table_stay_accepted() -> None:
    body = "x = (" + ", ".join(["T * 1"] * 20) + ")"
    assert validate_source(_module("((1.5, 2.5),) * 1_000", body)).accepted


def test_an_invalid_character_after_a_long_blank_run_is_a_syntax_error_at_once() -> None:
    verdict = validate_source("x" + " " * 20_000 + "$\n")
    assert verdict.reasons == ["line 1:20002: syntax error: invalid character '$'"]


@pytest.mark.parametrize(("body", "why"), [
    ("break", "'break' outside loop"),
    ("continue", "'continue' not properly in loop"),
    ("f = lambda a, a: 0", "duplicate argument 'a'"),
    ("x = dict(a=1, a=2)", "keyword argument repeated"),
    ("a, *b, *c = [1, 2, 3]", "multiple starred expressions"),
    ("x = [i := 1 for i in range(3)]", "cannot rebind comprehension iteration variable"),
    ("x = [a for a in (y := [1])]", "cannot be used in a comprehension iterable"),
    ("try:\n            pass\n        except:\n            pass\n"
     "        except ValueError:\n            pass", "default 'except:' must be last"),
    ("".join(f"\n{'    ' * (i + 2)}for i{i} in range(1):" for i in range(21))
     + f"\n{'    ' * 23}pass", "too many statically nested blocks"),
], ids=["break", "continue", "duplicate-argument", "repeated-keyword", "two-starred",
        "walrus-rebinds", "walrus-in-iterable", "bare-except-first", "21-nested-loops"])
def test_what_the_compiler_refuses_is_refused(body: str, why: str) -> None:
    verdict = validate_source(_module("1", body))
    assert not verdict.accepted
    assert any("syntax error" in r and why in r for r in verdict.reasons), verdict.reasons


def test_the_compile_check_leaves_ordinary_strategies_accepted() -> None:
    body = ("for i in range(3):\n            if i:\n                break\n"
            "        else:\n            pass")
    assert validate_source(_module("1", body)).accepted


ANNOTATED = '''
from typing import Dict, List

S = "a b"


class Strategy:
    """Annotations that fail if they are evaluated, as typing would at import."""

    EVENTS = ("bar",)
    NAME: List[S] = 1
    TABLE: Dict[int] = 2
    FIRST: Later = 3

    def on_event(self, event, state, portfolio) -> int[int]:
        return []


class Later:
    """Bound after the annotation that names it."""
'''


def test_annotations_are_never_evaluated_so_an_accepted_module_loads() -> None:
    verdict = validate_source(ANNOTATED)
    assert verdict.accepted, verdict.reasons
    s = SandboxedStrategy(ANNOTATED, name="annotated", policy=WorkerPolicy(call_timeout_s=1.0))
    try:
        assert list(s.on_event(BAR, CTX)) == []
    finally:
        s.close()


def _calling(call: str) -> str:
    return ("from fractions import Fraction\n\n\nclass Strategy:\n"
            "    def on_event(self, event, state, portfolio):\n"
            f"        x = {call}\n        return []\n")


@pytest.mark.parametrize("call", ["Fraction(1, -2, **{'_normalize': False})",
                                  "dict(**state)", "dict(**{'a': 1, **state})",
                                  "dict(**{('_' + 'x'): 1})"])
def test_keyword_unpacking_of_keys_made_at_run_time_is_refused(call: str) -> None:
    verdict = validate_source(_calling(call))
    assert not verdict.accepted
    assert any("'**' in a call takes only" in r for r in verdict.reasons), verdict.reasons


def test_keyword_unpacking_of_a_display_of_plain_keys_stays_accepted() -> None:
    assert validate_source(_calling("dict({'side': 'buy'}, **{'quantity': 1.0})")).accepted
