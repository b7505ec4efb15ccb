"""Logical constraints between two markets' questions, by explicit rules on their text.

A constraint ``A => B`` ("A resolving YES implies B resolves YES") means
``P(A) <= P(B)``.  Two rules, each deliberately narrow (a wrong constraint is a wrong
trade):

* **nested numeric thresholds** (``proven=True``): both questions parse to a bound on the
  same variable of the same subject -- a level with its unit ("rates above 1.50%", "> 0.5%",
  "above $100,000", "under $60k") or a change of at least so much ("50+ bps decrease", "cut
  by 25 bps or more", "more than 25 bps") -- and A's bound is strictly tighter: ``level >
  1.50% => level > 1.00%``, ``level < $70k => level < $80k``, ``cut >= 50 => cut >= 25``.
  The subject is the question without its threshold expressions, threshold vocabulary and
  stop words (``subject_of``); it must be *identical*, and the numbers that are not
  thresholds stay in it, so "after the June meeting" never constrains "after the July
  meeting", nor "December 30" "December 31", nor "Q1" "Q2".  An exact bucket ("25 bps
  decrease", "by 25 bps"), a range ("between", "above X and below Y") or a bare number
  bounds nothing and is never nested (exclusive buckets are the negRisk scanner's
  business).
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
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
#: a comparator, "at least" sense (``(?<!no )``: "no more than" is the other way)
_ABOVE = (r"(?:\b(?:above|over|greater than|(?<!no )more than|higher than|exceeds?|exceeding"
          r"|at least|no less than)\b|>=|>|≥)")
_BELOW = (r"(?:\b(?:below|under|(?<!no )less than|lower than|fewer than|at most|no more than)"
          r"\b|<=|<|≤)")
#: an amount: optional ``$``, a number, an optional unit or multiplier
_AMOUNT = (r"(?P<cur>\$\s*)?" + _NUM.replace("(", "(?P<num>", 1)
           + r"(?:\s*(?P<unit>%|percent\b|k\b|thousand\b|m\b|mn\b|million\b|b\b|bn\b|billion\b))?")
_LEVEL_PREFIX = re.compile(rf"(?P<op>{_ABOVE}|{_BELOW})\s*{_AMOUNT}")
_LEVEL_SUFFIX = re.compile(
    _AMOUNT + r"\s+or\s+(?P<dir>more|higher|above|greater|less|lower|below)\b")
#: verbs making a threshold a path event ("reach $100k", "dip below $50k": any time before
#: the end) rather than a level at the end: a variable of its own
_PATH = re.compile(r"\b(?:reach(?:es)?|hits?|touch(?:es)?|dips?|drops?|falls?|sinks?|plunges?)"
                   r"\b")
_BPS = re.compile(rf"(?:(?P<pre>{_ABOVE}|by at least|by more than)\s*)?" + _NUM
                  + r"\s*(?P<plus>\+)?\s*(?:bps|bips|basis points?)\b"
                  + r"(?P<more>\s*or\s+(?:more|greater|higher))?")
_UP = re.compile(r"\b(increase[sd]?|hikes?|raises?|rise|higher)\b")
_DOWN = re.compile(r"\b(decrease[sd]?|cuts?|lower|reduce[sd]?|decline)\b")
_PRESIDENCY = re.compile(r"(?:will\s+)?(?P<who>[a-z .'-]+?)\s+win(?:s)?\s+(?:the\s+)?"
                         r"(?P<year>20\d\d\s+)?(?:us\s+|u\.s\.\s+)?"
                         r"(?P<what>presidency|presidential election|"
                         r"(?:(?:republican|democratic|gop|democrat)\s+)?"
                         r"(?:presidential\s+)?nomination)")
#: subject tokens: words, and numbers (a date, an ordinal, a quarter, a maturity: they
#: name *which* question, so they stay, unlike the thresholds)
_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
#: a negated question bounds the other way ("not above $100k" is "at most $100k", so "not
#: above $100k" does *not* imply "not above $90k"): it states no bound here, never the
#: wrong one ("no more than" / "no less than" are comparators, not negations)
_NEGATION = re.compile(r"\b(?:not|never|neither|nor|without|fail(?:s|ed|ing)?\s+to)\b"
                       r"|n['\u2019]t\b"
                       r"|\bno\b(?!\s+(?:more|less|fewer|greater|higher|lower)\s+than\b)")
#: a negative amount ("above -1%", "below $-5"): :func:`normalize` reads dashes as spaces,
#: so its sign would be lost ("above -1%" read as "above 1%" reverses every nesting)
_NEGATIVE = re.compile(r"(?:^|[\s(\[:=<>$\u2265\u2264])[-\u2212\u2013]\s*\$?\s*\.?\d")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_MONTHS = {"jan": "january", "feb": "february", "mar": "march", "apr": "april",
           "jun": "june", "jul": "july", "aug": "august", "sep": "september",
           "sept": "september", "oct": "october", "nov": "november", "dec": "december"}
_MULTIPLIER = {"k": 10**3, "thousand": 10**3, "m": 10**6, "mn": 10**6, "million": 10**6,
               "b": 10**9, "bn": 10**9, "billion": 10**9}
#: words that say *how much* or *which way*, not *what*: never part of a subject
_THRESHOLD_WORDS = frozenset(["above", "over", "below", "under", "greater", "less", "more",
    "higher", "lower", "than", "least", "most", "at", "by", "of", "bps", "bips", "basis",
    "point", "points", "percent", "pct", "increase", "increases", "increased", "decrease",
    "decreases", "decreased", "hike", "hikes", "raise", "raises", "rise", "cut", "cuts",
    "reduce", "reduced", "decline", "change", "no", "yes", "fewer", "exceed", "exceeds",
    "exceeding", "st", "nd", "rd", "th"])
#: ("and" / "or" are not stop words: "BTC above $100k or ETH above $100k" never constrains
#: "BTC above $90k and ETH above $90k", whose subject words are otherwise the same)
_STOP = frozenset(["will", "the", "a", "an", "to", "its", "their", "after", "following", "in",
    "on", "for", "be", "is", "are", "this", "that", "which", "with", "from", "as", "set"])


def normalize(text: str) -> str:
    """Lower case, slug decimals spelled out (``1pt50`` -> ``1.50``), dashes as spaces,
    thousands separators dropped (``100,000`` -> ``100000``)."""
    t = text.lower().replace("-", " ").replace("_", " ")
    return _THOUSANDS.sub("", _SLUG_DECIMAL.sub(r"\1.\2", t))


@attrs.frozen
class _Threshold:
    """One threshold expression found in a question: where, which way, how much, in what."""

    span: tuple[int, int]
    kind: str  # "level" | "bps"
    op: str  # ">" | "<"
    value: Decimal
    unit: str  # "$", "%", "n" (a count: "100k" without a currency), "" (a bare number)
    at_least: bool  # bps: a one-sided change ("50+ bps", "at least 25 bps")


def _amount(m: re.Match[str]) -> tuple[Decimal, str]:
    value = Decimal(m.group("num"))
    unit = (m.group("unit") or "").strip()
    if unit in _MULTIPLIER:
        value *= _MULTIPLIER[unit]
    if unit in ("%", "percent"):
        return value, "%"
    if m.group("cur"):
        return value, "$"
    return value, "n" if unit else ""


@functools.lru_cache(maxsize=1 << 16)
def _thresholds(t: str) -> tuple[_Threshold, ...]:
    """Every threshold expression of the normalised text ``t``: basis-point changes first,
    then levels in what the changes leave (so "75 bps or more" is never a level)."""
    out = []
    blank = list(t)
    for m in _BPS.finditer(t):
        at_least = bool(m.group("pre") or m.group("plus") or m.group("more"))
        out.append(_Threshold(m.span(), "bps", ">", Decimal(m.group(2)), "bps", at_least))
        blank[m.start():m.end()] = " " * (m.end() - m.start())
    rest = "".join(blank)
    for m in _LEVEL_PREFIX.finditer(rest):
        op = ">" if re.fullmatch(_ABOVE, m.group("op")) else "<"
        out.append(_Threshold(m.span(), "level", op, *_amount(m), False))
    for m in _LEVEL_SUFFIX.finditer(rest):
        op = ">" if m.group("dir") in ("more", "higher", "above", "greater") else "<"
        out.append(_Threshold(m.span(), "level", op, *_amount(m), False))
    return tuple(out)


def subject_of(text: str) -> frozenset[str]:
    """The words and numbers saying what a question is about: the text without its
    threshold expressions (levels, basis-point changes), threshold words and stop words,
    month abbreviations spelled out.  Numbers other than thresholds stay (years, days,
    ordinals, quarters, maturities): "December 30" never constrains "December 31", "Q1"
    never "Q2", the 10-year yield never the 2-year."""
    t = normalize(text)
    blank = list(t)
    for th in _thresholds(t):
        start, end = th.span
        blank[start:end] = " " * (end - start)
    words = (_MONTHS.get(w, w) for w in _TOKEN.findall("".join(blank)))
    # numbers as their value ("2.50" and "2.5" are one token)
    return frozenset(w if not w[0].isdigit() else format(Decimal(w).normalize(), "f")
                     for w in words if w not in _THRESHOLD_WORDS and w not in _STOP)


def _unsafe(text: str) -> bool:
    """Whether ``text`` is negated or names a negative amount: it then bounds nothing (a
    missed constraint costs nothing; a reversed one is a losing trade, red team round
    40)."""
    lowered = text.lower()
    return bool(_NEGATION.search(lowered) or _NEGATIVE.search(lowered))


@attrs.frozen
class Bound:
    """A question read as a bound: ``variable`` (``level%``, ``level$``, ``leveln``, their
    ``path`` twins, ``change_up``, ``change_down``) ``op`` (``>`` or ``<``) ``value``,
    about ``subject``."""

    subject: frozenset[str]
    variable: str
    op: str
    value: Decimal


@functools.lru_cache(maxsize=1 << 16)  # a question is paired with up to max_neighbors others
def parse_bound(text: str) -> Bound | None:
    """The bound a question states, or None: an exact bucket, a range (two bounds that
    disagree: "between", "above X and below Y"), a bare number without a unit, or no
    one-sided direction state none."""
    if _unsafe(text):
        return None
    t = normalize(text)
    found = _thresholds(t)
    levels = [th for th in found if th.kind == "level"]
    if levels:
        if len({(th.op, th.value) for th in levels}) != 1:
            return None  # a range, or disagreeing thresholds
        units = {th.unit for th in levels if th.unit}
        if len(units) != 1:
            return None  # only bare numbers ("above 2 candidates"), or mixed units
        variable = "level" + units.pop() + ("_path" if _PATH.search(t) else "")
        return Bound(subject_of(text), variable, levels[0].op, levels[0].value)
    changes = {th.value for th in found if th.kind == "bps" and th.at_least}
    up, down = bool(_UP.search(t)), bool(_DOWN.search(t))
    if up == down or len(changes) != 1:
        return None  # no direction, or both; no one-sided change, or several
    return Bound(subject_of(text), "change_up" if up else "change_down", ">", changes.pop())


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
    m = None if _NEGATION.search(text.lower()) else _PRESIDENCY.search(normalize(text))
    if not m:
        return None
    who = " ".join(m.group("who").split())
    what = "nomination" if "nomination" in m.group("what") else "presidency"
    years = _YEAR.findall(normalize(text))  # "in 2028" after the office counts too
    if len(set(years)) > 1:
        return None  # two elections named: not one question
    return who, (m.group("year") or (years[0] if years else "")).strip(), what


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
