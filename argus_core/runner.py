"""The one loop: replay, paper and live trading run through exactly this code.

Where does an order go?  ``event -> strategy.on_event -> _route_intents ->
sizer -> RiskEngine.evaluate -> ledger (order row) -> PaperBroker.submit or
venue.submit -> fills -> ledger -> account -> risk on_fill -> on_fill hooks``.
There is no other path to a broker.

Durability and resumption: writes accumulate in one open transaction that
commits together with a checkpoint of every component's state (strategies,
broker, risk, account) every ``checkpoint_every_events`` events; in paper and
live mode also right after any event that produced an order or a fill (their
data cannot be replayed), and after any hot-swap.  A crash rolls back to the
last checkpoint; a resumed replay skips the events up to it and re-derives
everything after it deterministically, with the same client order ids, so no
order is lost or duplicated.  In live mode an order row is committed *before*
the order is sent, fills and order updates arrive through the venue's
``executions()`` stream (each fill booked once), and a restart reconciles
unacknowledged orders with the venue's open orders instead of re-sending them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from argus_core.account import Account
from argus_core.builtins.sizers import round_to_lot
from argus_core.config import Config, canonical_json
from argus_core.errors import ArgusError, BasketIncomplete, ConfigError, LedgerError
from argus_core.interfaces import RiskContext, Strategy, StrategyContext
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    BookDelta,
    CancelIntent,
    Fill,
    Intent,
    Liquidity,
    MarketEvent,
    Opportunity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Settlement,
    Side,
    Signal,
    TimeInForce,
    Trade,
    to_decimal,
)
from argus_core.paper import PaperBroker
from argus_core.risk import RiskEngine, TradingState, escalate, intent_json
from argus_core.runtime import Assembly, assemble, open_ledger
from argus_core.serde import converter

log = logging.getLogger(__name__)
CHECKPOINT = "runner"
_FINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)
_IDLE = object()  # the live event source has nothing waiting
_END = object()  # the live event source ended
_CENT_E6 = Decimal("1e-8")  # equity rows are kept to 1e-8 of the quote currency
CONTROL_STATE = "trading_state"


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


class Runner:
    """Drives one run.  Construct, then ``await run()`` (or ``run_sync()``)."""

    def __init__(self, config: Config, run_dir: Path, *, live_confirmed: bool = False,
                 strategies: dict[str, Strategy] | None = None,
                 progress: Callable[[int], None] | None = None,
                 max_events: int | None = None) -> None:
        if config.argus.mode == "live" and not live_confirmed:
            raise ConfigError("mode 'live' sends real orders; pass --live to confirm "
                              "(live trading is never the default)")
        self.config = config
        self.run_dir = Path(run_dir)
        self.asm: Assembly = assemble(config, self.run_dir, strategies=strategies)
        self.ctx = self.asm.ctx
        self.market = MarketState(int(config.run.stale_after_s * 1e9))
        self.account = Account(config.run.starting_cash)
        self.broker = PaperBroker(self.market, self.asm.venue.fee_schedule, config.paper)
        self.risk = RiskEngine(self.asm.risk_checks, RiskContext(market=self.market))
        self.progress = progress
        self.max_events = max_events
        self.live = config.argus.mode == "live"
        self.seq = 0
        self.resumed_from = 0
        self.n_orders = 0
        self.n_fills = 0
        self._dirty = False
        # Replay re-derives everything after the last checkpoint identically, so orders and
        # fills only need to be durable together with it; paper and live commit at once
        # (their data cannot be replayed).  A hot-swap is never re-derivable: always at once.
        self._commit_each_change = config.argus.mode != "replay"
        self._swapped = False
        self._halt_enforced = False
        self._pending_fills: list[Fill] = []
        self._equity_rows: list[tuple[int, str, str, str]] = []
        self._live_tasks: set[asyncio.Task[list[Fill]]] = set()
        self._fills_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._swaps: list[tuple[str, Strategy, str, asyncio.Future[None]]] = []
        self.risk_trigger_listeners: list[Callable[[str], None]] = []
        self.versions: dict[str, str] = {}
        self.ledger = open_ledger(self.ctx)

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
        else:
            escalate(self.risk.ctx, state, reason)
        self._write_control()

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

    def run_sync(self) -> RunSummary:
        """``asyncio.run(self.run())``."""
        return asyncio.run(self.run())

    # -- the loop ------------------------------------------------------------------
    async def run(self) -> RunSummary:
        """Run until the venue's stream ends (replay) or the task is cancelled."""
        started = time.perf_counter()
        hook = self.ctx.host.pm.hook
        self._start_run_row()
        instruments = await self.asm.venue.instruments()
        self.market.add_instruments(instruments)
        self._restore()
        starting_equity = self.config.run.starting_cash
        if self.live:  # the venue learns the run's orders from us, never from our tables
            self.asm.venue.resume(self.ledger.venue_resume(self.asm.venue.name))
        hook.on_startup(ctx=self.ctx)
        if self.live:
            await self._reconcile_live_orders()
            self._fills_task = asyncio.get_event_loop().create_task(self._consume_fills())
            self._fills_task.add_done_callback(self._on_fills_stream_end)
        if self.ctx.mode != "replay":
            # A live stream starts afresh after a restart: nothing to skip, but the event
            # numbering (and so the client order ids) continues where it stopped.
            self.seq, self.resumed_from = self.resumed_from, 0
        every = max(1, self.config.run.checkpoint_every_events)
        scan_every = max(1, self.config.run.scan_every_events)
        self._loop = asyncio.get_running_loop()
        try:
            async for event in self._events():
                if event is _IDLE:
                    self._release()  # nothing queued: commit and hold no lock while waiting
                    continue
                self.seq += 1
                if self.seq <= self.resumed_from:
                    self.market.apply(event)
                    continue
                if not self.ledger.conn.in_transaction:
                    self._begin()
                self._on_event(event)
                if self.asm.scanners and self.seq % scan_every == 0:
                    self._scan()
                if self._swaps:
                    self._apply_swaps()
                if (self._dirty and self._commit_each_change) or self._swapped \
                        or self.seq % every == 0:
                    self._commit(reopen=False)  # the next event opens the next one
                if self.seq % 1000 == 0:
                    if self.progress is not None:
                        self.progress(self.seq)
                    await asyncio.sleep(0)  # let swaps, kills and observers in during replays
                if self.max_events is not None and self.seq >= self.max_events:
                    break
            if self._live_tasks:  # acknowledgements of orders already sent
                await asyncio.gather(*list(self._live_tasks), return_exceptions=True)
            self._raise_if_fills_failed()
            self._commit(reopen=False)
            for _slot, _strategy, version_id, future in self._swaps:
                if not future.done():
                    future.set_exception(ArgusError(f"the run ended before {version_id} could "
                                                    f"be swapped in"))
            self._swaps = []
        except BaseException:
            if self.ledger.conn.in_transaction:
                self.ledger.conn.execute("rollback")
            raise
        finally:
            if self._live_tasks:  # acknowledgements in flight must land before the ledger closes
                _done, late = await asyncio.wait(list(self._live_tasks), timeout=10.0)
                for task in late:
                    log.error("no acknowledgement from the venue within 10 s after the loop "
                              "stopped; the order stays pending and is reconciled on restart")
                    task.cancel()
            if self._fills_task is not None:
                self._fills_task.cancel()
                await asyncio.gather(self._fills_task, return_exceptions=True)
            if self.ledger.conn.in_transaction:
                self.ledger.conn.execute("commit")
            self._finish_run_row()
            try:
                hook.on_shutdown(ctx=self.ctx)
            finally:
                await self.asm.venue.close()
                self.ledger.close()
        if self.progress is not None:
            self.progress(self.seq)
        return RunSummary(self.ctx.run_id, self.run_dir, self.ctx.mode, self.seq,
                          self.resumed_from, self.n_orders, self.n_fills,
                          self.account.fees_paid, starting_equity, self.account.equity(),
                          self.risk.state.value, time.perf_counter() - started)

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

        async def pump() -> None:
            try:
                async for event in self.asm.venue.stream():
                    await queue.put(event)
            finally:
                await queue.put(_END)

        task = asyncio.get_running_loop().create_task(pump())
        try:
            while True:
                if queue.empty():
                    yield _IDLE
                event = await queue.get()
                if event is _END:
                    break
                yield event
            await task  # re-raises the stream's error, if it ended by one
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _begin(self) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that read first
        # could not write after another connection (a CLI command) committed meanwhile.
        self.ledger.conn.execute("begin immediate")

    @contextlib.contextmanager
    def _between_events(self, *, commit_now: bool = False) -> Iterator[None]:
        """Writes that arrive between events (acknowledgements, executions, cancels): inside
        the loop's open transaction when there is one (the loop commits it), else in their
        own, committed at once; ``commit_now`` commits either way."""
        idle = not self.ledger.conn.in_transaction
        if idle:
            self._begin()
        try:
            yield
        finally:
            if idle or commit_now:
                self._commit(reopen=not idle)

    def _release(self) -> None:
        """Idle point (paper/live): make everything durable and end the transaction."""
        if self.ledger.conn.in_transaction:
            if self._dirty or self._equity_rows or self._pending_fills or self._swapped:
                self._commit(reopen=False)
            else:
                self.ledger.conn.execute("commit")
                self._read_control()

    def request_commit(self) -> None:
        """Ask for a commit (with a checkpoint) after the current event: for components
        that wrote to the ledger through the runner's connection and need it durable."""
        self._dirty = self._swapped = True

    def _on_event(self, event: MarketEvent) -> None:
        market, account = self.market, self.account
        market.apply(event)
        ts = market.now_ns
        self.risk.ctx.ts_ns = ts
        kind = type(event)
        if kind is Bar:
            account.mark(event.instrument_id, event.close)  # type: ignore[union-attr]
        elif kind is Trade:
            account.mark(event.instrument_id, event.price)  # type: ignore[union-attr]
        elif kind is OrderBook or kind is BookDelta:
            self._mark_mid(event.instrument_id)  # type: ignore[union-attr]
        elif kind is Settlement:
            self._settle(event)  # type: ignore[arg-type]
        elif kind is Signal:
            self.ledger.conn.execute(
                "insert or replace into signals values (?,?,?,?)",
                (event.name, event.instrument_id, event.ts_ns, event.value))  # type: ignore[union-attr]
        if self.broker.working:
            for fill in self.broker.on_event(event):
                self._book_fill(fill)
        if kind is Bar:
            self._equity_row(ts)
        if self.asm.strategies:
            sctx = StrategyContext(ts, account.portfolio, market, self.asm.pricers)
            for slot, strategy in self.asm.strategies.items():
                try:
                    intents = strategy.on_event(event, sctx)
                except Exception as exc:
                    self._strategy_failed(slot, exc)
                    continue
                if intents:
                    self._route_intents(list(intents), ts)

    # -- intents -> orders ---------------------------------------------------------
    def _reference_price(self, intent: Intent) -> Decimal | None:
        if intent.limit_price is not None:
            return intent.limit_price
        book = self.market.books.get(intent.instrument_id)
        if book is not None and book.live:
            best = book.best_ask() if intent.side is Side.BUY else book.best_bid()
            if best is not None:
                return to_decimal(best)
        bar = self.market.bars.get(intent.instrument_id)
        return to_decimal(bar.close) if bar is not None else None

    def _route_intents(self, intents: list[Intent | CancelIntent], ts: int) -> None:
        baskets: dict[str, list[Intent]] = {}
        for intent in intents:
            if isinstance(intent, CancelIntent):
                self._cancel_working(intent.strategy, intent.instrument_id,
                                     f"cancelled by strategy {intent.strategy!r}"
                                     + (f": {intent.reason}" if intent.reason else ""))
                continue
            if intent.basket_id:
                baskets.setdefault(intent.basket_id, []).append(intent)
            else:
                self._route_basket([intent], ts)
        for legs in baskets.values():
            self._route_basket(legs, ts)

    def _route_basket(self, legs: list[Intent], ts: int) -> None:
        """Size and risk-check every leg; a veto on one vetoes all, the smallest shrink wins."""
        portfolio = self.account.portfolio()
        sized: list[tuple[Intent, Decimal, Decimal]] = []
        for intent in legs:
            price = self._reference_price(intent)
            if price is None or price <= 0:
                self._risk_event(ts, "pricing", "veto", "no reference price (no book, bar or "
                                 "limit) for the intent", intent)
                return
            inst = self.market.instruments.get(intent.instrument_id)
            qty = intent.quantity if intent.quantity is not None else self.asm.sizer.size(
                intent, price, portfolio, inst)
            if qty <= 0:  # say so: a strategy that never trades should be able to see why
                self._risk_event(ts, "sizing", "skip", f"sizer {self.asm.sizer.name!r} sized "
                                 f"the intent to 0 (no forecast, or below one lot)", intent)
                return
            sized.append((intent, qty, price))
        allowed: list[Decimal] = []
        for intent, qty, price in sized:
            verdict = self.risk.evaluate(intent, qty, price, portfolio)
            for d in verdict.decisions:
                self._risk_event(ts, d.check, d.action.value, d.reason, intent)
            if not verdict.allowed:
                self._persist_state_change()
                return  # a denied intent never reaches the venue
            allowed.append(verdict.quantity)
        self._persist_state_change()
        # Every leg shrinks by the same ratio so a basket stays a basket.
        ratio = min(a / q for a, (_, q, _) in zip(allowed, sized, strict=True))
        quantities = [allowed[0]] if len(sized) == 1 else [
            round_to_lot(q * ratio, self.market.instruments.get(i.instrument_id))
            for i, q, _ in sized]
        if any(q <= 0 for q in quantities):
            return
        if self.live and len(sized) > 1 and self.asm.venue.supports_baskets:
            # The venue sends the legs together and applies its own partial-basket policy.
            orders = [self._persist_order(intent, leg_qty, ts, k) for k, ((intent, _, _), leg_qty)
                      in enumerate(zip(sized, quantities, strict=True))]
            live_orders = [o for o in orders if o is not None]
            if live_orders:
                self._send_live(live_orders)
            return
        for k, ((intent, _qty, _price), leg_qty) in enumerate(zip(sized, quantities,
                                                                   strict=True)):
            self._send(intent, leg_qty, ts, k)
        if len(sized) > 1 and not self.live:  # live fills arrive later, through executions()
            self._repair_basket(sized, ts)

    def _persist_order(self, intent: Intent, qty: Decimal, ts: int, k: int) -> Order | None:
        """Write the order row (before anything can send it); None when it already exists."""
        coid = f"{self.ctx.run_id}-{self.seq}-{intent.strategy or 'x'}-{k}"
        order = Order(coid, self.asm.venue.name or self.config.run.venue, intent.instrument_id,
                      intent.side, qty, intent.limit_price, intent.order_type,
                      intent.time_in_force, intent.strategy, ts, OrderStatus.PENDING,
                      intent.basket_id, intent.reduce_only)
        if not self.ledger.insert_order(order, self.ctx.run_id):
            return None  # persisted by an earlier attempt: idempotent, send nothing twice
        self.n_orders += 1
        self.risk.ctx.order_times_ns.append(ts)
        self._dirty = True
        return order

    def _send(self, intent: Intent, qty: Decimal, ts: int, k: int) -> None:
        order = self._persist_order(intent, qty, ts, k)
        if order is None:
            return
        if self.live:
            self._send_live([order])
            return
        coid = order.client_order_id
        for fill in self.broker.submit(order, ts):
            self._book_fill(fill)
        status, filled = self.broker.status(coid)
        if status is not OrderStatus.OPEN or filled > 0:
            self.ledger.set_order_status(coid, status, filled if filled >= 0 else None)

    def _send_live(self, orders: list[Order]) -> None:
        # The order rows must be durable before the venue can know the orders exist.
        self._commit()
        venue = self.asm.venue
        call = venue.submit(orders[0]) if len(orders) == 1 else venue.submit_basket(orders)
        task = asyncio.get_event_loop().create_task(call)
        self._live_tasks.add(task)
        task.add_done_callback(lambda t, o=orders: self._on_live_ack(o, t))

    def _on_live_ack(self, orders: list[Order], task: asyncio.Task[list[Fill]]) -> None:
        self._live_tasks.discard(task)
        if task.cancelled():
            return
        with self._between_events():
            self._record_ack(orders, task)

    def _record_ack(self, orders: list[Order], task: asyncio.Task[list[Fill]]) -> None:
        exc = task.exception()
        ids = ", ".join(o.client_order_id for o in orders)
        if isinstance(exc, BasketIncomplete):
            # Legs executed and the venue could not flatten them: book what happened, make
            # it visible, and stop adding risk until a person has looked.
            for fill in exc.fills:
                self._book_live_fill(fill)
            executed = {f.client_order_id for f in exc.fills}
            for order in orders:  # the venue killed the legs that did not execute
                if order.client_order_id not in executed:
                    self.ledger.set_order_status(order.client_order_id, OrderStatus.CANCELLED)
            reason = f"basket {orders[0].basket_id} left incomplete at the venue: {exc}"
            log.error(reason)
            self._risk_event(self.market.now_ns, "basket", "reducing", reason, None)
            self.set_trading_state(TradingState.REDUCING, reason)
        elif exc is not None:
            log.error("venue refused order(s) %s: %s", ids, exc)
            for order in orders:  # what executions() already said stands
                self.ledger.move_order_status(order.client_order_id, OrderStatus.REJECTED,
                                              (OrderStatus.PENDING,), str(exc))
        else:
            for order in orders:  # a fill reported meanwhile has already moved it on
                self.ledger.move_order_status(order.client_order_id, OrderStatus.OPEN,
                                              (OrderStatus.PENDING,))
            for fill in task.result():
                self._book_live_fill(fill)
        self._dirty = True

    # -- live fills and restart reconciliation -------------------------------------
    async def _consume_fills(self) -> None:
        """Book the venue's private executions stream (fills, order updates) as it arrives."""
        async for item in self.asm.venue.executions():
            with self._between_events(commit_now=True):  # durable as soon as we know it
                if isinstance(item, OrderUpdate):
                    self._apply_order_update(item)
                else:
                    self._book_live_fill(item)

    def _apply_order_update(self, update: OrderUpdate) -> None:
        """A venue's order-state news: never moves a filled order back, never guesses about
        orders the ledger does not know."""
        rows = self.ledger.query("select status from orders where client_order_id = ?",
                                 (update.client_order_id,))
        if not rows:
            self._risk_event(update.ts_ns, "reconcile", "unknown_order",
                             f"venue reported {update.status} for unknown order "
                             f"{update.client_order_id}", None)
            return
        if update.venue_order_id:
            self.ledger.conn.execute("update orders set venue_order_id = ? where "
                                     "client_order_id = ?",
                                     (update.venue_order_id, update.client_order_id))
        current = OrderStatus(rows[0]["status"])
        if current in _FINAL or update.status in (OrderStatus.PENDING, OrderStatus.FILLED):
            return  # final states stay final; FILLED is reached through fills (quantities)
        if update.status is OrderStatus.OPEN and current is not OrderStatus.PENDING:
            return  # a late acknowledgement must not undo a partial fill or a cancel
        if update.status is OrderStatus.PARTIALLY_FILLED:
            return
        self.ledger.set_order_status(update.client_order_id, update.status,
                                     reason=update.reason or None)
        if update.status is OrderStatus.REJECTED:
            self._risk_event(update.ts_ns, "venue", "rejected",
                             f"venue rejected {update.client_order_id}: {update.reason}", None)

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

    def _book_live_fill(self, fill: Fill) -> None:
        """Book a venue-reported fill once, and bring its order's status up to date."""
        if self.ledger.query("select 1 from fills where fill_id = ?", (fill.fill_id,)):
            return  # repeated after a reconnect, or already returned by submit()
        rows = self.ledger.query("select quantity, side, status from orders where "
                                 "client_order_id = ?", (fill.client_order_id,))
        if not rows:
            # Not ours (a manual trade on the account?): never guess, make it visible.
            self._risk_event(fill.ts_ns, "reconcile", "unknown_fill",
                             f"fill {fill.fill_id} for unknown order {fill.client_order_id} "
                             f"({fill.side} {fill.quantity} {fill.instrument_id} @ {fill.price})"
                             , None)
            return
        self._book_fill(fill)
        # Only the order's own side counts: a venue may book a leg's unwind against the leg.
        filled = sum((Decimal(r["quantity"]) for r in self.ledger.query(
            "select quantity from fills where client_order_id = ? and side = ?",
            (fill.client_order_id, rows[0]["side"]))), Decimal(0))
        total = Decimal(rows[0]["quantity"])
        status = OrderStatus(rows[0]["status"])
        if filled >= total:
            status = OrderStatus.FILLED
        elif status not in _FINAL:  # a fill reported after the cancel of the rest
            status = OrderStatus.PARTIALLY_FILLED
        self.ledger.set_order_status(fill.client_order_id, status, min(filled, total))

    async def _reconcile_live_orders(self) -> None:
        """After a restart: orders persisted but not known to be acknowledged are looked up
        at the venue.  Those it holds are OPEN; the rest were never sent or are finished —
        they are not re-sent (no duplicate), and their fills, if any, come via ``executions()``."""
        pending = self.ledger.query("select client_order_id from orders where status = ?",
                                    (OrderStatus.PENDING.value,))
        if not pending:
            return
        held = {o.client_order_id for o in await self.asm.venue.open_orders()}
        with self.ledger.transaction():
            for row in pending:
                coid = row["client_order_id"]
                if coid in held:
                    self.ledger.set_order_status(coid, OrderStatus.OPEN)
                    continue
                # Never received, or already finished (its fills then arrive through the
                # fills stream and move it on): either way it must not be sent again.
                self.ledger.set_order_status(coid, OrderStatus.CANCELLED)
                self.ledger.record_risk_event(
                    self.market.now_ns, "reconcile", "not_open_at_venue",
                    f"order {coid} was persisted before a restart and the venue does not hold "
                    f"it open (never received, or already executed: its fills, if any, come "
                    f"through the fills stream); it is not re-sent", None, None, None)

    def _repair_basket(self, sized: list[tuple[Intent, Decimal, Decimal]], ts: int) -> None:
        """Partial-basket policy: never hold a naked leg — unwind each leg's excess over the
        least-filled leg with a marketable order, and record why."""
        basket = sized[0][0].basket_id
        rows = self.ledger.query(
            "select instrument_id, side, sum(cast(quantity as real)) as q from fills "
            "where client_order_id in (select client_order_id from orders where basket_id = ?)"
            " group by instrument_id, side", (basket,))
        filled = {r["instrument_id"]: to_decimal(r["q"]) for r in rows}
        least = min((filled.get(i.instrument_id, Decimal(0)) for i, _, _ in sized))
        for k, (intent, _qty, _p) in enumerate(sized):
            excess = filled.get(intent.instrument_id, Decimal(0)) - least
            if excess > 0:
                self._risk_event(ts, "basket", "unwind",
                                 f"partial basket {basket}: unwinding {excess} of "
                                 f"{intent.instrument_id}", intent)
                unwind = Intent(intent.strategy, intent.instrument_id, intent.side.opposite(),
                                quantity=excess, order_type=OrderType.MARKET,
                                time_in_force=TimeInForce.IOC, reason="basket unwind",
                                reduce_only=True)
                self._send(unwind, excess, ts, 100 + k)

    # -- fills, settlement, equity -------------------------------------------------
    def _book_fill(self, fill: Fill) -> None:
        self.ledger.insert_fill(fill)
        pos = self.account.apply(fill)
        self.ledger.upsert_position(pos, fill.ts_ns)
        status, filled = self.broker.status(fill.client_order_id)
        if filled >= 0:
            self.ledger.set_order_status(fill.client_order_id, status, filled)
        portfolio = self.account.portfolio()
        for check in self.risk.checks:
            check.on_fill(fill, portfolio, self.risk.ctx)
        self._persist_state_change()
        self.n_fills += 1
        self._dirty = True
        self._pending_fills.append(fill)

    def _settle(self, event: Settlement) -> None:
        pos = self.account.positions.get(event.instrument_id)
        if pos is None or pos.quantity == 0:
            return
        coid = f"settle-{self.ctx.run_id}-{event.instrument_id}-{event.ts_ns}"
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        order = Order(coid, self.asm.venue.name or "settlement", event.instrument_id, side,
                      abs(pos.quantity), None, OrderType.MARKET, TimeInForce.IOC,
                      "settlement", event.ts_ns, OrderStatus.FILLED)
        if not self.ledger.insert_order(order, self.ctx.run_id):
            return
        # A settlement is a fill (at 0 for a worthless expiry) so round trips include it.
        fill = Fill(f"{coid}-1", coid, order.venue, event.instrument_id, side, event.price,
                    abs(pos.quantity), Decimal(0), Liquidity.SETTLEMENT, event.ts_ns)
        self._book_fill(fill)
        self.ledger.set_order_status(coid, OrderStatus.FILLED, fill.quantity)

    def _mark_mid(self, instrument_id: str) -> None:
        pos = self.account.positions.get(instrument_id)
        if pos is None or pos.quantity == 0:
            return
        book = self.market.books[instrument_id]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            self.account.mark(instrument_id, (bid + ask) / 2)

    def _equity_row(self, ts: int) -> None:
        # Buffered and written with the next commit: same transaction, one executemany.
        equity, gross = self.account.valuation()
        self._equity_rows.append((ts, str(self.account.cash), str(equity.quantize(_CENT_E6)),
                                  str(gross.quantize(_CENT_E6))))

    # -- scanners ------------------------------------------------------------------
    def _scan(self) -> None:
        ts = self.market.now_ns
        for scanner in self.asm.scanners:
            try:
                opportunities = scanner.scan(self.market, ts)
            except Exception as exc:
                raise ArgusError(f"scanner {scanner.name!r} failed: {type(exc).__name__}: "
                                 f"{exc}") from exc
            for opp in opportunities:
                self._on_opportunity(opp, ts)

    def _on_opportunity(self, opp: Opportunity, ts: int) -> None:
        body = json.dumps(converter.unstructure(opp), sort_keys=True)
        self.ledger.conn.execute(
            "insert or ignore into opportunities values (?,?,?,?,?,?,?,?)",
            (opp.opportunity_id, opp.scanner, opp.ts_ns, opp.kind, str(opp.expected_profit),
             int(opp.risk_free), "seen", body))
        if self.ledger.conn.changes() == 0:
            return  # already acted on (a resumed run, or the same opportunity next cycle)
        self._dirty = True
        self.ctx.host.pm.hook.on_opportunity(opportunity=opp, ctx=self.ctx)
        legs = [Intent(opp.scanner, leg.instrument_id, leg.side, quantity=leg.quantity,
                       limit_price=leg.limit_price, order_type=OrderType.LIMIT,
                       time_in_force=TimeInForce.IOC, reason=opp.reason,
                       basket_id=opp.opportunity_id) for leg in opp.legs]
        self._route_basket(legs, ts)

    # -- failures, swaps, state ----------------------------------------------------
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
            try:
                if old is not None:
                    strategy.set_state(old.get_state())
            except Exception as exc:
                future.set_exception(ArgusError(f"state hand-over to {version_id} failed: "
                                                f"{exc}"))
                continue
            self.asm.strategies[slot] = strategy
            self.versions[slot] = version_id
            self._dirty = self._swapped = True
            future.set_result(None)

    def _persist_state_change(self) -> None:
        ctx = self.risk.ctx
        if self.ledger.get_control(CONTROL_STATE) != ctx.trading_state and \
                ctx.trading_state != TradingState.ACTIVE.value:
            self._write_control()

    def _enforce_halt(self) -> None:
        """HALTED means nothing works in the market: cancel every working order once, when
        the state becomes HALTED (paper orders here, live ones at the venue)."""
        ctx = self.risk.ctx
        if ctx.trading_state != TradingState.HALTED.value:
            self._halt_enforced = False
            return
        if self._halt_enforced:
            return
        self._halt_enforced = True
        self._cancel_working(None, None,
                             f"trading HALTED ({ctx.state_reason}): working orders cancelled")

    def _cancel_working(self, strategy: str | None, instrument_id: str | None,
                        reason: str) -> None:
        """Cancel working orders (of ``strategy`` / on ``instrument_id`` when given):
        paper orders at once, live ones through ``venue.cancel``."""
        def wanted(order_strategy: str, order_instrument: str) -> bool:
            return (strategy is None or order_strategy == strategy) and \
                (instrument_id is None or order_instrument == instrument_id)

        if not self.live:
            for coid, work in list(self.broker.working.items()):
                if wanted(work.order.strategy, work.order.instrument_id):
                    self.broker.cancel(coid)
                    self.ledger.set_order_status(coid, OrderStatus.CANCELLED, reason=reason)
                    self._dirty = True
            return
        rows = self.ledger.query(
            "select client_order_id, strategy, instrument_id from orders where status in "
            "(?, ?)", (OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value))
        for row in rows:
            if not wanted(row["strategy"], row["instrument_id"]):
                continue
            coid = row["client_order_id"]
            task = asyncio.get_event_loop().create_task(self.asm.venue.cancel(coid))
            self._live_tasks.add(task)  # type: ignore[arg-type]
            task.add_done_callback(lambda t, c=coid: self._on_cancel_done(c, reason, t))

    def _on_cancel_done(self, coid: str, reason: str, task: asyncio.Task[None]) -> None:
        self._live_tasks.discard(task)  # type: ignore[arg-type]
        if task.cancelled():
            return
        with self._between_events():
            exc = task.exception()
            if exc is not None:
                self._risk_event(self.market.now_ns, "cancel", "cancel_failed",
                                 f"could not cancel {coid} at the venue: {exc}", None)
            else:  # the venue's own update may have said it already; final states stay final
                self.ledger.move_order_status(
                    coid, OrderStatus.CANCELLED,
                    (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED), reason)
            self._dirty = True

    def _write_control(self) -> None:
        ctx = self.risk.ctx
        value = json.dumps({"state": ctx.trading_state, "reason": ctx.state_reason})
        self.ledger.conn.execute("insert or replace into control values (?,?,?)",
                                 (CONTROL_STATE, value, self.market.now_ns))
        self._enforce_halt()

    def _read_control(self) -> None:
        raw = self.ledger.get_control(CONTROL_STATE)
        if raw:
            data = json.loads(raw)
            self.risk.ctx.trading_state = data["state"]
            self.risk.ctx.state_reason = data.get("reason", "")
        self._enforce_halt()

    def _risk_event(self, ts: int, check: str, action: str, reason: str,
                    intent: Intent | None) -> None:
        self.ledger.record_risk_event(ts, check, action, reason,
                                      intent.instrument_id if intent else None,
                                      intent.strategy if intent else None,
                                      intent_json(intent) if intent else None)
        self._dirty = True

    def _state(self) -> dict[str, Any]:
        rctx = self.risk.ctx
        return {
            "strategies": {slot: s.get_state() for slot, s in self.asm.strategies.items()},
            "broker": self.broker.get_state(),
            "account": self.account.get_state(),
            "risk": {"peak_equity": str(rctx.peak_equity), "day": rctx.day,
                     "day_start_equity": str(rctx.day_start_equity),
                     "order_times_ns": rctx.order_times_ns[-1000:],
                     "consecutive_losses": rctx.consecutive_losses,
                     "realized_seen": rctx.realized_seen, "loss_group": rctx.loss_group},
            "versions": self.versions, "n_orders": self.n_orders, "n_fills": self.n_fills,
        }

    def _commit(self, *, reopen: bool = True) -> None:
        """Checkpoint every component and commit everything since the last commit;
        ``reopen`` starts the next transaction at once (replay, and mid-event)."""
        if not self.ledger.conn.in_transaction:
            self._begin()
        if self._equity_rows:
            self.ledger.conn.executemany("insert or replace into equity values (?,?,?,?)",
                                        self._equity_rows)
            self._equity_rows = []
        self.ledger.save_checkpoint(CHECKPOINT, self.seq, self.market.now_ns, self._state())
        self.ledger.conn.execute("commit")
        self._read_control()  # a person may have run `argus kill` / `argus resume`
        if reopen:
            self._begin()
        self._dirty = self._swapped = False
        fills, self._pending_fills = self._pending_fills, []
        for fill in fills:  # observers see only committed fills
            self.ctx.host.pm.hook.on_fill(fill=fill, ctx=self.ctx)

    def _restore(self) -> None:
        self._read_control()
        saved = self.ledger.load_checkpoint(CHECKPOINT)
        if saved is None:
            return
        seq, ts, state = saved
        self.resumed_from = seq
        for slot, st in state["strategies"].items():
            if slot in self.asm.strategies:
                self.asm.strategies[slot].set_state(st)
        self.broker.set_state(state["broker"])
        self.account.set_state(state["account"])
        r = state["risk"]
        rctx = self.risk.ctx
        rctx.peak_equity = Decimal(r["peak_equity"])
        rctx.day, rctx.day_start_equity = r["day"], Decimal(r["day_start_equity"])
        rctx.order_times_ns = list(r["order_times_ns"])
        rctx.consecutive_losses = r["consecutive_losses"]
        rctx.realized_seen = dict(r.get("realized_seen", {}))
        rctx.loss_group = list(r.get("loss_group", []))
        self.versions = dict(state.get("versions", {}))
        self.n_orders, self.n_fills = state["n_orders"], state["n_fills"]
        self.market.now_ns = ts
        log.info("resuming %s after event %d", self.run_dir, seq)

    def _start_run_row(self) -> None:
        cfg_json = canonical_json(self.config)
        rows = self.ledger.query("select run_id, config_hash from runs")
        cfg_hash = self.ctx.run_id
        if rows and rows[0]["config_hash"] != cfg_hash:
            raise LedgerError(f"{self.run_dir} holds a run of a different config "
                              f"(run {rows[0]['run_id']}); use a new --run-dir")
        with self.ledger.transaction():
            if rows:
                self.ledger.conn.execute("update runs set status = 'running' where run_id = ?",
                                         (self.ctx.run_id,))
            else:
                self.ledger.insert("runs", {
                    "run_id": self.ctx.run_id, "mode": self.ctx.mode,
                    "seed": self.config.argus.seed, "config_json": cfg_json,
                    "config_hash": cfg_hash, "status": "running",
                    "started_ns": time.time_ns()})

    def _finish_run_row(self) -> None:
        with self.ledger.transaction():
            self.ledger.conn.execute("update runs set status = ?, ended_ns = ? where run_id = ?",
                                     ("finished", time.time_ns(), self.ctx.run_id))

