"""The component interfaces plugins implement.

The hooks in :mod:`argus_core.hookspecs` hand the core *factories*; the objects
those factories build implement one of the base classes here.  The hot path
calls these typed methods directly, never ``pm.hook.*`` per tick.

Every factory is called as ``factory(settings)``, where ``settings`` is the
registering plugin's validated config object (see ``config_class``) or
``None`` when the plugin declares no settings.
"""

from __future__ import annotations

import abc
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from argus_core.models import (
    CancelIntent,
    Fill,
    FillCorrection,
    Forecast,
    Instrument,
    Intent,
    KnownOrder,
    MarketEvent,
    Opportunity,
    Order,
    OrderUpdate,
    Portfolio,
    RiskDecision,
    VenueResume,
)

if TYPE_CHECKING:
    from argus_core.market_state import MarketState


#: The quantity :meth:`FeeSchedule.unit_fee` probes ``fee`` at: per-fill rounding (e.g.
#: 0.00001 of the quote currency) then moves the per-unit fee by less than 1e-16.
_UNIT_FEE_PROBE = Decimal(10) ** 12


@attrs.frozen
class FeeSchedule:
    """Fees of one venue: maker/taker in basis points of notional, a fixed fee per fill and
    a commission per unit of quantity (e.g. per option contract).

    A venue whose fee depends on the price in another way (Polymarket's taker fee
    scales with ``p (1 - p)``) subclasses this and overrides :meth:`fee`; the paper
    broker only ever calls ``fee``.

    Scanners and sizers get the schedule in force for an instrument from the market
    state (``market.fee_schedule(instrument_id)``; the runner binds the venue's schedule
    with any ``[paper]`` overrides).  They price an exact fill with :meth:`fee` and a
    cost estimate (a kernel's marginal cost of one more unit) with :meth:`unit_fee`, so
    a venue's fee formula lives in its schedule alone.
    """

    maker_bps: Decimal = Decimal(0)
    taker_bps: Decimal = Decimal(0)
    fixed_per_fill: Decimal = Decimal(0)
    per_unit: Decimal = Decimal(0)

    def fee(self, price: Decimal, quantity: Decimal, *, maker: bool) -> Decimal:
        """Fee for one fill of ``quantity`` at ``price`` (quote currency)."""
        bps = self.maker_bps if maker else self.taker_bps
        return (price * quantity * bps / Decimal(10_000) + self.fixed_per_fill
                + self.per_unit * quantity)

    def unit_fee(self, price: Decimal, *, maker: bool = False) -> Decimal:
        """Marginal fee of one more unit at ``price``: the per-unit part of :meth:`fee`,
        without the fixed per-fill charge and before per-fill rounding.

        What a scanner's or sizer's cost estimate adds per unit (a numba kernel reads it
        once per price level; the exact fill cost is always :meth:`fee`).  The default
        derives it from :meth:`fee` itself, ``(fee(p, Q) - fee(p, 0)) / Q`` at a very
        large ``Q``, so a subclass that overrides only ``fee`` gets it right whenever its
        fee is linear in quantity (every schedule in Argus); a schedule whose fee is not
        (tiered volume discounts) overrides this too.
        """
        big = _UNIT_FEE_PROBE
        return (self.fee(price, big, maker=maker) - self.fee(price, Decimal(0), maker=maker)
                ) / big


class Venue(abc.ABC):
    """A market: instruments, a market-data stream, fees and (optionally) live order entry.

    Capabilities are class attributes so the runner can refuse a config whose
    strategy needs something the venue lacks, before any order exists.
    """

    name: ClassVar[str] = ""
    supports_live_orders: ClassVar[bool] = False
    supports_post_only: ClassVar[bool] = False
    supports_baskets: ClassVar[bool] = False  # ``submit_basket`` sends all legs at once
    #: A reduce-only order trades at most the position the venue itself holds (the
    #: adapter sizes it to that, or refuses it): a flatten the venue refused is sent
    #: again reduce-only, never as a plain order (which, with the ledger and the venue
    #: disagreeing, could open the reverse position).
    guards_reduce_only: ClassVar[bool] = False
    #: Its stream starts again from the first recorded event on every run (a file, a
    #: recording): a resumed run skips, by number, the events it has already seen, in
    #: paper mode too.  A live stream (False) starts afresh where the market is now.
    replays_recording: ClassVar[bool] = False
    time_in_force: ClassVar[tuple[str, ...]] = ("gtc", "ioc", "fok")
    #: Seconds after which a book with no update is not tradeable (``[run] stale_after_s``
    #: overrides it; 0 there means never).  Venues set what fits their feed's heartbeat.
    default_stale_after_s: ClassVar[float] = 30.0

    @abc.abstractmethod
    async def instruments(self) -> Sequence[Instrument]:
        """The instruments this venue configuration trades."""

    def guards_reduce_only_on(self, instrument_id: str) -> bool:
        """:attr:`guards_reduce_only` for ``instrument_id`` (a venue wrapping others
        answers for the one that trades it)."""
        return self.guards_reduce_only

    @abc.abstractmethod
    def stream(self) -> AsyncIterator[MarketEvent]:
        """Market events in time order; replay venues end, live ones run until closed."""

    async def snapshot(self) -> list[MarketEvent]:
        """One-shot fetch of the current state (events, instruments' books) for ``argus scan``.

        Default: nothing; venues with REST snapshots override it.
        """
        return []

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """Fees for ``instrument_id`` (default: none)."""
        return FeeSchedule()

    def expected_events(self) -> int | None:
        """How many events ``stream()`` will yield, when cheap to know (a replay of a file);
        the CLI's progress bar shows a percentage and an ETA from it.  Default: unknown."""
        return None

    def live_problems(self) -> list[str]:
        """What stops this venue, as configured, from trading live (missing credentials, a
        secret that does not resolve...).  Checked before a live run starts, so a bad live
        config fails with every reason instead of after its first order."""
        return []

    def resume(self, known: VenueResume) -> None:  # noqa: B027  (optional hook)
        """Learn this run's orders and booked fills from the ledger (live mode, before
        ``executions()`` starts, on every start including the first): how a restarted venue
        maps its open orders and trades back to client order ids.  Default: nothing."""

    async def submit(self, order: Order) -> list[Fill]:
        """Send ``order`` live exactly once; return fills known at once.  Only called in
        live mode.  An ambiguous outcome (timeout, lost answer, 5xx, reset) must be
        resolved by asking the venue whether it has the order (by client order id, across
        open and closed orders and trades), and re-sent only when it provably never saw
        it; when that cannot be decided, raise :class:`~argus_core.errors.OrderUnknown`.
        Raise :class:`~argus_core.errors.VenueError` only for a refusal (the venue did not
        act: the order is marked REJECTED); any other exception counts as an unknown
        outcome (the order stays pending until the venue's executions or a restart's
        look-up settle it; see ``argus_core.execution.outcome_unknown``)."""
        raise NotImplementedError(f"venue {self.name!r} has no live order entry")

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        """Send every leg of a basket (an arbitrage) together, exactly once; only called
        in live mode when ``supports_baskets``.  A partial basket raises
        :class:`~argus_core.errors.BasketIncomplete` with the executed legs' fills; the
        venue unwinds nothing (the ExecutionEngine evens the legs out with ordinary
        reduce-only orders)."""
        raise NotImplementedError(f"venue {self.name!r} has no basket order entry")

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """This account's executions as they happen (private stream or polling): fills, and
        order updates (acknowledged with a venue order id, cancelled, expired, rejected),
        each carrying the core's client order id, in the venue's order.  Consumed in live
        mode beside ``stream()``; a fill may be repeated (after a reconnect) and is booked
        once by ``fill_id``.

        A :class:`~argus_core.models.FillCorrection` amends a fill reported earlier: its
        final ``fee`` (a fee the first report did not state), or ``bust`` (the trade did
        not happen).  Yield it after the fill it corrects; a repeat changes nothing, a
        later different fee is a second correction.

        Default: no executions stream (every fill comes back from ``submit``).
        """
        return
        yield  # pragma: no cover  (makes this an async generator)

    async def lookup(self, order: Order) -> OrderUpdate | None:
        """What the venue knows of ``order`` (by its client order id, open or closed), asked
        after a restart for orders persisted but never acknowledged, and during a run for an
        order whose send had no answer (``OrderUnknown``; asked again, less and less
        often, while the answer is None or the venue cannot be asked): OPEN with the venue
        order id when it has (or had) the order — fills and the final state then come
        through ``executions()`` — CANCELLED when it provably never saw it, None when it
        cannot tell (the order stays PENDING until ``executions()`` settles it).  Raise
        :class:`~argus_core.errors.OrderUnknown` when the venue cannot be asked.

        Default: None."""
        return None

    async def cancel(self, client_order_id: str) -> None:
        """Cancel a live order by client order id."""
        raise NotImplementedError(f"venue {self.name!r} has no live order entry")

    async def open_orders(self) -> list[Order]:
        """Live orders the venue still holds (used to reconcile after a restart)."""
        return []

    async def close(self) -> None:  # noqa: B027  (optional hook; most venues hold nothing)
        """Release connections."""


class Strategy(abc.ABC):
    """Turns market events into intents.

    A strategy keeps its state in plain JSON-able data so the runner can
    checkpoint it and hand it to a replacement during a hot-swap.
    """

    name: ClassVar[str] = ""
    #: The instrument ids whose events this strategy needs (None: every event); events
    #: of no instrument always arrive.  The loop routes by it, so one slot per symbol
    #: costs one strategy call per event, not one per slot.
    listens_to: frozenset[str] | None = None

    @abc.abstractmethod
    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        """React to one event; return zero or more intents (a ``CancelIntent`` cancels
        this strategy's working orders)."""

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[Intent | CancelIntent]:
        """React to a fill of one of this strategy's own orders, already booked
        (``ctx.portfolio`` holds it); return intents as ``on_event`` does, and they take
        the same path (sizing, risk, the ledger before the venue).  A replay or paper fill
        is heard within the event that made it, before the strategies hear that event
        (one made by an order sent in answer to the event: right after); a live fill as
        soon as the loop is free (the next event, or at once in a quiet market), not at
        the instrument's next market event.  Heard once, across a crash too: a fill
        committed but not yet heard when the process stopped is heard after the restart
        (the checkpoint keeps it), once its instrument has a book, bar or print again
        (so is one the restart's reconciliation found).  Not for settlements (the
        ``Settlement`` event says them).  Default: nothing."""
        return ()

    def get_state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints and hot-swap hand-over (a value read as a
        secret is checkpointed as ``[REDACTED]``: keep credentials out of it)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:  # noqa: B027  (stateless default)
        """Restore state produced by ``get_state`` (possibly by an older version)."""


class StrategyContext:
    """What a strategy may read: the time, its portfolio, its orders not yet final, the
    market state (with the run's forecasters), pricers, the run's mode and the trading
    state.

    ``portfolio`` and ``orders`` may be given as values or as zero-argument callables
    that build them; the loop passes callables, so a strategy that never looks at them
    on a bar costs nothing (a plain class for that reason: each is computed on first
    read).
    """

    __slots__ = ("_orders", "_portfolio", "market", "mode", "pricers", "trading_state",
                 "ts_ns")

    def __init__(self, ts_ns: int, portfolio: Portfolio | Callable[[], Portfolio],
                 market: MarketState, pricers: Mapping[str, Pricer] | None = None,
                 mode: str = "replay", trading_state: str = "active",
                 orders: Sequence[KnownOrder] | Callable[[], Sequence[KnownOrder]] | None
                 = None) -> None:
        self.ts_ns = ts_ns
        self._portfolio = portfolio
        self._orders = orders
        self.market = market
        self.pricers: Mapping[str, Pricer] = pricers if pricers is not None else {}
        self.mode = mode  # "replay" | "paper" | "live": e.g. a model gated to paper
        #: "active" | "reducing" | "halted": what the risk engine will let through now
        self.trading_state = trading_state

    @property
    def portfolio(self) -> Portfolio:
        """The strategy's own book as of this event (the whole account when the run
        keeps one book)."""
        p = self._portfolio
        if not isinstance(p, Portfolio):
            p = self._portfolio = p()
        return p

    @property
    def orders(self) -> Sequence[KnownOrder] | None:
        """The strategy's own orders not yet final (pending, open, partly filled), oldest
        first, as the ledger knows them now, each with its status and filled quantity.
        An order that ended without the strategy asking (refused, never placed, expired,
        cancelled by a halt) is gone from here: a quoting strategy reads it to stop
        believing in a quote the venue does not hold.  None (unknown) in a context built
        outside a run (a unit test, a research tool); a run always gives them."""
        o = self._orders
        if callable(o):
            o = self._orders = tuple(o())
        return o


class Scanner(abc.ABC):
    """Whole-market state -> opportunities, once per cycle."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """All opportunities in the current state, best first."""

    def get_state(self) -> dict[str, Any]:
        """JSON-able state a scanner keeps across scans (windows, persistence streaks),
        stored in every checkpoint under its configured name and handed to
        :meth:`set_state` when the run resumes.  Default: none."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:  # noqa: B027  (stateless default)
        """Restore state produced by ``get_state`` (possibly by an older version)."""


class RiskCheck(abc.ABC):
    """A pre-trade check: every check runs on every intent; any veto wins.

    Counters and windows a check keeps itself survive a restart through
    ``get_state`` / ``set_state`` (as a strategy's do); what every check shares (time,
    trading state, equity peaks, recent order times, the loss streak) is the
    :class:`RiskContext`, which the runner checkpoints already.

    Exits — reduce-only orders that shrink a position, including the kill switch's
    flattening orders — are judged only by checks with ``checks_exits = True`` (e.g. a
    fat-finger price check); exposure limits must never keep a position open.
    """

    name: ClassVar[str] = ""
    checks_exits: ClassVar[bool] = False

    @abc.abstractmethod
    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        """Judge ``intent`` at ``quantity`` and reference ``price``."""

    def on_fill(self, fill: Fill, portfolio: Portfolio,  # noqa: B027  (optional observer)
                ctx: RiskContext) -> None:
        """Observe a fill (for rate, loss-streak and drawdown accounting)."""

    def get_state(self) -> dict[str, Any]:
        """JSON-able state of the check's own (beyond the shared :class:`RiskContext`),
        stored in every checkpoint under the check's registered name and handed to
        :meth:`set_state` when the run resumes.  Default: none."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:  # noqa: B027  (stateless default)
        """Restore state produced by ``get_state`` (possibly by an older version)."""


#: How many of the newest order times ``RiskContext.order_times_ns`` keeps (and a
#: checkpoint with it): a run's list does not grow with its orders.
RECENT_ORDERS = 1000


@attrs.define
class RiskContext:
    """Shared state the risk checks read and update: time, trading state, equity
    high-water mark, day-start equity, recent order times (the newest
    :data:`RECENT_ORDERS`, oldest first) and the loss streak.

    ``market`` is the loop's market state, so a check can read published signals
    (``ctx.market.signal("p_change", instrument_id)``) and book liveness.
    """

    ts_ns: int = 0
    trading_state: str = "active"  # active | reducing | halted (see argus_core.risk)
    state_reason: str = ""
    peak_equity: Decimal = Decimal(0)
    day_start_equity: Decimal = Decimal(0)
    day: int = -1
    order_times_ns: list[int] = attrs.field(factory=list)
    consecutive_losses: int = 0
    # Realised P&L already judged per instrument, and the open group of simultaneous fills
    # (one basket's legs close together and count as one result): [ts_ns, pnl as str].
    realized_seen: dict[str, str] = attrs.field(factory=dict)
    loss_group: list[Any] = attrs.field(factory=list)
    market: MarketState | None = None
    # Set by the engine before each intent is judged.  ``pending``: what the run's orders
    # not yet final still want to trade on the intent's instrument and side (0 for an
    # exit: the engine bounds exits by the position itself, and nothing may hold one).
    # ``pending_exposure``: what every working order that is not reduce-only could add to
    # gross exposure if it filled (per instrument, its larger side's remaining quantity at
    # its limit or the touch).  Position and exposure limits count them as filled: ten
    # resting buys of the limit's size are the limit once, not ten times.  A basket's legs
    # judged before the intent count as working.  ``pending_sides``: the same per
    # instrument, ``{instrument_id: (buys' notional, sells' notional)}``.
    pending: Decimal = Decimal(0)
    pending_exposure: Decimal = Decimal(0)
    pending_sides: dict[str, tuple[Decimal, Decimal]] = attrs.field(factory=dict)
    #: how many legs of the intent's basket were judged before it (none is sent yet)
    pending_legs: int = 0


class Sizer(abc.ABC):
    """Turns an intent (and its forecast) into a quantity.

    Fees: a sizer whose ``size`` declares the keyword parameter ``fees`` is given the
    instrument's :class:`FeeSchedule` in force (what its fills will pay; see
    ``MarketState.fee_schedule``), e.g. to size a binary bet on the price plus
    ``fees.unit_fee(price)``.  A sizer without the parameter is called as before.

    ``portfolio`` is the intent's strategy slot's own book (its capital, cash and
    positions; the whole account when the run keeps one book).  A sizer that allocates
    the whole account across strategies itself sets ``whole_account = True`` and is
    given the account.
    """

    name: ClassVar[str] = ""
    whole_account: ClassVar[bool] = False

    @abc.abstractmethod
    def size(self, intent: Intent, price: Decimal, portfolio: Portfolio,
             instrument: Instrument | None, fees: FeeSchedule | None = None) -> Decimal:
        """Quantity to trade (0 to skip); ``fees`` is the instrument's fee schedule."""


class Forecaster(abc.ABC):
    """A probability model: the market state as of ``ts_ns`` -> a :class:`Forecast` for
    one instrument (``p_win`` for a binary outcome, ``mu``/``sigma`` for a return), or
    None when it has no view.  It must read nothing stamped after ``ts_ns``, and say in
    ``Forecast.confidence`` how far to trust it."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        """The forecast for ``instrument_id`` at ``ts_ns``."""


#: A pricing model's parameters by name, e.g. Heston's ``{"v0": 0.04, "kappa": 2.0,
#: "theta": 0.04, "sigma": 0.5, "rho": -0.7}``.  Each pricer documents the names it reads
#: and refuses a mapping that lacks one or has one it does not know, naming them.
ModelParams = Mapping[str, float]


def _option_kind(kind: str) -> str:
    k = str(kind).lower()
    if k in ("call", "c"):
        return "call"
    if k in ("put", "p"):
        return "put"
    raise ValueError(f"option kind must be 'call' or 'put', got {kind!r}")


@attrs.frozen
class OptionLeg:
    """One European option leg of a position held to expiry: ``kind`` "call" or "put",
    ``strike``, and ``quantity`` per unit of underlying (> 0 long, < 0 short)."""

    kind: str = attrs.field(converter=_option_kind)
    strike: float = attrs.field(converter=float)
    quantity: float = attrs.field(default=1.0, converter=float)

    @strike.validator
    def _check_strike(self, attribute: Any, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"option leg strike must be a finite number > 0, got {value}")

    @quantity.validator
    def _check_quantity(self, attribute: Any, value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"option leg quantity must be finite, got {value}")


@attrs.frozen
class PricingResult:
    """A pricer's answer.

    ``price``: the value of the leg asked about (``quantity`` x one option's price);
    ``p_profit`` / ``expected_pnl``: probability that a position makes money at expiry and
    its mean P&L per unit of underlying.  Fields a call does not compute are None.
    ``stderr`` is the standard error of the main figure (0 for an exact, analytic answer;
    for ``p_profit`` the binomial ``sqrt(p (1 - p) / paths)``); ``backend`` says where it
    ran (e.g. "cuda", "cpu", "numpy"); ``details`` holds engine-specific extras.
    """

    pricer: str
    backend: str
    price: float | None = None
    p_profit: float | None = None
    expected_pnl: float | None = None
    stderr: float = 0.0
    paths: int = 0
    details: Mapping[str, Any] = attrs.field(factory=dict)


class Pricer(abc.ABC):
    """A pricing engine strategies can ask for (e.g. Heston probability of profit).

    Strategies find pricers by name in ``ctx.pricers`` and talk to them only through
    the methods here and the core types :class:`OptionLeg`, :data:`ModelParams` and
    :class:`PricingResult`, never through a pricer plugin's own classes.  Only
    :meth:`describe` is required; a pricer implements the questions it can answer and
    :meth:`supports` tells a strategy which (the others raise ``NotImplementedError``
    naming the pricer), so a strategy can fall back when its pricer cannot help.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the engine offers and which backend it runs on."""

    def supports(self, method: str) -> bool:
        """Whether this pricer implements ``method`` (``"price_option"``,
        ``"probability_of_profit"``)."""
        impl = getattr(type(self), method, None)
        return impl is not None and impl is not getattr(Pricer, method, None)

    def price_option(self, leg: OptionLeg, spot: float, t_years: float, *,
                     rate: float = 0.0, dividend_yield: float = 0.0,
                     model: ModelParams | None = None, paths: int | None = None,
                     seed: int | None = None) -> PricingResult:
        """Value of ``leg`` (``result.price``) on an underlying at ``spot`` with
        ``t_years`` to expiry, continuously compounded ``rate`` and ``dividend_yield``,
        under ``model``; ``paths`` / ``seed`` steer a Monte Carlo engine (None: the
        pricer's default, an analytic one where it has it)."""
        raise NotImplementedError(f"pricer {self.name or type(self).__name__!r} does not "
                                  f"implement price_option")

    def probability_of_profit(self, legs: Sequence[OptionLeg], spot: float, t_years: float,
                              premium: float, *, rate: float = 0.0,
                              dividend_yield: float = 0.0, model: ModelParams | None = None,
                              paths: int | None = None, seed: int | None = None
                              ) -> PricingResult:
        """Probability (``result.p_profit``) that ``legs`` held to expiry plus ``premium``
        (net credit received per unit of underlying, > 0 for a credit spread) end with a
        profit, risk-neutral (drift ``rate - dividend_yield``), under ``model``."""
        raise NotImplementedError(f"pricer {self.name or type(self).__name__!r} does not "
                                  f"implement probability_of_profit")

