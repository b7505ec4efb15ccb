"""The dashboard's controls: who may act (tokens) and what an action writes.

Kill, kill-and-flatten and resume write the trading-state latch exactly as ``argus
kill`` / ``argus resume`` do, plus ``"by"`` (the token's holder); the running loop adopts
it at its next commit (and records a ``control`` risk event of what it adopted: only the
last of two changes between its commits).  The row is overwritten by the next action,
so every action also appends a row to ``dashboard_audit`` (who, what, why,
when, outcome) in the same transaction: the trail lives in the run's own ledger, next
to what it explains, and survives the control row.  The table is the plugin's
migration set ``dashboard`` (applied when this process opens the ledger to write).

Promote and roll back go through the orchestrator's version store (as ``argus
strategies promote|rollback`` do), with the token's holder as the actor; they exist
only where the orchestrator is installed and the run's ledger has its tables.
"""

from __future__ import annotations

import hmac
import importlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apsw
import attrs

from argus_core import (
    LEDGER_FILE,
    ArgusError,
    ConfigError,
    Ledger,
    LedgerError,
    Migrations,
    Secret,
    check_run_ledger,
    clean_reason,
    left_open_by_resume,
    left_open_text,
    request_trading_state,
)

#: Every control, by the name its URL and button use.
ACTIONS = ("kill", "kill_flatten", "resume", "promote", "rollback")
#: The statuses a person may promote a version to (as ``argus strategies promote --to``).
PROMOTE_TO = ("shadow", "canary", "full")
_HOLDER = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: The holder of a token given without a name.
DEFAULT_HOLDER = "operator"


def dashboard_migrations(migrations: Migrations) -> None:
    """The dashboard's table (migration set ``dashboard``): one row per control action."""
    dashboard = migrations.set("dashboard")

    @dashboard
    def m001_dashboard_audit(conn: apsw.Connection) -> None:
        conn.execute("""
        create table dashboard_audit (
            id integer primary key autoincrement, ts_ns integer not null,
            action text not null, actor text not null, reason text not null,
            detail_json text not null, outcome text not null);
        """)


class ControlError(ArgusError):
    """A control that cannot be carried out as asked; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen(repr=False)
class Token:
    """One holder's token: the holder's name and the resolved value (never shown)."""

    holder: str
    value: bytes

    def __repr__(self) -> str:
        return f"Token(holder={self.holder!r})"


class Tokens:
    """The tokens that unlock controls, resolved once at start-up from secret references.

    Each spec is ``$env:NAME``, ``$file:PATH`` or ``HOLDER=<reference>``; ``HOLDER``
    (default ``operator``) is the name every action taken with that token records.
    """

    def __init__(self, specs: Sequence[str] = ()) -> None:
        self._tokens: list[Token] = []
        for spec in specs:
            holder, ref = DEFAULT_HOLDER, spec
            if "=" in spec and not spec.startswith("$"):
                holder, ref = spec.split("=", 1)
            if not _HOLDER.match(holder):
                # Not echoed: text before an '=' that is no name is most likely an inline
                # secret that holds one (base64 padding, a password).
                raise ConfigError("--token HOLDER=REF: the part before '=' is not a "
                                  "holder's name (1-64 letters, digits or '_.@-'); give "
                                  "a reference ($env:NAME or $file:PATH), never the token")
            if any(t.holder == holder for t in self._tokens):
                raise ConfigError(f"--token: two tokens for holder {holder!r}; give each "
                                  f"holder one token (HOLDER=$env:NAME)")
            try:
                value = Secret(ref).reveal()
            except ConfigError as exc:
                raise ConfigError(f"--token {ref if ref.startswith('$') else '<inline>'}: "
                                  f"{exc}") from None
            if len(value) < 8:
                raise ConfigError(f"--token {ref}: the token is shorter than 8 characters")
            self._tokens.append(Token(holder, value.encode()))

    @property
    def enabled(self) -> bool:
        """Whether any token was given (without one, every control is refused)."""
        return bool(self._tokens)

    @property
    def holders(self) -> list[str]:
        """The holders' names (safe to show)."""
        return [t.holder for t in self._tokens]

    def holder_of(self, presented: str | None) -> str | None:
        """The holder whose token ``presented`` is, or None.  Every token is compared in
        constant time, and all of them always, so timing tells nothing about any."""
        if not presented:
            return None
        candidate = presented.encode("utf-8", "surrogatepass")  # "\ud800" is no token
        found = None
        for token in self._tokens:
            if hmac.compare_digest(candidate, token.value):
                found = token.holder
        return found

    def __repr__(self) -> str:
        return f"Tokens(holders={self.holders!r})"


def orchestrator_store() -> Any:
    """The orchestrator's ``VersionStore`` class, or None when it is not installed."""
    try:
        return importlib.import_module("argus_orchestrator.versions").VersionStore
    except ImportError:
        return None


def _ledger(run_dir: Path) -> Ledger:
    """The run's ledger, opened to write as ``argus kill`` opens it: a zero-byte, damaged
    or foreign ``argus.db`` is refused (a :class:`LedgerError`), never made a ledger."""
    if not (Path(run_dir) / LEDGER_FILE).exists():
        raise ControlError(f"{run_dir}: no {LEDGER_FILE} yet; nothing to control", 409)
    check_run_ledger(run_dir, "the dashboard controls only a run's own ledger")
    migrations = Migrations()
    dashboard_migrations(migrations)
    return Ledger.in_dir(run_dir, migrations)


def _audit(ledger: Ledger, action: str, actor: str, reason: str, detail: dict[str, Any],
           outcome: str) -> None:
    ledger.insert("dashboard_audit", {
        "ts_ns": time.time_ns(), "action": action, "actor": actor, "reason": reason,
        "detail_json": json.dumps(detail, sort_keys=True), "outcome": outcome})


def apply_control(run_dir: Path, action: str, actor: str, reason: str, *,
                  version_id: str | None = None, to_status: str | None = None,
                  slot: str | None = None) -> dict[str, Any]:
    """Carry out ``action`` on the run in ``run_dir`` for ``actor`` and record it.

    Blocking (it takes the ledger's write lock, waiting up to its busy timeout while the
    loop commits): call it from a worker thread, never on an event loop.  Returns what
    was written; raises :class:`ControlError` for a control that cannot apply here.
    """
    if action not in ACTIONS:
        raise ControlError(f"unknown control {action!r}; one of {', '.join(ACTIONS)}", 404)
    reason = clean_reason(reason) or f"{action} from the dashboard"
    detail: dict[str, Any] = {}
    try:
        with _ledger(run_dir) as ledger:
            if action in ("kill", "kill_flatten", "resume"):
                return _set_state(ledger, action, actor, reason)
            store_class = orchestrator_store()
            present = {r["name"] for r in ledger.query(
                "select name from sqlite_master where type = 'table'")}
            if store_class is None or "strategy_versions" not in present:
                raise ControlError(f"{run_dir}: no orchestrator here (argustrade-orchestrator "
                                   f"not installed, or the run has no strategy versions)", 409)
            store = store_class(ledger, clock=time.time_ns)
            with ledger.immediate():  # the store's own transactions nest (savepoints)
                if action == "promote":
                    if not version_id or to_status not in PROMOTE_TO:
                        raise ControlError("promote needs version_id and to (one of "
                                           f"{', '.join(PROMOTE_TO)})")
                    detail = {"version_id": version_id, "to": to_status}
                    store.request(version_id, to_status, reason, actor=actor)
                else:
                    if not slot:
                        raise ControlError("rollback needs slot")
                    rolled, parent = store.rollback(slot, reason, actor=actor)
                    detail = {"slot": slot, "rolled_back": rolled, "reinstated": parent}
                _audit(ledger, action, actor, reason, detail, "done")
            return {"ok": True, "action": action, "by": actor, "reason": reason, **detail}
    except ControlError:
        raise
    except apsw.BusyError:
        raise ControlError(f"{Path(run_dir) / LEDGER_FILE} is busy: another process held "
                           f"its write lock for over 5 s; nothing was written, try again",
                           503) from None
    except LedgerError as exc:  # it names the file; only a busy one is worth a retry
        raise ControlError(str(exc), 503 if " is busy" in str(exc) else 409) from None
    except apsw.Error as exc:  # read-only, damaged past its first pages, disk full
        raise ControlError(f"{Path(run_dir) / LEDGER_FILE} cannot be used: "
                           f"{type(exc).__name__}: {exc}; nothing was written", 409) from None
    except ArgusError as exc:  # the version store's refusals name the known ids
        raise ControlError(str(exc), 409) from None


def _set_state(ledger: Ledger, action: str, actor: str, reason: str) -> dict[str, Any]:
    """Write the trading-state latch as ``argus kill`` / ``argus resume`` do, plus ``by``;
    an action that would change nothing writes no latch (its audit row says
    ``unchanged``).  The answer says when the run is not running."""
    # The core's rule (argus_core.request_trading_state, as ``argus kill``); ``via``: the
    # core's control_log keeps this write too, and the audit panel shows the dashboard's own,
    # richer row for it (ledger_view.audit), written in the same transaction.
    with ledger.immediate():
        # Read with the write, in one transaction: what a resume stops is what it says.
        left = left_open_by_resume(ledger) if action == "resume" else []
        latch, changed = request_trading_state(
            ledger, "flatten" if action == "kill_flatten" else action, reason, actor,
            via="dashboard")
        left_open = left if changed else []
        # The trail keeps what a resume left open: a form posted without the page's
        # script is sent back to the page, where the answer's message is not shown.
        detail = {"trading_state": latch} | ({"left_open": left_open} if left_open else {})
        _audit(ledger, action, actor, reason, detail, "done" if changed else "unchanged")
        runs = ledger.query("select status from runs limit 1")
    status = str(runs[0]["status"]) if runs else None
    answer: dict[str, Any] = {"ok": True, "action": action, "by": actor, "reason": reason,
                              "changed": changed, "run_status": status,
                              "trading_state": latch, "left_open": left_open}
    notes = [left_open_text(left_open, "kill and flatten")] if left_open else []
    if not changed:
        state = str(latch.get("state", "active")).upper()
        notes.append(f"nothing changed: trading is already {state}")
    if status != "running":
        notes.append(f"the run is not running (status {status}); the loop takes this up "
                     f"when the run is resumed")
    if notes:
        answer["message"] = "; ".join(notes)
    return answer


