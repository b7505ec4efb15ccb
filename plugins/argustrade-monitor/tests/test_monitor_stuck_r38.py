"""Red team r38: a loop that stops running while its process lives.

Found: the probe noted only events leaving the venue's stream, and those are noted by
the loop's own thread, so a loop blocked in a strategy, a lock or a blocking call read
exactly as a quiet market: ``ok`` until ``stale_after_s`` (60 s by default), then
``stale``.  Now a heartbeat of the run's event loop tells the two apart: ``stuck`` after
``stuck_after_s`` (10 s) of neither heartbeat nor event, never for a quiet market.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argus_monitor import MonitorServer, MonitorSettings
from argus_monitor.probe import LoopProbe

from argus_core import Bar

S = 10**9
START_NS = 1_700_000_000 * S


class FakeClock:
    """A clock the test moves (wall and monotonic at once)."""

    def __init__(self) -> None:
        self.now_ns = START_NS

    def __call__(self) -> int:
        return self.now_ns


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own, as the run's loop would."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def _server(run_dir: Path, probe: LoopProbe) -> MonitorServer:
    settings = MonitorSettings(port=0, stale_after_s=60.0)
    return MonitorServer(settings, probe, run_dir, run_id="run-1", mode="paper",
                         venue="paper", book_stale_after_s=0.0)


def _wait_for_beat(probe: LoopProbe, at_ns: int) -> None:
    """Wait (real time, generously) until the loop's heartbeat has stamped ``at_ns``."""
    deadline = time.monotonic() + 10.0
    while (probe.loop_beat_mono_ns or 0) < at_ns:
        assert time.monotonic() < deadline, "the heartbeat never ran on a free loop"
        time.sleep(0.005)


def _block(loop: asyncio.AbstractEventLoop) -> threading.Event:
    """Hang ``loop`` (as a hung strategy would) until the returned event is set; returns
    once the loop is hung, so that no heartbeat runs after the test moves the clock."""
    release, hung = threading.Event(), threading.Event()

    def hang() -> None:
        hung.set()
        release.wait()

    loop.call_soon_threadsafe(hang)
    assert hung.wait(10.0), "the loop never ran the hanging callback"
    return release


def test_a_blocked_loop_is_stuck_long_before_stale(run_dir: Path,
                                                   loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    probe = LoopProbe(clock_ns=clock)
    probe.watch_loop(loop, every_s=0.01)
    server = _server(run_dir, probe)
    probe.note(Bar("paper:BTC/USD", START_NS, 1.0, 1.0, 1.0, 1.0, 1.0))
    release = _block(loop)  # a strategy hung: the loop runs nothing
    try:
        clock.now_ns += 15 * S  # well inside stale_after_s (60 s)
        code, body = server.health()
        assert (code, body["status"]) == (503, "stuck"), body
        assert body["loop_stalled_s"] == pytest.approx(15.0, abs=0.5), body
    finally:
        release.set()
    _wait_for_beat(probe, clock.now_ns)  # the loop runs again: healthy again
    code, body = server.health()
    assert (code, body["status"]) == (200, "ok"), body


def test_a_quiet_market_is_never_stuck(run_dir: Path,
                                       loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    probe = LoopProbe(clock_ns=clock)
    probe.watch_loop(loop, every_s=0.01)
    server = _server(run_dir, probe)
    clock.now_ns += 15 * S  # no event for 15 s, the loop free
    _wait_for_beat(probe, clock.now_ns)
    code, body = server.health()
    assert (code, body["status"]) == (200, "ok"), body
    clock.now_ns += 50 * S  # past stale_after_s: stale (no events), still not stuck
    _wait_for_beat(probe, clock.now_ns)
    code, body = server.health()
    assert (code, body["status"]) == (503, "stale"), body


def test_a_busy_loop_noting_events_is_not_stuck(run_dir: Path,
                                                loop: asyncio.AbstractEventLoop) -> None:
    """A replay with a heavy strategy yields to the heartbeat only every 1,000 events,
    but notes each event: busy, not stuck."""
    clock = FakeClock()
    probe = LoopProbe(clock_ns=clock)
    probe.watch_loop(loop, every_s=0.01)
    server = _server(run_dir, probe)
    release = _block(loop)
    try:
        for i in range(30):
            clock.now_ns += S
            probe.note(Bar("paper:BTC/USD", START_NS + i * S, 1.0, 1.0, 1.0, 1.0, 1.0))
        code, body = server.health()
        assert (code, body["status"]) == (200, "ok"), body
    finally:
        release.set()


def test_a_stopped_run_cancels_its_heartbeat(loop: asyncio.AbstractEventLoop) -> None:
    probe = LoopProbe()
    probe.watch_loop(loop, every_s=0.01)
    done = threading.Event()

    def stop() -> None:  # (from the loop's own thread, as on_shutdown is)
        probe.stop()
        done.set()

    loop.call_soon_threadsafe(stop)
    assert done.wait(5.0)
    assert probe._beat_handle is not None and probe._beat_handle.cancelled()


@pytest.mark.parametrize("value", [0, -1.0])
def test_stuck_after_s_must_be_positive(value: float) -> None:
    with pytest.raises(ValueError, match="stuck_after_s"):
        MonitorSettings(stuck_after_s=value)
