"""The promotion ladder, hot-swap and rollback, driven from inside the running loop.

The slot's strategy is wrapped in :class:`Supervised`, a trusted in-process
wrapper that gives the :class:`Orchestrator` a tick at every event: a safe
point where it can start a cycle, feed the shadow candidate, promote or roll
back.  Swaps go through ``Runner.request_swap`` (applied between events, state
handed over), so no event is lost or seen twice.

Ladder: ``shadow`` (the candidate sees the same events beside the incumbent;
both are paper-scored by the same simple fill model) -> ``canary`` (live in
the slot, buys capped at ``canary_notional``) -> ``full``.  Rollback to the
parent version happens on any risk trigger (a sandbox timeout, crash,
malformed reply or exception; the runner's risk triggers) and on the
ladder's own monitors (drawdown since the swap, consecutive losing exits),
after which the loop is REDUCING until a person clears it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import decimal
import math
import re
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import apsw
import attrs

from argus_core import (
    ArgusError,
    Bar,
    CancelIntent,
    Fill,
    Intent,
    MarketEvent,
    Side,
    Strategy,
    StrategyContext,
    TradingState,
    hookimpl,
    open_read_only,
    redact,
)
from argus_orchestrator.config import OrchestratorSettings
from argus_orchestrator.cycle import CycleResult, CycleRunner
from argus_orchestrator.errors import OrchestratorError, SandboxError
from argus_orchestrator.sandbox import SandboxedStrategy, WorkerFailure, validate_source
from argus_orchestrator.versions import VersionStore, verified_source

#: Past this many unwritten equity marks, drop those the ledger holds by now.
_MARKS_TRIM_AT = 4096
#: The checkpoint holding the live AI version's losing-exit count (see _save_watch).
WATCH_CHECKPOINT = "orchestrator.watch"
#: The checkpoint holding the highest cycle number issued (see _issue_cycle_id).
CYCLES_CHECKPOINT = "orchestrator.cycles"
#: A cycle id: ``cycle-`` and its number (four digits or more).
_CYCLE_ID = re.compile(r"cycle-(\d+)")
#: The orchestrator's fields a hot-swap changes: restored as they were when it fails.
_SWAP_FIELDS = ("stage", "stage_events", "candidate", "candidate_id", "candidate_source",
                "running_id", "fallback_id", "live_ai_id", "incumbent_id", "incumbent_source")


@attrs.frozen
class _PendingSwap:
    """A swap the runner has been asked for and applies between two events: its outcome
    (the runner's future) and what the orchestrator looked like before it.

    ``kind``: ``"promotion"`` (a version up the ladder: a failure puts the orchestrator
    back as ``before``) or ``"reinstate"`` (a rollback's version back in: a failure halts
    the loop, see :meth:`Orchestrator._reinstate_failed`; ``failed_id`` is the version
    rolled back).  ``outgoing``: the slot's strategy when the swap was asked, which the
    swap replaces.  ``superseded``: swaps asked earlier at the same tick that this one
    overrides (a rollback asked after a promotion at one tick: the runner applies both,
    in order); only their outcome is read, and their strategies are stopped unless the
    slot holds them."""

    future: asyncio.Future[None]
    version_id: str
    strategy: Strategy
    before: dict[str, Any]
    kind: str = "promotion"
    outgoing: Strategy | None = None
    failed_id: str | None = None
    superseded: tuple[_PendingSwap, ...] = ()


def _close(strategy: Strategy | None) -> None:
    """Stop the worker under ``strategy`` (through CanaryCap/Supervised wrappers)."""
    target = _closer(strategy)
    if target is not None:
        target.close()  # type: ignore[attr-defined]


def _closer(strategy: Strategy | None) -> Strategy | None:
    """The object whose ``close`` stops ``strategy``'s worker: the outermost in its chain
    of wrappers (``inner``) that has one; None when none has."""
    while strategy is not None:
        if callable(getattr(strategy, "close", None)):
            return strategy
        strategy = getattr(strategy, "inner", None)
    return None


def _chain(strategy: Strategy | None) -> list[Strategy]:
    """``strategy`` and every strategy it wraps (``inner``), outermost first."""
    out = []
    while strategy is not None:
        out.append(strategy)
        strategy = getattr(strategy, "inner", None)
    return out


def _outcome(future: asyncio.Future[None]) -> BaseException | None:
    """A done swap future's error (None: applied); reading it marks it retrieved."""
    if future.cancelled():
        return ArgusError("the swap was cancelled")
    return future.exception()


class Supervised(Strategy):
    """The slot's strategy as the runner sees it: the current version plus a supervisor tick."""

    def __init__(self, inner: Strategy, controller: Orchestrator, *,
                 keep_own_state: bool = False) -> None:
        self.inner = inner
        self.controller = controller
        self.keep_own_state = keep_own_state
        self.name = getattr(inner, "name", "")  # type: ignore[misc]

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        """Tick the controller, run the current version, let the controller see its intents.

        A version rolled back at this tick (a person's rollback read now, or a monitor's
        trigger) says nothing more: its intents of this event are dropped (cancels pass:
        they only take risk off), so no order of it goes out after the ledger says it
        was rolled back.

        At a rollback the slot's working orders are cancelled first (through the engine,
        as any cancel): they are the rolled-back version's, which a REDUCING loop leaves
        working; kept, one could still fill, heard by a version that never placed it (a
        sandboxed one cannot see it to cancel it)."""
        controller = self.controller
        # A rollback after the last event (a risk trigger): this is the reinstated version.
        earlier = controller.take_rolled_back()
        controller.before_event(event, ctx)
        if controller.take_rolled_back():
            return [controller.rollback_cancel()]
        if controller.muted:
            # A rolled-back version whose replacement could not come in: it is not run
            # (the loop is HALTED for a person, who may flatten or promote a version).
            return [controller.rollback_cancel()] if earlier else []
        intents = list(self.inner.on_event(event, ctx))
        out = controller.after_event(event, ctx, intents)
        if controller.take_rolled_back():
            return [controller.rollback_cancel(),
                    *(i for i in out if isinstance(i, CancelIntent))]
        return [controller.rollback_cancel(), *out] if earlier else out

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[Intent | CancelIntent]:
        """The current version hears its slot's fill.  While the slot is being swapped (a
        rollback flagged, or a swap asked and not applied yet) only its cancels pass: the
        version may be on its way out, and no order of a rolled-back one goes out."""
        self.controller.heard_fill(fill, ctx)
        intents = list(self.inner.on_fill(fill, ctx))
        if self.controller.swapping:
            return [i for i in intents if isinstance(i, CancelIntent)]
        return intents

    def get_state(self) -> dict[str, Any]:
        """The current version's state."""
        return self.inner.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Hand ``state`` to the current version.  A candidate that has shadowed the
        incumbent on the same events keeps its own (warm) state and only takes the keys it
        lacks from the hand-over; a cold version takes the hand-over as it is."""
        if self.keep_own_state:
            state = {**state, **self.inner.get_state()}
        self.inner.set_state(state)


class CanaryCap(Strategy):
    """A canary: buys capped at ``notional`` (quote currency) at the last close; sells,
    reduce-only orders and intents that are not orders (a ``CancelIntent``) pass as they are."""

    def __init__(self, inner: Strategy, notional: Decimal) -> None:
        self.inner = inner
        self.notional = notional
        self.name = getattr(inner, "name", "")  # type: ignore[misc]
        self.last_price: dict[str, Decimal] = {}

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        """Run the candidate and cap what it buys."""
        if type(event) is Bar:
            self.last_price[event.instrument_id] = Decimal(repr(event.close))
        return self._capped(self.inner.on_event(event, ctx))

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[Intent | CancelIntent]:
        """The candidate hears its fill; what it buys is capped the same way."""
        return self._capped(self.inner.on_fill(fill, ctx))

    def _capped(self, intents: Sequence[Intent | CancelIntent]) -> list[Intent | CancelIntent]:
        out: list[Intent | CancelIntent] = []
        for intent in intents:
            # Only an order has a side and a quantity; a cancel (or any other kind of
            # intent) passes untouched.
            if isinstance(intent, Intent) and intent.side is Side.BUY and not intent.reduce_only:
                price = self.last_price.get(intent.instrument_id)
                if price:
                    # In a context wide enough for any notional over any positive price
                    # (the default context's 28 digits raised past ~1e20 of quantity).
                    cap = _CAP_CONTEXT.quantize(_CAP_CONTEXT.divide(self.notional, price),
                                                Decimal("0.00000001"))
                    qty = cap if intent.quantity is None else min(intent.quantity, cap)
                    if qty <= 0:
                        continue
                    intent = _with_quantity(intent, qty)
            out.append(intent)
        return out

    def get_state(self) -> dict[str, Any]:
        """The candidate's state."""
        return self.inner.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Hand ``state`` to the candidate."""
        self.inner.set_state(state)


#: The canary cap's arithmetic: notional (at most 1e15) over a price (at least ~1e-12)
#: to 8 decimals needs ~36 digits; rounding as the default context's.
_CAP_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)


def _with_quantity(intent: Intent, qty: Decimal) -> Intent:
    import attrs

    return attrs.evolve(intent, quantity=qty, reason=f"{intent.reason} [canary cap]".strip())


class ShadowBook:
    """Paper-scores one strategy's intents: a buy goes long ``notional`` at the bar's close,
    a sell goes flat; fees in bps of notional.  The same model scores incumbent and
    candidate, so the comparison is like for like."""

    def __init__(self, notional: Decimal, fee_bps: Decimal) -> None:
        self.notional = float(notional)
        self.fee = float(fee_bps) / 10_000
        self.cash = 0.0
        self.qty = 0.0
        self.mark = 0.0
        self.trades = 0

    def on_bar(self, close: float, intents: Sequence[Intent | CancelIntent]) -> None:
        """Apply ``intents`` at ``close`` and mark to it (orders fill at once here, so a
        cancel has nothing to cancel)."""
        self.mark = close
        for intent in intents:
            if not isinstance(intent, Intent):
                continue
            if intent.side is Side.BUY and self.qty == 0:
                self.qty = self.notional / close
                self.cash -= self.notional * (1 + self.fee)
                self.trades += 1
            elif intent.side is Side.SELL and self.qty > 0:
                self.cash += self.qty * close * (1 - self.fee)
                self.qty = 0.0
                self.trades += 1

    @property
    def pnl(self) -> float:
        """Marked P&L."""
        return self.cash + self.qty * self.mark


class Orchestrator:
    """Drives cycles and the ladder for one slot of one runner.

    Every method that touches the runner runs on the loop's thread, between events
    (``before_event`` / ``after_event`` of :class:`Supervised`, and the risk-trigger
    listener).  In ``blocking`` mode (replays) a cycle runs right there, so a replay is
    reproducible; otherwise (paper, live) it runs on a worker thread with its own ledger
    connection while the loop keeps trading, and its result is collected at a later safe
    point.  A person's ``argus strategies promote|rollback`` is read from the ledger every
    ``poll_every_events`` events (default: every event; through a read-only connection, so
    it is seen as soon as the CLI commits, and only after some connection committed) and
    applied at that safe point.
    """

    def __init__(self, settings: OrchestratorSettings, versions: VersionStore,
                 cycles: CycleRunner, *, incumbent_id: str, incumbent_source: str,
                 build: Callable[[str], Strategy], max_cycles: int | None,
                 blocking: bool, echo: Callable[[str], None] = lambda _: None,
                 keep_open: Sequence[Strategy] = (),
                 trusted_sources: Sequence[str] = ()) -> None:
        self.s = settings
        self.versions = versions
        self.cycles = cycles
        self.incumbent_id = incumbent_id
        self.incumbent_source = incumbent_source
        self.build = build  # version source -> a fresh strategy (sandboxed unless trusted)
        self.max_cycles = max_cycles
        self.blocking = blocking
        self.echo = echo
        self.runner: Any = None
        self.events = 0
        # The highest cycle number issued in the run (an earlier process's included): what
        # --cycles counts, and what the next cycle's id follows (see _issue_cycle_id).
        self.cycles_done = 0
        self._cycle_id = ""  # the running (or last) cycle's id
        self._cycles_state: dict[str, Any] = {}  # checkpoint ``orchestrator.cycles``
        self.next_cycle_at = settings.first_cycle_after_events
        self.stage = "idle"  # idle | cycle | shadow | canary | full
        self.stage_events = 0
        self.canary_orders = 0  # orders the canary asked for (said when it goes full)
        self.canary_fills = 0  # fills of the canary's own orders (its evidence)
        # The slot's orders the canary inherited (working, or filled and not yet heard,
        # when it took the slot): their fills are not its evidence.  None until taken, at
        # the canary's first event or fill (see _canary_inherited).
        self._inherited: set[str] | None = None
        self.candidate: Strategy | None = None
        self.candidate_id: str | None = None
        self.candidate_source: str | None = None
        self.running_id = incumbent_id  # the version trading in the slot now
        self.fallback_id: str | None = None  # what a rollback swaps back in
        self.live_ai_id: str | None = None  # AI version trading since the last swap
        self.shadow: dict[str, ShadowBook] = {}
        self.monitor_peak = 0.0
        self.monitor_losses = 0
        # Per instrument (|quantity|, realised P&L) at the monitor's last look (None: not
        # looked yet since the swap), and the book's realised P&L net of fees at the last
        # exit: an exit's result is the change in that net (see _monitor).
        self._exit_seen: dict[str, tuple[Decimal, Decimal]] | None = None
        self._net_at_exit = Decimal(0)
        # A resumed run's watch read back (see _restore_watch): the first look keeps the
        # stored ``_net_at_exit`` instead of starting from the book as it is.
        self._net_restored = False
        self.rollbacks: list[str] = []
        self.results: list[CycleResult] = []
        self.applied_requests: list[str] = []
        self.cycle_started_at: dict[str, int] = {}
        self.cycle_collected_at: dict[str, int] = {}
        self._future: concurrent.futures.Future[CycleResult] | None = None
        self._cycle_incumbent = incumbent_id  # what the running cycle proves against
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="orchestrator")
        self._instrument = ""
        self._loop_thread: int | None = None
        self._reader: apsw.Connection | None = None
        self._request_cursor = 0
        self._data_version: int | None = None  # the reader's last ``pragma data_version``
        self._reader_closed = False  # see close_reader
        self._shutdown_hook: _ShutdownHook | None = None  # see attach
        self._pending_swap: _PendingSwap | None = None
        # Persons' promotions read while a swap was pending: applied, in order, at the
        # next tick, once that swap's outcome is known (see apply_requests).
        self._deferred: list[dict[str, Any]] = []
        self._muted = False  # see muted
        # Strategies a swap never stops (the trusted installed plugin: the seed's build
        # returns that same object again when a rollback reinstates it).
        self.keep_open: tuple[Strategy, ...] = tuple(keep_open)
        # The sources whose build is a strategy in keep_open (the trusted plugin's module).
        self.trusted_sources: tuple[str, ...] = tuple(trusted_sources)
        self._resumed = False  # see resume_from_ledger
        self._rolled_back = False  # see Supervised.on_event
        # (ts_ns, equity) at every bar the loop has seen and maybe not yet written: the
        # loop writes its equity rows when it commits, and a cycle's truth benchmarks
        # must describe the same trades as the fills it reads (see truth_benchmarks).
        self.equity_marks: list[tuple[int, float]] = []

    # -- wiring ---------------------------------------------------------------------------
    def attach(self, runner: Any) -> None:
        """Subscribe to the runner's risk triggers and start reading persons' requests."""
        self.runner = runner
        runner.risk_trigger_listeners.append(self.on_risk_trigger)
        rows = self.versions.ledger.query("select coalesce(max(id), 0) as m from "
                                          "strategy_events")
        self._request_cursor = int(rows[0]["m"])
        # The request reader closes at the runner's ``on_shutdown``, before the runner
        # closes its ledger: open then, it kept the writer's close from checkpointing,
        # and every run folder kept ``argus.db-wal`` and ``-shm`` (a read-only connection
        # closing last cannot remove them).
        host = getattr(getattr(runner, "ctx", None), "host", None)
        if host is not None and self._shutdown_hook is None:
            hook = _ShutdownHook(self)
            host.add_plugin(hook, f"orchestrator.shutdown.{id(self):x}", rebuild=False)
            self._shutdown_hook = hook

    def resume_from_ledger(self, *, muted: bool = False) -> None:
        """Continue a run the ledger already holds (``argus orchestrate --resume``).

        ``muted``: the run stopped after a rollback whose version could not come in (see
        :meth:`_halt_muted`): no version is full, the loop is HALTED, and the slot stays
        muted, naming no version, until a swap into it succeeds (a person's promotion).

        The slot trades the newest ``full`` version (``incumbent_id``, chosen by
        :func:`argus_orchestrator.session.resume_version`).  A version that was canary or
        shadow when the process stopped is not resumed half-way up the ladder: it is
        rejected, saying so; an AI version trading full stays watched (a risk trigger
        rolls it back to its parent).  Cycle ids continue after the highest ever issued
        (:meth:`_issued_cycles`), and ``cycle_every_events`` from the last cycle
        (:meth:`_resumed_cadence`); a person's request written
        while the run was down is applied (only those still pending are: see
        :meth:`_apply_promotion`).  The runner's checkpoint names the version in the slot
        (``Runner.versions``): set to the resumed one at the first tick, after the runner
        restored its checkpoint."""
        slot = self.s.slot
        # Stamped when the stopped process last committed (the loop's clock is not restored
        # yet): the ledger's history says the version stopped trading there.
        saved = self.versions.ledger.load_checkpoint("runner")
        stopped_ns = int(saved[1]) if saved is not None else None
        for row in self.versions.list(slot):
            if row["status"] in ("canary", "shadow"):
                self.versions.set_status(
                    row["version_id"], "rejected", f"the run restarted while it was "
                    f"{row['status']}; resumed on {self.incumbent_id}", ts_ns=stopped_ns)
                if row["status"] == "canary":
                    # It traded in the slot: its working orders (a resting bid) are
                    # cancelled at the first event, as a rollback's are.  Kept, they
                    # worked on for the version resumed, which never placed them.
                    self._rolled_back = True
        self._muted = muted
        if muted:
            self.echo(f"resumed muted: the rollback's version {self.incumbent_id} could not "
                      f"come in; the slot trades nothing until a person promotes a version")
        elif self.versions.get(self.incumbent_id)["parent_id"]:
            self.live_ai_id = self.incumbent_id
            self.monitor_peak = self._peak_since_swap(self.incumbent_id)
            self._restore_watch(self.incumbent_id)
        self.cycles_done = self._issued_cycles()
        self.next_cycle_at = self._resumed_cadence(None if saved is None else int(saved[0]))
        if self.max_cycles is not None and self.cycles_done >= self.max_cycles:
            self.echo(f"no cycle will start: the run has run {self.cycles_done} of its "
                      f"{self.max_cycles} (--cycles counts the whole run)")
        self._request_cursor, self._data_version = 0, None
        self._resumed = True

    def _issued_cycles(self) -> int:
        """The highest cycle number the run has issued: the stored counter (checkpoint
        ``orchestrator.cycles``), and, should it lag (a process killed before committing
        it), every cycle id the ledger holds (cycles and thoughts).  Counted from the
        slot's rows, a cycle that failed before writing its row (a ledger error at its
        start) was numbered again by the next process, its id issued twice."""
        ledger = self.versions.ledger
        saved = ledger.load_checkpoint(CYCLES_CHECKPOINT)
        self._cycles_state = dict(saved[2]) if saved is not None else {}
        issued = self._cycles_state.get("issued")
        issued = max(0, issued) if type(issued) is int else 0
        rows = ledger.query("select cycle_id from orchestrator_cycles union "
                            "select distinct cycle_id from thoughts")
        numbers = [int(m.group(1)) for r in rows
                   if (m := _CYCLE_ID.fullmatch(str(r["cycle_id"])))]
        return max([issued, *numbers])

    def _issue_cycle_id(self) -> str:
        """The next cycle's id, numbered after the highest ever issued, and that number
        stored (through the loop's connection, committed with this event) before the
        cycle can write anything.  A number whose work folder exists is passed over: a
        replay killed while a cycle ran leaves its proving backtests there with its rows
        rolled back, and a backtest into a folder holding a run continues that run (the
        new candidate would be judged on the old one's results)."""
        n = self.cycles_done + 1
        work_dir = getattr(self.cycles, "work_dir", None)
        while work_dir is not None and (Path(work_dir) / f"cycle-{n:04d}").exists():
            n += 1
        self.cycles_done = n
        self._save_cycles(issued=n)
        self._cycle_id = f"cycle-{n:04d}"
        return self._cycle_id

    def _save_cycles(self, **fields: int) -> None:
        """Store ``fields`` in the cycles checkpoint (the highest number issued, the loop's
        event number at the last cycle's collection), through the loop's connection,
        committed with this event."""
        self._cycles_state = {**self._cycles_state, **fields}
        ledger = self.versions.ledger
        with ledger.transaction():
            ledger.save_checkpoint(CYCLES_CHECKPOINT, self._loop_seq(),
                                   int(self.versions.clock() or 0), self._cycles_state)
        if self.runner is not None:
            self.runner.request_commit()

    def _loop_seq(self) -> int:
        """The loop's event number (the runner's, which a restart continues; 0 without
        one)."""
        seq = getattr(self.runner, "seq", 0)
        return seq if type(seq) is int else 0

    def _resumed_cadence(self, stopped_seq: int | None) -> int:
        """The event (of this process) a resumed run's next cycle may start at:
        ``cycle_every_events`` after the last cycle was collected, counting the loop's
        events before the restart, and never before ``first_cycle_after_events``.
        Counted from the restart, every restart began the cadence again, so a process
        restarted every few hundred events (a crash loop under a supervisor) ran a cycle
        at each start, however long ``cycle_every_events``.  (The loop's events are
        counted: with instruments the slot does not hear, a little sooner.)"""
        first = self.s.first_cycle_after_events
        collected = self._cycles_state.get("collected_seq")
        if stopped_seq is None or type(collected) is not int:
            return first
        since = max(0, stopped_seq - collected)
        return max(first, self.s.cycle_every_events - since)

    def _peak_since_swap(self, version_id: str) -> float:
        """The slot's highest equity written since ``version_id`` last went full (its swap
        in), 0.0 when none: a resumed run's drawdown trigger measures from the peak of the
        version's whole time in the slot.  From the resumed equity, every restart forgave
        the drawdown so far (4% before a crash and 4% after never reached a 5% trigger)."""
        ledger = self.versions.ledger
        rows = ledger.query("select max(ts_ns) as ts from strategy_events where version_id = ? "
                            "and to_status = 'full'", (version_id,))
        since = rows[0]["ts"] if rows else None
        if since is None:
            return 0.0
        books = getattr(getattr(self.runner, "account", None), "books", {})
        try:
            if len(books) > 1:  # the slot's own book (one book: the account is the book)
                rows = ledger.query("select max(cast(equity as real)) as peak from "
                                    "book_equity_changes where slot = ? and ts_ns >= ?",
                                    (self.s.slot, since))
            else:
                rows = ledger.query("select max(cast(equity as real)) as peak from equity "
                                    "where ts_ns >= ?", (since,))
        except apsw.Error:  # a ledger without those rows: watched from the resumed equity
            return 0.0
        peak = rows[0]["peak"] if rows else None
        return float(peak) if peak is not None and math.isfinite(peak) else 0.0

    def close(self) -> None:
        """Stop the candidate worker, the cycle thread and the request reader."""
        self._check_swap()  # a swap the run ended before (or failed at the last event)
        pending, self._pending_swap = self._pending_swap, None
        if pending is not None:  # never applied (the run stopped before its next event)
            self._close_unused(pending)
        close = getattr(self.candidate, "close", None)
        if callable(close):
            close()
        self._pool.shutdown(wait=True)
        self.close_reader()  # (the hook stays with the run's host, which ends with it)

    def close_reader(self) -> None:
        """Close the persons' request reader for good (the run is ending): the runner's
        ``on_shutdown``, before it closes its ledger, whose close then checkpoints and
        removes the WAL.  No request is read after it (a reader opened again would make
        ``-wal`` and ``-shm`` files that no one removes)."""
        self._reader_closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- per-event ticks (the loop's safe points) --------------------------------------------
    def before_event(self, event: MarketEvent, ctx: StrategyContext) -> None:
        """Start or collect a cycle, apply persons' requests, promote along the ladder."""
        if self._loop_thread is None:
            self._loop_thread = threading.get_ident()
        if self._resumed and self.runner is not None:
            self._resumed = False
            if self.muted:  # no version trades: the checkpoint names none
                self.runner.versions.pop(self.s.slot, None)
            else:
                self.runner.versions[self.s.slot] = self.running_id  # the resumed version
        self._check_swap()  # the runner applied the last swap after the last event
        self.events += 1
        # A canary proves itself only by trading: events while the loop is not ACTIVE (a
        # person's kill or REDUCING vetoes its orders) do not count towards full.
        if self.stage != "canary" or self._trading_active():
            self.stage_events += 1
        if self.stage == "canary" and not self._swap_pending:
            self._canary_inherited(ctx)  # before the canary's first call, if not yet
        iid = getattr(event, "instrument_id", None)
        if isinstance(iid, str):
            self._instrument = self._instrument or iid
        if type(event) is Bar:  # the loop writes an equity row per bar, as of this moment
            self._record_equity(ctx)
        if self.events % self.s.poll_every_events == 0 or self._deferred:
            self.apply_requests()
        if self.stage == "idle" and self._may_start_cycle():
            self._start_cycle()
        # Collected whatever the stage: a rollback while a paper/live cycle runs sets the
        # ladder idle, and its result was never read (see _finish_cycle).
        if self._future is not None and self._future.done():
            self._finish_cycle(self._cycle_result(self._future))
        elif self._swap_pending:
            pass  # one swap per tick: the ladder's own step waits for the next
        elif self.stage == "shadow" and self.stage_events > self.s.ladder.shadow_events:
            self._judge_shadow()
        elif self.stage == "canary" and self.stage_events > self.s.ladder.canary_events:
            if self.canary_fills < self.s.ladder.canary_min_fills:
                self._reject_canary()
            else:
                self._promote_full(expect="canary")

    def after_event(self, event: MarketEvent, ctx: StrategyContext,
                    intents: list[Intent | CancelIntent]) -> list[Intent | CancelIntent]:
        """Feed the shadow candidate, watch the live AI version, pass intents through."""
        if self.stage == "canary" and not self._swap_pending:  # (pending: the outgoing's)
            self.canary_orders += sum(1 for i in intents if isinstance(i, Intent))
        if self.stage == "shadow" and self.candidate is not None and type(event) is Bar:
            try:
                shadow_intents = list(self.candidate.on_event(event, ctx))
            except WorkerFailure as exc:
                self._reject_shadow(f"failed in shadow: {exc}")
            else:
                self.shadow["incumbent"].on_bar(event.close, intents)
                self.shadow["candidate"].on_bar(event.close, shadow_intents)
        if self.live_ai_id is not None and not self._swap_pending:
            # (With a swap asked at this tick, the slot's P&L is still the outgoing
            # version's: the incoming one is watched from its first event.)
            self._monitor(ctx)
        return intents

    def heard_fill(self, fill: Fill, ctx: StrategyContext | None) -> None:
        """A fill of the slot (``Supervised.on_fill``, before the version hears it): a
        canary's evidence of trading when it is of an order the canary placed itself.
        Counted from its first order, a fill of an order the version before it left
        working (a resting bid) that came after that first order was the canary's
        evidence, and a canary whose own orders never filled went full on it."""
        if self.stage != "canary" or self._swap_pending:
            return
        if fill.client_order_id not in self._canary_inherited(ctx):
            self.canary_fills += 1

    def _canary_inherited(self, ctx: StrategyContext | None) -> set[str]:
        """The client order ids of the slot's orders the canary did not place, taken the
        first time it is asked once the canary holds the slot (its first event or the
        first fill it hears, before it is called): every order of the slot then is the
        previous version's, those still working (``ctx.orders``) and those filled whose
        fills wait to be heard (the engine's list).  An order the slot sends later is
        the canary's: the slot runs no other strategy."""
        if self._inherited is None:
            orders = getattr(ctx, "orders", None) or ()
            ids = {known.order.client_order_id for known in orders}
            # (slot, fill) pairs the runner has booked and not yet handed to their slots
            heard = getattr(getattr(self.runner, "engine", None), "heard", None) or ()
            for item in list(heard):
                if isinstance(item, tuple) and len(item) == 2 and item[0] == self.s.slot:
                    ids.add(str(getattr(item[1], "client_order_id", "")))
            self._inherited = ids
        return self._inherited

    def _reject_canary(self) -> None:
        """The canary's events are done with fewer fills than ``canary_min_fills``: it
        proved nothing by trading, so it does not go full.  It is ``rejected`` saying
        so, and the version it replaced swapped back in (its working orders cancelled,
        as at a rollback); the loop stays ACTIVE: a lack of evidence is no risk event.
        A compare-and-set on ``canary``: a person's rollback of it is heard first."""
        assert self.candidate_id is not None
        failed = self.candidate_id
        lad = self.s.ladder
        why = (f"not promoted: {self.canary_fills} fill(s) in {lad.canary_events} canary "
               f"events ({self.canary_orders} order(s) asked), fewer than "
               f"canary_min_fills {lad.canary_min_fills}: nothing proven by trading")
        if not self.versions.set_status(failed, "rejected", why, expect="canary"):
            self.apply_requests()
            return
        target = self.fallback_id or self.versions.fallback_of(self.versions.get(failed))
        self.live_ai_id = None
        self._rolled_back = True  # the canary's working orders are cancelled
        self._drop_candidate(stop=False)  # (its worker stops once swapped out)
        self.rollbacks.append(f"{failed}: {why}")
        self.echo(f"canary {failed} rejected: {why}; {target} swapped back in")
        self._set_stage("idle")
        if not target:
            return
        row = self.versions.get(target)
        self.incumbent_id, self.incumbent_source = target, row["source"]
        self.running_id, self.fallback_id = target, None
        if row["status"] != "full":
            self.versions.set_status(target, "full", f"reinstated: canary {failed} rejected")
        if self.runner is not None:
            if not self._reinstate(row, failed):
                return
            self.runner.request_commit()
        self._watch_reinstated(row)

    def _trading_active(self) -> bool:
        """Whether the loop trades freely (ACTIVE; no runner: a unit test's ladder)."""
        return self.runner is None or self.runner.trading_state is TradingState.ACTIVE

    @property
    def swapping(self) -> bool:
        """Whether a rollback is flagged, a swap of the slot is asked and not applied yet,
        or the slot holds a rolled-back version (``muted``): ``Supervised.on_fill`` lets
        only cancels through meanwhile."""
        return self._rolled_back or self.muted or self._swap_pending

    @property
    def _swap_pending(self) -> bool:
        """Whether a swap of the slot is asked and not applied yet (this tick's)."""
        pending = self._pending_swap
        return pending is not None and not pending.future.done()

    @property
    def muted(self) -> bool:
        """Whether the slot holds a version the ledger says was rolled back (its
        replacement could not come in): it is not run, and its fills' answers are
        dropped (cancels excepted), until a swap into the slot succeeds."""
        return getattr(self, "_muted", False)

    def rollback_cancel(self) -> CancelIntent:
        """The cancel of every working order of the slot a rollback sends (see
        :meth:`Supervised.on_event`)."""
        return CancelIntent(self.s.slot, None, f"rolled back to {self.running_id}: the "
                                               f"failed version's working orders")

    def take_rolled_back(self) -> bool:
        """Whether the slot's version was rolled back since the last look (and forget it)."""
        rolled, self._rolled_back = self._rolled_back, False
        return rolled

    def on_risk_trigger(self, reason: str) -> None:
        """The runner's risk trigger (a strategy raised, e.g. a sandbox failure).

        With a swap asked for at this event's tick and not applied yet, the version that
        failed is the outgoing one (the incoming one has not traded): it is recorded
        against that one, and the swap goes on.  It rolled back the incoming version,
        blaming it for the other's failure and reinstating the version that failed.

        With a rollback's swap pending, the version that failed is the one rolled back at
        this tick (the reinstated one has not traded): nothing more to do.  A failure of
        another slot's strategy is not this slot's version's: the runner's REDUCING
        stands, and the version is not rolled back for it (it was, marked
        ``rolled_back`` for another strategy's error)."""
        if not reason.startswith(f"strategy {self.s.slot!r} "):
            return
        pending = self._pending_swap
        if self._swap_pending and pending is not None and pending.kind == "reinstate":
            return
        # (A canary that fails at the event its promotion to full was asked is the version
        # coming in too: it is rolled back below, its parent swapped in after the promotion.)
        if pending is not None and not pending.future.done() \
                and pending.before["running_id"] != pending.version_id:
            outgoing = pending.before["running_id"]
            if pending.before["live_ai_id"] == outgoing:
                why = f"risk trigger while {pending.version_id} was being swapped in: {reason}"
                self.versions.set_status(outgoing, "rolled_back", why)
                self.rollbacks.append(f"{outgoing}: {why}")
                self.echo(f"ROLLBACK: {outgoing} failed on its way out: {why}")
                # What the incoming version returns to is no longer the one that failed
                # (kept, the incoming's rollback reinstated it; a canary's incumbent left
                # no version full, and a restart wrote the seed again).
                self._forget_fallback(outgoing, by_person=False)
            return
        if self.live_ai_id is not None:
            self.rollback(f"risk trigger: {reason}")

    # -- cycles -------------------------------------------------------------------------------
    def _may_start_cycle(self) -> bool:
        if self._future is not None:
            return False  # the last cycle still runs (the ladder left it for a rollback)
        # The run's cycles, an earlier process's included: counted per process, each
        # restart (a crash loop under a supervisor) started max_cycles more, each spending
        # up to a cycle's budget.
        if self.max_cycles is not None and self.cycles_done >= self.max_cycles:
            return False
        if self.runner is not None and self.runner.trading_state is not TradingState.ACTIVE:
            return False  # after a rollback only a person may resume
        return self.events >= self.next_cycle_at

    def _record_equity(self, ctx: StrategyContext) -> None:
        self.equity_marks.append((ctx.ts_ns, float(ctx.portfolio.equity)))
        if len(self.equity_marks) >= _MARKS_TRIM_AT:
            self._trim_equity_marks()

    def _trim_equity_marks(self) -> None:
        """Forget the marks the ledger's equity rows already hold."""
        rows = self.versions.ledger.query("select max(ts_ns) as ts from equity")
        written = rows[0]["ts"] if rows and rows[0]["ts"] is not None else None
        if written is not None:
            self.equity_marks = [m for m in self.equity_marks if m[0] > written]

    def _start_cycle(self) -> None:
        cycle_id = self._issue_cycle_id()
        state = self.runner.asm.strategies[self.s.slot].get_state() if self.runner else {}
        self.echo(f"[{cycle_id}] started at event {self.events} (incumbent "
                  f"{self.incumbent_id})")
        self.cycle_started_at[cycle_id] = self.events
        source, incumbent_id = self.incumbent_source, self.incumbent_id
        self._cycle_incumbent = incumbent_id
        self._trim_equity_marks()
        self.stage = "cycle"
        # The cycle runs on the worker thread (its backtests start their own event loops,
        # which cannot nest in the running one).  A replay waits for it right here: the
        # loop thread is parked, so the cycle may use the runner's ledger connection and
        # the replay stays reproducible.  Paper/live keep trading; the cycle (with its own
        # ledger connection) is collected at the first safe point after it is done.
        self._future = self._pool.submit(
            self.cycles.run, cycle_id, incumbent_id=incumbent_id, incumbent_source=source,
            incumbent_factory=self._incumbent_factory(source), handover_state=state,
            instrument_id=self._instrument or "replay:BTC/USD",
            recent_equity=list(self.equity_marks))  # a copy: the loop goes on
        if self.blocking:
            try:
                concurrent.futures.wait([self._future])
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM) while the cycle runs: it makes no more
                # calls, and the one in flight is waited for, so that its spend is in the
                # spool (written again by the session once the loop has rolled back).
                self._stop_cycle()
                raise
            if self.runner is not None:
                # The cycle wrote through the loop's connection: its model calls (paid,
                # and with a live transport not re-derivable by a resumed replay) are
                # committed, and synced, with this event, not at the next checkpoint up to
                # checkpoint_every_events later (a kill before it lost every spool and
                # budget row: the resumed run paid for the same cycle again, unseen).
                self.runner.request_commit()

    def _stop_cycle(self) -> None:
        """Stop the running cycle's model calls and wait for the one in flight (a second
        interrupt stops the wait)."""
        with contextlib.suppress(Exception):
            self.cycles.model.stop()
        if self._future is not None:
            with contextlib.suppress(BaseException):
                concurrent.futures.wait([self._future])

    def _incumbent_factory(self, source: str) -> Callable[[], Strategy]:
        """What builds the incumbent for the cycle's proving backtest (on the cycle's
        thread).  The trusted installed plugin is not built: ``build`` returns the very
        object trading in the slot, and the backtest ran it on history (its state, a moving
        average's closes, left at the proving window's prices for the live loop) while,
        in paper and live, the loop called it on the other thread.  It is proven on a copy
        taken here, on the loop's thread, between events."""
        if not self.keep_open:
            return lambda: self.build(source)
        built = self.build(source) if source in self.trusted_sources else None
        if built is None or not any(built is kept for kept in self.keep_open):
            return lambda: self.build(source)
        try:
            snapshot = copy.deepcopy(built)
        except Exception as exc:  # fenced: a strategy holding a lock or a connection
            why = (f"the trusted incumbent cannot be copied for its proving backtest "
                   f"({type(exc).__name__}: {exc}); it is never run on history itself")

            def refuse() -> Strategy:
                raise OrchestratorError(why)
            return refuse
        return lambda: copy.deepcopy(snapshot)

    def _cycle_result(self, future: concurrent.futures.Future[CycleResult]) -> CycleResult:
        """The cycle's result; one that raised (``CycleRunner.run`` fences its steps, so
        only its own bookkeeping can, a ledger error) is a failed cycle.  Read with
        ``result()``, it raised again at every event, as the slot's strategy failing."""
        error = future.exception()
        if error is None:
            return future.result()
        cycle_id = self._cycle_id or f"cycle-{self.cycles_done:04d}"
        return CycleResult(cycle_id, "failed", redact(f"the cycle raised "
                                                      f"{type(error).__name__}: {error}")[:500])

    def _finish_cycle(self, result: CycleResult) -> None:
        self._future = None
        self.results.append(result)
        self.cycle_collected_at[result.cycle_id] = self.events
        self.next_cycle_at = self.events + self.s.cycle_every_events
        self._save_cycles(collected_seq=self._loop_seq())  # (a restart keeps the cadence)
        self.echo(f"[{result.cycle_id}] {result.outcome}: {result.reason}")
        if self.stage != "cycle" or self._cycle_incumbent != self.incumbent_id:
            self._drop_stale_cycle(result)
            return
        if result.outcome != "deploy" or result.candidate_source is None:
            self._set_stage("idle")
            return
        assert result.candidate_id is not None
        self._start_shadow(result.candidate_id, result.candidate_source,
                           "passed the gates; shadowing the incumbent on the same events")

    def _drop_stale_cycle(self, result: CycleResult) -> None:
        """A cycle that ended after the ladder left it (the incumbent it was proven against
        was rolled back meanwhile): its candidate beat a version no longer trading, so it
        is rejected, saying why.  Before, its result was never read: a second cycle
        started beside it, and its candidate stayed ``candidate`` ("passed the gates")
        for ever, a proven-looking version a person might promote."""
        if result.outcome == "deploy" and result.candidate_id is not None:
            why = (f"stale: proven against {self._cycle_incumbent}, which stopped trading "
                   f"while the cycle ran (the slot now trades {self.incumbent_id})")
            self.versions.set_status(result.candidate_id, "rejected", why)
            self.echo(f"{result.candidate_id} rejected: {why}")

    # -- ladder ------------------------------------------------------------------------------
    def _set_stage(self, stage: str) -> None:
        self.stage = stage
        self.stage_events = 0

    def _new_candidate(self, version_id: str, source: str) -> Strategy | None:
        """Start ``version_id``'s worker with the slot's state; None (the version
        rejected, with the reason) when it cannot start or cannot take that state.

        Such a failure is the candidate's, not the incumbent's: raised from this tick it
        reached the runner as the slot's strategy failing (the loop went REDUCING, the
        incumbent's event was lost, a live AI incumbent was rolled back for it, and the
        request was never answered).  Any exception, not only the sandbox's own: a
        worker's start can fail with ``OSError`` (out of processes or descriptors)."""
        strategy: SandboxedStrategy | None = None
        try:
            strategy = SandboxedStrategy(source, name=self.s.slot,
                                         policy=self.s.sandbox.policy())
            if self.runner is not None:
                strategy.set_state(self.runner.asm.strategies[self.s.slot].get_state())
        except Exception as exc:  # fenced: this runs inside the loop's strategy call
            _close(strategy)
            what = str(exc) if isinstance(exc, SandboxError) else f"{type(exc).__name__}: {exc}"
            reason = f"could not start in the running loop: {redact(what)[:500]}"
            self.versions.set_status(version_id, "rejected", reason)
            self.echo(f"{version_id} rejected: {reason}")
            return None
        self.candidate, self.candidate_id, self.candidate_source = strategy, version_id, source
        return strategy

    def _start_shadow(self, version_id: str, source: str, reason: str) -> None:
        if self._new_candidate(version_id, source) is None:
            self._set_stage("idle")
            return
        notional = self.s.ladder.canary_notional
        self.shadow = {k: ShadowBook(notional, self.s.ladder.shadow_fee_bps)
                       for k in ("incumbent", "candidate")}
        self.versions.set_status(version_id, "shadow", reason)
        self._set_stage("shadow")

    def _judge_shadow(self) -> None:
        inc, cand = self.shadow["incumbent"], self.shadow["candidate"]
        result = {"incumbent_pnl": round(inc.pnl, 6), "candidate_pnl": round(cand.pnl, 6),
                  "incumbent_trades": inc.trades, "candidate_trades": cand.trades,
                  "events": self.stage_events - 1}
        if not (math.isfinite(cand.pnl) and math.isfinite(inc.pnl)):
            # (NaN fails every comparison: it passed the test below.)
            self._reject_shadow(f"shadow P&L is not a number (candidate {cand.pnl}, "
                                f"incumbent {inc.pnl})")
            return
        if cand.pnl < inc.pnl - float(self.s.ladder.shadow_tolerance):
            self._reject_shadow(f"shadow P&L {cand.pnl:.2f} below the incumbent's "
                                f"{inc.pnl:.2f}", result)
            return
        assert self.candidate_id is not None
        self._go_canary(f"shadow P&L {cand.pnl:.2f} vs incumbent {inc.pnl:.2f}; canary "
                        f"capped at {self.s.ladder.canary_notional}", shadow=result)

    def _go_canary(self, reason: str, **json_fields: Any) -> None:
        assert self.candidate is not None and self.candidate_id is not None
        self.versions.set_status(self.candidate_id, "canary", reason, **json_fields)
        self._swap(CanaryCap(self.candidate, self.s.ladder.canary_notional), self.candidate_id,
                   keep_own_state=self.stage == "shadow")
        self.echo(f"hot-swap: {self.candidate_id} is canary in slot {self.s.slot!r}")
        self._set_stage("canary")
        self.canary_orders = self.canary_fills = 0
        self._inherited = None  # taken when the canary holds the slot

    def _reject_shadow(self, reason: str, result: dict[str, Any] | None = None) -> None:
        if self.candidate_id is not None:
            extra: dict[str, Any] = {"shadow": result} if result else {}
            self.versions.set_status(self.candidate_id, "rejected", reason, **extra)
            self.echo(f"{self.candidate_id} rejected: {reason}")
        self._drop_candidate()
        self._set_stage("idle")

    def _drop_candidate(self, *, stop: bool = True) -> None:
        close = getattr(self.candidate, "close", None)
        if stop and callable(close):
            close()
        self.candidate, self.candidate_id, self.candidate_source = None, None, None

    def _promote_full(self, reason: str | None = None, *, expect: str | None = None) -> None:
        """``expect``: the candidate's status this promotion follows from (the ladder's own
        step); a person who moved it since the last poll (a rollback of the canary) is
        heard first, and the promotion does not happen."""
        assert self.candidate is not None and self.candidate_id is not None
        assert self.candidate_source is not None
        if not self.versions.set_status(self.candidate_id, "full", reason or (
                f"{self.s.ladder.canary_events} canary events without a risk trigger, "
                f"{self.canary_orders} order(s) asked" + (
                    "" if self.canary_orders else " (it never traded: nothing proven by "
                                                  "trading)")),
                expect=expect):
            self.apply_requests()
            return
        if self.incumbent_id != self.candidate_id:  # (not over a person's rollback of it)
            self.versions.set_status(self.incumbent_id, "retired",
                                     f"replaced by {self.candidate_id}", expect="full")
        self._swap(self.candidate, self.candidate_id, keep_own_state=self.stage == "shadow")
        self.echo(f"hot-swap: {self.candidate_id} is full in slot {self.s.slot!r}")
        self.incumbent_id = self.candidate_id
        self.incumbent_source = self.candidate_source
        self._drop_candidate(stop=False)  # it is the slot's strategy now
        self._set_stage("idle")

    def _swap(self, strategy: Strategy, version_id: str, *, keep_own_state: bool = False
              ) -> None:
        if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            # Runner.request_swap is not thread-safe: only the loop's thread may call it.
            raise ArgusError(f"swap of {version_id} requested off the loop's thread")
        self._check_swap()
        if self._swap_pending:
            # One promotion per tick: a second one overwrote the first's pending swap, whose
            # failure then went unread (the ledger said it traded; a rollback of the
            # second reinstated a version that never came in).  Callers wait instead.
            raise ArgusError(f"swap of {version_id} asked while the swap of "
                             f"{self._pending_swap.version_id if self._pending_swap else '?'} "
                             f"is pending")
        before = {name: getattr(self, name) for name in _SWAP_FIELDS}
        if version_id != self.running_id:
            self.fallback_id = self.running_id
            # Recorded, so a person's rollback (another process) reinstates the same one.
            self.versions.set_replaced(version_id, self.running_id)
        self.running_id = version_id
        self.live_ai_id = version_id
        self._reset_monitor()
        if self.runner is not None:
            outgoing = self.runner.asm.strategies.get(self.s.slot)
            future = self.runner.request_swap(
                self.s.slot, Supervised(strategy, self, keep_own_state=keep_own_state),
                version_id=version_id)
            self._pending_swap = _PendingSwap(future, version_id, strategy, before,
                                              outgoing=outgoing)
            # Commit the swap's ledger rows with this event, not at the next checkpoint,
            # so a CLI writing to the ledger never waits on the loop's write lock.
            # (Runner has no public "commit after this event" yet: see the lead's list.)
            self.runner.request_commit()

    def _check_swap(self) -> None:
        """Act on the outcome of the last swap once the runner has applied it.

        The runner applies a swap between two events and reports a failed one (the state
        hand-over raised: a version that shadowed keeps its own state and takes the
        incumbent's other keys, which together can pass the state limit) only through
        its future; unread, the ledger said the new version traded while the old one
        went on trading, and the new version's worker was never stopped."""
        pending = self._pending_swap
        if pending is None or not pending.future.done():
            return
        self._pending_swap = None
        for earlier in pending.superseded:  # read (a failure of theirs is moot now)
            _outcome(earlier.future)
        error = _outcome(pending.future)
        if error is None:
            self._muted = False  # a version came in: the slot runs it
        elif pending.kind == "reinstate":
            self._reinstate_failed(pending, error)
        else:
            self._swap_failed(pending, error)
        self._close_unused(pending)

    def _close_unused(self, pending: _PendingSwap) -> None:
        """Stop the workers of every strategy ``pending`` (and what it superseded) swapped
        out or failed to swap in: what the slot holds now, the shadow candidate and the
        strategies in ``keep_open`` excepted.  Left to the garbage collector, a swapped-out
        version's worker process lived on after every promotion and rollback."""
        slot = self.runner.asm.strategies.get(self.s.slot) if self.runner is not None \
            else None
        kept = {id(s) for s in (*_chain(slot), *_chain(self.candidate), *self.keep_open)}
        swaps = (*pending.superseded, pending)
        for strategy in (*(p.outgoing for p in swaps), *(p.strategy for p in swaps)):
            if any(id(s) in kept for s in _chain(strategy)):
                continue
            target = _closer(strategy)
            if target is not None and id(target) not in kept:
                kept.add(id(target))  # (closed once)
                with contextlib.suppress(Exception):  # stopping never stops the loop
                    target.close()  # type: ignore[attr-defined]

    def _swap_failed(self, pending: _PendingSwap, error: BaseException) -> None:
        """The runner kept the slot's strategy: say so in the ledger, stop the version that
        never came in, and put the orchestrator back as it was before the swap."""
        failed, before = pending.version_id, pending.before
        kept = before["running_id"]
        why = f"hot-swap of {failed} failed: {redact(str(error))[:300]}; {kept} kept trading"
        for name, value in before.items():
            setattr(self, name, value)
        if failed == kept:  # a canary that was to become full: it is still the canary
            self.versions.set_status(failed, "canary", why)
        else:
            self.versions.set_status(failed, "rejected", why)
            if self.versions.get(kept)["status"] != "full":
                self.versions.set_status(kept, "full", why)
            if self.candidate_id == failed:
                self._drop_candidate(stop=False)  # stopped just above
                self._set_stage("idle")
        self.echo(f"hot-swap failed: {why}")

    # -- persons' requests (argus strategies promote | rollback) --------------------------------
    def _read_requests(self) -> list[dict[str, Any]]:
        if getattr(self, "_reader_closed", False):  # (an instance built bare has none)
            return []  # the run is ending (see close_reader)
        if self._reader is None:
            path = self.versions.ledger.path
            # A live writer's ledger, so open_read_only, kept open: this loop's own
            # connection writes it (its -wal is there while this reader lives: close()
            # ends it first), and ``pragma data_version`` needs one connection that sees
            # each commit; an immutable read (read_untouched) would never see one.
            self._reader = open_read_only(path)
        # Another connection's commit (a person's CLI, or the loop's own) changes the
        # file's data version; none since the last look means no request can be new.
        # Two microseconds, where the query costs tens: cheap enough for every event.
        version = cast(int, self._reader.execute("pragma data_version").fetchall()[0][0])
        if version == self._data_version:
            return []
        cursor = self._reader.execute(
            "select e.id, e.version_id, e.from_status, e.to_status, e.reason, v.slot "
            "from strategy_events e join strategy_versions v using (version_id) "
            "where e.actor = 'person' and e.id > ? order by e.id", (self._request_cursor,))
        try:
            names = [d[0] for d in cursor.getdescription()]
        except apsw.ExecutionCompleteError:
            names = []  # no rows
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        self._data_version = version  # read in full: until the next commit, nothing new
        return rows

    def apply_requests(self) -> None:
        """Apply every promotion or rollback a person wrote since the last look: the
        rollbacks first.  The CLI rolled back the version live when it ran, so a
        promotion requested before it and not applied yet comes after it; applied
        first, the promotion replaced the version the person rolled back, and the
        version the CLI reinstated stayed full beside the new one.

        One swap per tick: a promotion read while a swap is pending (two promotions in
        one poll, or one after a rollback's) waits, with those after it, for the next
        tick, when the pending swap's outcome is known; the version keeps its
        ``requested:`` status meanwhile.  Applied at once, its swap overwrote the pending
        one, whose failed hand-over went unread: the ledger said the first version had
        traded and was retired, and a rollback of the second reinstated it."""
        requests = self._read_requests()
        for req in requests:
            self._request_cursor = max(self._request_cursor, int(req["id"]))
        todo = sorted([*self._deferred, *requests],
                      key=lambda r: r["to_status"] != "rolled_back")
        self._deferred = []
        for i, req in enumerate(todo):
            if req["slot"] != self.s.slot:
                continue
            to = str(req["to_status"])
            if to.startswith("requested:") and self._swap_pending:
                self._deferred = [r for r in todo[i:] if r["slot"] == self.s.slot]
                waiting = self._pending_swap.version_id if self._pending_swap else "?"
                self.echo(f"person's request: {req['version_id']} -> {to.split(':', 1)[1]} "
                          f"waits for the swap of {waiting} (one swap per event)")
                break
            if to.startswith("requested:"):
                self._apply_promotion(req["version_id"], to.split(":", 1)[1],
                                      req["from_status"], req["reason"])
            elif to == "rolled_back" and not self._rollback_stands(req):
                continue
            elif to == "rolled_back" and req["version_id"] == self.running_id:
                self._apply_person_rollback(req["version_id"], req["reason"])
            elif to == "rolled_back" and req["version_id"] == self.fallback_id:
                self._forget_fallback(req["version_id"])

    def _rollback_stands(self, req: dict[str, Any]) -> bool:
        """Whether a person's rollback is still the version's last settled change.  A
        resumed run reads every request from the start: a rollback that a later change
        answered (the version promoted again and swapped in by the loop) is history, and
        applied again it swapped the version out while the ledger said it was full."""
        return not any(int(e["id"]) > int(req["id"])
                       and not str(e["to_status"]).startswith("requested:")
                       for e in self.versions.events(req["version_id"]))

    def _refuse_request(self, version_id: str, status: str | None, why: str) -> None:
        """Put the version back where it was before the request.  A request over an
        earlier one (``requested:shadow`` then ``requested:full``) goes back to the status
        before both: left at the earlier request, it looked pending, and a resumed run
        (which reads every request again) applied what had been refused."""
        if status is None or status.startswith("requested:"):
            settled = [e["to_status"] for e in self.versions.events(version_id)
                       if not str(e["to_status"]).startswith("requested:")]
            status = settled[-1] if settled else None
        self.versions.set_status(version_id, status or "rejected",
                                 f"request not applied: {why}")
        self.echo(f"request for {version_id} not applied: {why}")

    def _apply_promotion(self, version_id: str, to: str, prior: str | None,
                         reason: str) -> None:
        row = self.versions.get(version_id)
        if row["status"] != f"requested:{to}":
            return  # superseded by a later request or change
        try:
            source = verified_source(row)
        except OrchestratorError as exc:
            return self._refuse_request(version_id, prior, str(exc))
        if version_id == self.running_id:
            return self._refuse_request(version_id, prior, "it already trades in the slot")
        if self.stage == "cycle" or (self.candidate_id not in (None, version_id)):
            return self._refuse_request(version_id, prior, f"the ladder is busy ({self.stage} "
                                                           f"of {self.candidate_id or 'a cycle'})")
        verdict = validate_source(source)
        if not verdict.accepted:
            return self._refuse_request(version_id, prior, "it breaks the strategy contract: "
                                        + "; ".join(verdict.reasons[:5]))
        why = f"applied {reason!r} (a person's request) in the running loop"
        self.applied_requests.append(f"{version_id} -> {to}")
        self.echo(f"person's request: {version_id} -> {to}")
        if self.candidate_id != version_id:
            if to == "shadow":
                self._start_shadow(version_id, source, why)
                return
            started = self._new_candidate(version_id, source)
            self._set_stage("idle")
            if started is None:
                return
        if to == "shadow":
            self.versions.set_status(version_id, "shadow", why)
        elif to == "canary":
            self._go_canary(why)
        else:
            self._promote_full(why)

    def _apply_person_rollback(self, version_id: str, reason: str) -> None:
        """The CLI already moved the statuses; swap the reinstated version in."""
        target = self.fallback_id or self.versions.fallback_of(self.versions.get(version_id))
        if not target:
            return
        row = self.versions.get(target)
        self.live_ai_id = None
        self._rolled_back = True
        if self.candidate_id == version_id:
            self._drop_candidate(stop=False)
        self.incumbent_id, self.incumbent_source = target, row["source"]
        self.fallback_id = None
        self.running_id = target
        self.rollbacks.append(f"{version_id}: by a person: {reason}")
        if self.runner is not None:
            if not self._reinstate(row, version_id):
                return
            self.runner.request_commit()
        self._watch_reinstated(row)
        self.versions.set_status(target, "full", f"swapped back in by the running loop after "
                                                 f"a person rolled back {version_id}")
        self.echo(f"person's rollback: {version_id} -> {target}")
        self._set_stage("idle")

    def _forget_fallback(self, version_id: str, *, by_person: bool = True) -> None:
        """The version the running one would return to was rolled back: by a person (the
        CLI rolled back the slot's live version before a canary's request was applied),
        or by its own failure at the event that swapped the running one in.  The version
        it replaced (the CLI reinstated that one) is what a rollback of the running
        version brings back, and, for a canary, what its promotion replaces (full
        again).  Kept, a failing canary reinstated the rolled-back version."""
        parent = self.versions.fallback_of(self.versions.get(version_id))
        if not parent:
            return
        row = self.versions.get(parent)
        self.fallback_id = parent
        self.versions.set_replaced(self.running_id, parent)
        if self.incumbent_id == version_id:
            self.incumbent_id, self.incumbent_source = parent, row["source"]
            if not by_person:  # (a person's rollback reinstated it through the CLI)
                self.versions.set_status(parent, "full", f"reinstated: {version_id}, the "
                                         f"incumbent beside canary {self.running_id}, failed")
        if by_person:
            self.rollbacks.append(f"{version_id}: by a person, while a canary ran")
            self.echo(f"person's rollback: {version_id} (not trading; a canary runs) -> "
                      f"{parent}")

    def _watch_reinstated(self, row: dict[str, Any]) -> None:
        """A reinstated version that is itself AI-written (it has a parent: the version
        before it, replaced after a few events, is what a rollback brings back) stays
        watched: its own failure rolls it back to its parent in turn.  Unwatched, it failed
        like any AI version (a sandbox failure) and nothing rolled it back: its worker
        dead, the slot silent for the rest of the run."""
        if row["parent_id"]:
            self.live_ai_id = row["version_id"]
            self._reset_monitor()

    def _reinstate(self, row: dict[str, Any], failed: str) -> bool:
        """Swap the version ``row`` back into the slot; when its strategy cannot be built
        (its worker does not start: under load, its start deadline; its stored source no
        longer matches its hash or the contract), the slot keeps ``failed``'s strategy, so
        the loop goes HALTED (working orders cancelled, only exits) for a person to
        decide, instead of the error ending the run.  The swap is pending until the
        runner applies it; a hand-over that fails then is handled the same way (see
        :meth:`_reinstate_failed`): untracked, the rolled-back version traded on while
        the ledger said the reinstated one was full.  A promotion asked at the same tick
        (a canary that fails at the event its promotion to full was asked) is superseded:
        the runner applies both, in order, and the reinstated version comes in last."""
        assert self.runner is not None
        target = row["version_id"]
        try:
            strategy = Supervised(self.build(verified_source(row)), self)
        except Exception as exc:  # fenced: the rollback runs inside the loop's listeners
            self._halt_muted(target, redact(f"could not reinstate {target} after rolling "
                                            f"back {failed}: {type(exc).__name__}: {exc}"))
            return False
        earlier = self._pending_swap if self._swap_pending else None
        outgoing = self.runner.asm.strategies.get(self.s.slot)
        future = self.runner.request_swap(self.s.slot, strategy, version_id=target)
        self._pending_swap = _PendingSwap(
            future, target, strategy, {}, kind="reinstate", outgoing=outgoing,
            failed_id=failed,
            superseded=(*earlier.superseded, earlier) if earlier is not None else ())
        return True

    def _reinstate_failed(self, pending: _PendingSwap, error: BaseException) -> None:
        """The runner could not hand the rolled-back version's state to the reinstated
        one: the slot still holds the rolled-back version."""
        self._halt_muted(pending.version_id, redact(
            f"could not reinstate {pending.version_id} after rolling back "
            f"{pending.failed_id}: {error}"))

    def _halt_muted(self, target: str, why: str) -> None:
        """A rollback's version could not come in: ``target`` is ``retired`` saying why,
        the loop HALTED for a person, and the rolled-back version left in the slot is
        muted (not run; see :attr:`muted`) until a swap into the slot succeeds."""
        assert self.runner is not None
        self.versions.set_status(target, "retired", why[:500])
        # No version is live now (the ledger says so): the checkpoint names none either.
        self.runner.versions.pop(self.s.slot, None)
        if self.live_ai_id == target:  # (watched from its request on: it never came in)
            self.live_ai_id = None
        self._muted = True
        self.runner.set_trading_state(TradingState.HALTED, why[:500])
        self.runner.request_commit()
        self.echo(f"ROLLBACK FAILED: {why}; loop is HALTED until a person decides")
        self._set_stage("idle")

    # -- monitoring and rollback ----------------------------------------------------------------
    def _reset_monitor(self) -> None:
        """Watch the version swapped in afresh: its drawdown from the peak of its own
        events, its losing exits from its own first exit (an exit the version before it
        made at the swap's event was counted against it: ``realized`` was kept)."""
        self.monitor_peak = 0.0
        self.monitor_losses = 0
        self._exit_seen = None
        self._net_restored = False

    def _monitor(self, ctx: StrategyContext) -> None:
        """The rollback triggers of the live AI version: its slot's drawdown from the peak
        equity since it came in, and consecutive losing exits.  An exit's result is net of
        fees: the change in the book's realised P&L less its fees paid since the last exit
        (the round trip's entry and exit fees).  Counted gross (the position's realised
        P&L, which leaves fees out), a round trip that lost its fees (or closed at its
        entry price, which moved no realised P&L) was no loss, and a win by less than its
        fees reset the count."""
        portfolio = ctx.portfolio
        equity = float(portfolio.equity)
        self.monitor_peak = max(self.monitor_peak, equity)
        held = {iid: (abs(pos.quantity), pos.realized_pnl)
                for iid, pos in portfolio.positions.items()}
        net = sum((pos.realized_pnl for pos in portfolio.positions.values()), Decimal(0)) \
            - portfolio.fees_paid
        seen = self._exit_seen
        if seen is None:
            if not self._net_restored:
                self._net_at_exit = net
            self._net_restored = False
        elif any(qty < seen[iid][0] or realized != seen[iid][1]
                 for iid, (qty, realized) in held.items() if iid in seen):
            result, self._net_at_exit = net - self._net_at_exit, net
            if result < 0:
                self.monitor_losses += 1
            elif result > 0:
                self.monitor_losses = 0
            self._save_watch(ctx)
        self._exit_seen = held
        lad = self.s.ladder
        if self.monitor_peak > 0 and (self.monitor_peak - equity) / self.monitor_peak > float(
                lad.rollback_drawdown_fraction):
            self.rollback(f"drawdown {(self.monitor_peak - equity) / self.monitor_peak:.2%} "
                          f"since the swap exceeds {lad.rollback_drawdown_fraction}")
        elif self.monitor_losses >= lad.rollback_consecutive_losses:
            self.rollback(f"{self.monitor_losses} consecutive losing exits (net of fees)")

    def _save_watch(self, ctx: StrategyContext) -> None:
        """Store the losing-exit count at an exit (checkpoint ``orchestrator.watch``),
        through the loop's connection: it commits with the exit's event, as the slot's
        books do, so a restart reads back the count its checkpoint's books go with."""
        ledger = self.versions.ledger
        state = {"version_id": self.live_ai_id, "losses": self.monitor_losses,
                 "net_at_exit": str(self._net_at_exit)}
        with ledger.transaction():
            ledger.save_checkpoint(WATCH_CHECKPOINT, int(getattr(self.runner, "seq", 0) or 0),
                                   int(getattr(ctx, "ts_ns", 0) or 0), state)

    def _restore_watch(self, version_id: str) -> None:
        """A resumed run's losing-exit count of ``version_id``, as its last exit before
        the checkpoint left it (reset at a restart, 5 losses before a crash and 5 after
        never reached a trigger of 6).  Another version's count (or none) is not read."""
        saved = self.versions.ledger.load_checkpoint(WATCH_CHECKPOINT)
        state = saved[2] if saved is not None else {}
        if state.get("version_id") != version_id:
            return
        try:
            losses, net = int(state["losses"]), Decimal(str(state["net_at_exit"]))
        except (KeyError, TypeError, ValueError, decimal.InvalidOperation):
            return  # a damaged row: watched from the resumed books, as before
        if losses >= 0 and net.is_finite():
            self.monitor_losses, self._net_at_exit = losses, net
            self._net_restored = True

    def rollback(self, reason: str) -> None:
        """Swap the previous version back in, mark this one rolled back, go REDUCING."""
        failed = self.live_ai_id
        if failed is None:
            return
        row = self.versions.get(failed)
        target = self.fallback_id or self.versions.fallback_of(row)
        self.live_ai_id = None
        self._rolled_back = True
        self.versions.set_status(failed, "rolled_back", reason)
        self.rollbacks.append(f"{failed}: {reason}")
        if self.candidate_id == failed:
            self._drop_candidate(stop=False)
        if target:
            parent = self.versions.get(target)
            self.versions.set_status(target, "full", f"reinstated after rollback of {failed}")
            self.incumbent_id, self.incumbent_source = target, parent["source"]
            self.running_id, self.fallback_id = target, None
            if self.runner is not None and not self._reinstate(parent, failed):
                return
            self._watch_reinstated(parent)
        if self.runner is not None:
            self.runner.set_trading_state(TradingState.REDUCING,
                                          f"rolled back {failed}: {reason}")
            self.runner.request_commit()
        self.echo(f"ROLLBACK: {failed} -> {target}: {reason}; loop is REDUCING until a "
                  f"person runs 'argus resume'")
        self._set_stage("idle")
        with contextlib.suppress(Exception):
            self.cycles.feedback.append(
                redact(f"{failed} was rolled back live: {reason}")[:300])


class _ShutdownHook:
    """The runner's ``on_shutdown`` for one :class:`Orchestrator` (registered on the
    run's plugin host by :meth:`Orchestrator.attach`): the hook runs before the runner
    closes its ledger, the orchestrator's own ``close`` only after ``run_sync`` returns."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self._orchestrator = orchestrator

    @hookimpl
    def on_shutdown(self, ctx: Any) -> None:
        """Close the request reader (see :meth:`Orchestrator.close_reader`)."""
        self._orchestrator.close_reader()


def work_dir_for(run_dir: Path) -> Path:
    """Where cycles keep their backtests and the lab trial ledger."""
    return Path(run_dir) / "orchestrator"
