"""Everything the dashboard shows, read from a run's ledger, read-only.

Each read (:func:`reading`) opens its own read-only apsw connection, runs a handful of
short queries in one read transaction (so every figure comes from the same commit) and
closes it.  In WAL mode a reader never blocks the loop's writer, and no read transaction
outlives one call, so the WAL can always be checkpointed.  A finished run's ledger (no
writer, no ``-wal``) is read immutably and its folder left as it was
(:func:`argus_core.read_untouched`: a plain read-only connection left ``argus.db-wal``
and ``argus.db-shm`` there for good); beside a running writer it is read through its WAL.
Never the standard library's ``sqlite3``: two SQLite copies in one process drop each
other's POSIX locks (see argus_monitor).

Money and quantities are shown exactly as the ledger stores them (decimal text); only
drawdown, an analytic, is computed in floats.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import apsw

from argus_core import LEDGER_FILE, OrderStatus, TradingState, read_untouched

_T = TypeVar("_T")

#: Rows of each list a full read returns (newest first); the SSE stream adds the rest.
RECENT = 200
#: Points of the equity chart (the curve is thinned evenly; the newest point is kept).
CHART_POINTS = 1000

#: Open or partly filled orders (``OrderStatus.PENDING/OPEN/PARTIALLY_FILLED``).
WORKING_STATUSES = (OrderStatus.PENDING.value, OrderStatus.OPEN.value,
                    OrderStatus.PARTIALLY_FILLED.value)


def in_transaction(read: Callable[[apsw.Connection], _T]) -> Callable[[apsw.Connection], _T]:
    """``read`` run inside one read transaction: every figure from the same commit."""
    def wrapped(conn: apsw.Connection) -> _T:
        conn.execute("begin")
        try:
            return read(conn)
        finally:
            conn.execute("commit")
    return wrapped


def reading(run_dir: Path, read: Callable[[apsw.Connection], _T],
            busy_timeout_ms: int = 2000) -> _T:
    """``read(connection)`` on ``run_dir/argus.db`` in one read transaction, leaving a
    finished run's folder as it was (:func:`argus_core.read_untouched`: read immutably
    while no writer is there, again beside the writer if one came meanwhile).  ``read``
    may run twice: it must only read (or undo what it changed when it runs again)."""
    return read_untouched(Path(run_dir) / LEDGER_FILE, in_transaction(read), busy_timeout_ms)


def rows(conn: apsw.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of ``sql`` as dicts."""
    cursor = conn.execute(sql, params)
    try:
        names = [d[0] for d in cursor.getdescription()]
    except apsw.ExecutionCompleteError:
        return []
    return [dict(zip(names, row, strict=True)) for row in cursor]


def tables(conn: apsw.Connection) -> set[str]:
    """Names of the ledger's tables (plugins add theirs; show them only when present)."""
    return {str(r[0]) for r in conn.execute("select name from sqlite_master where type = 'table'")}


#: The core tables every read needs; a ledger still being created lacks some.
CORE_TABLES = frozenset({"runs", "orders", "fills", "positions", "equity", "risk_events",
                         "signals", "control"})


def ready(conn: apsw.Connection) -> bool:
    """Whether the core's schema is in place (not a ledger mid-creation)."""
    return tables(conn) >= CORE_TABLES


def trading_state(conn: apsw.Connection, adopted_after_id: int = 0) -> dict[str, Any]:
    """The trading-state latch: ``state``, ``reason``, ``flatten``, ``by`` and ``ts_ns``
    (ACTIVE with no reason while no one and nothing has set it), and ``adopted``: whether
    the run's loop has taken it up (see :func:`adopted`)."""
    row = conn.execute("select value, ts_ns from control where key = 'trading_state'"
                       ).fetchone()
    out: dict[str, Any] = {"state": TradingState.ACTIVE.value, "reason": "", "flatten": False,
                           "by": None, "ts_ns": None}
    if row is not None:
        out.update(_latch_fields(row[0]))
        out["ts_ns"] = row[1] if isinstance(row[1], int) else None
    out["adopted"] = adopted(conn, out, adopted_after_id)
    return out


def _latch_fields(raw: Any) -> dict[str, Any]:
    """The shown fields of a stored latch.  One the core cannot read either (no JSON
    object, no state of :class:`TradingState`: ``5``, ``[]``, a state that is an object)
    is ``unknown``, quoted in its reason: the page must still show, and any control
    replaces it (the core's rule, :func:`argus_core.request_trading_state`)."""
    try:
        data = json.loads(str(raw))
    except json.JSONDecodeError:
        data = None
    if not (isinstance(data, dict) and data.get("state") in _STATES):
        return {"state": "unknown", "reason": f"unreadable control row: {str(raw)[:200]!r}",
                "flatten": False, "by": None}
    by = data.get("by")
    return {"state": data["state"], "reason": str(data.get("reason") or ""),
            "flatten": bool(data.get("flatten")), "by": None if by is None else str(by)}


#: The states a latch may hold (a list: a stored ``[...]`` or ``{...}`` is no key).
_STATES = [s.value for s in TradingState]


def finite(text: Any) -> float | None:
    """A ledger's decimal text as a float for a chart or drawdown, or None when it is no
    finite number (``NaN``, ``1e400``, ``abc``): JSON has no NaN, and one odd row must
    not stop the page, the API or the stream."""
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def curve_values(curve: list[tuple[int, str, str, str]]) -> list[float]:
    """The finite equity values of ``curve`` (:func:`equity_curve`), for drawdown."""
    return [v for v in (finite(e) for _, _, e, _ in curve) if v is not None]


def curve_points(curve: list[tuple[int, str, str, str]]) -> list[list[Any]]:
    """``[ts_ns, equity]`` chart points of ``curve``, thinned; rows with no finite
    equity are left out of the chart (the figures show the text as stored)."""
    points = [[ts, finite(e)] for ts, _, e, _ in curve]
    return thin([p for p in points if p[1] is not None])


#: Who the loop names when it writes the latch itself (an escalation by a risk check).
LOOP_ACTOR = "argus"


def adopted(conn: apsw.Connection, state: dict[str, Any], after_id: int = 0) -> bool | None:
    """Whether the loop has taken up the latch ``state`` (:func:`trading_state`): None when
    no one has set one; True when the loop wrote it itself; otherwise whether the loop
    recorded adopting it, a ``control`` risk event at the latch's own time stamp with its
    state (the core's ``Ledger.record_control_adopted``).  A kill written while the loop
    is stopped, stuck, or between two commits is not adopted yet: the page says so.

    ``after_id``: look only at risk events after this id (a live stream knows the kill
    came after the events it had already seen; the scan runs newest first either way)."""
    if state["ts_ns"] is None:
        return None
    if state["by"] == LOOP_ACTOR:
        return True
    found = conn.execute(
        "select 1 from risk_events where id > ? and check_name = 'control' and ts_ns = ? "
        "and action = ? order by id desc limit 1",
        (after_id, state["ts_ns"], state["state"])).fetchone()
    return found is not None


def equity_curve(conn: apsw.Connection, since_ts_ns: int | None = None
                 ) -> list[tuple[int, str, str, str]]:
    """Equity rows ``(ts_ns, cash, equity, gross_exposure)``, oldest first."""
    sql = "select ts_ns, cash, equity, gross_exposure from equity"
    params: tuple[Any, ...] = ()
    if since_ts_ns is not None:
        sql, params = sql + " where ts_ns > ?", (since_ts_ns,)
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]))
            for r in conn.execute(sql + " order by ts_ns", params)]


def drawdown(values: list[float], peak: float = 0.0, max_dd: float = 0.0
             ) -> tuple[float, float, float]:
    """``(peak, current drawdown, max drawdown)`` of an equity series, as fractions of the
    running peak; ``peak`` and ``max_dd`` carry on from an earlier part of the series."""
    current = 0.0
    for v in values:
        peak = max(peak, v)
        current = (peak - v) / peak if peak > 0 else 0.0
        max_dd = max(max_dd, current)
    return peak, current, max_dd


def thin(points: list[Any], limit: int = CHART_POINTS) -> list[Any]:
    """At most ``limit`` evenly spaced points, the last one always among them."""
    if len(points) <= limit:
        return points
    step = len(points) / (limit - 1)
    return [points[int(i * step)] for i in range(limit - 1)] + [points[-1]]


def run_row(conn: apsw.Connection) -> dict[str, Any] | None:
    """The ``runs`` row (without its config text), or None before the run starts."""
    found = rows(conn, "select run_id, mode, seed, status, started_ns, ended_ns, config_hash "
                       "from runs order by started_ns desc limit 1")
    return found[0] if found else None


def last_write_age_s(run_dir: Path) -> float | None:
    """Seconds since the ledger (or its WAL) was last written: a health signal that does
    not depend on the run's simulated clock."""
    ages = []
    for name in (LEDGER_FILE, LEDGER_FILE + "-wal"):
        try:
            ages.append(time.time() - os.stat(Path(run_dir) / name).st_mtime)
        except OSError:
            continue
    return round(min(ages), 3) if ages else None


def high_water(conn: apsw.Connection) -> dict[str, Any]:
    """The marks the live stream compares against: what changed since the last look."""
    def one(sql: str) -> Any:
        row = conn.execute(sql).fetchone()
        return row[0] if row is not None else None

    return {
        "fills": one("select max(rowid) from fills") or 0,
        "equity": one("select max(ts_ns) from equity") or 0,
        "risk_events": one("select max(id) from risk_events") or 0,
        # Orders change status in place: count, newest row and total filled quantity of
        # the working ones together notice a new order, a fill and a cancel; the newest
        # order's rowid one that came and went between two looks (a count of every
        # order made each poll's cost grow with the run's history).
        "orders": [*(conn.execute(
            "select count(*), max(rowid), group_concat(status || ':' || filled_quantity) "
            "from orders where status in (?, ?, ?)", WORKING_STATUSES).fetchone() or ()),
            one("select max(rowid) from orders")],
        "positions": [one("select count(*) from positions"),
                      one("select max(ts_ns) from positions"),
                      one("select group_concat(quantity) from positions")],
        "control": one("select ts_ns || value from control where key = 'trading_state'"),
        "run": one("select status from runs limit 1"),
    }


def fills_since(conn: apsw.Connection, rowid: int, limit: int = RECENT) -> list[dict[str, Any]]:
    """Fills booked after ``rowid`` (oldest first, at most ``limit``: the newest)."""
    found = rows(conn, "select rowid as seq, fill_id, client_order_id, venue, instrument_id, "
                       "side, price, quantity, fee, liquidity, ts_ns from fills "
                       "where rowid > ? order by rowid desc limit ?", (rowid, limit))
    return found[::-1]


def risk_events_since(conn: apsw.Connection, event_id: int, limit: int = RECENT
                      ) -> list[dict[str, Any]]:
    """Risk events after ``event_id`` (oldest first, at most ``limit``: the newest)."""
    found = rows(conn, "select id, ts_ns, check_name, action, reason, instrument_id, strategy "
                       "from risk_events where id > ? order by id desc limit ?",
                 (event_id, limit))
    return found[::-1]


def working_orders(conn: apsw.Connection) -> list[dict[str, Any]]:
    """Open, pending and partly filled orders, oldest first."""
    return rows(conn, "select client_order_id, venue, instrument_id, side, quantity, "
                      "limit_price, order_type, time_in_force, strategy, ts_ns, status, "
                      "filled_quantity, reduce_only from orders where status in (?, ?, ?) "
                      "order by ts_ns, client_order_id", WORKING_STATUSES)


def positions(conn: apsw.Connection) -> list[dict[str, Any]]:
    """Every instrument's latest position (flat ones included: their realised P&L)."""
    return rows(conn, "select instrument_id, quantity, avg_price, realized_pnl, ts_ns "
                      "from positions order by instrument_id")


#: The tables whose rows :func:`summary` counts (append-only: a row's rowid never moves).
COUNTED = ("fills", "orders", "risk_events")


def count_rows(conn: apsw.Connection, table: str) -> int:
    """Every row of ``table`` (one of :data:`COUNTED`)."""
    return count_after(conn, table, 0)[0]


def count_after(conn: apsw.Connection, table: str, rowid: int) -> tuple[int, int]:
    """``(rows after rowid, the newest rowid or rowid)`` of ``table`` (:data:`COUNTED`): a
    range of the rowid b-tree, so a live stream counts only what is new."""
    if table not in COUNTED:
        raise ValueError(f"not a counted table: {table!r}")
    row = conn.execute(f"select count(*), max(rowid) from {table} where rowid > ?",
                       (rowid,)).fetchone()
    n, top = row if row is not None else (0, None)
    return int(n), int(top) if top is not None else rowid


def summary(conn: apsw.Connection, count: Callable[[apsw.Connection, str], int] = count_rows
            ) -> dict[str, Any]:
    """Counts (``count(conn, table)``, each table's rows) and the newest equity row."""
    last = conn.execute("select ts_ns, cash, equity, gross_exposure from equity "
                        "order by ts_ns desc limit 1").fetchone()
    return {
        "fills": count(conn, "fills"),
        "orders": count(conn, "orders"),
        "working_orders": len(working_orders(conn)),
        "risk_events": count(conn, "risk_events"),
        "equity_ts_ns": int(last[0]) if last else None,
        "cash": str(last[1]) if last else None,
        "equity": str(last[2]) if last else None,
        "gross_exposure": str(last[3]) if last else None,
    }


#: Each (signal, instrument)'s newest row: the primary key's index walked from one pair to
#: the next (two seeks a pair), then one seek for its newest time.  A grouping of the
#: whole table cost every signal ever published, on every poll a signal moved.
_LATEST_SIGNALS = """
with recursive pair(rid) as (
    select (select rowid from signals order by name, instrument_id limit 1)
    union all
    select coalesce(
        (select n.rowid from signals n where n.name = s.name
             and n.instrument_id > s.instrument_id order by n.name, n.instrument_id limit 1),
        (select n.rowid from signals n where n.name > s.name
             order by n.name, n.instrument_id limit 1))
    from pair join signals s on s.rowid = pair.rid)
select s.name, s.instrument_id, l.ts_ns, l.value
from pair join signals s on s.rowid = pair.rid
join signals l on l.rowid = (select n.rowid from signals n where n.name = s.name
                             and n.instrument_id = s.instrument_id
                             order by n.ts_ns desc limit 1)
order by s.name, s.instrument_id
"""


def signals(conn: apsw.Connection) -> list[dict[str, Any]]:
    """The latest value of each published signal (regimes are signals too)."""
    return rows(conn, _LATEST_SIGNALS)


def plugin_sections(conn: apsw.Connection, present: set[str]) -> dict[str, Any]:
    """The orchestrator's and the lab's tables, each only when the ledger has it."""
    out: dict[str, Any] = {}
    if "strategy_versions" in present:
        # What a rollback reinstates: the version a loop swapped this one in over
        # (orchestrator migration m002; a ledger no newer orchestrator opened lacks it).
        columns = {r[1] for r in conn.execute("pragma table_info(strategy_versions)")}
        replaced = "replaced_id" if "replaced_id" in columns else "null as replaced_id"
        out["strategy_versions"] = rows(
            conn, f"select version_id, slot, status, parent_id, {replaced}, model, cycle_id, "
                  "reason, created_ns, updated_ns from strategy_versions "
                  "order by created_ns, rowid")
    if "thoughts" in present:
        out["thoughts"] = rows(
            conn, "select thought_id, cycle_id, seq, purpose, model, status, stop_reason, "
                  "input_tokens, output_tokens, cost_usd, ts_ns, substr(prompt, 1, 2000) as "
                  "prompt, substr(response_text, 1, 4000) as response_text, error "
                  "from thoughts order by ts_ns desc, seq desc limit 50")
    if "lab_gate_verdicts" in present:
        out["lab_verdicts"] = _verdicts(conn)
    return out


def _verdicts(conn: apsw.Connection) -> list[dict[str, Any]]:
    return rows(conn, "select id, family, ts_ns, verdict, reasons_json, config_hash "
                      "from lab_gate_verdicts order by id desc limit 50")


def lab_verdicts(lab_db: Path) -> list[dict[str, Any]] | None:
    """The deploy-gate verdicts in a lab ledger (``[plugins.lab] dir``/lab.db), newest
    first; None when it has none."""
    if not Path(lab_db).is_file():
        return None

    def read(conn: apsw.Connection) -> list[dict[str, Any]] | None:
        return _verdicts(conn) if "lab_gate_verdicts" in tables(conn) else None
    return read_untouched(Path(lab_db), in_transaction(read), 2000)


#: A trading-state write made elsewhere, as an audit row: `argus kill`/`resume`, Telegram,
#: anything writing the latch (the core keeps every write in ``control_log``); the
#: dashboard's own writes (``via`` dashboard) and the loop's (``by`` argus) are left out.
_OTHERS_CONTROLS = """
select 'c' || id as id, ts_ns,
       case json_extract(value, '$.state')
           when 'halted' then iif(json_extract(value, '$.flatten'), 'kill_flatten', 'kill')
           when 'active' then 'resume' else json_extract(value, '$.state') end as action,
       coalesce(json_extract(value, '$.by'), 'a person') as actor,
       coalesce(json_extract(value, '$.reason'), '') as reason,
       json_object('trading_state', json(value)) as detail_json, 'done' as outcome
from control_log
where key = 'trading_state' and json_valid(value)
  and coalesce(json_extract(value, '$.by'), '') != 'argus'
  and coalesce(json_extract(value, '$.via'), '') != 'dashboard'
"""


def audit(conn: apsw.Connection, present: set[str], limit: int = 50) -> list[dict[str, Any]]:
    """Every person's control of the run, newest first: the dashboard's own audit trail
    and the trading-state writes made elsewhere (ids ``c<n>``: `argus kill`, Telegram)."""
    parts = []
    if "dashboard_audit" in present:
        parts.append("select cast(id as text) as id, ts_ns, action, actor, reason, "
                     "detail_json, outcome from dashboard_audit")
    if "control_log" in present:
        parts.append(_OTHERS_CONTROLS)
    if not parts:
        return []
    return rows(conn, f"select * from ({' union all '.join(parts)}) "
                      f"order by ts_ns desc, id desc limit ?", (limit,))


def audit_mark(conn: apsw.Connection, present: set[str]) -> tuple[Any, ...]:
    """What changes whenever :func:`audit` would."""
    return tuple(conn.execute(f"select max(id) from {t}").fetchall()[0][0]
                 for t in ("dashboard_audit", "control_log") if t in present)


def read_run(run_dir: Path, lab_db: Path | None = None) -> dict[str, Any]:
    """Everything the run page shows, from one commit of the ledger; the lab's verdicts
    from ``lab_db`` (a lab ledger) when the run's own ledger has none."""
    run_dir = Path(run_dir)
    if not (run_dir / LEDGER_FILE).exists():
        return {"ledger": False, "run_dir": str(run_dir)}

    def read(conn: apsw.Connection) -> tuple[dict[str, Any], list[tuple[int, str, str, str]]]:
        present = tables(conn)
        if not present >= CORE_TABLES:
            return {"ledger": False, "run_dir": str(run_dir)}, []
        return {
            "ledger": True, "run_dir": str(run_dir), "run": run_row(conn),
            "trading_state": trading_state(conn), "summary": summary(conn),
            "positions": positions(conn), "working_orders": working_orders(conn),
            "fills": fills_since(conn, 0)[::-1], "risk_events": risk_events_since(conn, 0)[::-1],
            "signals": signals(conn), "audit": audit(conn, present),
            "marks": high_water(conn), **plugin_sections(conn, present)}, equity_curve(conn)

    out, curve = reading(run_dir, read)
    if not out["ledger"]:
        return out
    values = curve_values(curve)
    peak, current, max_dd = drawdown(values)
    out["drawdown"] = {"peak": peak if values else None, "current": current, "max": max_dd}
    out["equity_curve"] = curve_points(curve)
    if "lab_verdicts" not in out and lab_db is not None:
        verdicts = lab_verdicts(lab_db)
        if verdicts is not None:
            out["lab_verdicts"] = verdicts
    out["health"] = {"last_write_age_s": last_write_age_s(run_dir),
                     "run_status": (out["run"] or {}).get("status")}
    return out
