"""One writer per run directory: an advisory OS lock held for the life of the process.

``fcntl.flock`` on the run directory itself and on ``<run dir>/argus.lock``: the kernel
releases both when the process ends in any way (even SIGKILL), so a crashed run never
leaves a stale lock behind, and a second ``argus run`` on the same directory is refused
instead of interleaving its writes with the first.  Readers and the control commands
(``argus kill``, ``resume``, ``report``, ``strategies``, ``thoughts``) do not take it: they
go through the ledger's own transactions beside a running process.  (The standard
library's ``fcntl`` is the well-kept tool here; a lock *file's existence* would survive a
crash and lie.)

Why both.  The directory's lock is the guard: it is taken on the directory's inode, so it
holds however the directory is reached (a symlink, a relative path) and even when
``argus.lock`` is deleted under a running writer (a clean-up script, ``rm``), which would
otherwise let the next writer lock a fresh file of the same name.  The file's lock is kept
for writers that take only that one, and the file names the holder's pid for the refusal
message.  Where a file system cannot lock a directory the file's lock alone stands.

A lock belongs to an open file description, which a forked child shares: a child that
outlived a SIGKILLed run (a worker forked without ``exec``) would hold the directory
until it exited.  A forked child therefore closes its copies at once (``os.register_at_fork``);
the parent's lock is untouched, since it lives until its last descriptor closes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from argus_core.errors import LedgerError

LOCK_FILE = "argus.lock"
#: Where a directory cannot be flocked (some network file systems): the file's lock stands.
_NO_DIR_LOCK = (errno.EBADF, errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP, errno.EPERM,
                errno.EACCES)
#: The pid line is written over a field this wide, never truncated first: a reader racing
#: the write sees the old pid or the new one, not an empty file.
_PID_WIDTH = 24
#: Every lock this process holds (a plain set: a lock nobody references still holds its
#: descriptors, and a forked child must close those too).
_HELD: set[RunDirLock] = set()


class RunDirLock:
    """An exclusive, non-blocking ``flock`` on a run directory and its lock file."""

    def __init__(self, path: Path, fd: int, dir_fd: int | None = None) -> None:
        self.path = path
        self._fd: int | None = fd
        self._dir_fd = dir_fd
        _HELD.add(self)

    @classmethod
    def acquire(cls, run_dir: Path) -> RunDirLock:
        """Lock ``run_dir`` (created if missing) or raise :class:`LedgerError` naming the
        process that holds it (or why the directory cannot be used)."""
        path = run_dir / LOCK_FILE
        if run_dir.exists() and not run_dir.is_dir():
            raise LedgerError(f"{run_dir} is not a directory; --run-dir names a directory "
                              f"(created if missing)")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            dir_fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise LedgerError(f"{run_dir} cannot be used as a run directory: "
                              f"{exc.strerror or exc}") from None
        fd: int | None = None
        try:
            held = not _try_flock(dir_fd, directory=True)
            # Refused, it makes no lock file: the holder's was deleted under it (a clean-up).
            # never through a link: the pid went over the file it named, the release emptied it
            fd = None if held and not path.exists() else \
                os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            if fd is not None and os.fstat(fd).st_nlink > 1:
                raise LedgerError(f"{path} is linked to another file; remove it")
            if held or fd is None or not _try_flock(fd, directory=False):
                holder = "" if fd is None else _read_holder(fd)
                raise LedgerError(
                    f"{run_dir} is being written by another process{holder}; one run "
                    f"directory has one writer — stop that process first or use another "
                    f"--run-dir (`argus kill`, `resume` and `report` work beside it)")
            os.pwrite(fd, f"{os.getpid()}".ljust(_PID_WIDTH - 1).encode() + b"\n", 0)
            os.ftruncate(fd, _PID_WIDTH)
        except BaseException as exc:
            for each in (fd, dir_fd):
                if each is not None:
                    os.close(each)  # closing gives back any lock taken above
            if isinstance(exc, OSError):
                raise LedgerError(f"cannot lock run directory {run_dir} ({LOCK_FILE}): "
                                  f"{exc.strerror or exc}") from None
            raise
        return cls(path, fd, dir_fd)

    def release(self) -> None:
        """Give the lock back (idempotent; process exit does the same)."""
        if self._fd is not None:  # no pid named once the run is over (`writer_pid`)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self._fd = self._dir_fd = None
        _HELD.discard(self)

    def _forget_in_child(self) -> None:
        """In a forked child: close this process's copies without unlocking (``LOCK_UN``
        would unlock the parent's shared description too)."""
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._dir_fd = None


def undo_refused_start(run_dir: Path, found: set[str] | None, made: Sequence[Path] = ()
                       ) -> None:
    """Leave ``run_dir`` as a refused start found it: remove the names in it that were not
    in ``found`` (its listing before; ``None``: it did not exist, and it goes too, with the
    folders above it in ``made`` that it was created in, when they are empty).  Done
    holding its lock: when another process holds it now, what is there is that process's
    and nothing is touched.  For a start refused before it wrote anything of its own (a bad
    config, a refused live mode, no events to replay), never for a run that did work."""
    if not run_dir.is_dir():
        return
    try:
        lock = RunDirLock.acquire(run_dir)
    except LedgerError:
        return
    try:
        with contextlib.suppress(OSError):  # tidying never hides why the start was refused
            for name in {*os.listdir(run_dir)} - (found or set()):
                path = run_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            if found is None:
                run_dir.rmdir()
    finally:
        lock.release()
    for folder in made if found is None else ():
        with contextlib.suppress(OSError):  # not empty: someone else's now
            folder.rmdir()


def writer_pid(run_dir: Path) -> int | None:
    """The pid of the live process that holds ``run_dir`` as its writer (as its lock file
    names it; a pid reused since would pass too), or None.  It only reads: no lock is
    taken, so a run starting meanwhile is never refused for it."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((run_dir / LOCK_FILE).read_text().strip() or "0")
        if pid > 0 and _alive(pid):
            return pid
    return None


def _try_flock(fd: int, *, directory: bool) -> bool:
    """True when the exclusive lock was taken; False when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        if directory and exc.errno in _NO_DIR_LOCK:
            return True  # cannot lock a directory here: the lock file's lock decides
        raise
    return True


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 64, 0).decode().strip() or "0")
        if pid > 0:
            if _alive(pid):
                return f" (pid {pid})"
            return (f" (its lock file names pid {pid}, which has exited: a process it "
                    f"started may still hold the lock)")
    return ""


def _alive(pid: int) -> bool:
    try:
        with contextlib.suppress(PermissionError):  # EPERM: it exists, another user's
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _close_in_child() -> None:
    for lock in list(_HELD):
        lock._forget_in_child()
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)
