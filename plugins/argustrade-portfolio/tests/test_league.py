"""The league by hand: the reference and the row-by-row health against independent
computations, the detector's rules and its guards against ordinary noise, smoothing
bounds, eligibility, and the check on a ledger whose book rows the test writes."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_portfolio.enforcement import PortfolioWeight
from argus_portfolio.league import (
    League,
    Reference,
    SlotHealth,
    Status,
    drawdowns,
    eligibility,
    judge,
    league_migrations,
    reference_from_equity,
    rolling_sharpe,
    smooth,
    stored_verdict,
)
from argus_portfolio.settings import LeagueSettings, PortfolioSettings

from argus_core import (
    ConfigError,
    Intent,
    Ledger,
    Migrations,
    Portfolio,
    RangeError,
    RiskAction,
    RiskContext,
    Side,
    structure,
)

HOUR_NS = 3600 * 10**9
PPY = 8766.0


def path_equity(returns: np.ndarray, start: float = 50_000.0) -> list[float]:
    """Equity rows from per-row returns."""
    return [start, *(start * np.cumprod(1 + returns)).tolist()]


def hours(n: int) -> list[int]:
    """``n`` hourly timestamps."""
    return [i * HOUR_NS for i in range(n)]


# -- the figures -------------------------------------------------------------------------

def test_rolling_sharpe_and_drawdown_against_plain_loops() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(1e-4, 2e-3, 300)
    got = rolling_sharpe(r, 50, PPY)
    want = [np.mean(r[i:i + 50]) / np.std(r[i:i + 50], ddof=1) * math.sqrt(PPY)
            for i in range(251)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert rolling_sharpe(np.zeros(60), 50, PPY).tolist() == [0.0] * 11  # flat: 0
    eq = [100.0, 110.0, 99.0, 121.0, 110.0]
    np.testing.assert_allclose(drawdowns(eq), [0, 0, 0.1, 0, 1 / 11])


def test_reference_from_equity_by_hand() -> None:
    eq = [100.0, 101.0, 100.0, 102.0, 101.0, 103.0]
    ref = reference_from_equity(hours(6), eq, 3, slot="x")
    r = np.diff(eq) / eq[:-1]
    sh = [np.mean(r[i:i + 3]) / np.std(r[i:i + 3], ddof=1) * math.sqrt(PPY) for i in range(3)]
    assert ref.periods == 5 and ref.window == 3
    assert ref.periods_per_year == pytest.approx(PPY)
    assert ref.sharpe_mean == pytest.approx(np.mean(sh))
    assert ref.sharpe_std == pytest.approx(np.std(sh, ddof=1))
    assert ref.max_drawdown == pytest.approx(1 / 101)  # 101 -> 100
    assert ref.drawdown_quantile(0.0) == 0.0
    assert ref.hit_rate == pytest.approx(3 / 5)
    again = Reference.from_json(json.loads(json.dumps(ref.to_json())))
    assert again == ref


def test_reference_refusals() -> None:
    with pytest.raises(Exception, match="need at least window \\+ 2"):
        reference_from_equity(hours(4), [1.0, 2.0, 3.0, 4.0], 3, slot="x")
    good = reference_from_equity(hours(10), [100.0 + i for i in range(10)], 3, slot="x")
    bad = good.to_json() | {"drawdown_percentiles": [0.1] * 100}
    with pytest.raises(ConfigError, match=r"f\.json: drawdown_percentiles must be 101"):
        Reference.from_json(bad, "f.json")
    with pytest.raises(ConfigError, match="lacks key 'sharpe_std'"):
        Reference.from_json({k: v for k, v in good.to_json().items() if k != "sharpe_std"})
    with pytest.raises(ConfigError, match=r"cannot read it .*argus league reference"):
        Reference.load(Path("/nonexistent/ref.json"))


def test_health_row_by_row_equals_the_batch_figures() -> None:
    rng = np.random.default_rng(5)
    eq = path_equity(rng.normal(2e-4, 3e-3, 500))
    h = SlotHealth(72)
    for i, e in enumerate(eq):
        h.observe(e)
        if i >= 72:  # a full window: the newest rolling Sharpe of the batch figure
            want = rolling_sharpe(np.diff(eq[: i + 1]) / eq[:i], 72, PPY)[-1]
            assert h.sharpe(PPY) == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert h.drawdown == pytest.approx(drawdowns(eq)[-1])
    r = np.diff(eq[-73:]) / eq[-73:-1]
    assert h.hit_rate == pytest.approx((r > 0).sum() / (r != 0).sum())
    restored = SlotHealth(72)
    restored.set_state(json.loads(json.dumps(h.get_state())))
    for e in (eq[-1] * 1.01, eq[-1] * 0.98):
        h.observe(e)
        restored.observe(e)
    assert restored.get_state() == h.get_state()  # exact, through JSON


# -- the detector ------------------------------------------------------------------------

def healthy_returns(rng: np.random.Generator, n: int) -> np.ndarray:
    """An hourly strategy with an annualised Sharpe of 2 and 0.3% hourly volatility."""
    sigma = 0.003
    return rng.normal(2 / math.sqrt(PPY) * sigma, sigma, n)


def run_path(returns: np.ndarray, ref: Reference, s: LeagueSettings) -> Status | None:
    """The first finding on a path of returns that the league would act on (a kill at
    once, a quarantine held ``confirm_rows`` rows), or None."""
    h = SlotHealth(ref.window)
    streak = 0
    for e in path_equity(returns):
        h.observe(e)
        finding = judge(h, ref, s).finding
        if finding is Status.KILLED:
            return finding
        streak = streak + 1 if finding is Status.QUARANTINED else 0
        if streak >= s.confirm_rows:
            return Status.QUARANTINED
    return None


def test_ordinary_noise_rarely_trips_the_detector() -> None:
    """The guard attacked: a strategy with an annualised Sharpe of 2 and 28% volatility,
    its reference from a year's backtest, then 30 fresh years of the same process.  With
    the defaults at most 2 of the 30 years trip (this seed: one year's 40% drawdown, one
    long bad stretch); with either rule alone, or no persistence, most would.  The same
    process with its edge gone (Sharpe -6) is caught within 3000 rows on 10 paths of 10."""
    rng = np.random.default_rng(11)
    s = LeagueSettings()
    ref = reference_from_equity(hours(8767), path_equity(healthy_returns(rng, 8766)), 168,
                                slot="x")
    years = [healthy_returns(rng, 8766) for _ in range(30)]
    assert sum(run_path(r, ref, s) is not None for r in years) <= 2
    eager = LeagueSettings(confirm_rows=1, z_quarantine=2.0, dd_quantile=0.5)
    assert sum(run_path(r, ref, eager) is not None for r in years[:10]) >= 8
    sigma = 0.003
    decayed = [run_path(rng.normal(-6 / math.sqrt(PPY) * sigma, sigma, 3000), ref, s)
               for _ in range(10)]
    assert all(f is not None for f in decayed)


def equity_after(start: float, returns: list[float]) -> list[float]:
    """``start`` and the equity after each of ``returns``."""
    out = [start]
    for r in returns:
        out.append(out[-1] * (1 + r))
    return out


def test_either_condition_alone_is_not_enough() -> None:
    # ten rows a year (so one window's Sharpe has a sampling SD of 1.5)
    ref = Reference("x", 10, 1000, 10.0, 5.0, 1.0, tuple(np.linspace(0, 0.02, 101)))
    s = LeagueSettings(z_quarantine=3.0, dd_quantile=0.99, min_drawdown=0.01)
    assert ref.sampling_sd == pytest.approx(math.sqrt(1 + (5 / math.sqrt(10)) ** 2 / 2))
    # a bad Sharpe without a drawdown beyond the backtest's: a shallow noisy slide
    h = SlotHealth(10)
    for e in equity_after(100, [-0.003, 0.001] * 5):
        h.observe(e)
    j = judge(h, ref, s)
    assert j.z <= -3 and j.drawdown < j.quarantine_dd and j.finding is None
    # a deep drawdown with a good rolling Sharpe: an old loss being recovered
    h = SlotHealth(10)
    for e in equity_after(100, [-0.04] + [0.003, 0.001] * 5):
        h.observe(e)
    j = judge(h, ref, s)
    assert j.drawdown >= j.quarantine_dd and j.z > -3 and j.finding is None
    # both: quarantined; deeper than kill_dd_multiple x the deepest: killed
    h = SlotHealth(10)
    for e in equity_after(100, [-0.006, 0.001] * 5):
        h.observe(e)
    j = judge(h, ref, s)
    assert j.quarantine_dd == pytest.approx(0.0198) and j.finding is Status.QUARANTINED
    h.observe(h.equity * 0.9 if h.equity else 0)  # 12% under the peak >= 4 x max(2%, 1%)
    j = judge(h, ref, s)
    assert j.kill_dd == pytest.approx(0.08) and j.finding is Status.KILLED


def test_one_outlier_does_not_quarantine() -> None:
    rng = np.random.default_rng(2)
    s = LeagueSettings()
    ref = reference_from_equity(hours(4001), path_equity(healthy_returns(rng, 4000)), 168,
                                slot="x")
    returns = healthy_returns(rng, 400)
    returns[300] = -ref.max_drawdown * 2  # one loss twice the backtest's deepest drawdown
    assert run_path(returns, ref, s) is None


# -- smoothing ---------------------------------------------------------------------------

def test_smoothing_is_an_ema_with_a_bounded_step() -> None:
    assert smooth(1.0, 0.8, 0.1, 0.05) == pytest.approx(0.98)  # within the bound: the EMA
    assert smooth(1.0, 0.0, 0.1, 0.05) == pytest.approx(0.95)  # bounded
    assert smooth(0.0, 1.0, 0.5, 0.02) == pytest.approx(0.02)
    rng = np.random.default_rng(1)
    h = 1.0
    for score in rng.uniform(0, 1, 2000):
        nxt = smooth(h, float(score), 0.3, 0.02)
        assert abs(nxt - h) <= 0.02 + 1e-15 and 0 <= nxt <= 1
        h = nxt


def test_league_settings_are_range_checked() -> None:
    with pytest.raises(RangeError, match="baseline_periods"):
        LeagueSettings(window=100, baseline_periods=150)
    with pytest.raises(RangeError, match=r"verdicts\.a"):
        LeagueSettings(verdicts={"a": "maybe"})
    with pytest.raises(RangeError, match="max_health_step"):
        LeagueSettings(max_health_step=0)


# -- eligibility -------------------------------------------------------------------------

def test_eligibility_gate() -> None:
    assert eligibility("deploy", allow_unknown=False).eligible
    assert eligibility("pass", allow_unknown=False).eligible
    for verdict in ("hold", "kill", "fail"):
        gate = eligibility(verdict, allow_unknown=True)
        assert not gate.eligible and gate.verdict == "fail"
    assert eligibility(None, allow_unknown=True).eligible
    unknown = eligibility(None, allow_unknown=False)
    assert not unknown.eligible and "allow_unknown is false" in unknown.reason
    with pytest.raises(Exception, match="none of"):
        eligibility("perhaps", allow_unknown=True)


def test_stored_verdict_reads_the_labs_newest(tmp_path: Path) -> None:
    trials = pytest.importorskip("argus_lab.trials")
    assert stored_verdict(tmp_path, "f") is None  # no lab.db
    with trials.open_lab_ledger(tmp_path / "lab.db") as ledger, ledger.transaction():
        for i, verdict in enumerate(("kill", "deploy")):
            ledger.insert("lab_gate_verdicts", {
                "family": "f", "ts_ns": i, "verdict": verdict, "reasons_json": "[]",
                "details_json": "{}", "config_hash": "x"})
    assert stored_verdict(tmp_path, "f") == "deploy"
    assert stored_verdict(tmp_path / "lab.db", "f") == "deploy"
    assert stored_verdict(tmp_path, "other") is None


def test_a_candidates_verdict_in_the_family_is_not_the_slots(tmp_path: Path) -> None:
    """The orchestrator stores its AI-written candidates' verdicts in the family of the
    strategy they would replace, with a ``variant`` in the details: the newest of them, a
    ``deploy``, made the slot running the old strategy eligible (lab red team r38)."""
    trials = pytest.importorskip("argus_lab.trials")
    with trials.open_lab_ledger(tmp_path / "lab.db") as ledger, ledger.transaction():
        for i, (verdict, details) in enumerate((
                ("kill", '{"variant": ""}'), ("deploy", '{"variant": "candidate-3"}'),
                ("deploy", "not json"), ("deploy", "[1]"))):
            ledger.insert("lab_gate_verdicts", {
                "family": "f", "ts_ns": i, "verdict": verdict, "reasons_json": "[]",
                "details_json": details, "config_hash": "x"})
    assert stored_verdict(tmp_path, "f") == "kill"


# -- the check on a ledger ---------------------------------------------------------------

def open_ledger(path: Path) -> Ledger:
    """A run ledger with the league's table."""
    migrations = Migrations()
    league_migrations(migrations)
    return Ledger(path / "argus.db", migrations)


def intent(slot: str, side: Side = Side.BUY) -> Intent:
    """An intent of ``slot`` for 1 unit."""
    return Intent(slot, "replay:BTC/USD", side, quantity=Decimal(1))


def decide(league: League, slot: str, ts: int, side: Side = Side.BUY) -> RiskAction:
    """The league's verdict on a one-unit order of ``slot`` at ``ts``."""
    ctx = RiskContext(ts_ns=ts)
    return league.check(intent(slot, side), Decimal(1), Decimal(100), Portfolio(Decimal(0)),
                        ctx).action


def write_rows(ledger: Ledger, slot: str, equity: list[float], start: int = 0) -> None:
    """Book-equity rows of ``slot``, one an hour from row ``start``."""
    ledger.append_book_equity([((start + i) * HOUR_NS, slot, str(e), str(e))
                               for i, e in enumerate(equity)])


def steady_returns(rng: np.random.Generator, n: int) -> np.ndarray:
    """A strong hourly edge (annualised Sharpe ~14): shallow drawdowns."""
    return rng.normal(3e-4, 2e-3, n)


def test_the_check_on_hand_written_book_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    ref = reference_from_equity(hours(2001), path_equity(steady_returns(rng, 2000)), 48,
                                slot="a")
    (tmp_path / "ref.json").write_text(json.dumps(ref.to_json()))
    settings = structure({"strategies": {"a": {"vol": 0.3}, "b": {"vol": 0.3}},
                          "max_step": 0.05, "league": {
                              "references": {"a": str(tmp_path / "ref.json"),
                                             "b": str(tmp_path / "ref.json")},
                              "rebalance_every": 5, "alpha": 0.5, "confirm_rows": 12,
                              "max_health_step": 0.1}},
                         PortfolioSettings, "<test>")
    sizer = PortfolioWeight(settings)
    start_weights = dict(sizer.weights)
    with open_ledger(tmp_path) as ledger:
        league = League(settings)
        league.attach(ledger, None, sizer)
        healthy = path_equity(steady_returns(rng, 100))
        write_rows(ledger, "a", healthy)
        write_rows(ledger, "b", healthy)
        assert decide(league, "a", 101 * HOUR_NS) is RiskAction.ALLOW
        assert league.slots["a"].health.rows == 101
        # a loses 0.4% an hour from here, b carries on
        losing = path_equity(np.full(120, -0.004), healthy[-1])[1:]
        write_rows(ledger, "a", losing, 101)
        write_rows(ledger, "b", path_equity(steady_returns(rng, 120), healthy[-1])[1:], 101)
        # rows at or after the event's own timestamp are not read yet
        assert decide(league, "a", 101 * HOUR_NS) is RiskAction.ALLOW
        assert decide(league, "a", 200 * HOUR_NS) is RiskAction.VETO
        assert decide(league, "b", 200 * HOUR_NS) is RiskAction.ALLOW
        assert league.slots["a"].status is Status.KILLED  # 38% down: past the kill level
        events = ledger.query("select * from league_events order by id")
        assert [(e["slot"], e["from_status"], e["to_status"]) for e in events] == [
            ("a", "active", "quarantined"), ("a", "quarantined", "killed")]
        risk = ledger.query("select check_name, action, strategy from risk_events")
        assert [(r["action"], r["strategy"]) for r in risk] == [("quarantined", "a"),
                                                                 ("killed", "a")]
        # its weight is 0 at once; b keeps its capital
        assert start_weights["a"] > 0 and sizer.weights["a"] == 0.0
        assert sizer.weights["b"] >= start_weights["b"] > 0
        # a sell that shrinks a's own position passes; one that opens a short does not
        league.positions.held["a"] = {"replay:BTC/USD": Decimal(2)}
        assert decide(league, "a", 200 * HOUR_NS, Side.SELL) is RiskAction.ALLOW
        league.positions.held["a"] = {}
        assert decide(league, "a", 200 * HOUR_NS, Side.SELL) is RiskAction.VETO
        # state through JSON: a fresh check decides the same and records nothing new
        fresh = League(settings)
        fresh.set_state(json.loads(json.dumps(league.get_state())))
        fresh.attach(ledger, None, None)
        assert fresh.slots["a"].status is Status.KILLED
        assert decide(fresh, "a", 300 * HOUR_NS) is RiskAction.VETO
        assert decide(fresh, "b", 300 * HOUR_NS) is RiskAction.ALLOW
        assert len(ledger.query("select * from league_events")) == 2


def test_sizer_health_moves_weights_by_at_most_max_step() -> None:
    settings = structure({"strategies": {"a": {"vol": 0.2}, "b": {"vol": 0.2},
                                         "c": {"vol": 0.4}},
                          "max_step": 0.03, "target_vol": 0.2, "max_strategy_weight": 1.0,
                          "max_leverage": 2.0},
                         PortfolioSettings, "<test>")
    sizer = PortfolioWeight(settings)
    before = dict(sizer.weights)
    for _ in range(5):
        prev = dict(sizer.weights)
        sizer.set_health({"a": 0.2, "b": 1.0, "c": 1.0})
        assert all(abs(sizer.weights[k] - prev[k]) <= 0.03 + 1e-12 for k in prev)
    assert sizer.weights["a"] < before["a"]
    sizer.set_health({"a": 1.0}, blocked={"c"})
    assert sizer.weights["c"] == 0.0


def test_single_book_runs_use_the_equity_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    ref = reference_from_equity(hours(301), path_equity(healthy_returns(rng, 300)), 24,
                                slot="solo")
    (tmp_path / "ref.json").write_text(json.dumps(ref.to_json()))
    settings = structure({"league": {"references": {"solo": str(tmp_path / "ref.json")}}},
                         PortfolioSettings, "<test>")
    with open_ledger(tmp_path) as ledger:
        league = League(settings)
        league.attach(ledger)
        eq = path_equity(np.full(40, -0.005))
        ledger.append_equity([(i * HOUR_NS, str(e), str(e), "0") for i, e in enumerate(eq)])
        assert decide(league, "solo", 50 * HOUR_NS) is RiskAction.VETO
        assert league.slots["solo"].health.rows == 41
