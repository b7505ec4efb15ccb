"""Real processes for end-to-end tests of a paper run that a person follows and halts:
the local Kraken exchange (:mod:`kraken_paper_market`), ``argus run`` in paper mode on
it, and ``argus serve`` over its run directory.  Each is a child process speaking real
protocols (HTTP, WebSocket, SQLite files); the test reads the run's ledger read-only with
apsw, independently of the dashboard and the bot.

Used by the dashboard's browser tests and by the Telegram plugin's bot test (which puts
this folder on ``sys.path``).
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

HERE = Path(__file__).resolve().parent
MARKET_SCRIPT = HERE / "kraken_paper_market.py"
INSTRUMENT = "kraken:BTC/USD"
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
    the table does not exist yet."""
    path = run_dir / "argus.db"
    if not path.exists():
        return []
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.set_busy_timeout(5000)
        cursor = conn.execute(sql, params)
        try:
            names = [d[0] for d in cursor.getdescription()]
        except apsw.ExecutionCompleteError:
            return []
        return [dict(zip(names, r, strict=True)) for r in cursor]
    except apsw.SQLError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


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


class KrakenMarket(Child):
    """The local Kraken exchange process (:mod:`kraken_paper_market`): REST and WS URLs;
    :meth:`hold` pauses the market (no new bars), :meth:`release` lets it go on."""

    def __init__(self, tmp: Path, every_s: float = 0.2) -> None:
        self.ready = tmp / "market.json"
        self.hold_path = tmp / "market.hold"
        self.events_path = tmp / "market.events"
        super().__init__("the local Kraken exchange",
                         [sys.executable, str(MARKET_SCRIPT), "--ready", str(self.ready),
                          "--every", str(every_s), "--hold", str(self.hold_path),
                          "--events", str(self.events_path)],
                         tmp / "market.log")
        try:
            urls = wait_for(lambda: self.ready.exists() and json.loads(self.ready.read_text()),
                            30, "the local Kraken exchange to listen")
        except AssertionError:
            self.stop()
            raise AssertionError(f"the local Kraken exchange did not start:\n"
                                 f"{self.output[-3000:]}") from None
        self.rest_url, self.ws_url = str(urls["rest_url"]), str(urls["ws_url"])

    def hold(self) -> None:
        """Pause: no bar after the one being played."""
        self.hold_path.touch()

    def release(self) -> None:
        """Go on with the market."""
        self.hold_path.unlink(missing_ok=True)

    def events_sent(self) -> int:
        """Market events sent so far (each book frame, each completed bar)."""
        return int(self.events_path.read_text()) if self.events_path.exists() else 0

    def settle(self, run_dir: Path, quiet_s: float = 0.5, timeout_s: float = 20) -> None:
        """Hold the market and wait until neither the market nor the run has moved for
        ``quiet_s``: the bar in flight as the hold came has been sent and handled.  (The
        run's checkpoint is its only outside mark of progress, and an event that changes
        nothing commits without one: quiet, not a count, is the sign.)"""
        self.hold()

        def quiet() -> bool:
            before = (self.events_sent(), seq(run_dir))
            time.sleep(quiet_s)
            return (self.events_sent(), seq(run_dir)) == before

        wait_for(quiet, timeout_s, "the held market and the run to settle", poll_s=0)


def paper_config(path: Path, market: KrakenMarket, *, plugins: list[str],
                 extra: str = "") -> Path:
    """A paper-trading config: ``ma_cross`` (fast 2, slow 3) on ``market``'s BTC/USD with
    the paper broker; the builtin checks stay on, with the losing-streak breaker out of
    the way (the zigzag market pays fees on every round trip) so that the run stays
    ACTIVE until a person halts it.  ``extra``: more TOML (a plugin's table)."""
    names = ", ".join(json.dumps(p) for p in ["kraken", *plugins])
    path.write_text(f"""\
[argus]
plugins = [{names}]
mode = "paper"

[run]
venue = "kraken"
strategies = ["ma_cross"]

[plugins.example]
fast = 2
slow = 3

[plugins.risk]
max_consecutive_losses = 1000000

[plugins.kraken]
rest_url = "{market.rest_url}"
ws_url = "{market.ws_url}"
pairs = ["BTC/USD"]
channels = ["book", "ohlc"]
nonce_path = "{path.parent / 'kraken-nonce'}"
heartbeat_timeout_s = 60
dead_man_timeout_s = 0
{extra}""")
    return path


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
