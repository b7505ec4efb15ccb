"""A person's kill, flatten and resume: the trading-state latch in the ledger's ``control``
table, written by ``argus kill`` / ``argus resume``, the Telegram bot and the dashboard by
one rule.  The running loop adopts the latch at its next commit or idle point (a quiet
market gives one every second: :data:`argus_core.runner.QUIET_TICK_S`; a busy one commits
at least that often: :data:`argus_core.runner.HOLD_LOCK_S`).

The rule: a request that would change nothing writes nothing (``resume`` while ACTIVE, a
``kill`` while HALTED, a ``flatten`` while HALTED and flattening: a second press is
handled once, and a ``kill`` never takes back a ``flatten`` still being carried out); the
reason is one clean line (no escape sequences for a terminal or a chat to obey, no
credentials, at most :data:`MAX_REASON` characters); a latch that cannot be read is
replaced by any request (the loop cannot start on it)."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from argus_core.risk import TradingState
from argus_core.secrets import redact
from argus_core.serde import loads_frame

if TYPE_CHECKING:
    from argus_core.ledger import Ledger

#: The ``control`` key of the trading-state latch.
CONTROL_STATE = "trading_state"
#: Longest reason kept (a reason is for people; a novel belongs elsewhere).
MAX_REASON = 500
#: What a person may ask for.
ACTIONS = ("kill", "flatten", "resume")


#: Characters that reorder or hide the text around them (bidi overrides, embeddings,
#: isolates and marks) and the C0/C1 controls but the tab and the line feed.
_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f"
                     r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible_text(text: str) -> str:
    """``text`` for a person's screen with every character that would reorder or hide
    what is around it written out (``\\u202e``): an instrument id holding U+202E showed
    the rest of its line, a price among it, reversed.  Emoji, their joiners, tabs and new
    lines are left as they are (unlike :func:`clean_reason`, which makes one line)."""
    return _HIDDEN.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def clean_reason(text: str, limit: int = MAX_REASON) -> str:
    """``text`` as one line a person can read: control and format characters (escape
    sequences, NULs, bidi overrides) become spaces, runs of white space one space,
    credentials ``[REDACTED]``, at most ``limit`` characters (the last an ellipsis when
    cut).  Cut before it is redacted as well as after: the text may be hostile."""
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch
                   for ch in text[:limit * 4])
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def trading_latch(ledger: Ledger) -> dict[str, Any] | None:
    """The latch as stored (``state``, ``reason``, ``flatten``, ``by``, ...), its reason
    :func:`clean_reason`'s (the loop's own may hold a venue's text), or None when unset or
    unreadable (not JSON, or no state of :class:`TradingState`)."""
    return parse_latch(ledger.get_control(CONTROL_STATE))


def parse_latch(raw: str | None) -> dict[str, Any] | None:
    """:func:`trading_latch` of the stored text ``raw`` (the loop has read it already)."""
    try:
        value = loads_frame(raw or "null")  # a person wrote it: depth-checked first
    except json.JSONDecodeError:
        return None
    # (A list, not a set, of states: a stored [...] is no key.)
    ok = isinstance(value, dict) and value.get("state") in [s.value for s in TradingState]
    return value | {"reason": clean_reason(str(value.get("reason") or ""))} if ok else None


def changes_nothing(action: str, current: dict[str, Any] | None) -> bool:
    """Whether ``action`` (:data:`ACTIONS`) would leave ``current`` as it is."""
    state = (current or {}).get("state", TradingState.ACTIVE.value)
    if action == "resume":
        return bool(state == TradingState.ACTIVE.value)
    return state == TradingState.HALTED.value and (action == "kill" or bool(
        current and current.get("flatten")))


def request_trading_state(ledger: Ledger, action: str, reason: str, by: str,
                          **extra: Any) -> tuple[dict[str, Any], bool]:
    """Write the latch for a person's ``action`` unless it :func:`changes_nothing`; returns
    the latch in force and whether this request wrote it.  The read and the write are one
    transaction (taken here, or the caller's when one is open, so that a caller's own
    audit row goes with it).  ``extra`` fields (``via``) are stored beside the rule's."""
    if action not in ACTIONS:
        raise ValueError(f"unknown control action {action!r}; expected one of {ACTIONS}")
    latch: dict[str, Any] = {"state": (TradingState.ACTIVE if action == "resume"
                                       else TradingState.HALTED).value,
                             "reason": clean_reason(reason) or f"{action}: no reason given"}
    if action != "resume":
        latch["flatten"] = action == "flatten"
    latch |= {"by": clean_reason(by), **extra}
    with ledger.immediate():
        current = trading_latch(ledger)
        # A latch stored but unreadable stops the loop at its start: any request replaces it.
        damaged = current is None and ledger.get_control(CONTROL_STATE) is not None
        changed = damaged or not changes_nothing(action, current)
        if changed:
            ledger.put_control(CONTROL_STATE, json.dumps(latch), time.time_ns())
    return (latch if changed else current or {"state": TradingState.ACTIVE.value}), changed


def left_open_by_resume(ledger: Ledger) -> list[str]:
    """The instruments a resume written now would leave open by stopping the flatten under
    way (sorted; none when no flatten is under way): a person must know.  A quantity that
    is no number counts as open (saying too much is safer than calling a position closed)."""
    if not (trading_latch(ledger) or {}).get("flatten"):
        return []
    held = []
    for row in ledger.query("select instrument_id, quantity from positions"):
        try:
            held_open = Decimal(str(row["quantity"])) != 0
        except InvalidOperation:
            held_open = True
        if held_open:
            held.append(str(row["instrument_id"]))
    return sorted(held)


def left_open_text(instruments: Sequence[str], closes: str, shown: int = 5) -> str:
    """What a resume says of the positions the flatten it stopped leaves open (one line,
    each id a clean line of its own; ``closes``: how a person closes them there)."""
    names = ", ".join(clean_reason(i, 80) for i in instruments[:shown])
    more = f" and {len(instruments) - shown} more" if len(instruments) > shown else ""
    return (f"the flatten under way stops: {len(instruments)} position(s) stay open "
            f"({names}{more}); {closes} closes them")
