"""What every scanner here shares: lanes, the token -> event map, exact book walks.

Lanes.  Every opportunity here sets the core's ``Opportunity.lane``: ``executable``
(risk-free, or gated by configured thresholds: the runner trades it) or ``research``
(stored and reported, never traded by the runner), and also states it at the front of
``reason`` (``"lane=research: ..."``) for people reading a table.  Every research
opportunity also has ``risk_free=False``; :func:`lane_of` reads the lane back.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, localcontext

import attrs
import numpy as np

from argus_core import (
    Event,
    FeeSchedule,
    Instrument,
    Leg,
    MarketState,
    Opportunity,
    Outcome,
    Side,
    ticks_of,
)

EXECUTABLE = "executable"  # the values of argus_core.Opportunity.lane
RESEARCH = "research"
LANES = (EXECUTABLE, RESEARCH)
NS_PER_YEAR = 365 * 24 * 3600 * 10**9
NS_PER_HOUR = 3600 * 10**9
LOT = Decimal("0.01")
EDGE_QUANTUM = Decimal("1e-8")


def lane_reason(lane: str, text: str) -> str:
    """``reason`` text carrying the lane: ``"lane=<lane>: <text>"``."""
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}; one of {LANES}")
    return f"lane={lane}: {text}"


def lane_of(reason_or_opportunity: object) -> str:
    """The lane an opportunity (or its ``reason``) was reported in ("" when none)."""
    lane = getattr(reason_or_opportunity, "lane", None)
    if isinstance(lane, str):
        return lane
    reason = getattr(reason_or_opportunity, "reason", reason_or_opportunity)
    if isinstance(reason, str) and reason.startswith("lane="):
        return reason[5:].split(":", 1)[0]
    return ""


def dec(value: float) -> Decimal:
    """A book float as the exact decimal it was parsed from (``repr`` round-trips)."""
    return Decimal(repr(float(value)))


@attrs.frozen
class TokenRef:
    """Where a token sits: its event, its outcome and whether it is that outcome's YES."""

    event: Event
    outcome: Outcome
    is_yes: bool


def token_map(market: MarketState) -> dict[str, TokenRef]:
    """Every token of every known event -> its :class:`TokenRef` (binary markets list
    each token once, as the YES of the outcome it names)."""
    out: dict[str, TokenRef] = {}
    for ev in market.events.values():
        for o in ev.outcomes:
            out.setdefault(o.yes_instrument_id, TokenRef(ev, o, True))
            if ev.neg_risk:
                out.setdefault(o.no_instrument_id, TokenRef(ev, o, False))
    return out


_EventRefs = dict[str, tuple[Event, list[tuple[str, TokenRef]]]]
_REFS: weakref.WeakKeyDictionary[MarketState, tuple[int, dict[str, TokenRef], _EventRefs]] = (
    weakref.WeakKeyDictionary())


def token_refs(market: MarketState) -> dict[str, TokenRef]:
    """:func:`token_map` of ``market``, memoised until its ``events_version`` moves, and then
    rebuilt reusing the :class:`TokenRef` objects of every event object left unchanged
    (so a consumer can tell a token whose event changed by identity)."""
    hit = _REFS.get(market)
    if hit is not None and hit[0] == market.events_version:
        return hit[1]
    old: _EventRefs = hit[2] if hit is not None else {}
    per_event: _EventRefs = {}
    out: dict[str, TokenRef] = {}
    for eid, ev in market.events.items():
        cached = old.get(eid)
        if cached is None or cached[0] is not ev:
            entries = []
            for o in ev.outcomes:
                entries.append((o.yes_instrument_id, TokenRef(ev, o, True)))
                if ev.neg_risk:
                    entries.append((o.no_instrument_id, TokenRef(ev, o, False)))
            cached = (ev, entries)
        per_event[eid] = cached
        for iid, ref in cached[1]:
            out.setdefault(iid, ref)  # token_map's rule: the first event listing it
    _REFS[market] = (market.events_version, out, per_event)
    return out


def core_event_id(market: MarketState, iid: str) -> str:
    """The key of ``market.events`` of the event listing ``iid`` ("" when none)."""
    ref = token_refs(market).get(iid)
    return ref.event.event_id if ref is not None else ""


def tradeable(market: MarketState, iid: str, *, settled_ok: bool = False) -> bool:
    """Whether a scanner may use ``iid``'s book now: ``market.tradeable`` (live, not stale,
    its levels sound and not crossed: ``L2Book.fault``), not settled (the core's market
    gate refuses every order on a settled or voided instrument, whatever its book still
    shows; ``settled_ok``: the ``resolution`` scanner's flag of a resolved token), its
    market taking orders (``Instrument.takes_orders``) and its event not closed.  The
    reference loops ask this per book; the touch table's
    :meth:`~argus_scanners_polymarket.touch.TouchTable.usable` is the same, vectorised."""
    if not settled_ok and iid in market.settled:
        return False
    if not market.tradeable(iid)[0]:
        return False
    inst = market.instruments.get(iid)
    if inst is not None and not inst.takes_orders:
        return False
    ref = token_refs(market).get(iid)
    return ref is None or not ref.event.closed


def complement_of(market: MarketState, ref: TokenRef | None, iid: str) -> str | None:
    """The other token of ``iid``'s market (instrument ``meta['complement']`` first)."""
    inst = market.instruments.get(iid)
    if inst is not None and inst.meta.get("complement"):
        return str(inst.meta["complement"])
    if ref is None:
        return None
    return ref.outcome.no_instrument_id if ref.is_yes else ref.outcome.yes_instrument_id


def lots_below(quantity: Decimal | None, lot: Decimal = LOT) -> Decimal | None:
    """``quantity`` rounded down to whole ``lot`` s (None stays None): a size cap from the
    settings (``max_size = 7.555``) must not put a quantity off the venue's lot into a leg."""
    if quantity is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 60  # a cap of 1e30 shares still quantizes to the lot
        return quantity.quantize(lot, rounding=ROUND_DOWN)


@attrs.frozen
class Walk:
    """An exact taker walk of one side of a book: quantity, cost, fees, deepest price."""

    quantity: Decimal
    value: Decimal
    fees: Decimal
    limit: Decimal
    levels: int


def walk_asks(levels: np.ndarray, schedule: FeeSchedule, *,
              keep: Callable[[Decimal, Decimal], bool], max_qty: Decimal | None = None,
              lot: Decimal = LOT, tick: Decimal | None = None) -> Walk:
    """Buy down the ask ladder while ``keep(price, unit_fee)`` holds, one fill per level (as
    the paper broker fills it), quantities (and ``max_qty``) rounded down to ``lot``; fees
    are ``schedule.fee`` of each level's fill, the marginal test uses ``schedule.unit_fee``.
    With ``tick`` (the tick in force) the limit is :func:`buy_limit` of the deepest level
    and the walk stops before a level no limit on that grid reaches."""
    max_qty = lots_below(max_qty, lot)
    qty = value = fees = Decimal(0)
    limit = Decimal(0)
    used = 0
    for price_f, size_f in levels.tolist():
        price = dec(price_f)
        reach = price if tick is None else buy_limit(price, tick)
        if reach is None or not keep(price, schedule.unit_fee(price)):
            break
        take = dec(size_f).quantize(lot, rounding=ROUND_DOWN)
        if max_qty is not None:
            take = min(take, max_qty - qty)
        if take <= 0:
            break
        qty += take
        value += price * take
        fees += schedule.fee(price, take, maker=False)
        limit = reach
        used += 1
        if max_qty is not None and qty >= max_qty:
            break
    return Walk(qty, value, fees, limit, used)


#: one ask level as a walk reads it: price, taker unit fee, lot-rounded size, fee of it all
Level = tuple[Decimal, Decimal, Decimal, Decimal]


class Ladders:
    """Each book's ask ladder converted once per book version for :func:`walk_ladder`
    (the ``Decimal`` prices, unit fees, lot-rounded sizes and their fees), so a scanner
    re-walking an unchanged book against a new value (a fair price that moves with time)
    pays comparisons, not fee arithmetic."""

    def __init__(self, lot: Decimal = LOT) -> None:
        self.lot = lot
        self._cache: dict[str, tuple[int, FeeSchedule, list[Level]]] = {}

    def get(self, iid: str, version: int, levels: np.ndarray, schedule: FeeSchedule
            ) -> list[Level]:
        """The ladder of ``iid`` at book ``version``."""
        hit = self._cache.get(iid)
        # an equal schedule prices alike (a venue answering a new, equal object per call,
        # as the Polymarket venue does live, reuses the ladder too)
        if hit is not None and hit[0] == version and (hit[1] is schedule
                                                      or hit[1] == schedule):
            return hit[2]
        out = []
        for price_f, size_f in levels.tolist():
            price = dec(price_f)
            take = dec(size_f).quantize(self.lot, rounding=ROUND_DOWN)
            out.append((price, schedule.unit_fee(price), take,
                        schedule.fee(price, take, maker=False)))
        self._cache[iid] = (version, schedule, out)
        return out


def walk_ladder(ladder: list[Level], schedule: FeeSchedule, *,
                keep: Callable[[Decimal, Decimal], bool], max_qty: Decimal | None = None,
                lot: Decimal = LOT, tick: Decimal | None = None) -> Walk:
    """:func:`walk_asks` over a :class:`Ladders` ladder (of the same ``lot``): the same
    walk, to the digit."""
    max_qty = lots_below(max_qty, lot)
    qty = value = fees = Decimal(0)
    limit = Decimal(0)
    used = 0
    for price, unit_fee, size, fee in ladder:
        reach = price if tick is None else buy_limit(price, tick)
        if reach is None or not keep(price, unit_fee):
            break
        take = size
        if max_qty is not None:
            take = min(take, max_qty - qty)
        if take <= 0:
            break
        qty += take
        value += price * take
        fees += fee if take == size else schedule.fee(price, take, maker=False)
        limit = reach
        used += 1
        if max_qty is not None and qty >= max_qty:
            break
    return Walk(qty, value, fees, limit, used)


def buy_leg(iid: str, walk: Walk) -> Leg:
    """The IOC buy leg that takes ``walk``."""
    return Leg(iid, Side.BUY, walk.limit, walk.quantity)


def edge(profit: Decimal, qty: Decimal) -> Decimal:
    """Profit per unit, rounded down to 1e-8 (as the negRisk scanner reports it)."""
    return (profit / qty).quantize(EDGE_QUANTUM, rounding=ROUND_DOWN)


def top(market: MarketState, iid: str) -> tuple[float | None, float | None, float, float]:
    """Best bid, best ask and their sizes of ``iid`` (None / 0 for an empty side)."""
    book = market.books.get(iid)
    if book is None:
        return None, None, 0.0, 0.0
    bids, asks = book.bid_levels(), book.ask_levels()
    bid = float(bids[0, 0]) if len(bids) else None
    ask = float(asks[0, 0]) if len(asks) else None
    return (bid, ask, float(bids[0, 1]) if len(bids) else 0.0,
            float(asks[0, 1]) if len(asks) else 0.0)


def instrument_of(market: MarketState, iid: str) -> Instrument | None:
    """``iid``'s instrument; for an unknown ``polymarket:`` id a stand-in with
    Polymarket's usual rules (binary, tick 0.01, lot 0.01, no minimum); else None."""
    inst = market.instruments.get(iid)
    if inst is not None:
        return inst
    venue, _, symbol = iid.partition(":")
    if venue != "polymarket" or not symbol:
        return None
    return Instrument(venue, symbol, kind="binary", tick_size="0.01", lot_size="0.01")


#: The signal a venue publishes when a market's tick size changes (the Polymarket venue's
#: websocket ``tick_size_change``: ``Signal("polymarket.tick_size", token, ts, new tick)``).
TICK_SIGNAL = "polymarket.tick_size"


def tick_in_force(market: MarketState, inst: Instrument) -> Decimal:
    """``inst``'s tick size now: the newest :data:`TICK_SIGNAL` for it when the venue
    published one (a positive number below 1), else the instrument's.  Polymarket moves a
    market's tick between 0.01 and 0.001 as its price nears the ends; a quote on the old
    grid is refused by the venue (0.001 steps on a 0.01 market) or misses the touch."""
    value = market.signal(TICK_SIGNAL, inst.id)
    if value is not None and math.isfinite(value) and 0.0 < value < 1.0:
        # The venue replaces the instrument just before it publishes the signal, so for a
        # moment one of the two is the old tick: the coarser grid is on both (Polymarket's
        # ticks divide one another), so a price on it is never refused.
        return max(dec(value), inst.tick_size)
    return inst.tick_size


def taker_tick(market: MarketState, iid: str) -> Decimal:
    """The tick a taker limit on ``iid`` must be on: :func:`tick_in_force` of its
    instrument (:func:`instrument_of`'s stand-in: 0.01 for an unknown Polymarket id)."""
    inst = instrument_of(market, iid)
    return tick_in_force(market, inst) if inst is not None else LOT


def buy_limit(price: Decimal, tick: Decimal) -> Decimal | None:
    """A taker BUY's limit that reaches an ask at ``price``: ``price`` ceiled to ``tick``.

    After a tick change (0.001 -> 0.01) the book keeps levels of the old grid (0.954); the
    venue refuses a limit off the new grid, while a limit of 0.96 fills the 0.954 level at
    its own price (the leg's quantity is the walk's, so it takes the same levels).  None
    when no limit in ``[tick, 1 - tick]`` reaches it (0.995 on a 0.01 tick)."""
    if price % tick == 0:
        limit = price  # on the grid: the level's own price, as written
    else:
        limit = ticks_of(price, tick).to_integral_value(ROUND_CEILING) * tick
    return limit if tick <= limit <= 1 - tick else None


def event_id_for(market: MarketState, iid: str, core_event_id: str = "") -> str:
    """``Opportunity.event_id`` of a finding on ``iid``: the instrument's ``meta
    ["event_id"]`` (the Gamma event) when present and non-empty, else ``core_event_id``
    (the key of ``market.events``).  One rule for every scanner (and the negRisk plugin),
    so the ranking's per-event terms and the report's grouping agree: the Polymarket venue
    makes each binary market its own core event, several per Gamma event."""
    inst = market.instruments.get(iid)
    if inst is not None:
        gamma = inst.meta.get("event_id")
        if gamma is not None and str(gamma) != "":
            return str(gamma)
    return core_event_id


def field_copier(*fields: str) -> Callable[..., Opportunity]:
    """A function ``copy(o, *values)``: a new :class:`~argus_core.Opportunity` with ``o``'s
    fields and ``fields`` set to ``values`` (in that order), without re-running attrs'
    converters and validators (the values must already be what they would produce).

    Generated like attrs generates its own ``__init__``: one slot write per field, no loop
    (0.8 us a finding where ``attrs.evolve``, re-running every converter, takes 9 us)."""
    names = [a.name for a in attrs.fields(Opportunity)]
    unknown = [f for f in fields if f not in names]
    if unknown:
        raise ValueError(f"field_copier: not Opportunity fields: {unknown}")
    env: dict[str, object] = {"_new": object.__new__, "_cls": Opportunity}
    env.update((f"_set_{n}", getattr(Opportunity, n).__set__) for n in names)
    body = "".join(f"    _set_{n}(new, o.{n})\n" for n in names if n not in fields)
    body += "".join(f"    _set_{n}(new, {n})\n" for n in fields)
    exec(  # generated from the class's own field names, no outside input
        f"def copy(o, {', '.join(fields)}):\n    new = _new(_cls)\n{body}    return new\n", env)
    fn: Callable[..., Opportunity] = env["copy"]  # type: ignore[assignment]  # exec'd above
    return fn


_restamp = field_copier("ts_ns")
_FIELDS = ("opportunity_id", "scanner", "ts_ns", "kind", "legs", "edge_per_unit", "max_size",
           "expected_profit", "costs", "reason", "risk_free", "event_id", "lane")


def _slot_builder() -> Callable[..., Opportunity]:
    """``build(*values)``: a new ``Opportunity`` with :data:`_FIELDS` set to ``values`` and
    ``score`` None, slot by slot (generated like :func:`field_copier`)."""
    names = [a.name for a in attrs.fields(Opportunity)]
    if set(names) != {*_FIELDS, "score"}:
        raise ImportError(f"argus_core.Opportunity's fields changed: {names}")
    env: dict[str, object] = {"_new": object.__new__, "_cls": Opportunity}
    env.update((f"_set_{n}", getattr(Opportunity, n).__set__) for n in names)
    body = "".join(f"    _set_{n}(new, {n})\n" for n in _FIELDS) + "    _set_score(new, None)\n"
    exec(  # generated from the class's own field names, no outside input
        f"def build({', '.join(_FIELDS)}):\n    new = _new(_cls)\n{body}    return new\n", env)
    fn: Callable[..., Opportunity] = env["build"]  # type: ignore[assignment]  # exec'd above
    return fn


_build = _slot_builder()


def opportunity(opportunity_id: str, scanner: str, ts_ns: int, kind: str,
                legs: tuple[Leg, ...], edge_per_unit: Decimal, max_size: Decimal,
                expected_profit: Decimal, costs: Decimal, reason: str, risk_free: bool,
                event_id: str, lane: str) -> Opportunity:
    """``Opportunity(...)`` of these fields (keywords of the same names, ``score`` None),
    without attrs' converters when the values are already what they would make: ``legs``
    a tuple, the four amounts finite ``Decimal`` (``max_size`` and ``costs`` not
    negative), ``lane`` one of :data:`LANES`.  The converters return such values
    unchanged, so the object is the one the constructor builds, field for field; any
    other value goes through the constructor (its conversion, or its error).  What a
    scanner pays for each finding it rebuilds every scan."""
    if (type(legs) is tuple and lane in LANES and type(edge_per_unit) is Decimal
            and type(max_size) is Decimal and type(expected_profit) is Decimal
            and type(costs) is Decimal and edge_per_unit.is_finite() and max_size.is_finite()
            and expected_profit.is_finite() and costs.is_finite() and max_size >= 0
            and costs >= 0):
        return _build(opportunity_id, scanner, ts_ns, kind, legs, edge_per_unit, max_size,
                      expected_profit, costs, reason, risk_free, event_id, lane)
    return Opportunity(
        opportunity_id=opportunity_id, scanner=scanner, ts_ns=ts_ns, kind=kind, legs=legs,
        edge_per_unit=edge_per_unit, max_size=max_size, expected_profit=expected_profit,
        costs=costs, reason=reason, risk_free=risk_free, event_id=event_id, lane=lane)


def restamp(o: Opportunity, ts_ns: int) -> Opportunity:
    """``o`` as found at scan time ``ts_ns`` (``o`` itself when already so).

    ``attrs.evolve`` would run every converter and validator again (~9 us); this copies the
    already-validated fields into a new frozen instance (<1 us), which is what lets a scan
    that reuses thousands of cached findings stay within milliseconds.  ``o`` is never
    mutated (it may be held by a previous scan's caller)."""
    return o if o.ts_ns == ts_ns else _restamp(o, ts_ns)


def reworded(o: Opportunity, reason: str) -> Opportunity:
    """A copy of ``o`` with another ``reason`` (fields copied as :func:`restamp` does)."""
    new = _restamp(o, o.ts_ns)
    _set_reason(new, reason)
    return new


_set_reason = Opportunity.reason.__set__  # type: ignore[attr-defined]  # an attrs slot


def by_profit(found: list[Opportunity]) -> list[Opportunity]:
    """Most profitable first, ties in their given order (what every scanner returns)."""
    found.sort(key=lambda o: o.expected_profit, reverse=True)
    return found
