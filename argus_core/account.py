"""The account: cash, positions, marks and fees, updated fill by fill (exact Decimals)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from argus_core.models import Fill, Portfolio, Position


class Account:
    """Mutable book-keeping behind the immutable :class:`Portfolio` snapshots."""

    def __init__(self, cash: Decimal) -> None:
        self.cash = cash
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        self.fees_paid = Decimal(0)
        self._snapshot: Portfolio | None = None

    def apply(self, fill: Fill) -> Position:
        """Book a fill: position, cash (notional and fee) and fees paid.

        Marks follow the position: a position opened from flat is marked at its fill
        price until the next market price arrives (:meth:`mark`), and the mark of a
        position closed to flat is dropped, so a later re-entry is never valued at the
        previous trade's last price (that stale mark made one-bar equity spikes).
        """
        inst = fill.instrument_id
        before = self.positions.get(inst) or Position(inst)
        pos = before.apply(fill)
        self.positions[inst] = pos
        self.cash -= fill.side.sign * fill.notional + fill.fee
        self.fees_paid += fill.fee
        if pos.quantity == 0:
            self.marks.pop(inst, None)
        elif before.quantity == 0 or inst not in self.marks:
            self.marks[inst] = fill.price
        self._snapshot = None
        return pos

    def mark(self, instrument_id: str, price: float | Decimal) -> None:
        """Update the mark of an instrument we hold (marks of flat instruments are not kept)."""
        pos = self.positions.get(instrument_id)
        if pos is not None and pos.quantity != 0:
            # Prices reaching here were validated at the edge (finite, positive).
            self.marks[instrument_id] = price if type(price) is Decimal else Decimal(repr(price))
            self._snapshot = None

    def portfolio(self) -> Portfolio:
        """An immutable snapshot (cached until the next fill or mark)."""
        if self._snapshot is None:
            self._snapshot = Portfolio(self.cash, dict(self.positions), dict(self.marks),
                                       self.fees_paid)
        return self._snapshot

    def equity(self) -> Decimal:
        """Cash plus marked positions."""
        return self.portfolio().equity

    def valuation(self) -> tuple[Decimal, Decimal]:
        """``(equity, gross exposure)`` straight from the books: the per-bar equity row
        needs only these, and a Portfolio snapshot per bar would cost more than the rest
        of the loop."""
        equity, gross = self.cash, Decimal(0)
        for instrument_id, pos in self.positions.items():
            qty = pos.quantity
            if qty:
                mark = self.marks.get(instrument_id)
                value = qty * (mark if mark is not None else pos.avg_price)
                equity += value
                gross += abs(value)
        return equity, gross

    def get_state(self) -> dict[str, Any]:
        """JSON state for checkpoints."""
        return {
            "cash": str(self.cash), "fees_paid": str(self.fees_paid),
            "marks": {k: str(v) for k, v in self.marks.items()},
            "positions": {k: [str(p.quantity), str(p.avg_price), str(p.realized_pnl)]
                          for k, p in self.positions.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state`` output."""
        self.cash = Decimal(state["cash"])
        self.fees_paid = Decimal(state["fees_paid"])
        self.positions = {k: Position(k, *v) for k, v in state["positions"].items()}
        # Checkpoints written before flat marks were dropped may still hold stale ones.
        self.marks = {k: Decimal(v) for k, v in state["marks"].items()
                      if k in self.positions and self.positions[k].quantity != 0}
        self._snapshot = None
