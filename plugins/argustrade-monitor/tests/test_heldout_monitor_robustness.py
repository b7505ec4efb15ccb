"""Held-out red team of the monitor's server, ledger reading and health (beyond the
control-surface audit in ``test_heldout_control_monitor.py``).

What was found, one test each:

- a request trickled a byte at a time was never cut off: the 10 s limit was per
  ``recv``, not per request, so one client could hold a thread (and a file descriptor of
  the trading process) for ever;
- connections were unbounded: each held a thread and a descriptor until it timed out
  (now at most ``MAX_CONNECTIONS``, the oldest idle one cut off for a newcomer);
- an unreadable ledger (zero bytes, damaged, a control row that is not JSON) turned
  every ``/metrics`` into a 500 with a traceback printed on stderr, and took the loop's
  own figures (events, ages, ``argus_venue_up``) away with it;
- a run directory deleted under a running monitor read as an empty, healthy run (200);
- a trading state the monitor does not know (``"HALTED"``, ``"paused"``) was healthy;
- staleness was measured on the wall clock: a clock stepped back hid a dead stream;
- bound to ``::ffff:127.0.0.1`` (loopback) it skipped the Host check (DNS rebinding);
- ``HEAD /health`` answered a body, and ``POST`` was answered like ``GET``.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argus_monitor import MonitorServer, MonitorSettings
from argus_monitor import server as server_module
from argus_monitor.probe import LoopProbe
from prometheus_client.parser import text_string_to_metric_families

from argus_core import Ledger


def start(run_dir: Path, probe: LoopProbe | None = None, *, bind: str = "127.0.0.1",
          stale_after_s: float = 60.0) -> MonitorServer:
    """A monitor on a free port of ``bind`` (stopped by conftest's fixture too)."""
    server = MonitorServer(MonitorSettings(port=0, bind=bind, stale_after_s=stale_after_s),
                           probe or LoopProbe(), run_dir, run_id="run-1", mode="paper",
                           venue="replay", book_stale_after_s=0.0)
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


def samples(port: int) -> dict[str, float]:
    """``/metrics`` parsed by prometheus-client: ``{'name{k="v"}': value}``."""
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200, answer.text
    out = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server ends the connection (EOF or reset) within ``seconds``."""
    readable, _, _ = select.select([sock], [], [], seconds)
    if not readable:
        return False
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    return True


def test_a_trickled_request_is_cut_off_at_the_deadline(
        monitor: MonitorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a byte every 0.2 s reset the 1 s timeout each time; after 4 s the
    connection was still open (the README promised it cut off after the timeout)."""
    monkeypatch.setattr(server_module._QuietHandler, "timeout", 1.0)
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    with socket.create_connection(("127.0.0.1", monitor.port), timeout=5) as sock:
        t0 = time.monotonic()
        cut_off = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                cut_off = True
                break
            if closed_within(sock, 0.2):
                cut_off = True
                break
            if time.monotonic() - t0 > 4:
                break
        assert cut_off and time.monotonic() - t0 < 2.5


def test_idle_connections_beyond_the_cap_are_cut_off_and_a_scraper_gets_in(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: there was no cap; every idle connection held a thread and a descriptor
    of the trading process until its timeout (all six here were kept open)."""
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 3, raising=False)
    server = start(run_dir)
    idle = []
    try:
        for _ in range(6):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            time.sleep(0.05)  # accepted in this order
        held = [sock for sock in idle if not closed_within(sock, 1.0)]
        assert held == idle[3:]  # the oldest three were cut off for the newer ones
        t0 = time.monotonic()
        answer = httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5)
        assert answer.status_code == 200 and time.monotonic() - t0 < 2
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("damage", ["zero_bytes", "not_a_database", "control_not_json",
                                    "equity_not_a_number"])
def test_an_unreadable_ledger_still_serves_the_loop_metrics_without_a_traceback(
        run_dir: Path, damage: str, capfd: pytest.CaptureFixture[str]) -> None:
    """Before: /metrics answered 500 and wsgiref printed a traceback on stderr at every
    scrape; the events counter and ``argus_venue_up`` were lost with the ledger's."""
    db = run_dir / "argus.db"
    if damage in ("zero_bytes", "not_a_database"):
        for path in run_dir.glob("argus.db*"):
            path.unlink()
        db.write_bytes(b"" if damage == "zero_bytes" else b"not sqlite at all " * 64)
    else:
        with Ledger.in_dir(run_dir) as ledger, ledger.transaction() as conn:
            if damage == "control_not_json":
                conn.execute("insert into control (key, value, ts_ns) "
                             "values ('trading_state', 'halted', 1)")
            else:
                conn.execute("insert into equity (ts_ns, cash, equity, gross_exposure) "
                             "values (1, 'abc', 'abc', '0')")
    server = start(run_dir)
    server.probe.note(object())
    metrics = samples(server.port)
    assert metrics["argus_events_total"] == 1
    assert metrics['argus_venue_up{venue="replay"}'] == 1
    if damage == "control_not_json":  # the rest of the ledger is still read
        assert metrics["argus_ledger_up"] == 1 and "argus_fills_total" in metrics
        assert all(metrics[f'argus_trading_state{{state="{s}"}}'] == 0
                   for s in ("active", "reducing", "halted"))
    else:
        assert metrics["argus_ledger_up"] == 0 and "argus_fills_total" not in metrics
    code = httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5).status_code
    assert code == 503
    assert "Traceback" not in capfd.readouterr().err


def test_a_deleted_run_directory_turns_health_unknown(monitor: MonitorServer,
                                                      run_dir: Path) -> None:
    """Before: the ledger gone, the monitor read an empty run: 200 ``ok``, ACTIVE."""
    monitor.probe.note(object())
    assert httpx.get(f"http://127.0.0.1:{monitor.port}/health").status_code == 200
    shutil.rmtree(run_dir)
    answer = httpx.get(f"http://127.0.0.1:{monitor.port}/health")
    assert answer.status_code == 503 and answer.json()["status"] == "unknown"
    assert samples(monitor.port)["argus_ledger_up"] == 0


@pytest.mark.parametrize("state", ["HALTED", "paused", None])
def test_an_unrecognised_trading_state_is_not_healthy(run_dir: Path,
                                                      state: str | None) -> None:
    """Before: ``{"state": "HALTED"}`` (or ``paused``, or no state) was 200 ``ok``
    while ``argus_trading_state`` said 0 for every state."""
    value = json.dumps({"state": state} if state else {"reason": "no state"})
    with Ledger.in_dir(run_dir) as ledger, ledger.transaction() as conn:
        conn.execute("insert into control (key, value, ts_ns) values ('trading_state', ?, 1)",
                     (value,))
    server = start(run_dir)
    server.probe.note(object())
    answer = httpx.get(f"http://127.0.0.1:{server.port}/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == answer.json()["trading_state"] == "unknown"


class SteppedClock:
    """A wall clock a test sets (it may go back, as NTP steps it)."""

    def __init__(self) -> None:
        self.now_ns = 1_700_000_000 * 10**9

    def time_ns(self) -> int:
        """The wall clock."""
        return self.now_ns


def test_a_wall_clock_stepped_back_does_not_hide_a_dead_stream(run_dir: Path) -> None:
    """Before: ages were wall-clock differences: the clock stepped back an hour after
    the last event, /health said ``ok`` (a negative age) for that hour."""
    wall, mono = SteppedClock(), SteppedClock()
    probe = LoopProbe(wall.time_ns, monotonic_ns=mono.time_ns)
    server = start(run_dir, probe, stale_after_s=5.0)
    probe.note(object())
    wall.now_ns -= 3600 * 10**9  # NTP steps the wall clock back
    mono.now_ns += 6 * 10**9  # six real seconds pass with no event
    answer = httpx.get(f"http://127.0.0.1:{server.port}/health")
    assert answer.status_code == 503 and answer.json()["status"] == "stale"
    assert answer.json()["last_event_age_s"] == pytest.approx(6.0)
    assert samples(server.port)['argus_venue_up{venue="replay"}'] == 0


def test_an_ipv4_mapped_loopback_bind_still_checks_the_host(run_dir: Path) -> None:
    """Before: ``bind = "::ffff:127.0.0.1"`` (loopback) was taken for a wide bind and any
    Host was answered: a DNS-rebound page could read the figures."""
    try:
        server = start(run_dir, bind="::ffff:127.0.0.1")
    except Exception as exc:  # a machine without IPv6: nothing to check
        pytest.skip(f"no IPv6 here: {exc}")
    url = f"http://127.0.0.1:{server.port}/metrics"
    assert httpx.get(url, headers={"Host": "evil.example"}).status_code == 400
    assert httpx.get(url).status_code == 200


def test_head_has_no_body_and_other_methods_are_refused(monitor: MonitorServer) -> None:
    """Before: HEAD /health sent the JSON body, HEAD /metrics was 405, POST /health and
    DELETE /metrics were answered like GET."""
    url = f"http://127.0.0.1:{monitor.port}"
    for path in ("/health", "/metrics"):
        # (a raw socket: httpx drops a HEAD answer's body itself)
        with socket.create_connection(("127.0.0.1", monitor.port), timeout=5) as sock:
            sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") and body == b"", raw
    for method in ("POST", "PUT", "DELETE"):
        answer = httpx.request(method, url + "/health", content=b"x")
        assert answer.status_code == 405 and "GET" in answer.headers["allow"]
