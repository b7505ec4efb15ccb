"""What every scanner here shares: lanes, the token -> event map, exact book walks.

Lanes.  Every opportunity here sets the core's ``Opportunity.lane``: ``executable``
(risk-free, or gated by configured thresholds: the runner trades it) or ``research``
(stored and reported, never traded by the runner), and also states it at the front of
``reason`` (``"lane=research: ..."``) for people reading a table.  Every research
opportunity also has ``risk_free=False``; :func:`lane_of` reads the lane back.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal

import attrs
import numpy as np

from argus_core import Event, FeeSchedule, Instrument, Leg, MarketState, Outcome, Side

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


def complement_of(market: MarketState, ref: TokenRef | None, iid: str) -> str | None:
    """The other token of ``iid``'s market (instrument ``meta['complement']`` first)."""
    inst = market.instruments.get(iid)
    if inst is not None and inst.meta.get("complement"):
        return str(inst.meta["complement"])
    if ref is None:
        return None
    return ref.outcome.no_instrument_id if ref.is_yes else ref.outcome.yes_instrument_id


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
              lot: Decimal = LOT) -> Walk:
    """Buy down the ask ladder while ``keep(price, unit_fee)`` holds, one fill per level (as
    the paper broker fills it), quantities rounded down to ``lot``; fees are
    ``schedule.fee`` of each level's fill, the marginal test uses ``schedule.unit_fee``."""
    qty = value = fees = Decimal(0)
    limit = Decimal(0)
    used = 0
    for price_f, size_f in levels.tolist():
        price = dec(price_f)
        if not keep(price, schedule.unit_fee(price)):
            break
        take = dec(size_f).quantize(lot, rounding=ROUND_DOWN)
        if max_qty is not None:
            take = min(take, max_qty - qty)
        if take <= 0:
            break
        qty += take
        value += price * take
        fees += schedule.fee(price, take, maker=False)
        limit = price
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
