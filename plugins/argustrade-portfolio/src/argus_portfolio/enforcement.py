"""The allocator in the order path: the ``portfolio_caps`` risk check and the
``portfolio_weight`` sizer, both configured by ``[plugins.portfolio]``.

The check judges the position an order would *leave*, not the order: many orders each
under 7% of equity cannot build a position over 7%, and orders still working count as
filled (the core's ``RiskContext.pending`` and ``pending_exposure``), so resting orders
cannot build one either.  Reduce-only orders and orders that only shrink a position (after
the working orders on their side) always pass, so no cap can keep a position open.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from argus_core import (
    FeeSchedule,
    Instrument,
    Intent,
    Ledger,
    Portfolio,
    RiskAction,
    RiskCheck,
    RiskContext,
    RiskDecision,
    Sizer,
)
from argus_portfolio.allocation import Allocation, allocate, allocate_on, model_covariance
from argus_portfolio.own_positions import own_working
from argus_portfolio.settings import PortfolioSettings
from argus_portfolio.state import number, table

_QUANTUM = Decimal("1e-8")

#: Each live ``portfolio_weight`` sizer by ``id`` of the settings object it was built
#: from, so that the plugin's ``on_startup`` can hand this run's sizer to this run's
#: ``league`` check (both are built from the same object; see :mod:`argus_portfolio.drift`).
_SIZERS: weakref.WeakValueDictionary[int, PortfolioWeight] = weakref.WeakValueDictionary()


def sizer_for(settings: object) -> PortfolioWeight | None:
    """The ``portfolio_weight`` sizer built from ``settings`` (this very object), if any."""
    sizer = _SIZERS.get(id(settings))
    return sizer if sizer is not None and sizer.s is settings else None


def round_down(units: Decimal) -> Decimal:
    """``units`` rounded down to the 1e-8 quantum; a quantity too large for that quantum
    in Decimal's 28 digits (a room of 7E+33 units at a price of 1E-30) to whole units."""
    if units.adjusted() >= 18:
        return units.to_integral_value(rounding=ROUND_DOWN)
    return units.quantize(_QUANTUM, ROUND_DOWN)


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


def position_room(held: Decimal, sign: int, cap_units: Decimal) -> Decimal:
    """Largest quantity an order on side ``sign`` (+1 buy, -1 sell) may have so that the
    resulting position ``held + sign * q`` stays within ``±cap_units`` (0 when none)."""
    along = held * sign  # > 0: the order adds to the position
    room = cap_units - along if along >= 0 else -along + cap_units
    return max(room, Decimal(0))


def shrinks_position(intent: Intent, quantity: Decimal, portfolio: Portfolio,
                     pending: Decimal = Decimal(0)) -> bool:
    """True when the order only moves the current position towards flat, even once the
    ``pending`` units still working on its side have filled too (as the core's rule)."""
    held = portfolio.position(intent.instrument_id).quantity
    signed = quantity * intent.side.sign
    return held != 0 and (held > 0) != (signed > 0) and abs(signed) + pending <= abs(held)


class PortfolioCaps(RiskCheck):
    """Trims an order so the resulting position stays within the per-play cap
    (``per_play_fraction``, tightened per instrument by ``instrument_caps``), its family's
    cap and the aggregate cap (``max_gross_fraction``), all as fractions of equity at
    the order's reference price; vetoes it when no room is left."""

    name = "portfolio_caps"

    def __init__(self, settings: PortfolioSettings | None) -> None:
        self.s = settings or PortfolioSettings()

    def _others(self, portfolio: Portfolio, iid: str, family: str | None) -> Decimal:
        """Marked gross exposure of the other instruments (of ``family`` when given)."""
        return sum((abs(p.quantity * portfolio.mark(i)) for i, p in portfolio.positions.items()
                    if i != iid and (family is None or self.s.families.get(i) == family)),
                   Decimal(0))

    def _family_others(self, portfolio: Portfolio, iid: str, family: str,
                       sides: Mapping[str, tuple[Decimal, Decimal]]) -> Decimal:
        """Exposure of ``family``'s other instruments once their working orders fill
        (``sides``: the core's ``RiskContext.pending_sides``, a basket's earlier legs
        included): per instrument the worse of its buys or its sells all filling (one
        side's fills reduce what the other's add)."""
        members = {i for i in (*portfolio.positions, *sides) if i != iid
                   and self.s.families.get(i) == family}
        total = Decimal(0)
        for i in members:
            held = portfolio.position(i).quantity * portfolio.mark(i)
            buys, sells = sides.get(i, (Decimal(0), Decimal(0)))
            total += max(abs(held + buys), abs(held - sells))
        return total

    def room(self, intent: Intent, price: Decimal, portfolio: Portfolio,
             pending: Decimal = Decimal(0), pending_exposure: Decimal = Decimal(0),
             pending_sides: Mapping[str, tuple[Decimal, Decimal]] | None = None
             ) -> tuple[Decimal, str]:
        """The largest quantity allowed and the name of the cap that binds, counting
        ``pending`` units working on the intent's side as held, ``pending_exposure``
        (every working order's notional, :class:`RiskContext`) as exposure and
        ``pending_sides`` (the same per instrument) in the family's."""
        iid, equity, sign = intent.instrument_id, portfolio.equity, intent.side.sign
        # working orders count as filled: ten resting buys cannot build what one could not
        held = portfolio.position(iid).quantity + sign * pending
        # the working orders of other instruments (this side's own are in ``held``)
        working_others = max(pending_exposure - pending * price, Decimal(0))
        play = min(self.s.per_play_fraction, self.s.instrument_caps.get(iid, 1.0))
        limits = {f"per-play cap {play:.2%} of equity on {iid}": equity * _dec(play)}
        family = self.s.families.get(iid)
        if family is not None:
            cap = _dec(self.s.cap_of_family(family))
            limits[f"family {family!r} cap {cap:.2%}"] = \
                equity * cap - self._family_others(portfolio, iid, family,
                                                   pending_sides or {})
        limits[f"aggregate cap {self.s.max_gross_fraction:.2%}"] = \
            equity * _dec(self.s.max_gross_fraction) - self._others(portfolio, iid, None) \
            - working_others
        rooms = {why: position_room(held, sign, max(notional, Decimal(0)) / price)
                 for why, notional in limits.items()}
        binding = min(rooms, key=lambda k: rooms[k])
        return round_down(rooms[binding]), binding

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        """Allow, trim to the room left under the tightest cap, or veto (working orders,
        and a basket's legs judged before this one, count as filled)."""
        if intent.reduce_only or shrinks_position(intent, quantity, portfolio, ctx.pending):
            return RiskDecision.allow(self.name)
        if price <= 0 or portfolio.equity <= 0:
            return RiskDecision.veto(self.name, f"cannot value a position in "
                                                f"{intent.instrument_id} (price {price}, "
                                                f"equity {portfolio.equity})")
        room, binding = self.room(intent, price, portfolio, ctx.pending, ctx.pending_exposure,
                                  ctx.pending_sides)
        if room >= quantity:
            return RiskDecision.allow(self.name)
        if room <= 0:
            return RiskDecision.veto(self.name, f"no room under the {binding}")
        return RiskDecision(RiskAction.SHRINK, self.name,
                            f"resulting position would pass the {binding}", room)


class PortfolioWeight(Sizer):
    """Sizes an intent towards its strategy's allocated position: ``weight x equity``
    (times the forecast's confidence), never above the per-play cap, less what the
    strategy already holds on that side (its own fills, once the run's ledger is attached;
    the instrument's account position otherwise).

    Weights start from the model in ``[plugins.portfolio.strategies]`` (volatilities, a
    constant correlation, forecasts, health); :meth:`rebalance` replaces them from
    observed returns, moving each at most ``max_step``.  A strategy without an entry
    gets no capital.  It sizes on the whole account (``whole_account``), not on the
    slot's own book: the weights are its capital allocation.
    """

    name = "portfolio_weight"
    whole_account = True  # it allocates the account across strategies itself

    def __init__(self, settings: PortfolioSettings | None) -> None:
        self.s = settings or PortfolioSettings()
        self.names = sorted(self.s.strategies)
        self.weights: dict[str, float] = {}
        #: the league's smoothed health per strategy (multiplies the model's health)
        self.league_health: dict[str, float] = {}
        #: the run's ledger (set by the plugin's on_startup): a strategy's own position
        self.ledger: Ledger | None = None
        if settings is not None:
            _SIZERS[id(settings)] = self
        if self.names:
            models = [self.s.strategies[n] for n in self.names]
            self._adopt(allocate_on(
                model_covariance([m.vol for m in models], self.s.correlation),
                [m.forecast for m in models], [m.health for m in models], self.s,
                families=self._families()))

    def _families(self) -> list[str | None]:
        return [self.s.strategies[n].family or self.s.families.get(n) for n in self.names]

    def _adopt(self, allocation: Allocation) -> Allocation:
        self.weights = dict(zip(self.names, allocation.weights.tolist(), strict=True))
        return allocation

    def rebalance(self, returns: ArrayLike, forecasts: ArrayLike, health: ArrayLike
                  ) -> Allocation:
        """Re-allocate from observed per-period returns (columns in sorted strategy-name
        order), each weight moving at most ``max_step`` from the current one."""
        previous = np.array([self.weights.get(n, 0.0) for n in self.names])
        return self._adopt(allocate(returns, forecasts, health, self.s, previous=previous,
                                    families=self._families()))

    def set_health(self, health: Mapping[str, float], blocked: Collection[str] = ()
                   ) -> Allocation | None:
        """Re-allocate on the configured model with each strategy's health multiplied by
        the league's ``health`` (in [0, 1]), each weight moving at most ``max_step``;
        ``blocked`` strategies (quarantined, killed, ineligible) get weight 0 at once."""
        self.league_health.update({k: min(1.0, max(0.0, float(v))) for k, v in health.items()})
        allocation = None
        if self.names:
            models = [self.s.strategies[n] for n in self.names]
            previous = np.array([self.weights.get(n, 0.0) for n in self.names])
            allocation = self._adopt(allocate_on(
                model_covariance([m.vol for m in models], self.s.correlation),
                [m.forecast for m in models],
                [m.health * self.league_health.get(n, 1.0)
                 for n, m in zip(self.names, models, strict=True)],
                self.s, previous=previous, families=self._families()))
        for name in blocked:
            if name in self.weights:
                self.weights[name] = 0.0
        return allocation

    def get_state(self) -> dict[str, Any]:
        """The current weights and the league's health (JSON-able).  The core does not
        checkpoint sizers: the ``league`` check, the one thing that moves these weights
        in a run, keeps this in its own state."""
        return {"weights": dict(self.weights), "league_health": dict(self.league_health)}

    def set_state(self, state: Mapping[str, Any], key: str = "portfolio_weight") -> None:
        """Restore :meth:`get_state` output: weights of configured strategies (each a
        finite number >= 0; one not saved keeps its current weight, one no longer
        configured is dropped) and the league's health in [0, 1].  A damaged state is a
        ``ValueError`` naming the key."""
        weights, self.league_health = self.read_state(state, key)
        self.weights = {n: weights.get(n, self.weights.get(n, 0.0)) for n in self.names}

    @staticmethod
    def read_state(state: Any, key: str = "portfolio_weight"
                   ) -> tuple[dict[str, float], dict[str, float]]:
        """The weights and league health of a :meth:`get_state` output, checked (a
        ``ValueError`` naming the key)."""
        state = table(state, key)
        saved = table(state.get("weights", {}), f"{key}.weights")
        health = table(state.get("league_health", {}), f"{key}.league_health")
        return ({str(n): number(w, f"{key}.weights.{n}", 0.0) for n, w in saved.items()},
                {str(n): number(h, f"{key}.league_health.{n}", 0.0, 1.0)
                 for n, h in health.items()})

    def held(self, intent: Intent, portfolio: Portfolio) -> Decimal:
        """The position the intent's strategy holds in its instrument: summed from the
        ledger's fills of that slot's orders when the run's ledger is attached (the
        account holds every strategy's positions together), else the account's."""
        if self.ledger is None:
            return portfolio.position(intent.instrument_id).quantity
        rows = self.ledger.query(
            "select f.side, f.quantity from fills f join orders o using (client_order_id) "
            "where o.strategy = ? and f.instrument_id = ?",
            (intent.strategy, intent.instrument_id))
        return sum((Decimal(r["quantity"]) * (1 if r["side"] == "buy" else -1) for r in rows),
                   Decimal(0))

    def size(self, intent: Intent, price: Decimal, portfolio: Portfolio,
             instrument: Instrument | None, fees: FeeSchedule | None = None) -> Decimal:
        """Units to trade towards the strategy's target position (0 when there), its own
        orders working on the intent's side counted as filled (once the ledger is
        attached)."""
        weight = self.weights.get(intent.strategy, 0.0)
        if price <= 0 or weight <= 0 or portfolio.equity <= 0:
            return Decimal(0)
        confidence = intent.forecast.confidence if intent.forecast is not None else 1.0
        fraction = min(weight * confidence, self.s.per_play_fraction)
        target = portfolio.equity * _dec(fraction) / price
        # its own orders still working on this side count as held: ten resting buys
        # sized one after another must not build ten times the target
        along = self.held(intent, portfolio) * intent.side.sign + own_working(
            self.ledger, intent.strategy, intent.instrument_id, intent.side.value)
        qty = target - along
        if qty <= 0:
            return Decimal(0)
        if instrument is None:
            return round_down(qty)
        lots = (qty / instrument.lot_size).to_integral_value(rounding=ROUND_DOWN)
        qty = lots * instrument.lot_size
        return qty if qty >= instrument.min_size else Decimal(0)
