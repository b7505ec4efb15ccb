"""Each strategy's own position per instrument, from its fills: what the per-strategy
checks (``slippage_drift``, ``league``) judge "reduces its own position" against."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from argus_core import Fill, Intent, Ledger, OrderStatus
from argus_portfolio.state import amount, table

#: The ledger's order statuses that may still trade (the core's ``working_quantities``).
WORKING = (OrderStatus.PENDING.value, OrderStatus.OPEN.value,
           OrderStatus.PARTIALLY_FILLED.value)


def own_working(ledger: Ledger | None, strategy: str, instrument_id: str, side: str
                ) -> Decimal:
    """What ``strategy``'s orders on ``instrument_id`` and ``side`` not yet final still
    want to trade (quantity less filled), summed; 0 without a ledger.  The core's
    ``RiskContext.pending`` is the whole account's, so a per-strategy rule needs this."""
    if ledger is None:
        return Decimal(0)
    rows = ledger.query(
        "select quantity, filled_quantity from orders where strategy = ? and "
        "instrument_id = ? and side = ? and status in (?, ?, ?)",
        (strategy, instrument_id, side, *WORKING))
    return sum((Decimal(r["quantity"]) - Decimal(r["filled_quantity"] or 0) for r in rows),
               Decimal(0))


class OwnPositions:
    """Signed units per strategy slot and instrument, kept fill by fill (JSON state)."""

    def __init__(self) -> None:
        self.held: dict[str, dict[str, Decimal]] = {}  # slot -> instrument -> units

    def add(self, slot: str, fill: Fill) -> None:
        """Book ``fill`` (of an order ``slot`` sent) in that slot's positions."""
        held = self.held.setdefault(slot, {})
        iid = fill.instrument_id
        held[iid] = held.get(iid, Decimal(0)) + fill.side.sign * fill.quantity

    def reduces(self, intent: Intent, quantity: Decimal,
                working: Decimal = Decimal(0)) -> bool:
        """True when the order only shrinks the strategy's own position towards flat, even
        once the ``working`` units of its orders on the same side have filled too (an exit
        beside working exits must not carry the position through zero)."""
        held = self.held.get(intent.strategy, {}).get(intent.instrument_id, Decimal(0))
        signed = quantity * intent.side.sign
        return held != 0 and (held > 0) != (signed > 0) and abs(signed) + working <= abs(held)

    def judge(self, ledger: Ledger | None, intent: Intent, quantity: Decimal
              ) -> tuple[bool, str]:
        """Whether the order reduces the strategy's own position, its working orders on
        that side counted as filled; and, when they were counted, a phrase saying so."""
        if not self.reduces(intent, quantity):
            return False, ""
        working = own_working(ledger, intent.strategy, intent.instrument_id,
                              intent.side.value)
        if self.reduces(intent, quantity, working):
            return True, ""
        held = self.held[intent.strategy][intent.instrument_id]
        return False, (f"; its {intent.side.value} orders already working on "
                       f"{intent.instrument_id} ({working}) and this one ({quantity}) "
                       f"would take its position of {held} through zero")

    def get_state(self) -> dict[str, Any]:
        """JSON-able: units as exact strings."""
        return {k: {i: str(q) for i, q in v.items()} for k, v in self.held.items()}

    def set_state(self, state: dict[str, Any], key: str = "positions") -> None:
        """Restore :meth:`get_state` output (a damaged one is a ``ValueError`` naming the
        key)."""
        self.held = {str(slot): {str(i): amount(q, f"{key}.{slot}.{i}")
                                 for i, q in table(held, f"{key}.{slot}").items()}
                     for slot, held in table(state, key).items()}
