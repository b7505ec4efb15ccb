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


_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


@attrs.frozen
class Extracted:
    """A code block pulled out of a model answer, or why none could be."""

    code: str | None
    rationale: str
    problem: str | None


def extract_code(text: str, stop_reason: str | None) -> Extracted:
    """The single python block of a generate answer; refuses truncated or ambiguous ones."""
    if stop_reason == "max_tokens":
        return Extracted(None, "", "the answer was cut off at max_tokens (overlong output); "
                                   "a truncated module is never used")
    blocks = _FENCE.findall(text)
    if not blocks:
        return Extracted(None, _cut(text, 500), "the answer contains no ```python code block")
    if len(blocks) > 1:
        return Extracted(None, _cut(text, 500), f"the answer contains {len(blocks)} code "
                                                f"blocks; exactly one is required")
    rationale = text[:text.index("```")].strip()
    return Extracted(blocks[0].strip() + "\n", _cut(rationale, 1000), None)


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
