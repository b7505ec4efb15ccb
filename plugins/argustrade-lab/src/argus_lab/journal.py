"""The trial journal: a copy of the trial registry kept outside the lab folder.

The deflated Sharpe ratio deflates by every variant of a family ever tried, counted in
the lab ledger's ``lab_trials`` (``[plugins.lab] dir``/lab.db).  Deleting that folder --
or pointing ``dir`` at a fresh one -- reset the count to the handful of trials of the
next run, so a strategy chosen from thousands of variants was deflated as if it were
one of a few: trials laundered by ``rm -r lab``.

The journal is an append-only JSON-lines file beside the lab folder (``lab`` ->
``.lab-trials.jsonl`` in the same parent folder, :func:`journal_path`), written when a
sweep or the gates run:

* every trial of the registry is copied to it (``"kind": "trial"``), and every trial it
  holds that the registry lacks is restored to the registry before the DSR is computed
  (the verdict's ``trial_registry`` says how many were restored);
* every verdict appends the number of trials it deflated by (``"kind": "verdict"``);
  a registry counting fewer trials than an earlier verdict of the same family -- trials
  the journal cannot restore, e.g. recorded before the journal existed, or the journal
  edited -- deflates by the earlier count and holds the verdict, naming the loss.

Deleting the journal as well, or pointing ``dir`` at a new folder (a visible change of
the config), is a second, deliberate act; the verdict stored in the lab ledger always
carries the count it was judged by (``details["trial_registry"]``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import attrs

from argus_core import Config, DataError, Ledger


def journal_path(config: Config) -> Path:
    """The journal of ``config``: ``.<name>-trials.jsonl`` beside its lab folder ``<name>``
    (``[plugins.lab] dir``), outside it, so deleting the folder leaves it.  (Beside the
    config file instead, tests and tools that point ``dir`` at a scratch folder left
    journals in the checkout's examples.)"""
    from argus_lab.config import lab_dir, lab_settings

    folder = lab_dir(config, lab_settings(config))
    return folder.parent / f".{folder.name}-trials.jsonl"


@attrs.frozen
class RegistryCheck:
    """What :func:`sync_trials` found: trials restored to the registry from the journal
    and the most trials an earlier verdict of the family deflated by."""

    restored: int
    earlier_trials: int
    journal: str


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"trial journal {path}: cannot be read ({exc})") from None
    lines = text.split("\n")  # the last is "" after a whole row, else a torn append
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                # An append cut short (killed, disk full) leaves a row without its newline:
                # skipped, not refused.  The registry still holds its trials (they are
                # copied again); refused, the lab would not run until someone edited it.
                break
            row = None
        if not isinstance(row, dict) or row.get("kind") not in ("trial", "verdict") or \
                not isinstance(row.get("family"), str):
            raise DataError(f"trial journal {path}: line {n} is damaged; repair or remove "
                            f"that line (the journal keeps the count of trials the deflated "
                            f"Sharpe ratio deflates by)")
        out.append(row)
    return out


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one writer: the tail check and the write together
        data = _mend_tail(fd) + data
        view = memoryview(data)
        while view:  # os.write may write less than asked (a signal, a full disk)
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)  # and the lock with it


def _mend_tail(fd: int) -> bytes:
    """Make the file open at ``fd`` end on a whole line before an append: a torn last row
    (an append cut short) is cut off -- glued to the next row, it became a damaged line
    that refused every later run -- and a whole row lacking its newline gets one (the
    bytes to write first)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return b""
    text = os.pread(fd, size, 0)
    start = text.rfind(b"\n") + 1
    try:
        whole = isinstance(json.loads(text[start:]), dict)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        whole = False
    if whole:
        return b"\n"
    os.ftruncate(fd, start)
    return b""


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["variant_id"], float(row["sharpe_per_obs"]), int(row["n_obs"]))


def sync_trials(ledger: Ledger, family: str, path: Path) -> RegistryCheck:
    """Copy ``family``'s trials between the registry and the journal at ``path``: the
    registry's new or changed trials are appended to the journal, the journal's trials
    the registry lacks are restored to it (their latest figures)."""
    rows = _read(path)
    journal: dict[str, dict[str, Any]] = {}
    earlier = 0
    try:
        for r in rows:
            if r["family"] != family:
                continue
            if r["kind"] == "trial":
                _key(r)  # the fields are there and numbers
                journal[str(r["variant_id"])] = r
            else:
                earlier = max(earlier, int(r["n_trials"]))
    except (KeyError, TypeError, ValueError):
        raise DataError(f"trial journal {path}: a row of family {family!r} is damaged; "
                        f"repair or remove it") from None
    registry = {r["variant_id"]: dict(r) for r in ledger.query(
        "select variant_id, sharpe_per_obs, n_obs, source, ts_ns from lab_trials "
        "where family = ?", (family,))}
    new = [{"kind": "trial", "family": family, **r} for vid, r in registry.items()
           if vid not in journal or _key(journal[vid]) != _key(r)]
    missing = [r for vid, r in journal.items() if vid not in registry]
    if missing:
        with ledger.transaction():
            for r in missing:
                ledger.insert("lab_trials", {
                    "family": family, "variant_id": str(r["variant_id"]),
                    "sharpe_per_obs": float(r["sharpe_per_obs"]), "n_obs": int(r["n_obs"]),
                    "source": str(r.get("source", "journal")),
                    "ts_ns": int(r.get("ts_ns", time.time_ns()))})
    _append(path, new)
    return RegistryCheck(len(missing), earlier, str(path))


def journal_verdict(path: Path, family: str, n_trials: int, verdict: str) -> None:
    """Append a verdict's trial count for ``family`` to the journal."""
    _append(path, [{"kind": "verdict", "family": family, "n_trials": int(n_trials),
                    "verdict": verdict, "ts_ns": time.time_ns()}])
