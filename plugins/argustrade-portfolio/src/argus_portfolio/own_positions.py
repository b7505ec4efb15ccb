"""Each strategy's own position per instrument, from its fills: what the per-strategy
checks (``slippage_drift``, ``league``) judge "reduces its own position" against."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from argus_core import Fill, Intent


class OwnPositions:
    """Signed units per strategy slot and instrument, kept fill by fill (JSON state)."""

    def __init__(self) -> None:
        self.held: dict[str, dict[str, Decimal]] = {}  # slot -> instrument -> units

    def add(self, slot: str, fill: Fill) -> None:
        """Book ``fill`` (of an order ``slot`` sent) in that slot's positions."""
        held = self.held.setdefault(slot, {})
        iid = fill.instrument_id
        held[iid] = held.get(iid, Decimal(0)) + fill.side.sign * fill.quantity

    def reduces(self, intent: Intent, quantity: Decimal) -> bool:
        """True when the order only shrinks the strategy's own position towards flat."""
        held = self.held.get(intent.strategy, {}).get(intent.instrument_id, Decimal(0))
        signed = quantity * intent.side.sign
        return held != 0 and (held > 0) != (signed > 0) and abs(signed) <= abs(held)

    def get_state(self) -> dict[str, Any]:
        """JSON-able: units as exact strings."""
        return {k: {i: str(q) for i, q in v.items()} for k, v in self.held.items()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output."""
        self.held = {k: {i: Decimal(q) for i, q in v.items()} for k, v in state.items()}
