"""Held-out faults against "one writer per run directory" (``argus_core.runlock``).

Found (each test failed on the old lock, which took ``flock`` on ``argus.lock`` only):

* a child forked by the run (a worker started without ``exec``) inherited the lock's open
  file description: after the run was SIGKILLed the child still held the directory, and
  the restart was refused naming the dead run's pid;
* ``argus.lock`` deleted under a running writer (a clean-up script) let a second writer
  lock a fresh file of the same name: two writers on one ledger;
* ``--run-dir`` naming a file, or a directory that cannot be written, failed with a
  Python traceback (FileExistsError / PermissionError) instead of a one-line refusal.

Held (pinned here): N processes taking the lock at the same instant (one wins), the same
run reached through a symlink or a relative path, a stale pid in the lock file (even one
reused by a live process) blocks nobody, a second lock in the same process is refused,
a refusal names the live holder, two ``argus run`` processes started together on one run
directory (one exits 7, the other finishes), ``argus backtest`` on a directory being
written is refused while ``argus report`` / ``kill`` / ``resume`` work beside the writer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml
from click.testing import CliRunner

from argus_core.cli import cli
from argus_core.errors import LedgerError
from argus_core.ledger import Ledger
from argus_core.runlock import LOCK_FILE, RunDirLock

HOLD = """
import os, sys, time
from pathlib import Path
from argus_core.runlock import RunDirLock
lock = RunDirLock.acquire(Path(sys.argv[1]))
{after}
print("locked", flush=True)
time.sleep(120)
"""


def _holder(run_dir: Path, after: str = "") -> subprocess.Popen[str]:
    """A process that takes the lock on ``run_dir`` and sleeps (prints 'locked' first;
    ``after`` runs in between, e.g. a fork; what it prints is ``proc.said``)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(after=after), str(run_dir)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.endswith("locked"), line
    proc.said = line.removesuffix("locked").strip()  # type: ignore[attr-defined]  # test note
    return proc


def _free(run_dir: Path) -> bool:
    try:
        RunDirLock.acquire(run_dir).release()
    except LedgerError:
        return False
    return True


def _sigkill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


# -- found ---------------------------------------------------------------------------------
def test_a_forked_child_does_not_keep_the_lock_of_a_sigkilled_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # The run forks a worker (no exec) that lives on after the run is SIGKILLed.
    proc = _holder(run_dir, after="child = os.fork()\n"
                                  "if child == 0:\n"
                                  "    time.sleep(120); os._exit(0)\n"
                                  "print(child, end=' ', flush=True)")
    child = 0
    try:
        child = int(proc.said)  # type: ignore[attr-defined]  # set by _holder
        assert not _free(run_dir)
        _sigkill(proc)
        # The child drops its copies as fork returns in it; on a loaded box it may not have
        # run yet when the parent dies: allow it a few seconds (it sleeps for 120).
        deadline = time.monotonic() + 10
        while not _free(run_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _free(run_dir), "the SIGKILLed run's forked child still holds the run directory"
    finally:
        if proc.poll() is None:
            _sigkill(proc)
        if child:  # the dead run's child, not ours: init reaps it
            os.kill(child, signal.SIGKILL)


def test_a_forked_child_cannot_unlock_the_parents_lock(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    lock = RunDirLock.acquire(run_dir)
    try:
        pid = os.fork()
        if pid == 0:  # the child: releasing its (closed) copy must not unlock the parent
            lock.release()
            os._exit(0)
        os.waitpid(pid, 0)
        assert not _free(run_dir)
    finally:
        lock.release()
    assert _free(run_dir)


def test_a_deleted_lock_file_does_not_let_a_second_writer_in(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _holder(run_dir)
    try:
        (run_dir / LOCK_FILE).unlink()  # a clean-up under the running writer
        with pytest.raises(LedgerError, match="another process"):
            RunDirLock.acquire(run_dir)
    finally:
        _sigkill(proc)
    assert _free(run_dir)


def test_a_run_dir_that_is_a_file_is_a_one_line_refusal(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "run"
    not_a_dir.write_text("x")
    with pytest.raises(LedgerError, match="not a directory"):
        RunDirLock.acquire(not_a_dir)
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-01-05"))
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                      str(not_a_dir), "--no-progress"])
    # The CLI refuses it as a usage error before the lock is asked (exit 2); the lock's
    # own refusal (exit 7) covers every other caller of Runner.
    assert result.exit_code in (2, 7), result.output
    assert "is a file" in result.output or "not a directory" in result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_a_run_dir_that_cannot_be_written_is_a_one_line_refusal(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(LedgerError, match="cannot"):
            RunDirLock.acquire(parent / "run")
        with pytest.raises(LedgerError, match="cannot lock"):
            RunDirLock.acquire(parent)  # exists, but argus.lock cannot be created
    finally:
        parent.chmod(0o700)


# -- held ----------------------------------------------------------------------------------
RACE = """
import sys, time
from pathlib import Path
from argus_core.errors import LedgerError
from argus_core.runlock import RunDirLock
start = float(sys.argv[2])
while time.time() < start:
    pass
try:
    lock = RunDirLock.acquire(Path(sys.argv[1]))
    print("won", flush=True)
    time.sleep(1.5)
except LedgerError:
    print("refused", flush=True)
"""


def test_processes_taking_the_lock_at_the_same_instant_one_wins(tmp_path: Path) -> None:
    run_dir = tmp_path / "fresh" / "run"  # not there yet: each one creates it
    start = time.time() + 1.5  # every process has imported the lock by then
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(run_dir), repr(start)],
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["refused"] * 5 + ["won"]


def test_the_same_run_through_a_symlink_or_a_relative_path_is_one_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    lock = RunDirLock.acquire(run_dir)
    try:
        alias = tmp_path / "alias"
        alias.symlink_to(run_dir, target_is_directory=True)
        monkeypatch.chdir(tmp_path)
        for other in (alias, Path("run"), Path("alias") / ".." / "run",
                      Path(str(run_dir) + "/")):
            with pytest.raises(LedgerError, match=f"pid {os.getpid()}"):
                RunDirLock.acquire(other)
    finally:
        lock.release()
    assert _free(tmp_path / "alias")


def test_a_stale_pid_in_the_lock_file_blocks_nobody(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # A SIGKILLed writer's pid, since reused by a live process (here: this one, and 1).
    for pid in (os.getpid(), 1):
        (run_dir / LOCK_FILE).write_text(f"{pid}\n")
        lock = RunDirLock.acquire(run_dir)
        assert int((run_dir / LOCK_FILE).read_text()) == os.getpid()
        lock.release()


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    lock = RunDirLock.acquire(tmp_path / "run")
    try:
        with pytest.raises(LedgerError, match=f"pid {os.getpid()}"):
            RunDirLock.acquire(tmp_path / "run")
    finally:
        lock.release()
    lock.release()  # idempotent
    assert _free(tmp_path / "run")


def test_the_refusal_names_the_live_holder(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "run")
    try:
        with pytest.raises(LedgerError, match=f"pid {proc.pid}\\)"):
            RunDirLock.acquire(tmp_path / "run")
    finally:
        _sigkill(proc)


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from argus_core.cli import main; main()", *args]


def test_two_argus_runs_started_together_one_runs_one_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, start="2021-06-01", end="2022-01-01"))
    run_dir = tmp_path / "run"
    cmd = _cmd("run", "--config", str(cfg), "--run-dir", str(run_dir), "--no-progress")
    env = {**os.environ, "ARGUS_BLOCK_PLUGINS": ""}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(120), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 7], results
    refused = next(err for code, err in results if code == 7)
    assert "another process" in refused and "Traceback" not in refused
    with Ledger.in_dir(run_dir) as ledger:  # one writer: every event once, one run row
        assert ledger.query("select count(*) as n from runs")[0]["n"] == 1


def test_backtest_is_refused_and_control_commands_work_beside_a_writer(
        tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-02-01"))
    run_dir = tmp_path / "run"
    assert CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir", str(run_dir),
                                    "--no-progress", "--max-events", "50"]).exit_code == 0
    proc = _holder(run_dir)  # as a running `argus run` holds it
    try:
        result = CliRunner().invoke(cli, ["backtest", "--config", str(cfg), "--run-dir",
                                          str(run_dir), "--no-progress"])
        assert result.exit_code == 7 and "another process" in result.output
        for args in (["report", str(run_dir)], ["kill", "--run-dir", str(run_dir)],
                     ["resume", "--run-dir", str(run_dir)]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, (args, result.output)
    finally:
        _sigkill(proc)
