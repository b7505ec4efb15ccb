"""Whole runs on the composite: the bundled BTC bar replay (``replay``) and the VRP option
replay (``vrp_options``) in one run give the same fills as each venue alone, and a
``--set`` that the inner venues would not see stops the run before it trades."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from argus_core import ArgusError, Ledger, load_config, run_backtest

BARS = Path(__file__).resolve().parents[3] / "examples" / "data" / "kraken_XBTUSD_60.csv"
START, END = "2021-01-01", "2021-02-15"

REPLAY = f"""
[plugins.replay]
bars_csv = "{BARS}"
symbol = "BTC/USD"
bar_seconds = 3600
start = "{START}"
end = "{END}"
maker_bps = "25"
taker_bps = "40"

[plugins.example]
fast = 12
slow = 48
instrument_id = "replay:BTC/USD"   # without it ma_cross averages the VRP venue's bars too
"""

VRP = f"""
[plugins.vrp]
symbols = ["SPY", "QQQ"]
start = "{START}"
end = "{END}"
min_vrp = 0.02
max_p_change = 0.3
selection = "delta"
short_delta = 0.2
width = 10.0
risk_budget = 0.02
max_risk_per_play = 5000.0
profit_target = 0.5
stop_multiple = 2.0
exit_dte = 5
spread_scale = 0.25
"""

COMMON = """
[paper]
latency_ms = 0
bar_spread_bps = "2"
bar_depth_fraction = 0.1

[plugins.risk]
max_consecutive_losses = 1000
per_play_fraction = "0.5"
max_drawdown_fraction = "0.9"
"""


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def _fills(run_dir: Path) -> list[tuple[Any, ...]]:
    with Ledger.in_dir(run_dir) as ledger:
        rows = ledger.query("select f.ts_ns, f.instrument_id, f.side, f.price, f.quantity, "
                            "f.fee, o.strategy from fills f join orders o "
                            "using (client_order_id) order by f.ts_ns, f.instrument_id, "
                            "f.side, f.quantity")
    return [tuple(r[k] for k in ("ts_ns", "instrument_id", "side", "price", "quantity",
                                 "fee", "strategy")) for r in rows]


def _alone(tmp_path: Path, name: str, venue: str, plugins: str, strategy: str,
           tables: str) -> list[tuple[Any, ...]]:
    cfg = _write(tmp_path, f"{name}.toml", f"""
[argus]
plugins = [{plugins}]
mode = "replay"
seed = 7
[run]
venue = "{venue}"
strategies = ["{strategy}"]
sizer = "fixed_fraction"
starting_cash = "50000"
risk_checks = ["max_position", "per_play_cap"]
{COMMON}{tables}""")
    run_backtest(load_config(cfg), tmp_path / name)
    return _fills(tmp_path / name)


def test_two_venues_in_one_run_fill_as_each_alone(tmp_path: Path) -> None:
    """ma_cross on BTC bars and vrp_put_spread on option books: one run on the composite,
    each with half the cash as its own book, fills exactly as two runs of one venue each
    with that half (the strategies share neither instruments nor capital)."""
    btc = _alone(tmp_path, "btc", "replay", "", "ma_cross", REPLAY)
    vrp = _alone(tmp_path, "vrp", "vrp_options", '"vrp"', "vrp_put_spread", VRP)
    assert btc and vrp  # both traded in the window
    cfg = _write(tmp_path, "both.toml", f"""
[argus]
plugins = ["multivenue", "vrp"]
mode = "replay"
seed = 7
[run]
venue = "multivenue"
strategies = ["ma_cross", "vrp_put_spread"]
sizer = "fixed_fraction"
starting_cash = "100000"
risk_checks = ["max_position", "per_play_cap"]
[run.capital]
ma_cross = "0.5"
vrp_put_spread = "0.5"
[plugins.multivenue]
venues = ["replay", "vrp_options"]
config = "both.toml"
{COMMON}{REPLAY}{VRP}""")
    run_backtest(load_config(cfg), tmp_path / "both")
    both = _fills(tmp_path / "both")
    assert sorted(both) == sorted(btc + vrp)
    # the options paid the VRP venue's per-contract commission, the bars Kraken's bps
    option_fees = [Decimal(f[5]) for f in both if f[1].count("-") == 3]
    assert option_fees and all(fee > 0 for fee in option_fees)
    with Ledger.in_dir(tmp_path / "both") as ledger:
        times = [r["ts_ns"] for r in ledger.query("select ts_ns from fills order by rowid")]
    assert times == sorted(times)  # booked in time order across the two venues


def test_a_set_override_the_inner_venues_would_not_see_stops_the_run(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "one.toml", f"""
[argus]
plugins = ["multivenue"]
mode = "replay"
[run]
venue = "multivenue"
strategies = ["ma_cross"]
[plugins.multivenue]
venues = ["replay"]
config = "one.toml"
{REPLAY}""")
    with pytest.raises(ArgusError, match=r"\[plugins.replay\] differs"):
        run_backtest(load_config(cfg), tmp_path / "run",
                     overrides={"plugins.replay.end": "2021-01-20"})
