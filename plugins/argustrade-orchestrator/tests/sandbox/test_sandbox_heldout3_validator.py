"""Third held-out audit, the checker: refusals that did not say where, and odd sources.

Two refusals of a long postfix chain (``event.x.x.x...``, ``event()()()...``,
``event[0][0]...``) said line 0, column 0:

* past 100 levels the depth limit named the deepest node, which is the innermost
  ``Load`` context: it has no position.  Now the nearest node that has one is named;
* past about 1,500 links the C parser itself gives up (``RecursionError``), which says
  nothing about where.  Now the refusal names the statement with the most operators.

The rest are shapes that held (refused with a position, or accepted as Python reads
them), kept so they stay that way: encodings, line ends, form feeds, tabs, a BOM,
non-UTF-8 bytes and large but legal modules.
"""

from __future__ import annotations

import pytest
from argus_orchestrator.sandbox import validate_source
from argus_orchestrator.sandbox.validator import validate_bytes

BASE = '''X = 1


class Strategy:
    def on_event(self, event, state, portfolio):
        y = (1 +
             2)
        return []
'''
RETURN_LINE = 8  # the line of ``return []`` in BASE
RETURN_COL = 8


@pytest.mark.parametrize("chain", [".x", "()", "[0]", ".x()"])
@pytest.mark.parametrize("links", [150, 1500, 3000])
def test_a_long_chain_is_refused_at_its_statement(chain: str, links: int) -> None:
    result = validate_source(BASE.replace("return []", "return event" + chain * links))
    assert not result.accepted
    (finding,) = result.findings
    assert finding.line == RETURN_LINE, finding
    assert finding.col >= RETURN_COL, finding
    assert finding.message.startswith(("code is nested more than 100",
                                       "source cannot be parsed safely",
                                       "too many operators")), finding


def test_the_parser_giving_up_names_the_busiest_statement() -> None:
    result = validate_source(BASE.replace("return []", "return event" + ".x" * 3000))
    (finding,) = result.findings
    # Whether CPython's parser gives up at this depth depends on the stack it has left
    # (a pytest-xdist worker parses it; then the depth check refuses it): either way the
    # refusal names the statement.
    assert ("RecursionError" in finding.message and "nested or chained too deeply" in
            finding.message) or finding.message.startswith("code is nested more than 100"), \
        finding
    assert finding.line == RETURN_LINE and finding.col >= RETURN_COL, finding


#: Sources that held: (source, accepted, a fragment of the first finding's message).
ODD_SOURCES = {
    "cr_line_ends": (BASE.replace("\n", "\r"), True, ""),
    "crlf_line_ends": (BASE.replace("\n", "\r\n"), True, ""),
    "form_feed_first": ("\x0c" + BASE, True, ""),
    "form_feed_indent": (BASE.replace("        return", "\x0c        return"), True, ""),
    "tab_indent": (BASE.replace("        return", "\treturn"), False, "tabs"),
    "stray_indent": (BASE.replace("        return", "\t        return"), False, "indent"),
    "bom_in_text": ("\ufeff" + BASE, False, "U+FEFF"),
    "nbsp": (BASE.replace("return []", "return\u00a0[]"), False, "U+00A0"),
    "next_line_char": ("\x85# coding: rot13\n" + BASE, False, "rot13"),
    "cookie_after_form_feed": ("X = 1\x0c# -*- coding: rot13 -*-\n" + BASE, False, "rot13"),
    "huge_int_literal": ("Y = " + "1" * 60_000 + "\n" + BASE, False, "4300 digits"),
    "lambda_tower": ("Y = " + "lambda: " * 150 + "1\n" + BASE, False, "nested"),
    "many_constants": (BASE + "\n".join(f"A{i} = {i}" for i in range(1400)) + "\n", True, ""),
    "long_comparison": (BASE.replace("return []", "return " + " < ".join(["1"] * 2900)),
                        True, ""),
}


@pytest.mark.parametrize("name", sorted(ODD_SOURCES))
def test_odd_sources_get_a_verdict(name: str) -> None:
    source, accepted, fragment = ODD_SOURCES[name]
    result = validate_source(source)
    assert result.accepted is accepted, result.reasons
    if not accepted:
        assert fragment in result.findings[0].message, result.findings
        assert result.findings[0].line > 0, result.findings


@pytest.mark.parametrize(("data", "accepted", "fragment"), [
    (("\ufeff" + BASE).encode(), True, ""),  # a file's BOM is the encoding's, not code
    (("# -*- coding: latin-1 -*-\nY = 'é'\n" + BASE).encode("latin-1"), False,
     "not valid UTF-8"),
    (b"Y = '\xff'\n" + BASE.encode(), False, "not valid UTF-8 (byte 5)"),
    ((BASE + "\x00").encode(), False, "NUL"),
])
def test_odd_files_get_a_verdict(data: bytes, accepted: bool, fragment: str) -> None:
    result = validate_bytes(data)
    assert result.accepted is accepted, result.reasons
    if not accepted:
        assert fragment in result.findings[0].message, result.findings
