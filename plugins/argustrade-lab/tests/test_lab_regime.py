"""Regime detection: BOCPD against an independent, untruncated numpy/scipy implementation,
detection delay and false alarms on synthetic series, causality, online == batch."""

from __future__ import annotations

import numpy as np
import pytest
from argus_lab.regime import (
    CALM,
    STRESSED,
    BocpdParams,
    RegimeTracker,
    alarms,
    bocpd,
    detection_report,
    vol_regimes,
)
from scipy import stats as st

from argus_core.errors import DataError


def _reference_bocpd(x, lam, mu0, kappa0, alpha0, beta0):
    """Adams & MacKay (2007), Algorithm 1, with full (untruncated) run lengths and scipy's t."""
    t_n = len(x)
    post = np.zeros((t_n + 1, t_n + 1))
    post[0, 0] = 1.0
    mu, kappa, alpha, beta = (np.array([v]) for v in (mu0, kappa0, alpha0, beta0))
    h = 1.0 / lam
    for t, xt in enumerate(x):
        pred = st.t.pdf(xt, df=2 * alpha, loc=mu,
                        scale=np.sqrt(beta * (kappa + 1) / (alpha * kappa)))
        prior = post[t, :t + 1]
        growth = prior * pred * (1 - h)
        cp = np.sum(prior * pred * h)
        post[t + 1, 1:t + 2] = growth
        post[t + 1, 0] = cp
        post[t + 1] /= post[t + 1].sum()
        mu_new = (kappa * mu + xt) / (kappa + 1)
        beta_new = beta + kappa * (xt - mu) ** 2 / (2 * (kappa + 1))
        mu = np.concatenate([[mu0], mu_new])
        kappa = np.concatenate([[kappa0], kappa + 1])
        alpha = np.concatenate([[alpha0], alpha + 0.5])
        beta = np.concatenate([[beta0], beta_new])
    return post[1:]


def test_run_length_posterior_equals_the_reference():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 60), rng.normal(3, 1, 60)])
    p = BocpdParams(hazard_lambda=50, mu0=0, kappa0=1, alpha0=1, beta0=1,
                    max_run_length=200, window=3)
    res = bocpd(x, p, keep_posterior=True)
    ref = _reference_bocpd(x, 50, 0.0, 1.0, 1.0, 1.0)
    np.testing.assert_allclose(res.posterior[:, :ref.shape[1]], ref, atol=1e-12)
    # P(change) = mass on run lengths <= window, excluding the run that began with the data.
    n = np.arange(1, len(x) + 1)
    expect = np.array([ref[t, :min(4, n[t])].sum() for t in range(len(x))])
    np.testing.assert_allclose(res.p_change, expect, atol=1e-12)
    assert res.map_run_length[-1] == pytest.approx(60, abs=3)


def _series(seed):
    rng = np.random.default_rng(seed)
    segs = [(0.0, 0.01, 300), (0.0, 0.03, 200), (0.0, 0.01, 250), (0.02, 0.01, 250)]
    return np.concatenate([rng.normal(m, s, n) for m, s, n in segs]), [300, 500, 750]


def test_detects_known_change_points_quickly_with_few_false_alarms():
    # Eight synthetic series, three known changes each: vol x3 up, vol x3 down, a mean shift
    # of two standard deviations.  Alarm = P(change) crossing 0.5.
    delays, missed, false = [], 0, 0
    for seed in range(8):
        x, changes = _series(seed)
        params = BocpdParams.from_warmup(x[:50], hazard_lambda=250, max_run_length=400)
        report = detection_report(alarms(bocpd(x, params).p_change, 0.5), changes,
                                  max_delay=40)
        delays += report["delays"]
        missed += len(report["missed"])
        false += len(report["false_alarms"])
    assert missed <= 3  # of 24 changes
    assert np.mean(delays) <= 8 and max(delays) <= 30
    assert false <= 8  # 8,000 bars: about one false alarm per 1,000 bars at most


def test_few_false_alarms_without_changes():
    x = np.random.default_rng(42).normal(0.0, 0.01, 5000)
    res = bocpd(x, BocpdParams.from_warmup(x[:50], hazard_lambda=250, max_run_length=400))
    assert len(alarms(res.p_change, 0.5)) <= 5


def test_outputs_are_causal():
    x, _ = _series(1)
    params = BocpdParams.from_warmup(x[:50])
    full = bocpd(x, params)
    for cut in (100, 320, 777):
        part = bocpd(x[:cut], params)
        np.testing.assert_array_equal(part.p_change, full.p_change[:cut])
    closes = 100 * np.exp(np.cumsum(x))
    vr = vol_regimes(closes)
    for cut in (300, 640):
        pre = vol_regimes(closes[:cut])
        np.testing.assert_array_equal(pre.regime, vr.regime[:cut])
        np.testing.assert_array_equal(pre.vol_percentile, vr.vol_percentile[:cut])


def test_vol_regimes_flag_the_high_vol_segment_and_calm_the_quiet_one():
    stressed, calm = [], []
    for seed in range(8):
        x, _ = _series(seed)
        vr = vol_regimes(100 * np.exp(np.cumsum(x)))
        assert np.all(vr.regime[:271] == -1)  # not enough history yet (20 + 252 bars)
        # Percentiles are relative to the last 252 bars, so a long high-vol spell becomes
        # the norm: look at its first 110 bars, and at the quiet spell after it.
        stressed.append(np.mean(vr.regime[310:420] == STRESSED))
        calm.append(np.mean(vr.regime[600:750] == CALM))
    assert np.mean(stressed) > 0.8 and np.mean(calm) > 0.7


def test_online_tracker_equals_batch_and_round_trips_state():
    x, _ = _series(3)
    closes = 100 * np.exp(np.cumsum(x))
    params = BocpdParams.from_warmup(x[:50])
    batch = bocpd(np.diff(np.log(closes)), params)
    vr = vol_regimes(closes)
    tracker = RegimeTracker(params)
    states = []
    for i, c in enumerate(closes):
        if i == 500:  # hand the state over mid-stream (hot-swap)
            saved = tracker.get_state()
            tracker = RegimeTracker(params)
            tracker.set_state(saved)
        states.append(tracker.update(i, c))
    np.testing.assert_array_equal([s.p_change for s in states[1:]], batch.p_change)
    np.testing.assert_array_equal([s.regime for s in states], vr.regime)
    sigs = {s.name: s.value for s in states[-1].signals("replay:SPY")}
    assert set(sigs) >= {"bocpd_p_change", "vol_regime", "vol_percentile", "vol_spike"}


def test_bad_inputs():
    with pytest.raises(DataError):
        bocpd(np.array([0.1, np.nan]))
    with pytest.raises(DataError):
        BocpdParams(hazard_lambda=1)
    with pytest.raises(DataError):
        vol_regimes(np.array([1.0, -2.0, 3.0]))
