"""The report's figures against empyrical on the same returns, and the metrics the core
lacks (drawdown duration, exposure, monthly returns, buy-and-hold) by hand; the chart
decimation keeps every extreme."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
from argus_tearsheet.analytics import (
    bars_csv_of,
    buy_and_hold,
    drawdown_duration_ns,
    exposure,
    monthly_returns,
    read_closes,
    series_stats,
)
from argus_tearsheet.downsample import envelope
from argus_tearsheet.plugin import tearsheet_sections
from argus_tearsheet.run_data import load_run
from tearsheet_ledger import EXPOSED_HOURS, HOUR_NS, T0

from argus_core import DataError, Ledger
from argus_core.config import parse_config

REL = 1e-9


def random_walk_run(run_dir: Path, n: int = 3_000, seed: int = 7) -> Path:
    """A ledger with ``n`` hourly equity rows of a seeded random walk (no fills), stamped
    with a few gaps so the measured annualisation is not a round number."""
    rng = np.random.default_rng(seed)
    equity = 100_000 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    steps = np.full(n, HOUR_NS, dtype=np.int64)
    steps[rng.choice(n, 20, replace=False)] *= 3
    ts = T0 + np.cumsum(steps)
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("walk", "replay", seed, json.dumps({"run": {"starting_cash": "100000"}}))
        with ledger.transaction():
            ledger.append_equity([(int(t), "0", repr(float(e)), "0")
                                  for t, e in zip(ts, equity, strict=True)])
    return run_dir


def _empyrical(ts: np.ndarray, eq: np.ndarray, ann: float) -> dict[str, float]:
    r = pd.Series(np.diff(eq) / eq[:-1], index=pd.to_datetime(ts[1:], utc=True))
    return {"sharpe": empyrical.sharpe_ratio(r, annualization=ann),
            "sortino": empyrical.sortino_ratio(r, annualization=ann),
            "volatility": empyrical.annual_volatility(r, annualization=ann),
            "max_drawdown": -empyrical.max_drawdown(r),
            "cagr": empyrical.cagr(r, annualization=ann),
            "calmar": empyrical.calmar_ratio(r, annualization=ann)}


def test_strategy_and_benchmark_figures_equal_empyrical(tmp_path: Path) -> None:
    data = load_run(random_walk_run(tmp_path / "run"))
    ts, eq = data.ts_ns, data.equity
    ann = data.core_metrics["obs_per_year"]
    assert 8_000 < ann < 8_766
    reference = _empyrical(ts, eq, ann)
    # The strategy column: the core's numbers; the buy-and-hold column: series_stats.
    for figures in (data.core_metrics, series_stats(ts, eq)):
        for key, value in reference.items():
            assert figures[key] == pytest.approx(value, rel=REL), key
    # The performance table shows those very numbers.
    html = tearsheet_sections(data.run_dir)["Trader's report: performance"]
    html = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert f"<td class=n>{reference['sharpe']:,.2f}</td>" in html
    assert f"<td class=n>{reference['sortino']:,.2f}</td>" in html
    assert f"<td class=n>{reference['cagr'] * 100:,.2f}%</td>" in html
    assert f"<td class=n>{reference['max_drawdown'] * 100:,.2f}%</td>" in html
    assert f"Sharpe (annualised, {ann:,.0f} obs/yr measured from timestamps" in html


def test_equity_read_back_bit_for_bit_as_float_reads_it(tmp_path: Path,
                                                        constructed_run: Path) -> None:
    # Long decimals, as Decimal arithmetic leaves them: SQLite's own text->real cast
    # rounds ~15 of these 20,000 to the wrong double (SQLite 3.54); float() does not.
    rng = np.random.default_rng(11)
    hard = tmp_path / "hard"
    with Ledger.in_dir(hard) as ledger:
        ledger.start_run("hard", "replay", 0, "{}")
        values = [f"{int(a)}.{int(b):016d}" for a, b in zip(
            rng.integers(10**4, 10**6, 20_000), rng.integers(0, 10**16, 20_000), strict=True)]
        with ledger.transaction():
            ledger.append_equity([(T0 + i * HOUR_NS, "0", v, "0" if i % 3 else "5.5")
                                  for i, v in enumerate(values)])
    for run_dir in (hard, constructed_run, random_walk_run(tmp_path / "walk")):
        data = load_run(run_dir)
        with Ledger.in_dir(run_dir) as ledger:  # the plain reference: row by row, float()
            rows = ledger.query("select ts_ns, equity, gross_exposure from equity "
                                "order by ts_ns")
        assert data.ts_ns.dtype == np.int64 and data.equity.dtype == np.float64
        assert data.ts_ns.tolist() == [r["ts_ns"] for r in rows]
        assert data.equity.tolist() == [float(r["equity"]) for r in rows]  # bit for bit
        assert data.exposed.tolist() == [float(r["gross_exposure"]) > 0 for r in rows]
    with Ledger.in_dir(tmp_path / "none") as ledger:
        ledger.start_run("none", "replay", 0, "{}")
    data = load_run(tmp_path / "none")
    assert len(data.ts_ns) == len(data.equity) == len(data.exposed) == 0


def test_drawdown_duration_by_hand() -> None:
    hour = np.arange(8, dtype=np.int64) * HOUR_NS
    # Peak 110 at 1h, regained at 5h (4h under water); then a dip from 120 at 6h to the end.
    eq = np.array([100, 110, 105, 100, 108, 111, 120, 119], dtype=np.float64)
    assert drawdown_duration_ns(hour, eq) == 4 * HOUR_NS
    # Never recovering: from the peak to the last row.
    eq2 = np.array([100, 120, 90, 95, 100, 101, 102, 103], dtype=np.float64)
    assert drawdown_duration_ns(hour, eq2) == 6 * HOUR_NS
    assert drawdown_duration_ns(hour, np.arange(8, dtype=np.float64) + 1) == 0
    assert drawdown_duration_ns(hour[:1], eq[:1]) == 0


def test_exposure_is_time_weighted(constructed_run: Path) -> None:
    data = load_run(constructed_run)
    assert list(np.flatnonzero(data.exposed)) == sorted(EXPOSED_HOURS)
    # Intervals opening at hours 1-6 and 8-9 are held: 8 of the 10 hours.
    assert exposure(data.ts_ns, data.exposed) == pytest.approx(0.8)
    # Uneven spacing counts time, not rows: held for 1h of a 4h span.
    ts = np.array([0, 1, 4], dtype=np.int64) * HOUR_NS
    assert exposure(ts, np.array([True, False, True])) == pytest.approx(0.25)


def test_monthly_returns_equal_pandas_month_ends(tmp_path: Path) -> None:
    data = load_run(random_walk_run(tmp_path / "run", n=4_000))
    got = monthly_returns(data.ts_ns, data.equity)
    series = pd.Series(data.equity, index=pd.to_datetime(data.ts_ns))  # naive = UTC
    month_end = series.groupby(series.index.to_period("M")).last()
    expected = month_end / month_end.shift(1).fillna(series.iloc[0]) - 1
    assert len(got.returns) == len(expected) >= 5
    np.testing.assert_allclose(got.returns, expected.to_numpy(), rtol=1e-12)
    assert [str(m) for m in got.months] == [str(p) for p in expected.index]
    # Compounded, the months give the whole span's return.
    assert np.prod(1 + got.returns) == pytest.approx(data.equity[-1] / data.equity[0])


def test_buy_and_hold_on_a_tiny_bars_csv_by_hand(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    # Kraken OHLCVT, no header; bars open on the hour, stamped at their close (+1h).
    t0 = T0 // 10**9
    bars.write_text("\n".join(f"{t0 + h * 3600},1,1,1,{close},1,1"
                              for h, close in enumerate([100, 110, 99, 121])) + "\n")
    config = parse_config({"run": {"venue": "replay"},
                           "plugins": {"replay": {"bars_csv": "bars.csv"}}},
                          tmp_path / "config.toml")
    assert bars_csv_of(config) == bars
    # Equity rows at 1h..4h (each bar's close) plus one at 4h30 (still the 4h close).
    ts = T0 + np.array([1, 2, 3, 4, 4.5]) * HOUR_NS
    bench = buy_and_hold(config, ts.astype(np.int64), 1_000.0)
    assert bench is not None
    np.testing.assert_allclose(bench.equity, [1_000, 1_100, 990, 1_210, 1_210])
    assert (bench.entry_price, bench.exit_price) == (100.0, 121.0)
    stats = series_stats(ts.astype(np.int64), bench.equity)
    assert stats["total_return"] == pytest.approx(0.21)
    assert stats["max_drawdown"] == pytest.approx(0.1)  # 1,100 -> 990
    # A header naming its columns reads the same.
    headed = tmp_path / "headed.csv"
    headed.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(
        f"{t0 + h * 3600},1,1,1,{c},1" for h, c in enumerate([100, 110, 99, 121])) + "\n")
    stamps, closes = read_closes(headed, 3600)
    assert list(closes) == [100, 110, 99, 121]
    assert stamps[0] == T0 + HOUR_NS


def test_no_benchmark_without_a_bars_csv(tmp_path: Path) -> None:
    ndjson = parse_config({"run": {"venue": "replay"},
                           "plugins": {"replay": {"ndjson": "rec.ndjson"}}},
                          tmp_path / "config.toml")
    ts = np.array([0, HOUR_NS], dtype=np.int64)
    assert buy_and_hold(ndjson, ts, 1.0) is None
    assert buy_and_hold(None, ts, 1.0) is None


def test_a_bad_bars_csv_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,price\n1,2\n")
    with pytest.raises(DataError, match=r"bad\.csv: a header needs a time column"):
        read_closes(bad, 60)
    with pytest.raises(DataError, match=r"missing\.csv: cannot read bars"):
        read_closes(tmp_path / "missing.csv", 60)


def test_envelope_keeps_extremes_first_and_last() -> None:
    rng = np.random.default_rng(3)
    n = 700_000
    x = np.arange(n, dtype=np.int64) * 60 * 10**9
    y = np.cumsum(rng.normal(0, 1, n))
    y[123_457] = 1e6  # a one-bar spike
    y[654_321] = -1e6
    keep = envelope(x, y, 1_500)
    assert len(keep) <= 4 * 1_500
    assert keep[0] == 0 and keep[-1] == n - 1
    assert {123_457, 654_321} <= set(keep.tolist())
    assert np.all(np.diff(keep) > 0)
    # Every bucket's extremes survive: the envelope's min/max per bucket equal the full's.
    bucket = np.minimum((x.astype(np.float64) * (1_500 / x[-1])).astype(np.int64), 1_499)
    full = pd.Series(y).groupby(bucket).agg(["min", "max"])
    kept = pd.Series(y[keep]).groupby(bucket[keep]).agg(["min", "max"])
    pd.testing.assert_frame_equal(full, kept)
    short = envelope(x[:100], y[:100], 1_500)
    assert list(short) == list(range(100))


def test_money_totals_render_to_the_cent(constructed_run: Path) -> None:
    html = tearsheet_sections(constructed_run)["Trader's report: strategies"]
    assert "<b>13.72</b>" in html
    assert "adds up to the account's: final equity − starting cash = 13.72" in html
    data = load_run(constructed_run)
    assert data.final_equity == Decimal("10013.717")
