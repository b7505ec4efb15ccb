"""End to end: the plugin loads from its entry point and backtests through
``argus_core.run_backtest`` on the bundled bars, paying Kraken's fees."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from argus_testkit import ConfigRunner

from argus_core import run_backtest


def test_backtest_runs_end_to_end_with_fees(run_config: ConfigRunner, kraken_csv: Path) -> None:
    config = run_config({
        "argus": {"plugins": ["overnight"], "mode": "replay"},
        "run": {"venue": "replay", "strategies": ["overnight_session"],
                "sizer": "fixed_fraction", "starting_cash": "100000"},
        "plugins": {
            "replay": {"bars_csv": str(kraken_csv), "start": "2022-10-01",
                       "end": "2022-11-01", "taker_bps": "40", "maker_bps": "25"},
            # hurdle 0: trade the training-positive segments so the fees show up
            "overnight": {"history_csv": str(kraken_csv), "train_start": "2020-01-01",
                          "train_end": "2022-10-01", "hurdle_bps": 0.0, "min_t": 1.0},
            "sizing": {"fraction": "0.05"},
        },
    })
    result = run_backtest(config)
    assert result.fills, "the forced variant should trade in October 2022"
    for fill in result.fills:
        notional = fill.price * fill.quantity
        assert abs(fill.fee - notional * Decimal("0.004")) < Decimal("1e-8")  # 40 bps taker
    buys = sum(f.side.value == "buy" for f in result.fills)
    assert buys and abs(buys - (len(result.fills) - buys)) <= 1
