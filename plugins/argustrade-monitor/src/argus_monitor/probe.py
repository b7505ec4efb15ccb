"""What the loop's own thread records for the scrape thread to read.

The core has no per-event observer hook, so the probe wraps the run's venue stream
(``on_startup`` may prepare the venue) and notes each event as it leaves the stream: a
few attribute writes, no lock, no I/O.  The scrape thread only reads these fields; a
stale read is harmless (the next scrape sees the newer value).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from argus_core import BookDelta, Fill, MarketEvent, Opportunity, OrderBook, Venue

_BOOKS = (OrderBook, BookDelta)
#: Seconds between two heartbeats of the run's event loop (see :meth:`LoopProbe.watch_loop`).
HEARTBEAT_S = 1.0


class LoopProbe:
    """Counters and clocks the observer hooks and the stream wrapper update."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns,
                 monotonic_ns: Callable[[], int] | None = None) -> None:
        """``clock_ns``: the wall clock (compared with events' own time stamps);
        ``monotonic_ns``: what ages and staleness are measured on, so that a wall clock
        stepped back or forth (NTP) neither hides a dead stream nor fakes one.  Left out,
        it is ``time.monotonic_ns``, or ``clock_ns`` itself when that is a fake clock."""
        self.clock_ns = clock_ns
        self.monotonic_ns = monotonic_ns or (
            time.monotonic_ns if clock_ns is time.time_ns else clock_ns)
        self.started_ns = clock_ns()
        self.started_mono_ns = self.monotonic_ns()
        self.stopped = False
        self.events = 0
        self.last_event_ts_ns: int | None = None  # the event's own time stamp
        self.last_event_wall_ns: int | None = None  # when it left the stream (wall clock)
        self.last_event_mono_ns: int | None = None  # the same instant, monotonic
        self.fills_seen = 0
        self.opportunities: dict[str, int] = {}
        #: instrument id -> time stamp of its newest book (snapshot or delta)
        self.book_ts_ns: dict[str, int] = {}
        #: instrument id -> when that book left the stream (monotonic): a book stamped
        #: ahead of the wall clock still ages from its arrival
        self.book_mono_ns: dict[str, int] = {}
        #: when the run's event loop last ran the heartbeat (monotonic); None: not watched
        self.loop_beat_mono_ns: int | None = None
        #: when the newest event was handed on and nobody has asked for the next one
        #: since (monotonic); None while the stream's reader is waiting for the market
        self.handed_mono_ns: int | None = None
        self._beat_handle: asyncio.TimerHandle | None = None
        self._run: Any = None  # the run's context (events_waiting, taken_mono_ns)

    def watch_venue(self, venue: Venue) -> bool:
        """Wrap ``venue.stream`` so every event is noted; False when the venue object
        does not allow it (then the loop metrics stay empty, the rest still works)."""
        original = venue.stream

        def stream() -> AsyncIterator[MarketEvent]:
            return self.watch(original())

        try:
            setattr(venue, "stream", stream)  # noqa: B010  (an instance attribute, on purpose)
        except (AttributeError, TypeError):
            return False
        return True

    async def watch(self, events: AsyncIterator[MarketEvent]) -> AsyncIterator[MarketEvent]:
        """Yield ``events`` unchanged, noting each one, and how long each waits to be
        taken (:meth:`blocked_s`)."""
        async for event in events:
            self.note(event)
            self.handed_mono_ns = self.last_event_mono_ns
            try:
                yield event
            finally:
                self.handed_mono_ns = None

    def note(self, event: Any) -> None:
        """Record one market event."""
        self.events += 1
        self.last_event_wall_ns = self.clock_ns()
        self.last_event_mono_ns = self.monotonic_ns()
        ts = getattr(event, "ts_ns", None)
        if isinstance(ts, int):
            self.last_event_ts_ns = ts
            if isinstance(event, _BOOKS):
                self.book_ts_ns[event.instrument_id] = ts
                self.book_mono_ns[event.instrument_id] = self.last_event_mono_ns

    def watch_loop(self, loop: asyncio.AbstractEventLoop, every_s: float = HEARTBEAT_S
                   ) -> None:
        """Stamp :attr:`loop_beat_mono_ns` from ``loop`` every ``every_s`` seconds.

        A loop blocked in a strategy, a lock or a blocking call notes no event either, so
        without this it read as a quiet market (``stale``, after ``stale_after_s``).  A
        quiet market leaves the loop free and the heartbeat going: never ``stuck``."""
        def beat() -> None:
            self.loop_beat_mono_ns = self.monotonic_ns()
            if not self.stopped:
                self._beat_handle = loop.call_later(every_s, beat)

        self.loop_beat_mono_ns = self.monotonic_ns()
        loop.call_soon_threadsafe(beat)  # (call_later is for the loop's own thread only)

    def stop(self) -> None:
        """The run ended: no more heartbeats (called from the loop's own thread)."""
        self.stopped = True
        if self._beat_handle is not None:
            self._beat_handle.cancel()

    def stalled_s(self) -> float | None:
        """Seconds the run's loop has neither run its heartbeat nor noted an event (None:
        the loop is not watched).  A replay busy with a heavy strategy yields to the
        heartbeat only every 1,000 events, but notes each event as it goes."""
        beat = self.loop_beat_mono_ns
        if beat is None:
            return None
        last = max(beat, self.last_event_mono_ns or beat)
        return max(0.0, (self.monotonic_ns() - last) / 1e9)

    def watch_queue(self, ctx: Any) -> None:
        """Read the loop's queue through the run's context (``events_waiting``,
        ``taken_mono_ns``: paper and live runs; a replay has no queue)."""
        self._run = ctx

    def waiting_s(self) -> float | None:
        """Seconds since the loop last took anything from its queue while events wait in
        it (None: none waits, a replay, or not watched): a loop that stopped taking
        events, blocked or awaiting forever, from the first event that queues up."""
        waiting = getattr(self._run, "events_waiting", None)
        taken = getattr(self._run, "taken_mono_ns", 0)
        if waiting is None or not taken or self.stopped or not waiting():
            return None
        return max(0.0, (time.monotonic_ns() - taken) / 1e9)  # (the runner's clock)

    def blocked_s(self) -> float | None:
        """Seconds the newest event has waited for its reader to ask for the next one
        (None: the reader is waiting for the market, or nothing arrived yet).

        In paper and live runs the reader is the runner's pump, which puts each event in
        the loop's queue (10,000 deep) and asks for the next at once: an event waits
        here only while that queue is full, i.e. while the loop takes nothing from it.
        A healthy loop under load takes one within an event's work, so a wait of
        ``stuck_after_s`` means events arrive and none is processed (:meth:`waiting_s`
        sees it sooner, from the run's context, when it is watched)."""
        handed = self.handed_mono_ns
        if handed is None or self.stopped:
            return None
        return max(0.0, (self.monotonic_ns() - handed) / 1e9)

    def on_fill(self, fill: Fill) -> None:
        """A committed fill."""
        self.fills_seen += 1

    def on_opportunity(self, opportunity: Opportunity) -> None:
        """A stored opportunity."""
        self.opportunities[opportunity.scanner] = \
            self.opportunities.get(opportunity.scanner, 0) + 1

    def quiet_s(self) -> tuple[float | None, float]:
        """``(seconds since the last event or None before the first, seconds since the
        last event or start-up)``, on the monotonic clock."""
        now, last = self.monotonic_ns(), self.last_event_mono_ns
        since_start_or_event = (now - (last if last is not None else self.started_mono_ns))
        return (None if last is None else (now - last) / 1e9), since_start_or_event / 1e9
