"""What CONTRACT.md promises about sizing: an intent with neither a quantity nor a forecast
is sized to zero by the ``kelly`` sizer, never becomes an order, and leaves a
``sizing``/``skip`` risk event saying why; a forecast or a quantity does trade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from argus_orchestrator.sandbox import SandboxedStrategy, WorkerPolicy

from argus_core.backtest import run_backtest
from argus_core.config import load_config
from argus_core.ledger import Ledger

BARS = Path(__file__).parents[4] / "examples" / "data" / "kraken_XBTUSD_60.csv"

BUY_ONCE = '''
class Strategy:
    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        if state.get("asked"):
            return []
        state["asked"] = True
        return [{"instrument_id": event["instrument_id"], "side": "buy", {extra}
                 "reason": "enter"}]
'''


@pytest.mark.parametrize(("extra", "trades"), [
    ("", False),  # neither a quantity nor a forecast: sized to zero
    ('"forecast": {"mu": 0.01, "sigma": 0.02, "confidence": 0.5},', True),
    ('"quantity": 0.01,', True),
])
def test_an_intent_without_quantity_or_forecast_is_sized_to_zero_and_says_so(
        tmp_path: Path, extra: str, trades: bool) -> None:
    (tmp_path / "c.toml").write_text(f"""
[argus]
plugins = []
mode = "replay"

[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "kelly"
starting_cash = "100000"

[plugins.replay]
bars_csv = "{BARS}"
start = "2022-01-01"
end = "2022-01-03"
""")
    strategy = SandboxedStrategy(BUY_ONCE.replace("{extra}", extra), name="ma_cross",
                                 policy=WorkerPolicy(call_timeout_s=2.0))
    try:
        result = run_backtest(load_config(tmp_path / "c.toml"), tmp_path / "run",
                              strategies={"ma_cross": strategy})
    finally:
        strategy.close()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        skips = ledger.query("select * from risk_events where check_name = 'sizing' "
                             "and action = 'skip'")
    assert (result.summary.orders > 0) is trades
    if trades:
        assert not skips
    else:
        (skip,) = skips
        assert "'kelly'" in skip["reason"] and "no forecast" in skip["reason"]
        intent = json.loads(skip["intent_json"])
        assert skip["strategy"] == "ma_cross" and intent["reason"] == "enter"
        assert intent["quantity"] is None and intent["forecast"] is None
