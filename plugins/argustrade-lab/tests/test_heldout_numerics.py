"""Held-out audit of the lab's numerics: each formula against an independent reference
(the papers' worked examples, scipy written out here, brute force, simulation) on
held-out market data (SPY daily closes from ``../shared``, with their weekend and
holiday gaps) and on the degenerate inputs a gate must not be fooled by."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from argus_lab import stats
from argus_lab.bootstrap import BootstrapSpec, bootstrap_indices, bootstrap_paths
from argus_lab.gates import regime_stress
from argus_lab.ratios import is_flat, per_obs_sharpe
from argus_lab.walkforward import walk_forward, walk_forward_splits
from scipy import stats as st

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
SPY = SHARED / "equity" / "lean_spy_daily.csv"
needs_spy = pytest.mark.skipif(not SPY.exists(), reason="../shared/data is not here")
DAY_NS = 86_400 * 10**9
EULER = 0.5772156649015329


def spy_closes() -> tuple[np.ndarray, np.ndarray]:
    """(stamps ns, closes) of LEAN's SPY daily bars (prices in 1/10000 dollars)."""
    raw = np.genfromtxt(SPY, delimiter=",", dtype=str, usecols=(0, 4))
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in raw[:, 0]], dtype="datetime64[D]")
    return days.astype("datetime64[ns]").astype(np.int64), raw[:, 1].astype(np.float64) / 1e4


def psr_reference(sr: float, sr0: float, n: float, skew: float, kurt: float) -> float:
    """Bailey & Lopez de Prado (2012) eq. 9, written out independently."""
    return float(st.norm.cdf((sr - sr0) * math.sqrt(n - 1)
                             / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)))


# -- deflated Sharpe ratio ---------------------------------------------------------------


def test_dsr_reproduces_the_papers_worked_example():
    """Bailey & Lopez de Prado (2014), section 'A numerical example': annualised SR 2.5
    over 5 years of daily returns (T = 1250), skew -3, kurtosis 10, N = 100 trials with
    annualised V[SR] = 0.5 -> E[max SR] = 0.1132 per day and DSR = 0.9004 (the paper's
    figures)."""
    dsr = stats.deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3, 10, 100, 0.5 / 250)
    assert dsr == pytest.approx(0.9004, abs=5e-4)
    v = 0.5 / 250
    sr0 = math.sqrt(v) * ((1 - EULER) * st.norm.ppf(1 - 1 / 100)
                          + EULER * st.norm.ppf(1 - 1 / (100 * math.e)))
    assert sr0 == pytest.approx(0.1132, abs=5e-5)  # the paper's E[max SR], per day
    assert stats.expected_max_sharpe(100, v) == pytest.approx(sr0, rel=1e-12)
    assert dsr == pytest.approx(psr_reference(2.5 / math.sqrt(250), sr0, 1250, -3, 10),
                                rel=1e-12)


@pytest.mark.parametrize("n_trials,error", [(10, 0.025), (100, 0.01), (1000, 0.005)])
def test_expected_max_sharpe_against_the_exact_expectation(n_trials, error):
    """E[max of N iid N(0, V)] = sqrt(V) * integral of x N phi(x) Phi(x)^(N-1) dx (by
    quadrature; a simulation agrees): the paper's closed form is an approximation, 2.3%
    high at N = 10, under 1% from N = 100."""
    from scipy.integrate import quad

    v = 0.004
    exact = math.sqrt(v) * quad(lambda x: x * n_trials * st.norm.pdf(x)
                                * st.norm.cdf(x) ** (n_trials - 1), -10, 10, limit=200)[0]
    got = stats.expected_max_sharpe(n_trials, v)
    assert abs(got / exact - 1) < error
    assert got > exact  # it errs towards deflating more, never less
    sims = np.random.default_rng(7).normal(0, math.sqrt(v), (4000, n_trials)).max(axis=1)
    assert sims.mean() == pytest.approx(exact, rel=0.02)


@needs_spy
def test_psr_and_min_track_record_on_spy():
    """PSR of SPY's daily returns against the written-out formula, with moments from
    scipy; at the minimum track record length the PSR is the requested probability."""
    _ts, close = spy_closes()
    r = np.diff(close) / close[:-1]
    mom = stats.return_moments(r)
    assert mom.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert mom.skew == pytest.approx(st.skew(r), rel=1e-12)
    assert mom.kurtosis == pytest.approx(st.kurtosis(r, fisher=False), rel=1e-12)
    psr = stats.probabilistic_sharpe_ratio(mom.sharpe, 0.0, mom.n_obs, mom.skew, mom.kurtosis)
    assert psr == pytest.approx(psr_reference(mom.sharpe, 0.0, mom.n_obs, mom.skew,
                                              mom.kurtosis), rel=1e-12)
    n_min = stats.min_track_record_length(mom.sharpe, 0.0, mom.skew, mom.kurtosis, 0.95)
    assert stats.probabilistic_sharpe_ratio(mom.sharpe, 0.0, n_min, mom.skew,
                                            mom.kurtosis) == pytest.approx(0.95, abs=1e-9)


# -- zero variance: a constant return must not pass a Sharpe gate -------------------------


def constant_returns(n: int = 252) -> list[np.ndarray]:
    """Returns with no variation: a constant rate, and equity compounding at one."""
    equity = 100.0 * 1.0004 ** np.arange(n + 1)
    return [np.full(n, 0.001), np.full(n, 0.1), np.diff(equity) / equity[:-1]]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_constant_returns_have_no_sharpe_and_do_not_clear_the_dsr_bar(which):
    """Before: std(ddof=1) of a constant 0.001 is 4e-19, not 0, so the Sharpe ratio was
    2.3e15 per bar and the DSR 1.0 (deploy)."""
    r = constant_returns()[which]
    assert is_flat(r)
    mom = stats.return_moments(r)
    assert (mom.sharpe, mom.skew, mom.kurtosis) == (0.0, 0.0, 3.0)
    dsr = stats.deflated_sharpe_ratio(mom.sharpe, mom.n_obs, mom.skew, mom.kurtosis, 1, 0.0)
    assert dsr == pytest.approx(0.5)  # no evidence either way: below the 0.95 deploy bar


def test_flat_rule_leaves_real_returns_alone():
    """A strategy that trades once (one non-zero return) is not flat; its Sharpe is the
    plain mean / std; near-zero-mean noise is not flat either."""
    once = np.zeros(500)
    once[200] = 0.03
    assert not is_flat(once)
    assert per_obs_sharpe(once) == once.mean() / once.std(ddof=1)
    noise = np.random.default_rng(1).normal(0, 1e-6, 300)
    assert per_obs_sharpe(noise) == noise.mean() / noise.std(ddof=1)


def test_walk_forward_does_not_select_a_constant_variant():
    """Before: a constant-return column had an in-sample Sharpe of ~4e15 per bar, won
    every fold and made the stitched OOS Sharpe ~4e15."""
    rng = np.random.default_rng(3)
    real = rng.normal(0.002, 0.01, 600)
    matrix = np.column_stack([real, np.full(600, 0.0005)])
    wf = walk_forward(matrix, walk_forward_splits(600, train_bars=200, test_bars=100))
    assert all(abs(f.is_sharpe) < 10 and abs(f.oos_sharpe) < 10 for f in wf.folds)
    assert abs(wf.oos_sharpe) < 10
    # The real column is chosen wherever it made money in sample (the flat one scores 0).
    for f, split in zip(wf.folds, walk_forward_splits(600, train_bars=200, test_bars=100),
                        strict=True):
        assert f.chosen == (0 if per_obs_sharpe(real[split.train]) > 0 else 1)


def test_flat_and_ruined_points_enter_the_trial_registry_sanely():
    """Before: the sweep recorded the core's ~4e15 for a flat point (the family's V[SR]
    became ~1e30, deflating every other variant to DSR 0), and a ruined point's NaN
    Sharpe made ``record_trial`` raise, which sank the whole sweep."""
    from argus_lab.sweep import trial_sharpe

    flat = np.full(300, 0.001)
    assert trial_sharpe({"sharpe_per_obs": flat.mean() / flat.std(ddof=1)}, flat) == 0.0
    ruined = np.array([0.01, -0.02, 0.015, -0.5, -1.0, np.nan, np.nan])
    finite = ruined[np.isfinite(ruined)]
    assert trial_sharpe({"sharpe_per_obs": math.nan}, ruined) == pytest.approx(
        finite.mean() / finite.std(ddof=1), rel=1e-12)
    real = np.random.default_rng(5).normal(0.001, 0.01, 300)
    value = real.mean() / real.std(ddof=1)
    assert trial_sharpe({"sharpe_per_obs": value}, real) == value  # untouched


def test_cost_gate_sharpe_fails_flat_and_nan_runs():
    """The cost gate compares ``not sharpe >= bar``: a ruined run's NaN fails it (before,
    ``NaN < bar`` was False and it passed); a flat run's ~1e16 becomes 0."""
    from argus_lab.sweep import PointOutcome, gate_sharpe

    flat = np.full(300, 0.001)
    out = PointOutcome("cost-1.5", {"sharpe": 8.8e16}, flat, np.arange(300), np.empty(0))
    assert gate_sharpe(out) == 0.0
    ruined = PointOutcome("cost-1.5", {"sharpe": math.nan},
                          np.array([0.1, -1.0, np.nan]), np.arange(3), np.empty(0))
    assert not gate_sharpe(ruined) >= 0.0


# -- walk-forward: no test bar in training, purging and embargo by brute force ------------


@pytest.mark.parametrize("mode", ["rolling", "anchored", "purged_kfold"])
@pytest.mark.parametrize("horizon,embargo", [(0, 0), (3, 0), (5, 7)])
def test_splits_against_brute_force(mode, horizon, embargo):
    """Every training bar's label window ``[t, t + h]`` ends before the test block it
    serves or starts after it plus the embargo; nothing else is dropped."""
    n, train_bars, test_bars = 157, 40, 17
    splits = walk_forward_splits(n, mode=mode, train_bars=train_bars, test_bars=test_bars,
                                 n_folds=5, label_horizon=horizon, embargo=embargo)
    assert splits
    tested = np.concatenate([s.test for s in splits])
    assert len(np.unique(tested)) == len(tested)  # test blocks never overlap
    for s in splits:
        lo, hi = int(s.test[0]), int(s.test[-1]) + 1
        assert np.array_equal(s.test, np.arange(lo, hi))
        if mode == "purged_kfold":
            pool = range(n)
        elif mode == "anchored":
            pool = range(0, lo)
        else:
            pool = range(lo - train_bars, lo)
        expected = [t for t in pool
                    if not (lo <= t < hi)                      # not a test bar
                    and not (t < lo and t + horizon >= lo)     # label ends before test
                    and not (hi <= t < hi + embargo)]          # not embargoed
        assert s.train.tolist() == expected


def test_selection_never_sees_out_of_sample_bars():
    """A variant made spectacular from a fold's first test bar on is not chosen by that
    fold unless it already was: the choice reads the training bars only."""
    from argus_lab.walkforward import evaluate_fold

    rng = np.random.default_rng(11)
    a = rng.normal(0.001, 0.01, 500)
    b = rng.normal(-0.001, 0.01, 500)
    for split in walk_forward_splits(500, train_bars=200, test_bars=100, label_horizon=2):
        base = evaluate_fold((np.column_stack([a, b]), split))
        b2 = b.copy()
        b2[split.test[0]:] = 0.05  # the future, from the test block on
        moved = evaluate_fold((np.column_stack([a, b2]), split))
        assert (moved.chosen, moved.is_sharpe) == (base.chosen, base.is_sharpe)
        assert base.chosen == 0


# -- regime stress ------------------------------------------------------------------------


def regime_reference(returns, end_ns, first_start_ns, label_ts, labels, min_bars, periods):
    """Brute force: each return's regime is the last label stamped at or before the
    start of its period (the previous row's stamp)."""
    starts = np.concatenate([[first_start_ns], end_ns[:-1]])
    regime = []
    for s in starts:
        known = [lab for t, lab in zip(label_ts, labels, strict=True) if t <= s]
        regime.append(known[-1] if known else -1)
    out = {}
    for code, name in {0: "calm", 1: "normal", 2: "stressed"}.items():
        r = returns[np.array(regime) == code]
        if r.size < min_bars:
            continue
        out[name] = {"bars": int(r.size),
                     "sharpe": float(r.mean() / r.std(ddof=1) * math.sqrt(periods))}
    return out


def test_regime_stress_with_rows_between_labelled_bars():
    """Equity rows every 6 hours (another instrument's bars), regime labels once a day:
    before, each return took the label two stamps back, so the returns starting at a
    labelled bar were given the previous day's regime."""
    rng = np.random.default_rng(2)
    days = 120
    label_ts = np.arange(days, dtype=np.int64) * DAY_NS
    labels = rng.integers(0, 3, days)
    rows = np.sort(np.concatenate([label_ts, label_ts + DAY_NS // 4]))
    returns = rng.normal(0.0005, 0.01, rows.size - 1)
    end_ns = rows[1:]
    got = regime_stress(returns, end_ns, label_ts, labels, 5, 4 * 365.25)
    ref = regime_reference(returns, end_ns, rows[0], label_ts, labels, 5, 4 * 365.25)
    assert {k: v["bars"] for k, v in got.items()} == {k: v["bars"] for k, v in ref.items()}
    for name, r in ref.items():
        assert got[name]["sharpe"] == pytest.approx(r["sharpe"], rel=1e-12)


@needs_spy
def test_regime_stress_on_spy_daily_equals_the_two_back_rule_when_every_row_is_labelled():
    """Where every equity row is a labelled bar (the usual single-instrument run, gaps
    included) the fix gives exactly what the old rule gave."""
    from argus_lab.regime import vol_regimes

    ts, close = spy_closes()
    labels = vol_regimes(close).regime
    returns = np.diff(close) / close[:-1]
    got = regime_stress(returns, ts[1:], ts, labels, 20, 252.0)
    pos = np.searchsorted(ts, ts[1:], side="right") - 2  # the old rule, as a reference
    old = np.where(pos >= 0, labels[np.clip(pos, 0, None)], -1)
    for code, name in {0: "calm", 1: "normal", 2: "stressed"}.items():
        r = returns[old == code]
        assert got[name]["bars"] == r.size
        assert got[name]["sharpe"] == r.mean() / r.std(ddof=1) * math.sqrt(252.0)


def test_regime_stress_of_a_flat_regime_is_zero():
    """Before: a regime whose returns were a constant rate had an annualised Sharpe ~1e17."""
    ts = np.arange(1, 101, dtype=np.int64) * DAY_NS
    out = regime_stress(np.full(99, 0.001), ts[1:], ts, np.ones(100, dtype=np.int64), 10,
                        365.25)
    assert out["normal"]["sharpe"] == 0.0


# -- trade bootstrap ----------------------------------------------------------------------


@pytest.mark.parametrize("pnl", [3.7, 0.1, 12.5])
def test_bootstrap_sharpe_of_equal_trades_is_zero(pnl):
    """Before: the kernel's one-pass variance of 40 trades of 3.7 was rounding noise,
    and every path reported a per-trade Sharpe of 6.9e7."""
    paths = bootstrap_paths(np.full(40, pnl), BootstrapSpec(n_paths=200))
    assert np.all(paths.sharpe == 0.0)


def test_stationary_bootstrap_blocks_have_the_stated_mean_length():
    """Politis-Romano: a new block starts with probability 1 / mean_block, so run lengths
    of consecutive indices (circularly) average ``mean_block``; starts are uniform."""
    n, mean_block = 97, 6.0
    idx = bootstrap_indices(n, BootstrapSpec(n_paths=400, mean_block=mean_block, seed=9), 500)
    continues = idx[:, 1:] == (idx[:, :-1] + 1) % n
    # A fresh block can land on prev + 1 by chance (1/n): correct the break rate for it.
    breaks = 1.0 - continues.mean()
    p_new = breaks / (1.0 - 1.0 / n)
    assert 1.0 / p_new == pytest.approx(mean_block, rel=0.03)
    counts = np.bincount(idx.ravel(), minlength=n)  # ~2,060 each; blocks widen the spread
    assert np.all(np.abs(counts / counts.mean() - 1.0) < 0.25)


SWEEP_CONFIG = """
[run]
venue = "replay"
strategies = ["ma_cross"]
[plugins.replay]
bars_csv = "{bars}"
[plugins.lab]
family = "heldout"
dir = "lab"
[plugins.lab.sweep.params]
"strategies.ma_cross.fast" = {{ choices = [3, 5, 8, 13] }}
"""


def test_a_sweep_survives_flat_ruined_and_failing_points(tmp_path):
    """Through ``run_sweep``'s own store: a point that raised is stored ``failed`` with its
    error and the sweep goes on; a ruined point (NaN Sharpe) no longer sinks the sweep
    (before: ``record_trial`` raised DataError); a flat point enters the registry at 0,
    so the family's V[SR] is that of the real points (before: ~1e30)."""
    from argus_lab.executor import SerialExecutor
    from argus_lab.gates import open_lab
    from argus_lab.sweep import PointOutcome, run_sweep
    from argus_lab.trials import trial_stats

    from argus_core.config import load_config

    bars = Path(__file__).resolve().parents[3] / "examples" / "data" / "kraken_XBTUSD_60.csv"
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP_CONFIG.format(bars=bars))
    config = load_config(path)
    settings, folder, ledger = open_lab(config)
    grid = settings.sweep.grid()
    rng = np.random.default_rng(4)
    real = rng.normal(0.001, 0.01, (2, 200))
    flat = np.full(200, 0.001)
    ruined = np.concatenate([rng.normal(0, 0.01, 50), [-1.0], np.full(149, np.nan)])
    outcomes = [
        PointOutcome("", {"sharpe_per_obs": float(real[0].mean() / real[0].std(ddof=1))},
                     real[0], np.arange(200), np.empty(0)),
        PointOutcome("", {"sharpe_per_obs": float(flat.mean() / flat.std(ddof=1))}, flat,
                     np.arange(200), np.empty(0)),
        PointOutcome("", {"sharpe_per_obs": math.nan}, ruined, np.arange(200), np.empty(0)),
        PointOutcome("", {}, np.empty(0), np.empty(0, dtype=np.int64), np.empty(0),
                     "ValueError: the strategy raised"),
    ]

    class Fake(SerialExecutor):
        """Hands back prepared outcomes instead of running backtests."""

        def map(self, fn, items, *, progress=None, on_result=None):
            out = []
            for i, task in enumerate(items):
                o = outcomes[i]
                o = PointOutcome(task.point_id, o.metrics, o.returns, o.ts_ns, o.trade_pnls,
                                 o.error)
                if on_result:
                    on_result(i, o)
                out.append(o)
            return out

    points = run_sweep(config, grid, ledger=ledger, lab_dir=folder, executor=Fake(),
                       family="heldout", engine="event_loop")
    assert [p.status for p in points] == ["done", "done", "done", "failed"]
    assert points[3].error == "ValueError: the strategy raised"
    n, var = trial_stats(ledger, "heldout")
    ledger.close()
    finite = ruined[np.isfinite(ruined)]
    srs = [real[0].mean() / real[0].std(ddof=1), 0.0, finite.mean() / finite.std(ddof=1)]
    assert n == 4  # the failed point was tried too (test_heldout2_lab); not in the variance
    assert var == pytest.approx(np.var(srs, ddof=1), rel=1e-9)


def test_a_huge_grid_is_refused_before_it_is_built():
    """Three parameters of 100 choices (a million points) over max_points = 1,000: refused
    without building them (before: every point was built first, a 192 MB peak here, and a
    billion-point grid ran out of memory instead of being refused); a range asking for
    1e12 values is refused before numpy allocates it."""
    import tracemalloc

    from argus_lab.config import ParamRange, SweepSettings

    from argus_core import ConfigError

    grid = SweepSettings({f"p{i}": ParamRange(choices=list(range(100))) for i in range(3)},
                         max_points=1000)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="points, more than max_points"):
            grid.grid()
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    huge = SweepSettings({"a": ParamRange(linear=[0.0, 1.0, 1e12])}, max_points=1000)
    with pytest.raises(ConfigError, match="values, more than max_points"):
        huge.grid()
    ok = SweepSettings({"a": ParamRange(linear=[1, 10, 50], integer=True),
                        "b": ParamRange(choices=["x", "y"])}, max_points=20)
    assert len(ok.grid()) == 20 and ok.grid()[0] == {"a": 1, "b": "x"}


@pytest.mark.parametrize("wins", [1, 3])
def test_a_strategy_that_trades_once_does_not_pass_the_dsr_gate(wins):
    """1,000 bars idle but for ``wins`` winning bars: the asymptotic PSR says 0.977 (one
    win) or 0.9997 (three), past the 0.95 deploy bar, where a coin toss is what one trade
    tells.  The gate now holds such a record as too thin to judge."""
    from argus_lab.config import GateSettings
    from argus_lab.gates import DSR_MIN_ACTIVE, judge_dsr

    r = np.zeros(1000)
    r[np.linspace(100, 900, wins).astype(int)] = 0.05
    mom = stats.return_moments(r)
    assert stats.deflated_sharpe_ratio(mom.sharpe, mom.n_obs, mom.skew, mom.kurtosis,
                                       1, 0.0) > 0.95  # the formula outside its regime
    details, kill, hold = judge_dsr(r, 1, 0.0, GateSettings())
    assert kill == [] and len(hold) == 1 and "too few to judge" in hold[0]
    assert details["active_returns"] == wins < DSR_MIN_ACTIVE


@needs_spy
def test_dsr_gate_judges_a_real_record_as_before():
    """SPY's daily record (5,819 non-zero returns) is judged by its DSR: 0.975 alone
    (deploy), below the kill bar after 1,000 trials of V[SR] 0.002."""
    from argus_lab.config import GateSettings
    from argus_lab.gates import judge_dsr

    _ts, close = spy_closes()
    r = np.diff(close) / close[:-1]
    details, kill, hold = judge_dsr(r, 1, 0.0, GateSettings())
    mom = stats.return_moments(r)
    assert details["dsr"] == stats.probabilistic_sharpe_ratio(mom.sharpe, 0.0, mom.n_obs,
                                                              mom.skew, mom.kurtosis)
    assert details["dsr"] == pytest.approx(0.9749, abs=1e-4) and (kill, hold) == ([], [])
    details, kill, hold = judge_dsr(r, 1000, 0.002, GateSettings())
    assert details["dsr"] < 0.5 and len(kill) == 1 and kill[0].startswith("DSR ")


def test_reality_check_is_not_passed_by_variants_that_never_trade():
    """Against cash, a variant that never trades has a flat zero excess; arch's bootstrap
    ties with it and said p = 0 -- a grid of idle variants passed White's RC and Hansen's
    SPA, and one idle variant among losers passed Hansen's SPA (p 0.0 < 0.10)."""
    rng = np.random.default_rng(0)
    cash = np.zeros(500)
    idle = np.zeros((500, 2))
    assert stats.white_reality_check(cash, idle, reps=300).pvalue == 1.0
    assert stats.hansen_spa(cash, idle, reps=300).pvalue == 1.0
    mixed = np.column_stack([np.zeros(500), rng.normal(-0.001, 0.01, 500)])
    assert stats.hansen_spa(cash, mixed, reps=300).pvalue > 0.10
    assert stats.white_reality_check(cash, mixed, reps=300).pvalue > 0.10


def test_reality_check_of_live_variants_is_arch_itself():
    """Where every variant moves, the p-values are arch's own (the reference)."""
    from arch.bootstrap import SPA

    rng = np.random.default_rng(8)
    models = rng.normal(0.0008, 0.01, (400, 4))
    got = stats.hansen_spa(np.zeros(400), models, reps=300, seed=3)
    ref = SPA(-np.zeros(400), -models, reps=300, bootstrap="stationary", studentize=True,
              nested=False, seed=np.random.default_rng(3))
    ref.compute()
    assert got.pvalue == float(ref.pvalues["consistent"])


@pytest.mark.parametrize("kind", ["constant", "drift"])
def test_a_market_that_does_not_move_is_calm(kind):
    """Constant closes (or a constant drift, whose realised vol is ~1e-15 of rounding):
    before, every known bar was STRESSED -- among equally still windows today's vol sits
    at the top of its lookback -- or a noise-driven mix of all three regimes."""
    from argus_lab.regime import CALM, RegimeTracker, vol_regimes

    steps = np.zeros(399) if kind == "constant" else np.full(399, 0.001)
    close = 100.0 * np.exp(np.cumsum(np.r_[0.0, steps]))
    v = vol_regimes(close)
    known = v.regime >= 0
    assert known.sum() > 100
    assert np.all(v.regime[known] == CALM) and not v.vol_spike.any()
    assert np.all(v.realised_vol[known] == 0.0)
    tracker = RegimeTracker()
    for i, c in enumerate(close):
        state = tracker.update(i, float(c))
    assert state.regime == CALM


@needs_spy
def test_vol_regimes_on_spy_never_see_a_flat_window():
    """SPY's daily closes are never flat over 20 days, so the still-market rule leaves
    its classification as it was (checked bit for bit against the old code, and on ETH
    hourly, when this was written)."""
    from argus_lab.regime import vol_regimes

    _ts, close = spy_closes()
    v = vol_regimes(close)
    assert not np.any(v.realised_vol == 0.0)
