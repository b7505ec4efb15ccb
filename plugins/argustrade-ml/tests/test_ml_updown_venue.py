"""The ``updown_replay`` venue's stated binary market, and ``ml_updown`` trained on the
bundled Kraken bars, promoted through the gates and backtested with ``argus backtest``:
the ledger's P&L is the hand-computed binary payoff minus price and fees, bet by bet."""

from __future__ import annotations

import asyncio
import json
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_ml.config import MLSettings
from argus_ml.report import binary_bets
from argus_ml.venue import UpDownReplayVenue
from click.testing import CliRunner
from ml_testdata import KRAKEN, TRAIN_END

from argus_core import Bar, BookStatus, Instrument, Ledger, OrderBook, Settlement
from argus_core.cli import cli

# Seven hourly bars; windows of two bars open at bars 0, 2, 4 and resolve at 2, 4, 6.
CLOSES = [100.0, 101.0, 99.0, 99.0, 105.0, 104.0, 103.0]


def _tiny_csv(path: Path) -> Path:
    rows = [f"{1_700_000_000 + 3600 * i},{c},{c + 1},{c - 1},{c},5.0,3"
            for i, c in enumerate(CLOSES)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_venue_lists_windows_quotes_the_stated_book_and_settles_at_the_close(
        tmp_path: Path) -> None:
    s = MLSettings(bars_csv=_tiny_csv(tmp_path / "b.csv"), window_bars=2, half_spread=0.02,
                   fee_rate=0.03, depth=50)
    venue = UpDownReplayVenue(s)
    events = list(venue.events())
    (spot,) = asyncio.run(venue.instruments())  # the windows are listed as they open
    assert spot.id == "updown:BTC/USD" and spot.kind == "spot"
    insts = {i.id: i for i in events if isinstance(i, Instrument)}
    assert len(insts) == 2 * 3
    for iid, inst in insts.items():  # each listed right before its opening bar
        k = events.index(inst)
        later = [e for e in events[k:] if isinstance(e, Bar)]
        assert later[0].ts_ns == inst.meta["opens_ns"], iid
        assert not [e for e in events[:k] if isinstance(e, Bar)
                    and e.ts_ns >= inst.meta["opens_ns"]]
    up0 = "updown:BTC/USD-UP-1700003600"  # opens at bar 0's close
    assert insts[up0].kind == "binary" and insts[up0].meta["outcome"] == "up"
    assert insts[up0].meta["pair"] == "updown:BTC/USD-DOWN-1700003600"
    settlements = {e.instrument_id: e for e in events if isinstance(e, Settlement)}
    # window 0: 99 after 100 -> down; window 1: 105 after 99 -> up; window 2: 103 after 105
    assert [settlements[f"updown:BTC/USD-{side}-{t}"].price
            for t in (1_700_003_600, 1_700_010_800, 1_700_018_000)
            for side in ("UP", "DOWN")] == [0, 1, 1, 0, 0, 1]
    # no lookahead: a window's settlement comes right after its resolving bar, never before
    bar_ts = [e.ts_ns for e in events if isinstance(e, Bar)]
    for iid, st in settlements.items():
        opens = insts[iid].meta["opens_ns"]
        assert st.ts_ns == bar_ts[bar_ts.index(opens) + 2]
        before = events[:events.index(st)]
        assert [e for e in before if isinstance(e, Bar)][-1].ts_ns == st.ts_ns
    books = [e for e in events if isinstance(e, OrderBook)]
    assert len(books) == 6 and {(b.best_bid, b.best_ask) for b in books} == {(0.48, 0.52)}
    assert all(float(b.asks[0, 1]) == 50 for b in books)
    assert sum(isinstance(e, BookStatus) and not e.live for e in events) == 6
    assert venue.fee_schedule(up0).fee(Decimal("0.52"), Decimal(10), maker=False) == \
        Decimal("0.156")
    assert venue.expected_events() == len(events)


def test_the_venue_refuses_a_config_without_bars() -> None:
    from argus_core import ConfigError

    with pytest.raises(ConfigError, match="bars_csv"):
        UpDownReplayVenue(MLSettings())


def _config(tmp_path: Path, registry: Path, **ml: object) -> Path:
    """A backtest config on a copy of ``registry`` (drift may demote a model in it)."""
    copy = tmp_path / "registry.db"
    shutil.copy(registry, copy)
    table = {"registry": str(copy), "bars_csv": str(KRAKEN),
             # 100 bars of warm-up from the end of training, then 1,000 out-of-sample bars
             "bars_start": TRAIN_END - 100 * 3600, "bars_end": TRAIN_END + 1000 * 3600, **ml}
    lines = ['[argus]', 'plugins = ["ml"]', '[run]', 'venue = "updown_replay"',
             'strategies = ["ml_updown"]', '[plugins.ml]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path = tmp_path / "backtest.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _backtest(config: Path, run_dir: Path) -> str:
    out = CliRunner().invoke(cli, ["backtest", "--config", str(config), "--run-dir",
                                   str(run_dir), "--no-progress"])
    assert out.exit_code == 0, out.output
    return out.output


def test_updown_trained_promoted_and_backtested_pays_the_binary_payoff(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    run = tmp_path / "run"
    _backtest(_config(tmp_path, reg), run)
    venue = UpDownReplayVenue(MLSettings(bars_csv=KRAKEN, bars_start=TRAIN_END - 100 * 3600,
                                         bars_end=TRAIN_END + 1000 * 3600))
    close_at = {int(t): float(c) for t, c in zip(venue.bars.ts_ns, venue.bars.close,
                                                  strict=True)}
    stamps = sorted(close_at)
    with Ledger.in_dir(run) as ledger:
        bets = binary_bets(ledger.fills())
        orders = ledger.query("select * from orders where strategy = 'ml_updown'")
        equity = ledger.query("select equity from equity order by ts_ns desc limit 1")
    # out of sample only: 7 bets from the end of training (the forecaster gives nothing
    # on the 100 warm-up bars, which the model was trained on; before it did, and 16 of
    # 23 bets were in sample), then the circuit breaker after 5 losses in a row
    assert len(bets) >= 5 and len(orders) == len(bets)
    assert all(int(b.instrument_id.split("-")[-1]) >= TRAIN_END for b in bets)
    assert all(o["time_in_force"] == "fok" and o["order_type"] == "limit" for o in orders)
    total = Decimal(0)
    for bet in bets:  # by hand: payoff from the bars, ask 0.51, fee 2% of the price
        side, opens_s = bet.instrument_id.split("-")[-2:]
        opens = int(opens_s) * 10**9
        resolve = stamps[stamps.index(opens) + 1]
        up = close_at[resolve] > close_at[opens]
        payoff = Decimal(int(up == (side == "UP")))
        q = bet.quantity
        expected = q * payoff - q * Decimal("0.51") - q * Decimal("0.51") * Decimal("0.02")
        assert bet.settlement == payoff and bet.pnl == expected, bet
        assert q <= 1000 and q == q.to_integral_value()  # within the stated depth, whole lots
        total += expected
    # the outcome labels of the run's trades are the same bets, known at the settlement
    from argus_ml.outcomes import trade_labels

    labels = trade_labels(run)
    assert [(lb.instrument_id, lb.pnl) for lb in labels] == [(b.instrument_id, b.pnl)
                                                             for b in bets]
    assert all(lb.strategy == "ml_updown" and lb.horizon_ns == 3_600 * 10**9 for lb in labels)
    # every bet settled inside the data, so the run's P&L is exactly the sum of the bets
    assert Decimal(equity[0]["equity"]) == Decimal(100000) + total
    report = (run / "report.html").read_text()
    assert "stated model" in report and "ask 0.5100" in report
    # Out of sample the volatility regime moved (vol_24's PSI passes 1; the old fixed
    # limit 0.25 demoted the model after about 500 bars), but no further from the
    # training deciles than the training data's own windows went: no alarm, still paper.
    from argus_ml.registry import ModelRegistry, open_registry

    with open_registry(tmp_path / "registry.db") as reg_ledger:
        registry = ModelRegistry(reg_ledger)
        assert registry.get(good)["status"] == "paper"
        assert not [e for e in registry.events(good) if e["event"] == "demoted"]
    with Ledger.in_dir(run) as ledger:
        assert not ledger.query("select * from risk_events where check_name = 'ml_drift'")
        runner = json.loads(ledger.query(
            "select state_json from checkpoints where name = 'runner'")[0]["state_json"])
    drift = runner["strategies"]["ml_updown"]["forecaster"]["drift"]
    assert drift["tripped"] is None and drift["peaks"]["vol_24@1"] > 1.0
    assert f"Model {good}" in report and "Drift monitor: no alarm" in report


def test_a_backtest_on_shifted_bars_records_drift_and_leaves_the_registry_alone(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    from argus_ml.registry import ModelRegistry, open_registry
    from ml_testdata import tripled_volatility

    table = np.loadtxt(KRAKEN, delimiter=",", ndmin=2)
    start, end = TRAIN_END - 100 * 3600, TRAIN_END + 1000 * 3600
    rows = tripled_volatility(table[(table[:, 0] >= start) & (table[:, 0] < end)], 100)
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("".join(f"{int(r[0])}," + ",".join(repr(float(x)) for x in r[1:])
                               + "\n" for r in rows))
    run = tmp_path / "run"
    _backtest(_config(tmp_path, reg, bars_csv=str(shifted)), run)
    with Ledger.in_dir(run) as ledger:
        alarms = ledger.query("select * from risk_events where check_name = 'ml_drift'")
        orders = ledger.query("select * from orders where strategy = 'ml_updown'")
    # the Brier EMA fires first here (the forecasts go wrong in the new regime, 378
    # outcomes in); the PSI alarm on the same bars is tested in test_ml_drift
    assert len(alarms) == 1 and alarms[0]["action"] == "alert", alarms
    assert "Brier EMA" in alarms[0]["reason"] or "PSI" in alarms[0]["reason"]
    assert "registry unchanged" in alarms[0]["reason"]
    # the run's gate closed at the alarm: no bet after it
    assert all(int(o["ts_ns"]) <= int(alarms[0]["ts_ns"]) for o in orders)
    with open_registry(tmp_path / "registry.db") as reg_ledger:  # a replay demotes nothing
        assert ModelRegistry(reg_ledger).get(good)["status"] == "paper"
        assert not reg_ledger.query("select * from risk_events")
    report = (run / "report.html").read_text()
    assert "Drift monitor alarms" in report and "alert" in report


def test_a_shadow_model_never_trades_but_its_forecasts_are_recorded(
        kraken_registry: tuple[Path, str, str], tmp_path: Path) -> None:
    reg, refused, _good = kraken_registry
    run = tmp_path / "run"
    _backtest(_config(tmp_path, reg, model_id=refused), run)
    with Ledger.in_dir(run) as ledger:
        assert not ledger.query("select * from orders")
        runner = json.loads(ledger.query(
            "select state_json from checkpoints where name = 'runner'")[0]["state_json"])
    state = runner["strategies"]["ml_updown"]
    assert state["stats"]["bets"] == 0 and state["stats"]["gated"] > 0
    # the forecasts were made, counted as shadow forecasts and scored for drift
    assert state["forecaster"]["stats"]["shadow_forecasts"] > 900
    assert state["forecaster"]["stats"]["outcomes"] > 900


def test_a_demoted_copy_stops_trading(kraken_registry: tuple[Path, str, str],
                                      tmp_path: Path) -> None:
    reg, _refused, good = kraken_registry
    from argus_ml.cli import ml

    config = _config(tmp_path, reg, model_id=good)
    out = CliRunner().invoke(ml, ["demote", "--registry", str(tmp_path / "registry.db"), good,
                                  "--reason", "t"])
    assert out.exit_code == 0, out.output
    run = tmp_path / "run"
    _backtest(config, run)
    with Ledger.in_dir(run) as ledger:
        assert not ledger.query("select * from orders")
