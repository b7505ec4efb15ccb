"""Read a run's ledger from the bot's thread: read-only, one short connection per read.

The hooks carry fills, but not trading state changes, risk events, rollbacks or drift
alarms, so the bot reads what the loop (and the orchestrator, and the ML registry) have
committed, past a high-water mark per table.  In WAL mode a reader never blocks the loop's
writer.  The connection is apsw's, like the ledger's, never the standard library's
``sqlite3``: two SQLite copies in one process drop each other's POSIX locks
(``tests/test_one_sqlite.py``).

Writes (``/kill``, ``/resume``) do not happen here: they go through ``argus_core.Ledger``
exactly as ``argus kill`` does (:mod:`argus_telegram.commands`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import apsw
import attrs

from argus_core import LEDGER_FILE, OrderStatus, TradingState, open_read_only
from argus_telegram.outbox import Notice, fill_line

#: Order statuses that still work at the venue.
OPEN_STATUSES = (OrderStatus.PENDING.value, OrderStatus.OPEN.value,
                 OrderStatus.PARTIALLY_FILLED.value)
#: A risk event of this many or more of one check and action in one read is one line.
AGGREGATE_AFTER = 3
#: The loop's control key of the trading state latch (``argus kill`` writes it too).
CONTROL_STATE = "trading_state"


@contextlib.contextmanager
def read_only(run_dir: Path, timeout_s: float = 2.0) -> Iterator[apsw.Connection]:
    """A read-only connection to ``run_dir``'s ledger, one read transaction long."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no {LEDGER_FILE} (is the run started?)")
    # A live writer's ledger, so open_read_only, not read_untouched: the bot lives inside
    # `argus run`, from on_startup to on_shutdown (its last read included), and the loop's
    # own connection is open all that time (its -wal is there; the runner closes it after
    # on_shutdown).  read_untouched would find that WAL and read here all the same, and a
    # read it may repeat would move the watcher's marks twice.
    conn = open_read_only(path, int(timeout_s * 1000))
    try:
        # One read transaction: every figure of one answer comes from the same commit.
        conn.execute("begin")
        yield conn
        conn.execute("commit")
    finally:
        conn.close()


def rows(conn: apsw.Connection, sql: str, params: tuple[Any, ...] = ()
         ) -> list[dict[str, Any]]:
    """Rows of ``sql`` as dicts."""
    cursor = conn.execute(sql, params)
    try:
        names = [d[0] for d in cursor.getdescription()]
    except apsw.ExecutionCompleteError:
        return []
    return [dict(zip(names, row, strict=True)) for row in cursor]


def has_table(conn: apsw.Connection, name: str) -> bool:
    """Whether the ledger has table ``name`` (a plugin's tables exist once it ran)."""
    return conn.execute("select 1 from sqlite_master where type = 'table' and name = ?",
                        (name,)).fetchone() is not None


#: Who the loop names when it writes the latch itself (an escalation by a risk check).
LOOP_ACTOR = "argus"
#: The risk event check the loop records when it takes up a person's latch.
ADOPTED_CHECK = "control"


def adopted(conn: apsw.Connection) -> bool | None:
    """Whether the loop has taken up the latch as it stands: None when no one has set it;
    True when the loop wrote it or recorded adopting it (a ``control`` risk event at the
    latch's time stamp, with its state); False while a person's change waits for the
    loop's next commit (or the loop is stopped)."""
    row = conn.execute("select value, ts_ns from control where key = ?", (CONTROL_STATE,)
                       ).fetchone()
    if row is None:
        return None
    try:
        latch = json.loads(str(row[0]))
    except json.JSONDecodeError:
        return None
    if not isinstance(latch, dict):
        return None
    if latch.get("by") == LOOP_ACTOR:
        return True
    # Newest first: the loop records it right after the latch was written.
    found = conn.execute(
        "select 1 from risk_events where check_name = ? and ts_ns = ? and action = ? "
        "order by id desc limit 1", (ADOPTED_CHECK, row[1], latch.get("state"))).fetchone()
    return found is not None


def trading_state(conn: apsw.Connection) -> dict[str, Any]:
    """The trading state latch as stored (``{"state": "active"}`` while unset)."""
    row = conn.execute("select value from control where key = ?", (CONTROL_STATE,)
                       ).fetchone()
    if row is None:
        return {"state": TradingState.ACTIVE.value}
    try:
        value = json.loads(str(row[0]))
    except json.JSONDecodeError:
        return {"state": "unknown", "reason": "unreadable control row"}
    return value if isinstance(value, dict) else {"state": "unknown"}


def describe_state(latch: dict[str, Any]) -> str:
    """``HALTED (reason; flattening; by telegram:1/alice)`` as HTML."""
    parts = [escape(str(latch.get("reason") or ""))]
    if latch.get("flatten"):
        parts.append("flattening every position")
    if latch.get("by"):
        parts.append("by " + escape(str(latch["by"])))
    detail = "; ".join(p for p in parts if p)
    state = escape(str(latch.get("state", "unknown")).upper())
    return f"<b>{state}</b>" + (f" ({detail})" if detail else "")


#: At start-up, at most this many fills from before the bot started are listed (the
#: newest), the rest counted; likewise rollbacks and kinds of risk event.
LATE_FILLS = 10
LATE_ROLLBACKS = 10
LATE_RISK_GROUPS = 20


class MarksError(ValueError):
    """Delivered marks that do not fit this ledger (beyond its end)."""


@attrs.frozen
class Marks:
    """The watcher's high-water marks: what it has read (and, once saved, delivered).

    The latch is kept as the SHA-256 of its JSON text (a change is all that matters; its
    reason stays in the ledger, never in the marks file)."""

    latch_sha256: str | None
    risk_id: int
    strategy_event_id: int
    fill_rowid: int


def latch_digest(latch: str | None) -> str | None:
    """The SHA-256 (hex) of the latch's JSON text; None when no one has set it."""
    return None if latch is None else hashlib.sha256(latch.encode()).hexdigest()


@attrs.define
class LedgerWatcher:
    """Turns what was committed since the last :meth:`poll` into notices.

    High-water marks: the last ``risk_events.id``, ``strategy_events.id`` and ``fills``
    rowid seen, and the last trading-state latch (its JSON text: the loop stamps it with the
    simulated clock, so its ``ts_ns`` cannot order it).  :meth:`prime` sets them to what
    exists, so a resumed run does not replay its history, or, given the marks a previous
    bot delivered up to, tells what happened since, marked late."""

    run_dir: Path
    risk_id: int = 0
    strategy_event_id: int = 0
    fill_rowid: int = 0
    latch: str | None = None
    #: Fills listed by one poll at most (the newest; the rest are counted).
    max_fills: int = 500
    #: The trading state when :meth:`prime` read the ledger (a resumed run may start
    #: halted or reducing: the start notice says so, the watcher never would).
    start_state: dict[str, Any] = attrs.Factory(lambda: {"state": TradingState.ACTIVE.value})

    def marks(self) -> Marks:
        """The marks as they stand."""
        return Marks(latch_digest(self.latch), self.risk_id, self.strategy_event_id,
                     self.fill_rowid)

    def prime(self, since: Marks | None = None, late: str = "") -> list[Notice]:
        """Start from what the ledger holds now.  With ``since`` (the marks a previous bot
        delivered up to), also return notices of what was committed after them, each
        prefixed ``late`` (HTML): the trading state if it changed, a line per kind of risk
        event, the newest rollbacks and fills with a count of the rest.  ``MarksError``
        (nothing changed) when a mark lies beyond the ledger's end."""
        with read_only(self.run_dir) as conn:
            risk_id = _max_id(conn, "risk_events")
            events = has_table(conn, "strategy_events")
            strategy_event_id = _max_id(conn, "strategy_events") if events else 0
            fill_rowid = _max_rowid(conn, "fills")
            latch = _latch_text(conn)
            notices: list[Notice] = []
            if since is not None:
                for name, mark, end in (("risk_events id", since.risk_id, risk_id),
                                        ("strategy_events id", since.strategy_event_id,
                                         strategy_event_id),
                                        ("fills rowid", since.fill_rowid, fill_rowid)):
                    if mark > end:
                        raise MarksError(f"its {name} {mark} is beyond the ledger's end "
                                         f"({end}): not this run's ledger, or damaged")
                notices = _late_notices(conn, since, late, events)
            self.risk_id, self.strategy_event_id, self.fill_rowid = (
                risk_id, strategy_event_id, fill_rowid)
            self.latch = latch
            self.start_state = trading_state(conn)
        return notices

    def poll(self) -> list[Notice]:
        """Notices for state changes, risk events, drift alarms, rollbacks and fills since
        the last poll, in that order."""
        notices: list[Notice] = []
        with read_only(self.run_dir) as conn:
            latch = _latch_text(conn)
            if latch != self.latch:
                self.latch = latch
                notices.append(Notice("states", "🚦 Trading " + describe_state(
                    trading_state(conn)), critical=True))
            events = rows(conn, "select * from risk_events where id > ? order by id",
                          (self.risk_id,))
            if events:
                self.risk_id = int(events[-1]["id"])
            notices.extend(_risk_notices(events))
            if has_table(conn, "strategy_events"):
                changes = rows(conn, "select * from strategy_events where id > ? order by id",
                               (self.strategy_event_id,))
                if changes:
                    self.strategy_event_id = int(changes[-1]["id"])
                notices.extend(_rollback_notice(c) for c in changes
                               if c["to_status"] == "rolled_back")
            fills, total, self.fill_rowid = _fills_since(conn, self.fill_rowid,
                                                         self.max_fills)
            if total > len(fills):
                notices.append(Notice("fills", f"<i>({total - len(fills)} older fills "
                                               f"not listed: {total} at once)</i>"))
            notices.extend(Notice("fills", _fill_html(f)) for f in fills)
        return notices


def _rollback_notice(change: dict[str, Any], late: str = "") -> Notice:
    return Notice("rollbacks",
                  f"{late}↩️ <b>Rollback</b>: strategy version "
                  f"{escape(str(change['version_id']))} rolled back "
                  f"({escape(str(change['reason']))}; by {escape(str(change['actor']))})",
                  critical=True, late=bool(late))


def _fill_html(row: dict[str, Any]) -> str:
    return fill_line(row["side"], row["quantity"], row["instrument_id"], row["price"],
                     row["fee"], row["liquidity"])


def _fills_since(conn: apsw.Connection, mark: int, limit: int
                 ) -> tuple[list[dict[str, Any]], int, int]:
    """The newest ``limit`` fills after rowid ``mark`` in order, how many there are after
    it, and the new mark (only ``limit`` rows are read, however many there are)."""
    row = conn.execute("select count(*), max(rowid) from fills where rowid > ?", (mark,)
                       ).fetchone()
    if row is None or not row[0]:
        return [], 0, mark
    total, last = int(row[0]), int(row[1])
    newest = rows(conn, "select rowid as seq, * from fills where rowid > ? "
                        "order by rowid desc limit ?", (mark, limit))
    return newest[::-1], total, last


def _late_notices(conn: apsw.Connection, since: Marks, late: str, events: bool
                  ) -> list[Notice]:
    """What was committed after ``since``, bounded however much it is: the latch as it
    stands if it changed, one line per kind of risk event (the newest kinds), the newest
    rollbacks and fills with counts of the rest."""
    notices: list[Notice] = []
    if latch_digest(_latch_text(conn)) != since.latch_sha256:
        notices.append(Notice("states", f"{late}🚦 Trading "
                                        f"{describe_state(trading_state(conn))}",
                              critical=True, late=True))
    groups = rows(conn, "select check_name, action, count(*) as n, max(id) as last_id, "
                        "min(id) as first_id from risk_events where id > ? "
                        "group by check_name, action", (since.risk_id,))
    groups.sort(key=lambda g: int(g["last_id"]))
    if len(groups) > LATE_RISK_GROUPS:
        left = groups[:-LATE_RISK_GROUPS]
        notices.append(Notice("risk", f"{late}<i>({sum(int(g['n']) for g in left)} older "
                                      f"risk events of {len(left)} other kinds not listed)"
                                      f"</i>", late=True))
        groups = groups[-LATE_RISK_GROUPS:]
    groups.sort(key=lambda g: int(g["first_id"]))
    for group in groups:
        shown = rows(conn, "select * from risk_events where id > ? and check_name = ? and "
                           "action = ? order by id desc limit ?",
                     (since.risk_id, group["check_name"], group["action"],
                      AGGREGATE_AFTER - 1))[::-1]
        count = int(group["n"])
        if count >= AGGREGATE_AFTER:
            shown = shown[-1:]
        for notice in _risk_notices(shown, count):
            notices.append(attrs.evolve(notice, html=late + notice.html, late=True))
    if events:
        (count,) = conn.execute("select count(*) from strategy_events where id > ? and "
                                "to_status = 'rolled_back'", (since.strategy_event_id,)
                                ).fetchone() or (0,)
        newest = rows(conn, "select * from strategy_events where id > ? and to_status = "
                            "'rolled_back' order by id desc limit ?",
                      (since.strategy_event_id, LATE_ROLLBACKS))[::-1]
        if count > len(newest):
            notices.append(Notice("rollbacks", f"{late}<i>({count - len(newest)} older "
                                               f"rollbacks not listed)</i>", critical=True,
                                  late=True))
        notices.extend(_rollback_notice(c, late) for c in newest)
    fills, total, _ = _fills_since(conn, since.fill_rowid, LATE_FILLS)
    if fills:
        head = f"{late}{total} fill{'s' if total != 1 else ''}" + (
            f"; {total - len(fills)} older not listed, the newest {len(fills)}:"
            if total > len(fills) else ":")
        notices.append(Notice("fills", "\n".join([head, *map(_fill_html, fills)]),
                              late=True))
    return notices


def _max_id(conn: apsw.Connection, table: str) -> int:
    row = conn.execute(f"select coalesce(max(id), 0) from {table}").fetchone()
    return int(row[0]) if row is not None else 0


def _latch_text(conn: apsw.Connection) -> str | None:
    row = conn.execute("select value from control where key = ?", (CONTROL_STATE,)
                       ).fetchone()
    return None if row is None else str(row[0])


def _max_rowid(conn: apsw.Connection, table: str) -> int:
    row = conn.execute(f"select coalesce(max(rowid), 0) from {table}").fetchone()
    return int(row[0]) if row is not None else 0


def is_drift(check_name: str) -> bool:
    """Whether a risk event is a drift alarm (``ml_drift`` and any other ``*drift*``)."""
    return "drift" in check_name.lower()


def _risk_notices(events: list[dict[str, Any]], count: int | None = None) -> list[Notice]:
    """One line per event; a run of one check's vetoes (every intent while HALTED is one)
    is one line with its count and last reason.  ``count``: how many events of the one
    check and action in ``events`` there were (only the last few were read)."""
    groups: collections.OrderedDict[tuple[str, str], list[dict[str, Any]]] = (
        collections.OrderedDict())
    for event in events:
        groups.setdefault((str(event["check_name"]), str(event["action"])), []).append(event)
    notices: list[Notice] = []
    for (check, action), group in groups.items():
        n = len(group) if count is None else count
        if check == ADOPTED_CHECK:  # the loop took up a person's kill / resume: it holds
            more = f" (the last of {n})" if n > len(group) else ""
            notices.extend(Notice(
                "states", f"☑️ The loop adopted <b>{escape(action.upper())}</b> "
                          f"({escape(str(e['reason']))}){more}", critical=True)
                for e in group)
            continue
        drift = is_drift(check)
        kind, icon, label = ("drift", "📉", "Drift alarm") if drift else ("risk", "⚠️", "Risk")
        where = _where(group[-1])
        reason = escape(str(group[-1]["reason"]))
        if n >= AGGREGATE_AFTER:
            text = (f"{icon} <b>{label}</b> {escape(check)} {escape(action)} ×{n}"
                    f"{where}: last: {reason}")
        else:
            text = "\n".join(f"{icon} <b>{label}</b> {escape(check)} {escape(action)}"
                             f"{_where(e)}: {escape(str(e['reason']))}" for e in group)
        notices.append(Notice(kind, text, critical=drift))
    return notices


def _where(event: dict[str, Any]) -> str:
    bits = [str(event[k]) for k in ("instrument_id", "strategy") if event.get(k)]
    return f" [{escape(', '.join(bits))}]" if bits else ""


# -- answers to commands ------------------------------------------------------------------
def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def status(run_dir: Path) -> dict[str, Any]:
    """What ``/status`` shows: state (and whether the loop has adopted it), equity, open
    orders, fills, last event time."""
    with read_only(run_dir) as conn:
        latch = trading_state(conn)
        taken_up = adopted(conn)
        run = rows(conn, "select run_id, mode, status from runs limit 1")
        equity = rows(conn, "select ts_ns, cash, equity from equity order by ts_ns desc "
                            "limit 1")
        marks = ",".join("?" * len(OPEN_STATUSES))
        (open_orders,) = conn.execute(f"select count(*) from orders where status in ({marks})",
                                      OPEN_STATUSES).fetchone() or (0,)
        (fills, last_fill_ns) = conn.execute(
            "select count(*), max(ts_ns) from fills").fetchone() or (0, None)
    last = max((int(v) for v in (last_fill_ns, equity[0]["ts_ns"] if equity else None)
                if v is not None), default=None)
    return {"latch": latch, "adopted": taken_up, "run": run[0] if run else None,
            "equity": equity[0]["equity"] if equity else None,
            "cash": equity[0]["cash"] if equity else None,
            "open_orders": int(open_orders), "fills": int(fills), "last_event_ns": last}


def positions(run_dir: Path) -> list[dict[str, Any]]:
    """Open positions: instrument, quantity, average price, realised P&L."""
    with read_only(run_dir) as conn:
        held = rows(conn, "select instrument_id, quantity, avg_price, realized_pnl "
                          "from positions order by instrument_id")
    return [p for p in held if _dec(p["quantity"]) != 0]


def pnl(run_dir: Path) -> dict[str, Decimal | None]:
    """Realised and unrealised P&L and fees paid, exactly from the ledger.

    Realised P&L is the positions' (before fees; fees come off cash separately).  The
    open positions' market value is ``equity - cash``, so unrealised P&L is that less their
    cost (``quantity * avg_price``).  Total is equity against the starting cash."""
    with read_only(run_dir) as conn:
        held = rows(conn, "select quantity, avg_price, realized_pnl from positions")
        fees = rows(conn, "select fee from fills")
        equity = rows(conn, "select cash, equity from equity order by ts_ns desc limit 1")
        run = rows(conn, "select config_json from runs limit 1")
    realised = sum((_dec(p["realized_pnl"]) for p in held), Decimal(0))
    fees_paid = sum((_dec(f["fee"]) for f in fees), Decimal(0))
    unrealised = total = start = None
    if equity:
        cost = sum((_dec(p["quantity"]) * _dec(p["avg_price"]) for p in held), Decimal(0))
        unrealised = _dec(equity[0]["equity"]) - _dec(equity[0]["cash"]) - cost
    if run:
        with contextlib.suppress(KeyError, TypeError, ValueError, ArithmeticError):
            start = _dec(json.loads(str(run[0]["config_json"]))["run"]["starting_cash"])
    if equity and start is not None:
        total = _dec(equity[0]["equity"]) - start
    return {"realised": realised, "unrealised": unrealised, "fees": fees_paid,
            "total": total, "starting_cash": start}


def thoughts(run_dir: Path, limit: int = 5) -> list[dict[str, Any]] | None:
    """The orchestrator's latest thought spool entries, newest first; None when its tables
    do not exist in this ledger (the orchestrator is not running on this run)."""
    with read_only(run_dir) as conn:
        if not has_table(conn, "thoughts"):
            return None
        return rows(conn, "select cycle_id, seq, purpose, model, status, response_text, "
                          "error, ts_ns from thoughts order by ts_ns desc, seq desc limit ?",
                    (limit,))
