"""The ``crossvenue`` scanner: one outcome bought on Kalshi, its complement on Polymarket.

For every mapped pair (:mod:`argus_crossvenue.mapping`) let ``A`` be the pair's outcome:
``K_A`` / ``K_notA`` the Kalshi contracts (the mapped side and the other side of the
market), ``P_A`` / ``P_notA`` the Polymarket tokens (the mapped token when the relation is
``same``, its complement when it is ``complement``, and the other token of the market).
A basket of one unit of ``A`` on one venue and one unit of ``not A`` on the other pays
exactly $1 whatever happens -- when both venues resolve the same way.  Two baskets per
pair are priced, each only with the two ask ladders it buys from:

* ``K_A + P_notA`` and ``K_notA + P_A``.

Buying ``not A`` is how "sell high" is done without inventory: a Kalshi YES bid at ``b``
is a NO ask at ``1 - b``, a Polymarket YES bid a NO-token ask; so "the same outcome's bid
on one venue above its ask on the other" is priced as the complementary basket too.

**Capacity.**  Both ask ladders are walked together, level against level, in segments of
``q = min(left at Kalshi level, left at Polymarket level)`` units; a segment is taken while
its marginal profit per unit after fees::

    1 - a_K - a_P - f_K(a_K) - f_P(a_P)  >  min_edge   (and > 0)

where ``f_V(p)`` is venue ``V``'s per-unit taker fee at price ``p`` (``FeeSchedule.unit_fee``:
Kalshi ``0.07 p (1 - p)``, Polymarket ``rate (p (1 - p))^exponent``).  Every segment end
``Q`` (floored to both venues' lot sizes, at least both minimum sizes) is then priced
exactly as the fills would be -- one fill per price level on each venue, each fill's fee
from the venue's schedule and rounded as the venue rounds it (Kalshi up to the cent,
Polymarket down to 0.00001)::

    profit(Q) = Q - sum(price x qty) - sum(fee(price, qty))    over both venues' fills

and the ``Q`` of the largest exact profit (the smallest such ``Q`` on a tie) is the
opportunity's ``max_size``; ``expected_profit = profit(Q)``, ``costs`` = both venues'
fees, ``edge_per_unit = profit(Q) / Q``.  Legs are IOC limit buys at the worst level each
venue's walk reached (on its tick grid), thinner book first (``first_leg``): a live
composite venue sends that leg first and sizes the second by its fill.

**Risk.**  A pair whose resolution sources or settlement dates differ is reported with
``risk_free = False`` and the reason; it is traded only with ``trade_not_risk_free``,
otherwise it lands in the research lane.  Text similarity never makes a pair: only the
mapping file does.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np

from argus_core import (
    FeeSchedule,
    Instrument,
    Leg,
    MarketState,
    Opportunity,
    Scanner,
    Side,
    to_decimal,
)
from argus_crossvenue.config import POLYMARKET, CrossVenueSettings
from argus_crossvenue.mapping import SAME, Pair, load_mapping

log = logging.getLogger(__name__)

ONE = Decimal(1)
ZERO = Decimal(0)
Ladder = list[tuple[Decimal, Decimal]]


@attrs.frozen
class VenueLeg:
    """One side of a priced basket: an instrument, its ask ladder and its fees."""

    instrument_id: str
    asks: Ladder
    fees: FeeSchedule
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal(1)
    min_size: Decimal = ZERO

    @property
    def venue(self) -> str:
        """The owning venue (the instrument id's prefix)."""
        return self.instrument_id.partition(":")[0]


@attrs.frozen
class Priced:
    """A basket priced at size ``quantity``: each leg's fills (price, qty), limit and fees."""

    quantity: Decimal
    profit: Decimal
    fees: Decimal
    cost: Decimal
    limits: tuple[Decimal, Decimal]
    fills: tuple[Ladder, Ladder]


def take(asks: Ladder, quantity: Decimal) -> Ladder:
    """The fills of a buy of ``quantity`` walking ``asks``: one (price, qty) per level."""
    out: Ladder = []
    left = quantity
    for price, size in asks:
        if left <= 0:
            break
        qty = min(size, left)
        out.append((price, qty))
        left -= qty
    return out


def price_at(a: VenueLeg, b: VenueLeg, quantity: Decimal) -> Priced:
    """The exact basket of ``quantity`` units: fills per level, fees per fill as each
    venue's schedule charges them (with its rounding)."""
    fa, fb = take(a.asks, quantity), take(b.asks, quantity)
    cost = sum((p * q for p, q in (*fa, *fb)), ZERO)
    fees = (sum((a.fees.fee(p, q, maker=False) for p, q in fa), ZERO)
            + sum((b.fees.fee(p, q, maker=False) for p, q in fb), ZERO))
    limits = (_on_tick(fa[-1][0], a.tick_size), _on_tick(fb[-1][0], b.tick_size))
    return Priced(quantity, quantity - cost - fees, fees, cost, limits, (fa, fb))


def _on_tick(price: Decimal, tick: Decimal) -> Decimal:
    """A buy limit on the tick grid (up: never below the level it must reach)."""
    return (price / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def _floor(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


def segment_ends(a: VenueLeg, b: VenueLeg, min_edge: Decimal = ZERO) -> list[Decimal]:
    """Cumulative sizes at the end of every jointly walked segment whose marginal profit
    per unit after fees is ``> 0`` and ``> min_edge`` (see the module docstring)."""
    ends: list[Decimal] = []
    i = j = 0
    left_a = a.asks[0][1] if a.asks else ZERO
    left_b = b.asks[0][1] if b.asks else ZERO
    total = ZERO
    while i < len(a.asks) and j < len(b.asks):
        pa, pb = a.asks[i][0], b.asks[j][0]
        margin = ONE - pa - pb - a.fees.unit_fee(pa) - b.fees.unit_fee(pb)
        if margin <= 0 or margin <= min_edge:
            break
        q = min(left_a, left_b)
        total += q
        ends.append(total)
        left_a -= q
        left_b -= q
        if left_a <= 0:
            i += 1
            left_a = a.asks[i][1] if i < len(a.asks) else ZERO
        if left_b <= 0:
            j += 1
            left_b = b.asks[j][1] if j < len(b.asks) else ZERO
    return ends


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def common_step(a: Decimal, b: Decimal) -> Decimal:
    """The smallest quantity on both lot grids (their least common multiple): 0.03 and
    0.02 lots meet at 0.06, where the larger lot alone (0.03) is off the 0.02 grid."""
    scale = Decimal(10) ** max(_places(a), _places(b))
    return Decimal(math.lcm(int(a * scale), int(b * scale))) / scale


def best_basket(a: VenueLeg, b: VenueLeg, min_edge: Decimal = ZERO) -> Priced | None:
    """The most profitable exact basket over the walk's segment ends, or None when no size
    (on both lot grids, at least both minimum sizes) makes money after fees, or none keeps
    ``min_edge`` per unit once priced exactly (fees rounded per fill can take a walked
    level's margin below it)."""
    step = common_step(a.lot_size, b.lot_size)
    floor_size = max(a.min_size, b.min_size, step)
    best: Priced | None = None
    for end in segment_ends(a, b, min_edge):
        qty = _floor(end, step)
        if qty < floor_size or (best is not None and qty <= best.quantity):
            continue
        priced = price_at(a, b, qty)
        if priced.profit > 0 and priced.profit > min_edge * qty and (
                best is None or priced.profit > best.profit):
            best = priced
    return best


def _fills_text(fills: Ladder, shown: int = 6) -> str:
    """``qty@price + ...`` of one venue's fills; a walk through many levels is shortened
    to its first and last levels and the count between (the reason is stored per
    finding)."""
    parts = [f"{q.normalize():f}@{p.normalize():f}" for p, q in fills]
    if len(parts) > shown:
        parts = [*parts[:shown - 2], f"... {len(parts) - shown + 1} more levels ...",
                 parts[-1]]
    return " + ".join(parts)


def _not_complement(mapped: Instrument, other: Instrument | None, other_id: str) -> str:
    """Why ``other`` (``other_id``) cannot be the complement token of ``mapped`` ("" when
    it can): itself, not a listed Polymarket token, one whose own complement is another
    token, or one with the same outcome.  Buying "both" would then buy one outcome
    twice: no $1 payout at all."""
    if other_id == mapped.id:
        return "is the token itself"
    if other is None or other.venue != mapped.venue:
        return f"is not a listed {mapped.venue} token"
    back = other.meta.get("complement")
    if isinstance(back, str) and back != mapped.id:
        return f"names {back!r} as its own complement"
    mine, theirs = mapped.meta.get("token_outcome"), other.meta.get("token_outcome")
    if isinstance(mine, str) and isinstance(theirs, str) and \
            mine.strip().lower() == theirs.strip().lower():
        return f"is outcome {theirs!r} too"
    return ""


def _utc_day(when: dt.datetime | None) -> dt.date | None:
    return when.astimezone(dt.UTC).date() if when is not None else None


def ladder(levels: np.ndarray) -> Ladder:
    """A book side (float (n, 2) array, best first) as exact (price, size) pairs."""
    return [(to_decimal(p), to_decimal(q)) for p, q in levels.tolist() if q > 0]


class CrossVenueScanner(Scanner):
    """Kalshi x Polymarket arbitrage over the mapped pairs (see the module docstring)."""

    name: ClassVar[str] = "crossvenue"

    def __init__(self, settings: CrossVenueSettings | None = None,
                 pairs: list[Pair] | None = None) -> None:
        self.settings = settings or CrossVenueSettings()
        if pairs is None:
            mapping: Path | None = self.settings.mapping
            pairs = load_mapping(mapping) if mapping is not None else []
        self.pairs = pairs
        self._warned: set[str] = set()
        #: (events_version, token -> its event's end_ts_ns, the market state it is of)
        self._ends: tuple[int, dict[str, int], MarketState | None] = (-1, {}, None)

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every profitable basket of every mapped pair, most profitable first."""
        found: list[Opportunity] = []
        for pair, routes in self._planned(market):
            for route in routes:
                opp = self._price(pair, route, market, ts_ns)
                if opp is not None:
                    found.append(opp)
        found.sort(key=lambda o: o.expected_profit, reverse=True)
        return found

    def _planned(self, market: MarketState) -> list[tuple[Pair, list[tuple[str, str]]]]:
        """Each pair with its routes, one pair per market pair.  Two pairs on the same
        Kalshi market and the same Polymarket market (by either token) must pair the same
        contracts: a repeat is dropped; pairs that disagree (one says the token is the
        Kalshi side's outcome, the other its complement) are all dropped, since one of them
        would buy the same outcome on both venues and call it risk-free."""
        groups: dict[tuple[str, frozenset[str]], list[tuple[Pair, list[tuple[str, str]]]]] = {}
        for pair in self.pairs:
            routes = self._routes(pair, market)
            if routes:
                key = (pair.kalshi.ticker, frozenset(p for _k, p in routes))
                groups.setdefault(key, []).append((pair, routes))
        out = []
        for (ticker, _tokens), members in groups.items():
            first_pair, first_routes = members[0]
            names = ", ".join(repr(p.name) for p, _r in members)
            if any(set(r) != set(first_routes) for _p, r in members[1:]):
                self._warn_once(f"conflict:{names}", (
                    f"pairs {names} map Kalshi market {ticker} and the same Polymarket "
                    "market as opposite outcomes (relation / side / token disagree); all "
                    "skipped until the mapping is mended"))
                continue
            if len(members) > 1:
                self._warn_once(f"repeat:{names}", (
                    f"pairs {names} map the same Kalshi and Polymarket contracts; only "
                    f"{first_pair.name!r} is scanned"))
            out.append((first_pair, first_routes))
        return out

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("crossvenue: %s", message)

    def _routes(self, pair: Pair, market: MarketState) -> list[tuple[str, str]]:
        """(Kalshi instrument, Polymarket instrument) of each complementary basket."""
        mapped = market.instruments.get(pair.polymarket.instrument_id)
        if mapped is None:
            self._warn_once(pair.name, f"pair {pair.name!r}: Polymarket token "
                            f"{pair.polymarket.token_id} is not among the venue's instruments")
            return []
        other = mapped.meta.get("complement")
        if not isinstance(other, str):
            self._warn_once(pair.name, f"pair {pair.name!r}: no complement token known for "
                            f"{pair.polymarket.instrument_id}")
            return []
        why = _not_complement(mapped, market.instruments.get(other), other)
        if why:
            self._warn_once(pair.name, f"pair {pair.name!r}: the complement of "
                            f"{mapped.id} is listed as {other!r}, which {why}; pair skipped")
            return []
        seen = str(mapped.meta.get("token_outcome", pair.polymarket.outcome))
        if seen.strip().lower() != pair.polymarket.outcome.strip().lower():
            self._warn_once(pair.name, f"pair {pair.name!r}: token {pair.polymarket.token_id} "
                            f"is outcome {seen!r} at Polymarket, the mapping says "
                            f"{pair.polymarket.outcome!r}; pair skipped")
            return []
        p_a, p_not_a = ((mapped.id, other) if pair.relation == SAME else (other, mapped.id))
        k_a, k_not_a = pair.kalshi.instrument_id, pair.kalshi.complement_id
        missing = [iid for iid in (k_a, k_not_a) if iid not in market.instruments]
        if missing:
            self._warn_once(pair.name, f"pair {pair.name!r}: Kalshi market "
                            f"{pair.kalshi.ticker} is not among the venue's instruments "
                            f"({', '.join(missing)}); pair skipped")
            return []
        quotes = {market.instruments[iid].quote for iid in (k_a, k_not_a, p_a, p_not_a)}
        if len(quotes) > 1:
            self._warn_once(pair.name, f"pair {pair.name!r}: the venues quote in different "
                            f"currencies ({', '.join(sorted(quotes))}): a $1 payout on one "
                            "is not one on the other; pair skipped")
            return []
        return [(k_a, p_not_a), (k_not_a, p_a)]

    def _leg(self, market: MarketState, instrument_id: str) -> VenueLeg | None:
        """The leg's ask ladder, or None when it cannot be bought now: no live book, a
        book crossed or with a malformed level (``L2Book.fault``), a market that takes no
        orders (``Instrument.takes_orders``: closed, not accepting orders, not
        tradeable), or one already resolved (a ``Settlement``: its quotes are left over)."""
        ok, _why = market.tradeable(instrument_id)
        if not ok or instrument_id in market.settled:
            return None
        book = market.books[instrument_id]
        if book.fault():
            return None
        asks = ladder(book.ask_levels())
        if not asks:
            return None
        if asks[0][0] >= ONE:
            # a contract paying $1 asked at $1 or more: a book in cents (Kalshi's REST
            # gives both), or a malformed one; said once, never priced
            self._warn_once(f"units:{instrument_id}", (
                f"{instrument_id}: best ask {asks[0][0]} is not below $1 (prices in cents, "
                "not dollars?); leg skipped"))
            return None
        inst: Instrument | None = market.instruments.get(instrument_id)
        if inst is None:
            return VenueLeg(instrument_id, asks, market.fee_schedule(instrument_id))
        if not inst.takes_orders:
            return None
        return VenueLeg(instrument_id, asks, market.fee_schedule(instrument_id),
                        inst.tick_size, inst.lot_size, inst.min_size)

    def _price(self, pair: Pair, route: tuple[str, str], market: MarketState, ts_ns: int
               ) -> Opportunity | None:
        k_leg, p_leg = (self._leg(market, iid) for iid in route)
        if k_leg is None or p_leg is None:
            return None
        basket = best_basket(k_leg, p_leg, self.settings.min_edge)
        if basket is None:
            return None
        qty = basket.quantity
        legs = [Leg(k_leg.instrument_id, Side.BUY, basket.limits[0], qty),
                Leg(p_leg.instrument_id, Side.BUY, basket.limits[1], qty)]
        if self._polymarket_first(k_leg, p_leg, basket):
            legs.reverse()
        why_not = pair.differences() + self._listed_differences(pair, market)
        fills = "; ".join(f"{leg.venue} {_fills_text(f)}"
                          for leg, f in zip((k_leg, p_leg), basket.fills, strict=True))
        reason = (f"{pair.name}: buy {route[0]} and {route[1]} ({pair.relation} pair): "
                  f"{qty} x $1 payout - cost {basket.cost} - fees {basket.fees} = "
                  f"{basket.profit} [{fills}]")
        if why_not:
            reason += "; NOT risk-free: " + "; ".join(why_not)
        executable = not why_not or self.settings.trade_not_risk_free
        # Both books' times and the basket itself: the runner acts on an id once, so a
        # basket changed by one leg's book (its time no newer than the other's) is new.
        stamps = ":".join(str(market.books[iid].ts_ns) for iid in route)
        opportunity_id = (f"crossvenue:{pair.name}:{route[0]}:{route[1]}:{stamps}:"
                          f"{qty.normalize():f}@{basket.limits[0].normalize():f}/"
                          f"{basket.limits[1].normalize():f}")
        return Opportunity(
            opportunity_id=opportunity_id,
            scanner=self.name, ts_ns=ts_ns, kind="cross_complementary", legs=tuple(legs),
            edge_per_unit=basket.profit / qty, max_size=qty,
            expected_profit=basket.profit, costs=basket.fees, reason=reason,
            risk_free=not why_not, event_id=pair.name,
            lane="executable" if executable else "research")

    def _listed_differences(self, pair: Pair, market: MarketState) -> list[str]:
        """Where the venues' own listings contradict the mapping's settlement dates: the
        Kalshi market's ``close_time`` (instrument meta) and the end of the Polymarket
        token's event (``Event.end_ts_ns``), compared as UTC days when the venue lists
        one.  A mapping written for another meeting, or a market moved by its venue, is
        then not risk-free, whatever the file says."""
        out = []
        listed = {"kalshi": _utc_day(self._kalshi_close(market, pair)),
                  "polymarket": _utc_day(self._polymarket_end(market, pair))}
        for venue, side in (("kalshi", pair.kalshi), ("polymarket", pair.polymarket)):
            day = listed[venue]
            if day is not None and day != side.settles:
                out.append(f"{venue} lists the market ending {day.isoformat()}, the mapping "
                           f"says it settles {side.settles.isoformat()}")
        return out

    @staticmethod
    def _kalshi_close(market: MarketState, pair: Pair) -> dt.datetime | None:
        inst = market.instruments.get(pair.kalshi.instrument_id)
        raw = inst.meta.get("close_time") if inst is not None else None
        if not isinstance(raw, str) or not raw.strip():
            return None
        try:
            when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)

    def _polymarket_end(self, market: MarketState, pair: Pair) -> dt.datetime | None:
        if self._ends[0] != market.events_version or self._ends[2] is not market:
            ends: dict[str, int] = {}
            for ev in market.events.values():
                if ev.end_ts_ns is None:
                    continue
                for o in ev.outcomes:
                    ends.setdefault(o.yes_instrument_id, ev.end_ts_ns)
                    ends.setdefault(o.no_instrument_id, ev.end_ts_ns)
            self._ends = (market.events_version, ends, market)
        end_ns = self._ends[1].get(pair.polymarket.instrument_id)
        if end_ns is None:
            return None
        return dt.datetime.fromtimestamp(end_ns / 1e9, tz=dt.UTC)

    def _polymarket_first(self, k_leg: VenueLeg, p_leg: VenueLeg, basket: Priced) -> bool:
        """Whether the Polymarket leg goes first (``first_leg``; "thinner": the book with
        less depth up to its limit, ties to Kalshi)."""
        first = self.settings.first_leg
        if first != "thinner":
            return first == POLYMARKET
        depth = [sum((q for p, q in leg.asks if p <= limit), ZERO)
                 for leg, limit in zip((k_leg, p_leg), basket.limits, strict=True)]
        return depth[1] < depth[0]

