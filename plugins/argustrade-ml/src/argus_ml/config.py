"""``[plugins.ml]``: where models live, the ``ml`` forecaster, the ``updown_replay``
venue's binary market model and the rules of the ``ml_updown`` / ``ml_near_expiry``
strategies (one table: every component of the plugin is built from it)."""

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
    # the forecaster the strategies ask (``ctx.market.forecasters[forecaster]``)
    forecaster: str = "ml"
    # strategy: trade only when P(up) beats the binary's ask plus fees by this much
    edge_threshold: float = attrs.field(default=0.02, validator=PROBABILITY)
    # the stated binary market (no quotes recorded): half-spread around the fair 0.5 price;
    # the updown_replay venue quotes with it and the promotion gates price bets with it
    half_spread: float = attrs.field(default=0.01, validator=in_range(0.0, 0.49))
    # fee per contract as a share of the price paid (the venue's fee schedule)
    fee_rate: float = attrs.field(default=0.02, validator=in_range(0.0, 0.5))
    # multiplier on full binary Kelly, and the cap on the share of equity per bet
    kelly_fraction: float = attrs.field(default=0.25, validator=FRACTION)
    max_fraction: float = attrs.field(default=0.05, validator=FRACTION)
    # circuit breaker: stop opening bets after this many losses in a row
    max_consecutive_losses: int = attrs.field(default=5, validator=POSITIVE)
    # drift: EMA weight of the online Brier score, and the limits that demote to shadow
    brier_ema_alpha: float = attrs.field(default=0.02, validator=FRACTION)
    brier_margin: float = attrs.field(default=0.02, validator=NON_NEGATIVE)
    # PSI: the floor under each feature's calibrated threshold (the model's registry
    # row), and the whole limit for a model trained before thresholds were calibrated
    psi_limit: float = attrs.field(default=0.25, validator=POSITIVE)
    # PSI window in rows; None = the window the model's thresholds were calibrated on
    # (500 for a model without them).  Another length than the calibrated one is refused.
    psi_window: int | None = attrs.field(default=None, validator=optional(POSITIVE))
    # a feature alarms after its PSI is above its threshold on this many checks in a row
    psi_consecutive: int = attrs.field(default=1, validator=POSITIVE)
    # (not optional: unset, the Brier EMA compared its count with None on the first
    # outcome, a TypeError in the middle of the run)
    drift_min_obs: int = attrs.field(default=200, validator=POSITIVE)
    # whether a drift alarm in a replay (backtest) run demotes the model in the registry;
    # off by default: a backtest on old data must not demote a model that trades live.
    # The alarm is recorded either way (risk event, report) and closes the run's gate.
    demote_in_replay: bool = False
    # whether the ml forecaster answers at bars inside the data its model was trained on
    # (before the last training label was known): off, such a backtest would score the
    # model on its own training data; on, the forecasts are given, logged and the report
    # counts the bets they placed as in sample
    allow_in_sample: bool = False
    # the updown_replay venue: a Kraken OHLCVT CSV (no header), its bar length, and the
    # window (bar open times in unix seconds: start inclusive, end exclusive)
    bars_csv: Path | None = None
    symbol: str = "BTC/USD"
    bar_seconds: int = attrs.field(default=3600, validator=POSITIVE)
    bars_start: int | None = None
    bars_end: int | None = None
    # bars per up/down window (the model's label horizon should match it)
    window_bars: int = attrs.field(default=1, validator=POSITIVE)
    # contracts shown at the ask and at the bid of each stated book (one level)
    depth: int = attrs.field(default=1000, validator=POSITIVE)
    # ml_near_expiry: buy a binary priced within [min_price, max_price] at most
    # expiry_window_s before its scheduled resolution when p_win - ask - fee > near_edge
    min_price: float = attrs.field(default=0.85, validator=PROBABILITY)
    max_price: float = attrs.field(default=0.95, validator=PROBABILITY)
    expiry_window_s: float = attrs.field(default=3600.0, validator=POSITIVE)
    near_edge: float = attrs.field(default=0.01, validator=PROBABILITY)

    def __attrs_post_init__(self) -> None:
        if self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} > max_price {self.max_price}")
        if self.bars_start is not None and self.bars_end is not None and \
                self.bars_end <= self.bars_start:
            # the venue then read no bars and said only "0 bars in the window" of the file
            raise ValueError(f"bars_end {self.bars_end} is not after bars_start "
                             f"{self.bars_start} (bar open times in unix seconds; the end "
                             "is exclusive)")
