"""The HTTP server: ``/metrics`` (Prometheus text format) and ``/health`` (JSON), in a
thread of its own so that a slow scrape never delays an event."""

from __future__ import annotations

import contextlib
import errno
import io
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from argus_core import ConfigError, LedgerError, TradingState
from argus_monitor.collector import RunCollector
from argus_monitor.config import MonitorSettings
from argus_monitor.ledger_view import UNKNOWN_STATE, LedgerView
from argus_monitor.probe import LoopProbe

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
_servers: list[MonitorServer] = []  # every server this process started
_servers_lock = threading.Lock()


#: Seconds a client may take to send its whole request, however it trickles it: a
#: half-sent one (slowloris) holds a thread no longer than this.
REQUEST_TIMEOUT_S = 10.0
#: Connections open at once.  Each holds a thread and a file descriptor of the trading
#: process, which must never run out of them: when full, the one that has been sending
#: its request longest is cut off for the newcomer (see :class:`_Connections`).
MAX_CONNECTIONS = 64
#: Seconds a newcomer waits for the slot a cut-off connection frees; then 503.
ADMIT_WAIT_S = 1.0
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
         b"Retry-After: 1\r\nConnection: close\r\n\r\nmonitor busy: too many connections\n")
#: Methods answered; any other is 405.
METHODS = ("GET", "HEAD")
#: ``Host`` names a loopback monitor answers (a web page on a DNS name rebound to
#: 127.0.0.1 names that name, and is refused).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class _Connections:
    """At most ``limit`` connections at once.  When all are taken, the one still sending
    its request for the longest is cut off to make room: a scraper sends its request at
    once and is answered in milliseconds, so the slots a slow or idle client (slowloris)
    holds are the ones given up, and a flood of them never locks a scraper out."""

    def __init__(self, limit: int) -> None:
        self._free = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._reading: dict[int, socket.socket] = {}  # id -> socket, oldest first

    def admit(self, sock: socket.socket) -> bool:
        """Take a slot for ``sock`` (cutting off the oldest reader when full); False
        when none came free in :data:`ADMIT_WAIT_S`."""
        if not self._free.acquire(blocking=False):
            self._cut_oldest_reader()
            if not self._free.acquire(timeout=ADMIT_WAIT_S):
                return False
        with self._lock:
            self._reading[id(sock)] = sock
        return True

    def request_read(self, sock: socket.socket) -> None:
        """``sock`` has sent its request: it is no longer cut off for a newcomer."""
        with self._lock:
            self._reading.pop(id(sock), None)

    def release(self, sock: socket.socket) -> None:
        """``sock`` is done: its slot is free."""
        self.request_read(sock)
        self._free.release()

    def _cut_oldest_reader(self) -> None:
        with self._lock:
            oldest = next(iter(self._reading.values()), None)
            self._reading.pop(id(oldest), None)
        if oldest is not None:
            with contextlib.suppress(OSError):  # its thread reads EOF, ends, frees the slot
                oldest.shutdown(socket.SHUT_RDWR)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hung client never keeps the process alive
    request_queue_size = 64  # (socketserver's 5 drops a scraper's SYN under a burst)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.connections = _Connections(MAX_CONNECTIONS)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connections.admit(request):
            log.debug("monitor: %s refused: %d connections busy", client_address,
                      MAX_CONNECTIONS)
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: its slot is free again
            self.connections.release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up: one debug line, not a traceback on stderr.
        log.debug("monitor: request from %s failed", client_address, exc_info=True)


def _refuse_busy(request: socket.socket) -> None:
    """Say 503 without waiting: a client that does not read gets nothing."""
    try:
        request.setblocking(False)
        request.send(_BUSY)
    except OSError:
        pass


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, every read waiting at most what is left until ``deadline_s``
    (monotonic): a request trickled a byte at a time ends at the deadline all the same
    (a socket timeout alone restarts at every byte)."""

    def __init__(self, sock: socket.socket, deadline_s: float) -> None:
        self._sock, self._deadline_s = sock, deadline_s

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left_s = self._deadline_s - time.monotonic()
        if left_s <= 0:
            raise TimeoutError("the request was not sent in time")
        self._sock.settimeout(left_s)
        return self._sock.recv_into(buffer)


class _QuietHandler(WSGIRequestHandler):
    """One request: read by the deadline, answered, logged at debug level.  Every
    malformed request gets a plain-text 4xx with a status line (the standard library
    answers an HTTP/0.9-style one with a bare body, or holds it for headers)."""

    raw_requestline: bytes  # (set by wsgiref's handle() before parse_request)
    timeout = REQUEST_TIMEOUT_S  # for the whole request, not each read
    # (the standard library's default, HTTP/0.9, drops the status line of its errors)
    default_request_version = "HTTP/1.0"
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s: %(explain)s\n"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # (the socket stays open: setup's file only let go of it)
        self.rfile = io.BufferedReader(
            _DeadlineReader(self.connection,
                            time.monotonic() + float(self.timeout or REQUEST_TIMEOUT_S)))

    def parse_request(self) -> bool:
        words = self.raw_requestline.decode("iso-8859-1").split()
        if len(words) != 3:  # before the headers: an HTTP/0.9 request sends none
            self._refuse(400, "an empty request line" if not words else
                         f"{len(words)} word(s) in the request line; send "
                         f"'GET /metrics HTTP/1.1' (HTTP/0.9 is not served)")
            return False
        parsed = super().parse_request()  # (reads the headers, through the deadline)
        self.connection.settimeout(self.timeout)  # the answer gets a full timeout again
        server = self.server
        if isinstance(server, _ThreadingServer):
            server.connections.request_read(self.connection)
        return parsed

    def _refuse(self, code: int, why: str) -> None:
        """Answer ``code`` (a status line, then ``why``) and close."""
        self.command, self.request_version = "", self.default_request_version
        self.requestline = self.raw_requestline.decode("iso-8859-1").rstrip()
        with contextlib.suppress(OSError):  # (a client gone: nothing to tell it)
            self.send_error(code, explain=why)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("monitor: " + format, *args)


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP address) is a loopback one, an IPv4 one written as
    IPv6 (``::ffff:127.0.0.1``) included."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def host_name(header: str) -> str:
    """The host of a ``Host`` header, lower case, without its port (``[::1]`` kept)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.split(":", 1)[0]


class MonitorServer:
    """Serves one run's metrics and health until :meth:`stop`."""

    def __init__(self, settings: MonitorSettings, probe: LoopProbe, run_dir: Path, *,
                 run_id: str, mode: str, venue: str, book_stale_after_s: float) -> None:
        self.settings, self.probe, self.run_dir, self.run_id = settings, probe, run_dir, run_id
        self.ledger = LedgerView(run_dir)  # (one, so that a vanished ledger is noticed)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RunCollector(
            probe, run_dir, run_id=run_id, mode=mode, venue=venue,
            book_stale_after_s=book_stale_after_s,
            event_stale_after_s=settings.stale_after_s, ledger=self.ledger))
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        bind = ipaddress.ip_address(settings.bind)
        #: On loopback, the Host names answered; None (any) when it listens wider.
        self.allowed_hosts: tuple[str, ...] | None = (
            (*LOOPBACK_NAMES, f"[{bind}]" if bind.version == 6 else str(bind))
            if is_loopback(settings.bind) else None)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._server.server_port if self._server else self.settings.port

    def start(self) -> None:
        """Bind and serve in a daemon thread; a port in use is a ConfigError naming it."""
        bind, port = self.settings.bind, self.settings.port
        server_class = _ThreadingServer6 if ":" in bind else _ThreadingServer
        try:
            self._server = make_server(bind, port, self._app, server_class=server_class,
                                       handler_class=_QuietHandler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"[plugins.monitor] port {port}: {bind}:{port} is already "
                                  f"in use; choose another port") from None
            raise ConfigError(f"[plugins.monitor] cannot listen on {bind}:{port} "
                              f"(bind, port): {exc}") from None
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"argus-monitor-{port}", daemon=True)
        self._thread.start()
        with _servers_lock:
            _servers.append(self)
        log.info("monitor serving http://%s:%d/metrics and /health", bind, self.port)

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with _servers_lock:
            if self in _servers:
                _servers.remove(self)

    def health(self) -> tuple[int, dict[str, Any]]:
        """``(http status, body)``: 200 while trading is not HALTED and events are fresh."""
        # Before the first event, staleness counts from start-up (monotonic clock).
        age_s, quiet_s = self.probe.quiet_s()
        try:
            state = self.ledger.read().trading_state
        except LedgerError:  # (LedgerView logged why)
            state = UNKNOWN_STATE
        except Exception:  # a health probe must answer, whatever the ledger does
            log.warning("monitor: cannot read the ledger", exc_info=True)
            state = UNKNOWN_STATE
        stalled_s = self.probe.stalled_s()
        blocked_s = self.probe.blocked_s()
        waiting_s = self.probe.waiting_s()
        if self.probe.stopped:
            status = "stopped"
        elif stalled_s is not None and stalled_s > self.settings.stuck_after_s:
            status = "stuck"  # the process lives, its loop runs nothing
        elif max(blocked_s or 0.0, waiting_s or 0.0) > self.settings.stuck_after_s:
            status = "stuck"  # events arrive and wait, the loop takes none
        elif state in (TradingState.HALTED.value, UNKNOWN_STATE):
            status = state
        elif quiet_s > self.settings.stale_after_s:
            status = "stale"
        else:
            status = "ok"
        body = {"status": status, "trading_state": state, "last_event_age_s": age_s,
                "loop_stalled_s": stalled_s, "stream_blocked_s": blocked_s,
                "queue_waiting_s": waiting_s,
                "run_id": self.run_id}
        return (200 if status == "ok" else 503), body

    def _app(self, environ: dict[str, Any], start_response: StartResponse
             ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            body = list(self._answer(environ, start_response, method))
        except Exception:  # a bug: one log record, not wsgiref's traceback on stderr
            log.error("monitor: %s %s failed", method, environ.get("PATH_INFO", ""),
                      exc_info=True)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
            body = [b"monitor error: see the run's log\n"]
        return [] if method == "HEAD" else body  # HEAD: the headers GET would have

    def _answer(self, environ: dict[str, Any], start_response: StartResponse,
                method: str) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.allowed_hosts is not None and \
                host_name(environ.get("HTTP_HOST", "")) not in self.allowed_hosts:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"unexpected Host header: this monitor answers only 127.0.0.1, localhost "
                    b"and [::1]\n"]
        if method not in METHODS:
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"),
                                                      ("Allow", ", ".join(METHODS))])
            return [f"method {method} not allowed: use GET\n".encode()]
        if path == "/metrics":
            # prometheus-client answers GET only: HEAD asks it for GET (the body dropped)
            result: Iterable[bytes] = self._metrics_app(
                {**environ, "REQUEST_METHOD": "GET"}, start_response)
            return result
        if path == "/health":
            code, body = self.health()
            payload = json.dumps(body).encode()
            start_response(f"{code} {'OK' if code == 200 else 'Service Unavailable'}",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(payload))),
                            ("Cache-Control", "no-store")])
            return [payload]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /health\n"]


def stop_all(*, finished_only: bool = False) -> None:
    """Stop every server this process started (``finished_only``: only those whose run
    has ended and that still answer with its final figures)."""
    with _servers_lock:
        servers = list(_servers)
    for server in servers:
        if not finished_only or server.probe.stopped:
            server.stop()
