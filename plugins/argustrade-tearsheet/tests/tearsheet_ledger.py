"""Helpers of the tearsheet tests: a constructed run ledger whose every figure is worked
out by hand in the tests.

Two strategies, starting cash 10,000:

* ``alpha`` trades BTC/USD: buys 1.0 in two partial fills (0.4 @ 100, fee 0.04; 0.6 @
  101, fee 0.06), sells 1.0 @ 110 (fee 0.11): net +9.19; then buys 1 @ 120 (fee 0.12)
  and sells 1 @ 115 (fee 0.115): net -5.235.
* ``beta`` trades ETH/USD: sells 2 @ 50 (fee 0.10), buys back 1 @ 45 (fee 0.045) and 1 @
  46 (fee 0.046), one order with two partial fills: net +8.809; then buys 1 @ 47 (fee
  0.047) and still holds it at the end, marked at 48.

The final equity row is 10,000 + 3.955 + 9.762 = 10,013.717.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from argus_core import Ledger

HOUR_NS = 3_600 * 10**9
T0 = 1_640_995_200 * 10**9  # 2022-01-01 00:00 UTC
STARTING_CASH = Decimal("10000")

#: (client order id, strategy, instrument, side, quantity, reason, ts hour)
ORDERS = [
    ("a1", "alpha", "BTC/USD", "buy", "1.0", "fast crossed above slow", 1),
    ("b1", "beta", "ETH/USD", "sell", "2", "short signal", 3),
    ("a2", "alpha", "BTC/USD", "sell", "1.0", "fast crossed below slow", 5),
    ("b2", "beta", "ETH/USD", "buy", "2", "cover", 6),
    ("b3", "beta", "ETH/USD", "buy", "1", "long again", 8),
    ("a3", "alpha", "BTC/USD", "buy", "1", "", 9),
    ("a4", "alpha", "BTC/USD", "sell", "1", "stop", 10),
]
#: (fill id, client order id, price, quantity, fee, ts hour)
FILLS = [
    ("f1", "a1", "100", "0.4", "0.04", 1),
    ("f2", "a1", "101", "0.6", "0.06", 2),
    ("f3", "b1", "50", "2", "0.10", 3),
    ("f4", "a2", "110", "1.0", "0.11", 5),
    ("f5", "b2", "45", "1", "0.045", 6),
    ("f6", "b2", "46", "1", "0.046", 7),
    ("f7", "b3", "47", "1", "0.047", 8),
    ("f8", "a3", "120", "1", "0.12", 9),
    ("f9", "a4", "115", "1", "0.115", 10),
]
#: hourly equity rows 0..10 (the last is the hand-computed final equity)
EQUITY = ["10000", "9999.9", "10000.2", "10001", "10003", "10009.09", "10015",
          "10012", "10011", "10010", "10013.717"]
#: rows with a position held going into the next hour (nothing is held from 7h to 8h)
EXPOSED_HOURS = {1, 2, 3, 4, 5, 6, 8, 9, 10}
FINAL_MARKS = {"ETH/USD": "48"}


def build_ledger(run_dir: Path, *, reason_column: bool = True,
                 config: dict[str, Any] | None = None) -> Path:
    """Write the constructed run into ``run_dir`` and return it."""
    orders = {o[0]: o for o in ORDERS}
    with Ledger.in_dir(run_dir) as ledger:
        cfg = config or {"run": {"starting_cash": str(STARTING_CASH)}}
        ledger.start_run("constructed", "replay", 0, json.dumps(cfg))
        with ledger.transaction():
            for coid, strategy, inst, side, qty, reason, hour in ORDERS:
                row = {"client_order_id": coid, "run_id": "constructed", "venue": "replay",
                       "instrument_id": inst, "side": side, "quantity": qty,
                       "order_type": "market", "time_in_force": "ioc", "strategy": strategy,
                       "ts_ns": T0 + hour * HOUR_NS, "status": "filled",
                       "filled_quantity": qty, "reason": reason}
                ledger.insert("orders", row)
            for fid, coid, price, qty, fee, hour in FILLS:
                o = orders[coid]
                ledger.insert("fills", {"fill_id": fid, "client_order_id": coid,
                                        "venue": "replay", "instrument_id": o[2],
                                        "side": o[3], "price": price, "quantity": qty,
                                        "fee": fee, "liquidity": "taker",
                                        "ts_ns": T0 + hour * HOUR_NS})
            ledger.append_equity([
                (T0 + h * HOUR_NS, "0", eq, "100" if h in EXPOSED_HOURS else "0")
                for h, eq in enumerate(EQUITY)])
            ledger.save_checkpoint("runner", 11, T0 + 10 * HOUR_NS,
                                   {"account": {"marks": FINAL_MARKS}})
        if not reason_column:
            # A ledger from before orders.reason existed (core migration 3).
            ledger.conn.execute("alter table orders drop column reason")
        ledger.finish_run("constructed")
    return run_dir
