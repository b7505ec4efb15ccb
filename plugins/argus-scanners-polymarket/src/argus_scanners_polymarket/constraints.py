"""Logical constraints between two markets' questions, by explicit rules on their text.

A constraint ``A => B`` ("A resolving YES implies B resolves YES") means
``P(A) <= P(B)``.  Two rules, each deliberately narrow (a wrong constraint is a wrong
trade):

* **nested numeric thresholds** (``proven=True``): both questions parse to a bound on the
  same variable of the same subject -- a level ("rates above 1.50%", "> 0.5%") or a change
  of at least so much ("50+ bps decrease", "cut by 25 bps or more") -- and A's bound is
  strictly tighter: ``level > 1.50% => level > 1.00%``, ``cut >= 50 => cut >= 25``.  The
  subject is the question's words without numbers, threshold vocabulary and stop words
  (``subject_of``); it must be *identical*, so "after the June meeting" never constrains
  "after the July meeting".  An exact bucket ("25 bps decrease", "by 25 bps") bounds
  nothing and is never nested (exclusive buckets are the negRisk scanner's business).
* **presidency => nomination** (``proven=False``): "X wins the presidency / presidential
  election" and "X wins the ... nomination" for the same X (and year, when given): usually
  true, but a candidate can win without a party's nomination, so it stays a research flag.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal

import attrs

_NUM = r"(\d+(?:\.\d+)?)"
#: slug spellings of decimals: 1pt50, 0p5
_SLUG_DECIMAL = re.compile(r"\b(\d+)p(?:t)?(\d+)\b")
_LEVEL_ABOVE = re.compile(r"(?:above|over|greater than|more than|higher than|>|at least)\s*"
                          + _NUM + r"\s*%")
_LEVEL_BELOW = re.compile(r"(?:below|under|less than|lower than|<|at most)\s*" + _NUM + r"\s*%")
_BPS = re.compile(_NUM + r"\s*(\+)?\s*(?:bps|bips|basis points?)\b(\s*or more)?")
_UP = re.compile(r"\b(increase[sd]?|hikes?|raises?|rise|higher)\b")
_DOWN = re.compile(r"\b(decrease[sd]?|cuts?|lower|reduce[sd]?|decline)\b")
_AT_LEAST_BEFORE = re.compile(r"(?:at least|by at least|of at least)\s*$")
_PRESIDENCY = re.compile(r"(?:will\s+)?(?P<who>[a-z .'-]+?)\s+win(?:s)?\s+(?:the\s+)?"
                         r"(?P<year>20\d\d\s+)?(?:us\s+|u\.s\.\s+)?"
                         r"(?P<what>presidency|presidential election|"
                         r"(?:(?:republican|democratic|gop|democrat)\s+)?"
                         r"(?:presidential\s+)?nomination)")
_WORD = re.compile(r"[a-z]+")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_MONTHS = {"jan": "january", "feb": "february", "mar": "march", "apr": "april",
           "jun": "june", "jul": "july", "aug": "august", "sep": "september",
           "sept": "september", "oct": "october", "nov": "november", "dec": "december"}
#: words that say *how much* or *which way*, not *what*: never part of a subject
_THRESHOLD_WORDS = frozenset(["above", "over", "below", "under", "greater", "less", "more",
    "higher", "lower", "than", "least", "most", "or", "at", "by", "of", "bps", "bips", "basis",
    "point", "points", "percent", "pct", "increase", "increases", "increased", "decrease",
    "decreases", "decreased", "hike", "hikes", "raise", "raises", "rise", "cut", "cuts",
    "reduce", "reduced", "decline", "change", "no", "yes"])
_STOP = frozenset(["will", "the", "a", "an", "to", "its", "their", "after", "following", "in",
    "on", "for", "be", "is", "are", "this", "that", "which", "with", "from", "as", "and",
    "set"])


def normalize(text: str) -> str:
    """Lower case, slug decimals spelled out (``1pt50`` -> ``1.50``), dashes as spaces."""
    t = text.lower().replace("-", " ").replace("_", " ")
    return _SLUG_DECIMAL.sub(r"\1.\2", t)


def subject_of(text: str) -> frozenset[str]:
    """The words saying what a question is about (numbers other than years, threshold words
    and stop words removed; month abbreviations spelled out).  Years stay: "March 2024"
    never constrains "March 2025"."""
    t = normalize(text)
    words = (_MONTHS.get(w, w) for w in _WORD.findall(t))
    return frozenset([*(w for w in words if w not in _THRESHOLD_WORDS and w not in _STOP),
                      *_YEAR.findall(t)])


@attrs.frozen
class Bound:
    """A question read as a bound: ``variable`` (``level``, ``change_up``,
    ``change_down``) ``op`` (``>`` or ``<``) ``value``, about ``subject``."""

    subject: frozenset[str]
    variable: str
    op: str
    value: Decimal


@functools.lru_cache(maxsize=1 << 16)  # a question is paired with up to max_neighbors others
def parse_bound(text: str) -> Bound | None:
    """The bound a question states, or None (an exact bucket states none)."""
    t = normalize(text)
    subject = subject_of(text)
    m = _LEVEL_ABOVE.search(t)
    if m:
        return Bound(subject, "level", ">", Decimal(m.group(1)))
    m = _LEVEL_BELOW.search(t)
    if m:
        return Bound(subject, "level", "<", Decimal(m.group(1)))
    up, down = bool(_UP.search(t)), bool(_DOWN.search(t))
    if up == down:
        return None  # no direction, or both: not a one-sided change
    for m in _BPS.finditer(t):
        at_least = bool(m.group(2) or m.group(3)) or bool(_AT_LEAST_BEFORE.search(t[:m.start()]))
        if at_least:
            return Bound(subject, "change_up" if up else "change_down", ">", Decimal(m.group(1)))
    return None


@attrs.frozen
class Constraint:
    """``antecedent => consequent`` (so P(antecedent) <= P(consequent)), by ``rule``."""

    antecedent: str
    consequent: str
    rule: str
    proven: bool
    detail: str


def bound_implies(a: Bound, b: Bound) -> bool:
    """True when bound ``a`` strictly implies bound ``b`` (same subject and variable)."""
    if a.subject != b.subject or a.variable != b.variable or a.op != b.op or not a.subject:
        return False
    return a.value > b.value if a.op == ">" else a.value < b.value


@functools.lru_cache(maxsize=1 << 16)
def _presidential(text: str) -> tuple[str, str, str] | None:
    m = _PRESIDENCY.search(normalize(text))
    if not m:
        return None
    who = " ".join(m.group("who").split())
    what = "nomination" if "nomination" in m.group("what") else "presidency"
    return who, (m.group("year") or "").strip(), what


def implication(a_id: str, a_text: str, b_id: str, b_text: str) -> Constraint | None:
    """The constraint between two questions, in whichever direction holds, or None."""
    ba, bb = parse_bound(a_text), parse_bound(b_text)
    if ba is not None and bb is not None:
        for (x, bx), (y, by) in (((a_id, ba), (b_id, bb)), ((b_id, bb), (a_id, ba))):
            if bound_implies(bx, by):
                return Constraint(x, y, "nested_threshold", True,
                                  f"{bx.variable} {bx.op} {bx.value} implies "
                                  f"{by.variable} {by.op} {by.value}")
        return None
    pa, pb = _presidential(a_text), _presidential(b_text)
    if pa is not None and pb is not None and pa[0] == pb[0] and pa[2] != pb[2] and \
            (not pa[1] or not pb[1] or pa[1] == pb[1]):
        x, y = (a_id, b_id) if pa[2] == "presidency" else (b_id, a_id)
        return Constraint(x, y, "presidency_implies_nomination", False,
                          f"{pa[0]} winning the presidency implies winning the nomination "
                          f"(not proven: an independent run would break it)")
    return None
