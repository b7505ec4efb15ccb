"""Held-out audit of the monitor's HTTP surface: loopback by default, answering only its
own host names (DNS rebinding), staying up and freeing its threads under half-sent
requests, and reading the ledger without ever writing it."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argus_monitor import MonitorServer, MonitorSettings
from argus_monitor import server as server_module
from argus_monitor.probe import LoopProbe


def start(run_dir: Path, bind: str = "127.0.0.1") -> MonitorServer:
    """A monitor on a free port of ``bind``."""
    server = MonitorServer(MonitorSettings(port=0, bind=bind), LoopProbe(), run_dir,
                           run_id="run-1", mode="paper", venue="replay",
                           book_stale_after_s=0.0)
    server.start()
    return server


@pytest.fixture
def monitor(run_dir: Path) -> Iterator[MonitorServer]:
    """A monitor on 127.0.0.1, stopped after."""
    server = start(run_dir)
    try:
        yield server
    finally:
        server.stop()


def test_the_default_bind_is_loopback() -> None:
    assert MonitorSettings().bind == "127.0.0.1"
    with pytest.raises(ValueError, match="not an IP address"):
        MonitorSettings(bind="monitor.example.com")  # a name could resolve anywhere


def test_a_loopback_monitor_answers_only_its_own_host_names(monitor: MonitorServer) -> None:
    url = f"http://127.0.0.1:{monitor.port}"
    for host in (f"127.0.0.1:{monitor.port}", "localhost", f"LOCALHOST:{monitor.port}"):
        assert httpx.get(f"{url}/metrics", headers={"Host": host}).status_code == 200
    for host in ("evil.example", f"evil.example:{monitor.port}", "127.0.0.1.evil.example",
                 ""):
        answer = httpx.get(f"{url}/metrics", headers={"Host": host})
        assert answer.status_code == 400 and "argus_" not in answer.text, host
        assert httpx.get(f"{url}/health", headers={"Host": host}).status_code == 400


def test_ipv6_loopback_is_checked_too(run_dir: Path) -> None:
    try:
        server = start(run_dir, "::1")
    except Exception as exc:  # a machine without IPv6: nothing to check
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        url = f"http://[::1]:{server.port}"
        assert httpx.get(f"{url}/metrics").status_code == 200  # Host: [::1]:port
        assert httpx.get(f"{url}/metrics", headers={"Host": "evil.example"}).status_code == 400
    finally:
        server.stop()


def test_a_monitor_listening_wider_answers_any_host(run_dir: Path) -> None:
    server = start(run_dir, "0.0.0.0")
    try:
        answer = httpx.get(f"http://127.0.0.1:{server.port}/metrics",
                           headers={"Host": "monitor.internal"})
        assert answer.status_code == 200
    finally:
        server.stop()


def test_half_sent_requests_neither_stop_it_nor_hold_threads_for_ever(
        monitor: MonitorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # (the handler reads its timeout per connection: a short one keeps the test short)
    monkeypatch.setattr(server_module._QuietHandler, "timeout", 1.0)
    stalled = []
    try:
        for i in range(30):
            sock = socket.create_connection(("127.0.0.1", monitor.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" if i % 2
                         else b"GET /heal")
            stalled.append(sock)
        t0 = time.monotonic()
        answer = httpx.get(f"http://127.0.0.1:{monitor.port}/health", timeout=10)
        assert answer.status_code in (200, 503) and time.monotonic() - t0 < 5
        # The half-sent ones are cut off after the request timeout.
        stalled[0].settimeout(10)
        assert stalled[0].recv(1) == b""
    finally:
        for sock in stalled:
            sock.close()


def test_scrapes_never_write_the_ledger(monitor: MonitorServer, run_dir: Path) -> None:
    def fingerprint() -> tuple[str, str]:
        wal = run_dir / "argus.db-wal"
        return (hashlib.sha256((run_dir / "argus.db").read_bytes()).hexdigest(),
                hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest())

    before = fingerprint()
    for path in ("/metrics", "/health", "/", "/metrics?x=1'--", "/../argus.db"):
        httpx.get(f"http://127.0.0.1:{monitor.port}{path}")
    assert httpx.get(f"http://127.0.0.1:{monitor.port}/../argus.db").status_code == 404
    assert fingerprint() == before
