"""Real processes for end-to-end tests of a run that a person follows and halts:
``argus run`` and ``argus serve`` as child processes (logs to files), and read-only
looks into a run's ledger with apsw, independent of the dashboard and the bot under test.

Used by the dashboard's browser tests and the Telegram plugin's bot test, with a local
exchange process such as ``argus_venue_kraken.testing.paper.KrakenMarket``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import apsw

from argus_core import read_untouched

#: What ``argus run`` exits with when interrupted (SIGINT), per its documented exit codes.
EXIT_INTERRUPTED = 130


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0,
             what: str = "condition", poll_s: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something true (an exception counts as not
    yet); fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
        except Exception:  # an element or a table not there yet: try again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def query(run_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows read straight from a run's ledger (read-only apsw); none while the ledger or
    the table does not exist yet.  A finished run's folder is left as it was (no ``-wal``
    or ``-shm`` file made there: a test may check the folder after reading it)."""
    path = run_dir / "argus.db"
    if not path.exists():
        return []

    def read(conn: apsw.Connection) -> list[dict[str, Any]]:
        cursor = conn.execute(sql, params)
        try:
            names = [d[0] for d in cursor.getdescription()]
        except apsw.ExecutionCompleteError:
            return []
        return [dict(zip(names, r, strict=True)) for r in cursor]

    try:
        return read_untouched(path, read)
    except apsw.SQLError as exc:
        if "no such table" in str(exc):
            return []
        raise


def control(run_dir: Path) -> dict[str, Any] | None:
    """The trading-state control row, parsed (None: nobody has set one)."""
    rows = query(run_dir, "select value from control where key = 'trading_state'")
    return json.loads(rows[0]["value"]) if rows else None


def count(run_dir: Path, table: str, where: str = "1", params: tuple[Any, ...] = ()) -> int:
    """Rows of ``table`` matching ``where``."""
    rows = query(run_dir, f"select count(*) as n from {table} where {where}", params)
    return int(rows[0]["n"]) if rows else 0


def seq(run_dir: Path) -> int:
    """The last event the loop committed (its checkpoint)."""
    rows = query(run_dir, "select seq from checkpoints where name = 'runner'")
    return int(rows[0]["seq"]) if rows else 0


class Child:
    """A child process whose stdout and stderr go to a log file (never a pipe that could
    fill up and stall it)."""

    def __init__(self, name: str, argv: list[str], log_path: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.name, self.log_path = name, log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    @property
    def output(self) -> str:
        """Everything it printed so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.proc.poll() is None

    def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C (SIGINT), then its exit code once it has stopped."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not stop within {timeout_s} s of SIGINT:"
                                 f"\n{self.output[-3000:]}") from None

    def stop(self) -> None:
        """End it whatever its state (SIGTERM, then SIGKILL), and close its log."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class ArgusRun(Child):
    """``argus run --config CONFIG --run-dir RUN_DIR`` (paper: no ``--live``)."""

    def __init__(self, config: Path, run_dir: Path, env: Mapping[str, str] | None = None
                 ) -> None:
        self.run_dir = run_dir
        super().__init__("argus run",
                         [sys.executable, "-m", "argus_core.cli", "-v", "run", "--config",
                          str(config), "--run-dir", str(run_dir), "--no-progress"],
                         run_dir.parent / f"{run_dir.name}.log", env)

    def wait_for_fills(self, n: int, timeout_s: float = 60) -> int:
        """Wait until the run has booked ``n`` fills (failing early if it died)."""
        def enough() -> int:
            if not self.alive():
                raise AssertionError(f"argus run exited {self.proc.returncode}:\n"
                                     f"{self.output[-3000:]}")
            got = count(self.run_dir, "fills")
            return got if got >= n else 0

        try:
            return int(wait_for(enough, timeout_s, f"{n} fills in {self.run_dir}"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output[-3000:]}") from None


class ArgusServe(Child):
    """``argus serve RUN_DIR --port 0 ...``: the dashboard on a free port."""

    def __init__(self, run_dir: Path, *args: str, env: Mapping[str, str] | None = None
                 ) -> None:
        super().__init__("argus serve",
                         [sys.executable, "-m", "argus_core.cli", "serve", str(run_dir),
                          "--port", "0", *args],
                         run_dir.parent / "serve.log", env)
        try:
            found = wait_for(lambda: re.search(r"argus serve: (http://\S+?)/ ", self.output),
                             30, "argus serve to listen")
        except AssertionError:
            self.stop()
            raise AssertionError(f"argus serve did not start:\n{self.output[-3000:]}"
                                 ) from None
        self.url = found.group(1)
