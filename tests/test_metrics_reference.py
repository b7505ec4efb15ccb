"""The metrics against independent implementations, and one annualisation rule everywhere.

empyrical (Quantopian's reference, maintained as ``empyrical-reloaded``) recomputes
Sharpe, Sortino, volatility, max drawdown, CAGR and Calmar from the demo's returns;
scipy the moments; a five-return series is checked by hand.  Every output that shows
an annualised figure (report, sweep points, walk-forward, gates) annualises with the
observations per year measured from the data's timestamps, and says so.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
from argus_lab.commands import headline_figures
from argus_lab.gates import regime_stress
from argus_lab.sweep import RESULTS_VERSION, PointTask, run_point
from argus_lab.walkforward import walk_forward, walk_forward_splits
from argus_test_helpers import ROOT
from scipy import stats as sps

from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.metrics import (
    annualisation_note,
    compute_metrics,
    equity_series,
    growth_stats,
    observations_per_year,
    return_stats,
)
from argus_core.report import write_report
from argus_core.runner import Runner

HOUR_NS, DAY_NS = 3_600 * 10**9, 86_400 * 10**9


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    Runner(load_config(ROOT / "examples" / "demo.toml"), run_dir).run_sync()
    return run_dir


def test_demo_metrics_equal_empyrical_on_the_demos_returns(demo_run: Path) -> None:
    with Ledger.in_dir(demo_run) as ledger:
        m = compute_metrics(ledger, Decimal(100_000))
        ts, eq = equity_series(ledger)
    r = np.diff(eq) / eq[:-1]
    ann = m["obs_per_year"]
    # Hourly bars, 24/7, with three gaps: a little under 8,766 a year; never 365.25.
    assert 8_700 < ann < 8_766
    ref = pd.Series(r, index=pd.to_datetime(ts[1:], utc=True))
    rel = 1e-9
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(ref, annualization=ann), rel=rel)
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(ref, annualization=ann),
                                         rel=rel)
    assert m["volatility"] == pytest.approx(empyrical.annual_volatility(ref, annualization=ann),
                                            rel=rel)
    assert m["max_drawdown"] == pytest.approx(-empyrical.max_drawdown(ref), rel=rel)
    assert m["cagr"] == pytest.approx(empyrical.cagr(ref, annualization=ann), rel=rel)
    assert m["calmar"] == pytest.approx(empyrical.calmar_ratio(ref, annualization=ann), rel=rel)
    assert m["skew"] == pytest.approx(float(sps.skew(r)), rel=rel)
    assert m["kurtosis"] == pytest.approx(float(sps.kurtosis(r, fisher=False)), rel=rel)
    assert m["sharpe_per_obs"] == pytest.approx(float(r.mean() / r.std(ddof=1)), rel=rel)
    assert m["n_obs"] == len(r)
    # The figures the issue measured once the stale marks were gone (demo, 2021-2022).
    assert 0.090 < m["max_drawdown"] < 0.100
    assert 20 < m["kurtosis"] < 80  # was 573 with one-bar spikes


def test_a_short_series_by_hand() -> None:
    # Equity 100 -> 110 -> 99 -> 108.9 -> 108.9 -> 119.79 on days 0..5 of a year.
    eq = np.array([100.0, 110.0, 99.0, 108.9, 108.9, 119.79])
    ts = np.arange(6, dtype=np.int64) * DAY_NS
    r = np.array([0.1, -0.1, 0.1, 0.0, 0.1])
    np.testing.assert_allclose(np.diff(eq) / eq[:-1], r, atol=1e-12)
    per_year = 5 / (5 / 365.25)  # five intervals over five days: 365.25 a year
    s = return_stats(r, ts)
    mean, sd = 0.04, math.sqrt(((0.06**2) * 3 + 0.14**2 + 0.04**2) / 4)
    assert s["obs_per_year"] == pytest.approx(per_year)
    assert s["sharpe_per_obs"] == pytest.approx(mean / sd)
    assert s["sharpe"] == pytest.approx(mean / sd * math.sqrt(per_year))
    assert s["volatility"] == pytest.approx(sd * math.sqrt(per_year))
    downside = math.sqrt(0.1**2 / 5)  # one negative return of five
    assert s["sortino"] == pytest.approx(mean / downside * math.sqrt(per_year))
    g = growth_stats(eq, ts, max_dd=0.1)
    assert g["cagr"] == pytest.approx(1.1979 ** (365.25 / 5) - 1)
    assert g["calmar"] == pytest.approx(g["cagr"] / 0.1)


def test_observations_per_year_are_measured_from_the_timestamps() -> None:
    # Daily equity-market bars: weekdays less nine exchange holidays a year.
    days = pd.bdate_range("2021-01-04", "2022-12-30")
    holidays = pd.to_datetime([
        "2021-01-18", "2021-02-15", "2021-04-02", "2021-05-31", "2021-07-05", "2021-09-06",
        "2021-11-25", "2021-12-24", "2022-01-17", "2022-02-21", "2022-04-15", "2022-05-30",
        "2022-06-20", "2022-07-04", "2022-09-05", "2022-11-24", "2022-12-26"])
    sessions = days.difference(holidays)
    ts = (sessions + pd.Timedelta(hours=21)).as_unit("ns").asi8
    assert observations_per_year(ts) == pytest.approx(252, abs=1.5)
    hourly = np.arange(1000, dtype=np.int64) * HOUR_NS
    assert observations_per_year(hourly) == pytest.approx(8_766)
    assert observations_per_year(np.array([5])) == 0.0
    assert observations_per_year(np.array([5, 5])) == 0.0
    assert annualisation_note(252.04) == ("annualised with 252.0 observations/year, measured "
                                          "from the data")
    # Daily returns of an equity market are annualised with ~252, not 365.25: the same
    # per-day Sharpe reads sqrt(365.25 / 252) = 1.2x too large the other way.
    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.01, ts.size - 1)
    s = return_stats(r, ts)
    assert s["sharpe"] == pytest.approx(s["sharpe_per_obs"] * math.sqrt(s["obs_per_year"]))
    assert s["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=252), rel=0.01)


def test_report_states_the_annualisation(demo_run: Path) -> None:
    page = write_report(demo_run).read_text()
    assert "observations/year, measured from the data" in page


def test_sweep_walkforward_and_gates_share_the_rule(tmp_path: Path, demo_config: Path) -> None:
    """A sweep point's Sharpe, the walk-forward's and the regime gate's are all
    ``per-observation x sqrt(observations/year measured from the data)``."""
    out = run_point(PointTask(load_config(demo_config), {}, str(tmp_path / "p"), "p"))
    assert out.error is None
    m = out.metrics
    with Ledger.in_dir(tmp_path / "p") as ledger:
        ts, _eq = equity_series(ledger)
    assert m["results_version"] == RESULTS_VERSION
    assert m["obs_per_year"] == pytest.approx(observations_per_year(ts))
    assert m["sharpe"] == pytest.approx(m["sharpe_per_obs"] * math.sqrt(m["obs_per_year"]))

    returns = out.returns[:, None]
    splits = walk_forward_splits(returns.shape[0], train_bars=500, test_bars=500)
    wf = walk_forward(returns, splits, obs_per_year=m["obs_per_year"])
    assert wf.oos_sharpe_annualised == pytest.approx(wf.oos_sharpe * math.sqrt(m["obs_per_year"]))
    d = wf.to_dict()
    assert d["annualisation"] == annualisation_note(m["obs_per_year"])
    folds = d["folds"]
    assert isinstance(folds, list)
    assert folds[0]["oos_sharpe_annualised"] == pytest.approx(
        wf.folds[0].oos_sharpe * math.sqrt(m["obs_per_year"]))
    lines = headline_figures({"annualisation": d["annualisation"], "walkforward": d})
    assert "observations/year, measured from the data" in lines[0]
    assert f"Sharpe {wf.oos_sharpe_annualised:.2f}" in lines[1]

    labels_ts = out.ts_ns
    per = regime_stress(out.returns, out.ts_ns, labels_ts, np.zeros(labels_ts.size, int), 10,
                        m["obs_per_year"])
    (only,) = per.values()
    r = out.returns[1:]  # the first period has no label before it
    assert only["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(
        m["obs_per_year"]))


def test_a_busted_fill_is_no_round_trip_and_no_turnover() -> None:
    """A fill busted whole and its offset ``<id>:bust`` made a round trip of P&L 0 (a trade
    lost: the win rate fell) and twice the fill's notional of turnover; a part's bust
    takes back only that part's notional."""
    from argus_core.metrics import metrics_of, plays, round_trips

    def fill(fid: str, side: str, qty: str, price: str, fee: str, ts: int) -> dict[str, str | int]:
        return {"fill_id": fid, "client_order_id": fid.split(":")[0], "instrument_id": "v:X",
                "side": side, "quantity": qty, "price": price, "fee": fee, "ts_ns": ts}

    won = [fill("a", "buy", "1", "100", "1", 1), fill("b", "sell", "1", "110", "1", 2)]
    busted = [fill("c", "buy", "2", "100", "1", 3), fill("c:bust", "sell", "2", "100", "-1", 4)]
    part = [fill("d", "buy", "2", "100", "0", 5), fill("d:bust:t1", "sell", "1", "100", "0", 6),
            fill("e", "sell", "1", "105", "0", 7)]
    trips = round_trips(won + busted + part)
    assert [t["pnl"] for t in trips] == [Decimal(8), Decimal(5)]
    stats = metrics_of(np.array([1, 7]), np.array([100_000.0, 100_013.0]),
                       won + busted + part, plays(trips), Decimal(100_000))
    assert stats["win_rate"] == 1.0 and stats["n_trades"] == 2
    traded = 100 + 110 + (200 - 100) + 105  # c and its bust: none; d's busted part: back
    assert stats["turnover"] == pytest.approx(traded / 100_000)
