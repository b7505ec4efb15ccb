"""The one loop: replay, paper and live trading run through exactly this code.

The runner owns the loop, its transactions, checkpoints, the trading-state latch
and hot-swaps.  Where an order goes is the ExecutionEngine's business
(:mod:`argus_core.execution`): every intent the loop collects is handed to it, and
nothing here calls a broker or a venue's order API.

One writer: a run directory is locked (``flock`` on ``argus.lock``) for the whole
life of the process that runs it; the kernel releases the lock even after SIGKILL.
A second ``argus run`` on the same directory is refused with the ledger's exit code.

Durability and resumption: writes accumulate in one open transaction that
commits together with a checkpoint of every component's state (strategies, each
risk check's own, broker, risk, account) every ``checkpoint_every_events`` events; in paper and
live mode also right after any event that produced an order or a fill (their
data cannot be replayed), and after any hot-swap.  A crash rolls back to the
last checkpoint; a resumed replay skips the events up to it and re-derives
everything after it deterministically, with the same client order ids, so no
order is lost or duplicated.  A replay's commits do not fsync each (see
:meth:`Ledger.set_commit_sync`): a power loss can only take back its newest checkpoints,
which the resumed replay re-derives; its final commit and any swap are made durable.

Kill switch: every mark (bar, trade, book) of an instrument held re-values the account
and feeds the risk engine's drawdown watch (:meth:`RiskEngine.on_equity`), so the
switch trips between orders too; when it trips — or a person runs
``argus kill --flatten`` — the engine flattens every position, then HALTED latches.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from argus_core import bar_runs as stretches
from argus_core.account import Account, capital_split
from argus_core.bar_runs import BarRun
from argus_core.builtins.replay_venue import ReplayVenue
from argus_core.config import Config, canonical_json
from argus_core.control import CONTROL_STATE, parse_latch
from argus_core.errors import ArgusError, ConfigError, LedgerError
from argus_core.execution import ExecutionEngine
from argus_core.gcfreeze import freeze_startup, thaw
from argus_core.interfaces import (
    RECENT_ORDERS,
    RiskCheck,
    RiskContext,
    Scanner,
    Strategy,
    StrategyContext,
)
from argus_core.logs import RUN_ID
from argus_core.market_state import MarketState
from argus_core.models import (
    EXECUTABLE,
    RESEARCH,
    WIDE,
    Bar,
    BookDelta,
    CancelIntent,
    Fill,
    Intent,
    KnownOrder,
    MarketEvent,
    Opportunity,
    OrderBook,
    Portfolio,
    Settlement,
    Signal,
    Trade,
)
from argus_core.paper import PaperBroker
from argus_core.plugins import fenced_call
from argus_core.risk import DAY_NS, RiskEngine, TradingState, escalate
from argus_core.runlock import RunDirLock
from argus_core.runtime import Assembly, assemble, open_ledger
from argus_core.serde import converter

log = logging.getLogger(__name__)
CHECKPOINT = "runner"
_IDLE = object()  # the live event source has nothing waiting
#: A quiet market still gets an idle point this often (seconds without an event): a
#: person's `argus kill` is adopted and its cancels sent, held positions' marks watched.
QUIET_TICK_S = 1.0
#: A paper or live loop whose queue never runs dry commits at least this often (seconds):
#: a person's `argus kill` waits for the write lock at most that long (it gives up at 5 s).
HOLD_LOCK_S = 1.0
LOCK_PAUSE_S = 0.02  # and then leaves it free this long (waiters try every 2 ms)
_END = object()  # the live event source ended
#: How far a paper or live event's stamp may run ahead of this machine's clock.  The
#: market clock is the newest stamp seen: one frame stamped in the year 5138 (damage, or
#: microseconds read as milliseconds) left every other book stale for the rest of the run.
AHEAD_LIMIT_NS = 300 * 10**9
#: Rounds of fills heard at one look (``Runner._hear_fills``): a strategy whose every fill
#: asks for an order that fills at once is heard again at the next look, never in a loop.
HEAR_ROUNDS = 8
#: A held stretch's equities and gross exposures as integers of 10**-scale, and the scale
#: (:func:`argus_core.bar_runs.held_equity`).
_Held = tuple[list[int], list[int], int]
_CENT_E6 = Decimal("1e-8")  # equity rows are kept to 1e-8 of the quote currency
_ZERO = Decimal(0)


@attrs.frozen
class RunSummary:
    """What a finished (or stopped) run reports."""

    run_id: str
    run_dir: Path
    mode: str
    events: int
    resumed_from: int
    orders: int
    fills: int
    fees: Decimal
    starting_equity: Decimal
    final_equity: Decimal
    trading_state: str
    elapsed_s: float

    @property
    def total_return(self) -> float:
        """Final over starting equity, minus one."""
        return float(self.final_equity / self.starting_equity - 1) if self.starting_equity else 0.0


def _intents(answer: Any, method: str) -> list[Intent | CancelIntent]:
    """A strategy's answer as a list; a ``TypeError`` saying what it returned when it is
    no list or tuple of ``Intent`` and ``CancelIntent`` (a bare ``Intent`` or a string
    ended the run with "not iterable", naming no strategy)."""
    items = answer if isinstance(answer, list | tuple) else (answer,)
    odd = next((i for i in items if not isinstance(i, Intent | CancelIntent)), None)
    if odd is None and items is answer:
        return list(answer)
    held = "" if items is not answer else f" holding a {type(odd).__name__}"
    raise TypeError(f"{method} returned a {type(answer).__name__}{held}, not a list of "
                    f"Intent / CancelIntent")


class Runner:
    """Drives one run.  Construct, then ``await run()`` (or ``run_sync()``)."""

    #: A replay takes its quiet stretches of bars in one step each (:mod:`argus_core.
    #: bar_runs`); False sends every bar through the event path (the tests compare both).
    bar_stretches = True

    def __init__(self, config: Config, run_dir: Path, *, live_confirmed: bool = False,
                 strategies: dict[str, Strategy] | None = None,
                 progress: Callable[[int], None] | None = None,
                 max_events: int | None = None) -> None:
        if config.argus.mode == "live" and not live_confirmed:
            raise ConfigError("mode 'live' sends real orders; pass --live to confirm "
                              "(live trading is never the default)")
        self.config = config
        self.run_dir = Path(run_dir)
        self._lock = RunDirLock.acquire(self.run_dir)  # one writer per run directory
        try:
            self._build(config, strategies, progress, max_events)
        except BaseException:  # a refused start holds nothing: the lock, the ledger
            if getattr(self, "ledger", None) is not None:
                self.ledger.close()
            self._lock.release()
            raise

    def _build(self, config: Config, strategies: dict[str, Strategy] | None,
               progress: Callable[[int], None] | None, max_events: int | None) -> None:
        self.asm: Assembly = assemble(config, self.run_dir, strategies=strategies)
        self.ctx = self.asm.ctx
        stale_s = getattr(config.run, "stale_after_s", None)
        if stale_s is None:
            stale_s = self.asm.venue.default_stale_after_s
        self.market = MarketState(int(stale_s * 1e9))
        self.market.forecasters = self.asm.forecasters
        self.account = Account(config.run.starting_cash, capital_split(
            config.run.starting_cash, config.run.capital, list(self.asm.strategies)))
        self.broker = PaperBroker(self.market, self.asm.venue.fee_schedule, config.paper,
                                  held=self._held_quantity)
        # Scanners and sizers price fees with what fills will pay: the venue's schedule
        # live, the paper broker's (the venue's with any [paper] overrides) otherwise.
        self.market.fees = (self.asm.venue.fee_schedule if config.argus.mode == "live"
                            else self.broker.fees)
        self.risk = RiskEngine(self.asm.risk_checks, RiskContext(market=self.market))
        self.progress = progress
        self.max_events = max_events
        self.live = config.argus.mode == "live"
        self.seq = 0
        self.resumed_from = 0
        self._dirty = False
        #: The trading-state latch as this run last read or wrote it (raw ledger value), and
        #: the state it held then: anything else in the ledger is a person's kill or resume.
        self._control_seen: str | None = None
        self._state_seen = TradingState.ACTIVE.value
        # Replay re-derives everything after the last checkpoint identically, so orders and
        # fills only need to be durable together with it; paper and live commit at once
        # (their data cannot be replayed).  A hot-swap is never re-derivable: always at once.
        self._commit_each_change = config.argus.mode != "replay"
        self._mode = config.argus.mode
        self._swapped = False
        self._release_by = self._pause_s = 0.0  # paper/live: when the open transaction
        # must commit; then how long the loop leaves the lock free
        self._every = self._scan_every = 1  # checkpoint and scan spacing (set by run)
        #: the risk checks' drawdown limits a held stretch watches (None: a watch it does
        #: not model), for the checks list (and its length) they were read from
        self._limits: tuple[list[RiskCheck], int, list[Decimal] | None] | None = None
        self._equity_rows: list[tuple[int, str, str, str]] = []
        self._equity_ts: int | None = None  # a bar's timestamp whose row is still due
        self._final_ts = -1  # the newest row written for good (see before_fill)
        self._row_valued: tuple[Decimal, Decimal] | None = None  # the last row's valuation
        self._day_end_ns = 0  # the end of the day of the newest equity row (see _new_day)
        self._row_text = ("", "", "")  # ... and its text
        self._cash_text: tuple[Decimal | None, str] = (None, "")  # the cash as last written
        #: each book's last row: (cash, equity, cash text, equity text); the values are
        #: None for a row read back from the ledger (see _restore)
        self._book_text: dict[str, tuple[Decimal | None, Decimal | None, str, str]] = {}
        self._routes: dict[str | None, list[str]] = {}  # see _route
        self._routed = -1  # the number of slots the routes were made for
        self._book_views: dict[str, Callable[[], Portfolio]] = {}  # each slot's portfolio
        self._orders_of: dict[str, Callable[[], list[KnownOrder]]] = {}  # each slot's orders
        self._queue: asyncio.Queue[Any] | None = None  # paper/live: the events waiting
        self._book_rows: list[tuple[int, str]] = []  # (ts_ns, the moved books' JSON)
        self._slot_json: dict[str, str] = {}  # each slot as a JSON string
        self._fills_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._swaps: list[tuple[str, Strategy, str, asyncio.Future[None]]] = []
        self._found: set[str] = set()  # the last scan's opportunity ids (see _scan)
        self._event_at = 0  # monotonic ns of the live queue's last event (stale marks)
        self._ahead_said: set[str] = set()  # instruments whose events came stamped ahead
        self._stale_marks: set[str] = set()  # held instruments said to be stale
        self._good_states: dict[str, Any] = {}  # each slot's last state that could be read
        self.risk_trigger_listeners: list[Callable[[str], None]] = []
        self.versions: dict[str, str] = {}
        self.ledger = open_ledger(self.ctx)
        self.ledger.defer_writes = not self._commit_each_change  # see _commit_each_change
        if not self._commit_each_change:
            # A replay's commits need no fsync each: a power loss can only take back its
            # newest checkpoints (each atomic with its rows), which a resumed replay
            # re-derives.  Its last commit, and any swap's, are made durable (see run).
            self.ledger.set_commit_sync(full=False)
        self.engine = ExecutionEngine(
            loop=self, ledger=self.ledger, run_id=self.ctx.run_id, venue=self.asm.venue,
            venue_name=self.asm.venue.name or config.run.venue, market=self.market,
            account=self.account, broker=self.broker, risk=self.risk, sizer=self.asm.sizer,
            live=self.live, unwind_slippage_bps=Decimal(
                str(getattr(config.run, "unwind_slippage_bps", 500))))

    @property
    def n_orders(self) -> int:
        """Orders created in this run (all processes)."""
        return self.engine.n_orders

    @property
    def n_fills(self) -> int:
        """Fills booked in this run (all processes)."""
        return self.engine.n_fills

    # -- public API for the orchestrator and commands ------------------------------
    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING or HALTED."""
        return self.risk.state

    def set_trading_state(self, state: TradingState, reason: str, *, by_person: bool = False
                          ) -> None:
        """Set the state (escalation by the system, or any change by a person) durably."""
        if by_person:
            self.risk.ctx.trading_state, self.risk.ctx.state_reason = state.value, reason
            self._write_control()
        else:
            escalate(self.risk.ctx, state, reason)
            self._persist_state_change()  # never over a person's unread kill

    # -- what the ExecutionEngine needs from the loop (LoopPort) ---------------------
    def between_events(self, *, commit_now: bool = False
                       ) -> contextlib.AbstractContextManager[None]:
        """See :class:`argus_core.execution.LoopPort`."""
        return self._between_events(commit_now=commit_now)

    def commit_now(self) -> None:
        """Durable now, mid-event (live orders before they are sent)."""
        self._commit()

    def mark_dirty(self) -> None:
        """Paper and live commit after this event."""
        self._dirty = True

    def persist_state_change(self) -> None:
        """Store the trading state if a check escalated it."""
        self._persist_state_change()

    def before_fill(self, ts_ns: int) -> int:
        """A bar timestamp's row still due is valued before a fill stamped later moves
        the account (a live fill the venue stamped ahead of the market's clock).  Returns
        the fill's stamp: ``ts_ns``, or the clock where a row at or after ``ts_ns`` is
        written for good (a live fill reported late, after a reconnect or a restart: that
        row valued the account without it, as the paper broker stamps a late print's)."""
        if self._equity_ts is not None and ts_ns > self._equity_ts:
            self._row_done(self._equity_ts)
        return ts_ns if ts_ns > self._final_ts else max(self.market.now_ns, self._final_ts + 1)

    def _row_done(self, ts: int) -> None:
        """The due row of ``ts`` is written for good: its timestamp's events are all in."""
        self._equity_row(ts)
        self._final_ts, self._equity_ts = ts, None

    def request_swap(self, slot: str, strategy: Strategy, *, version_id: str
                     ) -> asyncio.Future[None]:
        """Swap the strategy in ``slot`` at the next safe point (between two events),
        handing the old strategy's state to the new one; the future resolves after it.

        Call it on the loop's thread (from another thread:
        ``loop.call_soon_threadsafe(runner.request_swap, ...)``).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._loop is not None and loop is not self._loop:
            raise ArgusError("Runner.request_swap must be called on the loop's thread; use "
                             "loop.call_soon_threadsafe(runner.request_swap, ...)")
        future: asyncio.Future[None] = (loop or asyncio.get_event_loop()).create_future()
        self._swaps.append((slot, strategy, version_id, future))
        return future

    def close(self) -> None:
        """Give back a runner that will not run (its ledger and its run-directory lock),
        e.g. one built only to inspect its assembled components."""
        self.ledger.close()
        self._lock.release()

    def run_sync(self) -> RunSummary:
        """``asyncio.run(self.run())``."""
        return asyncio.run(self.run())

    # -- the loop ------------------------------------------------------------------
    async def run(self) -> RunSummary:
        """Run until the venue's stream ends (replay) or the task is cancelled."""
        started = time.perf_counter()
        RUN_ID.set(self.ctx.run_id)  # JSON log lines carry it from here on
        log.info("run %s starts: mode %s, venue %s, strategies %s, run directory %s",
                 self.ctx.run_id, self.ctx.mode, self.config.run.venue,
                 ", ".join(self.config.run.strategies) or "none", self.run_dir)
        self._start_run_row()
        # How the run ended, for its row: "failed" unless it gets to the end ("finished")
        # or a person / the caller stops it ("stopped": resumable as any other).
        ended, frozen = "failed", False
        try:
            instruments = await self.asm.venue.instruments()
            self.market.add_instruments(instruments)
            self._restore()
            starting_equity = self.config.run.starting_cash
            self._notify("on_startup", fail=True, ctx=self.ctx)
            if self.ctx.mode != "replay" and not getattr(self.asm.venue, "replays_recording",
                                                         False):
                # A live stream starts afresh after a restart: nothing to skip, but the event
                # numbering (and so the client order ids) continues where it stopped — set
                # before reconciliation, whose commits checkpoint the current number.  A
                # recording replayed in paper mode starts from its first event again: its
                # seen events are skipped by number, as in a replay.
                self.seq, self.resumed_from = self.resumed_from, 0
                self.engine.seq = self.seq
                self._final_ts += 1  # and no event comes again: every row written is final
            if self.live:
                self._fills_task = await self.engine.start_live()
                self._fills_task.add_done_callback(self._on_fills_stream_end)
            self._every = max(1, self.config.run.checkpoint_every_events)
            self._scan_every = max(1, self.config.run.scan_every_events)
            self._loop = asyncio.get_running_loop()
            conn, engine, on_event, after = (self.ledger.conn, self.engine, self._on_event,
                                             self._after)
            freeze_startup()  # full collections skip what start-up built (see gcfreeze)
            frozen = True
            async for batch in self._batches():
                for event in batch:
                    if event is _IDLE:
                        if engine.heard:  # a live fill booked while the market was quiet
                            self._hear_fills()
                        self._release()  # nothing queued: commit, hold no lock while waiting
                        continue
                    if type(event) is BarRun:
                        if await self._bar_run(event):
                            break  # max_events reached
                        continue
                    seq = self.seq = self.seq + 1
                    if seq <= self.resumed_from:
                        self.market.apply(event)
                        continue
                    if not conn.in_transaction:
                        self.ledger.begin()
                        self._release_by = time.monotonic() + HOLD_LOCK_S
                        # The first event after an idle point: a kill written meanwhile
                        # acts before this event's orders (the next idle tick came late).
                        if self.ledger.get_control(CONTROL_STATE) != self._control_seen:
                            self._read_control()
                    engine.seq = seq
                    on_event(event)
                    if after(seq):  # let swaps, kills and observers in (replays)
                        await asyncio.sleep(self._pause_s)
                        self._pause_s = 0.0
                    # read each time: a caller may move the stop while the run goes on
                    if self.max_events is not None and seq >= self.max_events:
                        break
                else:
                    continue
                break  # max_events reached
            if self.engine.live_tasks:  # acknowledgements of orders already sent
                await asyncio.gather(*list(self.engine.live_tasks), return_exceptions=True)
            self._raise_if_fills_failed()
            self._commit(reopen=False)
            for _slot, _strategy, version_id, future in self._swaps:
                if not future.done():
                    future.set_exception(ArgusError(f"the run ended before {version_id} could "
                                                    f"be swapped in"))
            self._swaps = []
            ended = "finished"
        except (KeyboardInterrupt, asyncio.CancelledError):
            ended = "stopped"
            if self.ledger.in_transaction:
                self.ledger.rollback()
            raise
        except BaseException:
            if self.ledger.in_transaction:
                self.ledger.rollback()
            raise
        finally:
            try:  # (a full disk here still lets plugins hear the end, the venue close and
                # the run lock go: they were skipped, and a monitor said 'stuck' for good)
                await self.engine.drain()  # answers in flight land before the ledger closes
                if self._fills_task is not None:
                    self._fills_task.cancel()
                    await asyncio.gather(self._fills_task, return_exceptions=True)
                if self.ledger.in_transaction:
                    self.ledger.commit()
                if not self._commit_each_change:
                    self.ledger.set_commit_sync(full=True)  # this commit fsyncs all before it
                self.ledger.finish_run(self.ctx.run_id, ended)
            finally:
                try:
                    self._notify("on_shutdown", ctx=self.ctx)
                finally:
                    try:
                        await self.asm.venue.close()
                    finally:
                        if frozen:
                            thaw()
                        self.ledger.close()
                        self._lock.release()
        if self.progress is not None:
            self.progress(self.seq)
        return RunSummary(self.ctx.run_id, self.run_dir, self.ctx.mode, self.seq,
                          self.resumed_from, self.n_orders, self.n_fills,
                          self.account.fees_paid, starting_equity, self.account.equity(),
                          self.risk.state.value, time.perf_counter() - started)

    async def _batches(self) -> AsyncIterator[Iterable[Any]]:
        """The events in iterables the loop drains one event at a time.  A replay of the
        builtin replay venue reads its file synchronously, all in one iterable (pulled
        lazily, nothing read ahead): an async generator per event would cost more than
        the market-state update; every other source yields one event at a time."""
        venue = self.asm.venue
        # The instance's own stream: a plugin that wraps it (a monitor counting events)
        # gets the generic path, its wrapper in the loop.
        if not self._commit_each_change and isinstance(venue, ReplayVenue) \
                and getattr(venue.stream, "__func__", None) is ReplayVenue.stream:
            strategies = self.asm.strategies.values()
            if not self.bar_stretches or self.asm.scanners or len(self.account.books) > 1 \
                    or (strategies and not any(type(s) in stretches.TRUSTED
                                               for s in strategies)):
                yield venue.events()  # no stretch can come: bars one by one, no detour
            else:  # a bar file's columns as runs, unless a caller put its own events in
                yield stretches.bar_runs(venue.runs() if getattr(
                    venue.events, "__func__", None) is ReplayVenue.events else venue.events(),
                    self._stretchable)
            return
        async for event in self._events():
            yield (event,)

    async def _events(self) -> AsyncIterator[Any]:
        """The venue's events; in paper and live mode with ``_IDLE`` whenever none is
        waiting, so the loop commits when it would otherwise wait (group commit under
        load, at once when quiet) and holds no ledger lock while idle: ``argus kill``,
        ``argus strategies promote`` and the orchestrator can write meanwhile."""
        if not self._commit_each_change:
            async for event in self.asm.venue.stream():
                yield event
            return
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=10_000)
        self._queue = queue  # a fill booked between events wakes the loop (_between_events)
        self.ctx.events_waiting = queue.qsize

        async def pump() -> None:
            try:
                async for event in self.asm.venue.stream():
                    await queue.put(event)
            finally:
                await queue.put(_END)

        async def tick() -> None:
            # An idle point in the queue when the market has been quiet a tick: waiting on
            # the queue itself (not a timed wait, whose extra task lets a fill the venue
            # sent after an event be booked before that event) keeps events and fills in
            # the order they came.
            while True:
                await asyncio.sleep(QUIET_TICK_S)
                if queue.empty():
                    queue.put_nowait(_IDLE)

        loop = asyncio.get_running_loop()
        task, ticker = loop.create_task(pump()), loop.create_task(tick())
        try:
            while True:
                if queue.empty():
                    yield _IDLE
                event = await queue.get()
                taken = self.ctx.taken_mono_ns = time.monotonic_ns()
                if event is _IDLE:
                    continue  # the tick's: the queue is empty again, idle at the top
                self._event_at = taken
                if event is _END:
                    break
                if getattr(event, "ts_ns", 0) > time.time_ns() + AHEAD_LIMIT_NS:
                    self._ahead(event)
                    continue
                yield event
            await task  # re-raises the stream's error, if it ended by one
        finally:
            task.cancel()
            ticker.cancel()
            await asyncio.gather(task, ticker, return_exceptions=True)

    def _ahead(self, event: Any) -> None:
        """Leave out a paper or live event stamped past :data:`AHEAD_LIMIT_NS` (said once
        per instrument): applied, it would move the market clock there for good."""
        iid = getattr(event, "instrument_id", "")
        if iid not in self._ahead_said:
            self._ahead_said.add(iid)
            log.error("%s stamped %.0f s ahead of this machine's clock: left out, and every "
                      "later one of %s that far ahead (damaged data, another time unit, or "
                      "this machine's clock is wrong)", type(event).__name__,
                      (event.ts_ns - time.time_ns()) / 1e9, iid or "its kind")

    def _after(self, seq: int) -> bool:
        """What follows event ``seq``: a scan, swaps asked for, a commit when due; True
        every 1,000th event (progress reported: the loop lets other tasks in)."""
        if self.asm.scanners and seq % self._scan_every == 0:
            self._scan()
        if self._swaps:
            self._apply_swaps()
        overdue = self._commit_each_change and time.monotonic() > self._release_by
        if (self._dirty and self._commit_each_change) or overdue or self._swapped \
                or seq % self._every == 0:
            self._commit(reopen=False)  # the next event opens the next one
        if overdue:  # the loop lets the lock go a moment: a waiting `argus kill` gets it
            self._pause_s = LOCK_PAUSE_S
        if seq % 1000:
            return overdue
        if self.progress is not None:
            self.progress(seq)
        return True

    async def _bar_run(self, run: BarRun) -> bool:
        """One instrument's run of bars: each quiet stretch in one step (:meth:`_quiet`),
        every other bar through the event path; True once ``max_events`` is reached."""
        i, n = 0, len(run)
        while i < n:
            if self.seq < self.resumed_from:  # before the checkpoint: the market only
                k = min(n - i, self.resumed_from - self.seq)
                self.market.apply(run.bar(i + k - 1))  # a bar moves the clock and its last bar
                self.seq, i = self.seq + k, i + k
                continue
            if not self.ledger.conn.in_transaction:
                self.ledger.begin()
            k, held = self._quiet(run, i)
            if k:
                self._take_quiet(run, i, k, held)
                i += k
            else:
                self.seq += 1
                self.engine.seq = self.seq
                self._on_event(run.bar(i))
                i += 1
            seq = self.seq
            if self._after(seq):
                await asyncio.sleep(0)
            if self.max_events is not None and seq >= self.max_events:
                return True
        return False

    def _stretchable(self, instrument_id: str) -> bool:
        """Whether bars of ``instrument_id`` may come a stretch at a time now: no strategy
        hears them, or one :data:`~argus_core.bar_runs.TRUSTED` one does, and the run
        keeps one book."""
        strategies, slots = self.asm.strategies, self._route(instrument_id)
        return len(self.account.books) < 2 and (not slots or (
            len(slots) == 1 and type(strategies[slots[0]]) in stretches.TRUSTED))

    def _quiet(self, run: BarRun, i: int) -> tuple[int, _Held | None]:
        """How many bars from the run's ``i``-th make a quiet stretch (0: none starts there),
        and a held position's values over it (:meth:`_held_stop`; None when flat):
        no order working or flatten under way, no swap waiting, one book, a mark by the
        bar, no checkpoint, progress report or ``max_events`` inside; the one strategy
        that hears the bars a :data:`~argus_core.bar_runs.TRUSTED` one that would send
        nothing (``quiet_bars``; ``take_bars`` then takes them); a held position's
        equity exact in integers and clear of the kill switch (:meth:`_held_stop`)."""
        iid, seq, slots = run.instrument_id, self.seq, self._route(run.instrument_id)
        strategy = stretches.trusted(self.asm.strategies[slots[0]]) if len(slots) == 1 \
            else None
        if slots and strategy is None:
            return 0, None  # several strategies, or one not trusted with bars ahead
        if self.broker.has_working(iid) or self.engine.flatten_reason is not None \
                or self._swaps or len(self.account.books) > 1 or iid in self.market.books:
            return 0, None
        stop = i + min(len(run) - i, self._every - seq % self._every, 1000 - seq % 1000,
                       stretches.RUN_BARS if self.max_events is None else self.max_events - seq)
        if stop <= i:  # at or past max_events (a resumed run, or a caller moved it): one bar
            return 0, None
        if strategy is not None:
            stop = i + strategy.quiet_bars(run, i, stop)
        pos, held = self.account.positions.get(iid), None
        if stop > i and pos is not None and pos.quantity:
            stop, held = self._held_stop(run, i, stop, pos.quantity)
        if stop > i and strategy is not None:
            strategy.take_bars(run, i, stop)
        return stop - i, held

    def _held_stop(self, run: BarRun, i: int, stop: int, quantity: Decimal
                   ) -> tuple[int, _Held | None]:
        """Where a stretch holding ``quantity`` of the run's instrument must end: its
        equities and gross exposures exact as integers (else at ``i``: the event path),
        and before the first bar whose drawdown comes near the kill switch; with those
        integers from bar ``i`` on."""
        checks = self.risk.checks
        if self._limits is None or self._limits[0] is not checks \
                or self._limits[1] != len(checks):
            watches = [c for c in checks if getattr(c, "on_equity", None) is not None]
            self._limits = (checks, len(checks), None if any(
                type(c) not in stretches.WATCHES for c in watches) else
                [c.s.max_drawdown_fraction for c in watches])  # type: ignore[attr-defined]
        limits, exact = self._limits[2], run.decimal_closes
        if exact is None or limits is None:
            return i, None  # a watch this path does not model sees every mark
        values = self.account._values  # each held instrument's marked value
        if len(values) == 1:  # held: this one alone
            other = gross = _ZERO
        else:
            others = [v for k, v in values.items() if k != run.instrument_id]
            other, gross = sum(others, _ZERO), sum(map(abs, others), _ZERO)
        got = stretches.held_equity(self.account.cash, other, gross, quantity,
                                    exact[1][i:stop], exact[0])
        if got is None:
            return i, None
        return i + stretches.drawdown_cut(got[0], got[2], self.risk.ctx.peak_equity,
                                          limits), got

    def _take_quiet(self, run: BarRun, i: int, k: int, held: _Held | None) -> None:
        """Take the run's bars ``i:i + k`` in one step: the clock and the instrument's last bar
        move to the stretch's end, each bar's equity row is written as the event path
        writes it (``held``: a held position's values from bar ``i`` on), and a held
        position is marked, and the peak equity raised, as its marks would have."""
        account, closes = self.account, run.closes
        self.seq += k
        self.engine.seq = self.seq
        self.market.apply(run.bar(i + k - 1))
        stamps = run.stamps[i:i + k]
        if self._equity_ts is not None and stamps[0] != self._equity_ts:
            self._row_done(self._equity_ts)  # valued before the stretch's first mark
        self.risk.ctx.ts_ns = stamps[-1]
        due, rows = stamps[:-1], self._equity_rows
        if held is None:  # flat: one valuation for the whole stretch
            if due:
                self._equity_row(due[0])
                text = rows[-1][1:]
                rows.extend([(ts, *text) for ts in due[1:]])
                if due[-1] >= self._day_end_ns:
                    self._new_day(due[-1], account.valuation()[0])
        else:
            equity, gross, scale = held[0][:k], held[1][:k], held[2]
            texts = stretches.row_texts
            rows.extend(zip(due, [str(account.cash)] * len(due), texts(equity[:-1], scale),
                            texts(gross[:-1], scale), strict=True))
            if due and due[-1] >= self._day_end_ns:  # the last day's first row in the stretch
                j = bisect.bisect_left(due, due[-1] // DAY_NS * DAY_NS)
                self._new_day(due[j], Decimal(equity[j]).scaleb(-scale))
            iid, ctx = run.instrument_id, self.risk.ctx
            top = equity.index(max(equity))  # the first of the highest: the peak's Decimal
            account.mark(iid, Decimal(repr(float(closes[i + top]))))
            if (peak := account.marked_equity()) > ctx.peak_equity:
                ctx.peak_equity = peak
            account.mark(iid, Decimal(repr(float(closes[i + k - 1]))))
        self._final_ts, self._equity_ts = (due or [self._final_ts])[-1], stamps[-1]

    @contextlib.contextmanager
    def _between_events(self, *, commit_now: bool = False) -> Iterator[None]:
        """Writes that arrive between events (acknowledgements, executions, cancels): inside
        the loop's open transaction when there is one (the loop commits it), else in their
        own, committed at once; ``commit_now`` commits either way."""
        idle = not self.ledger.in_transaction
        if idle:
            self.ledger.begin()
        try:
            yield
        finally:
            if idle or commit_now:
                self._commit(reopen=not idle)
            if self.engine.heard and self._queue is not None and self._queue.empty():
                self._queue.put_nowait(_IDLE)  # its strategy hears it now, not at an event

    def _release(self) -> None:
        """Idle point (paper/live): make everything durable and end the transaction; a
        quiet market's idle point (no transaction open) reads a person's kill too."""
        marks = self._stale_changes()
        if not self.ledger.in_transaction:  # a quiet market's tick: no event will commit
            if not (marks or self._swaps) and self.ledger.get_control(
                    CONTROL_STATE) == self._control_seen:
                return  # nothing to do: take no write lock (a CLI may be writing)
            self.ledger.begin()
        if self._swaps:  # a swap asked for in a quiet market waits for no event
            self._apply_swaps()
        for iid, qty, why in marks:
            self._stale_marks.symmetric_difference_update((iid,))
            self._dirty = True
            self._risk_event(self.market.now_ns, "stale_mark", "flagged" if why else
                             "cleared", f"{iid}: a position of {qty:f} is marked from a "
                             f"stale book ({why}); the drawdown kill switch cannot see its "
                             f"moves until data returns" if why else
                             f"{iid}: " + ("its book updates again; marks are live" if qty
                                           else "the position is closed"), None)
        if self.ledger.in_transaction:
            if self._dirty or self._equity_rows or self.engine.pending_fills or self._swapped:
                self._commit(reopen=False)
            else:
                self.ledger.commit()
                self._read_control()
                if self._dirty or self.ledger.in_transaction:  # it adopted a kill that acted
                    self._commit(reopen=False)

    def _stale_changes(self) -> list[tuple[str, Decimal, str]]:
        """Held instruments whose book stopped, or started again, reflecting the market,
        each ``(instrument, quantity, why stale or "")``: the venue marked the book not
        live, or the whole feed has sent nothing for longer than the stale limit (a book
        that only did not change while the feed goes on is still right: books update on
        change).  The drawdown kill switch cannot see moves it is not sent, so a person
        must know the equity shown is a stale mark.  Paper and live (their idle points)."""
        stale_ns, market, changes = self.market.stale_after_ns, self.market, []
        quiet = time.monotonic_ns() - self._event_at if self._event_at else 0
        silent = f"no event from the venue for {quiet / 1e9:.1f}s" \
            if stale_ns and quiet > stale_ns else ""
        for iid, pos in self.account.positions.items():
            book = market.books.get(iid)
            if book is None or (pos.quantity == 0 and iid not in self._stale_marks):
                continue
            why = "" if pos.quantity == 0 else (book.stale_reason or "book not live") \
                if not book.live else silent
            if bool(why) != (iid in self._stale_marks):
                changes.append((iid, pos.quantity, why))
        return changes

    def request_commit(self) -> None:
        """Ask for a commit (with a checkpoint) after the current event: for components
        that wrote to the ledger through the runner's connection and need it durable."""
        self._dirty = self._swapped = True

    def _on_event(self, event: MarketEvent) -> None:
        market, account, engine = self.market, self.account, self.engine
        market.apply(event)  # moves the clock; marks and fills come below
        ts = market.now_ns
        if self._equity_ts is not None and ts != self._equity_ts:  # _row_done, inlined:
            self._equity_row(self._equity_ts)  # the loop's hottest branch
            self._final_ts, self._equity_ts = self._equity_ts, None
        self.risk.ctx.ts_ns = ts
        kind = type(event)
        if kind is Bar:
            iid = event.instrument_id  # type: ignore[union-attr]
            n_fills = engine.n_fills
            pos = account.positions.get(iid)
            # A live book's mid marks, as for prints (a bar beside it, a bad print, once
            # tripped the drawdown kill switch); books.get: replays have none.
            # (only the instrument's newest bar: a candle sent again is not the market now)
            by_bar = (market.books.get(iid) is None or market.live_mid(iid) is None) \
                and market.bars.get(iid) is event
            if pos is not None and pos.quantity and by_bar:
                account.mark(iid, Decimal(repr(event.close)))  # type: ignore[union-attr]
                self._watch_equity()
            if self.broker.has_working(iid) or engine.flatten_reason is not None \
                    or engine.owes_venue:  # a live cancel or check the venue owes
                engine.on_market_event(event)  # working orders, a flatten in progress
                if engine.n_fills != n_fills and by_bar:
                    # A position this bar's fills opened is worth the bar's close too.
                    account.mark(iid, Decimal(repr(event.close)))  # type: ignore[union-attr]
            self._equity_ts = ts  # one row per timestamp, however many bars share it
        else:
            marked = False
            if kind is Trade:
                trade: Trade = event  # type: ignore[assignment]  # checked by `kind is`
                # A live two-sided book marks its instrument at the mid; a print marks
                # only without one (a bad print outside the book once tripped the
                # drawdown kill switch and flattened a sound position).
                if self.market.live_mid(trade.instrument_id) is None \
                        and market.trades.get(trade.instrument_id) is trade:  # the newest
                    account.mark(trade.instrument_id, trade.price)
                    pos = account.positions.get(trade.instrument_id)
                    marked = pos is not None and pos.quantity != 0
            elif kind is OrderBook or kind is BookDelta:
                marked = self._mark_mid(event.instrument_id)  # type: ignore[union-attr]
            elif kind is Settlement:
                engine.settle(event)  # type: ignore[arg-type]
            elif kind is Signal and math.isfinite(event.value):  # type: ignore[union-attr]
                # (a non-finite reading reaches market state as no reading, not the ledger,
                # whose column holds no NaN: the run died on its NOT NULL constraint)
                self.ledger.record_signal(
                    event.name, event.instrument_id, event.ts_ns,  # type: ignore[union-attr]
                    event.value)  # type: ignore[union-attr]
            if marked:
                self._watch_equity()
            n_fills = engine.n_fills
            engine.on_market_event(event)
            if kind is Trade and engine.n_fills != n_fills \
                    and market.live_mid(trade.instrument_id) is None \
                    and market.trades.get(trade.instrument_id) is trade:
                # A position this print's fills opened is worth the print, not its fill.
                account.mark(trade.instrument_id, trade.price)
        if engine.heard:  # this event's fills (or live ones since the last look)
            self._hear_fills()
        strategies = self.asm.strategies
        if not strategies:
            return
        iid = getattr(event, "instrument_id", None)
        slots = self._routes.get(iid) if len(strategies) == self._routed else None
        if slots is None:
            slots = self._route(iid)
        if not slots:
            return
        # One book: the account is that book.  Several: each slot sees its own.
        mode, state, pricers = self._mode, self.risk.ctx.trading_state, self.asm.pricers
        shared = len(account.books) < 2
        if shared:
            sctx = StrategyContext(ts, account.portfolio, market, pricers, mode, state)
        for slot in slots:
            orders = self._slot_orders(slot)
            if shared:
                sctx._orders = orders  # each slot reads its own orders
            else:
                sctx = StrategyContext(ts, self._slot_view(slot), market, pricers, mode,
                                       state, orders)
            try:
                intents = strategies[slot].on_event(event, sctx)
                if intents:
                    intents = _intents(intents, "on_event")
            except Exception as exc:
                self._strategy_failed(slot, exc)
                continue
            if intents:
                engine.submit(intents, ts, slot)
        if engine.heard:  # fills of the orders just sent (a taker filled at once)
            self._hear_fills()

    def _slot_orders(self, slot: str) -> Callable[[], list[KnownOrder]]:
        """The slot's orders not yet final, read on demand (made once per slot)."""
        if (orders := self._orders_of.get(slot)) is None:
            orders = self._orders_of[slot] = partial(self.ledger.working_orders_of, slot)
        return orders

    def _slot_view(self, slot: str) -> Callable[[], Portfolio]:
        """The slot's own book as a portfolio, read on demand (made once per slot)."""
        if (view := self._book_views.get(slot)) is None:
            view = self._book_views[slot] = partial(self.account.book_portfolio, slot)
        return view

    def _hear_fills(self) -> None:
        """Hand the fills booked since the last look to their slots' strategies
        (``Strategy.on_fill``); what they ask for goes through the engine like any other
        intent.  A fill of no strategy's order (a flatten, a scanner's basket) is
        dropped here.  A fill whose instrument has no market data yet (after a restart:
        one left unheard, or found by reconciliation) waits for its first book, bar or
        print, so its answer is not refused for want of a price.  A strategy heard needs
        the loop's transaction: opened if none is."""
        engine, strategies, market = self.engine, self.asm.strategies, self.market
        ts, heard = market.now_ns, engine.heard
        for _ in range(HEAR_ROUNDS):
            # Each fill leaves the engine's list (which checkpoints keep) once its strategy
            # has answered, before the answer's orders commit; if the process stops inside
            # on_fill (Ctrl-C), the fill is still there, heard again after the restart.
            waiting = 0
            for _ in range(len(heard)):
                slot, fill = heard[waiting]
                strategy = strategies.get(slot)
                # (getattr: a duck-typed strategy, no Strategy base, may not have it)
                if getattr(type(strategy), "on_fill", Strategy.on_fill) is Strategy.on_fill:
                    del heard[waiting]
                    continue  # no strategy, or one that does not listen (no context built)
                iid = fill.instrument_id
                if not market.has_data(iid) and iid not in market.settled:
                    waiting += 1
                    continue
                if not self.ledger.in_transaction:
                    self.ledger.begin()
                portfolio = self.account.portfolio if len(self.account.books) < 2 \
                    else self._slot_view(slot)
                ctx = StrategyContext(ts, portfolio, market, self.asm.pricers,
                                      self._mode, self.risk.ctx.trading_state,
                                      self._slot_orders(slot))
                try:
                    intents = strategy.on_fill(fill, ctx)  # type: ignore[union-attr]
                    if intents:
                        intents = _intents(intents, "on_fill")
                except Exception as exc:
                    del heard[waiting]
                    self._strategy_failed(slot, exc)
                    continue
                del heard[waiting]
                if intents:
                    engine.submit(intents, ts, slot)
            if len(heard) == waiting:
                return

    def _route(self, instrument_id: str | None) -> list[str]:
        """The slots an event of ``instrument_id`` goes to, in slot order: a strategy
        with a ``listens_to`` set of instrument ids hears only theirs (and events of no
        instrument), so one slot per symbol costs one call per event, not one per slot.
        Remembered until the slots change (a swap, or a slot added)."""
        strategies = self.asm.strategies
        if len(strategies) != self._routed:
            self._routes, self._routed = {}, len(strategies)
        elif (known := self._routes.get(instrument_id)) is not None:
            return known
        slots = [slot for slot, strategy in strategies.items()
                 if instrument_id is None
                 # getattr: a duck-typed strategy (no Strategy base) may not declare it
                 or (wanted := getattr(strategy, "listens_to", None)) is None
                 or instrument_id in wanted]
        self._routes[instrument_id] = slots
        return slots

    def _watch_equity(self) -> None:
        """A held instrument was re-valued: the drawdown watch sees every mark, so the
        kill switch trips between orders too, and flattens before it latches."""
        equity = self.account.marked_equity()
        before = self.risk.ctx.trading_state
        flatten_reason = self.risk.on_equity(equity)
        while self.risk.unreported:  # a watch that raised: REDUCING, said once
            name, why = self.risk.unreported.pop(0)
            log.error(why)
            self._risk_event(self.market.now_ns, name or "risk_check", "error", why, None)
        if flatten_reason is not None:
            self._risk_event(self.market.now_ns, "max_drawdown", "halted", flatten_reason,
                             None)
            self._write_control(flatten=True)
        elif self.risk.ctx.trading_state != before:
            self._persist_state_change()

    def _on_fills_stream_end(self, task: asyncio.Task[None]) -> None:
        """Without our executions we cannot know our positions: HALT at once (a person
        clears it with ``argus resume`` once the venue's private stream works again)."""
        if task.cancelled() or task.exception() is None:
            return
        reason = f"the venue's fills stream failed: {task.exception()}"
        log.error(reason)
        with self._between_events():
            self._risk_event(self.market.now_ns, "fills_stream", "halted", reason, None)
            self.set_trading_state(TradingState.HALTED, reason)

    def _raise_if_fills_failed(self) -> None:
        task = self._fills_task
        if task is not None and task.done() and not task.cancelled() and task.exception():
            raise ArgusError(f"the venue's fills stream failed: {task.exception()}")

    def _mark_mid(self, instrument_id: str) -> bool:
        """Mark a held instrument at its live book's mid, or keep its mark inside a live
        one-sided book (:meth:`MarketState.bounded_mark`); True when the mark moved."""
        account = self.account
        pos = account.positions.get(instrument_id)
        if pos is None or not pos.quantity:
            return False
        mid = self.market.live_mid(instrument_id)
        if mid is not None:
            account.mark(instrument_id, mid)
            return True
        mark = account.marks.get(instrument_id, pos.avg_price)
        bounded = self.market.bounded_mark(instrument_id, mark)
        if bounded is mark:
            return False
        account.mark(instrument_id, bounded)
        return True

    def _new_day(self, ts: int, equity: Decimal) -> None:
        """The first equity row of a UTC day: the daily loss limit's day-start equity, unless
        a check set it this day already (it was the equity at the day's first order: a fall
        from midnight to then was never counted)."""
        ctx = self.risk.ctx
        if ts // DAY_NS != ctx.day:
            ctx.day, ctx.day_start_equity = ts // DAY_NS, equity
        self._day_end_ns = (ctx.day + 1) * DAY_NS

    def _equity_row(self, ts: int) -> None:
        # Buffered and written with the next commit: same transaction, one executemany.
        # The account's valuation is one cached tuple until the next fill or mark, so a
        # flat stretch formats its row once.
        account = self.account
        valued = account.valuation()
        if ts >= self._day_end_ns:
            self._new_day(ts, valued[0])
        if valued is not self._row_valued:
            equity, gross = valued
            cash, cash_text = self._cash_text
            if cash is not account.cash:  # the cash moves with fills only
                cash, cash_text = self._cash_text = (account.cash, str(account.cash))
            self._row_valued = valued
            self._row_text = (cash_text, str(equity.quantize(_CENT_E6, context=WIDE)),
                              str(gross.quantize(_CENT_E6, context=WIDE)))
        self._equity_rows.append((ts, *self._row_text))
        books = account.books
        if len(books) > 1:  # one book: the total is that book
            texts, marks, last = self._book_text, account.marks, account.last_price
            # A book's row is written when its cash or equity moved since its last row
            # (``texts``: what was last written, per slot), the books that moved at ``ts``
            # one JSON row of ``book_rows`` (core migration m010; the view ``book_equity``
            # carries a book's last row onto every equity row).  A flat book writes
            # nothing until it trades: half the rows of a long/flat strategy.
            moved = []
            for slot, book in books.items():
                cash, text = book.cash, texts.get(slot)
                if text is not None and text[0] is cash and not book.held:
                    continue  # flat, cash unmoved (every fill makes a new cash object)
                held = _ZERO  # as Account.book_equity: summed first, then added to the cash
                for i, qty in book.held:
                    mark = marks.get(i)
                    held += qty * (mark if mark is not None else last[i])
                value = cash + held
                if text is not None and text[0] is cash:
                    if text[1] is not None and not text[1].compare_total(value):
                        continue  # the same digits and exponent: the same text
                    cash_text = text[2]
                else:
                    cash_text = str(cash)
                equity_text = str(value.quantize(_CENT_E6, context=WIDE))
                texts[slot] = (cash, value, cash_text, equity_text)
                if text is None or text[2] != cash_text or text[3] != equity_text:
                    name = self._slot_json.get(slot)
                    if name is None:
                        name = self._slot_json[slot] = json.dumps(slot)
                    # Written by hand: json.dumps costs ~4 us a time (0.3 us an event with
                    # 16 books); a Decimal's text holds no character JSON escapes.
                    moved.append(f'{name}:["{cash_text}","{equity_text}"]')
            if moved:
                self._book_rows.append((ts, "{" + ",".join(moved) + "}"))

    # -- scanners ------------------------------------------------------------------
    def _scan(self) -> None:
        ts = self.market.now_ns
        # The book side each executable finding sent this scan takes: a later finding of
        # another scanner on the same side of a book (negRisk and a ranking both finding
        # one basket) would chase liquidity already bought, so it is kept as research.
        taken: dict[tuple[str, str], str] = {}
        # A finding the last scan found too is in the ledger already: its row would be
        # ignored, so it is not serialised again (a ranking's ~3,000 persisting findings
        # cost ~30 ms a scan to re-serialise; its scan ~7 ms).  Only the last scan's ids
        # are kept, so memory stays one scan's worth; a finding that comes back later
        # is serialised once more and its row ignored as before.
        known, found = self._found, set[str]()
        self._found = found
        for scanner in self.asm.scanners:
            try:
                opportunities = scanner.scan(self.market, ts)
            except Exception as exc:  # fenced: one scanner's bug must not end the run
                reason = f"scanner {scanner.name!r} failed: {type(exc).__name__}: {exc}"
                log.error(reason)
                self._risk_event(ts, "scanner_error", "skipped", reason, None)
                continue
            for opp in opportunities:
                oid = opp.opportunity_id
                stored = oid in known or oid in found
                found.add(oid)
                if stored:
                    continue
                sides = [(leg.instrument_id, leg.side.value) for leg in opp.legs]
                first = next((taken[s] for s in sides if s in taken), None)
                if opp.lane == EXECUTABLE and first is not None:
                    opp = attrs.evolve(opp, lane=RESEARCH, reason=f"{opp.reason} [research: "
                                       f"{first} trades the same book side this scan]")
                if self._on_opportunity(opp, ts):
                    taken.update(dict.fromkeys(sides, opp.opportunity_id))

    def _on_opportunity(self, opp: Opportunity, ts: int) -> bool:
        """Store ``opp`` once and trade it if executable; whether it was sent."""
        body = json.dumps(converter.unstructure(opp), sort_keys=True)
        tradeable = opp.lane == EXECUTABLE
        if not self.ledger.insert_opportunity(opp.opportunity_id, opp.scanner, opp.ts_ns,
                                              opp.kind, opp.expected_profit, opp.risk_free,
                                              body, "seen" if tradeable else RESEARCH):
            return False  # already acted on (a resumed run, or the same one next cycle)
        self._dirty = True
        self._notify("on_opportunity", opportunity=opp, ctx=self.ctx)
        if tradeable:  # research findings are stored and observed, never traded
            self.engine.submit_opportunity(opp, ts)
        return tradeable

    # -- failures, swaps, state ----------------------------------------------------
    def _notify(self, hook_name: str, *, fail: bool = False, **kwargs: Any) -> None:
        """Call every plugin's observer ``hook_name``, each fenced like a strategy: a
        failing observer is logged and recorded as a risk event, and the loop goes on
        (``fail``: at start-up, a failing observer stops the run before it trades)."""
        for impl in getattr(self.ctx.host.pm.hook, hook_name).get_hookimpls():
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            if fail:
                fenced_call(impl.plugin_name, hook_name, lambda a=args, f=impl.function: f(**a))
                continue
            try:
                impl.function(**args)
            except Exception as exc:
                reason = (f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                          f"{type(exc).__name__}: {exc}")
                log.error(reason)
                self._risk_event(self.market.now_ns, "observer_error", "logged", reason, None)


    def _strategy_failed(self, slot: str, exc: BaseException) -> None:
        reason = f"strategy {slot!r} raised {type(exc).__name__}: {exc}"
        log.error(reason)
        self._risk_event(self.market.now_ns, "strategy_error", "reducing", reason, None)
        self.set_trading_state(TradingState.REDUCING, reason)
        for listener in list(self.risk_trigger_listeners):
            listener(reason)

    def _apply_swaps(self) -> None:
        swaps, self._swaps = self._swaps, []
        for slot, strategy, version_id, future in swaps:
            old = self.asm.strategies.get(slot)
            if old is None:  # a swap replaces a slot's strategy; it never adds a slot
                future.set_exception(ArgusError(
                    f"no strategy slot {slot!r} in this run to swap {version_id} into "
                    f"(slots: {', '.join(sorted(self.asm.strategies)) or 'none'})"))
                continue
            try:
                strategy.set_state(old.get_state())
            except Exception as exc:
                future.set_exception(ArgusError(f"state hand-over to {version_id} failed: "
                                                f"{exc}"))
                continue
            self.asm.strategies[slot] = strategy
            self._routes = {}  # the new strategy may listen to other instruments
            self.versions[slot] = version_id
            self._dirty = self._swapped = True
            future.set_result(None)

    def _persist_state_change(self) -> None:
        """Store a state a check escalated to since the latch was last read or written.
        A person's ``argus kill`` / ``argus resume`` written since then is the base (a kill
        is never overwritten by an older, milder state); this run's new escalation goes on
        top only where it is more severe."""
        ctx = self.risk.ctx
        fresh, why = ctx.trading_state, ctx.state_reason
        if fresh == self._state_seen or fresh == TradingState.ACTIVE.value:
            return  # nothing escalated (states relax only by a person)
        if self.ledger.get_control(CONTROL_STATE) != self._control_seen:
            self._read_control()
            escalate(ctx, TradingState(fresh), why)
            if ctx.trading_state == self._state_seen:
                return  # the person's state already covers it
        self._write_control()

    def _write_control(self, *, flatten: bool = False) -> None:
        ctx = self.risk.ctx
        flatten = flatten or (self.engine.flatten_reason is not None
                              and ctx.trading_state == TradingState.HALTED.value)
        value = json.dumps({"state": ctx.trading_state, "reason": ctx.state_reason,
                            "flatten": flatten, "by": "argus"})
        self.ledger.put_control(CONTROL_STATE, value, self.market.now_ns)
        self._control_seen, self._state_seen = value, ctx.trading_state
        self._dirty = True
        self._apply_control(flatten)

    def _read_control(self) -> None:
        raw = self.ledger.get_control(CONTROL_STATE)
        flatten, data = False, parse_latch(raw)
        if raw and data is None:  # damaged: nothing trades until a person rewrites it
            data = {"state": TradingState.HALTED.value, "by": "argus", "reason": "the "
                    "ledger's trading latch cannot be read; `argus resume` rewrites it"}
            if raw != self._control_seen:
                self._risk_event(self.market.now_ns, "control", "halted", data["reason"], None)
        if data:
            self.risk.ctx.trading_state = data["state"]
            self.risk.ctx.state_reason = data.get("reason", "")
            flatten = bool(data.get("flatten"))
            by = data.get("by", "a person")
            if raw != self._control_seen and by != "argus":  # a person's decision, audited
                self.ledger.record_control_adopted(
                    CONTROL_STATE, data["state"], f"{by}: {data.get('reason', '')}"
                    + (" (and flatten)" if flatten else ""))
        self._control_seen, self._state_seen = raw, self.risk.ctx.trading_state
        self._apply_control(flatten)

    def _apply_control(self, flatten: bool) -> None:
        """HALTED cancels every working order once; with flatten, the engine then closes
        every position (re-trying on later events until flat)."""
        self.engine.enforce_halt()
        if flatten and self.risk.state is TradingState.HALTED \
                and self.engine.flatten_reason is None \
                and any(p.quantity != 0 for p in self.account.positions.values()):
            self.engine.request_flatten(self.risk.ctx.state_reason)

    def _risk_event(self, ts: int, check: str, action: str, reason: str,
                    intent: Intent | None) -> None:
        self.engine.risk_event(ts, check, action, reason, intent)

    def _state(self) -> dict[str, Any]:
        rctx = self.risk.ctx
        return {
            "strategies": self._strategy_states(),
            "risk_checks": {name: state for name, state in (
                (name, check.get_state()) for name, check in self._risk_checks_by_name())
                if state},
            "scanners": {name: state for name, state in (
                (name, scanner.get_state()) for name, scanner in self._scanners_by_name())
                if state},
            "broker": self.broker.get_state(),
            "account": self.account.get_state(),
            "risk": {"peak_equity": str(rctx.peak_equity), "day": rctx.day,
                     "day_start_equity": str(rctx.day_start_equity),
                     "order_times_ns": rctx.order_times_ns[-RECENT_ORDERS:],
                     "consecutive_losses": rctx.consecutive_losses,
                     "realized_seen": rctx.realized_seen, "loss_group": rctx.loss_group},
            "versions": self.versions, "n_orders": self.engine.n_orders,
            "n_fills": self.engine.n_fills,
            "flatten": self.engine.flatten_reason,
            # Booked and committed, not yet heard: heard after a restart from here (only
            # when there are any: a checkpoint without is the same as before the key).
            **({"unheard": [[slot, converter.unstructure(fill)] for slot, fill in heard]}
               if (heard := self.engine.heard) else {}),
        }

    def _strategy_states(self) -> dict[str, Any]:
        """Each slot's state for the checkpoint.  A ``get_state`` that raises is that
        strategy's error (REDUCING, as one in ``on_event``), never the run's end: the slot
        keeps its last good state."""
        for slot, strategy in self.asm.strategies.items():
            try:
                self._good_states[slot] = strategy.get_state()
            except Exception as exc:
                self._strategy_failed(slot, exc)
        return {slot: self._good_states.get(slot, {}) for slot in self.asm.strategies}

    def _scanners_by_name(self) -> list[tuple[str, Scanner]]:
        """Each scanner with its configured name (its key in checkpoints)."""
        names = list(self.config.run.scanners)
        if len(names) != len(self.asm.scanners):  # an Assembly built by hand
            names = [s.name or type(s).__name__ for s in self.asm.scanners]
        return list(zip(names, self.asm.scanners, strict=True))

    def _risk_checks_by_name(self) -> list[tuple[str, RiskCheck]]:
        """Each risk check with its registered name (its key in checkpoints)."""
        checks = self.asm.risk_checks
        names = self.asm.risk_check_names
        if len(names) != len(checks):  # an Assembly built by hand: the checks' own names
            names = [c.name or type(c).__name__ for c in checks]
        return list(zip(names, checks, strict=True))

    def _commit(self, *, reopen: bool = True) -> None:
        """Checkpoint every component and commit everything since the last commit;
        ``reopen`` starts the next transaction at once (replay, and mid-event)."""
        if not self.ledger.in_transaction:
            self.ledger.begin()
        # A person may have run `argus kill` / `resume`: read first, so what it does (the
        # halt's cancels, a flatten's orders and fills) is in this checkpoint and commit; a
        # live flatten's commit_now nests here and commits the same open transaction.
        self._read_control()
        if self._equity_ts is not None:  # written now, rewritten if more of it follows
            self._equity_row(self._equity_ts)
        if self._equity_rows:
            self.ledger.append_equity(self._equity_rows)
            self._equity_rows = []
        if self._book_rows:
            self.ledger.append_book_rows(self._book_rows)
            self._book_rows = []
        self.ledger.save_checkpoint(CHECKPOINT, self.seq, self.market.now_ns, self._state())
        self.ledger.commit()
        if self._swapped and not self._commit_each_change:
            self.ledger.sync_wal()  # a swap is not re-derivable: durable now, even in replay
        if reopen:
            self.ledger.begin()
        self._dirty = self._swapped = False
        fills, self.engine.pending_fills = self.engine.pending_fills, []
        for fill in fills:  # observers see only committed fills
            self._notify("on_fill", fill=fill, ctx=self.ctx)

    def _restore(self) -> None:
        saved = self.ledger.load_checkpoint(CHECKPOINT)
        try:
            if saved is not None:
                self._restore_checkpoint(*saved)
        except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError
                ) as exc:  # a traceback before (AttributeError: a list where a table was)
            raise LedgerError(f"{self.ledger.path}: checkpoint {CHECKPOINT!r} cannot be "
                              f"restored ({type(exc).__name__}: {exc}): a damaged or "
                              f"hand-edited ledger, or a component that cannot read its "
                              f"state") from exc
        # Each book's last row as committed (with the checkpoint): a resumed run writes a
        # book's next row where the run that stopped would have, so its rows are the same.
        self._book_text = {slot: (None, None, *row) for slot, row
                           in self.ledger.last_book_rows(self.account.books).items()}
        # The rows before the newest are final (a replay resumed may rewrite the newest).
        self._final_ts = (self.ledger.query("select max(ts_ns) as t from equity")[0]["t"]
                          or 0) - 1
        # After the checkpoint: a kill written while the run was stopped must see the
        # broker's working orders (to cancel them) and the account's positions (to
        # flatten them); read before, it found neither and latched as done.
        self._read_control()

    def _held_quantity(self, instrument_id: str) -> Decimal:
        pos = self.account.positions.get(instrument_id)
        return pos.quantity if pos is not None else Decimal(0)

    def _restore_checkpoint(self, seq: int, ts: int, state: dict[str, Any]) -> None:
        self.resumed_from = seq
        for slot, st in state["strategies"].items():
            if slot in self.asm.strategies:
                self.asm.strategies[slot].set_state(st)
                self._good_states[slot] = st
        checks = dict(self._risk_checks_by_name())
        for name, st in state.get("risk_checks", {}).items():
            if name in checks:
                checks[name].set_state(st)
        scanners = dict(self._scanners_by_name())
        for name, st in state.get("scanners", {}).items():
            if name in scanners:
                scanners[name].set_state(st)
        self.broker.set_state(state["broker"])
        self.engine.resume_paper_orders()
        self.account.set_state(state["account"])
        r = state["risk"]
        rctx = self.risk.ctx
        rctx.peak_equity = Decimal(r["peak_equity"])
        rctx.day, rctx.day_start_equity = r["day"], Decimal(r["day_start_equity"])
        self._day_end_ns = (rctx.day + 1) * DAY_NS if rctx.day >= 0 else 0
        rctx.order_times_ns = list(r["order_times_ns"])
        rctx.consecutive_losses = r["consecutive_losses"]
        rctx.realized_seen = dict(r.get("realized_seen", {}))
        rctx.loss_group = list(r.get("loss_group", []))
        self.versions = dict(state.get("versions", {}))
        self.engine.n_orders, self.engine.n_fills = state["n_orders"], state["n_fills"]
        self.engine.flatten_reason = state.get("flatten")
        self.engine.heard[:] = [(slot, converter.structure(fill, Fill))
                                for slot, fill in state.get("unheard", [])]
        if self.engine.heard:
            log.info("resuming with %d fill(s) committed before the stop and not yet heard "
                     "by their strategy: heard once the instrument has data",
                     len(self.engine.heard))
        self.market.now_ns = ts
        log.info("resuming %s after event %d", self.run_dir, seq)

    def _start_run_row(self) -> None:
        # The run id is the config's hash: another config in this directory is refused.
        path = self.config.path
        self.ledger.start_run(self.ctx.run_id, self.ctx.mode, self.config.argus.seed,
                              canonical_json(self.config),
                              str(Path(path).resolve()) if path else None)

