"""Trade bootstrap: the numba kernel against plain numpy on the same resamples, block-length
law, batch invariance, and the fragility verdict."""

from __future__ import annotations

import numpy as np
import pytest
from argus_lab import bootstrap as bs

from argus_core.errors import DataError


@pytest.fixture(scope="module")
def pnl() -> np.ndarray:
    return np.random.default_rng(1).normal(40.0, 400.0, 300)


@pytest.mark.parametrize("method", ["stationary", "block"])
def test_kernel_statistics_equal_numpy_on_the_same_indices(pnl, method):
    spec = bs.BootstrapSpec(n_paths=300, n_trades=500, method=method, mean_block=4, seed=9,
                            initial_capital=20_000.0, ruin_fraction=0.3)
    paths = bs.bootstrap_paths(pnl, spec)
    idx = bs.bootstrap_indices(pnl.size, spec, 500)
    ref = bs.path_stats_numpy(pnl, idx, 20_000.0, 20_000.0 * 0.7)
    np.testing.assert_allclose(paths.max_drawdown, ref.max_drawdown, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(paths.final_equity, ref.final_equity, rtol=1e-12)
    np.testing.assert_allclose(paths.sharpe, ref.sharpe, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(paths.ruined, ref.ruined)
    assert paths.ruined.any() and not paths.ruined.all()  # the case is not degenerate


def test_stationary_blocks_are_geometric_with_the_requested_mean(pnl):
    spec = bs.BootstrapSpec(n_paths=400, n_trades=1000, mean_block=8, seed=3)
    idx = bs.bootstrap_indices(pnl.size, spec, 1000)
    continues = np.diff(idx, axis=1) == 1
    wrapped = (idx[:, :-1] == pnl.size - 1) & (idx[:, 1:] == 0)
    p_new = 1.0 - np.mean(continues | wrapped)
    # A new block starts with probability 1/8 (a fresh start may equal prev+1 by chance: 1/n).
    assert p_new == pytest.approx(1 / 8 * (1 - 1 / pnl.size), rel=0.03)
    # Starting points are uniform over the sample.
    counts = np.bincount(idx[:, 0], minlength=pnl.size)
    assert counts.max() < 12


def test_fixed_blocks_have_the_fixed_length(pnl):
    spec = bs.BootstrapSpec(n_paths=5, n_trades=40, method="block", mean_block=10, seed=2)
    idx = bs.bootstrap_indices(pnl.size, spec, 40)
    for row in idx:
        for b in range(4):
            block = row[b * 10:(b + 1) * 10]
            assert np.all((np.diff(block) == 1) | (np.diff(block) == 1 - pnl.size))


def test_batches_concatenate_to_the_single_run(pnl):
    spec = bs.BootstrapSpec(n_paths=1000, seed=5)
    whole = bs.bootstrap_paths(pnl, spec)
    parts = [bs.bootstrap_paths(pnl, spec, path_offset=o, n_paths=250) for o in range(0, 1000, 250)]
    joined = bs.BootstrapPaths.concat(parts)
    for f in ("max_drawdown", "final_equity", "ruined", "sharpe"):
        np.testing.assert_array_equal(getattr(joined, f), getattr(whole, f))


def test_numba_and_numpy_reference_agree_in_distribution(pnl):
    spec = bs.BootstrapSpec(n_paths=4000, n_trades=300, mean_block=5, seed=1)
    a = bs.bootstrap_paths(pnl, spec)
    b = bs.bootstrap_numpy(pnl, spec)
    assert np.median(a.max_drawdown) == pytest.approx(np.median(b.max_drawdown), rel=0.05)
    assert np.mean(a.final_equity) == pytest.approx(np.mean(b.final_equity), rel=0.01)
    # Final equity = initial + sum of resampled P&L: its mean is initial + n * mean(pnl).
    assert np.mean(a.final_equity) == pytest.approx(100_000 + 300 * pnl.mean(), rel=0.01)


def test_fragility_verdict():
    losing = np.random.default_rng(2).normal(-30.0, 300.0, 200)
    spec = bs.BootstrapSpec(n_paths=500, seed=0, initial_capital=10_000.0)
    summary = bs.summarise(bs.bootstrap_paths(losing, spec), spec, 200)
    assert summary.fragile and "resampled paths" in summary.reason
    winning = np.abs(losing) + 5
    summary = bs.summarise(bs.bootstrap_paths(winning, spec), spec, 200)
    assert not summary.fragile and summary.survival == 1.0 and summary.ruin_probability == 0.0


def test_bad_input_is_refused():
    with pytest.raises(DataError, match="non-empty"):
        bs.bootstrap_paths(np.array([]), bs.BootstrapSpec())
    with pytest.raises(DataError, match="NaN"):
        bs.bootstrap_paths(np.array([1.0, np.nan]), bs.BootstrapSpec())
    with pytest.raises(DataError, match="method"):
        bs.bootstrap_paths(np.array([1.0]), bs.BootstrapSpec(method="iid"))
