"""``vrp_regime_guard``: a pre-trade risk check that reads the regime features itself.

The strategy already waits for a calm regime; this check enforces it in the risk
layer, where no strategy (an AI-rewritten one included) can skip it: an order that
*opens or adds to* an option position on ``vrp_options`` is vetoed when its
underlying's BOCPD ``bocpd_p_change`` exceeds ``guard_max_p_change`` or (with
``guard_block_stressed``) the vol regime is stressed or ``vol_spike`` is set.  It
reads the venue's regime ``Signal`` events through ``RiskContext.market`` -- the
same values the runner stores in the ledger's ``signals`` table.  Reduce-only
orders (exits) always pass: a guard must never trap a position.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import ClassVar

from argus_lab.regime import STRESSED

from argus_core import DataError, Intent, Portfolio, RiskCheck, RiskContext, RiskDecision
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import VENUE
from argus_strategy_vrp.instruments import PutContract


class VrpRegimeGuard(RiskCheck):
    """Veto new option risk on ``vrp_options`` outside a calm regime."""

    name: ClassVar[str] = "vrp_regime_guard"

    def __init__(self, settings: VrpSettings | None = None) -> None:
        self.s = settings or VrpSettings()

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        """Allow exits and anything off this venue; judge opens by the underlying's regime."""
        if intent.reduce_only or not intent.instrument_id.startswith(f"{VENUE}:"):
            return RiskDecision.allow(self.name)
        try:
            underlying = PutContract.parse(intent.instrument_id).underlying
        except DataError:
            return RiskDecision.allow(self.name)  # an underlying or the VIX: not options risk
        if ctx.market is None:
            return RiskDecision.veto(self.name, "no market state to read the regime from")
        sid = f"{VENUE}:{underlying}"
        p_change = ctx.market.signal("bocpd_p_change", sid)
        regime = ctx.market.signal("vol_regime", sid)
        spike = ctx.market.signal("vol_spike", sid)
        if (p_change is None or regime is None or not (_finite(p_change) and _finite(regime))
                or not (spike is None or _finite(spike))):
            # a NaN passed both comparisons below (NaN > limit is False): fail closed
            return RiskDecision.veto(self.name, f"regime features of {sid} not published "
                                                f"yet (or not finite)")
        if p_change > self.s.guard_max_p_change:
            return RiskDecision.veto(self.name, f"{sid} P(change) {p_change:.4f} > "
                                                f"{self.s.guard_max_p_change}")
        if self.s.guard_block_stressed and (regime == STRESSED or spike):
            return RiskDecision.veto(self.name, f"{sid} vol regime {int(regime)}"
                                                f"{' with a vol spike' if spike else ''}")
        return RiskDecision.allow(self.name)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
