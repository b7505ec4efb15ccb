"""Prompts for the generate and review calls, and parsing of their answers.

The generate prompt carries the contract (``CONTRACT.md``, verbatim), the truth
benchmarks computed from the ledger, the incumbent's source and lab results and
the reasons earlier candidates were refused.  The review prompt asks a second,
independent call to approve or reject the candidate as JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
from markdown_it import MarkdownIt

from argus_core import redact
from argus_orchestrator.sandbox import contract_text

GENERATE_SYSTEM = """You are a quantitative developer improving one trading strategy for
Argus. You write a complete replacement strategy module that follows the contract below
exactly. The module runs in an isolated sandbox with no network, files or imports beyond
the contract; anything else is rejected before it runs. Return ONE fenced ```python code
block containing the whole module, preceded by at most five lines explaining the change.

{contract}"""

REVIEW_SYSTEM = """You are an independent reviewer of AI-written trading strategy code for
Argus. You did not write the candidate. Reject it if it breaks the contract below, tries to
reach anything outside its inputs (files, network, processes, introspection), hides state
outside `state`, could raise on ordinary data, could trade far more often than the
incumbent, or does not plausibly improve on the incumbent. Answer with ONLY a JSON object:
{{"verdict": "approve" | "reject", "reasons": ["..."]}}

{contract}"""


def generate_prompts(*, slot: str, benchmarks: dict[str, Any], incumbent_source: str,
                     incumbent_results: dict[str, Any] | None,
                     feedback: list[str]) -> tuple[str, str]:
    """(system, user) prompts of the generate call."""
    system = GENERATE_SYSTEM.format(contract=contract_text())
    parts = [
        f"Strategy slot: {slot}",
        "Truth benchmarks of the live incumbent, computed by Argus from its ledger "
        "(not editable):",
        json.dumps(benchmarks, indent=2, sort_keys=True),
        "Incumbent's lab results on the proving window:",
        json.dumps(incumbent_results or {}, indent=2, sort_keys=True),
        "Incumbent source:",
        f"```python\n{incumbent_source}\n```",
        "Your module receives the incumbent's `state` on hand-over: keep its keys "
        "compatible.",
    ]
    if feedback:
        parts.append("Earlier candidates were refused for these reasons; do not repeat them:")
        parts.extend(f"- {reason}" for reason in feedback[-10:])
    parts.append("Write the improved module now.")
    return system, "\n\n".join(parts)


def review_prompts(*, candidate: str, incumbent: str, rationale: str) -> tuple[str, str]:
    """(system, user) prompts of the review call."""
    system = REVIEW_SYSTEM.format(contract=contract_text())
    user = "\n\n".join([
        "Incumbent:", f"```python\n{incumbent}\n```",
        "Candidate author's explanation:", rationale.strip() or "(none)",
        "Candidate:", f"```python\n{candidate}\n```",
        "Return the JSON verdict."])
    return system, user


#: The stop reasons of a finished answer; any other (``max_tokens``, ``refusal``,
#: ``pause_turn``, ``tool_use``, ``model_context_window_exceeded``, none) is not used.
FINISHED = ("end_turn", "stop_sequence")
#: Info strings of a python block (case-insensitive); a bare fence counts as one too.
_PYTHON_INFO = ("", "python", "py", "python3")
_MARKDOWN = MarkdownIt("commonmark")


@attrs.frozen
class Extracted:
    """A code block pulled out of a model answer, or why none could be."""

    code: str | None
    rationale: str
    problem: str | None


@attrs.frozen
class _Block:
    info: str  # the language, lower case ("" for a bare fence)
    start: int  # character offset of its opening line in the answer
    body: str | None  # None: never closed


def _blocks(text: str) -> list[_Block]:
    """The answer's fenced blocks as a CommonMark reader sees them (markdown-it-py): a
    fence opens on its own line and closes on a line of the same character at least as
    long; a fence inside a line or a string is text.  A block that runs to the end of the
    answer without its closing line is reported unclosed (``body`` None)."""
    lines = text.splitlines(keepends=True)
    blocks = []
    for token in _MARKDOWN.parse(text):
        if token.type != "fence" or token.map is None:
            continue
        first, end = token.map
        last = lines[end - 1].strip() if first < end - 1 < len(lines) else ""
        closed = set(last) == {token.markup[0]} and len(last) >= len(token.markup)
        info = token.info.split()
        blocks.append(_Block(info[0].lower() if info else "",
                             sum(len(line) for line in lines[:first]),
                             token.content if closed else None))
    return blocks


def extract_code(text: str, stop_reason: str | None) -> Extracted:
    """The single python block of a generate answer; refuses unfinished (truncated,
    refused, paused) answers and empty, unclosed or ambiguous blocks.  Blocks in another
    language (a diff, a shell line) are not code to run and are left aside."""
    if stop_reason == "max_tokens":
        return Extracted(None, "", "the answer was cut off at max_tokens (overlong output); "
                                   "a truncated module is never used")
    if stop_reason not in FINISHED:
        return Extracted(None, _cut(text, 500), f"the answer did not finish (stop_reason "
                                                f"{stop_reason!r}); only a finished answer's "
                                                f"code is used")
    blocks = [b for b in _blocks(text) if b.info in _PYTHON_INFO]
    if not blocks:
        return Extracted(None, _cut(text, 500), "the answer contains no ```python code block")
    if len(blocks) > 1:
        return Extracted(None, _cut(text, 500), f"the answer contains {len(blocks)} code "
                                                f"blocks; exactly one is required")
    (block,) = blocks
    if block.body is None:
        return Extracted(None, _cut(text, 500), "the answer's code block is not closed "
                                                "(a truncated module is never used)")
    if not block.body.strip():
        return Extracted(None, _cut(text, 500), "the answer's code block is empty")
    rationale = text[:block.start].strip()
    return Extracted(block.body.strip() + "\n", _cut(rationale, 1000), None)


def _cut(text: str, limit: int) -> str:
    """``text`` redacted, then cut to ``limit`` characters: cut first, a secret across
    the cut would leave a prefix that no longer reads as the secret (it then went on to
    the next prompt and the ledger)."""
    return redact(text)[:limit]


@attrs.frozen
class Review:
    """The reviewer's verdict."""

    approved: bool
    reasons: tuple[str, ...]


def parse_review(text: str, stop_reason: str | None) -> Review:
    """Parse the review JSON; anything unclear counts as a rejection."""
    if stop_reason == "max_tokens":
        return Review(False, ("review answer was cut off at max_tokens",))
    if stop_reason not in FINISHED:
        return Review(False, (f"review answer did not finish (stop_reason "
                              f"{stop_reason!r})",))
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return Review(False, ("review answer holds no JSON verdict",))
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        return Review(False, (f"review verdict is not valid JSON: {exc}",))
    if not isinstance(data, dict) or data.get("verdict") not in ("approve", "reject"):
        return Review(False, ("review verdict must be 'approve' or 'reject'",))
    reasons = data.get("reasons") or []
    reasons = tuple(_cut(str(r), 300) for r in reasons) if isinstance(reasons, list) else (
        _cut(str(reasons), 300),)
    return Review(data["verdict"] == "approve", reasons)
