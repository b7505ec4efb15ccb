"""The risk engine: trading states and the pass every intent must survive.

Every order the runner creates goes through :meth:`RiskEngine.evaluate`; there
is no other path to the broker.  All enabled checks run on every intent (so
every reason is recorded), any veto wins, and the smallest shrink wins among
the rest.

Trading states:

* ``ACTIVE``   — everything allowed that the checks allow.
* ``REDUCING`` — only intents that reduce an existing position.
* ``HALTED``   — no new exposure: only cancels and reduce-only orders that shrink a
  position (exits, and the kill switch's flattening orders) pass, so a halt never
  freezes a losing position; latches until a person runs ``argus resume``.

Before any check, the market gate: an order on an instrument whose book is not
tradeable (not live after a failed checksum or a gap, stale past the venue's
``default_stale_after_s`` or ``[run] stale_after_s``) is vetoed, paper or live, and
so is one on an instrument with neither a book nor a bar.  Exits (reduce-only orders
that shrink a position) skip the checks that do not set ``checks_exits``: no exposure
limit or kill switch may keep a position open.  The drawdown kill switch
also watches every mark (:meth:`RiskEngine.on_equity`), not only proposed orders.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs

from argus_core.interfaces import RiskCheck, RiskContext
from argus_core.models import Intent, Portfolio, RiskAction, RiskDecision
from argus_core.serde import converter

#: A UTC day in nanoseconds: the daily loss limit's day (its start equity is the
#: account's at the day's first equity row, :meth:`argus_core.runner.Runner`).
DAY_NS = 86_400 * 10**9


class TradingState(enum.StrEnum):
    """Whether the loop may open risk, only reduce it, or do nothing."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


_HALTED = TradingState.HALTED.value
_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def escalate(ctx: RiskContext, state: TradingState, reason: str) -> None:
    """Move ``ctx`` to ``state`` if that is more severe (states never relax on their own)."""
    if _SEVERITY[state] > _SEVERITY[TradingState(ctx.trading_state)]:
        ctx.trading_state = state.value
        ctx.state_reason = reason


def reduces_position(intent: Intent, quantity: Decimal, portfolio: Portfolio,
                     pending: Decimal = Decimal(0)) -> bool:
    """True when the order only shrinks the current position towards flat, even after
    ``pending`` more on its side (its working orders, :attr:`RiskContext.pending`) fill."""
    held = portfolio.position(intent.instrument_id).quantity
    signed = quantity * intent.side.sign
    return held != 0 and (held > 0) != (signed > 0) and abs(signed) + pending <= abs(held)


def state_allows(state: str, intent: Intent, quantity: Decimal, portfolio: Portfolio,
                 pending: Decimal = Decimal(0)) -> bool:
    """Whether the trading ``state`` lets the order through: HALTED only reduce-only exits,
    REDUCING whatever reduces the position (its side's working orders filled too), ACTIVE
    everything."""
    if state == TradingState.HALTED:
        return intent.reduce_only and reduces_position(intent, quantity, portfolio)
    return state != TradingState.REDUCING or reduces_position(intent, quantity, portfolio,
                                                              pending)


@attrs.frozen
class Verdict:
    """The outcome of the whole risk pass."""

    quantity: Decimal
    decisions: tuple[RiskDecision, ...]

    @property
    def allowed(self) -> bool:
        """True when the order may be sent (at ``quantity``)."""
        return self.quantity > 0


class RiskEngine:
    """Runs the trading-state gate and every check; records denials in the ledger."""

    def __init__(self, checks: Sequence[RiskCheck], ctx: RiskContext | None = None) -> None:
        self.checks = list(checks)
        self.ctx = ctx or RiskContext()
        # The checks' on_equity watches, collected once (again if the checks change).
        self._watches: list[Callable[[Decimal, RiskContext], str | None]] = []
        self._watched: tuple[list[RiskCheck], int] | None = None
        #: the names of checks whose watch raised, and those not yet in the ledger
        self.broken_watches: set[str] = set()
        self.unreported: list[tuple[str, str]] = []

    @property
    def state(self) -> TradingState:
        """Current trading state."""
        return TradingState(self.ctx.trading_state)

    def on_equity(self, equity: Decimal) -> str | None:
        """A fresh valuation of the account (every mark of a held instrument): each
        check with an ``on_equity`` watch sees it.  Returns the reason when one of them
        asks to flatten (the drawdown kill switch tripped just now), else None."""
        ctx = self.ctx
        if equity > ctx.peak_equity:
            ctx.peak_equity = equity
        checks, watched = self.checks, self._watched
        if watched is None or watched[0] is not checks or watched[1] != len(checks):
            self._watches = [w for c in checks if (w := getattr(c, "on_equity", None))
                             is not None]
            self._watched = (checks, len(checks))
        for watch in self._watches:
            try:
                reason = watch(equity, ctx)
            except Exception as exc:  # fails safe, as check() and on_fill(): never the run
                name = getattr(getattr(watch, "__self__", None), "name", "") or repr(watch)
                why = f"risk check {name!r} failed on a mark: {type(exc).__name__}: {exc}"
                escalate(ctx, TradingState.REDUCING, why)
                if name not in self.broken_watches:  # said once per check, not per mark
                    self.broken_watches.add(name)
                    self.unreported.append((name, why))
                continue
            if reason and ctx.trading_state != _HALTED:
                ctx.trading_state, ctx.state_reason = TradingState.HALTED.value, reason
                return reason
        return None

    def market_gate(self, intent: Intent) -> RiskDecision | None:
        """Veto an order on a book that cannot be traded now (or on no market data), on a
        settled instrument, or on one whose market takes no orders
        (:attr:`~argus_core.models.Instrument.takes_orders`)."""
        market = self.ctx.market
        if market is None:
            return None
        iid = intent.instrument_id
        settled = market.settled.get(iid)
        if settled is not None:  # its positions closed at the settlement: no new ones
            how = "was voided" if settled.price is None else f"has settled at {settled.price}"
            return RiskDecision.veto("market_state", f"{iid} {how}"
                                     f" ({settled.reason or 'resolved'}); it trades no more")
        # (a venue would refuse it; a paper broker would fill it on a still-quoted book)
        if (inst := market.instruments.get(iid)) is not None and not inst.takes_orders:
            return RiskDecision.veto("market_state", f"{iid}'s market takes no orders now")
        if iid in market.books:
            ok, why = market.tradeable(iid)
            if not ok:
                return RiskDecision.veto("market_state", f"{iid} is not tradeable: {why}")
        elif not market.has_data(iid):
            return RiskDecision.veto("market_state", f"{iid} has no book, bar or print yet")
        return None

    def evaluate(self, intent: Intent, quantity: Decimal, price: Decimal,
                 portfolio: Portfolio) -> Verdict:
        """Judge an intent sized at ``quantity`` with reference ``price``."""
        decisions: list[RiskDecision] = []
        state = self.ctx.trading_state  # a StrEnum's member equals its text
        gate = self.market_gate(intent)
        if gate is not None:
            decisions.append(gate)
        if not state_allows(state, intent, quantity, portfolio, self.ctx.pending):
            decisions.append(RiskDecision.veto("trading_state", (
                f"trading is HALTED ({self.ctx.state_reason}); only reduce-only exits pass "
                f"until a person runs `argus resume`") if state == TradingState.HALTED else (
                f"trading is REDUCING ({self.ctx.state_reason}); only position-reducing "
                f"orders are allowed")))
        final = quantity
        # An exit (reduce-only, shrinking a position) is judged only by the checks that
        # say they guard exits: exposure limits and the kill switch itself must never
        # keep a position open (the kill switch's flattening orders are exits).
        exit_only = intent.reduce_only and reduces_position(intent, quantity, portfolio)
        for check in self.checks:
            if exit_only and not check.checks_exits:
                continue
            try:
                decision = check.check(intent, quantity, price, portfolio, self.ctx)
                if not isinstance(decision, RiskDecision):  # None: a check forgot to return
                    raise TypeError(f"returned {decision!r}, not a RiskDecision")
            except Exception as exc:  # a broken check fails closed, but never holds an exit
                why = f"check raised {type(exc).__name__}: {exc}"
                decision = RiskDecision(RiskAction.ALLOW if exit_only else RiskAction.VETO,
                                        check.name or type(check).__name__, why)
                if exit_only:  # said although it passes (a veto is said once, below)
                    decisions.append(decision)
            if decision.action is not RiskAction.ALLOW:
                decisions.append(decision)
            if decision.action is RiskAction.SHRINK and decision.quantity is not None:
                final = min(final, decision.quantity)
        if any(d.action is RiskAction.VETO for d in decisions):
            final = Decimal(0)
        return Verdict(max(final, Decimal(0)), tuple(decisions))


def intent_json(intent: Intent) -> str:
    """Compact JSON of an intent for ``risk_events`` rows."""
    return json.dumps(converter.unstructure(intent), sort_keys=True, separators=(",", ":"))
