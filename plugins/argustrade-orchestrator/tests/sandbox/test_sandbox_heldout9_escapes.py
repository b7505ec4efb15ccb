"""Ninth held-out audit (a red team of the sandbox): refusals that did not say where.

Every escape shape tried was refused (the allow-list, the module shape rules and the
worker held; see the report for what was tried), but the contract also says a refusal
names *where*: the line and column to fix.  Found (each regression below failed before
its fix):

* a refused attribute was reported where its whole expression starts, not where the
  attribute is written: a chain spread over lines (``(event\\n.keys\\n.__class__``...)
  was refused at the line of ``(event``, three lines above ``__class__``, and every
  link of the chain got that same place;
* columns counted UTF-8 bytes (the tree's offsets), the token pre-check's count
  characters: after ``"€ → ¥"`` on a line, a finding's column was 8 too far right;
* a refused name in a multi-line ``from math import (...)`` was reported at the
  ``from``, not at the name (each alias has its own position);
* ``Strategy`` bound twice, a NUL byte, a lone surrogate and a byte that is not UTF-8
  were refused at "line 0:0": now at the second binding, or the character's place.

Sample ``escapes/multiline_attribute_chain.py``.
"""

from __future__ import annotations

from pathlib import Path

from argus_orchestrator.sandbox import validate_source
from argus_orchestrator.sandbox.validator import Finding, validate_bytes

STRATEGY = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        return []
'''
SAMPLE = Path(__file__).parent / "escapes" / "multiline_attribute_chain.py"


def _where(source: str, text: str, skip: int = 0) -> tuple[int, int]:
    """The 1-based line and 0-based character column of the first ``text`` in
    ``source``, ``skip`` characters into it."""
    index = source.index(text) + skip
    before = source[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1)


def _finding(source: str, word: str) -> Finding:
    verdict = validate_source(source)
    assert not verdict.accepted
    found = [f for f in verdict.findings if repr(word) in f.message]
    assert found, verdict.reasons
    return found[0]


def test_a_refused_attribute_is_located_where_it_is_written() -> None:
    source = SAMPLE.read_text(encoding="utf-8")
    for word in ("__class__", "__base__", "__subclasses__", "__globals__"):
        finding = _finding(source, word)
        assert (finding.line, finding.col) == _where(source, f".{word}", skip=1), \
            (word, finding)


def test_columns_count_characters_not_utf8_bytes() -> None:
    source = STRATEGY + "\n\ndef peek(x):\n    return 'ééé € ¥' + x.__class__\n"
    finding = _finding(source, "__class__")
    assert (finding.line, finding.col) == _where(source, "__class__"), finding
    spelled = STRATEGY + "\n\ndef peek(x):\n    return 'é' + ｘ\n"
    finding = _finding(spelled, "ｘ")
    assert (finding.line, finding.col) == _where(spelled, "ｘ"), finding


def test_a_refused_import_name_is_located_at_the_name() -> None:
    source = "from math import (\n    sin,\n    system,\n)\n" + STRATEGY
    verdict = validate_source(source)
    assert [(f.line, f.col) for f in verdict.findings] == [(3, 4)], verdict.reasons
    source = "import math, os\n" + STRATEGY
    verdict = validate_source(source)
    assert [(f.line, f.col) for f in verdict.findings] == [(1, 13)], verdict.reasons


def test_a_second_strategy_is_located_at_its_binding() -> None:
    source = STRATEGY + "\n\ndef helper(x):\n    Strategy = x\n    return Strategy\n"
    finding = _finding(source, "Strategy")
    assert (finding.line, finding.col) == _where(source, "Strategy = x"), finding


def test_bad_characters_are_located() -> None:
    for bad in ("\x00", "\ud800"):
        source = STRATEGY + f"\n\nX = 'ab{bad}'\n"
        verdict = validate_source(source)
        assert not verdict.accepted
        assert [(f.line, f.col) for f in verdict.findings] == [_where(source, bad)], \
            verdict.reasons
    data = (STRATEGY + "\n\nX = 'é\xff'\n").encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    verdict = validate_bytes(data)
    assert [(f.line, f.col) for f in verdict.findings] == [(7, 6)], verdict.reasons
