"""The marks up to which a run's alerts were delivered, kept in the run folder.

The outbox is in memory: alerts waiting when the process stops (or queued while Telegram
is unreachable, and then the process stops) would be lost, and the next bot would start
from "now", so a trader never heard of a halt or fills just before a crash.  So the bot
writes :data:`MARKS_FILE` (atomically) whenever everything its watcher derived up to its
high-water marks has been delivered, nothing queued or in hand; the next bot of the run
starts from those marks and re-derives what followed from the ledger (the truth).

The file holds the marks and the run id only: ids, a row id, the latch's SHA-256 (never
its reason), a time stamp; no token, no text from the ledger.  It is read without
following a link, at most :data:`MAX_BYTES`, and every field is checked: anything else is a
:class:`~argus_telegram.ledger_view.MarksError` saying why, and the bot starts from now.
"""

from __future__ import annotations

import datetime as dtm
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from argus_core import write_atomically
from argus_telegram.ledger_view import Marks, MarksError

#: The marks file, in the run folder.
MARKS_FILE = "telegram-delivered.json"
#: Its format; another version is refused (the bot starts from now).
VERSION = 1
#: A marks file is ~250 bytes; a larger one is not read.
MAX_BYTES = 4096
_INTS = ("risk_id", "strategy_event_id", "fill_rowid")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)  # (POSIX; the lstat checks it elsewhere)


def path_of(run_dir: Path) -> Path:
    """The marks file of ``run_dir``."""
    return Path(run_dir) / MARKS_FILE


def load(run_dir: Path, run_id: str) -> Marks | None:
    """The marks saved for ``run_id`` in ``run_dir``; None when there is no file (a first
    start); ``MarksError`` saying why when it cannot be used (a link, not a regular file,
    too large, not JSON, another version or run, a field of the wrong type or range)."""
    path = path_of(run_dir)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MarksError(f"cannot be read ({type(exc).__name__})") from None
    if stat.S_ISLNK(info.st_mode):
        raise MarksError("is a symbolic link (not followed)")
    if not stat.S_ISREG(info.st_mode):
        raise MarksError("is not a regular file")
    try:
        # No link followed (one put there since the lstat), no wait on a FIFO.
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise MarksError("is not a regular file")
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise MarksError(f"cannot be read ({type(exc).__name__})") from None
    if len(data) > MAX_BYTES:
        raise MarksError(f"is larger than {MAX_BYTES} bytes")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MarksError("is not JSON") from None
    return _marks(value, run_id)


def _marks(value: Any, run_id: str) -> Marks:
    if not isinstance(value, dict):
        raise MarksError("is not a JSON object")
    if value.get("version") != VERSION or type(value.get("version")) is not int:
        raise MarksError(f"is not version {VERSION}")
    if value.get("run_id") != run_id:
        raise MarksError("belongs to another run")
    ints: dict[str, int] = {}
    for key in _INTS:
        mark = value.get(key)
        if type(mark) is not int or not 0 <= mark < 2**63:
            raise MarksError(f"{key}: not a row id (an integer from 0)")
        ints[key] = mark
    digest = value.get("latch_sha256")
    if digest is not None and (type(digest) is not str or not _SHA256.fullmatch(digest)):
        raise MarksError("latch_sha256: not a SHA-256 in hex, nor null")
    return Marks(digest, ints["risk_id"], ints["strategy_event_id"], ints["fill_rowid"])


def save(run_dir: Path, run_id: str, marks: Marks) -> None:
    """Write ``marks`` for ``run_id`` atomically (a crash leaves the previous file whole;
    a link at the path is replaced, never followed); ``OSError`` naming the path."""
    text = json.dumps({
        "version": VERSION, "run_id": run_id, "latch_sha256": marks.latch_sha256,
        "risk_id": marks.risk_id, "strategy_event_id": marks.strategy_event_id,
        "fill_rowid": marks.fill_rowid,
        "written_at": dtm.datetime.now(dtm.UTC).isoformat(timespec="seconds")},
        indent=1) + "\n"

    def write(part: Path) -> None:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())  # whole on disk before the rename makes it the marks

    write_atomically(path_of(run_dir), write)
