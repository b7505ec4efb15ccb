"""Red team, round 40: the sweep, walk-forward, bootstrap and statistics of the lab.

Each test named ``test_..._refused`` / ``..._runs`` failed before its fix:

* ``[plugins.lab.bootstrap] mean_block = 1e300`` (a valid setting) died in numba with a
  TypingError traceback ("Int value is too large"); NaN / infinity raised ValueError /
  OverflowError through the API, ``n_trades = 0`` silently meant "as many as realised";
* a record of two alternating returns stopped the DSR gate ("kurtosis 0.9999999999999997
  < 1: pass the non-excess kurtosis");
* PSR with a NaN skew, kurtosis or benchmark was NaN, with an infinite kurtosis 0.5, with
  an infinite ``n_obs`` a ZeroDivisionError; the minimum track record length was
  negative for inconsistent moments and, for ``prob < 0.5``, that of ``1 - prob``;
* a trial journal whose last append was cut short refused every later run (the next
  append was glued onto the torn row), and a short ``os.write`` was not completed;
* a grid range ``linear = [2, 50, 1]`` swept only 2 (``stop`` silently dropped);
* walk-forward splits made for more bars than the returns had raised IndexError.

The figures are checked against independent hand / scipy computations written here.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from argus_lab import stats
from argus_lab.bootstrap import (
    BootstrapSpec,
    bootstrap_indices,
    bootstrap_paths,
    path_stats_numpy,
)
from argus_lab.config import ParamRange, SweepSettings
from argus_lab.journal import _read, sync_trials
from argus_lab.ratios import per_obs_sharpe
from argus_lab.trials import open_lab_ledger, record_trial
from argus_lab.walkforward import walk_forward, walk_forward_splits
from argus_test_helpers import BUNDLED_BARS, demo_toml, invoke_argus
from scipy import optimize
from scipy import stats as st

from argus_core import ConfigError, DataError

PNL = np.array([120.0, -80.0, 45.0, -200.0, 310.0, 15.0, -60.0, 90.0])


# -- bootstrap ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["block", "stationary"])
def test_a_block_longer_than_int64_runs(method: str) -> None:
    """A block longer than the path is the whole path: 1e300 gives what n_trades gives."""
    huge = bootstrap_paths(PNL, BootstrapSpec(n_paths=64, method=method, mean_block=1e300))
    whole = bootstrap_paths(PNL, BootstrapSpec(n_paths=64, method=method,
                                               mean_block=float(PNL.size)))
    if method == "block":
        np.testing.assert_array_equal(huge.final_equity, whole.final_equity)
    # each path is one circular run from its start: its final equity is the full sum
    np.testing.assert_allclose(huge.final_equity, 100_000.0 + PNL.sum())


def test_an_ordinary_block_length_is_unchanged() -> None:
    """The input that must pass: mean_block 3 cuts paths into circular runs of 3, and the
    kernel's statistics equal the numpy reference on its own indices."""
    spec = BootstrapSpec(n_paths=50, method="block", mean_block=3.0, seed=7)
    idx = bootstrap_indices(PNL.size, spec, 10)
    for row in idx:
        for t in range(10):
            if t % 3:
                assert row[t] == (row[t - 1] + 1) % PNL.size
    ref = path_stats_numpy(PNL, idx, 100_000.0, 50_000.0)
    got = bootstrap_paths(PNL, BootstrapSpec(n_paths=50, n_trades=10, method="block",
                                             mean_block=3.0, seed=7))
    np.testing.assert_allclose(got.final_equity, ref.final_equity)
    np.testing.assert_allclose(got.max_drawdown, ref.max_drawdown)
    again = bootstrap_paths(PNL, BootstrapSpec(n_paths=50, n_trades=10, method="block",
                                               mean_block=3.0, seed=7))
    np.testing.assert_array_equal(got.sharpe, again.sharpe)  # seeded: reproducible


@pytest.mark.parametrize(("field", "value", "said"), [
    ("mean_block", math.nan, "mean_block"),
    ("mean_block", math.inf, "mean_block"),
    ("mean_block", 0.5, "mean_block"),
    ("n_trades", 0, "n_trades"),
    ("n_trades", -3, "n_trades"),
    ("initial_capital", 0.0, "initial_capital"),
    ("initial_capital", math.nan, "initial_capital"),
])
def test_a_bad_bootstrap_spec_is_refused(field: str, value: float, said: str) -> None:
    with pytest.raises(DataError, match=said):
        bootstrap_paths(PNL, BootstrapSpec(n_paths=4, **{field: value}))  # type: ignore[arg-type]


def test_the_smallest_good_bootstrap_spec_runs() -> None:
    paths = bootstrap_paths(PNL, BootstrapSpec(n_paths=4, n_trades=1, mean_block=1.0,
                                               initial_capital=1e-3))
    assert paths.final_equity.shape == (4,)
    assert set(np.round(paths.final_equity - 1e-3, 6)) <= set(PNL)


@pytest.fixture
def lab_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lab.toml"
    text = demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-07-01") + (
        '\n[plugins.lab]\ndir = "lab"\n[plugins.lab.executor]\nkind = "serial"\n'
        "[plugins.lab.bootstrap]\nn_paths = 200\nmethod = \"block\"\n")
    path.write_text(text.replace("plugins = []", 'plugins = ["lab"]'))
    return path


def test_argus_lab_bootstrap_with_a_huge_block_runs(lab_config: Path) -> None:
    result = invoke_argus(["lab", "bootstrap", "--config", str(lab_config), "--set",
                           "plugins.lab.bootstrap.mean_block=1e300"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and '"n_paths": 200' in result.output


# -- PSR, MinTRL, expected maximum ------------------------------------------------------


def _psr_by_hand(sr: float, sr0: float, n: float, skew: float, kurt: float) -> float:
    return float(st.norm.cdf((sr - sr0) * math.sqrt(n - 1)
                             / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr * sr)))


@pytest.mark.parametrize(("args", "said"), [
    ((0.1, 0.0, 100, math.nan, 3.0), "skew"),
    ((0.1, 0.0, 100, 0.0, math.nan), "kurtosis"),
    ((0.1, 0.0, 100, 0.0, math.inf), "kurtosis"),
    ((0.1, 0.0, math.nan, 0.0, 3.0), "n_obs"),
    ((0.1, 0.0, math.inf, 0.0, 3.0), "n_obs"),
    ((0.1, math.nan, 100, 0.0, 3.0), "benchmark"),
])
def test_psr_of_a_figure_that_is_not_a_number_is_refused(args: tuple[float, ...],
                                                         said: str) -> None:
    with pytest.raises(DataError, match=said):
        stats.probabilistic_sharpe_ratio(*args)


def test_psr_matches_scipy_from_raw_returns() -> None:
    """The input that must pass, checked from the raw returns: negative-only, skewed,
    two returns, and a benchmark of -inf (certainty)."""
    rng = np.random.default_rng(3)
    for r in (-np.abs(rng.normal(0.01, 0.02, 40)), rng.lognormal(0, 1, 60) - 1.5,
              np.array([0.01, 0.03])):
        sr = r.mean() / r.std(ddof=1)
        skew, kurt = st.skew(r), st.kurtosis(r, fisher=False)
        m = stats.return_moments(r)
        assert m.sharpe == pytest.approx(sr) and m.n_obs == r.size
        got = stats.probabilistic_sharpe_ratio(m.sharpe, 0.02, m.n_obs, m.skew, m.kurtosis)
        assert got == pytest.approx(_psr_by_hand(sr, 0.02, r.size, skew, kurt), rel=1e-12)
    assert stats.probabilistic_sharpe_ratio(0.1, -math.inf, 50) == 1.0


def test_a_two_valued_record_is_judged_not_refused() -> None:
    """+1.3% / -0.7% alternating (a fixed take-profit / stop): kurtosis is exactly 1 (a
    symmetric two-point law), rounding gave 0.9999999999999997 and the DSR gate raised
    "kurtosis < 1: pass the non-excess kurtosis"."""
    from argus_lab.config import GateSettings
    from argus_lab.gates import judge_dsr

    r = np.array([0.013, -0.007] * 100)
    m = stats.return_moments(r)
    assert m.kurtosis == pytest.approx(1.0) and m.kurtosis >= 1.0 + m.skew ** 2
    details, kill, hold = judge_dsr(r, 10, 0.01, GateSettings())
    sr = r.mean() / r.std(ddof=1)
    sr0 = stats.expected_max_sharpe(10, 0.01)
    assert details["dsr"] == pytest.approx(_psr_by_hand(sr, sr0, r.size, 0.0, 1.0))
    assert kill or hold or details["dsr"] >= 0.95
    # the input that must pass unchanged: a skewed record keeps scipy's kurtosis
    x = np.random.default_rng(1).lognormal(0, 1, 80)
    assert stats.return_moments(x).kurtosis == st.kurtosis(x, fisher=False)


def test_constant_and_single_returns_have_no_sharpe() -> None:
    assert per_obs_sharpe([0.001] * 30) == 0.0 and per_obs_sharpe([0.05]) == 0.0
    assert stats.return_moments([0.001] * 30) == stats.ReturnMoments(0.0, 0.0, 3.0, 30)
    with pytest.raises(DataError, match="at least 2 returns"):
        stats.return_moments([0.05])


def test_min_track_record_length_of_inconsistent_moments_is_refused() -> None:
    # 1 - 5 x 1 + (3 - 1)/4 = -3.5: it gave -8.47 observations
    with pytest.raises(DataError, match="non-positive Sharpe variance"):
        stats.min_track_record_length(1.0, 0.0, skew=5.0, kurtosis=3.0)
    for bad in ({"prob": 1.5}, {"prob": 0.0}, {"sr_benchmark": math.nan}):
        with pytest.raises(DataError, match=r"prob|benchmark"):
            stats.min_track_record_length(**{"sr": 0.5, "sr_benchmark": 0.0, **bad})
    with pytest.raises(DataError, match="Sharpe ratio nan"):
        stats.min_track_record_length(math.nan, 0.0)


@pytest.mark.parametrize("prob", [0.3, 0.5])
def test_min_track_record_length_below_a_coin_flip_is_one(prob: float) -> None:
    """PSR at n = 1 is already 0.5: it gave the length for 1 - prob (11.8 for 0.3)."""
    assert stats.min_track_record_length(0.5, 0.0, prob=prob) == 1.0


@pytest.mark.parametrize(("sr", "sr0", "skew", "kurt", "prob"), [
    (0.5, 0.0, 0.0, 3.0, 0.95), (0.1, 0.02, -1.0, 8.0, 0.99), (0.3, -0.1, 0.5, 4.0, 0.7)])
def test_min_track_record_length_solves_psr_equal_prob(sr: float, sr0: float, skew: float,
                                                       kurt: float, prob: float) -> None:
    """The input that must pass: the length where the hand PSR reaches ``prob`` (scipy
    root finding)."""
    n = optimize.brentq(lambda x: _psr_by_hand(sr, sr0, x, skew, kurt) - prob, 1.0 + 1e-12,
                        1e9, xtol=1e-10)
    assert stats.min_track_record_length(sr, sr0, skew, kurt, prob) == pytest.approx(n)
    assert stats.min_track_record_length(sr0, sr, skew, kurt, prob) == math.inf


def test_expected_max_sharpe_of_a_nan_mean_is_refused() -> None:
    with pytest.raises(DataError, match="mean_trials_sr"):
        stats.expected_max_sharpe(10, 0.01, math.nan)
    by_hand = 0.01 + 0.1 * ((1 - np.euler_gamma) * st.norm.ppf(1 - 1 / 10)
                            + np.euler_gamma * st.norm.ppf(1 - 1 / (10 * math.e)))
    assert stats.expected_max_sharpe(10, 0.01, 0.01) == pytest.approx(by_hand)


# -- trial journal ----------------------------------------------------------------------


def _row(vid: str, sr: float) -> str:
    return json.dumps({"kind": "trial", "family": "f", "variant_id": vid,
                       "sharpe_per_obs": sr, "n_obs": 50, "source": "sweep", "ts_ns": 1},
                      sort_keys=True)


def test_a_torn_last_journal_row_does_not_stop_the_lab(tmp_path: Path) -> None:
    journal = tmp_path / ".lab-trials.jsonl"
    torn = _row("b", 0.2)
    journal.write_text(_row("a", 0.1) + "\n" + torn[: len(torn) // 2])  # killed mid-append
    with open_lab_ledger(tmp_path / "lab.db") as ledger:
        record_trial(ledger, "f", "c", 0.3, 50)
        check = sync_trials(ledger, "f", journal)
        assert check.restored == 1  # "a" from the journal
        ids = {r["variant_id"] for r in ledger.query("select variant_id from lab_trials")}
    assert ids == {"a", "c"}
    rows = _read(journal)  # "c" appended on a line of its own, not glued to the torn row
    assert [r["variant_id"] for r in rows] == ["a", "c"]


def test_a_damaged_middle_journal_row_is_still_refused(tmp_path: Path) -> None:
    journal = tmp_path / ".lab-trials.jsonl"
    journal.write_text(_row("a", 0.1) + "\n{garbage\n" + _row("b", 0.2) + "\n")
    with pytest.raises(DataError, match="line 2 is damaged"):
        _read(journal)
    journal.write_text(_row("a", 0.1) + "\n" + _row("b", 0.2))  # whole, no final newline
    assert [r["variant_id"] for r in _read(journal)] == ["a", "b"]


def test_a_short_write_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    journal = tmp_path / ".lab-trials.jsonl"
    with open_lab_ledger(tmp_path / "lab.db") as ledger:
        for k in range(3):
            record_trial(ledger, "f", f"v{k}", 0.1 * k, 50)
        sync_trials(ledger, "f", journal)
    assert [r["variant_id"] for r in _read(journal)] == ["v0", "v1", "v2"]


# -- grid ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [{"linear": [2, 50, 1]}, {"log": [1.0, 10.0, 1]}])
def test_a_one_value_range_with_two_ends_is_refused(spec: dict[str, list[float]]) -> None:
    with pytest.raises(ValueError, match="count 1 is one value"):
        ParamRange(**spec)  # type: ignore[arg-type]


def test_a_one_value_range_with_equal_ends_passes() -> None:
    assert ParamRange(linear=[5, 5, 1]).values() == [5.0]
    assert ParamRange(linear=[2, 50, 2]).values() == [2.0, 50.0]
    grid = SweepSettings(params={"plugins.x.a": ParamRange(choices=[1, 1, 2]),
                                 "plugins.x.b": ParamRange(log=[1, 100, 3])}).grid()
    assert len(grid) == 6 and len({json.dumps(p, sort_keys=True) for p in grid}) == 6


def test_a_one_value_range_in_a_config_is_a_config_error(tmp_path: Path) -> None:
    from argus_lab.config import lab_settings

    from argus_core import apply_overrides, load_config

    path = tmp_path / "lab.toml"
    path.write_text(demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-07-01"))
    config = apply_overrides(load_config(path), {
        "plugins.lab.sweep.params": {"plugins.example.fast": {"linear": [2, 50, 1]}}})
    with pytest.raises(ConfigError, match=r"plugins\.lab\.sweep\.params"):
        lab_settings(config)


# -- walk-forward windows ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rolling", "anchored"])
@pytest.mark.parametrize(("n_bars", "train", "test", "horizon"),
                         [(100, 30, 20, 0), (101, 30, 20, 3), (57, 10, 7, 7), (12, 11, 1, 0)])
def test_forward_windows_by_hand(mode: str, n_bars: int, train: int, test: int,
                                 horizon: int) -> None:
    """Test blocks tile [train, n) with the last one partial, never overlap; training is
    [0 or start - train, start) minus the last ``horizon`` bars: no label reaches a test
    bar."""
    splits = walk_forward_splits(n_bars, mode=mode, train_bars=train, test_bars=test,
                                 label_horizon=horizon)
    starts = list(range(train, n_bars, test))
    expected = [(np.arange(0 if mode == "anchored" else s - train, s - horizon),
                 np.arange(s, min(s + test, n_bars))) for s in starts]
    expected = [(tr, te) for tr, te in expected if tr.size >= 2]
    assert len(splits) == len(expected)
    for sp, (tr, te) in zip(splits, expected, strict=True):
        np.testing.assert_array_equal(sp.train, tr)
        np.testing.assert_array_equal(sp.test, te)
        assert sp.train.max() + horizon < sp.test.min()
    assert np.array_equal(np.concatenate([s.test for s in splits]),
                          np.arange(splits[0].test[0], n_bars))


def test_a_window_longer_than_the_data_is_refused() -> None:
    with pytest.raises(DataError, match="at least train_bars \\+ test_bars = 121"):
        walk_forward_splits(120, train_bars=100, test_bars=21)


def test_splits_of_more_bars_than_the_returns_are_refused() -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.01, (100, 3))
    with pytest.raises(DataError, match="reach bar 199 but the returns have 100 rows"):
        walk_forward(returns, walk_forward_splits(200, train_bars=50, test_bars=25))
    res = walk_forward(returns, walk_forward_splits(100, train_bars=50, test_bars=25))
    assert res.oos_index.tolist() == list(range(50, 100))
    for f in res.folds:  # each fold chose the best training Sharpe, by hand
        train = np.arange(f.test_start - 50, f.test_start)
        by_hand = [r.mean() / r.std(ddof=1) for r in returns[train].T]
        assert f.chosen == int(np.argmax(by_hand))
