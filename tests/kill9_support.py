"""Support for the kill -9 suite (``tests/test_kill9_live.py``).

Three things live here:

* the test plugin ``kill9``: a strategy ``kill9_flip`` that trades on every trigger
  event (buy when flat, sell what it holds when long), registered through a real
  ``argus`` entry point (a ``*.dist-info`` written next to a ``PYTHONPATH`` entry),
  so the child processes are the unmodified ``argus run --live`` CLI;
* :class:`KillSwitch`: SIGKILLs the current child when an exchange-side hook reaches
  the armed kill point (the exchanges call :meth:`KillSwitch.fire` from their request
  handlers), so the process dies at a precise step of the order path without any
  hook in product code;
* :class:`LiveChild` and :func:`kill_cycle`: start ``argus run --live`` on one run
  directory, kill it at each planned point, check the run-directory lock is free,
  restart, repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

# The test plugin imports what any third-party plugin imports: argus_core's public API.
from argus_core import (
    Bar,
    BookDelta,
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
    Trade,
    hookimpl,
)
from argus_core.runlock import RunDirLock

HERE = Path(__file__).resolve().parent
PLUGIN_NAME = "kill9"
STRATEGY = "kill9_flip"

# -- the test plugin ------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


@attrs.frozen
class FlipSettings:
    """``[plugins.kill9]``: what ``kill9_flip`` trades, on which events, how."""

    instrument_id: str = ""
    #: ``bar``, ``trade`` or ``book`` (book snapshots and deltas)
    trigger: str = "bar"
    quantity: Decimal = attrs.field(default=Decimal("0.001"), converter=Decimal)
    #: limit prices for marketable IOC limit orders; unset: market orders
    buy_limit: Decimal | None = attrs.field(default=None, converter=_dec)
    sell_limit: Decimal | None = attrs.field(default=None, converter=_dec)
    every: int = 1
    #: every ``rest_every``-th trigger (0: never) a GTC buy at ``rest_limit`` instead:
    #: it rests at the venue until someone trades with it (a maker fill, later)
    rest_every: int = 0
    rest_limit: Decimal | None = attrs.field(default=None, converter=_dec)


_TRIGGERS: dict[str, tuple[type, ...]] = {"bar": (Bar,), "trade": (Trade,),
                                           "book": (OrderBook, BookDelta)}


class Flip(Strategy):
    """Buys ``quantity`` when flat, sells everything it holds when long, on every
    ``every``-th trigger event: as many orders as the stream allows."""

    name = STRATEGY

    def __init__(self, settings: FlipSettings | None) -> None:
        self.s = settings or FlipSettings()
        self.seen = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
        """One order per trigger event: the side flips with the position."""
        if not isinstance(event, _TRIGGERS[self.s.trigger]) or \
                getattr(event, "instrument_id", None) != self.s.instrument_id:
            return []
        self.seen += 1
        if self.seen % self.s.every:
            return []
        if self.s.rest_every and self.seen % self.s.rest_every == 0:
            return [Intent(STRATEGY, self.s.instrument_id, Side.BUY, quantity=self.s.quantity,
                           limit_price=self.s.rest_limit, order_type=OrderType.LIMIT,
                           time_in_force=TimeInForce.GTC, reason="flip: rest")]
        held = ctx.portfolio.position(self.s.instrument_id).quantity
        kind = OrderType.MARKET if self.s.buy_limit is None else OrderType.LIMIT
        if held > 0:
            return [Intent(STRATEGY, self.s.instrument_id, Side.SELL, quantity=held,
                           limit_price=self.s.sell_limit, order_type=kind,
                           time_in_force=TimeInForce.IOC, reason="flip: sell", reduce_only=True)]
        return [Intent(STRATEGY, self.s.instrument_id, Side.BUY, quantity=self.s.quantity,
                       limit_price=self.s.buy_limit, order_type=kind,
                       time_in_force=TimeInForce.IOC, reason="flip: buy")]

    def get_state(self) -> dict[str, Any]:
        """Trigger events seen (checkpointed)."""
        return {"seen": self.seen}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore after a restart."""
        self.seen = int(state.get("seen", 0))


@hookimpl
def config_class() -> type:
    """``[plugins.kill9]`` settings."""
    return FlipSettings


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    """Register ``kill9_flip``."""
    register(STRATEGY, Flip)


def install_plugin(site: Path) -> str:
    """Write a ``kill9`` distribution (metadata + ``argus`` entry point -> this module)
    into ``site``; returns the ``PYTHONPATH`` under which a child process finds it."""
    dist = site / "argus_kill9_test_plugin-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: argus-kill9-test-plugin\n"
                                   "Version: 0\n")
    (dist / "entry_points.txt").write_text(f"[argus]\n{PLUGIN_NAME} = kill9_support\n")
    parts = [str(site), str(HERE), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


# -- killing ---------------------------------------------------------------------------


def _dead(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts: it holds no lock, runs no code)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def sigkill(pid: int, timeout_s: float = 5.0) -> None:
    """SIGKILL ``pid`` and wait until the kernel has ended it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while not _dead(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {pid} survived SIGKILL for {timeout_s} s")
        time.sleep(0.001)


class KillSwitch:
    """Kills the armed child when an exchange hook reaches the armed point.

    Exchange request handlers (threads, or the servers' event loop) call
    :meth:`fire` at each step; only the armed point kills, once.  :meth:`fire` returns
    after the child is dead, so what the exchange does next happens with nobody
    listening (an order acted on after its sender died, an answer to a dead socket).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._point: str | None = None
        self._skip = 0
        #: (point, pid) of every kill fired by a hook
        self.fired: list[tuple[str, int]] = []

    def arm(self, point: str, pid: int, skip: int = 0) -> None:
        """Kill ``pid`` at the ``skip``+1-th time ``point`` is reached."""
        with self._lock:
            self._point, self._pid, self._skip = point, pid, skip

    def disarm(self) -> None:
        """Nothing fires any more."""
        with self._lock:
            self._point = self._pid = None

    @property
    def armed(self) -> str | None:
        """The armed point, if any."""
        return self._point

    def fire(self, point: str) -> bool:
        """Kill the child if ``point`` is armed; True when it did (the child is dead)."""
        with self._lock:
            if self._point != point or self._pid is None:
                return False
            if self._skip > 0:
                self._skip -= 1
                return False
            pid, self._point, self._pid = self._pid, None, None
        sigkill(pid)
        self.fired.append((point, pid))
        return True


# -- children --------------------------------------------------------------------------


class LiveChild:
    """``argus run --live`` on one run directory, as a subprocess (output to a file)."""

    def __init__(self, config: Path, run_dir: Path, env: dict[str, str], logs: Path) -> None:
        self.config, self.run_dir, self.env, self.logs = config, run_dir, env, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.n = 0
        self.log_path: Path | None = None

    def start(self, *extra: str, verbose: bool = False) -> subprocess.Popen[bytes]:
        """Start the next process on the run directory (``verbose``: with Argus's INFO
        log, which says what a reconnect or a backfill did)."""
        self.n += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log_path = self.logs / f"child-{self.n:03d}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "argus_core.cli", *(["-v"] if verbose else []), "run",
                 "--config", str(self.config),
                 "--run-dir", str(self.run_dir), "--live", "--no-progress", *extra],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=self.run_dir.parent)  # not the checkout: imports come from sys.path
        return self.proc

    def output(self) -> str:
        """What the current process printed (its last 4000 characters)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-4000:]

    async def wait(self, timeout_s: float) -> int | None:
        """The exit status once the process ended, or None after ``timeout_s``."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.01)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the current process (if it still runs) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            sigkill(self.proc.pid)
            self.proc.wait(5)


def quiet_http_errors(server: Any) -> None:
    """A client killed mid-request resets its connection: expected here, not worth a
    traceback on stderr from ``socketserver``."""
    if server is not None:
        server.handle_error = lambda request, client_address: None


def ledger_rows(run_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows of the run's ledger read by a separate connection (empty before it exists)."""
    path = run_dir / "argus.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        return []
    finally:
        conn.close()


def numbering_problem(run_dir: Path) -> str | None:
    """The event numbering a restart continues from (the checkpoint's ``seq``) must not be
    behind an order already in the ledger: client order ids are ``<run>-<seq>-<slot>-<k>``,
    so a restart from behind re-derives ids that exist (the core then refuses to send
    those orders, with an ``order_id`` risk event)."""
    saved = ledger_rows(run_dir, "select seq from checkpoints where name = 'runner'")
    seqs = [int(r["client_order_id"].split("-")[1]) for r in ledger_rows(
        run_dir, "select client_order_id from orders where strategy != 'settlement'")]
    if not saved or not seqs or saved[0]["seq"] >= max(seqs):
        return None
    return (f"the checkpoint says event {saved[0]['seq']} while the ledger holds orders "
            f"up to event {max(seqs)}")


def integrity(run_dir: Path) -> str:
    """``PRAGMA integrity_check`` of the run's ledger (after every writer has ended)."""
    conn = sqlite3.connect(run_dir / "argus.db")
    try:
        return "; ".join(str(r[0]) for r in conn.execute("pragma integrity_check"))
    finally:
        conn.close()


def assert_lock_free(run_dir: Path) -> None:
    """The kernel released the dead writer's ``flock``: the run directory can be taken."""
    lock = RunDirLock.acquire(run_dir)  # raises LedgerError if a (dead) writer still holds it
    lock.release()


@attrs.define
class KillLog:
    """What a kill cycle did."""

    planned: list[str] = attrs.Factory(list)
    #: (planned point, how it died: the point itself, or "timed fallback")
    kills: list[tuple[str, str]] = attrs.Factory(list)
    restarts: int = 0
    seconds: float = 0.0

    def hit(self, point: str) -> int:
        """How many kills happened at ``point`` itself."""
        return sum(1 for p, how in self.kills if p == point and how == point)


TIMED = ("after_start", "mid_run")


async def kill_cycle(child: LiveChild, switch: KillSwitch, plan: Sequence[str], *,
                     rng: random.Random, fallback_s: float = 6.0,
                     progressed: Callable[[], int],
                     before_start: Callable[[str], str] | None = None,
                     after_kill: Callable[[int, str], None] | None = None) -> KillLog:
    """Start, kill at ``plan[i]``, check the lock is free, restart — once per plan entry.

    Exchange points are armed on the :class:`KillSwitch` (the exchange kills the child
    when it gets there); ``after_start`` kills at a random moment of the first 1.5 s,
    ``mid_run`` a random moment after the run placed another order (``progressed()``:
    orders in the ledger).  A point the run does not reach within ``fallback_s`` (e.g.
    no backfill this time) is still a kill, at that moment, logged as a timed fallback.
    ``before_start(point)`` may script the exchange (fault injection) for that kill and
    returns the point to arm; ``after_kill(n, point)`` may inspect what the dead process
    left behind.
    """
    log = KillLog(planned=list(plan))
    started = time.monotonic()
    for point in plan:
        armed = before_start(point) if before_start is not None else point
        proc = child.start()
        log.restarts += 1
        how = point
        if point == "after_start":
            await asyncio.sleep(rng.uniform(0.05, 1.5))
        elif point == "mid_run":
            base = progressed()
            deadline = time.monotonic() + fallback_s
            while progressed() <= base and time.monotonic() < deadline \
                    and proc.poll() is None:
                await asyncio.sleep(0.01)
            await asyncio.sleep(rng.uniform(0.0, 0.15))
        else:
            switch.arm(armed, proc.pid)
            if await child.wait(fallback_s) is None:
                how = "timed fallback"
            switch.disarm()
        if proc.poll() is not None and proc.returncode != -signal.SIGKILL:
            raise AssertionError(f"the run (before kill point {point!r}) ended by itself with "
                                 f"status {proc.returncode}:\n{child.output()}")
        if "being written by another process" in child.output():
            raise AssertionError(f"a restart was refused: the run directory was still "
                                 f"locked:\n{child.output()}")
        child.kill()
        assert child.proc is not None and child.proc.returncode == -signal.SIGKILL
        log.kills.append((point, how))
        print(f"kill {len(log.kills)}: {point} -> {how} "
              f"({time.monotonic() - started:.1f} s)", flush=True)
        assert_lock_free(child.run_dir)  # the kernel released the dead writer's flock
        if after_kill is not None:
            after_kill(len(log.kills), point)
    log.seconds = time.monotonic() - started
    return log
