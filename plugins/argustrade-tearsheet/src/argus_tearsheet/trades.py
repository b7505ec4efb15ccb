"""Trades and per-strategy P&L from a run's fills, in exact Decimals.

Each strategy keeps its own book per instrument (the strategy is the one on the fill's
order, ``orders.strategy``), so two strategies trading one instrument never net against
each other.  A **trade** is one round trip of such a book, from flat back to flat, as
the core's :func:`argus_core.metrics.round_trips` counts them: its P&L is the cash it
moved (notional and every fee); a fill that flips a position through zero closes one
trade and opens the next, its quantity and fee split pro rata.

A strategy's **net P&L** is its fills' cash flows plus its open positions at the final
marks.  Cash flows and positions add across strategies, so the strategies' net P&L
sums exactly (not just to the cent) to the account's: ``final equity - starting cash``
whenever the final equity row is marked at the same prices (the runner's final marks).

House orders (the kill switch's ``flatten``, a market's ``settlement``) belong to no
strategy: their fills are shared by the books holding the instrument, in proportion to
what each holds, as the core's :meth:`argus_core.account.Account.apply_to_books` books
them (its fee weighted alike, shares to 1e-12, the last book taking the rest); a bust
of such a fill is taken back in the same shares, and a void's settlement order per book
(its id ending ``-<strategy>``) is that book's alone.  So a resolved market closes the
trade of the strategy that held it, and a flatten the trades it flattened.

A fill **busted whole** (the venue's trade never happened; the core books an offset
``<fill id>:bust``, the other side at the same price and quantity, its fee refunded) is
no trade and no traded notional, as the core's :func:`argus_core.metrics.standing` has
it: the pair never opens, extends or closes a round trip.  Its cash, fees and realised
P&L stay booked as the core's account books them (an offsetting fill, in the order of
the fills: a position traded between the two may realise P&L by it), so the report's
money equals the account's.  A part's offset (``<fill id>:bust:<part>``) is an ordinary
fill whose notional is taken back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from argus_core import Fill, Liquidity, Position, Side, book_shares, busted_by, metrics

ZERO = Decimal(0)


@attrs.frozen
class Trade:
    """One round trip of one strategy in one instrument (flat -> flat)."""

    strategy: str
    instrument_id: str
    side: str  # "long" or "short"
    quantity: Decimal  # total quantity opened
    entry_price: Decimal  # volume-weighted over the opening fills
    exit_price: Decimal  # volume-weighted over the closing fills
    opened_ns: int
    closed_ns: int
    pnl: Decimal  # net of every fee of the trade
    fees: Decimal
    entry_reason: str
    exit_reason: str

    @property
    def return_fraction(self) -> Decimal:
        """Net P&L over the entry notional (quantity x entry price)."""
        notional = self.quantity * self.entry_price
        return self.pnl / notional if notional else ZERO

    @property
    def holding_ns(self) -> int:
        """Nanoseconds from the first opening fill to the last closing fill."""
        return self.closed_ns - self.opened_ns


@attrs.frozen
class OpenPosition:
    """A strategy's position still open at the end of the run, at the final mark."""

    strategy: str
    instrument_id: str
    quantity: Decimal  # signed: negative is short
    avg_price: Decimal
    mark: Decimal
    marked: bool  # False: no mark recorded, valued at its average price (as the core does)
    opened_ns: int
    entry_reason: str

    @property
    def unrealised(self) -> Decimal:
        """``quantity x (mark - average price)``."""
        return self.quantity * (self.mark - self.avg_price)


@attrs.frozen
class StrategyPnl:
    """One strategy's money: realised (gross of fees), unrealised, fees, net."""

    strategy: str
    realised: Decimal
    unrealised: Decimal
    fees: Decimal
    net: Decimal  # cash flows (notional and fees) + open positions x final mark
    traded_notional: Decimal
    n_fills: int


@attrs.define
class _OpenTrade:
    side: str
    opened_ns: int
    entry_reason: str
    open_qty: Decimal = ZERO
    open_notional: Decimal = ZERO
    close_qty: Decimal = ZERO
    close_notional: Decimal = ZERO
    cash: Decimal = ZERO
    fees: Decimal = ZERO
    exit_reason: str = ""


@attrs.define
class _Book:
    position: Position
    #: the position of the fills that stood (busted pairs left out): what trades follow
    standing_qty: Decimal = ZERO
    cash: Decimal = ZERO
    fees: Decimal = ZERO
    notional: Decimal = ZERO
    n_fills: int = 0
    trade: _OpenTrade | None = None


@attrs.frozen
class RunBook:
    """Trades, open positions and per-strategy P&L of one run (see the module doc)."""

    trades: list[Trade]
    open_positions: list[OpenPosition]
    strategies: list[StrategyPnl]
    #: strategy -> its fills (ledger rows; a house fill as its share), for the core's
    #: round-trip statistics
    fills_by_strategy: dict[str, list[dict[str, Any]]]
    #: fills in the ledger (a shared house fill counts once here, once in each book)
    n_fills: int = 0

    @property
    def total(self) -> StrategyPnl:
        """The strategies' rows added up (exact); fills as the ledger counts them."""
        rows = self.strategies
        return StrategyPnl("total", sum((s.realised for s in rows), ZERO),
                           sum((s.unrealised for s in rows), ZERO),
                           sum((s.fees for s in rows), ZERO), sum((s.net for s in rows), ZERO),
                           sum((s.traded_notional for s in rows), ZERO), self.n_fills)


def _fill(row: Mapping[str, Any]) -> Fill:
    return Fill(str(row["fill_id"]), str(row["client_order_id"]), str(row["venue"]),
                str(row["instrument_id"]), Side(row["side"]), Decimal(row["price"]),
                Decimal(row["quantity"]), Decimal(row["fee"]), Liquidity(row["liquidity"]),
                int(row["ts_ns"]))


def build_books(fills: Iterable[Mapping[str, Any]], orders: Mapping[str, Mapping[str, Any]],
                marks: Mapping[str, Decimal]) -> RunBook:
    """Walk ``fills`` (ledger order) through one book per (strategy, instrument).

    ``orders``: client order id -> order row (its ``strategy`` and ``reason``);
    ``marks``: instrument -> final mark (an open position without one is valued at its
    average price, as :meth:`argus_core.Portfolio` valuation does)."""
    books: dict[tuple[str, str], _Book] = {}
    trades: list[Trade] = []
    by_strategy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    house_fills: dict[str, list[tuple[str, Decimal]]] = {}
    n_fills = 0
    rows = [dict(row) for row in fills]
    stood = {id(row) for row in metrics.standing(rows)}  # (the same dicts, filtered)
    for row in rows:
        order = orders.get(str(row["client_order_id"]), {})
        strategy = str(order.get("strategy") or "(unknown)")
        reason = str(order.get("reason") or "")
        fill = _fill(row)
        n_fills += 1
        for slot, part in _shares(fill, strategy, books, house_fills):
            by_strategy[slot].append({**row, "side": part.side.value,
                                      "quantity": str(part.quantity), "fee": str(part.fee)})
            key = (slot, fill.instrument_id)
            book = books.get(key)
            if book is None:
                book = books[key] = _Book(Position(fill.instrument_id))
            _apply(book, part, reason, slot, trades, standing=id(row) in stood)
    open_positions: list[OpenPosition] = []
    per: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO, ZERO])
    counts: dict[str, int] = defaultdict(int)
    for (strategy, inst), book in books.items():
        qty = book.position.quantity
        mark = marks.get(inst, book.position.avg_price)
        unrealised = ZERO
        if qty and book.trade is not None:
            pos = OpenPosition(strategy, inst, qty, book.position.avg_price, mark,
                               inst in marks, book.trade.opened_ns, book.trade.entry_reason)
            open_positions.append(pos)
            unrealised = pos.unrealised
        acc = per[strategy]
        acc[0] += book.position.realized_pnl
        acc[1] += unrealised
        acc[2] += book.fees
        acc[3] += book.cash + qty * mark
        acc[4] += book.notional
        counts[strategy] += book.n_fills
    strategies = [StrategyPnl(s, realised=v[0], unrealised=v[1], fees=v[2], net=v[3],
                              traded_notional=v[4], n_fills=counts[s])
                  for s, v in sorted(per.items())]
    return RunBook(trades, open_positions, strategies, dict(by_strategy), n_fills)


def _shares(fill: Fill, slot: str, books: Mapping[tuple[str, str], _Book],
            house_fills: dict[str, list[tuple[str, Decimal]]]) -> list[tuple[str, Fill]]:
    """The books ``fill`` (of an order of ``slot``) moves and each one's part: the core's
    :func:`~argus_core.book_shares`, told what the ledger's rows say (a bust names the
    fill it busts in its id; a void's settlement order per book ends ``-<strategy>``)."""
    holders = {s: b.position.quantity for (s, i), b in sorted(books.items())
               if i == fill.instrument_id and b.position.quantity}
    bust = busted_by(fill.fill_id)
    own = _own_book(fill, holders)
    return book_shares(fill, own or slot, holders, house_fills, alone=own is not None,
                       undo=bust[0] if bust is not None else None)


def _own_book(fill: Fill, holders: Mapping[str, Decimal]) -> str | None:
    """The book a settlement fill closes alone: a voided market settles each book at its
    own cost with an order of its own, ``settle-...-<strategy>``, closing all it holds."""
    if fill.liquidity is not Liquidity.SETTLEMENT:
        return None
    signed = fill.side.sign * fill.quantity
    mine = [s for s, q in holders.items()
            if fill.client_order_id.endswith(f"-{s}") and q == -signed]
    return max(mine, key=len) if mine else None


def _apply(book: _Book, fill: Fill, reason: str, strategy: str, trades: list[Trade], *,
           standing: bool = True) -> None:
    """Book one fill: cash, fees, position (the core's :meth:`Position.apply`) and, when
    it is ``standing`` (not one of a pair busted whole), its notional and the round trip
    it opens, extends, closes or flips."""
    book.cash -= fill.side.sign * fill.notional + fill.fee
    book.fees += fill.fee
    book.n_fills += 1
    book.position = book.position.apply(fill)
    if standing:
        # a part's offset takes its notional back, as the core's turnover does
        book.notional += -fill.notional if busted_by(fill.fill_id) else fill.notional
        _trade(book, fill, reason, strategy, trades)


def _trade(book: _Book, fill: Fill, reason: str, strategy: str, trades: list[Trade]) -> None:
    """The round trip ``fill`` opens, extends, closes or flips, on the standing fills."""
    sign = fill.side.sign
    held = book.standing_qty
    book.standing_qty += sign * fill.quantity
    closing = ZERO
    if held and (held > 0) != (sign > 0):
        closing = min(abs(held), fill.quantity)
    opening = fill.quantity - closing
    close_fee = fill.fee * closing / fill.quantity if closing else ZERO
    if closing:
        trade = book.trade
        assert trade is not None  # a held position always has its trade open
        trade.close_qty += closing
        trade.close_notional += closing * fill.price
        trade.cash -= sign * closing * fill.price + close_fee
        trade.fees += close_fee
        trade.exit_reason = reason
        if closing == abs(held):  # flat, or flipped through zero
            trades.append(Trade(
                strategy, fill.instrument_id, trade.side, trade.open_qty,
                trade.open_notional / trade.open_qty, trade.close_notional / trade.close_qty,
                trade.opened_ns, fill.ts_ns, trade.cash, trade.fees, trade.entry_reason,
                trade.exit_reason))
            book.trade = None
    if opening:
        if book.trade is None:
            book.trade = _OpenTrade("long" if sign > 0 else "short", fill.ts_ns, reason)
        trade = book.trade
        open_fee = fill.fee - close_fee
        trade.open_qty += opening
        trade.open_notional += opening * fill.price
        trade.cash -= sign * opening * fill.price + open_fee
        trade.fees += open_fee
