"""The thought spool: every model call's full prompt, response, model, tokens, cost and
cycle id, in the ledger (table ``thoughts``), plus cycle rows and daily budget totals.

Text is redacted (:func:`argus_core.secrets.redact`) before it is stored: a key-shaped
string never reaches the spool even if a response contains one; a row's ``prompt_hash``
is of the stored (redacted) prompt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any, cast

import attrs

from argus_core import Ledger, redact


def prompt_hash(system: str, prompt: str) -> str:
    """sha256 of the exact prompt pair (stored with every version the prompt produced)."""
    return hashlib.sha256(f"{system}\x00{prompt}".encode()).hexdigest()


@attrs.frozen
class Thought:
    """One model call as stored."""

    thought_id: str
    cycle_id: str
    seq: int
    purpose: str
    model: str
    system_prompt: str
    prompt: str
    response_text: str | None
    response_json: str | None
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    status: str  # ok | error | refused | budget
    error: str | None
    request_id: str | None
    ts_ns: int


class ThoughtSpool:
    """Reads and writes thoughts, cycles and budgets in a run's ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # Rows written inside a transaction someone else commits (a replay's cycle writes
        # through the loop's connection): kept until the next cycle starts, so that a
        # process stopped before that commit can write them again (:meth:`save_pending`).
        self.pending_thoughts: list[tuple[dict[str, Any], str, int | None]] = []
        self.pending_cycles: list[dict[str, Any]] = []

    def next_seq(self, cycle_id: str) -> int:
        """The next call number within ``cycle_id``."""
        rows = self.ledger.query("select coalesce(max(seq), 0) as n from thoughts "
                                 "where cycle_id = ?", (cycle_id,))
        return int(rows[0]["n"]) + 1

    def record(self, t: Thought, *, day: str, day_ns: int | None = None) -> None:
        """Store ``t`` and add its tokens and cost to the day's and the cycle's totals.
        ``day_ns``: the time (the day budget's clock) ``day`` was read at, kept as the
        day's ``last_ns`` when it is the latest (see :meth:`latest_day_ns`)."""
        row = attrs.asdict(t)
        for key in ("system_prompt", "prompt", "response_text", "response_json", "error"):
            if row[key] is not None:
                row[key] = redact(row[key])
        # Of the text as stored: a refused prompt's hash, of the text with its secret,
        # beside the redacted text made the missing part guessable offline.  A prompt
        # that was sent held no secret, so its hash is that of what was sent.
        row["prompt_hash"] = prompt_hash(row["system_prompt"], row["prompt"])
        if self.ledger.in_transaction:
            self.pending_thoughts.append((row, day, day_ns))
        self._write_thought(row, day, day_ns)

    def _write_thought(self, row: dict[str, Any], day: str, day_ns: int | None = None
                       ) -> None:
        """Insert a thought's row and add its tokens and cost to its day and its cycle."""
        tokens = int(row["input_tokens"]) + int(row["output_tokens"])
        cost = Decimal(row["cost_usd"])
        with self.ledger.transaction() as conn:
            self.ledger.insert("thoughts", row)
            # Exact decimal sums (SQLite has no decimal type): read, add, write back.
            prev = conn.execute("select calls, tokens, cost_usd, last_ns from budgets "
                                "where day = ?", (day,)).fetchall()
            calls, spent_tokens, spent = 0, 0, Decimal(0)
            last_ns = day_ns
            if prev:
                # cast: budgets is (calls integer, tokens integer, cost_usd text) not null.
                calls, spent_tokens = cast(int, prev[0][0]), cast(int, prev[0][1])
                spent = Decimal(cast(str, prev[0][2]))
                was = cast("int | None", prev[0][3])
                if was is not None and (last_ns is None or was > last_ns):
                    last_ns = was
            conn.execute("insert or replace into budgets (day, calls, tokens, cost_usd, "
                         "last_ns) values (?, ?, ?, ?, ?)",
                         (day, calls + 1, spent_tokens + tokens, str(spent + cost), last_ns))
            cycle_id = row["cycle_id"]
            conn.execute("update orchestrator_cycles set tokens = tokens + ? where cycle_id = ?",
                         (tokens, cycle_id))
            cyc = conn.execute("select cost_usd from orchestrator_cycles where cycle_id = ?",
                               (cycle_id,)).fetchall()
            if cyc:
                conn.execute("update orchestrator_cycles set cost_usd = ? where cycle_id = ?",
                             # cast: orchestrator_cycles.cost_usd is text not null.
                             (str(Decimal(cast(str, cyc[0][0])) + cost), cycle_id))

    def day_totals(self, day: str) -> tuple[int, Decimal]:
        """(tokens, cost) spent on ``day``."""
        rows = self.ledger.query("select tokens, cost_usd from budgets where day = ?", (day,))
        if not rows:
            return 0, Decimal(0)
        return int(rows[0]["tokens"]), Decimal(rows[0]["cost_usd"])

    def latest_day_ns(self) -> int | None:
        """The latest time any call was charged at (the day budget's clock, nanoseconds):
        a day's ``last_ns``, or, for a row written before that column, the start of its
        day.  None when no call was ever charged."""
        latest = None
        for row in self.ledger.query("select day, last_ns from budgets"):
            ns = row["last_ns"]
            if ns is None:
                try:
                    start = dt.datetime.fromisoformat(str(row["day"])).replace(tzinfo=dt.UTC)
                except ValueError:
                    continue  # not a day written by this spool
                ns = int(start.timestamp()) * 10**9
            if latest is None or int(ns) > latest:
                latest = int(ns)
        return latest

    def cycle_totals(self, cycle_id: str) -> tuple[int, Decimal]:
        """(tokens, cost) spent in ``cycle_id`` (summed from the thoughts themselves)."""
        rows = self.ledger.query("select input_tokens + output_tokens as n, cost_usd "
                                 "from thoughts where cycle_id = ?", (cycle_id,))
        return (sum(int(r["n"]) for r in rows),
                sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0)))

    def thoughts(self, cycle_id: str) -> list[dict[str, Any]]:
        """Every thought of ``cycle_id`` in call order."""
        return self.ledger.query("select * from thoughts where cycle_id = ? order by seq",
                                 (cycle_id,))

    def cycles(self) -> list[dict[str, Any]]:
        """Every cycle, oldest first."""
        return self.ledger.query("select * from orchestrator_cycles order by started_ns, "
                                 "cycle_id")

    def start_cycle(self, cycle_id: str, slot: str, ts_ns: int, incumbent_id: str | None,
                    benchmarks_json: str | None) -> None:
        """Insert the cycle's row (status ``running``).  The rows kept for
        :meth:`save_pending` are forgotten: the last cycle's were committed with the event
        that collected it, before this one could start."""
        self.pending_thoughts, self.pending_cycles = [], []
        row = {"cycle_id": cycle_id, "slot": slot, "started_ns": ts_ns, "status": "running",
               "incumbent_id": incumbent_id, "benchmarks_json": benchmarks_json}
        if self.ledger.in_transaction:
            self.pending_cycles.append(row)
        with self.ledger.transaction():
            self.ledger.insert("orchestrator_cycles", row)

    def set_benchmarks(self, cycle_id: str, benchmarks_json: str) -> None:
        """Store the truth benchmarks the cycle was started with (its row is written
        before they are computed)."""
        for cycle in self.pending_cycles:
            if cycle["cycle_id"] == cycle_id:
                cycle["benchmarks_json"] = benchmarks_json
        with self.ledger.transaction() as conn:
            conn.execute("update orchestrator_cycles set benchmarks_json = ? where "
                         "cycle_id = ?", (benchmarks_json, cycle_id))

    def save_pending(self, ledger: Ledger) -> int:
        """Write again, through ``ledger`` (a connection of its own), the model calls and
        cycles this spool wrote inside a transaction that was abandoned: a replay's
        process stopped (Ctrl-C, SIGTERM) in the middle of a cycle, and the loop rolled
        its open transaction back.  The calls were made, and with a live transport paid
        for: lost, the budgets did not count them after the restart.  A cycle written
        again is ``finished``/``failed`` ("the process stopped during the cycle"), so the
        resumed run counts it and numbers the next one after it.  Rows the ledger holds
        already (committed after all) are left.  Returns how many thoughts were written."""
        written = 0
        with ledger.transaction():
            for cycle in self.pending_cycles:
                if not ledger.query("select 1 from orchestrator_cycles where cycle_id = ?",
                                    (cycle["cycle_id"],)):
                    ledger.insert("orchestrator_cycles", {
                        **cycle, "status": "finished", "outcome": "failed",
                        "ended_ns": cycle["started_ns"],
                        "reason": "the process stopped during the cycle"})
            spool = ThoughtSpool(ledger)
            for row, day, day_ns in self.pending_thoughts:
                if not ledger.query("select 1 from thoughts where thought_id = ?",
                                    (row["thought_id"],)):
                    spool._write_thought(row, day, day_ns)
                    written += 1
        self.pending_thoughts, self.pending_cycles = [], []
        return written

    def finish_cycle(self, cycle_id: str, ts_ns: int, outcome: str, reason: str,
                     candidate_id: str | None) -> None:
        """Close the cycle's row with its outcome and reason."""
        with self.ledger.transaction() as conn:
            conn.execute("update orchestrator_cycles set ended_ns = ?, status = 'finished', "
                         "outcome = ?, reason = ?, candidate_id = ? where cycle_id = ?",
                         (ts_ns, outcome, redact(reason), candidate_id, cycle_id))
