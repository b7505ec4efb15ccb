"""The version store: every strategy version ever proposed, in the ledger.

Statuses: ``candidate`` (being proven) -> ``rejected`` | ``shadow`` -> ``canary`` ->
``full``; a replaced full version becomes ``retired``; a failed one ``rolled_back``.
``requested:<status>`` rows record a person's promotion for a running loop to apply.
Every change is one ``strategy_events`` row with its reason and actor.

Text is stored redacted (:func:`argus_core.redact`): a trusted incumbent's module that
hard-codes a credential, a generated module holding a key-shaped string (it is rejected,
but stored first), a reviewer quoting one in its reasons.  The source's hash is of the
text as stored, so no hash of a secret sits beside the text it was cut from.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from typing import Any

from argus_core import ArgusError, Ledger, redact
from argus_orchestrator.errors import OrchestratorError

LIVE_STATUSES = ("canary", "full")


def source_hash(source: str) -> str:
    """sha256 of a strategy's source."""
    return hashlib.sha256(source.encode()).hexdigest()


def verified_source(row: dict[str, Any]) -> str:
    """A stored version's source, checked against its ``source_hash`` before it is built
    again (resumed, reinstated by a rollback, promoted by a person): a ledger changed
    outside Argus no longer brings in code that was never reviewed, validated or proven.
    ``OrchestratorError`` naming the version when they differ."""
    source = str(row["source"])
    if source_hash(source) != row["source_hash"]:
        raise OrchestratorError(f"version {row['version_id']}: its stored source does not "
                                f"match its source_hash (the ledger was changed outside "
                                f"Argus); not loaded")
    return source


class VersionStore:
    """Reads and writes ``strategy_versions`` and ``strategy_events``."""

    def __init__(self, ledger: Ledger, clock: Any = None) -> None:
        self.ledger = ledger
        self.clock = clock or (lambda: 0)

    def add(self, *, slot: str, source: str, parent_id: str | None, status: str,
            reason: str, prompt_hash: str | None = None, model: str | None = None,
            cycle_id: str | None = None, validation: dict[str, Any] | None = None) -> str:
        """Store a new version (redacted); returns its id (``<slot>-v<n>-<hash8>``)."""
        source, reason = redact(source), redact(reason)
        n = len(self.ledger.query("select 1 from strategy_versions where slot = ?", (slot,)))
        digest = source_hash(source)
        version_id = f"{slot}-v{n + 1:03d}-{digest[:8]}"
        now = self.clock()
        with self.ledger.transaction():
            self.ledger.insert("strategy_versions", {
                "version_id": version_id, "slot": slot, "source": source,
                "source_hash": digest, "parent_id": parent_id, "prompt_hash": prompt_hash,
                "model": model, "cycle_id": cycle_id, "status": status, "reason": reason,
                "validation_json": redact(json.dumps(validation)) if validation else None,
                "created_ns": now, "updated_ns": now})
            self.ledger.insert("strategy_events", {
                "version_id": version_id, "ts_ns": now, "from_status": None,
                "to_status": status, "reason": reason, "actor": "orchestrator"})
        return version_id

    def get(self, version_id: str) -> dict[str, Any]:
        """One version row; ``ArgusError`` naming the known ids when absent."""
        rows = self.ledger.query("select * from strategy_versions where version_id = ?",
                                 (version_id,))
        if not rows:
            known = ", ".join(r["version_id"] for r in self.list()) or "none"
            raise ArgusError(f"no strategy version {version_id!r} (known: {known})")
        return rows[0]

    def list(self, slot: str | None = None) -> list[dict[str, Any]]:
        """Versions, oldest first."""
        if slot is None:
            return self.ledger.query("select * from strategy_versions order by created_ns, "
                                     "rowid")
        return self.ledger.query("select * from strategy_versions where slot = ? order by "
                                 "created_ns, rowid", (slot,))

    # ``builtins.list``: the ``list`` method above shadows the builtin in this class body.
    def events(self, version_id: str) -> builtins.list[dict[str, Any]]:
        """Status history of one version."""
        return self.ledger.query("select * from strategy_events where version_id = ? "
                                 "order by id", (version_id,))

    def set_status(self, version_id: str, status: str, reason: str, *,
                   actor: str = "orchestrator", ts_ns: int | None = None,
                   expect: str | None = None, **json_fields: Any) -> bool:
        """Move a version to ``status`` (with optional gate/shadow/validation JSON), stamped
        ``ts_ns`` (default: the clock's now).  ``expect``: only from that status (a
        person's rollback from another process may have moved it since the caller
        looked); False, and nothing written, when it was not there."""
        reason = redact(reason)
        row = self.get(version_id)
        was = row["status"] if expect is None else expect
        now = self.clock() if ts_ns is None else ts_ns
        sets = {"status": status, "reason": reason, "updated_ns": now}
        for key, value in json_fields.items():
            sets[f"{key}_json"] = redact(json.dumps(value, sort_keys=True, default=str))
        cols = ", ".join(f"{k} = ?" for k in sets)
        # The compare and the set are one UPDATE (no read before the write inside a
        # deferred transaction, which another process's commit would make fail).
        where, args = ("version_id = ?", [version_id]) if expect is None else \
            ("version_id = ? and status = ?", [version_id, expect])
        with self.ledger.transaction() as conn:
            conn.execute(f"update strategy_versions set {cols} where {where}",
                         [*sets.values(), *args])
            if conn.changes() == 0:
                return False
            self.ledger.insert("strategy_events", {
                "version_id": version_id, "ts_ns": now, "from_status": was,
                "to_status": status, "reason": reason, "actor": actor})
        return True

    def active(self, slot: str) -> dict[str, Any] | None:
        """The version trading in ``slot`` (canary or full; the newest), if any."""
        rows = [r for r in self.list(slot) if r["status"] in LIVE_STATUSES]
        return rows[-1] if rows else None

    def request(self, version_id: str, to_status: str, reason: str, *, actor: str) -> None:
        """Record a person's promotion request for a running loop to apply."""
        self.set_status(version_id, f"requested:{to_status}", reason, actor=actor)

    def set_replaced(self, version_id: str, replaced_id: str) -> None:
        """Record that ``version_id`` took its slot from ``replaced_id`` (a running loop
        swapped it in): what a rollback of it reinstates."""
        with self.ledger.transaction() as conn:
            conn.execute("update strategy_versions set replaced_id = ? where version_id = ?",
                         (replaced_id, version_id))

    @staticmethod
    def fallback_of(row: dict[str, Any]) -> str | None:
        """What rolling back the version ``row`` reinstates: the version it replaced in
        the slot, else (never swapped in by a loop, or a ledger from before the column)
        its parent.  The parent alone is wrong where it never traded (its own swap
        failed) or was replaced before this version came in; the loop and a person's
        rollback then reinstated different versions, two of them ``full``."""
        return row.get("replaced_id") or row["parent_id"]

    def rollback(self, slot: str, reason: str, *, actor: str) -> tuple[str, str]:
        """Mark the slot's live version rolled back and the version it replaced full again,
        in one write transaction taken before the live version is read: read first, a
        running loop's promotion committed in between was rolled over (the version it
        retired marked rolled back, the one before it full beside the new one)."""
        with self.ledger.immediate():
            live = self.active(slot)
            if live is None:
                raise ArgusError(f"slot {slot!r} has no live AI version to roll back")
            target = self.fallback_of(live)
            if not target:
                raise ArgusError(f"{live['version_id']} has no parent version to roll back to")
            self.set_status(live["version_id"], "rolled_back", reason, actor=actor)
            self.set_status(target, "full", f"reinstated: {reason}", actor=actor)
        return live["version_id"], target
