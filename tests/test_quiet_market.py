"""A quiet market: a paper or live run whose venue sends nothing for a while.

* A person's ``argus kill`` is adopted within a second or so, and the halt's cancels go to
  the venue, although no event comes to drive the loop (it waited for the next event:
  a resting order kept working at the venue for as long as the market stayed quiet); an
  orchestrator's hot swap is made likewise (its future waited for the next event).
* A held instrument whose book stops reflecting the market (the whole feed silent for
  longer than the stale limit, or a book the venue marked not live) is said in a
  ``stale_mark`` risk event, and again when it updates: the equity shown is a stale mark
  and the drawdown kill switch cannot see moves it is not sent.  A book that only does not
  change while the feed goes on is not stale (books update on change).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from argus_core import plugins
from argus_core.cli import cli
from argus_core.config import parse_config
from argus_core.hookspecs import hookimpl
from argus_core.interfaces import Strategy, StrategyContext, Venue
from argus_core.ledger import Ledger
from argus_core.models import (
    BookStatus,
    Fill,
    Instrument,
    Intent,
    Liquidity,
    MarketEvent,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from argus_core.runner import Runner

X, Y = "quiet:X/USD", "quiet:Y/USD"
S = 10**9
QUIET_S = 8.0  # the most the venue stays quiet in these tests


class QuietVenue(Venue):
    """Sends a book, lets the run act on it (a taker buy filled at once, a resting bid
    acknowledged), then sends nothing until ``until()`` holds or :data:`QUIET_S` passed;
    then one last book (and ends).  ``during`` runs once the market went quiet, in a
    thread (another process, such as a person's ``argus kill``)."""

    name = "quiet"
    supports_live_orders = True
    default_stale_after_s = 0.5
    during: ClassVar[Any] = None
    until: ClassVar[Any] = None
    not_live: ClassVar[bool] = False
    swap: ClassVar[bool] = False
    other_moves: ClassVar[bool] = False
    runner: ClassVar[Any] = None
    cancelled: ClassVar[list[str]] = []
    quiet_for: ClassVar[list[float]] = []

    def __init__(self, settings: object) -> None:
        self._queue: asyncio.Queue[Fill | OrderUpdate] = asyncio.Queue()
        self._n = 0

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument("quiet", "X/USD"), Instrument("quiet", "Y/USD")]

    def _book(self, t: int) -> OrderBook:
        return OrderBook(X, t * S, bids=((99.0, 10.0),), asks=((101.0, 10.0),))

    async def stream(self) -> AsyncIterator[MarketEvent]:
        yield self._book(1)
        yield self._book(2)
        for _ in range(50):
            await asyncio.sleep(0)
        if self.not_live:
            yield BookStatus(X, 3 * S, live=False, reason="feed lost")
        started = time.monotonic()
        if QuietVenue.swap:  # an orchestrator's hot swap, asked for on the loop's thread
            swapped = QuietVenue.runner.request_swap("buyer", BuyThenBid(), version_id="v2")
            QuietVenue.until = swapped.done
        during, until = QuietVenue.during, QuietVenue.until  # plain functions, not methods
        thread = threading.Thread(target=during) if during else None
        if thread is not None:
            thread.start()
        t = 4
        while time.monotonic() - started < QUIET_S and not until():
            await asyncio.sleep(0.05)
            if QuietVenue.other_moves:  # the feed goes on; X's book does not change
                t += 1
                yield OrderBook(Y, 2 * S + t * S // 20, bids=((49.0, t),), asks=((51.0, 10.0),))
        QuietVenue.quiet_for.append(time.monotonic() - started)
        if thread is not None:
            thread.join()
        yield self._book(1000)
        await asyncio.sleep(0.1)  # the loop goes idle once more before the stream ends

    async def submit(self, order: Order) -> list[Fill]:
        self._n += 1
        self._queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1,
                                           f"V{self._n}"))
        if order.time_in_force is TimeInForce.IOC:
            self._queue.put_nowait(Fill(f"F{self._n}", order.client_order_id, "quiet", X,
                                        order.side, Decimal(101), order.quantity,
                                        Decimal(0), Liquidity.TAKER, 1))
        return []

    async def cancel(self, client_order_id: str) -> None:
        QuietVenue.cancelled.append(client_order_id)
        self._queue.put_nowait(OrderUpdate(client_order_id, OrderStatus.CANCELLED, 1,
                                           reason="cancelled"))

    async def open_orders(self) -> list[Order]:
        return []

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate]:
        while True:
            yield await self._queue.get()


class BuyThenBid(Strategy):
    """On its first book: a taker buy of 1 (held) and a resting bid of 1 at 95."""

    name = "buyer"

    def __init__(self) -> None:
        self.done = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if self.done or not isinstance(event, OrderBook):
            return ()
        self.done = True
        return (Intent(self.name, X, Side.BUY, quantity=Decimal(1), limit_price=Decimal(101),
                       order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC),
                Intent(self.name, X, Side.BUY, quantity=Decimal(1), limit_price=Decimal(95),
                       order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC))


@pytest.fixture
def venue(monkeypatch: pytest.MonkeyPatch) -> type[QuietVenue]:
    QuietVenue.during, QuietVenue.until, QuietVenue.not_live = None, lambda: False, False
    QuietVenue.swap = QuietVenue.other_moves = False
    QuietVenue.cancelled, QuietVenue.quiet_for = [], []
    module = types.ModuleType("argus_test_quiet_venue")
    module.register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("quiet", QuietVenue))
    monkeypatch.setitem(sys.modules, "argus_test_quiet_venue", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("quiet", "argus_test_quiet_venue")))
    return QuietVenue


def _run(tmp_path: Path, mode: str) -> Runner:
    config = parse_config({"argus": {"plugins": [], "mode": mode},
                           "run": {"venue": "quiet", "strategies": [], "risk_checks": [],
                                   "starting_cash": "10000"}}, tmp_path / "c.toml")
    runner = Runner(config, tmp_path / "run", live_confirmed=mode == "live",
                    strategies={"buyer": BuyThenBid()})
    QuietVenue.runner = runner
    runner.run_sync()
    return runner


def _events(run_dir: Path, check: str) -> list[dict[str, Any]]:
    with Ledger.in_dir(run_dir) as ledger:
        return ledger.query("select action, reason from risk_events where check_name = ? "
                            "order by rowid", (check,))


def test_a_kill_in_a_quiet_market_cancels_at_the_venue_before_the_next_event(
        tmp_path: Path, venue: type[QuietVenue]) -> None:
    run_dir = tmp_path / "run"

    def kill() -> None:
        result = CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir)])
        assert result.exit_code == 0, result.output

    venue.during, venue.until = kill, lambda: bool(QuietVenue.cancelled)
    runner = _run(tmp_path, "live")
    assert runner.trading_state.value == "halted"
    assert len(QuietVenue.cancelled) == 1  # the resting bid
    assert QuietVenue.quiet_for[0] < QUIET_S  # cancelled while the market was quiet
    with Ledger.in_dir(run_dir) as ledger:
        rows = ledger.query("select status from orders where client_order_id = ?",
                            (QuietVenue.cancelled[0],))
    assert rows[0]["status"] == "cancelled"


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_held_position_on_a_quiet_book_is_said_to_be_marked_stale_then_live(
        tmp_path: Path, venue: type[QuietVenue], mode: str) -> None:
    venue.until = lambda: time.monotonic() - start > 2.0  # four stale limits of quiet
    start = time.monotonic()
    _run(tmp_path, mode)
    events = _events(tmp_path / "run", "stale_mark")
    assert [e["action"] for e in events] == ["flagged", "cleared"]
    assert "quiet:X/USD: a position of 1" in events[0]["reason"]
    assert "no event from the venue for" in events[0]["reason"]


def test_a_book_the_venue_marked_not_live_is_said_at_once(
        tmp_path: Path, venue: type[QuietVenue]) -> None:
    venue.not_live = True
    venue.until = lambda: bool(_flagged(tmp_path / "run"))
    _run(tmp_path, "paper")
    events = _events(tmp_path / "run", "stale_mark")
    assert events[0]["action"] == "flagged" and "feed lost" in events[0]["reason"]
    assert QuietVenue.quiet_for[0] < QUIET_S


def _flagged(run_dir: Path) -> list[dict[str, Any]]:
    try:
        return _events(run_dir, "stale_mark")
    except Exception:  # the run may hold the write lock: try again
        return []


def test_a_busy_market_is_never_said_stale(tmp_path: Path, venue: type[QuietVenue]) -> None:
    venue.until = lambda: True  # no quiet at all
    _run(tmp_path, "paper")
    assert _events(tmp_path / "run", "stale_mark") == []


def test_a_hot_swap_in_a_quiet_market_is_made_before_the_next_event(
        tmp_path: Path, venue: type[QuietVenue]) -> None:
    venue.swap = True
    runner = _run(tmp_path, "live")
    assert QuietVenue.quiet_for[0] < QUIET_S  # swapped while the market was quiet
    assert runner.versions == {"buyer": "v2"}


def test_a_held_book_that_does_not_change_while_the_feed_goes_on_is_not_stale(
        tmp_path: Path, venue: type[QuietVenue]) -> None:
    """Books update on change: X's book unchanged for four stale limits while Y's moves
    every 50 ms is still X's market (a flag here would be noise every quiet hour)."""
    venue.other_moves = True
    venue.until = lambda: time.monotonic() - start > 2.0
    start = time.monotonic()
    _run(tmp_path, "paper")
    assert _events(tmp_path / "run", "stale_mark") == []
