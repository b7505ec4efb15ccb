"""A voided market (``Settlement.price`` None): every position is returned at its own
cost, so the round trip nets zero before fees; nothing trades on it afterwards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from argus_core.config import parse_config
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import Bar, Intent, MarketEvent, Settlement, Side
from argus_core.runner import Runner
from argus_core.serde import dump_event, load_event

IID = "replay:BTC/USD"
T0 = 1_700_000_000


class BuyTwiceThenOnceMore(Strategy):
    """Buys 1 on the first two bars (two prices: an average cost), and 1 after the void."""

    name = "buyer"

    def __init__(self) -> None:
        self.bars = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar:
            return ()
        self.bars += 1
        if self.bars in (1, 2, 5):
            return (Intent(self.name, IID, Side.BUY, quantity=Decimal(1)),)
        return ()


def test_a_void_closes_each_position_at_its_own_cost_and_trades_stop(tmp_path: Path
                                                                     ) -> None:
    closes = [100.0, 110.0, 120.0, 90.0, 95.0, 97.0]
    events: list[MarketEvent] = [Bar(IID, (T0 + 60 * k) * 10**9, c, c + 1, c - 1, c, 1e6)
                                 for k, c in enumerate(closes)]
    void = Settlement(IID, (T0 + 60 * 3) * 10**9 + 1, None, "market voided")
    events.insert(4, void)
    recording = tmp_path / "rec.ndjson"
    recording.write_text("".join(json.dumps(dump_event(e)) + "\n" for e in events))
    assert load_event(dump_event(void)) == void and void.void  # None survives a recording
    config = parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "stale_after_s": 0},
        "paper": {"slippage_bps": "0", "bar_spread_bps": "0"},
        "plugins": {"replay": {"ndjson": str(recording), "tick_size": "0.01",
                               "lot_size": "1", "taker_bps": "10"}}}, tmp_path / "c.toml")
    summary = Runner(config, tmp_path / "run", strategies={"buyer": BuyTwiceThenOnceMore()}
                     ).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        fills = ledger.query("select * from fills order by ts_ns, fill_id")
        vetoes = ledger.query("select reason from risk_events where action = 'veto'")
    buys = [f for f in fills if f["liquidity"] != "settlement"]
    (settled,) = [f for f in fills if f["liquidity"] == "settlement"]
    assert len(buys) == 2  # the order after the void never reached the broker
    cost = sum(Decimal(f["price"]) * Decimal(f["quantity"]) for f in buys) / 2
    assert Decimal(settled["price"]) == cost and settled["side"] == "sell"
    assert Decimal(settled["quantity"]) == 2 and Decimal(settled["fee"]) == 0
    fees = sum(Decimal(f["fee"]) for f in buys)
    assert summary.final_equity == Decimal(100_000) - fees  # the round trip nets zero
    assert any("was voided" in v["reason"] for v in vetoes)
