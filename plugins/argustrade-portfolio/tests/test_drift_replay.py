"""The drift monitor and the calibration in real replays of the bundled Kraken bars: two
round-tripping strategies in one run, the paper broker charging ``[paper] slippage_bps``
on every taker fill, the ``slippage_drift`` check judging each strategy against its own
assumption."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_portfolio.commands import tca_calibrate
from argus_portfolio.tca import calibrate, fill_slippages, read_run
from click.testing import CliRunner

from argus_core import (
    Bar,
    Config,
    Intent,
    Ledger,
    MarketEvent,
    Runner,
    Side,
    Strategy,
    StrategyContext,
    structure,
)

BARS = Path(__file__).resolve().parents[3] / "examples" / "data" / "kraken_XBTUSD_60.csv"
IID = "replay:BTC/USD"


class RoundTrip(Strategy):
    """Buys 0.01 BTC on even bars when flat and sells what it holds on odd bars: one taker
    round trip every two hours, so slippage statistics build up fast."""

    name = "round_trip"

    def __init__(self) -> None:
        self.bars = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if not isinstance(event, Bar):
            return []
        self.bars += 1
        held = ctx.portfolio.position(event.instrument_id).quantity
        if self.bars % 2 == 0 and held == 0:
            return [Intent(self.name, event.instrument_id, Side.BUY,
                           quantity=Decimal("0.01"), reason="open")]
        if self.bars % 2 == 1 and held > 0:
            return [Intent(self.name, event.instrument_id, Side.SELL, quantity=held,
                           reduce_only=True, reason="close")]
        return []

    def get_state(self) -> dict[str, Any]:
        """The bar count (so a resumed run keeps the same rhythm)."""
        return {"bars": self.bars}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the bar count."""
        self.bars = int(state["bars"])


def replay_config(*, slippage_bps: str, drift: dict[str, Any] | None = None,
                  end: str = "2022-01-08") -> Config:
    """Two-slot replay of the bundled bars with only ``slippage_drift`` checking."""
    raw = {"argus": {"plugins": ["portfolio"], "mode": "replay", "seed": 1},
           "run": {"venue": "replay", "strategies": [], "risk_checks": ["slippage_drift"],
                   "sizer": "fixed_fraction", "starting_cash": "100000",
                   "checkpoint_every_events": 20},
           "paper": {"slippage_bps": slippage_bps},
           "plugins": {"replay": {"bars_csv": str(BARS), "symbol": "BTC/USD",
                                  "bar_seconds": 3600, "start": "2022-01-01", "end": end},
                       "portfolio": {"drift": drift or {}}}}
    return structure(raw, Config, "<test>")


def strategies() -> dict[str, Strategy]:
    """Slots ``a`` and ``b``, each its own round-tripper."""
    return {"a": RoundTrip(), "b": RoundTrip()}


DRIFT = {"min_fills": 10, "window": 30, "strategy_slippage_bps": {"a": 2.0}}


def _run(run_dir: Path, slippage_bps: str, drift: dict[str, Any] | None,
         max_events: int | None = None) -> Any:
    return Runner(replay_config(slippage_bps=slippage_bps, drift=drift), run_dir,
                  strategies=strategies(), max_events=max_events).run_sync()


def _rows(run_dir: Path, sql: str) -> list[dict[str, Any]]:
    with Ledger.in_dir(run_dir) as ledger:
        return ledger.query(sql)


def test_a_drifting_strategy_goes_to_reducing_and_the_other_keeps_trading(
        tmp_path: Path) -> None:
    # The broker charges 20 bps; strategy a's backtest assumed 2, b's the paper 20.
    summary = _run(tmp_path / "run", "20", DRIFT)
    assert summary.trading_state == "active"  # the run itself is not REDUCING
    events = _rows(tmp_path / "run", "select * from risk_events where check_name = "
                                     "'slippage_drift' order by id")
    (alarm,) = [e for e in events if e["action"] == "reducing"]
    assert alarm["strategy"] == "a"
    reason = alarm["reason"]
    assert reason.startswith("slippage drift: strategy 'a' paid ")
    assert "over its last 10 taker fills" in reason
    assert "above the assumed 2.00 bps" in reason and "standard errors" in reason
    mean = float(reason.split(" paid ")[1].split(" bps")[0])
    assert 17 < mean < 23  # the broker's 20 bps, give or take the hourly gap
    vetoes = [e for e in events if e["action"] == "veto"]
    assert vetoes and {e["strategy"] for e in vetoes} == {"a"}
    assert all(reason in e["reason"] and "REDUCING" in e["reason"] for e in vetoes)
    # After the alarm a opens nothing; b trades to the end of the data.
    orders = _rows(tmp_path / "run", "select strategy, side, ts_ns from orders")
    after = [o for o in orders if o["ts_ns"] > alarm["ts_ns"]]
    assert not [o for o in after if o["strategy"] == "a" and o["side"] == "buy"]
    assert len([o for o in after if o["strategy"] == "b"]) > 100
    # a's exit passed: it is flat, not stuck in a position
    (pos,) = _rows(tmp_path / "run", "select count(*) n from orders where strategy = 'a' "
                                     "and side = 'sell'")
    (buys,) = _rows(tmp_path / "run", "select count(*) n from orders where strategy = 'a' "
                                      "and side = 'buy'")
    assert pos["n"] == buys["n"]


def test_with_the_assumption_matching_there_is_no_alarm(tmp_path: Path) -> None:
    # No override: both strategies are judged against the paper's own 20 bps.
    _run(tmp_path / "run", "20", {"min_fills": 10, "window": 30})
    assert not _rows(tmp_path / "run", "select * from risk_events")
    counts = _rows(tmp_path / "run", "select strategy, count(*) n from orders group by 1")
    assert {r["strategy"]: r["n"] for r in counts} == {"a": 167, "b": 167}


def test_the_checks_state_survives_a_resumed_run(tmp_path: Path) -> None:
    full = _run(tmp_path / "full", "20", DRIFT)
    want_events = _rows(tmp_path / "full", "select ts_ns, check_name, action, strategy, "
                                           "reason from risk_events order by id")
    want_orders = _rows(tmp_path / "full", "select * from orders order by client_order_id")
    (alarm,) = [e for e in want_events if e["action"] == "reducing"]
    for stop in (6, 60):  # before the alarm (a window half full), and after it
        split = tmp_path / f"split{stop}"
        first = _run(split, "20", DRIFT, max_events=stop)
        assert first.events == stop
        with Ledger.in_dir(split) as ledger:
            saved = ledger.load_checkpoint("runner")
        assert saved is not None
        state = saved[2]["risk_checks"]["slippage_drift"]
        assert ("a" in state["reducing"]) == (stop == 60)
        assert (0 < len(state["windows"]["a"]) < 10) == (stop == 6)  # min_fills is 10
        resumed = _run(split, "20", DRIFT)
        assert resumed.resumed_from == first.events and resumed.orders == full.orders
        # the same single alarm at the same fill, and the same vetoes, as uninterrupted
        assert _rows(split, "select ts_ns, check_name, action, strategy, reason from "
                            "risk_events order by id") == want_events
        assert _rows(split, "select * from orders order by client_order_id") == want_orders
    assert alarm["strategy"] == "a"


def test_calibration_round_trip(tmp_path: Path) -> None:
    """Calibrate on a run that paid 15 bps; a replay with the calibrated value pays it."""
    _run(tmp_path / "paid15", "15", None)
    measured = calibrate([read_run(tmp_path / "paid15")])
    (takers,) = _rows(tmp_path / "paid15", "select count(*) n from fills")
    assert measured.taker_fills == takers["n"] > 300 and measured.maker_fills == 0
    assert measured.slippage_bps == pytest.approx(15, abs=3 * measured.stderr_bps + 0.1)
    assert 0 < measured.stderr_bps < 1

    out_file = tmp_path / "paper.toml"
    cli = CliRunner().invoke(tca_calibrate, [str(tmp_path / "paid15"), "--out",
                                             str(out_file)])
    assert cli.exit_code == 0, cli.output
    assert f'slippage_bps = "{measured.value}"' in cli.output
    assert f"--set paper.slippage_bps={measured.value}" in cli.output
    assert f"{takers['n']} taker fills" in out_file.read_text()

    _run(tmp_path / "calibrated", measured.value, None)
    replayed = read_run(tmp_path / "calibrated")
    beyond = [f.beyond_spread_bps(2.0) for f in fill_slippages(replayed.orders,
                                                               replayed.fills)]
    mean = sum(beyond) / len(beyond)
    assert mean == pytest.approx(float(measured.value), abs=3 * measured.stderr_bps)
    again = calibrate([replayed])
    assert again.slippage_bps == pytest.approx(measured.slippage_bps,
                                               abs=3 * measured.stderr_bps)
