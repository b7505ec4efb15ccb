"""The account's marks: a re-entry is never valued at the previous trade's last price.

A constructed scenario checks the rule fill by fill; the demo (a Runner on
``examples/demo.toml``) checks the equity curve bar by bar against an independent
recomputation from the ledger's fills and the bars' closes.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
from argus_test_helpers import ROOT

from argus_core.account import Account
from argus_core.builtins.replay_venue import _to_epoch_s, read_bars_csv
from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.metrics import drawdown
from argus_core.models import Fill, Liquidity, Side
from argus_core.runner import Runner

INST = "v:X/USD"


def _fill(n: int, side: Side, price: str, qty: str, fee: str = "0") -> Fill:
    return Fill(f"f{n}", f"o{n}", "v", INST, side, Decimal(price), Decimal(qty),
                Decimal(fee), Liquidity.TAKER, n)


def test_a_reentry_is_marked_at_its_fill_not_the_last_trades_mark() -> None:
    acct = Account(Decimal(1000))
    acct.apply(_fill(1, Side.BUY, "100", "1"))
    assert acct.marks[INST] == Decimal(100)  # new position: its fill price
    acct.mark(INST, 150.0)
    assert acct.equity() == Decimal(1050)
    acct.apply(_fill(2, Side.SELL, "150", "1"))
    assert INST not in acct.marks  # flat: the mark goes with the position
    acct.mark(INST, 400.0)  # prices while flat are not kept
    assert INST not in acct.marks and acct.equity() == Decimal(1050)
    acct.apply(_fill(3, Side.BUY, "90", "2", fee="1"))
    # The old code kept 150 here: equity 1050 - 180 - 1 + 300 = 1169, a one-bar spike.
    assert acct.marks[INST] == Decimal(90)
    assert acct.equity() == Decimal(1049) == acct.valuation()[0]
    assert acct.portfolio().marks[INST] == Decimal(90)
    acct.mark(INST, 95.0)  # the next market price takes over
    assert acct.equity() == Decimal(1059)


def test_adding_to_or_flipping_a_held_position_keeps_the_market_mark() -> None:
    acct = Account(Decimal(0))
    acct.apply(_fill(1, Side.BUY, "100", "1"))
    acct.mark(INST, 120.0)
    acct.apply(_fill(2, Side.BUY, "118", "1"))  # adds: the market price stays the mark
    assert acct.marks[INST] == Decimal(120)
    acct.apply(_fill(3, Side.SELL, "119", "3"))  # flips short without passing flat
    assert acct.positions[INST].quantity == -1 and acct.marks[INST] == Decimal(120)


def test_checkpoints_restore_without_stale_flat_marks() -> None:
    acct = Account(Decimal(10))
    acct.set_state({"cash": "10", "fees_paid": "0", "marks": {INST: "150", "v:Y": "3"},
                    "positions": {INST: ["0", "0", "5"], "v:Y": ["2", "2", "0"]}})
    assert acct.marks == {"v:Y": Decimal(3)}
    acct.apply(_fill(1, Side.BUY, "90", "1"))
    assert acct.marks[INST] == Decimal(90)
    restored = Account(Decimal(0))
    restored.set_state(acct.get_state())
    assert restored.get_state() == acct.get_state()


def test_demo_equity_equals_a_recomputation_from_fills_and_closes(tmp_path: Path) -> None:
    """Every equity row of the demo is cash plus position at the bar's close, except on a
    bar whose fills opened the position from flat, where the opening fill's price may stand
    in until the next bar (the fill came after the bar's close was marked).  No row carries
    an older trade's price: no one-bar spikes, and the drawdown is the real ~9.5%."""
    example = ROOT / "examples" / "demo.toml"
    config = load_config(example)
    Runner(config, tmp_path / "demo").run_sync()
    settings = config.plugins["replay"]
    bars = read_bars_csv(config.resolve_path(settings["bars_csv"]), "replay:BTC/USD",
                         int(settings["bar_seconds"]), _to_epoch_s(settings["start"]))
    with Ledger.in_dir(tmp_path / "demo") as ledger:
        rows = ledger.conn.execute("select ts_ns, equity from equity order by ts_ns").fetchall()
        fills = ledger.fills()
    assert len(rows) == len(bars) and len(fills) > 100
    by_ts: dict[int, list[dict]] = defaultdict(list)
    for f in fills:
        by_ts[f["ts_ns"]].append(f)
    cash, qty = Decimal(config.run.starting_cash), Decimal(0)
    at_fill_price = 0
    for bar, (ts, equity) in zip(bars, rows, strict=True):
        assert bar.ts_ns == ts
        opened_at: Decimal | None = None
        for f in by_ts.pop(ts, []):
            sign = 1 if f["side"] == "buy" else -1
            q, p = Decimal(f["quantity"]), Decimal(f["price"])
            if qty == 0:
                opened_at = p
            qty += sign * q
            cash -= sign * q * p + Decimal(f["fee"])
        at_close = cash + qty * Decimal(repr(bar.close))
        if abs(Decimal(equity) - at_close) <= Decimal("1e-6"):
            continue
        assert opened_at is not None and qty != 0, (ts, equity, at_close)
        assert abs(Decimal(equity) - (cash + qty * opened_at)) <= Decimal("1e-6")
        at_fill_price += 1
    assert not by_ts  # every fill happened on a bar
    eq = np.array([float(r[1]) for r in rows])
    assert 0.090 < float(drawdown(eq).max()) < 0.100
    jumps = np.abs(np.diff(eq) / eq[:-1])
    assert float(jumps.max()) < 0.015  # the stale-mark spikes reached 2.9% in one hour
    assert at_fill_price <= len(fills) // 2 + 1  # only entry bars
