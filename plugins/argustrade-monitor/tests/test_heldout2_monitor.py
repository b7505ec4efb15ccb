"""Third red team of the monitor: what it leaves in a run directory, malformed requests,
and ages that said "up" while the stream was dead.  Each test failed before its fix:

* a scrape of a run whose writer had closed (a finished run, the figures served after it)
  left ``argus.db-wal`` and ``argus.db-shm`` behind: SQLite's read-only connection makes
  both for a WAL database and, unable to checkpoint, never removes them;
* a request without a version (``GET /metrics`` then a line end: HTTP/0.9) was held until
  the 10 s deadline, and cut off with no answer; one word (``GARBAGE``) or ``HTTP/2.0``
  was answered with an HTML page and no status line (the standard library's HTTP/0.9
  answer); a blank request line had no answer at all;
* ``argus_venue_up`` was computed from the age of the *last book in name order*, not
  of the last event (a loop variable reused): in a replay whose stream had been silent
  for an hour it said 1;
* a book stamped in the future (a venue's clock ahead, a ms/ns mix-up) had age 0 until
  the wall clock reached its stamp: it never went stale however long it stopped.
"""

from __future__ import annotations

import json
import socket
import time
import types
from pathlib import Path

import pytest
from argus_monitor import MonitorServer, MonitorSettings
from argus_monitor.ledger_view import read_snapshot
from argus_monitor.probe import LoopProbe
from prometheus_client.parser import text_string_to_metric_families

from argus_core import Ledger, OrderBook


class FakeClock:
    """A clock the test moves (wall and monotonic alike)."""

    def __init__(self) -> None:
        self.now_ns = 1_700_000_000 * 10**9

    def time_ns(self) -> int:
        """Now."""
        return self.now_ns

    def advance(self, seconds: float) -> None:
        """Move on ``seconds``."""
        self.now_ns += int(seconds * 1e9)


def start(run_dir: Path, probe: LoopProbe | None = None, mode: str = "paper",
          book_stale_after_s: float = 0.0) -> MonitorServer:
    """A monitor on a free loopback port."""
    server = MonitorServer(MonitorSettings(port=0, stale_after_s=60.0), probe or LoopProbe(),
                           run_dir, run_id="run-1", mode=mode, venue="v",
                           book_stale_after_s=book_stale_after_s)
    server.start()
    return server


def ask(port: int, raw: bytes, wait_s: float = 5.0) -> bytes:
    """Send ``raw`` and read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(raw)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<no answer: timed out>"
    return out


def samples(port: int) -> dict[str, float]:
    """``/metrics`` parsed: ``{'name{k="v"}': value}``."""
    text = ask(port, b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    body = text.partition(b"\r\n\r\n")[2].decode()
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_reading_a_finished_run_leaves_no_files_behind(run_dir: Path) -> None:
    """Before: ``argus.db-shm`` and ``argus.db-wal`` appeared after one read."""
    before = sorted(p.name for p in run_dir.iterdir())
    snapshot = read_snapshot(run_dir)
    server = start(run_dir)
    try:
        assert b"argus_ledger_up 1.0" in ask(
            server.port, b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    finally:
        server.stop()
    assert snapshot.trading_state == "active"
    assert sorted(p.name for p in run_dir.iterdir()) == before == ["argus.db"]
    # and beside a live writer, its committed rows are read as before
    with Ledger.in_dir(run_dir) as ledger:
        ledger.set_control("trading_state", json.dumps({"state": "halted"}), 1)
        assert read_snapshot(run_dir).trading_state == "halted"


@pytest.mark.parametrize(("raw", "code"), [
    (b"GET /metrics\r\n", b"400"),  # HTTP/0.9: no version, no headers
    (b"GET /health\r\n\r\n", b"400"),
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"\r\n\r\n", b"400"),
    (b"GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", b"505"),
    (b"GET /health HTTP/x.y\r\nHost: 127.0.0.1\r\n\r\n", b"400"),
])
def test_a_malformed_request_gets_a_status_line_at_once(run_dir: Path, raw: bytes,
                                                        code: bytes) -> None:
    """Before: no status line (an HTML page, or the JSON of /health, bare), nothing at
    all, or nothing until the 10 s deadline."""
    server = start(run_dir)
    t0 = time.monotonic()
    answer = ask(server.port, raw, wait_s=3.0)
    assert answer.startswith(b"HTTP/1.0 " + code), answer[:200]
    assert b"<html" not in answer.lower() and time.monotonic() - t0 < 2.0


def test_venue_up_follows_the_last_event_not_the_last_book(run_dir: Path) -> None:
    """Before: a replay silent for an hour said ``argus_venue_up`` 1, the age of book
    "B" (0 s in event time) standing in for the stream's."""
    clock = FakeClock()
    probe = LoopProbe(clock.time_ns)
    server = start(run_dir, probe, mode="replay")
    ts = clock.time_ns()
    probe.note(OrderBook("A", ts - 10**9, [[0.4, 1]], [[0.6, 1]]))
    probe.note(OrderBook("B", ts, [[0.4, 1]], [[0.6, 1]]))
    assert samples(server.port)['argus_venue_up{venue="v"}'] == 1
    clock.advance(3600)  # the stream stops
    metrics = samples(server.port)
    assert metrics["argus_last_event_age_seconds"] == pytest.approx(3600)
    assert metrics['argus_venue_up{venue="v"}'] == 0


def test_a_book_stamped_in_the_future_still_goes_stale(run_dir: Path) -> None:
    """Before: a book stamped an hour ahead had age 0 an hour after its last update
    (``max(0, now - ts)``) and was counted live."""
    clock = FakeClock()
    probe = LoopProbe(clock.time_ns)
    server = start(run_dir, probe, book_stale_after_s=10.0)
    probe.note(OrderBook("A", clock.time_ns() + 7200 * 10**9, [[0.4, 1]], [[0.6, 1]]))
    clock.advance(30)
    probe.note(types.SimpleNamespace(ts_ns=clock.time_ns()))  # the stream itself lives
    metrics = samples(server.port)
    assert metrics['argus_book_age_seconds{instrument="A"}'] == pytest.approx(30)
    assert metrics['argus_venue_books{state="stale",venue="v"}'] == 1
