"""The orchestrator's commands (entry point group ``argus.commands``: imported only when
one runs): ``argus orchestrate``, ``argus sandbox check``, ``argus strategies
list|show|diff|promote|rollback`` and ``argus thoughts [CYCLE]``.  What they print is
redacted.

Bad input is refused as the core's commands refuse it: a ``--run-dir`` that is not a
run directory (missing, no ledger, a damaged or foreign ``argus.db``) is the core's
``LedgerError`` naming the path (exit 7, as ``argus report``); an unknown version, cycle
or slot is a usage error naming the argument (exit 2); every refusal is one ``error:``
line with its class's exit code."""

from __future__ import annotations

import contextlib
import difflib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from argus_core import (
    LEDGER_FILE,
    ArgusError,
    LedgerError,
    Migrations,
    PluginCommand,
    PluginError,
    PluginGroup,
    check_run_ledger,
    redact,
)
from argus_orchestrator.plugin import register_migrations

#: What to pass instead of a directory without a run ledger.
_HINT = "pass the run directory of an 'argus orchestrate' or 'argus run'"


def _bad(argument: str, message: str) -> click.BadParameter:
    """A usage error about ``argument`` of the running command."""
    return click.BadParameter(message, click.get_current_context(), param_hint=argument)


def _echo(text: str, **kwargs: Any) -> None:
    """``click.echo`` of ``text`` redacted: every command here prints ledger text (a
    version's source and reasons, a model call's prompt) or a cycle's reasons, and a
    ledger written before its rows were stored redacted may hold a secret."""
    click.echo(redact(text), **kwargs)


@contextlib.contextmanager
def _open_ledger(run_dir: Path) -> Iterator[Any]:
    """The run's ledger with the orchestrator's tables; SQLite refusing it later is a
    ``LedgerError`` naming it too."""
    import apsw

    from argus_core import Ledger

    check_run_ledger(run_dir, _HINT)
    migrations = Migrations()
    register_migrations(migrations)
    path = Path(run_dir) / LEDGER_FILE
    try:
        with Ledger.in_dir(run_dir, migrations) as ledger:
            yield ledger
    except apsw.Error as exc:
        raise LedgerError(f"{path} cannot be used: {type(exc).__name__}: {exc} (a damaged "
                          f"file, or not an Argus ledger)") from None


def _version(store: Any, version_id: str, argument: str) -> dict[str, Any]:
    """The stored version, or a usage error naming ``argument`` and the known ids."""
    try:
        row: dict[str, Any] = store.get(version_id)
    except ArgusError as exc:  # VersionStore.get's only refusal: no such version
        raise _bad(argument, str(exc)) from None
    return row


# -- argus sandbox ----------------------------------------------------------------------------
@click.group("sandbox")
def sandbox_group() -> None:
    """Check AI-written strategy modules against the sandbox contract."""


@sandbox_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON verdict (also when FILE cannot be read).")
def sandbox_check(file: Path, as_json: bool) -> None:
    """Static validation of FILE against the AI strategy contract.

    \b
    Exit codes:
      0  accepted
      8  rejected: every reason, with line and column (SandboxError's code)
      4  FILE could not be read: missing, not a regular file, no permission

    Every input gets a verdict (oversize, undecodable, absurdly nested or
    otherwise hostile source is a rejection, never a traceback).  This is a
    filter, not the security boundary: accepted code still only ever runs in
    an isolated worker process.
    """
    import os
    import stat

    from argus_core import DataError
    from argus_orchestrator.errors import SandboxError
    from argus_orchestrator.sandbox.validator import (
        MAX_SOURCE_BYTES,
        ValidationResult,
        validate_bytes,
    )

    try:
        # Non-blocking open, then only regular files: a FIFO or a device would block or
        # never end; at most one byte past the size limit is read.
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise OSError(f"{file} is not a regular file")
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        why = exc.strerror if isinstance(exc.strerror, str) and exc.strerror else str(exc)
        if as_json:
            _echo(json.dumps({"file": str(file), "accepted": False, "readable": False,
                                   "error": f"cannot read: {why}", "reasons": [],
                                   "findings": []}, indent=2))
        else:  # one error: line, as every refusal (it had no prefix)
            _echo(f"error: {file}: cannot read: {why}", err=True)
        sys.exit(DataError.exit_code)
    try:
        result = validate_bytes(data)
    except Exception as exc:  # validate_bytes gives verdicts, never errors; belt and braces
        result = ValidationResult(False, (), 0, 0)
        reasons = [f"internal validator error ({type(exc).__name__}); refused"]
    else:
        reasons = result.reasons
    if as_json:
        _echo(json.dumps({"file": str(file), "readable": True, **result.as_dict(),
                               "reasons": reasons}, indent=2))
    elif result.accepted:
        _echo(f"{file}: accepted ({result.n_lines} lines)")
    else:
        _echo(f"{file}: rejected ({len(reasons)} reasons)")
        for reason in reasons:
            _echo(f"  {reason}")
    if not result.accepted:
        sys.exit(SandboxError.exit_code)


# -- argus strategies ------------------------------------------------------------------------
@click.group("strategies", cls=PluginGroup)
def strategies_group() -> None:
    """List, inspect, diff, promote and roll back strategy versions in a run's ledger."""


_run_dir_option = click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
                               required=True, help="Run directory holding argus.db.")


@strategies_group.command("list")
@_run_dir_option
@click.option("--json", "as_json", is_flag=True)
def strategies_list(run_dir: Path, as_json: bool) -> None:
    """Every stored version, oldest first."""
    from argus_orchestrator.versions import VersionStore

    with _open_ledger(run_dir) as ledger:
        rows = VersionStore(ledger).list()
    if as_json:
        _echo(json.dumps([{k: r[k] for k in ("version_id", "slot", "status", "parent_id",
                                                  "model", "cycle_id", "reason")}
                               for r in rows], indent=2))
        return
    for r in rows:
        _echo(f"{r['version_id']:<28} {r['slot']:<12} {r['status']:<12} "
                   f"parent={r['parent_id'] or '-':<28} {redact(r['reason'])[:60]}")


@strategies_group.command("show")
@_run_dir_option
@click.argument("version_id")
def strategies_show(run_dir: Path, version_id: str) -> None:
    """One version: metadata, gate results, history and source."""
    from argus_orchestrator.versions import VersionStore

    with _open_ledger(run_dir) as ledger:
        store = VersionStore(ledger)
        row = _version(store, version_id, "'VERSION_ID'")
        events = store.events(version_id)
    for key in ("version_id", "slot", "status", "reason", "parent_id", "replaced_id",
                "source_hash", "prompt_hash", "model", "cycle_id"):
        _echo(f"{key}: {row[key]}")
    for key in ("validation_json", "gate_json", "shadow_json"):
        if row[key]:
            _echo(f"{key[:-5]}: {row[key]}")
    _echo("history:")
    for e in events:
        _echo(f"  {e['from_status'] or '-'} -> {e['to_status']} by {e['actor']}: "
                   f"{e['reason']}")
    _echo("source:")
    _echo(row["source"])


@strategies_group.command("diff")
@_run_dir_option
@click.argument("old_id")
@click.argument("new_id")
def strategies_diff(run_dir: Path, old_id: str, new_id: str) -> None:
    """Unified diff of two versions' source."""
    from argus_orchestrator.versions import VersionStore

    with _open_ledger(run_dir) as ledger:
        store = VersionStore(ledger)
        old, new = _version(store, old_id, "'OLD_ID'"), _version(store, new_id, "'NEW_ID'")
    _echo("".join(difflib.unified_diff(old["source"].splitlines(keepends=True),
                                            new["source"].splitlines(keepends=True),
                                            old_id, new_id)))


@strategies_group.command("promote")
@_run_dir_option
@click.argument("version_id")
@click.option("--to", "to_status", type=click.Choice(["shadow", "canary", "full"]),
              required=True)
@click.option("--reason", default="promoted by a person")
def strategies_promote(run_dir: Path, version_id: str, to_status: str, reason: str) -> None:
    """Record a person's promotion; a running orchestrated loop applies it at a safe point."""
    from argus_orchestrator.versions import VersionStore

    with _open_ledger(run_dir) as ledger:
        store = VersionStore(ledger, time.time_ns)  # stamped when the person asked
        _version(store, version_id, "'VERSION_ID'")
        store.request(version_id, to_status, reason, actor="person")
    _echo(f"{version_id}: {to_status} requested")


@strategies_group.command("rollback")
@_run_dir_option
@click.argument("slot")
@click.option("--reason", default="rolled back by a person")
def strategies_rollback(run_dir: Path, slot: str, reason: str) -> None:
    """Mark the slot's active AI version rolled back and reinstate the version it
    replaced in the slot (its parent, where no running loop swapped it in)."""
    from argus_orchestrator.versions import VersionStore

    with _open_ledger(run_dir) as ledger:
        store = VersionStore(ledger, time.time_ns)  # stamped when the person asked
        if store.active(slot) is None:
            live = sorted({r["slot"] for r in store.list() if store.active(r["slot"])})
            raise _bad("'SLOT'", f"slot {slot!r} has no live AI version to roll back (slots "
                                 f"with one: {', '.join(live) or 'none'})")
        rolled, parent = store.rollback(slot, reason, actor="person")
    _echo(f"{slot}: {rolled} rolled back; active version is now {parent}")


# -- argus thoughts ------------------------------------------------------------------------
@click.command("thoughts", cls=PluginCommand)
@_run_dir_option
@click.argument("cycle", required=False)
@click.option("--json", "as_json", is_flag=True)
def thoughts_cmd(run_dir: Path, cycle: str | None, as_json: bool) -> None:
    """The thought spool: every model call (prompt, response, model, tokens, cost)."""
    from argus_orchestrator.spool import ThoughtSpool

    with _open_ledger(run_dir) as ledger:
        spool = ThoughtSpool(ledger)
        if cycle is None:
            rows = spool.cycles()
            if as_json:
                _echo(json.dumps(rows, indent=2))
                return
            for r in rows:
                _echo(f"{r['cycle_id']:<14} {r['status']:<10} {r['outcome'] or '-':<12} "
                           f"tokens={r['tokens']:<7} cost=${r['cost_usd']:<10} "
                           f"{redact(r['reason'] or '')[:70]}")
            return
        thoughts = spool.thoughts(cycle)
        known = [r["cycle_id"] for r in spool.cycles()] if not thoughts else []
    if not thoughts:
        shown = ", ".join(known[-10:]) + (" (the last 10)" if len(known) > 10 else "")
        raise _bad("'CYCLE'", f"no thoughts recorded for cycle {cycle!r} in {run_dir} "
                              f"(cycles: {shown or 'none'})")
    if as_json:
        _echo(json.dumps(thoughts, indent=2))
        return
    for t in thoughts:
        _echo(f"=== {t['cycle_id']} #{t['seq']} {t['purpose']} model={t['model']} "
                   f"status={t['status']} stop={t['stop_reason']} tokens="
                   f"{t['input_tokens']}+{t['output_tokens']} cost=${t['cost_usd']}")
        if t["error"]:
            _echo(f"error: {t['error']}")
        _echo("--- system ---")
        _echo(t["system_prompt"])
        _echo("--- prompt ---")
        _echo(t["prompt"])
        _echo("--- response ---")
        _echo(t["response_text"] or "")


# -- argus orchestrate ---------------------------------------------------------------------------
@click.command("orchestrate", cls=PluginCommand)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Config file with [run] and [plugins.orchestrator] tables.")
@click.option("--cycles", type=click.IntRange(min=0), default=None,
              help="Run at most N orchestrator cycles in the run (with --resume, the "
                   "cycles its earlier processes ran count).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the run (default: argus-runs/orchestrate-<time>).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir (after a stop or a crash) with the "
                   "version its ledger says is full.")
def orchestrate_cmd(config_path: Path, cycles: int | None, run_dir: Path | None,
                    resume: bool) -> None:
    """Run the loop with the AI orchestrator: generate, review, validate, prove, hot-swap."""
    if resume:  # a run to continue: its ledger, checked before anything is made
        if run_dir is None:
            raise _bad("'--run-dir'", "--resume continues the run in --run-dir: pass it")
        check_run_ledger(run_dir, _HINT)
    try:
        from argus_orchestrator.session import run_orchestrated
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "argus_lab":
            raise
        raise PluginError("the orchestrator proves candidates with the robustness lab: pip "
                          "install argustrade-lab (or pip install -e plugins/argustrade-lab "
                          "from a checkout)") from None

    report = run_orchestrated(config_path, run_dir=run_dir, max_cycles=cycles,
                              echo=click.echo, resume=resume)
    _echo(report)
