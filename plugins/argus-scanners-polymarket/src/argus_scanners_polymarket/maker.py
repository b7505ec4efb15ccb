"""``maker``: resting quotes one tick inside the spread where they leave an edge.

For each binary token with a two-sided, tradeable book (best bid ``b``, best ask ``a``,
tick ``t`` from the instrument, mid ``m = (a + b) / 2``):

* **Prices**: ``bid_q = b + t`` when it stays below ``a``; ``ask_q = a - t`` when it stays
  above ``b`` (both on the tick grid: ``b`` is floored and ``a`` ceiled to it first).  When
  the spread is two ticks both land on the mid; only the side with the larger edge stays.
* **Size**: ``quote_size``, raised to the instrument's ``min_size`` (and to the rewards
  program's ``rewards_min_size`` when rewards are counted), rounded up to the lot.
* **Inventory** ``q`` (shares held): the published ``Signal`` named ``inventory_signal``
  for the token when there is one, else ``inventory[token]`` from the settings, else 0
  (a scanner sees the market state, not the portfolio).  Reservation price
  ``r = m - skew_per_share * q`` (long: quote lower; short: higher).  No bid when
  ``q >= max_inventory``, no ask when ``q <= -max_inventory``.
* **Liquidity reward** ``rho`` per filled share: with a rewards program in the instrument's
  ``meta`` (``rewards_daily_rate`` USD/day, ``rewards_max_spread`` in cents,
  ``rewards_min_size``) and ``reward_pool_share > 0``: ``rho = rewards_daily_rate *
  reward_pool_share / expected_daily_fills`` for a quote within ``rewards_max_spread / 100``
  of ``m``, else 0; without a program ``rho = reward_per_share``.
* **Adverse selection** per filled share, from the token's order-flow imbalance ``I`` in
  [-1, 1] (:mod:`argus_scanners_polymarket.ofi`, book OFI plus signed trades over
  ``ofi_window_s``; the published ``"ofi"`` signal when this scanner's own tracker has no
  flow for the token):

      AS_bid = adverse_floor + adverse_per_flow * max(0, -I)    (selling pressure hits bids)
      AS_ask = adverse_floor + adverse_per_flow * max(0,  I)

* **Edge** per share, with ``f_m(p)`` the maker fee per share (``FeeSchedule.fee(p, size,
  maker=True) / size``):

      edge_bid = (r - bid_q) + rho - AS_bid - f_m(bid_q)
      edge_ask = (ask_q - r) + rho - AS_ask - f_m(ask_q)

  (``r - bid_q`` is the half-spread captured, ``m - bid_q``, less the inventory skew).  A
  side is reported when its edge exceeds ``min_edge``.

Each side is one research-lane opportunity (``kind`` ``maker_bid`` / ``maker_ask``) with
a GTC limit leg at the quote price (a maker ask is a SELL of the token: it needs the
shares); ``expected_profit = edge * size`` per full fill, ``costs`` the maker fee.  Never
executable here: quoting needs the maker lifecycle of the execution engine.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
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
    ticks_of,
)
from argus_scanners_polymarket.common import (
    EDGE_QUANTUM,
    RESEARCH,
    by_profit,
    core_event_id,
    dec,
    event_id_for,
    instrument_of,
    lane_reason,
    tick_in_force,
    tradeable,
)
from argus_scanners_polymarket.config import MakerSettings, PmScannersSettings
from argus_scanners_polymarket.ofi import FlowColumn, OfiTracker, flow_of, shared_flows
from argus_scanners_polymarket.touch import EPS, RowCache, TouchTable, keys_of, stamped, touch_table

__all__ = ["MakerQuote", "MakerScanner", "QuotePlan", "flow_of", "quote_sides", "quote_size"]


# A price within GRID_NOISE ticks of the grid is on it (the incremental pre-check's
# ``on_grid`` tolerance): 0.6799999999999999 is the tick 0.68, not a price below it to
# floor to 0.67 (a "quote inside" that joins the bid).
_ticks = ticks_of


def _ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return _ticks(value, step).to_integral_value(ROUND_CEILING) * step


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return _ticks(value, step).to_integral_value(ROUND_FLOOR) * step


class MakerScanner(Scanner):
    """Quotes one tick inside the spread that the spread, the rewards, the expected adverse
    selection and the fees leave an edge for; inventory-skewed.

    ``incremental=True``: an upper bound of each side's edge (the adverse-selection floor,
    the largest reward, no fee; on the tick grid; margin :data:`EPS`) over every row of the
    shared touch table selects the candidates; the exact ``Decimal`` pricing
    (:func:`quote_sides`) builds their findings, reused while the row, its OFI imbalance
    (a :class:`~argus_scanners_polymarket.ofi.FlowColumn`, the one ``ranked`` and every
    other incremental maker on the market state share, ``ofi.shared_flows``) and its
    inventory are unchanged.  ``incremental=False``: the
    per-book reference loop, with this scanner's own tracker."""

    name: ClassVar[str] = "maker"

    def __init__(self, settings: PmScannersSettings | MakerSettings | None = None, *,
                 incremental: bool = True) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.maker
        self.settings = settings or MakerSettings()
        self.incremental = incremental
        self.ofi = OfiTracker(self.settings.ofi_window_s, levels=self.settings.ofi_levels)
        self.flows = FlowColumn(self.ofi)
        self.cache = RowCache()
        self._rho: tuple[int, int, np.ndarray] = (-1, -1, np.zeros(0))

    def flow(self, market: MarketState, iid: str, ts_ns: int) -> float:
        """``I``: this scanner's OFI imbalance of ``iid``, else the ``"ofi"`` signal, else 0."""
        return flow_of(self.ofi, market, iid, ts_ns)

    def inventory(self, market: MarketState, iid: str) -> Decimal | None:
        """``q``: the inventory signal for ``iid``, else the configured inventory, else 0;
        None when the signal is NaN or infinite (the inventory is unknown: no quote)."""
        published = market.signal(self.settings.inventory_signal, iid)
        if published is not None:
            return dec(published) if math.isfinite(published) else None
        return self.settings.inventory.get(iid, Decimal(0))

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every quote side with an edge above ``min_edge``, best first."""
        if not self.incremental:
            self.ofi.observe(market)
            return self.reference_scan(market, ts_ns)
        return stamped([self.unstamped(market, ts_ns)], ts_ns)

    def unstamped(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The incremental scan's findings as cached (``ts_ns`` of the scan that built
        each), in row order: what :meth:`scan` restamps and sorts, and what ``ranked``
        reads to recognise an unchanged finding by identity."""
        s = self.settings
        # one tracker and flow column per market state, shared with ``ranked`` (ofi.py)
        self.flows = shared_flows(market, s.ofi_window_s, s.ofi_levels)
        self.ofi = self.flows.tracker
        t = touch_table(market)
        self.ofi.observe(market, t)  # the touch of the books the refresh just read
        q = self._inventories(market, t)
        bid, ask, tick = t.bid, t.ask, t.tick
        with np.errstate(invalid="ignore"):
            ok = t.binary & t.usable(market) & ~np.isnan(bid) & ~np.isnan(ask)
            nb, na = bid / tick, ask / tick
            bf, ac = np.rint(nb), np.rint(na)
            # off the tick grid (never on Polymarket): always a candidate, the exact code decides
            on_grid = (np.abs(nb - bf) < 1e-6) & (np.abs(na - ac) < 1e-6)
            bid_q, ask_q = (bf + 1) * tick, (ac - 1) * tick
            reservation = (bid + ask) / 2 - float(s.skew_per_share) * q
            lim = float(s.max_inventory) if s.max_inventory is not None else np.inf
            bound = self._rho_max(t) - float(s.adverse_floor) + EPS - float(s.min_edge)
            bid_side = (bf + 1 < ac) & (bf + 1 > 0) & (q < lim + 1e-9) & (
                reservation - bid_q + bound > 0)
            ask_side = (ac - 1 > bf) & (ask_q < 1 + 1e-9) & (q > -lim - 1e-9) & (
                ask_q - reservation + bound > 0)
            pre = ok & (~on_grid | bid_side | ask_side)
        rows = np.flatnonzero(pre)
        flow = self.flows.update(market, t.ids, t.index, ts_ns, rows)
        insts = t.instruments

        def build(r: int) -> list[Opportunity]:
            inst = insts[r]
            assert inst is not None
            return self._token(market, inst, ts_ns, flow=float(flow[r]))

        return [o for found in self.cache.collect(
            rows, keys_of(t.row_gen[rows], flow[rows], q[rows]), build) for o in found]

    def _inventories(self, market: MarketState, t: TouchTable) -> np.ndarray:
        """``q`` of every row as floats (the configured inventory, then published signals)."""
        q = np.zeros(len(t), dtype=np.float64)
        index = t.index
        for iid, v in self.settings.inventory.items():
            if iid in index:
                q[index[iid]] = float(v)
        name = self.settings.inventory_signal
        for (sig_name, iid), sig in market.signals.items():
            if sig_name == name and iid in index:
                # NaN: unknown (no quote, as :meth:`inventory` decides); NaN fails every
                # pre-check below
                q[index[iid]] = float(dec(sig.value)) if math.isfinite(sig.value) else np.nan
        return q

    def _rho_max(self, t: TouchTable) -> np.ndarray | float:
        """The largest reward per share either side can earn, per row."""
        s = self.settings
        if s.reward_pool_share <= 0:
            return float(s.reward_per_share)
        if self._rho[:2] != (t.static_gen, len(t)):
            rho = np.full(len(t), float(s.reward_per_share))
            for r, inst in enumerate(t.instruments):
                rate = inst.meta.get("rewards_daily_rate") if inst is not None else None
                if rate is not None:
                    rho[r] = float(dec(float(rate)) * dec(s.reward_pool_share)
                                   / s.expected_daily_fills)
            self._rho = (t.static_gen, len(t), rho)
        return self._rho[2]

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The per-book loop over ``market.books`` (the reference of the tests)."""
        found: list[Opportunity] = []
        for iid, book in market.books.items():
            inst = instrument_of(market, iid)
            if inst is None or inst.kind != "binary" or not book.bids or not book.asks:
                continue
            if not tradeable(market, iid):
                continue
            found.extend(self._token(market, inst, ts_ns))
        return by_profit(found)

    def _token(self, market: MarketState, inst: Instrument, ts_ns: int,
               flow: float | None = None) -> list[Opportunity]:
        s = self.settings
        iid = inst.id
        book = market.books[iid]
        if inst.kind != "binary" or not book.bids or not book.asks:
            return []
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert best_bid is not None and best_ask is not None
        q = self.inventory(market, iid)
        if q is None:
            return []  # a published inventory that is not a number: quoting would guess
        if flow is None:
            flow = self.flow(market, iid, ts_ns)
        plan = quote_sides(s, inst, dec(best_bid), dec(best_ask), q, flow,
                           market.fee_schedule(iid), max_inventory=s.max_inventory,
                           tick=tick_in_force(market, inst))
        out = []
        for quote in plan.quotes:
            e = quote.edge
            if e <= s.min_edge:
                continue
            per_share = e.quantize(EDGE_QUANTUM, rounding=ROUND_FLOOR)
            lane = RESEARCH
            out.append(Opportunity(
                opportunity_id=f"maker:{quote.label}:{iid}:{book.ts_ns}", scanner=self.name,
                ts_ns=ts_ns, kind=f"maker_{quote.label}",
                legs=(Leg(iid, quote.side, quote.price, quote.size),),
                edge_per_unit=per_share, max_size=quote.size, expected_profit=e * quote.size,
                costs=quote.fee, risk_free=False,
                event_id=event_id_for(market, iid, core_event_id(market, iid)),
                lane=lane,
                reason=lane_reason(lane, quote.explain(plan) + "; needs the maker lifecycle")))
        return out


@attrs.frozen
class MakerQuote:
    """One side of a maker quote and the terms of its edge (per share, price units).

    ``edge = half_spread + reward - adverse - fee / size`` (module docstring, "Edge")."""

    label: str  # "bid" | "ask"
    side: Side
    price: Decimal
    size: Decimal
    edge: Decimal
    reward: Decimal
    adverse: Decimal
    fee: Decimal  # the maker fee of a full fill of ``size``

    def explain(self, plan: QuotePlan) -> str:
        """One line saying where the quote and its edge come from."""
        return (f"quote {self.label} {self.size} @ {self.price} inside {plan.bid}/{plan.ask} "
                f"(tick {plan.tick}): mid {plan.mid}, inventory {plan.inventory} -> "
                f"reservation {plan.reservation}, reward {self.reward:.6f}, adverse "
                f"{self.adverse:.6f} (OFI {plan.flow:+.3f}), maker fee "
                f"{self.fee / self.size:.6f}/share, edge {self.edge:.6f}")


@attrs.frozen
class QuotePlan:
    """The touch a quote was priced against and the candidate sides (any edge)."""

    bid: Decimal  # best bid floored to the tick
    ask: Decimal  # best ask ceiled to the tick
    tick: Decimal
    mid: Decimal
    inventory: Decimal
    reservation: Decimal
    flow: float
    quotes: tuple[MakerQuote, ...]

    def side(self, label: str) -> MakerQuote | None:
        """The candidate ``"bid"`` or ``"ask"``, if the spread and inventory allow one."""
        return next((q for q in self.quotes if q.label == label), None)


def quote_size(settings: MakerSettings, inst: Instrument) -> Decimal:
    """``quote_size`` raised to the instrument's ``min_size`` (and the rewards program's
    ``rewards_min_size`` when rewards are counted), rounded up to the lot."""
    size = max(settings.quote_size, inst.min_size)
    if inst.meta.get("rewards_daily_rate") is not None and settings.reward_pool_share > 0:
        size = max(size, dec(float(inst.meta.get("rewards_min_size", 0))))
    return _ceil_to(size, inst.lot_size)


def quote_sides(settings: MakerSettings, inst: Instrument, best_bid: Decimal,
                best_ask: Decimal, inventory: Decimal, flow: float, schedule: FeeSchedule,
                *, max_inventory: Decimal | None, tick: Decimal | None = None) -> QuotePlan:
    """The maker's candidate quotes one tick inside ``best_bid``/``best_ask`` with their
    edges (the module docstring's formulas; the scanner and the ``pm_maker`` strategy both
    price through here).  Sides the spread or ``max_inventory`` rule out are absent; sides
    with any edge are returned, the caller compares them with ``min_edge``."""
    s = settings
    tick = inst.tick_size if tick is None else tick  # the tick in force (tick_in_force)
    b, a = _floor_to(best_bid, tick), _ceil_to(best_ask, tick)
    mid = (best_bid + best_ask) / 2
    q = inventory
    reservation = mid - s.skew_per_share * q
    size = quote_size(s, inst)
    rate = inst.meta.get("rewards_daily_rate")
    program = rate is not None and s.reward_pool_share > 0
    program_rho = Decimal(0)
    if rate is not None and program:
        program_rho = dec(float(rate)) * dec(s.reward_pool_share) / s.expected_daily_fills
    max_spread = dec(float(inst.meta.get("rewards_max_spread", 0))) / 100

    def reward(price: Decimal) -> Decimal:
        if not program:
            return s.reward_per_share
        return program_rho if abs(price - mid) <= max_spread else Decimal(0)

    sides: list[MakerQuote] = []
    bid_q, ask_q = b + tick, a - tick
    if bid_q < a and bid_q > 0 and (max_inventory is None or q < max_inventory):
        adverse = s.adverse_floor + s.adverse_per_flow * dec(max(0.0, -flow))
        fee = schedule.fee(bid_q, size, maker=True)
        rho = reward(bid_q)
        e = (reservation - bid_q) + rho - adverse - fee / size
        sides.append(MakerQuote("bid", Side.BUY, bid_q, size, e, rho, adverse, fee))
    if ask_q > b and ask_q < 1 and (max_inventory is None or q > -max_inventory):
        adverse = s.adverse_floor + s.adverse_per_flow * dec(max(0.0, flow))
        fee = schedule.fee(ask_q, size, maker=True)
        rho = reward(ask_q)
        e = (ask_q - reservation) + rho - adverse - fee / size
        sides.append(MakerQuote("ask", Side.SELL, ask_q, size, e, rho, adverse, fee))
    if len(sides) == 2 and bid_q >= ask_q:  # a two-tick spread: one price, one side
        sides = [max(sides, key=lambda x: x.edge)]
    return QuotePlan(b, a, tick, mid, q, reservation, flow, tuple(sides))
