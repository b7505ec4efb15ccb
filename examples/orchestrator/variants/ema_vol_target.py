"""Trend filter with volatility targeting: long only while the 3-day EMA of closes is
clearly above the 20-day EMA; the position is sized to a target volatility."""

import math

FAST = 72  # hours
SLOW = 480  # hours (20 days)
BAND = 0.01  # 1% hysteresis band on the trend filter
WARMUP = 480  # bars before the averages are trusted
TARGET_VOL = 0.40  # annualised volatility of the position at full weight
MAX_WEIGHT = 0.07  # at most 7% of equity (the per-play cap)
VOL_HALF_LIFE = 336  # hours, for the EWMA variance of hourly log returns
REBALANCE = 0.5  # resize only when the target is 50% away from the holding
HOURS_PER_YEAR = 8760


class Strategy:
    """Trend on/off from two EMAs; size = equity * 7% * min(1, target vol / realised vol)."""

    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        close = event["close"]
        last = state.get("last")
        n = state.get("n", 0) + 1
        state["n"] = n
        state["last"] = close
        fast = state.get("fast", close)
        slow = state.get("slow", close)
        fast += 2.0 / (FAST + 1) * (close - fast)
        slow += 2.0 / (SLOW + 1) * (close - slow)
        state["fast"] = fast
        state["slow"] = slow
        if last:
            r = math.log(close / last)
            decay = 0.5 ** (1.0 / VOL_HALF_LIFE)
            var = state.get("var")
            state["var"] = r * r if var is None else decay * var + (1 - decay) * r * r
        if n < WARMUP or not state.get("var"):
            return []
        trend = state.get("trend", False)
        if not trend and fast > slow * (1 + BAND):
            trend = True
        elif trend and fast < slow * (1 - BAND):
            trend = False
        state["trend"] = trend
        iid = event["instrument_id"]
        held = portfolio["positions"].get(iid, 0.0)
        vol = math.sqrt(state["var"] * HOURS_PER_YEAR)
        weight = MAX_WEIGHT * min(1.0, TARGET_VOL / vol) if trend else 0.0
        target = portfolio["equity"] * weight / close
        if target <= 0:
            if held > 0:
                return [{"instrument_id": iid, "side": "sell", "quantity": held,
                         "reason": "trend filter off", "reduce_only": True}]
            return []
        if held <= 0:
            return [{"instrument_id": iid, "side": "buy", "quantity": target,
                     "reason": f"trend on; vol {vol:.0%} -> weight {weight:.2%}"}]
        if abs(target - held) > REBALANCE * held:
            side = "buy" if target > held else "sell"
            return [{"instrument_id": iid, "side": side, "quantity": abs(target - held),
                     "reason": f"resize to vol target (vol {vol:.0%})",
                     "reduce_only": side == "sell"}]
        return []
