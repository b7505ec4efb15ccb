"""Red team r40: events arrive, the loop processes none, and its event loop stays free.

Found: a loop awaiting forever (not blocking: its heartbeat goes on) while the runner's
pump kept filling its queue read ``ok``: the probe notes events as they leave the venue's
stream, which the pump keeps doing until the queue (10,000 deep) is full; then the stream
stopped and health said ``stale`` after ``stale_after_s``, the wrong cause, late.  Now a
stream whose newest event has waited ``stuck_after_s`` for the pump to ask for the next
(the queue full, nothing taken) is ``stuck``.  Before the queue fills the monitor cannot
see it: the runner exposes neither its queue nor what it processed (see the README).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_monitor import MonitorServer, MonitorSettings
from argus_monitor.probe import LoopProbe
from prometheus_client import generate_latest

from argus_core import Bar

S = 10**9
START_NS = 1_700_000_000 * S


class FakeClock:
    def __init__(self) -> None:
        self.now_ns = START_NS

    def __call__(self) -> int:
        return self.now_ns


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


async def _market(n: int) -> AsyncIterator[Bar]:
    for i in range(n):
        yield Bar("paper:BTC/USD", START_NS + i * S, 1.0, 1.0, 1.0, 1.0, 1.0)
    await asyncio.Event().wait()  # then a quiet market: the stream waits for more


def _pump_into(loop: asyncio.AbstractEventLoop, probe: LoopProbe, queue_size: int,
               events: int, take_every_s: float | None) -> asyncio.Queue[Any]:
    """The runner's pump (stream -> bounded queue) and, unless ``take_every_s`` is None,
    a loop taking from the queue; returns once the pump has handed on what it can."""
    async def make() -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)

        async def pump() -> None:
            async for event in probe.watch(_market(events)):
                await queue.put(event)

        async def take() -> None:
            while True:
                await queue.get()
                await asyncio.sleep(take_every_s or 0)

        loop.create_task(pump())
        if take_every_s is not None:
            loop.create_task(take())
        await asyncio.sleep(0.1)
        return queue

    return asyncio.run_coroutine_threadsafe(make(), loop).result(10)


def _server(run_dir: Path, probe: LoopProbe) -> MonitorServer:
    return MonitorServer(MonitorSettings(port=0, stale_after_s=60.0, stuck_after_s=10.0),
                         probe, run_dir, run_id="run-1", mode="paper", venue="paper",
                         book_stale_after_s=0.0)


def test_events_arriving_none_processed_is_stuck(run_dir: Path,
                                                 loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    probe = LoopProbe(clock_ns=clock)
    probe.watch_loop(loop, every_s=0.01)  # the event loop stays free: heartbeats go on
    server = _server(run_dir, probe)
    queue = _pump_into(loop, probe, queue_size=5, events=50, take_every_s=None)
    assert queue.full() and probe.events == 6  # 5 queued, the 6th waits to be put
    clock.now_ns += 15 * S  # inside stale_after_s (60 s), past stuck_after_s (10 s)
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), loop).result(5)  # a heartbeat
    code, body = server.health()
    assert (code, body["status"]) == (503, "stuck"), body
    assert body["stream_blocked_s"] == pytest.approx(15.0, abs=0.5), body
    assert (body["loop_stalled_s"] or 0) < 1.0, body  # the heartbeat alone never saw it
    assert "argus_stream_blocked_seconds" in generate_latest(server.registry).decode()


def test_a_loop_taking_events_and_a_quiet_market_are_not_stuck(
        run_dir: Path, loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    probe = LoopProbe(clock_ns=clock)
    probe.watch_loop(loop, every_s=0.01)
    server = _server(run_dir, probe)
    queue = _pump_into(loop, probe, queue_size=5, events=20, take_every_s=0.0)
    assert probe.events == 20 and queue.empty()  # all taken; the stream waits for more
    clock.now_ns += 15 * S
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), loop).result(5)
    code, body = server.health()
    assert (code, body["status"]) == (200, "ok"), body
    assert body["stream_blocked_s"] is None, body


class _RunQueue:
    """What a paper or live run's context says of its loop's queue."""

    def __init__(self, waiting: int, taken_ago_s: float) -> None:
        import time

        self.events_waiting = lambda: waiting
        self.taken_mono_ns = time.monotonic_ns() - int(taken_ago_s * S)


@pytest.mark.parametrize(("waiting", "taken_ago_s", "status"), [
    (1, 15.0, "stuck"),  # one event waits and the loop took nothing for 15 s
    (0, 15.0, "ok"),  # a quiet market: nothing waits, the loop waits for the market
    (3, 0.5, "ok"),  # a busy loop taking events
])
def test_a_loop_that_stops_taking_events_is_stuck_from_the_first_that_waits(
        run_dir: Path, waiting: int, taken_ago_s: float, status: str) -> None:
    """The runner's context shows its queue (``events_waiting``, ``taken_mono_ns``): a
    loop awaiting forever with its event loop free is stuck as soon as an event waits
    ``stuck_after_s``, long before the 10,000-deep queue fills."""
    probe = LoopProbe()
    probe.watch_queue(_RunQueue(waiting, taken_ago_s))
    code, body = _server(run_dir, probe).health()
    assert body["status"] == status, body
    assert (code == 503) is (status == "stuck")
    if status == "stuck":
        assert body["queue_waiting_s"] == pytest.approx(15.0, abs=1.0)
