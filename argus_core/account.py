"""The account: cash, positions, marks and fees, updated fill by fill (exact Decimals),
and inside it one book per strategy slot.

Each configured strategy slot has its own capital (``[run] capital``, else an equal
share of the starting cash), and a fill lands in the book of the slot that sent its order
(a scanner's in a book of its own, starting at 0).  The engine's own orders that close
positions for everyone (the kill switch's flattening, settlements) are shared among the
books that hold the instrument, in proportion to their signed positions, fees in
proportion to the quantity each takes, the last book taking the rounding remainder: the
books' cash, quantities and fees always sum to the account's exactly.  Books are valued at
the account's marks (the last fill price when the account is flat but books offset), so
per-strategy equity sums to the total to the cent.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from argus_core.errors import ConfigError
from argus_core.models import WIDE, Fill, Liquidity, Portfolio, Position

#: Order slots that act for every book: their fills are shared by the holders.
HOUSE_SLOTS = frozenset({"flatten", "settlement"})
# Shares of a shared fill are cut at 1e-12: fine enough for any lot or fee, coarse enough
# that a book's cash (28 significant digits) stays exact, so the books sum exactly.
_SHARE = Decimal("1e-12")
_ZERO = Decimal(0)


def capital_split(cash: Decimal, shares: dict[str, Decimal], slots: list[str]
                  ) -> dict[str, Decimal]:
    """Each slot's starting capital: its ``[run] capital`` share of ``cash``, slots not
    named sharing the rest equally (the last takes the rounding remainder); cash no slot
    holds stays in an ``unallocated`` book, so the books always sum to ``cash``."""
    unknown = sorted(set(shares) - set(slots))
    if unknown:
        raise ConfigError(f"[run] capital names {unknown}, which are not strategy slots "
                          f"of this run ({sorted(slots)})")
    out = {slot: cash * shares[slot] for slot in slots if slot in shares}
    rest = [slot for slot in slots if slot not in shares]
    left = cash - sum(out.values(), Decimal(0))
    share = left / len(rest) if rest else left
    out.update(dict.fromkeys(rest, share))
    if rest:
        out[rest[-1]] = left - share * (len(rest) - 1)
    elif left > 0:
        out["unallocated"] = left
    return out


class Account:
    """Mutable book-keeping behind the immutable :class:`Portfolio` snapshots."""

    def __init__(self, cash: Decimal, capital: dict[str, Decimal] | None = None) -> None:
        self.cash = cash
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        self.fees_paid = Decimal(0)
        # Both cached until the next fill or mark (every change below resets them).
        self._snapshot: Portfolio | None = None
        self._valuation: tuple[Decimal, Decimal] | None = None
        self._equity: Decimal | None = None  # valuation()'s equity alone (marked_equity)
        # Each held position's marked value, in the positions' order: a mark re-values its
        # own instrument only, so N instruments cost one product per mark, not N.
        self._values: dict[str, Decimal] = {}
        #: The held (instrument, quantity) pairs, in the positions' order: what a book's
        #: equity multiplies out (read-only outside; rebuilt on every fill).
        self.held: list[tuple[str, Decimal]] = []
        self.last_price: dict[str, Decimal] = {}
        #: The strategy slots' books (slot -> its own Account), with their capital.
        self.books = {slot: Account(c) for slot, c in (capital or {}).items()}
        #: Each house fill's signed shares in the books (fill id -> [(slot, quantity)]):
        #: what a bust of it takes back (the books hold other trades by then).
        self.house_fills: dict[str, list[tuple[str, Decimal]]] = {}

    def book(self, slot: str) -> Account:
        """The book of ``slot`` (created empty, with no capital, on its first fill)."""
        if slot not in self.books:
            self.books[slot] = Account(Decimal(0))
        return self.books[slot]

    def apply_to_books(self, fill: Fill, slot: str, *, alone: bool = False,
                       undo: str | None = None) -> None:
        """Book ``fill`` (of an order sent by ``slot``) in the strategies' books, in the
        shares :func:`book_shares` gives."""
        inst = fill.instrument_id
        holders = {s: b.positions[inst].quantity for s, b in sorted(self.books.items())
                   if inst in b.positions and b.positions[inst].quantity != 0}
        for name, part in book_shares(fill, slot, holders, self.house_fills, alone=alone,
                                      undo=undo):
            self.book(name).apply(part)

    def book_equity(self) -> dict[str, Decimal]:
        """Each book's equity at the account's marks (one row per book per timestamp)."""
        marks, last = self.marks, self.last_price
        out = {}
        for slot, book in self.books.items():
            held = Decimal(0)  # summed first, then added to the cash, as sum() did
            for i, qty in book.held:
                mark = marks.get(i)
                held += qty * (mark if mark is not None else last[i])
            out[slot] = book.cash + held
        return out

    def book_portfolio(self, slot: str) -> Portfolio:
        """What ``slot``'s sizer sees: its own cash and positions at the account's marks
        (the whole account when the run keeps no books)."""
        if slot not in self.books:
            return self.portfolio()
        book = self.books[slot]
        return Portfolio(book.cash, dict(book.positions), dict(self.marks), book.fees_paid)

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
        self.last_price[inst] = fill.price
        if pos.quantity == 0:
            self.marks.pop(inst, None)
        elif before.quantity == 0 or inst not in self.marks:
            self.marks[inst] = fill.price
        self._revalue()
        return pos

    def refund_fee(self, refund: Decimal, slot: str) -> None:
        """A booked fill's fee corrected by the venue: ``refund`` (the old fee less the new)
        back to the cash, here and in the book of ``slot``, whose order it was (a shared
        house order's correction stays in its own book: the books still sum exactly)."""
        for account in (self, self.book(slot)):
            account.cash += refund
            account.fees_paid -= refund
            account._snapshot = account._valuation = account._equity = None

    def _revalue(self) -> None:
        """Every held position's value afresh (after a fill or a restore)."""
        marks = self.marks
        self._values = {i: p.quantity * marks.get(i, p.avg_price)
                        for i, p in self.positions.items() if p.quantity}
        self.held = [(i, p.quantity) for i, p in self.positions.items() if p.quantity]
        self._snapshot = self._valuation = self._equity = None

    def mark(self, instrument_id: str, price: float | Decimal) -> None:
        """Update the mark of an instrument we hold (marks of flat instruments are not kept)."""
        pos = self.positions.get(instrument_id)
        if pos is not None and pos.quantity != 0:
            # Prices reaching here were validated at the edge (finite, positive); str, not
            # repr: a numpy float's repr ("np.float64(0.5)") is no number text.
            mark = price if type(price) is Decimal else Decimal(str(price))
            self.marks[instrument_id] = mark
            self._values[instrument_id] = pos.quantity * mark
            self._snapshot = self._valuation = self._equity = None

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
        of the loop.  Cached until the next fill or mark: the drawdown watch and the
        timestamp's equity row share one computation."""
        if self._valuation is not None:
            return self._valuation
        values = self._values.values()
        # Summed in the positions' order from the cash (and from 0), as a loop over them.
        self._valuation = (self.marked_equity(), sum(map(abs, values), _ZERO))
        return self._valuation

    def marked_equity(self) -> Decimal:
        """:meth:`valuation`'s equity alone, the same Decimal (cached with it): the
        drawdown watch sees every mark, but the gross exposure is wanted once per
        timestamp (its equity row), so several instruments' marks at one timestamp sum
        their positions' absolute values once, not once each."""
        if self._equity is None:
            self._equity = sum(self._values.values(), self.cash)
        return self._equity

    def get_state(self) -> dict[str, Any]:
        """JSON state for checkpoints."""
        return {
            "cash": str(self.cash), "fees_paid": str(self.fees_paid),
            "marks": {k: str(v) for k, v in self.marks.items()},
            "positions": {k: [str(p.quantity), str(p.avg_price), str(p.realized_pnl)]
                          for k, p in self.positions.items()},
            "last_price": {k: str(v) for k, v in self.last_price.items()},
            "books": {slot: book.get_state() for slot, book in self.books.items()},
            **({"house_fills": {k: [[slot, str(q)] for slot, q in v]
                                for k, v in self.house_fills.items()}} if self.house_fills else {}),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state`` output."""
        self.cash = Decimal(state["cash"])
        self.fees_paid = Decimal(state["fees_paid"])
        self.positions = {k: Position(k, *v) for k, v in state["positions"].items()}
        # Checkpoints written before flat marks were dropped may still hold stale ones.
        self.marks = {k: Decimal(v) for k, v in state["marks"].items()
                      if k in self.positions and self.positions[k].quantity != 0}
        self.last_price = {k: Decimal(v) for k, v in state.get("last_price", {}).items()}
        for slot, book_state in state.get("books", {}).items():
            self.book(slot).set_state(book_state)
        self.house_fills = {k: [(slot, Decimal(q)) for slot, q in v]
                            for k, v in state.get("house_fills", {}).items()}
        self._revalue()


def book_shares(fill: Fill, slot: str, holders: Mapping[str, Decimal],
                house_fills: dict[str, list[tuple[str, Decimal]]], *, alone: bool = False,
                undo: str | None = None) -> list[tuple[str, Fill]]:
    """The strategies' books ``fill`` (of an order sent by ``slot``) moves, and each one's
    part: a slot's own order, or a house order (a flatten's, a settlement's) marked
    ``alone`` (one book's own settlement), is that book's; any other house order's is
    shared by the books it reduces (``holders``: each book's signed position in the
    instrument), in proportion, its fee weighted alike (shares cut at 1e-12, the last book
    taking what rounding left); ``undo``: the id of the house fill this one busts, taken
    back from the books it was booked in, in its shares.  ``house_fills`` (house fill id ->
    its signed shares) is kept for the busts that follow.  The account books with it, and
    a report that rebuilds the books from the ledger (the tearsheet) too."""
    if undo in house_fills:  # a bust: out of the books the venue's trade moved
        parts = house_fills[undo]
        total = abs(sum((q for _, q in parts), _ZERO))
        return _shares(fill, [(name, -q * fill.quantity / total, abs(q)) for name, q in parts])
    if alone or slot not in HOUSE_SLOTS:  # a slot's own order: its own book
        return [(slot, fill)]
    sign, held = fill.side.sign, sum(holders.values(), _ZERO)
    if held == 0 or held * sign > 0:
        shares = [(slot, fill)]
    else:
        shares = _shares(fill, [(name, fill.quantity * sign * q / held, abs(q))
                                for name, q in holders.items()])
    if fill.liquidity is not Liquidity.SETTLEMENT:  # a settlement is never busted
        house_fills[fill.fill_id] = [(name, part.quantity * part.side.sign)
                                     for name, part in shares]
    return shares


def _shares(fill: Fill, parts: list[tuple[str, Decimal, Decimal]]) -> list[tuple[str, Fill]]:
    """``fill`` in shares, ``parts`` each book's ``(name, signed quantity, fee weight)``
    (the last book takes what rounding left)."""
    sign, out, weight = fill.side.sign, [], sum((w for _, _, w in parts), _ZERO)
    signed_left, fee_left = fill.quantity * sign, fill.fee
    for n, (name, part, w) in enumerate(parts, 1):
        signed = signed_left if n == len(parts) else part.quantize(_SHARE, context=WIDE)
        fee = fee_left if n == len(parts) else (fill.fee * w / weight).quantize(
            _SHARE, context=WIDE)
        signed_left, fee_left = signed_left - signed, fee_left - fee
        if signed:
            side = fill.side if signed * sign > 0 else fill.side.opposite()
            out.append((name, attrs.evolve(fill, side=side, quantity=abs(signed), fee=fee)))
    return out
