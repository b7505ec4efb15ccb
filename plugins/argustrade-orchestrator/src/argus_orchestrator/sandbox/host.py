"""The host side of the sandbox: spawn, talk to, time out and kill strategy workers.

:class:`WorkerProcess` owns one worker (``worker.py`` started as a fresh
interpreter, never forked from this process, so no secret in this process's
memory, no open ledger handle and no environment variable reaches it).
:class:`SandboxedStrategy` is an :class:`argus_core.interfaces.Strategy` that
proxies every event to a worker and validates every reply; any failure
(timeout, crash, malformed reply, exception, policy breach) kills the worker
and raises :class:`WorkerFailure`, which the runner treats as a risk trigger.
The worker is hostile by assumption: every frame is bounded in size and
nesting depth before it is parsed, and anything odd in it is a
``WorkerFailure``, never another exception escaping into the host.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import cattrs

from argus_core import (
    CancelIntent,
    DataError,
    Intent,
    MarketEvent,
    Portfolio,
    Strategy,
    StrategyContext,
    converter,
    dump_event,
    redact,
)
from argus_orchestrator.errors import SandboxError
from argus_orchestrator.sandbox import worker as wire
from argus_orchestrator.sandbox.validator import ALLOWED_IMPORTS

log = logging.getLogger(__name__)

WORKER_PATH = Path(wire.__file__).resolve()

#: Protections a worker can report; ``require`` in the policy names a subset.
PROTECTIONS = tuple(wire.PROTECTION_KEYS)

#: Protections every worker must show, whatever the policy says: without any of them a
#: strategy could reach the host (its processes, files, network or uid), so the host
#: refuses to run it (fail closed) rather than run it less contained.  Landlock (not in
#: every kernel) and the audit hook (defence in depth) are optional, via ``require``.
MANDATORY_PROTECTIONS = ("env_empty", "rlimits", "network_blocked", "net_namespace",
                         "pid_namespace", "uid_separated", "own_session", "chroot",
                         "capabilities_dropped", "no_new_privs", "seccomp")

#: Keys an AI strategy's intent dict may carry (``strategy`` is set by the host).
CANCEL_KEYS = frozenset({"cancel", "instrument_id", "reason"})
INTENT_KEYS = frozenset({"instrument_id", "side", "quantity", "limit_price", "order_type",
                         "time_in_force", "reason", "reduce_only", "forecast"})

#: Bounds on the numbers an intent may carry, inside which every sizer and risk check
#: computes finite values: a quantity or price outside them, a number sent as a string
#: (``"1e999999"`` is a finite Decimal that overflows the risk checks' arithmetic and
#: prints as a million digits), or a forecast whose Kelly ratio ``mu / sigma**2`` leaves
#: the floats (``sigma = 1e-200`` squares to 0.0: the sizer divided by zero and the
#: running loop stopped) is a malformed reply, refused here before the core sees it.
QUANTITY_RANGE = (1e-12, 1e15)  # quantity and limit_price
FORECAST_RANGES = {"mu": (-1e6, 1e6), "sigma": (1e-150, 1e6), "confidence": (0.0, 1.0),
                   "p_win": (0.0, 1.0), "payoff": (-1e6, 1e6)}
#: Most CPU seconds a worker may report (it reports its own; the host only reads it).
MAX_CPU_REPORT = 1e9
#: Most characters of a worker's text the host redacts at once, and of a failure's message.
#: ``redact`` (the core's) takes time quadratic in some texts ('-secret' * n: 56 KB took
#: 20 s), so a reply's text is cut *before* it is redacted: a 3.5 MB cancel reason held
#: the running loop for hours.  The cut keeps a key that starts within what is kept whole.
MAX_REDACTED = 1000
MAX_MESSAGE = 4000
#: The start-up phase in which the strategy's own code runs (see ``load_timeout_s``).
LOADING = "loading the strategy"
#: Line and paragraph separators: not control characters, but line ends to some readers.
_SEPARATORS = frozenset("\u2028\u2029\x85")


def _plain(text: str) -> str:
    """``text`` made inert: lone surrogates escaped (``'\\ud800'``), so it can be encoded,
    and control and format characters (and line or paragraph separators) as spaces.

    JSON carries ``"\\ud800"`` and ``json.loads`` turns it into a lone surrogate, which
    no UTF-8 writer accepts: a reason or an exception message made of ``chr(0xD800)``
    raised ``UnicodeEncodeError`` out of the ledger (apsw) and stopped the running loop.
    A reason of ``"\\x1b]52;c;...\\x07"`` (a terminal's set-clipboard sequence), a
    newline and a forged log line, or a bidi override reached the ledger, the logs and
    every terminal that shows them as written.  One character for one: cuts still hold.
    """
    if text.isascii():
        if text.isprintable():
            return text
    else:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        if text.isprintable():
            return text
    return "".join(" " if unicodedata.category(ch)[0] == "C" or ch in _SEPARATORS else ch
                   for ch in text)


def _worker_text(text: str, keep: int, cut: int = MAX_REDACTED) -> str:
    """A worker's text as the host may keep it: cut, made encodable, cut again (escapes
    lengthen it), redacted (see MAX_REDACTED) and cut to ``keep``."""
    return redact(_plain(text[:cut])[:cut])[:keep]


def _shown(names: Any, limit: int = 3) -> str:
    """A few of a reply's key names, each cut short (a key may be megabytes long)."""
    items = sorted(str(n)[:40] for n in names)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{items[:limit]}{more}"


class WorkerFailure(SandboxError):
    """A worker timed out, crashed, answered nonsense or broke policy; it has been killed.

    ``kind`` is one of ``startup``, ``timeout``, ``crash``, ``malformed``,
    ``exception``, ``policy``.
    """

    def __init__(self, kind: str, message: str) -> None:
        # Bounded here, once for every path: the message goes to the log and the ledger's
        # risk events, each of which redacts it (see MAX_REDACTED).
        # Made encodable too: it may quote a worker's text (see ``_plain``).
        if len(message) > MAX_MESSAGE:
            message = (f"{_plain(message[:MAX_MESSAGE])[:MAX_MESSAGE]}... "
                       f"[{len(message) - MAX_MESSAGE} more characters]")
        else:
            message = _plain(message)[:MAX_MESSAGE]
        super().__init__(message)
        self.kind = kind


@attrs.frozen
class WorkerPolicy:
    """Limits and protections of one worker (every field has a safe default).

    ``load_timeout_s`` bounds the strategy's own start-up (compiling and running its
    module, then ``Strategy()``), counted from the moment the worker reports itself
    contained; ``start_timeout_s`` bounds the whole start.
    ``namespaces``, ``chroot`` and ``seccomp`` can be switched off only to see
    what a machine lacks: the protections they give are mandatory
    (:data:`MANDATORY_PROTECTIONS`), so such a worker refuses to run strategy
    code.  ``landlock`` and ``python_guards`` are extra layers; ``require``
    names any of them that must be active too.  ``max_frame_bytes`` and
    ``max_frame_depth`` bound every reply the host decodes.
    """

    call_timeout_s: float = 0.25
    start_timeout_s: float = 15.0
    load_timeout_s: float = 1.0
    cpu_seconds: int = 120
    memory_mb: int = 512
    max_open_files: int = 32
    max_file_bytes: int = 1024 * 1024
    max_frame_bytes: int = 4 * 1024 * 1024
    max_frame_depth: int = wire.DEFAULT_MAX_DEPTH
    max_state_bytes: int = 256 * 1024
    max_intents: int = 4
    recycle_cpu_fraction: float = 0.8
    namespaces: bool = True
    chroot: bool = True
    landlock: bool = True
    seccomp: bool = True
    python_guards: bool = True
    require: tuple[str, ...] = ("env_empty", "rlimits", "network_blocked")

    def __attrs_post_init__(self) -> None:
        unknown = set(self.require) - set(PROTECTIONS)
        if unknown:
            raise SandboxError(f"unknown required protection(s) {sorted(unknown)}; "
                               f"known: {', '.join(PROTECTIONS)}")


def active_protections(report: dict[str, Any]) -> dict[str, bool]:
    """Which protections a worker's start-up report shows as active."""
    return wire.active_protections(report)


@functools.cache
def _shared_libraries() -> dict[str, str | None]:
    """Where libc and libseccomp are (ldconfig runs once here, not in every worker)."""
    import ctypes.util

    return {name: ctypes.util.find_library(name) for name in ("c", "seccomp")}


@functools.cache
def _pyseccomp_path() -> str | None:
    """The file of the ``pyseccomp`` module, which the worker loads by path (it runs
    without site-packages); None when it is not installed (the worker then refuses)."""
    spec = importlib.util.find_spec("pyseccomp")
    return spec.origin if spec is not None else None


class WorkerProcess:
    """One running worker: length-prefixed JSON over its stdin/stdout, with deadlines."""

    def __init__(self, source: str, policy: WorkerPolicy | None = None) -> None:
        self.policy = policy or WorkerPolicy()
        self.source = source
        self.report: dict[str, Any] = {}
        self.events: list[str] = []
        self.cpu_s = 0.0
        self.last_frame_bytes = 0  # body size of the last frame received
        self._next_id = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._root: str | None = None
        self._stderr: Any = None
        self._start()

    # -- lifecycle --------------------------------------------------------------------------
    def _start(self) -> None:
        p = self.policy
        self._root = tempfile.mkdtemp(prefix="argus-sbx-")
        os.chmod(self._root, 0o700)  # the worker drops to nobody: it cannot even list it
        # stderr: an unlinked host file the worker can only append to (not read back), its
        # size capped by RLIMIT_FSIZE; the host keeps a separate read handle.
        err_fd, err_path = tempfile.mkstemp(prefix="argus-sbx-err-")
        child_err = os.open(err_path, os.O_WRONLY | os.O_APPEND)
        os.unlink(err_path)
        self._stderr = os.fdopen(err_fd, "rb")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(WORKER_PATH)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=child_err,
                env={}, cwd=self._root, close_fds=True, start_new_session=True)
        finally:
            os.close(child_err)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        # Non-blocking both ways: try the pipe first, poll only when it is not ready.
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)
        init = {"op": "init", "source": self.source, "policy": {
            "root": self._root, "cpu_seconds": p.cpu_seconds, "memory_mb": p.memory_mb,
            "max_open_files": p.max_open_files, "max_file_bytes": p.max_file_bytes,
            "max_frame_bytes": p.max_frame_bytes, "max_frame_depth": p.max_frame_depth,
            "libseccomp": _pyseccomp_path(), "libraries": _shared_libraries(),
            "namespaces": p.namespaces,
            "chroot": p.chroot, "landlock": p.landlock, "seccomp": p.seccomp,
            "python_guards": p.python_guards,
            # Module -> members: the worker hands out a view of these members only.
            "allowed_imports": {module: sorted(members)
                                for module, members in sorted(ALLOWED_IMPORTS.items())},
            # The worker checks these itself before the strategy's first line runs.
            "require": list(dict.fromkeys((*MANDATORY_PROTECTIONS, *p.require)))}}
        try:
            self._handshake(init)
        except WorkerFailure:
            raise
        except Exception as exc:
            # The start-up frames are as untrusted as any reply: whatever breaks reading
            # them is the worker's failure (it is killed), never another exception that
            # leaves it running and escapes the callers, which fence only SandboxError.
            raise self._fail("startup", f"start-up reply could not be read: "
                                        f"{type(exc).__name__}: {str(exc)[:200]}") from None

    def _handshake(self, init: dict[str, Any]) -> None:
        """Send ``init``, then read 'loading' and 'ready' (or 'failed') within deadlines."""
        p = self.policy
        deadline = time.monotonic() + p.start_timeout_s
        self._send(init, deadline, during="start-up")
        reply = self._receive(deadline, during="start-up")
        # The first frame is written before any line of the strategy runs; every later
        # one may be the strategy's own forgery (import-time code can write to the
        # pipe), so the protections are read from the first frame's report only.
        trusted = reply.get("report")
        if reply.get("op") == "loading":
            self._adopt_report(trusted)  # refused here, before waiting on strategy code
            # Contained; what runs from here is the strategy's own code (its __init__
            # is accepted with any body).  Under the start-up deadline alone, a loop
            # there held every start, in the running loop too, for 15 s.
            deadline = min(deadline, time.monotonic() + p.load_timeout_s)
            reply = self._receive(deadline, during=LOADING)
        if reply.get("op") != "ready":
            stage = reply.get("stage", "?")
            self.kill()
            # The worker's words, bounded: strategy code at import could have forged them.
            error = _worker_text(str(reply.get("error", reply)), 2000, cut=4000)
            raise WorkerFailure("startup", f"sandbox worker failed during "
                                           f"{str(stage)[:40]}: {error}")
        self._adopt_report(trusted)
        events = reply.get("events")
        self.events = [e for e in events if isinstance(e, str)] if isinstance(events, list) \
            else ["bar"]

    def _adopt_report(self, report: Any) -> None:
        """Take the worker's start-up report, or kill it (``WorkerFailure``) unless the
        report is an object showing every protection the policy requires."""
        report = {} if report is None else report  # none at all: every protection missing
        if not isinstance(report, dict):
            # A report of [1] (once read from the 'ready' frame, which strategy code can
            # forge) raised AttributeError out of this constructor, the worker running.
            raise self._fail("startup", f"the start-up report is "
                                        f"{type(report).__name__}, not an object")
        self.report = report
        active = active_protections(report)
        missing = [name for name in dict.fromkeys((*MANDATORY_PROTECTIONS,
                                                   *self.policy.require))
                   if not active.get(name)]
        if missing:
            self.kill()
            raise WorkerFailure("startup", f"sandbox protections required by policy are not "
                                           f"active on this machine: {', '.join(missing)}; "
                                           f"refusing to run the strategy uncontained "
                                           f"(worker report: "
                                           f"{json.dumps(report)[:2000]})")

    @property
    def alive(self) -> bool:
        """True while the worker process runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The worker's process id (None once killed)."""
        return self._proc.pid if self._proc is not None else None

    def kill(self) -> None:
        """Kill the worker (and anything it left) and remove its directory.

        The process the host started supervises the contained child (PID 1 of its own
        namespace): SIGTERM makes it SIGKILL and reap the child, so nothing is left to
        be reparented; SIGKILL to the whole process group is the fallback.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def close(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        if self.alive:
            try:
                self._send({"op": "shutdown"}, time.monotonic() + 0.5, during="shutdown")
                assert self._proc is not None
                self._proc.wait(timeout=1.0)
            except (WorkerFailure, subprocess.TimeoutExpired):
                pass
        self.kill()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stderr_tail(self, limit: int = 2000) -> str:
        """The end of what the worker wrote to stderr, redacted."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return redact(self._stderr.read().decode("utf-8", "replace"))

    # -- calls --------------------------------------------------------------------------------
    def call(self, request: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send one request and return the reply; ``WorkerFailure`` (worker killed) otherwise.

        A worker that died since its last reply is found by the pipe (``crash``, with its
        exit status), not by polling the process on every call."""
        if self._proc is None:
            raise WorkerFailure("crash", "sandbox worker is not running (killed)")
        deadline = time.monotonic() + (timeout_s or self.policy.call_timeout_s)
        self._next_id += 1
        self._send({**request, "id": self._next_id}, deadline, during="call")
        reply = self._receive(deadline, during="call")
        if type(reply.get("id")) is not int or reply["id"] != self._next_id:
            raise self._fail("malformed", f"reply id {str(reply.get('id'))[:40]!r} does not "
                                          f"match request {self._next_id} (forged frame?)")
        assert self._proc is not None and self._proc.stdout is not None
        if _ready(self._proc.stdout.fileno(), select.POLLIN, 0) & select.POLLIN:
            # Bytes beyond the one reply: a forged or desynchronised stream.
            raise self._fail("malformed", "wrote more than one reply to one request")
        cpu = reply.get("cpu_s")
        if cpu is not None:
            # float() of a 400-digit integer raised OverflowError here, out of the host's
            # reach of WorkerFailure (and with the worker left running).
            problem = _number_problem("cpu_s", cpu, 0.0, MAX_CPU_REPORT)
            if problem:
                raise self._fail("malformed", f"reply's {problem}")
            self.cpu_s = float(cpu)
        return reply

    def _fail(self, kind: str, message: str) -> WorkerFailure:
        note = self._exit_note()
        self.kill()
        tail = self.stderr_tail(400).strip()
        detail = f"{message}{note}" + (f"; stderr: {tail}" if tail else "")
        return WorkerFailure(kind, f"sandbox worker {kind}: {detail}")

    def _exit_note(self) -> str:
        proc = self._proc
        if proc is None or proc.poll() is None:
            return ""
        code = proc.returncode
        if code < 0:
            try:
                return f" (killed by {signal.Signals(-code).name})"
            except ValueError:
                return f" (killed by signal {-code})"
        return f" (exited with status {code})"

    def _send(self, obj: dict[str, Any], deadline: float, *, during: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        data = wire.encode_frame(obj)
        fd = self._proc.stdin.fileno()
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:  # the pipe is full: wait until it drains
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._fail("timeout", f"did not accept input within the deadline "
                                                f"({during})") from None
                _ready(fd, select.POLLOUT, remaining)
                continue
            except (BrokenPipeError, OSError):
                raise self._fail("crash", f"closed its input ({during})") from None
            view = view[written:]

    def _receive(self, deadline: float, *, during: str) -> dict[str, Any]:
        head = self._read_exact(wire.HEADER.size, deadline, during)
        (length,) = wire.HEADER.unpack(head)
        if length > self.policy.max_frame_bytes:
            raise self._fail("malformed", f"sent a frame of {length} bytes (limit "
                                          f"{self.policy.max_frame_bytes})")
        body = self._read_exact(length, deadline, during)
        self.last_frame_bytes = length
        try:
            return wire.decode_body(body, self.policy.max_frame_depth)
        except wire.FrameError as exc:
            raise self._fail("malformed", str(exc)) from None

    def _read_exact(self, n: int, deadline: float, during: str) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        chunks: list[bytes] = []
        got = 0
        while got < n:
            try:
                chunk = os.read(fd, n - got)
            except BlockingIOError:  # nothing yet: wait for it, within the deadline
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    limit = (self.policy.call_timeout_s if during == "call"
                             else self.policy.load_timeout_s if during == LOADING
                             else self.policy.start_timeout_s)
                    raise self._fail("timeout", f"no reply within {limit}s ({during})") \
                        from None
                _ready(fd, select.POLLIN, remaining)
                continue
            if not chunk:
                # Give the kernel a moment to reap so the exit status names the signal.
                if self._proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._proc.wait(timeout=0.5)
                raise self._fail("crash", f"closed its output ({during})")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ready(fd: int, events: int, timeout_s: float) -> int:
    """``fd``'s poll events (0: not ready, or hung up) within ``timeout_s``.

    poll, not select: select cannot watch descriptors numbered 1024 or above, which a
    busy host may well hand out to worker pipes.
    """
    poller = select.poll()
    poller.register(fd, events)
    ready = poller.poll(max(0, int(timeout_s * 1000 + 0.999)))
    return ready[0][1] if ready else 0


def plain_event(event: MarketEvent) -> dict[str, Any]:
    """A market event as the plain dict AI strategies receive (numbers as floats)."""
    data = dump_event(event)
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if isinstance(value, Decimal):
            data[field.name] = float(value)
    return data


def plain_portfolio(portfolio: Portfolio) -> dict[str, Any]:
    """The portfolio as plain floats: cash, equity and non-zero positions."""
    return {"cash": float(portfolio.cash), "equity": float(portfolio.equity),
            "positions": {iid: float(p.quantity) for iid, p in portfolio.positions.items()
                          if p.quantity != 0}}


def _number_problem(name: str, value: Any, low: float, high: float) -> str | None:
    """Why ``value`` is not a JSON number in ``[low, high]``, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a JSON number, not {type(value).__name__}"
    if not low <= value <= high:  # exact for integers of any size: no float() overflow
        return f"{name} {str(value)[:40]} is outside [{low:g}, {high:g}]"
    return None


def _intent_problem(item: dict[str, Any]) -> str | None:
    """Why an intent's values are not what the contract says (numbers within their
    bounds, a text reason, a boolean reduce_only), or None.  Types are checked here
    because the converter is lenient: it turns ``"1e999999"`` into a Decimal, a list
    reason into its repr (neither redacted nor shortened) and ``"no"`` into True."""
    for name in ("quantity", "limit_price"):
        if item.get(name) is not None:
            problem = _number_problem(name, item[name], *QUANTITY_RANGE)
            if problem:
                return problem
    if "reason" in item and not isinstance(item["reason"], str):
        return f"reason must be text, not {type(item['reason']).__name__}"
    if "reduce_only" in item and not isinstance(item["reduce_only"], bool):
        return f"reduce_only must be true or false, not {type(item['reduce_only']).__name__}"
    forecast = item.get("forecast")
    if forecast is None:
        return None
    if not isinstance(forecast, dict):
        return f"forecast must be an object, not {type(forecast).__name__}"
    for name, value in forecast.items():
        bounds = FORECAST_RANGES.get(name)
        if bounds is None:
            return f"forecast has the unknown key {str(name)[:40]!r}"
        if value is None and name in ("p_win", "payoff"):
            continue
        if name == "sigma" and value == 0 and not isinstance(value, bool):
            continue  # no spread given: the sizer sizes it to zero
        problem = _number_problem(f"forecast.{name}", value, *bounds)
        if problem:
            return problem + (" (or 0)" if name == "sigma" else "")
    return None


def _json_size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":"), allow_nan=False))


class SandboxedStrategy(Strategy):
    """An AI-written strategy running in a :class:`WorkerProcess`, seen as a normal Strategy.

    The host keeps the authoritative copy of the strategy's JSON state, so a
    hot-swap hand-over or a worker restart never depends on the worker's
    cooperation.  Every reply is validated: intents must be dicts with the
    contract's keys, for instruments this strategy has seen, at most
    ``policy.max_intents`` per event, and the state must stay JSON and small.
    """

    def __init__(self, source: str, *, name: str = "ai", policy: WorkerPolicy | None = None,
                 on_failure: Callable[[WorkerFailure], None] | None = None) -> None:
        self.name = name  # type: ignore[misc]  # instance-level name: one per slot
        self.source = source
        self.policy = policy or WorkerPolicy()
        self.on_failure = on_failure
        self.state: dict[str, Any] = {}
        self.failure: WorkerFailure | None = None
        self.calls = 0
        self._seen: set[str] = set()
        #: The worker that holds ``state`` as it is (it keeps what it last replied): calls
        #: to it leave the state out; any other worker (fresh, or after ``set_state``)
        #: is sent the state first.
        self._state_held_by: WorkerProcess | None = None
        self.worker: WorkerProcess | None = WorkerProcess(source, self.policy)
        self.events = frozenset(self.worker.events)

    def __deepcopy__(self, memo: dict[int, Any]) -> SandboxedStrategy:
        """A fresh worker on the same source and a copy of the host-side state.

        The lab copies strategies so every backtest starts clean; a worker
        process (pipes, locks) cannot be copied, but it can be started again.
        """
        clone = SandboxedStrategy(self.source, name=self.name, policy=self.policy,
                                  on_failure=self.on_failure)
        clone.state = json.loads(json.dumps(self.state))
        return clone

    @property
    def protections(self) -> dict[str, bool]:
        """What the current worker reported as active at start-up."""
        return active_protections(self.worker.report if self.worker else {})

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        """Proxy ``event`` to the worker; validated intents, or ``WorkerFailure``."""
        if self.failure is not None:
            return ()  # dead until replaced; the failure was already raised once
        payload = plain_event(event)
        if payload["type"] not in self.events:
            return ()  # not received: its instrument stays one the strategy may not trade
        iid = getattr(event, "instrument_id", None)
        if isinstance(iid, str):
            self._seen.add(iid)
        request = {"op": "call", "event": payload, "portfolio": plain_portfolio(ctx.portfolio)}
        try:
            # Inside the try: a worker that cannot be (re)started, or that died by itself,
            # is this strategy's failure, recorded once (not retried on every event).
            self._ensure_worker()
            assert self.worker is not None
            if self._state_held_by is not self.worker:
                request["state"] = self.state
            self._state_held_by = None  # until the reply is accepted
            reply = self.worker.call(request)
            intents, state = self._validate(reply)
        except WorkerFailure as exc:
            self._failed(exc)
            raise
        except Exception as exc:
            # A reply odd enough to break validation itself is still the worker's fault.
            failure = self._malformed(f"reply could not be validated: "
                                      f"{type(exc).__name__}: {str(exc)[:200]}")
            self._failed(failure)
            raise failure from None
        self.state = state
        self._state_held_by = self.worker
        self.calls += 1
        return intents

    def _ensure_worker(self) -> None:
        w = self.worker
        if w is not None and not w.alive:
            # Only the host ends a worker (close, or kill with the failure recorded), so one
            # that exited by itself between calls crashed.  Restarting it quietly let a
            # worker that replied and then exited cost a fresh start (up to the start-up
            # deadline) on every event, with no failure ever recorded.
            raise w._fail("crash", "exited between calls")
        if w is None:
            self.worker = WorkerProcess(self.source, self.policy)
        elif w.cpu_s > self.policy.recycle_cpu_fraction * self.policy.cpu_seconds:
            # Long-lived live workers would hit RLIMIT_CPU: restart early with the same state.
            w.close()
            self.worker = WorkerProcess(self.source, self.policy)

    def _malformed(self, message: str) -> WorkerFailure:
        if self.worker is not None:
            self.worker.kill()
        return WorkerFailure("malformed", f"strategy {self.name!r}: {message}")

    def _validate(self, reply: dict[str, Any]
                  ) -> tuple[list[Intent | CancelIntent], dict[str, Any]]:
        if reply.get("ok") is False:
            if self.worker is not None:
                self.worker.kill()
            error = _worker_text(str(reply.get("error")), 500)
            raise WorkerFailure("exception", f"strategy {self.name!r} raised {error}")
        if reply.get("ok") is not True or not isinstance(reply.get("intents"), list):
            raise self._malformed("reply is not {ok: true, intents: [...], state: {...}}")
        raw, state = reply["intents"], reply.get("state")
        if not isinstance(state, dict):
            raise self._malformed("state must be a JSON object")
        # The frame bounds the state's size: a number re-encodes at most 4.5x longer
        # ("1e15" -> "1000000000000000.0"), a string at most 3x; measure only when that
        # bound does not settle it.
        w = self.worker
        frame_bytes = w.last_frame_bytes if w is not None else self.policy.max_state_bytes
        if frame_bytes * 5 > self.policy.max_state_bytes and \
                _json_size(state) > self.policy.max_state_bytes:
            raise self._malformed(f"state exceeds {self.policy.max_state_bytes} bytes")
        if len(raw) > self.policy.max_intents:
            raise self._malformed(f"{len(raw)} intents for one event (limit "
                                  f"{self.policy.max_intents}): overtrading")
        intents: list[Intent | CancelIntent] = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self._malformed(f"intent {i} is not an object")
            if "cancel" in item:
                intents.append(self._cancel_intent(i, item))
                continue
            extra = set(item) - INTENT_KEYS
            if extra:
                raise self._malformed(f"intent {i} has unknown keys {_shown(extra)}")
            problem = _intent_problem(item)
            if problem:
                raise self._malformed(f"intent {i} is invalid: {problem}")
            if not self._known(item.get("instrument_id")):
                raise self._malformed(f"intent {i} names instrument "
                                      f"{str(item.get('instrument_id'))[:80]!r} that this "
                                      f"strategy has not received events for")
            if "reason" in item:  # a string (checked above): redacted and short
                item = {**item, "reason": _worker_text(item["reason"], 200)}
            try:
                intents.append(converter.structure({**item, "strategy": self.name}, Intent))
            except (DataError, cattrs.BaseValidationError, TypeError, ValueError,
                    KeyError) as exc:
                detail = exc
                if isinstance(exc, cattrs.BaseValidationError):
                    detail = "; ".join(cattrs.transform_error(exc))  # type: ignore[assignment]
                raise self._malformed(f"intent {i} is invalid: {detail}") from None
        return intents, state

    def _cancel_intent(self, i: int, item: dict[str, Any]) -> CancelIntent:
        """``{"cancel": true[, "instrument_id": ...][, "reason": ...]}``: cancel this
        strategy's own working orders (never anyone else's: the strategy is the host's)."""
        extra = set(item) - CANCEL_KEYS
        if extra:
            raise self._malformed(f"intent {i} (a cancel) has unknown keys {_shown(extra)}")
        if item["cancel"] is not True:
            raise self._malformed(f"intent {i}: cancel must be true")
        instrument = item.get("instrument_id")
        if instrument is not None and not self._known(instrument):
            raise self._malformed(f"intent {i} cancels on instrument {str(instrument)[:80]!r} "
                                  f"that this strategy has not received events for")
        reason = item.get("reason", "")
        if not isinstance(reason, str):
            raise self._malformed(f"intent {i}: reason must be text")
        return CancelIntent(self.name, instrument, _worker_text(reason, 200))

    def _known(self, instrument: Any) -> bool:
        """An instrument id this strategy has received events for (any JSON may come in)."""
        return isinstance(instrument, str) and instrument in self._seen

    def _failed(self, exc: WorkerFailure) -> None:
        log.warning("sandboxed strategy %r failed (%s): %s", self.name, exc.kind, exc)
        self.failure = exc
        if self.on_failure is not None:
            self.on_failure(exc)

    def ping(self) -> dict[str, Any]:
        """Round-trip a no-op (health check)."""
        self._ensure_worker()
        assert self.worker is not None
        return self.worker.call({"op": "ping"})

    def get_state(self) -> dict[str, Any]:
        """A deep copy of the host-held state (the worker is not consulted)."""
        return json.loads(json.dumps(self.state))

    def set_state(self, state: dict[str, Any]) -> None:
        """Adopt ``state`` (e.g. handed over by the previous version)."""
        try:
            size = _json_size(state)
        except (TypeError, ValueError) as exc:
            raise SandboxError(f"strategy {self.name!r}: state to hand over is not JSON: "
                               f"{exc}") from None
        if not isinstance(state, dict) or size > self.policy.max_state_bytes:
            raise SandboxError(f"strategy {self.name!r}: state must be a JSON object of at "
                               f"most {self.policy.max_state_bytes} bytes")
        self.state = json.loads(json.dumps(state))
        self._state_held_by = None

    def close(self) -> None:
        """Stop the worker."""
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def __del__(self) -> None:
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.kill()
