"""One equity row per timestamp, computed once, however many instruments' bars share the
timestamp, and valued after every one of them (issue 14: with 16 symbols the loop used
to value the account 16 times for one surviving row)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from argus_core.config import parse_config
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import Bar, Intent, MarketEvent, Side
from argus_core.runner import Runner
from argus_core.serde import dump_event

SYMBOLS = [f"replay:S{k}/USD" for k in range(4)]
N_TS = 60


def _close(k: int, t: int) -> float:
    return 100.0 + 10 * k + (t % 7) - 0.5 * (t % 3)


class BuyEachOnce(Strategy):
    """Buys one unit of every instrument on its first bar."""

    name = "buy_each"

    def __init__(self) -> None:
        self.bought: set[str] = set()

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar or event.instrument_id in self.bought:
            return ()
        self.bought.add(event.instrument_id)
        return (Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal(1)),)


def test_one_row_per_timestamp_valued_once_after_all_its_bars(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recording = tmp_path / "bars.ndjson"
    with recording.open("w") as fh:
        for t in range(N_TS):
            for k, iid in enumerate(SYMBOLS):
                c = _close(k, t)
                bar = Bar(iid, (1_700_000_000 + 3600 * t) * 10**9, c, c + 1, c - 1, c, 50.0)
                fh.write(json.dumps(dump_event(bar)) + "\n")
    config = parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "stale_after_s": 0, "checkpoint_every_events": 1000},
        "paper": {"slippage_bps": "0"},
        "plugins": {"replay": {"ndjson": str(recording)}}}, tmp_path / "c.toml")
    calls: list[int] = []
    original = Runner._equity_row

    def counted(self: Runner, ts: int) -> None:
        calls.append(ts)
        original(self, ts)

    monkeypatch.setattr(Runner, "_equity_row", counted)
    Runner(config, tmp_path / "run", strategies={"buy_each": BuyEachOnce()}).run_sync()
    assert len(calls) <= N_TS + 2  # one per timestamp (+ the final commit's rewrite)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = ledger.query("select * from equity order by ts_ns")
        positions = {r["instrument_id"]: Decimal(r["quantity"])
                     for r in ledger.query("select * from positions")}
    assert len(rows) == N_TS
    assert positions == dict.fromkeys(SYMBOLS, Decimal(1))
    # From the second timestamp on every unit is held: each row marks all four at that
    # timestamp's closes (the last bar of the timestamp included).
    cash = Decimal(rows[-1]["cash"])
    for t, row in enumerate(rows[1:], 1):
        marked = sum(Decimal(repr(_close(k, t))) for k in range(len(SYMBOLS)))
        assert Decimal(row["equity"]) == (cash + marked).quantize(Decimal("1e-8")), t
