"""``ml_updown``: bets on the next ``h``-bar up/down window with a registered model's P(up).

Rules, per bar of the replayed instrument:

1. The feature engine adds the bar (the same definitions the model was trained on,
   checked by ``name@version``); the model gives P(up) for the window of the next
   ``h`` bars (``h`` = the model's label horizon).
2. The bet: the stated binary market (:mod:`argus_ml.market`: ask 0.5 + half spread,
   fee on the price) is bought on the side whose edge ``P - cost`` clears
   ``edge_threshold``.  Stake: binary Kelly ``(P - cost) / (1 - cost)`` times
   ``kelly_fraction``, capped at ``max_fraction`` of equity.
3. No binary instrument exists in a bar replay, so the bet is expressed on the spot
   instrument: an *up* bet buys that share of equity in spot at the next bar (fill at
   its open, fees and slippage as configured) and sells it all when the window ends
   (settlement); a *down* bet is not placed (spot shorting is not modelled) and is
   counted.  So the backtest P&L is spot P&L over the window, not the binary payoff; the
   binary P&L is what the promotion gate replays out of fold.
4. Circuit breaker: after ``max_consecutive_losses`` losing windows in a row no new bet
   opens.
5. Only a model with status ``paper`` or ``live`` trades; a ``shadow`` model's forecasts
   are computed and monitored, never traded.  The drift monitor (Brier EMA on realised
   windows, PSI on features) demotes the model to shadow in the registry on an alarm,
   and the strategy stops opening bets at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np

from argus_core import (
    Bar,
    ConfigError,
    Forecast,
    Intent,
    MarketEvent,
    Side,
    Strategy,
    StrategyContext,
)
from argus_ml.config import MLSettings
from argus_ml.drift import DriftMonitor
from argus_ml.features import FeatureEngine, FeatureRegistry
from argus_ml.market import BinaryMarket, kelly_fraction
from argus_ml.modelfile import ProbabilityModel

TRADING = ("paper", "live")


class MLUpDown(Strategy):
    """Binary up/down bets from a registry model's P(up), sized by capped binary Kelly
    (module docstring: every rule)."""

    name = "ml_updown"

    def __init__(self, settings: MLSettings | None) -> None:
        self.s = settings or MLSettings()
        self.market = BinaryMarket(self.s.half_spread, self.s.fee_rate)
        self.model: ProbabilityModel | None = None
        self.model_id = ""
        self.status = "shadow"
        self.engine: FeatureEngine | None = None
        self.monitor: DriftMonitor | None = None
        self.registry: Any = None
        self.horizon = 1
        self.bar_index = 0
        self.exit_at: int | None = None
        self.entry_close = 0.0
        self.losses = 0
        self.pending: deque[tuple[int, float, float]] = deque()  # (settles at, P, close)
        self.stats = {"forecasts": 0, "up_bets": 0, "down_skipped": 0, "breaker_skips": 0}

    def _load(self) -> None:
        from argus_ml.registry import ModelRegistry, open_registry

        if self.s.registry is None:
            raise ConfigError("ml_updown needs [plugins.ml] registry = the model registry file")
        self.registry = ModelRegistry(open_registry(self.s.registry))
        model_id = self.s.model_id or next(iter(self.registry.usable("paper")), None)
        if model_id is None:
            raise ConfigError(f"{self.s.registry}: no model with status paper or live; "
                              "promote one with `argus ml promote`")
        self.model_id = model_id
        self.model = self.registry.load(model_id)
        self.status = self.registry.get(model_id)["status"]
        reg = FeatureRegistry.default()
        self.engine = FeatureEngine(reg.select(list(self.model.features)))
        self.horizon = int(self.model.meta.get("label", {}).get("horizon_bars", 1))
        self.monitor = DriftMonitor(
            model_id, self.registry, baseline_brier=float(self.model.meta.get("oof_brier", 0.25)),
            reference=self.model.meta.get("reference", {}), keys=self.model.features,
            alpha=self.s.brier_ema_alpha, margin=self.s.brier_margin,
            psi_limit=self.s.psi_limit, min_obs=self.s.drift_min_obs)

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        """One bar: settle an ended window, score realised forecasts, maybe open a bet."""
        if not isinstance(event, Bar):
            return []
        if self.model is None:
            self._load()
        assert self.engine is not None and self.monitor is not None and self.model is not None
        intents: list[Intent] = []
        i = self.bar_index
        self.bar_index += 1
        row = self.engine.update(event)
        if self.exit_at is not None and i >= self.exit_at:
            held = ctx.portfolio.position(event.instrument_id).quantity
            if held > 0:
                intents.append(Intent(self.name, event.instrument_id, Side.SELL, quantity=held,
                                      reduce_only=True, reason="up/down window ended"))
            self.losses = 0 if event.close > self.entry_close else self.losses + 1
            self.exit_at = None
        while self.pending and self.pending[0][0] <= i:
            _, p_old, c0 = self.pending.popleft()
            self.monitor.observe_outcome(p_old, 1.0 if event.close > c0 else 0.0, event.ts_ns)
        if not row.complete:
            return intents
        p = float(self.model.predict(np.array([row.values]))[0])
        self.stats["forecasts"] += 1
        self.pending.append((i + self.horizon, p, event.close))
        self.monitor.observe_features(row.values, event.ts_ns)
        if self.status not in TRADING or self.monitor.tripped or intents or \
                self.exit_at is not None:
            return intents
        side = int(self.market.decide(np.array([p]), self.s.edge_threshold)[0])
        if side == -1:
            self.stats["down_skipped"] += 1
        if side != 1:
            return intents
        if self.losses >= self.s.max_consecutive_losses:
            self.stats["breaker_skips"] += 1
            return intents
        f = min(kelly_fraction(p, self.market.cost) * self.s.kelly_fraction, self.s.max_fraction)
        qty = (ctx.portfolio.equity * Decimal(repr(f)) / Decimal(repr(event.close))
               ).quantize(Decimal("1e-6"), rounding=ROUND_DOWN)
        if qty <= 0:
            return intents
        self.exit_at, self.entry_close = i + self.horizon, event.close
        self.stats["up_bets"] += 1
        payoff = (1.0 - self.market.cost) / self.market.cost
        return [Intent(self.name, event.instrument_id, Side.BUY, quantity=qty,
                       forecast=Forecast(p_win=p, payoff=payoff),
                       reason=f"P(up) {p:.3f} vs cost {self.market.cost:.3f}; "
                              f"model {self.model_id}")]

    def get_state(self) -> dict[str, Any]:
        """Engine window, open window, loss streak and unsettled forecasts."""
        return {"engine": self.engine.get_state() if self.engine else None,
                "bar_index": self.bar_index, "exit_at": self.exit_at,
                "entry_close": self.entry_close, "losses": self.losses,
                "pending": [list(p) for p in self.pending], "stats": dict(self.stats)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (the model is reloaded from the registry)."""
        if self.model is None:
            self._load()
        if self.engine is not None and state.get("engine"):
            self.engine.set_state(state["engine"])
        self.bar_index = int(state.get("bar_index", 0))
        self.exit_at = state.get("exit_at")
        self.entry_close = float(state.get("entry_close", 0.0))
        self.losses = int(state.get("losses", 0))
        self.pending = deque((int(a), float(b), float(c)) for a, b, c in state.get("pending", []))
        self.stats.update(state.get("stats", {}))
