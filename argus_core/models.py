"""The domain model: frozen, slotted, typed attrs classes.

Money, prices and quantities that reach the ledger are ``Decimal`` (exact);
analytics convert to numpy float64.  Every constructor validates at the edge:
NaN, infinite or negative sizes and crossed books raise ``DataError`` so bad
data never travels further than the parser that produced it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import attrs
import numpy as np

from argus_core.errors import DataError, shown

ZERO = Decimal(0)
ONE = Decimal(1)


def to_decimal(value: Any, *, field: str = "value") -> Decimal:
    """Convert a str/int/float/Decimal to a finite Decimal or raise ``DataError``.

    Floats go through ``repr`` so ``0.1`` becomes ``Decimal('0.1')``, not the
    binary expansion.
    """
    if isinstance(value, Decimal):
        dec = value
    elif type(value) is float:  # the common case first (a float subclass goes below)
        dec = Decimal(repr(value))
    elif isinstance(value, bool):
        raise DataError(f"{field}: expected a number, got a bool")
    elif isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, float):  # numpy's float64 reprs as "np.float64(1.5)"
        dec = Decimal(repr(float(value)))
    elif isinstance(value, str):
        text = value.strip()
        try:
            # Decimal also reads "1_0" and non-ASCII digits ("0.５"): no venue or file writes
            # numbers so; such text is damage, not a number
            if "_" in text or not text.isascii():
                raise InvalidOperation
            dec = Decimal(text)
        except InvalidOperation:
            raise DataError(f"{field}: {shown(value)} is not a number") from None
    else:
        raise DataError(f"{field}: expected a number, got {type(value).__name__}")
    if not dec.is_finite():
        raise DataError(f"{field}: {value!r} is not finite")
    return dec


#: The context for rounding money and quantities: ``quantize`` raises InvalidOperation
#: (it does not round) when the result needs more digits than the context's precision,
#: and the default 28 are reached at 1e-8 of 1e20 (a run died on a huge position).
WIDE = Context(prec=60)
#: How far from the grid (in steps) a value may lie and still be on it: values built with
#: floats (a bar's open times a spread, ``0.99 - 0.3 - 0.01``) carry ~1e-16 relative noise,
#: which must not read as off the grid nor move a price a whole tick; real prices off a
#: grid lie a visible share of a step off it.
GRID_NOISE = Decimal("1e-6")


def ticks_of(value: Decimal, step: Decimal) -> Decimal:
    """``value / step``, snapped to the whole number when within :data:`GRID_NOISE` of it:
    the count of ticks (or lots) a price (or size) is, integral exactly when it is on the
    grid.  The one rule for "on the tick" that fills, scanners and venues share."""
    steps = value / step
    whole = steps.to_integral_value()
    return whole if abs(steps - whole) <= GRID_NOISE else steps


def _finite_float(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise DataError(f"{name}: {value!r} is not finite")


def _typed(owner: str, fields: dict[str, tuple[object, type | tuple[type, ...]]]) -> None:
    """Each ``name: (value, allowed types)`` of a strategy's intent of its type: a plain
    ``"buy"`` for ``Side.BUY`` (equal, but never ``is``) or a dict for a ``Forecast``
    went unchecked into the engine and ended the run in a bare traceback."""
    for name, (value, kinds) in fields.items():
        if not isinstance(value, kinds):
            want = " or ".join("None" if k is type(None) else k.__name__ for k in (
                kinds if isinstance(kinds, tuple) else (kinds,)))
            raise DataError(f"{owner}: {name} must be {want}, got {type(value).__name__} "
                            f"{value!r:.60}")


def _non_negative(instance: Any, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if value < 0:
        raise DataError(f"{type(instance).__name__}.{attribute.name}: {value} is negative")


_INF = float("inf")

#: The highest price market data may carry (a bar's OHLC, a trade, a book level, a
#: settlement): nothing traded is quoted near it, and a bar at 1e300 crashed the equity
#: computation instead of being refused where it was read.
MAX_PRICE = 1e18
_MAX_PRICE_D = Decimal("1e18")


def _price_in_range(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value > _MAX_PRICE_D:
        raise DataError(f"{type(instance).__name__}.{attribute.name}: {value} is above "
                        f"{MAX_PRICE:g}, the highest price market data may carry")


def _positive(instance: Any, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if value <= 0:
        raise DataError(f"{type(instance).__name__}.{attribute.name}: {value} must be > 0")


#: The finest and the coarsest tick or lot an instrument may have: the order path divides
#: prices and quantities by them in a 28-digit context (a tick of 1e-999999999 overflowed
#: the paper broker's rounding), and no venue trades on a grid outside these.
GRID_STEPS = (Decimal("1e-12"), Decimal("1e9"))


def _grid_step(instance: Any, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    _positive(instance, attribute, value)
    lo, hi = GRID_STEPS
    if not lo <= value <= hi:
        raise DataError(f"{type(instance).__name__}.{attribute.name}: {value} is outside "
                        f"{lo:g} .. {hi:g} (a tick or lot no venue trades on)")


#: What an instrument may be (:attr:`Instrument.kind`): a binary contract pays 0 or 1, and
#: the settlement and fill checks read the kind, so a misspelt one ("Binary") would
#: silently trade as a spot.
INSTRUMENT_KINDS = ("spot", "binary", "option", "perp")


def _kind(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in INSTRUMENT_KINDS:
        raise DataError(f"Instrument.kind: {value!r} is not one of "
                        f"{', '.join(INSTRUMENT_KINDS)}")


def _fill_price(instance: Any, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    # A worthless expiry settles at 0 and is still a fill (round trips must see it);
    # every traded fill is at a positive price.
    if value < 0 or (value == 0 and instance.liquidity is not Liquidity.SETTLEMENT):
        raise DataError(f"Fill.price: {value} must be > 0 (0 only for a settlement fill)")


#: What a Decimal field's constructor accepts (``to_decimal`` converts it; anything else
#: raises ``DataError`` at run time).
DecimalLike = Decimal | int | float | str


# One named converter per Decimal field: mypy's attrs plugin types a field's ``__init__``
# argument from a *named* converter function (a converter built by a factory call is
# opaque to it).  Each passes its field's name to ``to_decimal`` for the error message.
def _dec_tick_size(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="tick_size")


def _dec_lot_size(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="lot_size")


def _dec_min_size(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="min_size")


def _dec_price(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="price")


def _dec_size(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="size")


def _dec_limit_price(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="limit_price")


def _dec_quantity(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="quantity")


def _dec_decision_price(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="decision_price")


def _dec_arrival(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="arrival price or spread")


def _dec_edge_per_unit(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="edge_per_unit")


def _dec_max_size(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="max_size")


def _dec_expected_profit(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="expected_profit")


def _dec_costs(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="costs")


def _dec_fee(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="fee")


def _dec_filled_quantity(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="filled_quantity")


def _dec_avg_price(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="avg_price")


def _dec_realized_pnl(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="realized_pnl")


def _dec_cash(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="cash")


def _dec_fees_paid(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="fees_paid")


class Side(enum.StrEnum):
    """Order or trade side."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells."""
        return 1 if self is Side.BUY else -1

    def opposite(self) -> Side:
        """The other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    """LIMIT rests or crosses at its limit price; MARKET takes displayed depth."""

    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    """How long an order lives. IOC fills what it can now (FAK); FOK all or nothing."""

    GTC = "gtc"
    GTD = "gtd"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"  # a resting maker order, refused if it would take liquidity


class Liquidity(enum.StrEnum):
    """Whether a fill added (maker) or removed (taker) liquidity."""

    MAKER = "maker"
    TAKER = "taker"
    SETTLEMENT = "settlement"  # resolution or expiry: the only fill that may be at price 0


class OrderStatus(enum.StrEnum):
    """Lifecycle of an order in the ledger."""

    PENDING = "pending"  # persisted, not yet acknowledged by the venue
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class RiskAction(enum.StrEnum):
    """Outcome of one pre-trade risk check."""

    ALLOW = "allow"
    SHRINK = "shrink"
    VETO = "veto"


#: Instrument ``meta`` entries saying its market takes no orders (:attr:`Instrument.takes_orders`).
NOT_ACCEPTING: tuple[tuple[str, bool], ...] = (
    ("tradeable", False), ("accepting_orders", False), ("acceptingOrders", False),
    ("closed", True))


@attrs.frozen
class Instrument:
    """A tradeable thing on one venue, with its trading rules."""

    venue: str
    symbol: str
    kind: str = attrs.field(default="spot", validator=_kind)  # INSTRUMENT_KINDS
    tick_size: Decimal = attrs.field(default=Decimal("0.01"), converter=_dec_tick_size,
                                     validator=_grid_step)
    lot_size: Decimal = attrs.field(default=Decimal("0.00000001"), converter=_dec_lot_size,
                                    validator=_grid_step)
    min_size: Decimal = attrs.field(default=ZERO, converter=_dec_min_size,
                                    validator=_non_negative)
    base: str = ""
    quote: str = "USD"
    meta: dict[str, Any] = attrs.field(factory=dict, eq=False, hash=False)

    @property
    def id(self) -> str:
        """Globally unique id: ``venue:symbol``."""
        return f"{self.venue}:{self.symbol}"

    @property
    def takes_orders(self) -> bool:
        """False when ``meta`` says the market takes no orders (:data:`NOT_ACCEPTING`: the
        Polymarket venue's ``tradeable``, Gamma's ``acceptingOrders`` / ``closed`` as a
        venue may copy them; compared by identity with the bool, so a missing key or any
        other value takes orders)."""
        meta = self.meta
        return not any(meta.get(key) is value for key, value in NOT_ACCEPTING)


@attrs.frozen
class Bar:
    """An OHLCV bar; ``ts_ns`` is the bar's *close* time, when it becomes knowable."""

    instrument_id: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __attrs_post_init__(self) -> None:
        lo, hi = self.low, self.high
        # One chained comparison accepts every valid bar (NaN fails any comparison, so it
        # falls through to the checks below, which say exactly what is wrong).
        if 0.0 < lo <= self.open <= hi <= MAX_PRICE and lo <= self.close <= hi \
                and 0.0 <= self.volume < _INF:
            return
        for name in ("open", "high", "low", "close", "volume"):
            _finite_float(f"Bar.{name}", getattr(self, name))
        if min(self.open, self.high, self.low, self.close) <= 0:
            raise DataError(f"Bar {self.instrument_id}@{self.ts_ns}: prices must be > 0")
        if self.volume < 0:
            raise DataError(f"Bar {self.instrument_id}@{self.ts_ns}: negative volume")
        if self.high < max(self.open, self.close, self.low) or \
                self.low > min(self.open, self.close):
            raise DataError(f"Bar {self.instrument_id}@{self.ts_ns}: "
                            f"high/low do not bound open/close")
        if max(self.open, self.high, self.low, self.close) > MAX_PRICE:
            raise DataError(f"Bar {self.instrument_id}@{self.ts_ns}: a price above "
                            f"{MAX_PRICE:g}, the highest price market data may carry")


@attrs.frozen
class Trade:
    """A print on the venue's tape; ``aggressor`` is the taker's side."""

    instrument_id: str
    ts_ns: int
    price: Decimal = attrs.field(converter=_dec_price, validator=[_positive, _price_in_range])
    size: Decimal = attrs.field(converter=_dec_size, validator=_positive)
    aggressor: Side = Side.BUY


@attrs.frozen(init=False)
class BookDelta:
    """One level change: ``size == 0`` removes the level.

    ``price_f`` / ``size_f``: the same as floats, what market state keeps (not part of
    equality or the serialised form).  A delta built from floats keeps them as given
    (``float(Decimal(repr(x))) == x``), so a float feed converts nothing twice.
    """

    instrument_id: str
    ts_ns: int
    side: Side
    price: Decimal
    size: Decimal
    price_f: float = attrs.field(init=False, eq=False, repr=False)
    size_f: float = attrs.field(init=False, eq=False, repr=False)

    # Written out (not attrs-generated) to keep the floats it was given; it converts and
    # validates as the generated one would, with the same messages.
    def __init__(self, instrument_id: str, ts_ns: int, side: Side, price: DecimalLike,
                 size: DecimalLike) -> None:
        if type(price) is float and 0.0 < price <= MAX_PRICE:
            price_d, price_f = Decimal(repr(price)), price
        else:
            price_d = _dec_price(price)
            if price_d <= 0:
                raise DataError(f"BookDelta.price: {price_d} must be > 0")
            if price_d > _MAX_PRICE_D:
                raise DataError(f"BookDelta.price: {price_d} is above {MAX_PRICE:g}, the "
                                f"highest price market data may carry")
            price_f = float(price_d)
        if type(size) is float and 0.0 <= size < _INF:
            size_d, size_f = Decimal(repr(size)), size
        else:
            size_d = _dec_size(size)
            if size_d < 0:
                raise DataError(f"BookDelta.size: {size_d} is negative")
            size_f = float(size_d)
        set_ = object.__setattr__
        set_(self, "instrument_id", instrument_id)
        set_(self, "ts_ns", ts_ns)
        set_(self, "side", side)
        set_(self, "price", price_d)
        set_(self, "size", size_d)
        set_(self, "price_f", price_f)
        set_(self, "size_f", size_f)


def _levels(value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return np.empty((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DataError(f"OrderBook levels must be (n, 2) price/size pairs, got shape {arr.shape}")
    return arr


def _arr_eq(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


@attrs.frozen
class OrderBook:
    """A book snapshot: ``bids`` best (highest) first, ``asks`` best (lowest) first.

    Levels are float64 ``(n, 2)`` arrays of (price, size) because books are the
    hot path; conversion to Decimal happens only when a fill is written.
    """

    instrument_id: str
    ts_ns: int
    bids: np.ndarray = attrs.field(converter=_levels, eq=attrs.cmp_using(eq=_arr_eq))
    asks: np.ndarray = attrs.field(converter=_levels, eq=attrs.cmp_using(eq=_arr_eq))

    def __attrs_post_init__(self) -> None:
        where = f"OrderBook {self.instrument_id}@{self.ts_ns}"
        for name, side in (("bids", self.bids), ("asks", self.asks)):
            if not np.all(np.isfinite(side)):
                raise DataError(f"{where}: {name} contain NaN or infinity")
            if np.any(side[:, 0] <= 0) or np.any(side[:, 1] < 0):
                raise DataError(f"{where}: {name} have a non-positive price or negative size")
            if np.any(side[:, 0] > MAX_PRICE):
                raise DataError(f"{where}: {name} have a price above {MAX_PRICE:g}, the "
                                f"highest price market data may carry")
        if len(self.bids) > 1 and np.any(np.diff(self.bids[:, 0]) >= 0):
            raise DataError(f"{where}: bids must be strictly descending (best first)")
        if len(self.asks) > 1 and np.any(np.diff(self.asks[:, 0]) <= 0):
            raise DataError(f"{where}: asks must be strictly ascending (best first)")
        if len(self.bids) and len(self.asks) and self.bids[0, 0] >= self.asks[0, 0]:
            raise DataError(
                f"{where}: crossed book (best bid {self.bids[0, 0]} >= best ask {self.asks[0, 0]})"
            )

    @property
    def best_bid(self) -> float | None:
        """Highest bid price, or None when the bid side is empty."""
        return float(self.bids[0, 0]) if len(self.bids) else None

    @property
    def best_ask(self) -> float | None:
        """Lowest ask price, or None when the ask side is empty."""
        return float(self.asks[0, 0]) if len(self.asks) else None


@attrs.frozen
class Outcome:
    """One outcome of a multi-outcome event: its YES and NO instruments."""

    name: str
    yes_instrument_id: str
    no_instrument_id: str
    placeholder: bool = False  # augmented negRisk "Other"/placeholder outcomes


def _outcomes(value: Iterable[Outcome]) -> tuple[Outcome, ...]:
    return tuple(value)


@attrs.frozen
class Event:
    """A group of mutually exclusive outcomes (a negRisk event, or a binary market).

    ``exhaustive`` is True only when exactly one outcome must resolve YES;
    scanners must not treat a non-exhaustive set as risk-free.
    """

    venue: str
    event_id: str
    title: str
    outcomes: tuple[Outcome, ...] = attrs.field(converter=_outcomes)
    neg_risk: bool = False
    exhaustive: bool = True
    closed: bool = False
    end_ts_ns: int | None = None


@attrs.frozen
class Leg:
    """One leg of an opportunity or basket."""

    instrument_id: str
    side: Side
    limit_price: Decimal = attrs.field(converter=_dec_limit_price, validator=_positive)
    quantity: Decimal = attrs.field(converter=_dec_quantity, validator=_positive)


def _legs(value: Iterable[Leg]) -> tuple[Leg, ...]:
    return tuple(value)


#: Opportunity lanes: traded by the runner, or reported only.
EXECUTABLE, RESEARCH = "executable", "research"
LANES = (EXECUTABLE, RESEARCH)


@attrs.frozen
class Opportunity:
    """A scanner's finding: legs, size, edge after costs, and why it exists.

    ``lane``: ``"executable"`` findings are traded by the runner (as one IOC basket);
    ``"research"`` ones are stored, shown by ``argus scan`` and observers, and never
    traded.  The scanner decides (e.g. an unproven relation is research), so listing a
    research scanner in a paper or live config cannot send its guesses to a venue.
    ``score``: a ranking's score (higher first in ``argus scan``; None: unranked).
    ``ts_ns``: the scan that found it in this form (a scanner may hand back a finding
    unchanged since an earlier scan as it was; the ledger keeps an id's first sighting).
    """

    opportunity_id: str
    scanner: str
    ts_ns: int
    kind: str
    legs: tuple[Leg, ...] = attrs.field(converter=_legs)
    edge_per_unit: Decimal = attrs.field(converter=_dec_edge_per_unit)
    max_size: Decimal = attrs.field(converter=_dec_max_size, validator=_non_negative)
    expected_profit: Decimal = attrs.field(converter=_dec_expected_profit)
    costs: Decimal = attrs.field(converter=_dec_costs, validator=_non_negative)
    reason: str = ""
    risk_free: bool = True
    event_id: str = ""
    lane: str = attrs.field(default=EXECUTABLE, validator=attrs.validators.in_(LANES))
    score: float | None = None


@attrs.frozen
class CancelIntent:
    """A strategy's request to cancel its own working orders (all of them, those on
    ``instrument_id``, those on one ``side``, or both): returned among its intents.  A
    cancel only removes risk, so it passes in every trading state, HALTED included, and
    needs no sizing.  An order sent but not yet acknowledged is cancelled as soon as the
    venue acknowledges it (a cancel cannot overtake the order it cancels)."""

    strategy: str
    instrument_id: str | None = None
    reason: str = ""
    side: Side | None = None

    def __attrs_post_init__(self) -> None:
        _typed("CancelIntent", {"strategy": (self.strategy, str),
                                "instrument_id": (self.instrument_id, (str, type(None))),
                                "reason": (self.reason, str),
                                "side": (self.side, (Side, type(None)))})


@attrs.frozen
class Forecast:
    """A strategy's view: return mean/stdev, or a binary win probability and payoff."""

    mu: float = 0.0
    sigma: float = 0.0
    p_win: float | None = None
    payoff: float | None = None  # net win per unit of stake at risk (binary)
    confidence: float = 1.0

    def __attrs_post_init__(self) -> None:
        for name in ("mu", "sigma", "confidence"):
            _finite_float(f"Forecast.{name}", getattr(self, name))
        if self.sigma < 0:
            raise DataError("Forecast.sigma must be >= 0")
        if not 0.0 <= self.confidence <= 1.0:
            raise DataError("Forecast.confidence must be in [0, 1]")
        if self.p_win is not None and not 0.0 <= self.p_win <= 1.0:
            raise DataError("Forecast.p_win must be in [0, 1]")


@attrs.frozen
class Intent:
    """What a strategy wants: side and size on an instrument, before risk and sizing.

    ``quantity`` of ``None`` asks the configured sizer to decide.  ``decision_price`` is
    the price the decision was made at (e.g. the close a signal used), for transaction-cost
    analysis; without it the engine records the market price when it received the intent.
    ``reason`` is stored with the order.
    """

    strategy: str
    instrument_id: str
    side: Side
    quantity: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_quantity)
    )
    limit_price: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_limit_price)
    )
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.IOC
    reason: str = ""
    forecast: Forecast | None = None
    basket_id: str | None = None
    reduce_only: bool = False
    decision_price: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_decision_price))

    def __attrs_post_init__(self) -> None:
        _typed(f"Intent {self.instrument_id!r:.60}", {
            "strategy": (self.strategy, str), "instrument_id": (self.instrument_id, str),
            "side": (self.side, Side), "order_type": (self.order_type, OrderType),
            "time_in_force": (self.time_in_force, TimeInForce), "reason": (self.reason, str),
            "forecast": (self.forecast, (Forecast, type(None))),
            "basket_id": (self.basket_id, (str, type(None))),
            "reduce_only": (self.reduce_only, bool)})
        if self.quantity is not None and self.quantity <= 0:
            raise DataError(f"Intent {self.instrument_id}: quantity must be > 0")
        if self.limit_price is not None and self.limit_price <= 0:
            raise DataError(f"Intent {self.instrument_id}: limit_price must be > 0")
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise DataError(f"Intent {self.instrument_id}: a LIMIT intent needs a limit_price")


@attrs.frozen
class Order:
    """An order as persisted in the ledger before it is sent.

    The cost fields record what transaction-cost analysis measures fills against: the
    intent's ``reason`` and ``decision_price``, and the market when the order was sent
    (``arrival_price``: the book's mid, else the last bar's close; ``arrival_spread``:
    ask minus bid, None without a two-sided book).
    """

    client_order_id: str
    venue: str
    instrument_id: str
    side: Side
    quantity: Decimal = attrs.field(converter=_dec_quantity, validator=_positive)
    limit_price: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_limit_price)
    )
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.IOC
    strategy: str = ""
    ts_ns: int = 0
    status: OrderStatus = OrderStatus.PENDING
    basket_id: str | None = None
    reduce_only: bool = False
    reason: str = ""
    decision_price: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_decision_price))
    arrival_price: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_arrival))
    arrival_spread: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_arrival))


@attrs.frozen
class Fill:
    """One execution against an order, with its fee and liquidity side."""

    fill_id: str
    client_order_id: str
    venue: str
    instrument_id: str
    side: Side
    price: Decimal = attrs.field(converter=_dec_price, validator=_fill_price)
    quantity: Decimal = attrs.field(converter=_dec_quantity, validator=_positive)
    fee: Decimal = attrs.field(converter=_dec_fee)
    liquidity: Liquidity
    ts_ns: int

    @property
    def notional(self) -> Decimal:
        """price x quantity."""
        return self.price * self.quantity


@attrs.frozen
class OrderUpdate:
    """A venue's word on one of our live orders other than a fill: acknowledged (with its
    venue order id), cancelled, expired or rejected — e.g. an IOC order's unfilled rest."""

    client_order_id: str
    status: OrderStatus
    ts_ns: int
    venue_order_id: str | None = None
    reason: str = ""


def bust_id(fill_id: str, part: str = "") -> str:
    """The id of the fill offsetting a bust of ``fill_id``: ``<fill id>:bust`` takes back
    the whole fill, ``<fill id>:bust:<part>`` one part of it (see :class:`FillCorrection`;
    the ledger's SQL matches the same two shapes with ``like``)."""
    return f"{fill_id}:bust:{part}" if part else f"{fill_id}:bust"


def busted_by(fill_id: str) -> tuple[str, str] | None:
    """``(the busted fill's id, its part or "" for the whole fill)`` when ``fill_id`` is a
    bust's offset made by :func:`bust_id`; None for any other fill."""
    if fill_id.endswith(":bust"):
        return fill_id[:-5], ""
    head, sep, part = fill_id.rpartition(":bust:")
    return (head, part) if sep and part else None


@attrs.frozen
class FillCorrection:
    """A venue's correction of a fill it reported earlier, yielded by
    :meth:`~argus_core.interfaces.Venue.executions` beside fills and order updates.

    Exactly one of: ``fee``, the venue's final fee for fill ``fill_id`` (Kalshi lists
    ``fee_cost`` only after its websocket reported the fill without one), or ``bust``,
    the trade did not happen (a Polymarket trade that ended FAILED on chain).  The
    ExecutionEngine applies it once (:meth:`~argus_core.execution.ExecutionEngine.
    apply_fill_correction`): a fee is changed in place on the fill's row (cash moves by
    old minus new), a bust is offset by a fill ``<fill_id>:bust`` (the opposite side,
    same price and quantity, the fee refunded); each leaves a ``fill_corrections`` row.
    A repeat changes nothing; a fill the ledger does not have is a risk event.

    A bust of one ``part`` of a fill (one of several trades a venue reported as one fill:
    a Polymarket post answer's ``<order hash>:0``) gives that part's ``quantity`` and
    ``price``, and ``fee`` its fee: it is offset by ``<fill_id>:bust:<part>`` at that
    price and quantity, that fee refunded.
    """

    fill_id: str
    ts_ns: int
    reason: str = ""
    fee: Decimal | None = attrs.field(default=None, converter=attrs.converters.optional(_dec_fee))
    bust: bool = False
    quantity: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_quantity))
    price: Decimal | None = attrs.field(default=None,
                                        converter=attrs.converters.optional(_dec_price))
    part: str = ""

    def __attrs_post_init__(self) -> None:
        whole = self.quantity is None and self.price is None and not self.part
        if whole and (self.fee is not None) == self.bust:
            raise DataError(f"FillCorrection {self.fill_id}: give exactly one of fee or bust")
        if not whole and not (self.bust and self.part and self.quantity is not None
                              and self.quantity > 0 and self.price is not None):
            raise DataError(f"FillCorrection {self.fill_id}: a part's bust gives bust, part, "
                            f"a positive quantity and a price")


@attrs.frozen
class KnownOrder:
    """What the ledger knows of one of this run's orders, handed to a restarted venue: the
    order as persisted, its venue order id (once acknowledged) and quantity filled so far."""

    order: Order
    venue_order_id: str | None = None
    filled_quantity: Decimal = attrs.field(default=ZERO, converter=_dec_filled_quantity)


@attrs.frozen
class VenueResume:
    """Everything a venue needs to pick up a run's orders after a restart, given by the
    ExecutionEngine before ``executions()`` starts (venues never read core tables).

    ``fill_ids`` maps every fill id already booked to its client order id (so a repeated
    fill is not reported again); ``newest_fill_ts_ns`` is the newest booked fill's time
    (or the first order's, before any fill): where a history backfill starts;
    ``fill_fees`` is each booked fill's fee as it stands (a venue that later learns a
    fill's final fee compares it, see :class:`FillCorrection`).
    """

    orders: tuple[KnownOrder, ...] = ()
    fill_ids: dict[str, str] = attrs.field(factory=dict)
    newest_fill_ts_ns: int | None = None
    fill_fees: dict[str, Decimal] = attrs.field(factory=dict)


@attrs.frozen
class Position:
    """Net holding in one instrument, with average entry and realised P&L."""

    instrument_id: str
    quantity: Decimal = attrs.field(default=ZERO, converter=_dec_quantity)
    avg_price: Decimal = attrs.field(default=ZERO, converter=_dec_avg_price)
    realized_pnl: Decimal = attrs.field(default=ZERO, converter=_dec_realized_pnl)

    def apply(self, fill: Fill) -> Position:
        """The position after ``fill`` (fees are accounted in cash, not here)."""
        signed = fill.quantity * fill.side.sign
        qty, avg, realized = self.quantity, self.avg_price, self.realized_pnl
        if qty == 0 or (qty > 0) == (signed > 0):
            new_qty = qty + signed
            avg = (avg * abs(qty) + fill.price * abs(signed)) / abs(new_qty)
            return Position(self.instrument_id, new_qty, avg, realized)
        closing = min(abs(qty), abs(signed))
        direction = 1 if qty > 0 else -1
        realized += (fill.price - avg) * closing * direction
        new_qty = qty + signed
        if new_qty == 0:
            avg = ZERO
        elif (new_qty > 0) != (qty > 0):  # flipped through zero
            avg = fill.price
        return Position(self.instrument_id, new_qty, avg, realized)


@attrs.frozen
class Portfolio:
    """A snapshot of the account that risk checks and sizers read."""

    cash: Decimal = attrs.field(converter=_dec_cash)
    positions: dict[str, Position] = attrs.field(factory=dict)
    marks: dict[str, Decimal] = attrs.field(factory=dict)
    fees_paid: Decimal = attrs.field(default=ZERO, converter=_dec_fees_paid)
    # (equity, gross exposure), worked out on first use: every risk check and the sizer
    # of one order read the same immutable snapshot, so its N positions are summed once.
    _sums: tuple[Decimal, Decimal] | None = attrs.field(default=None, init=False, eq=False,
                                                        repr=False)

    def position(self, instrument_id: str) -> Position:
        """The position in ``instrument_id`` (flat when none)."""
        return self.positions.get(instrument_id) or Position(instrument_id)

    def mark(self, instrument_id: str) -> Decimal:
        """Last mark price (falls back to average entry)."""
        mark = self.marks.get(instrument_id)
        return mark if mark is not None else self.position(instrument_id).avg_price

    def _valued(self) -> tuple[Decimal, Decimal]:
        """``(equity, gross exposure)``, summed once per snapshot in one pass."""
        sums = self._sums
        if sums is None:
            marks = self.marks
            held = gross = ZERO
            # The same additions, in the same order, as sum() from ZERO over the positions
            # (a flat position's term too), then the cash plus that sum: identical Decimals.
            for i, p in self.positions.items():
                mark = marks.get(i)
                value = p.quantity * (mark if mark is not None else p.avg_price)
                held += value
                gross += abs(value)
            sums = (self.cash + held, gross)
            object.__setattr__(self, "_sums", sums)  # a cache, not state: frozen otherwise
        return sums

    @property
    def equity(self) -> Decimal:
        """Cash plus positions marked to market."""
        return self._valued()[0]

    @property
    def gross_exposure(self) -> Decimal:
        """Sum of absolute marked position values."""
        return self._valued()[1]


@attrs.frozen
class RiskDecision:
    """One check's verdict on an intent: allow, shrink to ``quantity``, or veto."""

    action: RiskAction
    check: str
    reason: str = ""
    quantity: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_dec_quantity)
    )

    @classmethod
    def allow(cls, check: str) -> RiskDecision:
        """Shorthand for an allow (one shared, immutable instance per check name: every
        order asks each check, and an allow carries nothing else)."""
        if cls is not RiskDecision:
            return cls(RiskAction.ALLOW, check)
        decision = _ALLOWS.get(check)
        if decision is None:
            decision = _ALLOWS[check] = cls(RiskAction.ALLOW, check)
        return decision

    @classmethod
    def veto(cls, check: str, reason: str) -> RiskDecision:
        """Shorthand for a veto with its reason."""
        return cls(RiskAction.VETO, check, reason)


_ALLOWS: dict[str, RiskDecision] = {}


@attrs.frozen
class Signal:
    """A named numeric feature a component publishes (regime, P(change), z-score...)."""

    name: str
    instrument_id: str
    ts_ns: int
    value: float


@attrs.frozen
class BookStatus:
    """A venue's word on a book: ``live=False`` marks it stale (untradeable) until a
    fresh snapshot arrives (after a checksum mismatch, a sequence gap or a disconnect)."""

    instrument_id: str
    ts_ns: int
    live: bool
    reason: str = ""


@attrs.frozen
class Settlement:
    """An instrument expired or resolved: positions close at ``price`` (options at
    intrinsic value, a resolved prediction-market token at 1 or 0).  ``price`` None: the
    market was voided, and every position is returned at its own cost (its average entry
    price: the round trip nets zero before fees); see :attr:`void`."""

    instrument_id: str
    ts_ns: int
    price: Decimal | None = attrs.field(
        converter=attrs.converters.optional(_dec_price),
        validator=[attrs.validators.optional(_non_negative), _price_in_range])
    reason: str = ""

    @property
    def void(self) -> bool:
        """Voided: no outcome, positions returned at cost."""
        return self.price is None


#: Everything a venue stream or a recording may carry.  An ``Instrument`` in a stream
#: lists a new instrument (or new rules of a known one) mid-run: a market listed after the
#: start, one that stopped taking orders.
MarketEvent = (Bar | Trade | BookDelta | OrderBook | Event | Signal | BookStatus | Settlement
               | Instrument)
