"""Moving-average crossover (the AI-contract twin of the builtin ``ma_cross``).

Long when the fast simple moving average of closes is above the slow one,
flat otherwise.  State: ``closes`` (the last SLOW closes) and ``long``; the
same keys as ``ma_cross.get_state()``, so either can take over from the other.
"""

FAST = 10
SLOW = 40


class Strategy:
    """Long above the crossover, flat below it."""

    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        closes = state.setdefault("closes", [])
        closes.append(event["close"])
        del closes[:-SLOW]
        if len(closes) < SLOW:
            return []
        fast = sum(closes[-FAST:]) / FAST
        slow = sum(closes) / SLOW
        want_long = fast > slow
        if want_long == state.get("long", False):
            return []
        state["long"] = want_long
        iid = event["instrument_id"]
        if want_long:
            edge = (fast - slow) / slow
            return [{"instrument_id": iid, "side": "buy",
                     "reason": "fast SMA crossed above slow",
                     "forecast": {"mu": edge, "sigma": 0.02, "confidence": 0.5}}]
        held = portfolio["positions"].get(iid, 0.0)
        if held <= 0:
            return []
        return [{"instrument_id": iid, "side": "sell", "quantity": held,
                 "reason": "fast SMA crossed below slow", "reduce_only": True}]
