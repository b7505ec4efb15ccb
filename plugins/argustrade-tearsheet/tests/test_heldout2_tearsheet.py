"""Third red team of the tearsheet: busted fills.  Each test failed before its fix:

* a fill busted whole (the venue's trade never happened: the core offsets it with
  ``<fill id>:bust``, the other side at the same price and quantity, its fee refunded)
  was listed in Trades as a round trip of P&L 0, and counted twice in the strategy's
  traded notional, while the core's own round trips and turnover
  (``argus_core.metrics.standing``) leave the pair out.  Now the pair is no trade and no
  notional, as in the core; its cash, fees and realised P&L stay booked as the core's
  account books them (an offsetting fill, in the order of the fills), so the report's
  money still equals the account's to the cent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from argus_tearsheet.trades import build_books

from argus_core import Fill, Liquidity, Side, metrics
from argus_core.account import Account

D = Decimal


def _fill(fill_id: str, side: str, price: str, qty: str, fee: str, ts: int,
          coid: str = "a") -> dict[str, Any]:
    return {"fill_id": fill_id, "client_order_id": coid, "venue": "v", "instrument_id": "X",
            "side": side, "price": price, "quantity": qty, "fee": fee,
            "liquidity": "taker", "ts_ns": ts}


def _core(rows: list[dict[str, Any]]) -> Account:
    """The core's account (one book, ``alpha``) after ``rows``."""
    account = Account(D(1000), {"alpha": D(1000)})
    for row in rows:
        fill = Fill(row["fill_id"], row["client_order_id"], "v", "X", Side(row["side"]),
                    D(row["price"]), D(row["quantity"]), D(row["fee"]),
                    Liquidity(row["liquidity"]), row["ts_ns"])
        account.apply(fill)
        account.apply_to_books(fill, "alpha")
    return account


def test_a_fill_busted_whole_is_no_trade_and_the_money_is_the_accounts() -> None:
    """Before: Trades listed a round trip ``a-1`` -> ``a-1:bust`` of P&L 0 (the core
    counted none), and traded notional was 40 + the standing trade's, not the core's."""
    rows = [_fill("a-1", "buy", "10", "2", "0.02", 1),  # never happened
            _fill("a-1:bust", "sell", "10", "2", "-0.02", 2),
            _fill("a-2", "buy", "11", "1", "0.011", 3),
            _fill("a-3", "sell", "12.5", "1", "0.0125", 4),
            _fill("a-4", "buy", "12", "3", "0.036", 5),  # busted after a later fill:
            _fill("a-5", "sell", "13", "1", "0.013", 6),  # realised follows the fills
            _fill("a-4:bust", "sell", "12", "3", "-0.036", 7)]
    orders = {"a": {"strategy": "alpha", "reason": "r"}}
    book = build_books(rows, orders, {"X": D(13)})
    core_trips = metrics.round_trips(rows)
    assert [(t.opened_ns, t.closed_ns, t.pnl) for t in book.trades] == \
        [(t["opened_ns"], t["closed_ns"], t["pnl"]) for t in core_trips] == [(3, 4, D("1.4765"))]
    [open_position] = book.open_positions  # a-5's short: the busted a-4 never opened one
    assert open_position.quantity == -1 and open_position.opened_ns == 6
    account = _core(rows)
    [alpha] = book.strategies
    position = account.positions["X"]
    assert alpha.realised == position.realized_pnl  # the account's, fill for fill
    assert alpha.fees == account.fees_paid
    assert alpha.net == account.cash - D(1000) + position.quantity * 13
    standing = sum((D(r["price"]) * D(r["quantity"]) for r in metrics.standing(rows)), D(0))
    assert alpha.traded_notional == standing == D("36.5")
    assert alpha.n_fills == len(rows)  # every ledger row is still counted as a fill
