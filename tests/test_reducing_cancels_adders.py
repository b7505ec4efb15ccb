"""REDUCING refuses new orders that add to a position; before, an entry already resting
when the state became REDUCING kept working and could fill, adding the risk the state
forbids (seen with a rolled-back strategy's resting bid).  Now the change to REDUCING
cancels, once, every working order that adds to its position; exits keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
from order_path_kit import RTVenue, Scripted, X, Y, bar, buy, q, register, runner, sell

from argus_core.interfaces import StrategyContext
from argus_core.models import MarketEvent, TimeInForce


class CrashesOnFour(Scripted):
    """Places the plan's orders, then raises on its fifth event (the loop goes REDUCING)."""

    def on_event(self, event: MarketEvent, ctx: StrategyContext):  # type: ignore[no-untyped-def]
        if self.k == 4:
            raise RuntimeError("a bug in the strategy")
        return super().on_event(event, ctx)


@pytest.mark.parametrize("mode", ["live", "paper"])
def test_going_reducing_cancels_the_working_orders_that_add_and_keeps_the_exits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    register(monkeypatch)
    RTVenue.script = [b for t in range(1, 8) for b in (bar(X, t), bar(Y, t))]
    gtc = TimeInForce.GTC
    plan = {2: lambda e, c: [buy(X, "2", limit="101")],                  # held: 2 X
            3: lambda e, c: [buy(X, "1", limit="50", tif=gtc),           # adds to X
                             sell(X, "1", limit="150", tif=gtc),         # an exit of X
                             buy(Y, "1", limit="50", tif=gtc)]}          # adds to Y (none held)
    runner(tmp_path, {"s": CrashesOnFour(plan)}, mode=mode).run_sync()
    run = tmp_path / "run"
    rows = {(r["instrument_id"], r["side"]): r for r in q(
        run, "select instrument_id, side, status, reason from orders where time_in_force = 'gtc'")}
    assert rows[(X, "buy")]["status"] == "cancelled", rows
    assert rows[(Y, "buy")]["status"] == "cancelled", rows
    assert rows[(X, "sell")]["status"] == "open", rows  # the exit still works
    state = q(run, "select value from control where key = 'trading_state'")
    assert "reducing" in str(state), state
    if mode == "live":
        assert len(RTVenue.cancelled) == 2, RTVenue.cancelled
