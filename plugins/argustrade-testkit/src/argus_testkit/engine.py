"""The core's ExecutionEngine in live mode over a real ledger, for venue plugins' fill and
fault tests: an order routed through risk, the ledger and the venue; the executions
stream (fills, order updates, fill corrections) consumed as the Runner consumes it; a
"process killed before the commit" switch (after a fill or a correction is applied); a
restart is a new harness on the same run directory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from argus_core import (
    Bar,
    Fill,
    FillCorrection,
    Instrument,
    Intent,
    Ledger,
    Liquidity,
    MarketState,
    OrderStatus,
    OrderType,
    RiskContext,
    Side,
    TimeInForce,
    TradingState,
    Venue,
)
from argus_core.account import Account
from argus_core.builtins.sizers import FixedFraction
from argus_core.execution import ExecutionEngine
from argus_core.paper import PaperBroker
from argus_core.risk import RiskEngine, escalate

#: The account's starting cash and the run id every harness uses (ids longer than 18
#: characters: Kraken sees UUIDv5 cl_ord_ids).
CASH = D(100_000)
RUN = "3f2a9c1b7d4e-heldout"


class Killed(Exception):
    """The process died (here: before the fill's transaction committed)."""


def fill_of(row: dict[str, Any]) -> Fill:
    """A ledger ``fills`` row as the :class:`Fill` it recorded."""
    return Fill(row["fill_id"], row["client_order_id"], row["venue"], row["instrument_id"],
                Side(row["side"]), D(row["price"]), D(row["quantity"]), D(row["fee"]),
                Liquidity(row["liquidity"]), row["ts_ns"])


class EngineHarness:
    """The core's ExecutionEngine in live mode over a ledger in ``run_dir``, wired as the
    Runner wires it (the engine's LoopPort is this object).  A restart is a new harness on
    the same directory: the account is rebuilt from the ledger's fills, as the Runner's
    checkpoint (committed with them) restores it."""

    def __init__(self, run_dir: Path, venue: Venue, instrument: Instrument, mark: D) -> None:
        self.ledger = Ledger.in_dir(run_dir)
        self.venue, self.iid, self.mark = venue, instrument.id, mark
        self.market = MarketState(0)
        self.market.add_instruments([instrument])
        px = float(mark)
        self.market.bars[instrument.id] = Bar(instrument.id, 1, px, px, px, px, 1.0)
        self.account = Account(CASH)
        for row in self.ledger.fills():
            self.account.apply(fill_of(row))
        self.risk = RiskEngine([], RiskContext(market=self.market))
        self.engine = ExecutionEngine(
            loop=self, ledger=self.ledger, run_id=RUN, venue=venue, venue_name=venue.name,
            market=self.market, account=self.account,
            broker=PaperBroker(self.market, venue.fee_schedule), risk=self.risk,
            sizer=FixedFraction(None), live=True)
        self.kill_before_commit = False
        self.consumer: asyncio.Task[None] | None = None
        self._book, self._correct = self.engine.book_live_fill, self.engine.apply_fill_correction
        self.engine.book_live_fill = self._book_or_die  # type: ignore[method-assign]
        self.engine.apply_fill_correction = self._correct_or_die  # type: ignore[method-assign]

    def _book_or_die(self, fill: Fill) -> None:
        self._book(fill)
        if self.kill_before_commit:
            raise Killed(f"killed after booking {fill.fill_id}, before the commit")

    def _correct_or_die(self, correction: FillCorrection) -> None:
        self._correct(correction)
        if self.kill_before_commit:
            raise Killed(f"killed after correcting {correction.fill_id}, before the commit")

    # -- LoopPort ------------------------------------------------------------------
    @contextlib.contextmanager
    def between_events(self, *, commit_now: bool = False) -> Iterator[None]:
        idle = not self.ledger.in_transaction
        if idle:
            self.ledger.begin()
        try:
            yield
        except BaseException:
            self.ledger.rollback()  # a death mid-transaction: nothing of it is durable
            raise
        if idle or commit_now:
            self.ledger.commit()
            if not idle:
                self.ledger.begin()

    def commit_now(self) -> None:
        if self.ledger.in_transaction:
            self.ledger.commit()
            self.ledger.begin()

    def mark_dirty(self) -> None:
        pass

    def set_trading_state(self, state: TradingState, reason: str) -> None:
        escalate(self.risk.ctx, state, reason)

    def persist_state_change(self) -> None:
        pass

    def before_fill(self, ts_ns: int) -> int:
        return ts_ns  # no equity rows here

    # -- driving ---------------------------------------------------------------------
    async def start(self) -> None:
        self.consumer = await self.engine.start_live()

    def order(self, seq: int, side: Side, qty: str, limit: str | None = None,
              tif: TimeInForce = TimeInForce.IOC, *, reduce_only: bool = False) -> str:
        """Route one intent through the engine (risk, ledger, venue); its client id.

        ``reduce_only``: the order may only shrink the position (an exit).  An intent the
        engine sends no order for (vetoed or sized 0) fails the test with the risk events
        it recorded, which say why."""
        self.engine.seq = seq
        intent = Intent("s", self.iid, side, quantity=D(qty),
                        limit_price=D(limit) if limit else self.mark,
                        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
                        time_in_force=tif, reduce_only=reduce_only)
        (seen,) = self.ledger.query("select coalesce(max(id), 0) as id from risk_events")
        with self.between_events():
            orders = self.engine._route([intent], 1)
        if len(orders) != 1:
            raise AssertionError(f"order {seq} ({side.value} {qty}) sent no order: "
                                 f"{self._events_since(seen['id']) or 'no risk event'}")
        return orders[0].client_order_id

    def _events_since(self, last_id: int) -> str:
        rows = self.ledger.query("select check_name, action, reason from risk_events "
                                 "where id > ? order by id", (last_id,))
        return "; ".join(f"{r['check_name']} {r['action']}: {r['reason']}" for r in rows)

    async def cancel(self, coid: str) -> None:
        with self.between_events():
            self.engine.cancel_working(None, self.iid, f"cancelled by the test ({coid})")
        await self.settle()

    async def settle(self) -> None:
        """Let acknowledgements and cancels in flight land."""
        await self.engine.drain(10)

    def fills(self) -> list[dict[str, Any]]:
        return self.ledger.fills()

    def status(self, coid: str) -> tuple[OrderStatus | None, D]:
        row = self.ledger.order_row(coid)
        return (OrderStatus(row["status"]) if row else None,
                D(row["filled_quantity"]) if row else D(0))

    def events(self, action: str) -> list[dict[str, Any]]:
        return self.ledger.query("select * from risk_events where action = ?", (action,))

    def corrections(self) -> list[dict[str, Any]]:
        """The ledger's ``fill_corrections`` rows, oldest first."""
        return self.ledger.query("select * from fill_corrections order by id")

    async def close(self) -> None:
        if self.consumer is not None:
            self.consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Killed):
                await self.consumer
        await self.venue.close()
        self.ledger.close()


class Harnesses:
    """The engine harnesses one test starts on one run directory, all closed at its end
    (each venue's ``harness`` fixture builds its venue and hands it to :meth:`start`)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.made: list[EngineHarness] = []

    async def start(self, venue: Venue, instrument: Instrument, mark: D) -> EngineHarness:
        """A started :class:`EngineHarness` of ``venue`` (a restart: the same run dir)."""
        h = EngineHarness(self.run_dir, venue, instrument, mark)
        self.made.append(h)
        await h.start()
        return h

    async def close(self) -> None:
        """Close every harness made (one already closed or killed is passed over)."""
        for h in self.made:
            with contextlib.suppress(Exception):
                await h.close()


async def until(predicate: Callable[[], bool], timeout: float = 5.0,
                poll_s: float = 0.01) -> bool:
    """Wait until ``predicate()`` holds; whether it did within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(poll_s)
    except TimeoutError:
        return False
    return True


async def expect(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """:func:`until`, failing with ``TimeoutError`` past ``timeout_s``: the venue tests'
    wait for what the executions stream books."""
    if not await until(predicate, timeout_s, poll_s=0.02):
        raise TimeoutError(f"not within {timeout_s} s")
