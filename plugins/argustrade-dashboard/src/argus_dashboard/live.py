"""What changed in a ledger since the last look: the server-sent events' payloads.

:class:`LiveCursor` keeps high-water marks (fill rowid, equity time stamp, risk event
id) and fingerprints of what changes in place (working orders, positions, the trading
state, the audit trail, strategy versions).  Each :meth:`LiveCursor.poll` is one short
read-only transaction (:func:`argus_dashboard.ledger_view.reading`) and answers only
the events whose data changed; the first poll answers every whole-section event, so a
page that connects late is brought up to date.

A quiet poll costs the same on a run of a day or of a year: every mark is the newest
row of an index, counts carry on from the last poll's, and the adoption of a latch is
looked for only among the risk events written since the last look.  A ledger deleted or
replaced between two polls (its marks went back, or another run's) answers ``reset``: a
client drops what it has (the page reloads) and the stream follows the new ledger.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import apsw

from argus_core import LEDGER_FILE
from argus_dashboard import ledger_view as lv


class LiveCursor:
    """Where one live stream has got to in one run's ledger."""

    def __init__(self, run_dir: Path, *, fills: int | None = None, equity: int | None = None,
                 risk_events: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        #: None: start from the ledger's current end (only what is new from now on).
        self.fills, self.equity, self.risk_events = fills, equity, risk_events
        self._start()

    def _start(self) -> None:
        """Nothing seen yet (a new stream, or a ledger replaced under it)."""
        self._seen: dict[str, Any] = {}
        self._peak: float = 0.0
        self._max_dd: float = 0.0
        self._current_dd: float = 0.0
        self._curve_read = False
        #: The latch as last seen, whether the loop had adopted it, and the newest risk
        #: event id already searched for its adoption (it can only come after).
        self._control: Any = None
        self._adopted: bool | None = None
        self._adoption_floor = 0
        self._risk_max = 0
        #: Per counted table (ledger_view.COUNTED): (rows counted, the newest rowid).
        self._counts: dict[str, tuple[int, int]] = {}
        #: Which ledger this is: the file's inode and its run's id (None: none read yet).
        self._ledger: tuple[int, Any] | None = None
        self._gone = False

    def poll(self) -> list[tuple[str, Any]]:
        """``(event name, data)`` for everything that changed since the last poll."""
        path = self.run_dir / LEDGER_FILE
        if not path.exists():
            if self._ledger is None or self._gone:
                return []
            self._gone = True  # said once; the page then says there is no ledger
            return [("reset", {"why": "the ledger is gone"})]
        saved = {**vars(self), "_seen": dict(self._seen), "_counts": dict(self._counts)}

        def attempt(conn: apsw.Connection) -> list[tuple[str, Any]]:
            # A read may run twice (a writer came meanwhile): each starts from the same
            # cursor, so the second never skips what the first had marked as sent.
            vars(self).update({**saved, "_seen": dict(saved["_seen"]),
                               "_counts": dict(saved["_counts"])})
            return self._poll(conn, os.stat(path).st_ino)

        out = lv.reading(self.run_dir, attempt)
        for i, (name, data) in enumerate(out):
            if name == "state":
                data["health"]["last_write_age_s"] = lv.last_write_age_s(self.run_dir)
                out[i] = (name, data)
        return out

    def _replaced(self, conn: apsw.Connection, inode: int, marks: dict[str, Any]) -> bool:
        """Whether this ledger is not the one the cursor followed: another file, another
        run, or marks that went back (a copy restored over it)."""
        run = conn.execute("select run_id from runs order by started_ns, rowid limit 1"
                           ).fetchone()
        ledger = (inode, run[0] if run else None)
        known, self._ledger = self._ledger, ledger
        # (also on the first poll: a client's marks from a page of the ledger before)
        newest = {"fills": marks["fills"], "equity": marks["equity"],
                  "risk_events": marks["risk_events"], "orders": marks["orders"][-1] or 0}
        went_back = any(mark is not None and newest[name] < mark for name, mark in (
            ("fills", self.fills), ("equity", self.equity), ("risk_events", self.risk_events),
            *((table, top) for table, (_, top) in self._counts.items())))
        return self._gone or went_back or (known is not None and known != ledger)

    def _count(self, conn: apsw.Connection, table: str) -> int:
        """``table``'s rows: those counted before, plus those written since."""
        counted, top = self._counts.get(table, (0, 0))
        new, top = lv.count_after(conn, table, top)
        self._counts[table] = (counted + new, top)
        return counted + new

    def _poll(self, conn: apsw.Connection, inode: int) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        present = lv.tables(conn)
        if not present >= lv.CORE_TABLES:
            return []  # the ledger is being created
        marks = lv.high_water(conn)
        if self._replaced(conn, inode, marks):
            ledger = self._ledger
            self.fills = self.equity = self.risk_events = None
            self._start()
            self._ledger = ledger
            why = "the ledger was replaced"
            out.append(("reset", {"why": why}))
        if not self._curve_read:
            # Drawdown needs the whole curve once; later polls carry it on.
            values = lv.curve_values(lv.equity_curve(conn))
            self._peak, self._current_dd, self._max_dd = lv.drawdown(values)
            self._curve_read = True
            if self.equity is None:
                self.equity = marks["equity"]
        if self.fills is None:
            self.fills = marks["fills"]
        if self.risk_events is None:
            self.risk_events = marks["risk_events"]
        if marks["equity"] != self.equity:
            rows = lv.equity_curve(conn, self.equity)
            if rows:
                self._peak, self._current_dd, self._max_dd = lv.drawdown(
                    lv.curve_values(rows), self._peak, self._max_dd)
                self.equity = rows[-1][0]
                out.append(("equity", {"points": lv.curve_points(rows), "mark": self.equity}))
        if marks["fills"] != self.fills:
            fills = lv.fills_since(conn, self.fills or 0)
            if fills:
                self.fills = int(fills[-1]["seq"])
                out.append(("fills", {"rows": fills, "mark": self.fills}))
        if marks["risk_events"] != self.risk_events:
            events = lv.risk_events_since(conn, self.risk_events or 0)
            if events:
                self.risk_events = int(events[-1]["id"])
                out.append(("risk_events", {"rows": events, "mark": self.risk_events}))
        self._whole(out, "orders", marks["orders"], lambda: lv.working_orders(conn))
        self._whole(out, "positions", marks["positions"], lambda: lv.positions(conn))
        self._whole(out, "audit", lv.audit_mark(conn, present), lambda: lv.audit(conn, present))
        if "strategy_versions" in present:
            versions_mark = conn.execute("select count(*), max(updated_ns) from "
                                         "strategy_versions").fetchone()
            self._whole(out, "strategy_versions", versions_mark, lambda: lv.plugin_sections(
                conn, {"strategy_versions"})["strategy_versions"])
        # (signals are upserted: a replaced row gets a new rowid, so the newest rowid moves)
        signals_mark = conn.execute("select max(rowid) from signals").fetchone()
        self._whole(out, "signals", signals_mark, lambda: lv.signals(conn))
        state = None
        if marks["control"] != self._control or "state" not in self._seen:
            self._control = marks["control"]
            self._adoption_floor = self._risk_max  # the latch came after that poll
            state = lv.trading_state(conn, self._adoption_floor)
        elif self._adopted is False:  # a person's change the loop has not taken up
            state = lv.trading_state(conn, self._adoption_floor)
        if state is not None:
            self._adopted = state["adopted"]
            if self._adopted is False:  # searched up to here: next time, only what is new
                self._adoption_floor = marks["risk_events"]
        state_mark = (marks["control"], marks["run"], self._adopted)
        if state_mark != self._seen.get("state"):
            self._seen["state"] = state_mark
            out.append(("state", {"trading_state": state or lv.trading_state(
                conn, self._adoption_floor), "health": {"run_status": marks["run"],
                                                        "last_write_age_s": None}}))
        self._risk_max = marks["risk_events"]
        if out or "summary" not in self._seen:
            self._seen["summary"] = True
            out.append(("summary", {"summary": lv.summary(conn, self._count), "drawdown": {
                "peak": self._peak or None, "current": self._current_dd,
                "max": self._max_dd}}))
        return out

    def _whole(self, out: list[tuple[str, Any]], name: str, mark: Any, read: Any) -> None:
        """Send section ``name`` whole when its fingerprint moved (always the first time)."""
        mark = list(mark) if isinstance(mark, tuple) else mark
        if name in self._seen and self._seen[name] == mark:
            return
        self._seen[name] = mark
        out.append((name, {"rows": read()}))
