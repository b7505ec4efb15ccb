"""Read a run's ledger from the scrape thread, read-only, on a connection of its own.

The hooks do not carry order statuses, risk events, equity or the trading state, so the
scrape thread reads what the loop has committed.  In WAL mode a reader never blocks the
loop's writer; each scrape opens and closes its own read-only connection, so no
connection is shared between threads and none can write.

The connection is apsw's, like the ledger's, never the standard library's ``sqlite3``:
two copies of SQLite in one process do not see each other's POSIX locks, so closing one
drops the other's, and its WAL index can be reset under the writer (SQLite's "How To
Corrupt" page, section 2.2; seen here as a bus error in the loop's thread).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import apsw
import attrs

from argus_core import LEDGER_FILE, RiskAction, TradingState, open_read_only


@attrs.frozen
class LedgerSnapshot:
    """What the ledger says about a run at one instant (committed rows only)."""

    equity: float | None = None
    cash: float | None = None
    gross_exposure: float | None = None
    orders_by_status: dict[str, int] = attrs.Factory(dict)
    fills: int = 0
    risk_events_by_check: dict[str, int] = attrs.Factory(dict)
    #: risk events whose action vetoed an intent (``RiskAction.VETO``)
    risk_vetoes: int = 0
    trading_state: str = TradingState.ACTIVE.value


def read_snapshot(run_dir: Path, timeout_s: float = 2.0) -> LedgerSnapshot:
    """The run's latest committed figures; an empty snapshot while no ledger exists."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.exists():
        return LedgerSnapshot()
    conn = open_read_only(path, int(timeout_s * 1000))
    try:
        # One read transaction: every figure below comes from the same commit.
        conn.execute("begin")
        equity_row = conn.execute(
            "select cash, equity, gross_exposure from equity order by ts_ns desc limit 1"
        ).fetchone()
        orders = {str(k): int(cast(int, n)) for k, n in conn.execute(
            "select status, count(*) from orders group by status")}
        fills = _count(conn, "select count(*) from fills")
        checks = {str(k): int(cast(int, n)) for k, n in conn.execute(
            "select check_name, count(*) from risk_events group by check_name")}
        vetoes = _count(conn, "select count(*) from risk_events where action = ?",
                        (RiskAction.VETO.value,))
        control = conn.execute(
            "select value from control where key = 'trading_state'").fetchone()
        conn.execute("commit")
    finally:
        conn.close()
    state = TradingState.ACTIVE.value
    if control is not None:
        state = str(json.loads(control[0]).get("state", state))
    cash = equity = gross = None
    if equity_row is not None:
        cash, equity, gross = (float(v) for v in equity_row)
    return LedgerSnapshot(equity, cash, gross, orders, fills, checks, vetoes, state)


def _count(conn: apsw.Connection, sql: str, params: tuple[str, ...] = ()) -> int:
    """The single count a ``select count(*)`` returns."""
    row = conn.execute(sql, params).fetchone()
    return int(cast(int, row[0])) if row is not None else 0
