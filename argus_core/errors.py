"""The small error hierarchy every Argus component raises.

Messages say what went wrong, where, and what to do about it; the CLI prints
them without a traceback (``--traceback`` shows one).
"""

from __future__ import annotations

import re
from typing import Any

#: A text an error may print back: short, or written like a number ("100,000.00").
_ECHOED = re.compile(r".{0,7}|[\d\s.,_+\-eE%$]*", re.DOTALL)


def shown(value: object) -> str:
    """A wrongly typed value as an error prints it: a longer text that is not written
    like a number is described, not echoed (a key pasted into the wrong setting)."""
    if isinstance(value, str) and not _ECHOED.fullmatch(value):
        return f"a text of {len(value)} characters"
    return repr(value)


class ArgusError(Exception):
    """Base class of every error Argus raises on purpose."""

    exit_code = 1


class ConfigError(ArgusError):
    """A config file or a plugin's settings table is invalid."""

    exit_code = 2


class PluginError(ArgusError):
    """A plugin is missing, broken, or clashes with another one."""

    exit_code = 3


class DataError(ArgusError):
    """Market data (a payload, a recorded stream, a CSV) is malformed."""

    exit_code = 4


class VenueError(ArgusError):
    """A venue refused a request or answered something unusable."""

    exit_code = 5


class BasketIncomplete(VenueError):
    """A venue could not complete a basket and could not flatten it either: ``fills``
    holds what did execute, so the runner books it and stops adding risk."""

    def __init__(self, message: str, fills: list[Any]) -> None:
        super().__init__(message)
        self.fills = fills


class OrderUnknown(VenueError):
    """A submission's outcome is ambiguous (timeout, lost answer, 5xx, reset) and asking the
    venue could not yet tell whether it holds the order.  Never re-send blind: the order
    stays pending in the ledger until the venue's executions, the core's later
    ``Venue.lookup`` or a restart's reconciliation say what became of it."""

    def __init__(self, message: str, client_order_ids: list[str]) -> None:
        super().__init__(message)
        self.client_order_ids = client_order_ids


class RiskHalted(ArgusError):
    """Trading is HALTED; only a person can clear it (``argus resume``)."""

    exit_code = 6


class LedgerError(ArgusError):
    """The ledger is unreadable or inconsistent with the requested run."""

    exit_code = 7
