"""A voided market (``Settlement.price`` None): every position is returned at its own
cost, so the round trip nets zero before fees; nothing trades on it afterwards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from argus_core.config import Config, parse_config
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import Bar, Intent, MarketEvent, Settlement, Side
from argus_core.runner import Runner
from argus_core.serde import dump_event, load_event

IID = "replay:BTC/USD"
T0 = 1_700_000_000


def _replay_config(tmp_path: Path, events: list[MarketEvent]) -> Config:
    """A replay of ``events`` (recorded as NDJSON), no slippage, 10 bps taker fees."""
    recording = tmp_path / "rec.ndjson"
    recording.write_text("".join(json.dumps(dump_event(e)) + "\n" for e in events))
    return parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "stale_after_s": 0},
        "paper": {"slippage_bps": "0", "bar_spread_bps": "0"},
        "plugins": {"replay": {"ndjson": str(recording), "tick_size": "0.01",
                               "lot_size": "1", "taker_bps": "10"}}}, tmp_path / "c.toml")


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
    assert load_event(dump_event(void)) == void and void.void  # None survives a recording
    summary = Runner(_replay_config(tmp_path, events), tmp_path / "run",
                     strategies={"buyer": BuyTwiceThenOnceMore()}).run_sync()
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


class BuyOnceAt(Strategy):
    """Buys 1 on its ``bar``-th bar."""

    def __init__(self, name: str, bar: int) -> None:
        self.name, self.bar, self.bars = name, bar, 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar:
            return ()
        self.bars += 1
        return (Intent(self.name, IID, Side.BUY, quantity=Decimal(1)),) \
            if self.bars == self.bar else ()


def test_a_void_gives_each_book_back_its_own_cost(tmp_path: Path) -> None:
    """Two books bought the voided market at 100 and at 120: each is given back what it
    paid (it was priced at the account's average, 110: one book gained 10, the other
    lost 10); the account's round trip still nets zero before fees."""
    closes = [100.0, 110.0, 120.0, 90.0, 95.0]
    events: list[MarketEvent] = [Bar(IID, (T0 + 60 * k) * 10**9, c, c + 1, c - 1, c, 1e6)
                                 for k, c in enumerate(closes)]
    events.insert(4, Settlement(IID, (T0 + 60 * 3) * 10**9 + 1, None, "market voided"))
    runner = Runner(_replay_config(tmp_path, events), tmp_path / "run", strategies={
        "early": BuyOnceAt("early", 1), "late": BuyOnceAt("late", 2)})
    summary = runner.run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        fills = ledger.query("select f.*, o.strategy from fills f join orders o "
                             "using (client_order_id) order by f.ts_ns, f.fill_id")
    buys = {f["strategy"]: f for f in fills if f["liquidity"] != "settlement"}
    settled = sorted(Decimal(f["price"]) for f in fills if f["liquidity"] == "settlement")
    assert settled == sorted(Decimal(b["price"]) for b in buys.values())  # each its cost
    assert {f["strategy"] for f in fills if f["liquidity"] == "settlement"} == {"settlement"}
    for slot, book in runner.account.books.items():
        fee = Decimal(buys[slot]["fee"])
        assert book.positions[IID].quantity == 0
        assert book.cash == Decimal(50_000) - fee, slot  # its own money back, less its fee
    fees = sum(Decimal(f["fee"]) for f in buys.values())
    assert summary.final_equity == Decimal(100_000) - fees
