"""Builtin plugin ``risk``: the standard pre-trade checks.

Settings live in ``[plugins.risk]``; every check is registered through
``register_risk_checks`` like any third-party check, so ``[run] risk_checks``
can pick a subset or a plugin can add stricter ones.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from argus_core.config import AT_LEAST_ONE, FRACTION, POSITIVE, optional
from argus_core.hookspecs import RegisterRiskCheck, hookimpl
from argus_core.interfaces import RiskCheck, RiskContext
from argus_core.models import WIDE, Fill, Intent, Portfolio, RiskAction, RiskDecision
from argus_core.risk import DAY_NS, TradingState, escalate, reduces_position


@attrs.frozen
class RiskSettings:
    """``[plugins.risk]``: limits of the builtin checks (fractions are of current equity)."""

    # per instrument, absolute units / quote currency; unset: no cap
    max_position_qty: Decimal | None = attrs.field(default=None, validator=optional(POSITIVE))
    max_position_notional: Decimal | None = attrs.field(default=None,
                                                        validator=optional(POSITIVE))
    # one order's notional vs equity
    per_play_fraction: Decimal = attrs.field(default=Decimal("0.07"), validator=FRACTION)
    # gross exposure vs equity: a leverage multiple, so it may exceed 1
    max_gross_exposure_fraction: Decimal = attrs.field(default=Decimal("3"), validator=POSITIVE)
    daily_loss_fraction: Decimal = attrs.field(default=Decimal("0.05"), validator=FRACTION)
    # kill switch -> HALTED
    max_drawdown_fraction: Decimal = attrs.field(default=Decimal("0.25"), validator=FRACTION)
    # circuit breaker -> REDUCING
    max_consecutive_losses: int = attrs.field(default=8, validator=AT_LEAST_ONE)
    max_orders_per_minute: int = attrs.field(default=60, validator=AT_LEAST_ONE)


class _LastEquity:
    """``portfolio.equity`` of the last snapshot asked about: every check of one order
    judges the same immutable snapshot, and its equity is a sum over the positions."""

    portfolio: Portfolio | None = None
    equity = Decimal(0)

    @classmethod
    def of(cls, portfolio: Portfolio) -> Decimal:
        if portfolio is not cls.portfolio:
            cls.portfolio, cls.equity = portfolio, portfolio.equity
        return cls.equity


_HUGE = Decimal("1e15")


def _money(amount: Decimal) -> str:
    """``amount`` to the cent, or in scientific notation from 1e15 on: an absurd notional
    (a quantity of 1E+999999) would otherwise print a million digits into the ledger."""
    return f"{amount:.2f}" if abs(amount) < _HUGE else f"{amount:.6E}"


def _shrink(check: str, qty: Decimal, reason: str) -> RiskDecision:
    if qty <= 0:
        return RiskDecision.veto(check, reason)
    return RiskDecision(RiskAction.SHRINK, check, reason, qty)


class _BuiltinCheck(RiskCheck):
    """A builtin check reading ``[plugins.risk]`` (defaults when the table is absent)."""

    def __init__(self, settings: RiskSettings | None) -> None:
        self.s = settings or RiskSettings()


class MaxPosition(_BuiltinCheck):
    """Caps the resulting position per instrument, in units and in notional."""

    name = "max_position"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        if reduces_position(intent, quantity, portfolio, ctx.pending):
            return RiskDecision.allow(self.name)
        # as if the side's working orders had filled (RiskContext.pending)
        held = portfolio.position(intent.instrument_id).quantity * intent.side.sign \
            + ctx.pending
        room = quantity
        if self.s.max_position_qty is not None:
            room = min(room, self.s.max_position_qty - max(held, Decimal(0)))
        if self.s.max_position_notional is not None and price > 0:
            room = min(room, self.s.max_position_notional / price - max(held, Decimal(0)))
        if room < quantity:
            return _shrink(self.name, room, f"position limit on {intent.instrument_id}")
        return RiskDecision.allow(self.name)


class PerPlayCap(_BuiltinCheck):
    """One order may commit at most ``per_play_fraction`` of equity (default 7%)."""

    name = "per_play_cap"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        if reduces_position(intent, quantity, portfolio, ctx.pending) or price <= 0:
            return RiskDecision.allow(self.name)
        cap = _LastEquity.of(portfolio) * self.s.per_play_fraction
        if quantity * price > cap:
            return _shrink(self.name, (cap / price).quantize(Decimal("1e-8"), "ROUND_DOWN", WIDE),
                           f"order notional {_money(quantity * price)} exceeds the per-play "
                           f"cap {_money(cap)} ({self.s.per_play_fraction:%} of equity)")
        return RiskDecision.allow(self.name)


class GrossExposure(_BuiltinCheck):
    """Total marked exposure may not exceed ``max_gross_exposure_fraction`` x equity."""

    name = "gross_exposure"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        if reduces_position(intent, quantity, portfolio, ctx.pending):
            return RiskDecision.allow(self.name)
        cap = _LastEquity.of(portfolio) * self.s.max_gross_exposure_fraction
        room = cap - portfolio.gross_exposure - ctx.pending_exposure
        if quantity * price > room:
            working = (f" with working orders' {_money(ctx.pending_exposure)}"
                       if ctx.pending_exposure else "")
            return _shrink(self.name, room / price if price > 0 else Decimal(0),
                           f"gross exposure would exceed {_money(cap)}{working}")
        return RiskDecision.allow(self.name)


class DailyLossLimit(_BuiltinCheck):
    """Stops opening risk once today's loss exceeds ``daily_loss_fraction`` of day-start equity."""

    name = "daily_loss_limit"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        day = ctx.ts_ns // DAY_NS
        equity = _LastEquity.of(portfolio)
        if day != ctx.day:
            ctx.day, ctx.day_start_equity = day, equity
        loss = ctx.day_start_equity - equity
        if (ctx.day_start_equity > 0 and loss > ctx.day_start_equity * self.s.daily_loss_fraction
                and not reduces_position(intent, quantity, portfolio, ctx.pending)):
            return RiskDecision.veto(self.name,
                                     f"daily loss {_money(loss)} exceeds "
                                     f"{self.s.daily_loss_fraction:%} of day-start equity")
        return RiskDecision.allow(self.name)


class MaxDrawdownKill(_BuiltinCheck):
    """Kill switch: a drawdown beyond ``max_drawdown_fraction`` HALTS trading (latched)."""

    name = "max_drawdown"

    def _trip(self, portfolio: Portfolio, ctx: RiskContext) -> str | None:
        """Raise the peak; past the limit, HALT and return the reason."""
        equity = _LastEquity.of(portfolio)
        ctx.peak_equity = peak = max(ctx.peak_equity, equity)
        drawdown = (peak - equity) / peak if peak > 0 else Decimal(0)
        if drawdown <= self.s.max_drawdown_fraction:
            return None
        reason = f"drawdown {drawdown:.2%} exceeds the kill switch at " \
                 f"{self.s.max_drawdown_fraction:.2%}"
        escalate(ctx, TradingState.HALTED, reason)
        return reason

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        reason = self._trip(portfolio, ctx)
        return RiskDecision.allow(self.name) if reason is None else RiskDecision.veto(
            self.name, reason)

    def on_fill(self, fill: Fill, portfolio: Portfolio, ctx: RiskContext) -> None:
        self._trip(portfolio, ctx)

    #: (peak, the lowest equity judged within the limit at that peak)
    _safe: tuple[Decimal, Decimal] | None = None

    def on_equity(self, equity: Decimal, ctx: RiskContext) -> str | None:
        """Every mark: the reason to flatten and halt once the drawdown passes the limit."""
        peak, safe = ctx.peak_equity, self._safe
        # The rounded drawdown never falls as equity falls: at the same peak, an equity at
        # or above one already judged within the limit is within it too.
        if safe is not None and safe[0] is peak and equity >= safe[1]:
            return None
        drawdown = (peak - equity) / peak if peak > 0 else Decimal(0)
        if drawdown > self.s.max_drawdown_fraction:
            return (f"drawdown {drawdown:.2%} exceeds the kill switch at "
                    f"{self.s.max_drawdown_fraction:.2%}: flattening")
        self._safe = (peak, equity)
        return None


class ConsecutiveLosses(_BuiltinCheck):
    """Circuit breaker: after N losing trades in a row, trading goes REDUCING.

    A trade's result is the realised P&L of all fills booked at the same moment, so
    the legs of a basket (a put spread, an arbitrage) closing together count once,
    by their net result, not once per leg.
    """

    name = "consecutive_losses"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        self._close_group(ctx)
        if ctx.consecutive_losses >= self.s.max_consecutive_losses and not reduces_position(
                intent, quantity, portfolio, ctx.pending):
            return RiskDecision.veto(self.name, f"{ctx.consecutive_losses} losing trades "
                                                f"in a row")
        return RiskDecision.allow(self.name)

    def on_fill(self, fill: Fill, portfolio: Portfolio, ctx: RiskContext) -> None:
        realized = portfolio.position(fill.instrument_id).realized_pnl
        delta = realized - Decimal(ctx.realized_seen.get(fill.instrument_id, "0"))
        ctx.realized_seen[fill.instrument_id] = str(realized)
        if ctx.loss_group and ctx.loss_group[0] != fill.ts_ns:
            self._close_group(ctx)
        if delta != 0:
            pnl = Decimal(ctx.loss_group[1]) if ctx.loss_group else Decimal(0)
            ctx.loss_group = [fill.ts_ns, str(pnl + delta)]

    def _close_group(self, ctx: RiskContext) -> None:
        if not ctx.loss_group:
            return
        pnl = Decimal(ctx.loss_group[1])
        ctx.loss_group = []
        if pnl == 0:
            return
        ctx.consecutive_losses = ctx.consecutive_losses + 1 if pnl < 0 else 0
        if ctx.consecutive_losses >= self.s.max_consecutive_losses:
            escalate(ctx, TradingState.REDUCING,
                     f"{ctx.consecutive_losses} losing trades in a row")


class OrderRate(_BuiltinCheck):
    """At most ``max_orders_per_minute`` orders in any rolling minute (simulated clock)."""

    name = "order_rate"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        cutoff = ctx.ts_ns - 60 * 10**9
        times = [t for t in ctx.order_times_ns if t > cutoff]
        ctx.order_times_ns = times
        # a basket's legs are all judged before any is sent (and timed): each counts the
        # legs judged before it
        if len(times) + ctx.pending_legs >= self.s.max_orders_per_minute:
            more = f" and {ctx.pending_legs} earlier legs of its basket" \
                if ctx.pending_legs else ""
            return RiskDecision.veto(self.name, f"{len(times)} orders in the last minute{more} "
                                                f"(limit {self.s.max_orders_per_minute})")
        return RiskDecision.allow(self.name)


CHECKS: tuple[type[RiskCheck], ...] = (MaxPosition, PerPlayCap, GrossExposure, DailyLossLimit,
                                       MaxDrawdownKill, ConsecutiveLosses, OrderRate)


@hookimpl
def config_class() -> type:
    """``[plugins.risk]`` settings."""
    return RiskSettings


@hookimpl
def register_risk_checks(register: RegisterRiskCheck) -> None:
    """Register every builtin check."""
    for cls in CHECKS:
        register(cls.name, cls)
