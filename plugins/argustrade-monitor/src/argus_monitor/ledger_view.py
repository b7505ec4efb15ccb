"""Read a run's ledger from the scrape thread, read-only, on a connection of its own.

The hooks do not carry order statuses, risk events, equity or the trading state, so the
scrape thread reads what the loop has committed.  In WAL mode a reader never blocks the
loop's writer; each scrape opens and closes its own read-only connection, so no
connection is shared between threads and none can write.

The connection is apsw's, like the ledger's, never the standard library's ``sqlite3``:
two copies of SQLite in one process do not see each other's POSIX locks, so closing one
drops the other's, and its WAL index can be reset under the writer (SQLite's "How To
Corrupt" page, section 2.2; seen here as a bus error in the loop's thread).

A reader leaves the run directory as it found it.  SQLite's read-only connection to a
WAL database creates ``-wal`` and ``-shm`` files when none are there (its writer closed:
a finished run, whose final figures the monitor keeps serving) and, unable to
checkpoint, never removes them.  So while no ``-wal`` file exists the ledger is read as
``immutable`` (no lock, no file made) and the read is kept only when no writer appeared
meanwhile: no ``-wal`` file and the database file's size and time unchanged after it
(the core's ``read_untouched``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TypeVar, cast

import apsw
import attrs

from argus_core import LEDGER_FILE, LedgerError, RiskAction, TradingState, read_untouched

log = logging.getLogger(__name__)
_T = TypeVar("_T")
#: The trading state of a control row the monitor cannot read or does not know: the loop
#: may not trade as the three states say, so health is never ``ok`` on it.
UNKNOWN_STATE = "unknown"
_STATES = frozenset(state.value for state in TradingState)


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
    return read_untouched(path, _snapshot, int(timeout_s * 1000))


def _snapshot(conn: apsw.Connection) -> LedgerSnapshot:
    """The figures, read on ``conn`` in one read transaction (every figure from the same
    commit)."""
    conn.execute("begin")
    try:
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
    finally:
        conn.execute("commit")
    state = TradingState.ACTIVE.value if control is None else trading_state_of(control[0])
    cash = equity = gross = None
    if equity_row is not None:
        cash, equity, gross = (float(v) for v in equity_row)
    return LedgerSnapshot(equity, cash, gross, orders, fills, checks, vetoes, state)


def _count(conn: apsw.Connection, sql: str, params: tuple[str, ...] = ()) -> int:
    """The single count a ``select count(*)`` returns."""
    row = conn.execute(sql, params).fetchone()
    return int(cast(int, row[0])) if row is not None else 0


def trading_state_of(value: object) -> str:
    """The state of the control row's ``value``; :data:`UNKNOWN_STATE` when it is no JSON
    object or its state is none of :class:`TradingState`'s (``"HALTED"``, missing)."""
    try:
        latch = json.loads(str(value))
    except ValueError:
        return UNKNOWN_STATE
    state = latch.get("state") if isinstance(latch, dict) else None
    return state if isinstance(state, str) and state in _STATES else UNKNOWN_STATE


class LedgerView:
    """One run's ledger as the scrape threads read it (the collector and ``/health``).

    A ledger that cannot be read, or that existed and is gone (its run directory deleted
    or moved), is a :class:`LedgerError` naming the path, never an empty run; a ledger
    not there yet is one (a run being set up).  Each new error is logged once, at warning
    level, and its end once: a scrape every few seconds does not flood the log."""

    def __init__(self, run_dir: Path, timeout_s: float = 2.0) -> None:
        self.run_dir, self.timeout_s = Path(run_dir), timeout_s
        self.path = self.run_dir / LEDGER_FILE
        self._seen = self.path.exists()  # once there, its absence is an error
        self._last_error: str | None = None

    def read(self) -> LedgerSnapshot:
        """The latest committed figures, or a :class:`LedgerError` saying why not."""
        try:
            snapshot = self._read()
        except LedgerError as exc:
            if str(exc) != self._last_error:
                log.warning("monitor: %s", exc)
            self._last_error = str(exc)
            raise
        if self._last_error is not None:
            log.warning("monitor: the ledger %s is readable again", self.path)
            self._last_error = None
        return snapshot

    def _read(self) -> LedgerSnapshot:
        try:
            if not self.path.exists():
                if self._seen:
                    raise LedgerError(f"{self.path}: the run's ledger is gone (its run "
                                      f"directory deleted or moved?)")
                return LedgerSnapshot()
            self._seen = True
            return read_snapshot(self.run_dir, self.timeout_s)
        # damaged, foreign, unreadable (permissions), rows of an odd shape
        except (apsw.Error, OSError, ValueError, TypeError) as exc:
            raise LedgerError(f"{self.path} cannot be read: {type(exc).__name__}: {exc}"
                              ) from None
