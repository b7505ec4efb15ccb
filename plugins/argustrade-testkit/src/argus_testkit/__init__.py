"""Pytest plugin and test kit for Argus plugin authors (the ``pytest11`` entry point ``argus``).

Installed beside the core (``argustrade-testkit``), every plugin's tests get these fixtures
without a conftest:

* ``argus_host`` — a :class:`PluginHost` with only the builtins loaded (no
  autoloading of whatever happens to be installed, so tests are hermetic).
* ``register_plugin`` — ``register_plugin(obj, name)`` adds a test plugin to
  ``argus_host`` and always removes it afterwards.
* ``bars_csv`` — path of a small real OHLCVT file (Kraken BTC/USD hourly bars).
* ``run_config`` — ``run_config({...})`` builds a validated :class:`Config` from a dict,
  as if read from a TOML file in ``tmp_path``; ``run_config.run(dict | path | Config,
  strategies=..., plugins=...)`` runs it to the end and returns a :class:`RunResult`
  (summary, orders, fills, risk events, positions).
* ``recorded`` — ``recorded(path)`` loads an NDJSON recording into events.
* ``payloads`` — ``payloads("book.json")`` reads a recorded payload from the test
  module's ``fixtures/`` folder (JSON decoded, NDJSON one value per line).
* ``fake_clock`` — a :class:`FakeClock`: time moves only when a test (or an awaited
  ``sleep``) moves it.
* ``fake_exchange`` / ``fake_venue`` — a scripted exchange and a live venue on it
  (:class:`FakeExchange`, :class:`FakeLiveVenue`): instruments, a market stream, order
  entry with fills and order updates, faults on demand.

And, for venue plugins, a conformance suite: subclass :class:`VenueConformance` in a
test module, give it a ``venue_harness`` fixture returning your :class:`VenueHarness`
(your venue on your local exchange, plus the faults), and every venue runs the same
checks of the :class:`~argus_core.interfaces.Venue` contract: submit -> acknowledgement
-> fill, cancel, a repeated fill after a reconnect booked once, a restart resumed from
the ledger, and an ambiguous submission resolved without a second order.  The suite's
tests are coroutines: it needs ``pytest-asyncio``.  :class:`FakeVenueHarness` is the
model harness (the fake venue passes the suite in the core's ``tests/test_plugin_kit.py``).

Outside fixtures: :func:`run_and_collect` (what ``run_config.run`` calls),
:func:`extra_plugins` (load test plugins into every run's host), :func:`load_payload`,
:func:`fake_venue_plugin` and :class:`ExecutionTape` (book fills once by id, as the
engine does).

Heavy modules (the runner, the ledger) are imported inside the functions that use
them: pytest imports this plugin in every session.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import inspect
import itertools
import json
import math
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import attrs
import pytest

from argus_core.config import Config, load_config, parse_config
from argus_core.errors import (
    BasketIncomplete,
    DataError,
    OrderUnknown,
    PluginError,
    VenueError,
)
from argus_core.hookspecs import Register, hookimpl
from argus_core.interfaces import FeeSchedule, Strategy, Venue
from argus_core.models import (
    Bar,
    Fill,
    FillCorrection,
    Instrument,
    KnownOrder,
    Liquidity,
    MarketEvent,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    Trade,
    VenueResume,
)
from argus_core.plugins import PluginHost

if TYPE_CHECKING:
    from argus_core.runner import RunSummary

_SAMPLE_BARS = """\
1672531200,16541.8,16554.0,16532.9,16548.8,36.43,817
1672534800,16548.8,16565.4,16540.0,16560.6,44.39,923
1672538400,16560.6,16572.1,16549.3,16553.2,53.17,1084
1672542000,16553.2,16562.9,16539.4,16547.0,38.62,874
1672545600,16547.0,16555.5,16536.1,16540.6,31.71,716
1672549200,16540.6,16549.9,16527.0,16530.8,41.05,882
1672552800,16530.8,16547.3,16522.4,16543.2,47.90,951
1672556400,16543.2,16560.0,16538.8,16556.5,52.36,1043
"""
__all__ = [
    "ConfigRunner", "ExecutionTape", "FakeClock", "FakeExchange", "FakeLiveVenue",
    "FakeVenueHarness", "PayloadLoader", "PluginHost", "RunResult", "VenueConformance",
    "VenueHarness", "check_test_plugin", "eventually", "extra_plugins", "fake_venue_plugin",
    "load_payload", "read_result", "run_and_collect", "venue_session", "within",
]
_T = TypeVar("_T")
_FINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)
_ZERO = Decimal(0)


# -- hosts and plugins --------------------------------------------------------------------

@pytest.fixture
def argus_host() -> PluginHost:
    """A plugin host with the builtins only."""
    host = PluginHost()
    host.load([])
    return host


@pytest.fixture
def register_plugin(argus_host: PluginHost) -> Iterator[Callable[[object, str], None]]:
    """Register test plugins on ``argus_host``; every one is unregistered afterwards."""
    added: list[str] = []

    def register(plugin: object, name: str) -> None:
        check_test_plugin(argus_host, plugin, name)
        argus_host.add_plugin(plugin, name)
        added.append(name)

    try:
        yield register
    finally:
        for name in reversed(added):
            if argus_host.pm.has_plugin(name):
                argus_host.remove_plugin(name)


def check_test_plugin(host: PluginHost, plugin: object, name: str) -> None:
    """Refuse, naming the plugin, what the host would report as pluggy's bare
    ``ValueError`` (an object already loaded under another name), a test plugin with no
    hook implementation (its functions lack ``@hookimpl``: it would register nothing), and
    what the host refuses of any plugin (:meth:`PluginHost.check_hooks`: a ``@hookimpl``
    naming no hook, a hook-named function without ``@hookimpl``)."""
    other = host.pm.get_name(plugin)
    if other is not None and other != name:
        raise PluginError(f"plugin {name!r}: this object is already registered as "
                          f"{other!r}; register each plugin object once")
    if not host.check_hooks(plugin, name):
        raise PluginError(f"plugin {name!r} implements no argus hook: decorate its hook "
                          f"functions with @hookimpl (from argus_core import hookimpl)")


@contextlib.contextmanager
def extra_plugins(plugins: Mapping[str, object]) -> Iterator[None]:
    """While open, every run's plugin host also loads ``plugins`` (name -> a module or
    object with hook implementations), as if they were installed: how a test runs a
    config against a test venue or strategy without an entry point.  Leave them out of
    ``[argus] plugins`` (that list names installed entry points); a ``[plugins.NAME]``
    table still configures them.  Restored on exit."""
    from argus_core import runtime

    original = runtime.load_host

    def load_host(config: Config) -> PluginHost:
        host = original(config)
        for name, plugin in plugins.items():
            check_test_plugin(host, plugin, name)
            host.add_plugin(plugin, name, rebuild=False)
        host.rebuild()
        return host

    runtime.load_host = load_host
    try:
        yield
    finally:
        runtime.load_host = original


# -- data -----------------------------------------------------------------------------------

@pytest.fixture
def bars_csv(tmp_path: Path) -> Path:
    """A small OHLCVT CSV in Kraken's downloadable format (no header)."""
    path = tmp_path / "bars.csv"
    path.write_text(_SAMPLE_BARS)
    return path


@pytest.fixture
def recorded() -> Callable[[Path], list[MarketEvent]]:
    """Load an NDJSON recording (as written by ``argus record``)."""
    from argus_core.builtins.replay_venue import read_ndjson

    return lambda path: list(read_ndjson(Path(path)))


def load_payload(name: str | Path, directory: Path | None = None, **json_kwargs: Any) -> Any:
    """A recorded payload from ``directory`` (or ``name`` as a path): ``.json`` decoded,
    ``.ndjson`` / ``.jsonl`` a list with one decoded value per non-blank line, anything
    else as text.  ``json_kwargs`` go to ``json.loads`` (e.g. ``parse_float=Decimal``)."""
    path = Path(directory) / name if directory is not None else Path(name)
    if not path.is_file():
        where = path.parent
        known = sorted(p.name for p in where.iterdir()) if where.is_dir() else []
        raise FileNotFoundError(f"no payload {path}; {where} holds: "
                                f"{', '.join(known) or 'nothing'}")
    text = path.read_text()
    if path.suffix == ".json":
        try:
            return json.loads(text, **json_kwargs)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not JSON: {exc}") from None
    if path.suffix in (".ndjson", ".jsonl"):
        values = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                values.append(json.loads(line, **json_kwargs))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not JSON: {exc.msg}") from None
        return values
    return text


class PayloadLoader:
    """``payloads(name)``: recorded payloads of one folder (see :func:`load_payload`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __call__(self, name: str, **json_kwargs: Any) -> Any:
        return load_payload(name, self.directory, **json_kwargs)

    def path(self, name: str) -> Path:
        """Where payload ``name`` lives (to hand a file to a local server)."""
        return self.directory / name

    def names(self) -> list[str]:
        """Every file in the folder."""
        return sorted(p.name for p in self.directory.iterdir() if p.is_file())


@pytest.fixture
def payloads(request: pytest.FixtureRequest) -> PayloadLoader:
    """Recorded payloads from the ``fixtures/`` folder beside the requesting test module
    (``PayloadLoader(other_dir)`` reads another folder)."""
    return PayloadLoader(Path(request.path).parent / "fixtures")


# -- time -----------------------------------------------------------------------------------

class FakeClock:
    """A clock that moves only when told.  ``time()`` / ``clock()`` / ``monotonic()`` are
    seconds, ``time_ns()`` nanoseconds; ``await sleep(s)`` advances it at once and records
    ``s`` in ``sleeps``, so back-offs, deadlines and rate limits cost no real time.  Hand
    its methods to the code under test wherever it takes a clock or a sleep."""

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self.now_s = start_s
        self.sleeps: list[float] = []

    def time(self) -> float:
        """Seconds (wall clock and monotonic are the same fake)."""
        return self.now_s

    clock = monotonic = time

    def time_ns(self) -> int:
        """Nanoseconds."""
        return round(self.now_s * 1e9)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        _check_step("advance", seconds)
        if seconds < 0:
            raise ValueError(f"FakeClock.advance({seconds!r}): a clock does not go back")
        self.now_s += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` and yield to the loop once (other tasks still run)."""
        _check_step("sleep", seconds)
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


def _check_step(method: str, seconds: float) -> None:
    # NaN compares false with everything: it would slip past "< 0" and poison the clock.
    if not math.isfinite(seconds):
        raise ValueError(f"FakeClock.{method}({seconds!r}): seconds must be finite")


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`FakeClock` at a fixed start."""
    return FakeClock()


# -- running a config -----------------------------------------------------------------------

@attrs.frozen
class RunResult:
    """A finished run as a test reads it: the summary and the ledger's rows."""

    summary: RunSummary
    run_dir: Path
    orders: list[dict[str, Any]]
    fills: list[Fill]
    risk_events: list[dict[str, Any]]
    positions: dict[str, Decimal]

    def orders_of(self, strategy: str) -> list[dict[str, Any]]:
        """The orders of one strategy slot."""
        return [o for o in self.orders if o["strategy"] == strategy]

    def risk_events_of(self, check: str) -> list[dict[str, Any]]:
        """The risk events of one check (``"sizing"``, ``"per_play_cap"``, ``"reconcile"``...)."""
        return [e for e in self.risk_events if e["check_name"] == check]


def read_result(run_dir: Path, summary: RunSummary) -> RunResult:
    """Read a run's orders, fills, risk events and positions from its ledger."""
    from argus_core.ledger import Ledger

    with Ledger.in_dir(run_dir) as ledger:
        orders = ledger.query("select * from orders order by ts_ns, client_order_id")
        fills = [Fill(r["fill_id"], r["client_order_id"], r["venue"], r["instrument_id"],
                      Side(r["side"]), r["price"], r["quantity"], r["fee"],
                      Liquidity(r["liquidity"]), r["ts_ns"]) for r in ledger.fills()]
        events = ledger.query("select * from risk_events order by id")
        positions = {r["instrument_id"]: Decimal(r["quantity"])
                     for r in ledger.query("select * from positions")}
    return RunResult(summary, Path(run_dir), orders, fills, events, positions)


def run_and_collect(config: Config | Mapping[str, Any] | str | Path, run_dir: Path, *,
                    strategies: Mapping[str, Strategy] | None = None,
                    plugins: Mapping[str, object] | None = None,
                    live_confirmed: bool = False,
                    base_dir: Path | None = None) -> RunResult:
    """Run ``config`` (a ``Config``, a dict, or a TOML path) to the end in ``run_dir``
    through the real :class:`~argus_core.runner.Runner` and read back its ledger.

    ``strategies`` are ready instances for the config's strategy slots; ``plugins`` are
    test plugins loaded beside the installed ones (see :func:`extra_plugins`); a dict's
    relative paths resolve against ``base_dir`` (default: ``run_dir``'s parent).  An
    existing ``run_dir`` is resumed, as ``argus run`` does."""
    from argus_core.runner import Runner

    run_dir = Path(run_dir)
    if isinstance(config, Mapping):
        config = parse_config(dict(config), (base_dir or run_dir.parent) / "config.toml")
    elif not isinstance(config, Config):
        config = load_config(config)
    with extra_plugins(plugins or {}):
        summary = Runner(config, run_dir, live_confirmed=live_confirmed,
                         strategies=dict(strategies) if strategies else None).run_sync()
    return read_result(run_dir, summary)


class ConfigRunner:
    """What the ``run_config`` fixture gives: ``run_config(raw)`` builds a validated
    config (paths relative to the test's ``tmp_path``); ``run_config.run(...)`` runs one."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self._runs = itertools.count(1)

    def __call__(self, raw: dict[str, Any]) -> Config:
        return parse_config(raw, self.base_dir / "config.toml")

    def run(self, config: Config | Mapping[str, Any] | str | Path,
            run_dir: Path | None = None, *, strategies: Mapping[str, Strategy] | None = None,
            plugins: Mapping[str, object] | None = None,
            live_confirmed: bool = False) -> RunResult:
        """Run to the end (see :func:`run_and_collect`); ``run_dir`` defaults to a fresh
        ``tmp_path/run-N`` (pass the same one twice to resume)."""
        run_dir = run_dir if run_dir is not None else self.base_dir / f"run-{next(self._runs)}"
        return run_and_collect(config, run_dir, strategies=strategies, plugins=plugins,
                               live_confirmed=live_confirmed, base_dir=self.base_dir)


@pytest.fixture
def run_config(tmp_path: Path) -> ConfigRunner:
    """Build (``run_config({...})``) or run (``run_config.run({...})``) a config in a test."""
    return ConfigRunner(tmp_path)


# -- a fake live venue ----------------------------------------------------------------------

FAKE_VENUE = "fake"
Fault = Literal["answer_lost", "unseen", "unknown", "refused", "basket_incomplete"]


def fake_wire_id(client_order_id: str) -> str:
    """The id the fake exchange knows an order by.  Like a real venue's (Kraken keeps a
    UUID, Polymarket an order hash) it is not the core's id: a restarted venue maps it
    back only through what ``resume`` taught it."""
    return "w-" + hashlib.sha256(client_order_id.encode()).hexdigest()[:16]


def default_market(instruments: Sequence[Instrument], n_bars: int = 6,
                   price: float = 100.0) -> list[MarketEvent]:
    """``n_bars`` one-second bars per instrument around ``price``."""
    return [Bar(inst.id, (i + 1) * 10**9, price, price * 1.01, price * 0.99, price, 10.0)
            for i in range(n_bars) for inst in instruments]


class _AnswerLost(Exception):
    """The exchange acted; its answer never arrived (timeout, reset, 5xx after acting)."""


class _NotReceived(Exception):
    """The request never reached the exchange (connection refused, 502 before acting)."""


class _Unreachable(Exception):
    """The exchange cannot be asked right now."""


_DISCONNECT = object()


@attrs.define
class ExchangeOrder:
    """One order as the fake exchange holds it, under its wire id."""

    order: Order  # ``client_order_id`` is the wire id
    venue_order_id: str
    status: OrderStatus = OrderStatus.OPEN
    filled: Decimal = _ZERO


class FakeExchange:
    """A scripted exchange for :class:`FakeLiveVenue`.  It outlives venue objects (a
    restart is a new venue on the same exchange) and knows orders only by wire id.

    * ``instruments``, ``market`` (the stream's events; bars, trades and books move
      ``prices``, the price a marketable order fills at), ``fee`` (a FeeSchedule).
    * Matching: a MARKET order, or a LIMIT through the price, fills in full at once
      (taker); otherwise an IOC/FOK rest is cancelled and a GTC/GTD order rests until
      :meth:`fill_resting` or a cancel.  Every order is acknowledged (OPEN with a venue
      order id) before its fills.
    * Scripts: ``on_order(order) -> [Fill | OrderUpdate, ...]`` replaces matching (build
      items with ``order.client_order_id``); :meth:`push` publishes anything (a
      stranger's fill, a late update); ``repeat_fills`` reports every fill twice;
      ``fills_in_answer`` also returns fills from ``submit``.
    * Faults: :meth:`fault_next_submit`, :meth:`fail_executions`,
      :meth:`drop_executions` (connected streams drop; a reconnect replays every trade,
      as Kraken's snapshot does).
    * Inspection: ``received`` (every order acted on: a double order shows twice),
      :meth:`count`, ``trades``, ``orders``, ``cancels``.
    """

    def __init__(self, instruments: Sequence[Instrument] | None = None, *,
                 market: Sequence[MarketEvent] | None = None,
                 prices: Mapping[str, Decimal | str | float] | None = None,
                 fee: FeeSchedule | None = None, venue: str = FAKE_VENUE,
                 replay_on_connect: bool = True, pause_ticks: int = 5) -> None:
        self.venue = venue
        self.instruments = list(instruments if instruments is not None else (
            Instrument(venue, "X/USD"), Instrument(venue, "Y/USD")))
        self.market: list[MarketEvent] = list(
            market if market is not None else default_market(self.instruments))
        self.prices: dict[str, Decimal] = {i.id: Decimal(100) for i in self.instruments}
        self.prices.update({k: Decimal(str(v)) for k, v in (prices or {}).items()})
        self.fee = fee or FeeSchedule(taker_bps=Decimal(10), maker_bps=Decimal(0))
        self.replay_on_connect = replay_on_connect
        self.pause_ticks = pause_ticks  # loop turns after each market event ("time passes")
        self.on_order: Callable[[Order], Sequence[Fill | OrderUpdate]] | None = None
        self.repeat_fills = False
        self.fills_in_answer = False
        self.orders: dict[str, ExchangeOrder] = {}
        self.received: list[Order] = []
        self.trades: list[Fill] = []
        self.cancels: list[str] = []
        self.now_ns = 1
        self._faults: deque[tuple[Fault, str]] = deque()
        self._lookups_down = 0
        self._exec_failures: deque[BaseException] = deque()
        self._listeners: list[asyncio.Queue[Any]] = []
        self._ids = itertools.count(1)

    # -- what a test does -------------------------------------------------------------
    def fault_next_submit(self, fault: Fault, reason: str = "scripted fault") -> None:
        """The next order request meets ``fault``: ``answer_lost`` (acted, answer lost),
        ``unseen`` (never reached the exchange), ``unknown`` (acted, answer lost, and the
        exchange cannot be asked: ``OrderUnknown``), ``refused`` (a clear refusal:
        ``VenueError``) or, for ``submit_basket``, ``basket_incomplete`` (the first leg
        executes, the others are killed)."""
        self._faults.append((fault, reason))

    def fail_executions(self, exc: BaseException | None = None) -> None:
        """The next ``executions()`` connection fails with ``exc``."""
        self._exec_failures.append(exc or VenueError("fake executions stream refused"))

    async def drop_executions(self) -> None:
        """Every connected executions stream drops (and reconnects, replaying trades)."""
        for queue in list(self._listeners):
            queue.put_nowait(_DISCONNECT)
        await asyncio.sleep(0)

    def push(self, item: Fill | OrderUpdate) -> None:
        """Publish ``item`` to every connected executions stream as it is."""
        if isinstance(item, Fill):
            self.trades.append(item)
        self._publish(item)

    def fill_resting(self, wire_or_client_id: str, quantity: Decimal | str | None = None,
                     price: Decimal | str | None = None) -> Fill:
        """A resting order trades (as maker): all that is left, or ``quantity``."""
        ex = self._held(wire_or_client_id)
        if ex.status in _FINAL:
            raise VenueError(f"fake exchange: order {ex.order.client_order_id} is "
                             f"{ex.status.value}, it cannot fill")
        left = ex.order.quantity - ex.filled
        qty = min(Decimal(str(quantity)), left) if quantity is not None else left
        px = Decimal(str(price)) if price is not None else (
            ex.order.limit_price or self.prices[ex.order.instrument_id])
        fill = self._fill(ex, px, qty, Liquidity.MAKER)
        self._publish_fill(fill)
        return fill

    def count(self, wire_or_client_id: str) -> int:
        """How many times the exchange acted on an order with this id (1 = exactly once)."""
        wire = self._wire(wire_or_client_id)
        return sum(1 for o in self.received if o.client_order_id == wire)

    def open(self) -> list[ExchangeOrder]:
        """Orders resting now."""
        return [ex for ex in self.orders.values() if ex.status not in _FINAL]

    # -- the protocol the venue speaks ----------------------------------------------------
    def submit(self, order: Order) -> ExchangeOrder:
        """Act on one order (by wire id), or fail as the next scripted fault says."""
        fault, reason = self._faults.popleft() if self._faults else (None, "")
        if fault == "unseen":
            raise _NotReceived(reason)
        if fault == "refused":
            raise VenueError(f"fake exchange refused {order.client_order_id}: {reason}")
        ex = self._act(order)
        if fault == "unknown":
            self._lookups_down += 1
        if fault in ("answer_lost", "unknown"):
            raise _AnswerLost(reason)
        return ex

    def basket_fault(self, orders: Sequence[Order]) -> None:
        """When ``basket_incomplete`` is the next fault: act on the first leg, kill the
        others and raise ``BasketIncomplete`` with the first leg's fills."""
        if not self._faults or self._faults[0][0] != "basket_incomplete":
            return
        _, reason = self._faults.popleft()
        first = self._act(orders[0])
        for order in orders[1:]:
            self.received.append(order)
            ex = ExchangeOrder(order, f"V{next(self._ids)}", OrderStatus.CANCELLED)
            self.orders[order.client_order_id] = ex
            self._publish(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED,
                                      self.now_ns, ex.venue_order_id, reason))
        raise BasketIncomplete(reason, self.fills_of(first.order.client_order_id))

    def lookup(self, wire: str) -> ExchangeOrder | None:
        """The order with this wire id, open or closed (``_Unreachable`` while down)."""
        if self._lookups_down:
            self._lookups_down -= 1
            raise _Unreachable("fake exchange: lookups unavailable")
        return self.orders.get(wire)

    def cancel(self, wire: str) -> None:
        """Cancel a resting order (a finished one stays as it is)."""
        ex = self.orders.get(wire)
        if ex is None:
            raise VenueError(f"fake exchange: unknown order {wire}")
        self.cancels.append(wire)
        if ex.status not in _FINAL:
            ex.status = OrderStatus.CANCELLED
            self._publish(OrderUpdate(wire, OrderStatus.CANCELLED, self.now_ns,
                                      ex.venue_order_id, "cancelled by the client"))

    def fills_of(self, wire: str) -> list[Fill]:
        """Every trade of one order."""
        return [f for f in self.trades if f.client_order_id == wire]

    def connect(self) -> asyncio.Queue[Any]:
        """A new executions connection: a queue preloaded with the trade replay."""
        if self._exec_failures:
            raise self._exec_failures.popleft()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        if self.replay_on_connect:
            for fill in self.trades:
                queue.put_nowait(fill)
        self._listeners.append(queue)
        return queue

    def disconnect(self, queue: asyncio.Queue[Any]) -> None:
        """Forget an executions connection."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(queue)

    def observe(self, event: MarketEvent) -> None:
        """The market moved: marketable orders now fill at its price."""
        self.now_ns = max(self.now_ns, getattr(event, "ts_ns", self.now_ns))
        if isinstance(event, Bar):
            self.prices[event.instrument_id] = Decimal(repr(event.close))
        elif isinstance(event, Trade):
            self.prices[event.instrument_id] = event.price
        elif isinstance(event, OrderBook) and event.best_ask is not None:
            self.prices[event.instrument_id] = Decimal(repr(event.best_ask))

    # -- internals --------------------------------------------------------------------
    def _wire(self, wire_or_client_id: str) -> str:
        return wire_or_client_id if wire_or_client_id in self.orders or \
            wire_or_client_id.startswith("w-") else fake_wire_id(wire_or_client_id)

    def _held(self, wire_or_client_id: str) -> ExchangeOrder:
        ex = self.orders.get(self._wire(wire_or_client_id))
        if ex is None:
            raise VenueError(f"fake exchange: unknown order {wire_or_client_id}")
        return ex

    def _act(self, order: Order) -> ExchangeOrder:
        self.received.append(order)
        ex = ExchangeOrder(order, f"V{next(self._ids)}")
        self.orders[order.client_order_id] = ex
        if self.on_order is not None:
            for item in self.on_order(order):
                if isinstance(item, Fill):
                    ex.filled += item.quantity
                    self.trades.append(item)
                    self._publish_fill(item, record=False)
                else:
                    ex.status = item.status
                    self._publish(item)
            return ex
        self._publish(OrderUpdate(order.client_order_id, OrderStatus.OPEN, self.now_ns,
                                  ex.venue_order_id))
        price = self.prices[order.instrument_id]
        limit = order.limit_price
        marketable = order.order_type is OrderType.MARKET or limit is None or (
            limit >= price if order.side is Side.BUY else limit <= price)
        if marketable:
            self._publish_fill(self._fill(ex, price, order.quantity, Liquidity.TAKER))
        elif order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            ex.status = OrderStatus.CANCELLED
            self._publish(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED,
                                      self.now_ns, ex.venue_order_id, "IOC rest"))
        return ex

    def _fill(self, ex: ExchangeOrder, price: Decimal, qty: Decimal,
              liquidity: Liquidity) -> Fill:
        order = ex.order
        fill = Fill(f"T{next(self._ids)}", order.client_order_id, self.venue,
                    order.instrument_id, order.side, price, qty,
                    self.fee.fee(price, qty, maker=liquidity is Liquidity.MAKER), liquidity,
                    self.now_ns)
        ex.filled += qty
        ex.status = OrderStatus.FILLED if ex.filled >= order.quantity else \
            OrderStatus.PARTIALLY_FILLED
        return fill

    def _publish_fill(self, fill: Fill, *, record: bool = True) -> None:
        if record:
            self.trades.append(fill)
        self._publish(fill)
        if self.repeat_fills:
            self._publish(fill)

    def _publish(self, item: Fill | OrderUpdate) -> None:
        for queue in self._listeners:
            queue.put_nowait(item)


class FakeLiveVenue(Venue):
    """A live venue on a :class:`FakeExchange`, written the way a real one must be (read
    it as a reference): client ids mapped to wire ids, ``submit`` exactly once (an
    ambiguous answer is resolved by asking the exchange; re-sent only when the exchange
    provably never saw it; ``OrderUnknown`` when it cannot be asked), an executions stream
    that reconnects and maps ids back, and ``resume`` teaching a restarted venue the
    run's ids.  ``FakeLiveVenue(settings)`` alone builds its own default exchange."""

    name = FAKE_VENUE
    supports_live_orders = True
    supports_baskets = True
    default_stale_after_s = 0.0  # scripted streams have no heartbeat

    def __init__(self, settings: object = None, *, exchange: FakeExchange | None = None
                 ) -> None:
        self.exchange = exchange if exchange is not None else FakeExchange()
        self.settings = settings
        self._core: dict[str, str] = {}  # wire id -> the core's client order id
        self.known_fill_ids: dict[str, str] = {}
        self.submitted: list[Order] = []
        self.baskets: list[list[Order]] = []
        self.lookups = 0
        self.resent = 0
        self.connections = 0
        self.closed = False

    async def instruments(self) -> Sequence[Instrument]:
        return list(self.exchange.instruments)

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for event in self.exchange.market:
            self.exchange.observe(event)
            yield event
            for _ in range(self.exchange.pause_ticks):  # acks and fills arrive meanwhile
                await asyncio.sleep(0)

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return self.exchange.fee

    def resume(self, known: VenueResume) -> None:
        for k in known.orders:
            self._core[fake_wire_id(k.order.client_order_id)] = k.order.client_order_id
        self.known_fill_ids = dict(known.fill_ids)

    def _to_wire(self, order: Order) -> Order:
        wire = fake_wire_id(order.client_order_id)
        self._core[wire] = order.client_order_id
        return attrs.evolve(order, client_order_id=wire)

    def _to_core(self, item: Fill | OrderUpdate) -> Fill | OrderUpdate:
        core = self._core.get(item.client_order_id)
        return attrs.evolve(item, client_order_id=core) if core else item

    def _fill_to_core(self, fill: Fill) -> Fill:
        core = self._core.get(fill.client_order_id)
        return attrs.evolve(fill, client_order_id=core) if core else fill

    async def submit(self, order: Order) -> list[Fill]:
        self.submitted.append(order)
        wire = self._to_wire(order)
        await self._send(wire)
        return self._answer([wire])

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        self.baskets.append(list(orders))
        wires = [self._to_wire(o) for o in orders]
        try:
            self.exchange.basket_fault(wires)
        except BasketIncomplete as exc:
            raise BasketIncomplete(str(exc), [self._fill_to_core(f) for f in exc.fills]
                                   ) from None
        for wire in wires:
            await self._send(wire)
        return self._answer(wires)

    async def _send(self, wire: Order) -> None:
        coid = self._core[wire.client_order_id]
        try:
            self.exchange.submit(wire)
            return
        except (_AnswerLost, _NotReceived):
            pass  # ambiguous: ask the exchange, never re-send blind
        self.lookups += 1
        try:
            found = self.exchange.lookup(wire.client_order_id)
        except _Unreachable as exc:
            raise OrderUnknown(f"fake: the answer to {coid} was lost and the exchange "
                               f"cannot be asked ({exc})", [coid]) from None
        if found is None:  # provably never seen: send once more
            self.resent += 1
            try:
                self.exchange.submit(wire)
            except (_AnswerLost, _NotReceived) as exc:
                raise OrderUnknown(f"fake: {coid} re-sent and its answer lost again ({exc})",
                                   [coid]) from None

    def _answer(self, wires: Iterable[Order]) -> list[Fill]:
        if not self.exchange.fills_in_answer:
            return []
        return [self._fill_to_core(f) for w in wires
                for f in self.exchange.fills_of(w.client_order_id)]

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate]:
        while not self.closed:
            queue = self.exchange.connect()
            self.connections += 1
            try:
                while True:
                    item = await queue.get()
                    if item is _DISCONNECT:
                        break  # reconnect; the exchange replays its trades
                    yield self._to_core(item)
            finally:
                self.exchange.disconnect(queue)

    async def cancel(self, client_order_id: str) -> None:
        self.exchange.cancel(fake_wire_id(client_order_id))

    async def open_orders(self) -> list[Order]:
        return [attrs.evolve(ex.order, client_order_id=self._core.get(
            ex.order.client_order_id, ex.order.client_order_id), status=ex.status)
            for ex in self.exchange.open()]

    async def close(self) -> None:
        self.closed = True


def fake_venue_plugin(exchange: FakeExchange, name: str = FAKE_VENUE) -> object:
    """A test plugin registering venue ``name``: a :class:`FakeLiveVenue` on ``exchange``.
    Load it with ``run_config.run(config, plugins={"fake": fake_venue_plugin(ex)})``."""

    class FakeVenuePlugin:
        @hookimpl
        def register_venues(self, register: Register) -> None:
            register(name, lambda settings: FakeLiveVenue(settings, exchange=exchange))

    return FakeVenuePlugin()


@pytest.fixture
def fake_exchange() -> FakeExchange:
    """A :class:`FakeExchange` with instruments ``fake:X/USD`` and ``fake:Y/USD`` at 100."""
    return FakeExchange()


@pytest.fixture
def fake_venue(fake_exchange: FakeExchange) -> FakeLiveVenue:
    """A :class:`FakeLiveVenue` on ``fake_exchange``."""
    return FakeLiveVenue(exchange=fake_exchange)


# -- the venue conformance suite ------------------------------------------------------------

class VenueHarness(abc.ABC):
    """What a venue plugin gives :class:`VenueConformance`: its venue on its own local
    exchange, two orders that behave known ways there, and faults on demand."""

    #: Seconds any expected fill, update or order state may take to show up.
    timeout_s: ClassVar[float] = 10.0
    #: Whether ``executions()`` reports a resting order OPEN with its venue order id.
    acknowledges: ClassVar[bool] = True

    @abc.abstractmethod
    def make_venue(self) -> Venue:
        """A new venue object on the local exchange (called again for a restart)."""

    @abc.abstractmethod
    def marketable_order(self, client_order_id: str) -> Order:
        """An order the exchange fills in full at once."""

    @abc.abstractmethod
    def resting_order(self, client_order_id: str) -> Order:
        """A GTC limit order that rests unfilled."""

    @abc.abstractmethod
    def orders_at_exchange(self, client_order_id: str) -> int:
        """How many orders (open or closed) the exchange holds for this client id."""

    @abc.abstractmethod
    def lose_next_answer(self) -> None:
        """The exchange acts on the next order, and its answer is lost (a timeout, a
        reset mid-body, a 5xx after acting)."""

    @abc.abstractmethod
    async def drop_executions(self) -> None:
        """The private executions connection drops; the venue must reconnect, and the
        exchange then reports recent fills again (as Kraken's snapshot does)."""

    def lose_next_request(self) -> None:
        """The next order request never reaches the exchange (502 / reset before acting).
        Optional: the default skips the test that needs it."""
        raise NotImplementedError

    async def executions_ready(self, venue: Venue) -> None:
        """Return once ``venue.executions()`` is connected (default: a few loop turns)."""
        for _ in range(10):
            await asyncio.sleep(0)


class ExecutionTape:
    """What the core would book from a venue: each fill once by ``fill_id`` (a repeat
    must be identical, else it is a conflict), order updates and fill corrections in
    arrival order."""

    def __init__(self) -> None:
        self.fills: dict[str, Fill] = {}
        self.repeats: list[Fill] = []
        self.conflicts: list[tuple[Fill, Fill]] = []
        self.updates: list[OrderUpdate] = []
        self.corrections: list[FillCorrection] = []
        self.error: BaseException | None = None
        self.ended = False  # executions() returned: a live venue's stream never should

    def add(self, item: Fill | OrderUpdate | FillCorrection) -> None:
        """Book one item."""
        if isinstance(item, OrderUpdate):
            self.updates.append(item)
            return
        if isinstance(item, FillCorrection):
            self.corrections.append(item)
            return
        seen = self.fills.get(item.fill_id)
        if seen is None:
            self.fills[item.fill_id] = item
        elif seen == item:
            self.repeats.append(item)
        else:
            self.conflicts.append((seen, item))

    def add_all(self, items: Iterable[Fill | OrderUpdate | FillCorrection]) -> None:
        """Book what ``submit`` returned."""
        for item in items:
            self.add(item)

    def fills_of(self, client_order_id: str) -> list[Fill]:
        """The distinct fills of one order."""
        return [f for f in self.fills.values() if f.client_order_id == client_order_id]

    def filled(self, client_order_id: str) -> Decimal:
        """Quantity booked for one order."""
        return sum((f.quantity for f in self.fills_of(client_order_id)), _ZERO)

    def statuses(self, client_order_id: str) -> list[OrderStatus]:
        """Every status reported for one order, in order."""
        return [u.status for u in self.updates if u.client_order_id == client_order_id]

    def venue_order_id(self, client_order_id: str) -> str | None:
        """The venue order id the updates gave one order, if any."""
        return next((u.venue_order_id for u in self.updates
                     if u.client_order_id == client_order_id and u.venue_order_id), None)

    async def pump(self, venue: Venue) -> None:
        """Consume ``venue.executions()`` into the tape until cancelled."""
        stream = venue.executions()
        try:
            async for item in stream:
                self.add(item)
            self.ended = True
        except Exception as exc:  # kept for the waiting test to raise
            self.error = exc
        finally:
            if isinstance(stream, AsyncGenerator):
                with contextlib.suppress(Exception):
                    await stream.aclose()


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], timeout_s: float,
                     what: str, tape: ExecutionTape | None = None) -> None:
    """Wait until ``predicate()`` (sync or async) holds; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if tape is not None and tape.error is not None:
            raise AssertionError(f"executions() failed while waiting for {what}: "
                                 f"{type(tape.error).__name__}: {tape.error}")
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if tape is not None and tape.ended:
            raise AssertionError(f"executions() ended while waiting for {what}")
        if loop.time() > deadline:
            raise AssertionError(f"after {timeout_s:g} s still waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def venue_session(harness: VenueHarness, resume: VenueResume | None = None
                        ) -> AsyncIterator[tuple[Venue, ExecutionTape]]:
    """A venue from ``harness`` started as the live loop starts one: ``instruments()``,
    then ``resume`` (when given), then its executions, booked onto a tape.  On exit the
    executions are cancelled and must stop (the runner waits for them at shutdown), and
    the venue is closed; every step is bounded by ``harness.timeout_s``."""
    limit = harness.timeout_s
    venue = harness.make_venue()
    tape = ExecutionTape()
    task: asyncio.Task[None] | None = None
    stuck = False
    try:
        assert await within(venue.instruments(), limit, "instruments()"), \
            "instruments() returned nothing"
        if resume is not None:
            venue.resume(resume)
        task = asyncio.get_running_loop().create_task(tape.pump(venue))
        await within(harness.executions_ready(venue), limit, "executions_ready()")
        yield venue, tape
    finally:
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=limit)
            stuck = not task.done()
        await within(venue.close(), limit, "close()")
    if stuck:  # only when the body passed: never hide its own failure
        raise AssertionError(f"executions() kept running {limit:g} s after its consumer "
                             f"was cancelled (the runner cancels it at shutdown and waits)")


async def within(awaitable: Awaitable[_T], timeout_s: float, what: str) -> _T:
    """``await awaitable``, failing the test (naming ``what``) after ``timeout_s``: a venue
    call that never returns hangs a live run, so the suite reports it instead."""
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise AssertionError(f"{what} did not return within {timeout_s:g} s") from None
        raise


def _coid(tag: str) -> str:
    # Shaped like the engine's ids: <run id>-<event>-<slot>-<n>.
    return f"c0nf0rmance1-{next(_COIDS)}-{tag}-0"


_COIDS = itertools.count(1)


async def _open_ids(venue: Venue, timeout_s: float = 10.0) -> dict[str, Order]:
    orders = await within(venue.open_orders(), timeout_s, "open_orders()")
    return {o.client_order_id: o for o in orders}


def _assert_same_order(held: Order, sent: Order) -> None:
    assert (held.instrument_id, held.side, held.quantity) == (
        sent.instrument_id, sent.side, sent.quantity), \
        f"open_orders() reports {held} for the order sent as {sent}"
    if sent.limit_price is not None:
        assert held.limit_price == sent.limit_price, \
            f"open_orders() reports limit {held.limit_price}, sent {sent.limit_price}"


class VenueConformance:
    """The venue contract every live venue plugin runs.  In the plugin's tests::

        from argus_testkit import VenueConformance, VenueHarness

        class MyHarness(VenueHarness):
            ...  # make_venue, marketable_order, resting_order, orders_at_exchange,
                 # lose_next_answer, drop_executions (+ optional lose_next_request)

        class TestMyVenueConformance(VenueConformance):
            @pytest.fixture
            def venue_harness(self, my_local_exchange) -> MyHarness:
                return MyHarness(my_local_exchange)

    (The fixture may be async, e.g. to start a websocket server in the test's loop.)
    """

    @pytest.fixture
    def venue_harness(self) -> VenueHarness:
        """Override: your :class:`VenueHarness` on your local exchange."""
        raise NotImplementedError(f"{type(self).__name__} must define a venue_harness "
                                  f"fixture returning a VenueHarness")

    @pytest.mark.asyncio
    async def test_submit_is_acknowledged_and_filled(self, venue_harness: VenueHarness
                                                     ) -> None:
        """submit -> (acknowledgement) -> fills carrying the core's client order id."""
        h = venue_harness
        async with venue_session(h) as (venue, tape):
            order = h.marketable_order(_coid("fill"))
            coid = order.client_order_id
            await _submit(venue, order, tape, h.timeout_s)
            await eventually(lambda: tape.filled(coid) >= order.quantity, h.timeout_s,
                             f"fills of {order.quantity} for {coid}", tape)
            assert tape.filled(coid) == order.quantity, "filled more than the order"
            for fill in tape.fills_of(coid):
                assert (fill.instrument_id, fill.side) == (order.instrument_id, order.side)
                assert fill.price > 0 and fill.fee.is_finite()
            assert not tape.conflicts, f"one fill id, two contents: {tape.conflicts}"
            assert h.orders_at_exchange(coid) == 1

    @pytest.mark.asyncio
    async def test_a_resting_order_is_listed_and_cancelled(self, venue_harness: VenueHarness
                                                           ) -> None:
        """A resting order is acknowledged, listed by ``open_orders`` under its client id,
        cancelled by ``cancel``, and the cancel is reported by ``executions()``."""
        h = venue_harness
        async with venue_session(h) as (venue, tape):
            order = h.resting_order(_coid("rest"))
            coid = order.client_order_id
            await _submit(venue, order, tape, h.timeout_s)
            await eventually(lambda: _listed(venue, coid), h.timeout_s,
                             f"open_orders() to list {coid}", tape)
            _assert_same_order((await _open_ids(venue, h.timeout_s))[coid], order)
            if h.acknowledges:
                await eventually(lambda: tape.venue_order_id(coid) is not None, h.timeout_s,
                                 f"an OPEN update with a venue order id for {coid}", tape)
            await _cancel(venue, coid, h.timeout_s)
            await eventually(lambda: _gone(venue, coid), h.timeout_s,
                             f"open_orders() to drop cancelled {coid}", tape)
            await eventually(lambda: OrderStatus.CANCELLED in tape.statuses(coid),
                             h.timeout_s, f"a CANCELLED update for {coid}", tape)
            assert tape.filled(coid) == 0
            assert h.orders_at_exchange(coid) == 1

    @pytest.mark.asyncio
    async def test_a_fill_repeated_after_a_reconnect_is_booked_once(
            self, venue_harness: VenueHarness) -> None:
        """After the executions connection drops, the stream comes back by itself and any
        fill it reports again has the same ``fill_id`` and contents."""
        h = venue_harness
        async with venue_session(h) as (venue, tape):
            first = h.marketable_order(_coid("before"))
            await _submit(venue, first, tape, h.timeout_s)
            await eventually(lambda: tape.filled(first.client_order_id) >= first.quantity,
                             h.timeout_s, f"fills of {first.client_order_id}", tape)
            await h.drop_executions()
            second = h.marketable_order(_coid("after"))
            await _submit(venue, second, tape, h.timeout_s)
            await eventually(lambda: tape.filled(second.client_order_id) >= second.quantity,
                             h.timeout_s, f"fills of {second.client_order_id} after the "
                             f"executions stream reconnected", tape)
            assert not tape.conflicts, f"a repeated fill id changed contents: {tape.conflicts}"
            assert tape.filled(first.client_order_id) == first.quantity, \
                "a fill reported again after the reconnect came under a new fill id"
            assert tape.filled(second.client_order_id) == second.quantity

    @pytest.mark.asyncio
    async def test_a_restarted_venue_resumes_its_orders(self, venue_harness: VenueHarness
                                                        ) -> None:
        """A new venue object, taught the run's orders by ``resume``, lists the resting
        order under its client id, maps replayed fills back, and can cancel it."""
        h = venue_harness
        resting = h.resting_order(_coid("keep"))
        done = h.marketable_order(_coid("done"))
        async with venue_session(h) as (venue, tape):
            await _submit(venue, resting, tape, h.timeout_s)
            await _submit(venue, done, tape, h.timeout_s)
            await eventually(lambda: tape.filled(done.client_order_id) >= done.quantity,
                             h.timeout_s, f"fills of {done.client_order_id}", tape)
            await eventually(lambda: _listed(venue, resting.client_order_id), h.timeout_s,
                             f"open_orders() to list {resting.client_order_id}", tape)
        booked = dict(tape.fills)
        known = VenueResume(
            (KnownOrder(attrs.evolve(resting, status=OrderStatus.OPEN),
                        tape.venue_order_id(resting.client_order_id)),
             KnownOrder(attrs.evolve(done, status=OrderStatus.FILLED),
                        tape.venue_order_id(done.client_order_id), done.quantity)),
            {fid: f.client_order_id for fid, f in booked.items()},
            max(f.ts_ns for f in booked.values()))
        async with venue_session(h, resume=known) as (venue, tape):
            held = await _open_ids(venue, h.timeout_s)
            assert set(held) == {resting.client_order_id}, \
                f"after resume, open_orders() lists {sorted(held)}"
            _assert_same_order(held[resting.client_order_id], resting)
            await _cancel(venue, resting.client_order_id, h.timeout_s)
            await eventually(lambda: _gone(venue, resting.client_order_id), h.timeout_s,
                             "the resumed venue to cancel the resting order", tape)
            for fill in tape.fills.values():  # whatever was replayed maps back, unchanged
                assert fill.fill_id in booked, f"a new fill after the restart: {fill}"
                assert fill == booked[fill.fill_id], \
                    f"replayed after the restart as {fill}, booked as {booked[fill.fill_id]}"
            assert not tape.conflicts
        assert h.orders_at_exchange(resting.client_order_id) == 1
        assert h.orders_at_exchange(done.client_order_id) == 1

    @pytest.mark.asyncio
    async def test_an_ambiguous_submit_never_makes_a_second_order(
            self, venue_harness: VenueHarness) -> None:
        """The exchange acts and the answer is lost: the venue finds the order (or raises
        ``OrderUnknown``), never sends it again; its fills arrive once."""
        h = venue_harness
        async with venue_session(h) as (venue, tape):
            order = h.marketable_order(_coid("lost"))
            coid = order.client_order_id
            h.lose_next_answer()
            try:
                await _submit(venue, order, tape, h.timeout_s)
            except OrderUnknown as exc:
                assert coid in exc.client_order_ids, "OrderUnknown must name the order"
            await eventually(lambda: tape.filled(coid) >= order.quantity, h.timeout_s,
                             f"fills of {coid} after its answer was lost", tape)
            assert h.orders_at_exchange(coid) == 1, \
                f"the exchange holds {h.orders_at_exchange(coid)} orders for {coid}"
            assert tape.filled(coid) == order.quantity and not tape.conflicts

    @pytest.mark.asyncio
    async def test_a_request_that_never_arrived_is_sent_once_more(
            self, venue_harness: VenueHarness) -> None:
        """The request never reached the exchange: proven by a look-up, then sent again
        (one order), or reported as an error with no order at the exchange."""
        h = venue_harness
        try:
            h.lose_next_request()
        except NotImplementedError:
            pytest.skip(f"{type(h).__name__} has no lose_next_request fault")
        async with venue_session(h) as (venue, tape):
            order = h.marketable_order(_coid("unseen"))
            coid = order.client_order_id
            try:
                await _submit(venue, order, tape, h.timeout_s)
            except OrderUnknown:  # "cannot tell": the order may work at the exchange
                assert h.orders_at_exchange(coid) <= 1
                return
            except VenueError as exc:  # "did not act": the core marks the order REJECTED
                held = h.orders_at_exchange(coid)
                assert held == 0, (f"submit raised VenueError ({exc}) but the exchange "
                                   f"holds {held} order(s) for {coid}: the core books it "
                                   f"REJECTED while it works; raise OrderUnknown when it "
                                   f"may have been placed")
                return
            await eventually(lambda: tape.filled(coid) >= order.quantity, h.timeout_s,
                             f"fills of {coid} once re-sent", tape)
            assert h.orders_at_exchange(coid) == 1
            assert tape.filled(coid) == order.quantity


async def _listed(venue: Venue, coid: str) -> bool:
    return coid in await _open_ids(venue)


async def _gone(venue: Venue, coid: str) -> bool:
    return coid not in await _open_ids(venue)


async def _submit(venue: Venue, order: Order, tape: ExecutionTape, timeout_s: float) -> None:
    what = f"submit({order.client_order_id})"
    tape.add_all(await within(venue.submit(order), timeout_s, what))


async def _cancel(venue: Venue, coid: str, timeout_s: float) -> None:
    await within(venue.cancel(coid), timeout_s, f"cancel({coid})")


class FakeVenueHarness(VenueHarness):
    """The conformance harness of :class:`FakeLiveVenue` (also a model for real ones)."""

    def __init__(self, exchange: FakeExchange | None = None) -> None:
        self.exchange = exchange if exchange is not None else FakeExchange()
        self.instrument = self.exchange.instruments[0]

    def make_venue(self) -> Venue:
        return FakeLiveVenue(exchange=self.exchange)

    def marketable_order(self, client_order_id: str) -> Order:
        return Order(client_order_id, self.exchange.venue, self.instrument.id, Side.BUY,
                     Decimal(2), None, OrderType.MARKET, TimeInForce.IOC, "conformance")

    def resting_order(self, client_order_id: str) -> Order:
        below = (self.exchange.prices[self.instrument.id] / 2).quantize(Decimal("0.01"))
        return Order(client_order_id, self.exchange.venue, self.instrument.id, Side.BUY,
                     Decimal(1), below, OrderType.LIMIT, TimeInForce.GTC, "conformance")

    def orders_at_exchange(self, client_order_id: str) -> int:
        return self.exchange.count(client_order_id)

    def lose_next_answer(self) -> None:
        self.exchange.fault_next_submit("answer_lost")

    def lose_next_request(self) -> None:
        self.exchange.fault_next_submit("unseen")

    async def drop_executions(self) -> None:
        await self.exchange.drop_executions()
