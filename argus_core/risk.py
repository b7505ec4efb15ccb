"""The risk engine: trading states and the pass every intent must survive.

Every order the runner creates goes through :meth:`RiskEngine.evaluate`; there
is no other path to the broker.  All enabled checks run on every intent (so
every reason is recorded), any veto wins, and the smallest shrink wins among
the rest.

Trading states:

* ``ACTIVE``   — everything allowed that the checks allow.
* ``REDUCING`` — only intents that reduce an existing position.
* ``HALTED``   — nothing but cancels; latches until a person runs ``argus resume``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from decimal import Decimal

import attrs

from argus_core.interfaces import RiskCheck, RiskContext
from argus_core.models import Intent, Portfolio, RiskAction, RiskDecision
from argus_core.serde import converter


class TradingState(enum.StrEnum):
    """Whether the loop may open risk, only reduce it, or do nothing."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def escalate(ctx: RiskContext, state: TradingState, reason: str) -> None:
    """Move ``ctx`` to ``state`` if that is more severe (states never relax on their own)."""
    if _SEVERITY[state] > _SEVERITY[TradingState(ctx.trading_state)]:
        ctx.trading_state = state.value
        ctx.state_reason = reason


def reduces_position(intent: Intent, quantity: Decimal, portfolio: Portfolio) -> bool:
    """True when the order only shrinks the current position towards flat."""
    held = portfolio.position(intent.instrument_id).quantity
    signed = quantity * intent.side.sign
    return held != 0 and (held > 0) != (signed > 0) and abs(signed) <= abs(held)


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

    @property
    def state(self) -> TradingState:
        """Current trading state."""
        return TradingState(self.ctx.trading_state)

    def evaluate(self, intent: Intent, quantity: Decimal, price: Decimal,
                 portfolio: Portfolio) -> Verdict:
        """Judge an intent sized at ``quantity`` with reference ``price``."""
        decisions: list[RiskDecision] = []
        state = self.state
        if state is TradingState.HALTED:
            decisions.append(RiskDecision.veto(
                "trading_state", f"trading is HALTED ({self.ctx.state_reason}); "
                                 f"only a person can clear it with `argus resume`"))
        elif state is TradingState.REDUCING and not reduces_position(intent, quantity,
                                                                     portfolio):
            decisions.append(RiskDecision.veto(
                "trading_state", f"trading is REDUCING ({self.ctx.state_reason}); only "
                                 f"position-reducing orders are allowed"))
        final = quantity
        for check in self.checks:
            decision = check.check(intent, quantity, price, portfolio, self.ctx)
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
