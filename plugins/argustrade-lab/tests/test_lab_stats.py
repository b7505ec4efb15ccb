"""PSR / DSR / MinTRL against the papers and an independent mpmath implementation;
White's RC and Hansen's SPA against an independent numpy computation on arch's resamples."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
from arch.bootstrap import StationaryBootstrap
from argus_lab import stats

from argus_core.errors import DataError


def _mp_psr(sr, sr_star, n, skew, kurt):
    # Independent: mpmath at 50 digits, straight from Bailey & Lopez de Prado (2012), eq. 9.
    mpmath.mp.dps = 50
    sr, sr_star = mpmath.mpf(sr), mpmath.mpf(sr_star)
    den = mpmath.sqrt(1 - skew * sr + (mpmath.mpf(kurt) - 1) / 4 * sr**2)
    return float(mpmath.ncdf((sr - sr_star) * mpmath.sqrt(n - 1) / den))


def _mp_sr0(n_trials, var):
    mpmath.mp.dps = 50
    g = mpmath.euler

    def inv(p):
        return mpmath.sqrt(2) * mpmath.erfinv(2 * p - 1)

    return float(mpmath.sqrt(var) * ((1 - g) * inv(1 - mpmath.mpf(1) / n_trials)
                                     + g * inv(1 - 1 / (n_trials * mpmath.e))))


def test_dsr_matches_the_2014_paper_worked_example():
    # Bailey & Lopez de Prado (2014), section 4: annualised SR 2.5 on 5 years of daily
    # returns (T = 1250), skew -3, kurtosis 10, N = 100 trials, annualised V[SR] = 0.5
    # => DSR = 0.9004.  Sharpe ratios and their variance are converted to per-day units.
    sr = 2.5 / math.sqrt(250)
    dsr = stats.deflated_sharpe_ratio(sr, 1250, -3.0, 10.0, 100, 0.5 / 250)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # ... and the expected maximum Sharpe ratio of the 100 trials, annualised (~1.79).
    sr0 = stats.expected_max_sharpe(100, 0.5 / 250) * math.sqrt(250)
    assert sr0 == pytest.approx(_mp_sr0(100, 0.5), rel=1e-9)
    assert sr0 == pytest.approx(1.7894, abs=1e-3)


@pytest.mark.parametrize("sr,sr_star,n,skew,kurt", [
    (0.1, 0.0, 250, 0.0, 3.0), (0.05, 0.02, 1000, -1.2, 7.5), (-0.03, 0.0, 60, 0.5, 4.0),
    (0.3, 0.1, 24, -2.5, 12.0),
])
def test_psr_equals_independent_mpmath(sr, sr_star, n, skew, kurt):
    assert stats.probabilistic_sharpe_ratio(sr, sr_star, n, skew, kurt) == pytest.approx(
        _mp_psr(sr, sr_star, n, skew, kurt), rel=1e-12, abs=1e-15)


def test_dsr_is_psr_at_expected_max_and_decreases_with_trials():
    sr, n, sk, k = 0.08, 750, -0.5, 5.0
    vals = [stats.deflated_sharpe_ratio(sr, n, sk, k, nt, 0.002) for nt in (2, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(vals))
    assert vals[2] == pytest.approx(_mp_psr(sr, _mp_sr0(100, 0.002), n, sk, k), rel=1e-10)
    # One trial: no selection, DSR is PSR against zero.
    assert stats.deflated_sharpe_ratio(sr, n, sk, k, 1, 0.0) == pytest.approx(
        stats.probabilistic_sharpe_ratio(sr, 0.0, n, sk, k))


def test_expected_max_sharpe_matches_monte_carlo():
    rng = np.random.default_rng(3)
    n_trials, var = 50, 0.01
    draws = rng.normal(0.0, math.sqrt(var), size=(20_000, n_trials)).max(axis=1)
    # The paper's approximation is within ~1% of the true expected maximum for N = 50.
    assert stats.expected_max_sharpe(n_trials, var) == pytest.approx(draws.mean(), rel=0.02)


def test_min_track_record_length_is_where_psr_reaches_the_confidence():
    sr, sr_star, sk, k = 0.12, 0.03, -1.0, 6.0
    trl = stats.min_track_record_length(sr, sr_star, sk, k, prob=0.95)
    assert stats.probabilistic_sharpe_ratio(sr, sr_star, trl, sk, k) == pytest.approx(0.95)
    assert stats.min_track_record_length(0.01, 0.02) == math.inf


def test_normal_returns_psr_has_the_textbook_form():
    sr, n = 0.07, 500
    expected = 0.5 * math.erfc(-(sr * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2)) / math.sqrt(2))
    assert stats.probabilistic_sharpe_ratio(sr, 0.0, n) == pytest.approx(expected, rel=1e-12)


def test_excess_kurtosis_is_refused_with_a_clear_message():
    with pytest.raises(DataError, match="non-excess"):
        stats.probabilistic_sharpe_ratio(0.1, 0.0, 100, 0.0, 0.0)
    with pytest.raises(DataError, match="n_obs"):
        stats.probabilistic_sharpe_ratio(0.1, 0.0, 1, 0.0, 3.0)


def test_return_moments_are_population_moments_and_ddof1_sharpe():
    r = np.random.default_rng(5).standard_t(5, size=2000) * 0.01 + 0.0005
    m = stats.return_moments(r)
    z = (r - r.mean()) / r.std()
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1))
    assert m.skew == pytest.approx(np.mean(z**3))
    assert m.kurtosis == pytest.approx(np.mean(z**4))
    assert m.n_obs == 2000


def _white_rc_numpy(bench, models, block, reps, seed):
    # Independent White (2000) computation: statistic max_k mean(d_k), recentred bootstrap
    # max_k (mean(d*_k) - mean(d_k)); the resample indices come from the same arch sampler.
    d = models - bench[:, None]
    stat = d.mean(axis=0).max()
    bs = StationaryBootstrap(block, d, seed=np.random.default_rng(seed))
    boots = np.array([(pos[0].mean(axis=0) - d.mean(axis=0)).max() for pos, _ in
                      bs.bootstrap(reps)])
    return float((boots > stat).mean())


def test_white_reality_check_equals_independent_numpy():
    rng = np.random.default_rng(11)
    t, k = 400, 6
    bench = rng.normal(0.0, 0.01, t)
    models = rng.normal(0.0, 0.01, (t, k))
    models[:, 2] += 0.0012
    rc = stats.white_reality_check(bench, models, block_size=10, reps=500, seed=42)
    assert rc.pvalue == pytest.approx(_white_rc_numpy(bench, models, 10, 500, 42), abs=1e-12)
    assert rc.best_model == 2 and rc.n_models == k


def test_reality_check_and_spa_separate_skill_from_luck():
    rng = np.random.default_rng(12)
    t = 750
    bench = np.zeros(t)
    noise = rng.normal(0.0, 0.01, (t, 20))
    skilled = noise.copy()
    skilled[:, 7] += 0.003  # a Sharpe of ~0.3 per bar
    for fn in (stats.white_reality_check, stats.hansen_spa):
        assert fn(bench, skilled, block_size=5, reps=400, seed=1).pvalue < 0.05
        assert fn(bench, noise - noise.mean(axis=0), block_size=5, reps=400, seed=1).pvalue > 0.2


def test_spa_rejects_mismatched_shapes():
    with pytest.raises(DataError, match="same T"):
        stats.hansen_spa(np.zeros(50), np.zeros((40, 2)))
