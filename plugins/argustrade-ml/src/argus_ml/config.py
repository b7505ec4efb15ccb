"""``[plugins.ml]``: where models live and how the ``ml_updown`` strategy trades."""

from __future__ import annotations

from pathlib import Path

import attrs

from argus_core import FRACTION, NON_NEGATIVE, POSITIVE, PROBABILITY, in_range, optional


@attrs.frozen
class MLSettings:
    """``[plugins.ml]``: the model registry and the binary up/down strategy's rules."""

    # the ledger file holding the model registry (ml_models, ml_model_events)
    registry: Path | None = None
    # the model the strategy uses: a registry model id, or None for the newest model
    # whose status allows the run's mode
    model_id: str | None = None
    # strategy: trade only when P(up) beats the binary's ask plus fees by this much
    edge_threshold: float = attrs.field(default=0.02, validator=PROBABILITY)
    # the synthetic binary market: half-spread around the fair 0.5 price (no quotes recorded)
    half_spread: float = attrs.field(default=0.01, validator=in_range(0.0, 0.49))
    # fee per contract as a share of the price paid
    fee_rate: float = attrs.field(default=0.02, validator=in_range(0.0, 0.5))
    # multiplier on full binary Kelly, and the cap on the share of equity per bet
    kelly_fraction: float = attrs.field(default=0.25, validator=FRACTION)
    max_fraction: float = attrs.field(default=0.05, validator=FRACTION)
    # circuit breaker: stop opening bets after this many losses in a row
    max_consecutive_losses: int = attrs.field(default=5, validator=POSITIVE)
    # drift: EMA weight of the online Brier score, and the limits that demote to shadow
    brier_ema_alpha: float = attrs.field(default=0.02, validator=FRACTION)
    brier_margin: float = attrs.field(default=0.02, validator=NON_NEGATIVE)
    psi_limit: float = attrs.field(default=0.25, validator=POSITIVE)
    drift_min_obs: int = attrs.field(default=200, validator=optional(POSITIVE))
