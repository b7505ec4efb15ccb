"""Reading the checkpointed state of the plugin's checks back, refusing what is damaged.

A checkpoint is JSON the plugin wrote itself, but a ledger can be damaged or edited by
hand.  Each reader here raises a ``ValueError`` naming the key and what is wrong, which
the core's restore turns into a ``LedgerError`` naming the ledger and the checkpoint (an
``AttributeError`` from ``[].items()`` got past it as a traceback, and a NaN in a drift
window switched the monitor off for good: every comparison with NaN is false).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def _kind(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "text", bool: "true/false",
            type(None): "nothing"}.get(type(value), type(value).__name__)


def table(value: Any, key: str) -> Mapping[str, Any]:
    """``value`` as a table (a JSON object)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected a table, got {_kind(value)}")
    return value


def seq(value: Any, key: str) -> list[Any]:
    """``value`` as a list (a JSON array)."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key}: expected a list, got {_kind(value)}")
    return list(value)


def number(value: Any, key: str, lo: float | None = None, hi: float | None = None) -> float:
    """``value`` as a finite float within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: expected a number, got {_kind(value)}")
    x = float(value)
    if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        span = f" in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise ValueError(f"{key} = {value!r} is not a finite number{span}")
    return x


def optional_number(value: Any, key: str, lo: float | None = None,
                    hi: float | None = None) -> float | None:
    """:func:`number`, or None."""
    return None if value is None else number(value, key, lo, hi)


def integer(value: Any, key: str, lo: int | None = None) -> int:
    """``value`` as a whole number, at least ``lo``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: expected a whole number, got {_kind(value)} {value!r:.40}")
    if lo is not None and value < lo:
        raise ValueError(f"{key} = {value} is below {lo}")
    return value


def text(value: Any, key: str) -> str:
    """``value`` as text."""
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected text, got {_kind(value)}")
    return value


def amount(value: Any, key: str) -> Decimal:
    """``value`` (an exact decimal text) as a finite Decimal."""
    try:
        out = Decimal(text(value, key))
    except ArithmeticError:
        out = Decimal("NaN")
    if not out.is_finite():
        raise ValueError(f"{key} = {str(value)[:40]!r} is not a finite decimal number")
    return out
