"""The HTTP server: ``/metrics`` (Prometheus text format) and ``/health`` (JSON), in a
thread of its own so that a slow scrape never delays an event."""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from argus_core import ConfigError, TradingState
from argus_monitor.collector import RunCollector
from argus_monitor.config import MonitorSettings
from argus_monitor.ledger_view import read_snapshot
from argus_monitor.probe import LoopProbe

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
_servers: list[MonitorServer] = []  # every server this process started
_servers_lock = threading.Lock()


#: Seconds a client may take to send its request: a half-sent one (slowloris) holds a
#: thread no longer than this.
REQUEST_TIMEOUT_S = 10.0
#: ``Host`` names a loopback monitor answers (a web page on a DNS name rebound to
#: 127.0.0.1 names that name, and is refused).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hung client never keeps the process alive

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up: one debug line, not a traceback on stderr.
        log.debug("monitor: request from %s failed", client_address, exc_info=True)


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("monitor: " + format, *args)


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
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RunCollector(
            probe, run_dir, run_id=run_id, mode=mode, venue=venue,
            book_stale_after_s=book_stale_after_s,
            event_stale_after_s=settings.stale_after_s))
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        bind = ipaddress.ip_address(settings.bind)
        #: On loopback, the Host names answered; None (any) when it listens wider.
        self.allowed_hosts: tuple[str, ...] | None = (
            (*LOOPBACK_NAMES, f"[{bind}]" if bind.version == 6 else str(bind))
            if bind.is_loopback else None)

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
        probe = self.probe
        now_ns = probe.clock_ns()
        last = probe.last_event_wall_ns
        age_s = None if last is None else (now_ns - last) / 1e9
        # Before the first event, staleness counts from start-up.
        quiet_s = (now_ns - (last if last is not None else probe.started_ns)) / 1e9
        try:
            state = read_snapshot(self.run_dir).trading_state
        except Exception as exc:  # a health probe must answer, whatever the ledger does
            log.warning("monitor: cannot read the ledger: %s", exc)
            state = "unknown"
        if probe.stopped:
            status = "stopped"
        elif state in (TradingState.HALTED.value, "unknown"):
            status = state
        elif quiet_s > self.settings.stale_after_s:
            status = "stale"
        else:
            status = "ok"
        body = {"status": status, "trading_state": state, "last_event_age_s": age_s,
                "run_id": self.run_id}
        return (200 if status == "ok" else 503), body

    def _app(self, environ: dict[str, Any], start_response: StartResponse
             ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.allowed_hosts is not None and \
                host_name(environ.get("HTTP_HOST", "")) not in self.allowed_hosts:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"unexpected Host header: this monitor answers only 127.0.0.1, localhost "
                    b"and [::1]\n"]
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
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
