"""Each scanner finding followed from the scan to its P&L.

An executable opportunity is sent as one basket whose orders carry its id
(``orders.basket_id``); the engine's unwind of an incomplete basket carries it too.  Its
P&L is the cash of every fill of those orders (price x quantity, signed, less fees) plus
what the basket still holds, valued where the instrument settled (its settlement fill's
price) or, while it is open, at the run's last mark.  Research findings are listed with
no orders: they are never traded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import attrs

from argus_tearsheet.run_data import RunData

ZERO = Decimal(0)


@attrs.frozen
class FollowedOpportunity:
    """One finding, what was sent for it and what it made."""

    opportunity_id: str
    scanner: str
    ts_ns: int
    kind: str
    lane: str
    status: str
    expected_profit: Decimal
    orders: int
    fills: int
    fees: Decimal
    #: cash of the fills plus the held rest at settlement (or mark); None: nothing filled
    pnl: Decimal | None
    #: instruments still held by the basket and not settled (valued at the last mark)
    open_instruments: tuple[str, ...]


def follow(data: RunData) -> list[FollowedOpportunity]:
    """Every recorded opportunity with its orders, fills, fees and P&L."""
    settle_price: dict[str, Decimal] = {}
    for fill in data.fills:
        if fill["liquidity"] == "settlement":
            settle_price[fill["instrument_id"]] = Decimal(fill["price"])
    orders_of: dict[str, list[str]] = defaultdict(list)
    for coid, order in data.orders.items():
        if order.get("basket_id"):
            orders_of[order["basket_id"]].append(coid)
    fills_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fill in data.fills:
        fills_of[fill["client_order_id"]].append(fill)
    out = []
    for row in data.opportunities:
        oid = row["opportunity_id"]
        coids = orders_of.get(oid, [])
        fills = [f for coid in coids for f in fills_of.get(coid, [])]
        cash, fees = ZERO, ZERO
        held: dict[str, Decimal] = defaultdict(Decimal)
        for f in fills:
            sign = 1 if f["side"] == "buy" else -1
            qty, price, fee = Decimal(f["quantity"]), Decimal(f["price"]), Decimal(f["fee"])
            cash -= sign * price * qty + fee
            fees += fee
            held[f["instrument_id"]] += sign * qty
        value, still_open = ZERO, []
        for iid, qty in held.items():
            if qty == 0:
                continue
            if iid in settle_price:
                value += qty * settle_price[iid]
            else:
                value += qty * data.marks.get(iid, ZERO)
                still_open.append(iid)
        lane = str(json.loads(row["body_json"]).get("lane", "executable"))
        out.append(FollowedOpportunity(
            oid, row["scanner"], int(row["ts_ns"]), row["kind"], lane, row["status"],
            Decimal(row["expected_profit"]), len(coids), len(fills), fees,
            cash + value if fills else None, tuple(sorted(still_open))))
    return out
