"""Helpers for tests of code built on this plugin: constructed CLOB book payloads.

``make_book`` builds a book payload exactly as the venue serves it (levels
worst to best, string values) with the hash the venue would compute, so a
local server can serve constructed books that pass the client's checks.
"""

from __future__ import annotations

import json
from typing import Any

from py_clob_client_v2.clob_types import OrderBookSummary, OrderSummary
from py_clob_client_v2.utilities import generate_orderbook_summary_hash

#: The public Hardhat/Anvil account #0 key (throwaway; used by upstream tests too).
HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def make_book(token: str, market: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
              *, tick: str = "0.01", min_size: str = "5", neg_risk: bool = True,
              timestamp: str = "1786875382652", last: str = "0.5") -> dict[str, Any]:
    """A constructed book payload; ``bids``/``asks`` are given best first."""
    raw: dict[str, Any] = {
        "market": market, "asset_id": token, "timestamp": timestamp, "hash": "",
        "bids": [{"price": p, "size": s} for p, s in reversed(bids)],
        "asks": [{"price": p, "size": s} for p, s in reversed(asks)],
        "min_order_size": min_size, "tick_size": tick, "neg_risk": neg_risk,
        "last_trade_price": last}
    summary = OrderBookSummary(
        market=market, asset_id=token, timestamp=timestamp,
        bids=[OrderSummary(price=b["price"], size=b["size"]) for b in raw["bids"]],
        asks=[OrderSummary(price=a["price"], size=a["size"]) for a in raw["asks"]],
        min_order_size=min_size, tick_size=tick, neg_risk=neg_risk, last_trade_price=last)
    raw["hash"] = generate_orderbook_summary_hash(summary)
    return raw


def tokens_of(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(condition id, YES token, NO token) per market of a Gamma event payload."""
    out = []
    for m in event["markets"]:
        yes, no = json.loads(m["clobTokenIds"])
        out.append((m["conditionId"], yes, no))
    return out
