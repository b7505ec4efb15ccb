"""One writer per run directory: an advisory OS lock held for the life of the process.

``fcntl.flock`` on ``<run dir>/argus.lock``: the kernel releases it when the process
ends in any way (even SIGKILL), so a crashed run never leaves a stale lock behind, and
a second ``argus run`` on the same directory is refused instead of interleaving its
writes with the first.  Readers and the control commands (``argus kill``, ``resume``,
``report``, ``strategies``, ``thoughts``) do not take it: they go through the ledger's
own transactions beside a running process.  (The standard library's ``fcntl`` is the
well-kept tool here; a lock *file's existence* would survive a crash and lie.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from argus_core.errors import LedgerError

LOCK_FILE = "argus.lock"


class RunDirLock:
    """An exclusive, non-blocking ``flock`` on a run directory's lock file."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: Path) -> RunDirLock:
        """Lock ``run_dir`` (created if missing) or raise :class:`LedgerError` naming the
        process that holds it."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LedgerError(
                f"{run_dir} is being written by another process{holder}; one run directory "
                f"has one writer — stop that process first or use another --run-dir "
                f"(`argus kill`, `resume` and `report` work beside it)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    def release(self) -> None:
        """Give the lock back (idempotent; process exit does the same)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip() or "0")
        if pid:
            return f" (pid {pid})"
    return ""
