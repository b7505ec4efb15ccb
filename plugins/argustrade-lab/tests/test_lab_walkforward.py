"""Walk-forward splits (rolling, anchored, purged k-fold), purging/embargo, stitching."""

from __future__ import annotations

import numpy as np
import pytest
from argus_lab.walkforward import purge_and_embargo, walk_forward, walk_forward_splits

from argus_core.errors import ConfigError, DataError


def test_rolling_and_anchored_layouts():
    roll = walk_forward_splits(100, mode="rolling", train_bars=40, test_bars=25)
    assert [(int(s.test[0]), int(s.test[-1])) for s in roll] == [(40, 64), (65, 89), (90, 99)]
    assert all(s.train.size == 40 and s.train[-1] == s.test[0] - 1 for s in roll)
    anch = walk_forward_splits(100, mode="anchored", train_bars=40, test_bars=25)
    assert [s.train.size for s in anch] == [40, 65, 90]
    assert all(s.train[0] == 0 for s in anch)


def test_purging_drops_training_labels_that_reach_into_the_test_block():
    splits = walk_forward_splits(100, mode="rolling", train_bars=40, test_bars=20,
                                 label_horizon=5)
    for s in splits:
        assert s.train.max() + 5 < s.test[0]  # no training label overlaps the test block
        assert s.train.size == 35


def test_purged_kfold_purges_before_and_embargoes_after_each_test_block():
    splits = walk_forward_splits(100, mode="purged_kfold", n_folds=4, label_horizon=3,
                                 embargo=4)
    s = splits[1]  # test block 25..49
    assert s.test[0] == 25 and s.test[-1] == 49
    assert not np.isin(np.arange(22, 54), s.train).any()  # 3 purged before, 4 embargoed after
    assert np.isin([21, 54], s.train).all()
    assert set(np.concatenate([x.test for x in splits])) == set(range(100))


def test_purge_and_embargo_directly():
    kept = purge_and_embargo(np.arange(30), 10, 20, label_horizon=2, embargo=3)
    assert kept.tolist() == [*range(8), *range(23, 30)]


def test_walk_forward_picks_in_sample_best_and_stitches_oos():
    rng = np.random.default_rng(0)
    n = 300
    r = rng.normal(0, 0.01, (n, 3))
    r[:150, 0] += 0.01  # variant 0 good early, variant 2 good late
    r[150:, 2] += 0.01
    splits = walk_forward_splits(n, mode="rolling", train_bars=50, test_bars=50)
    res = walk_forward(r, splits)
    assert [f.chosen for f in res.folds] == [0, 0, 0, 2, 2]
    assert res.oos_index.tolist() == list(range(50, 300))
    expected = np.concatenate([r[50:150, 0], r[150:200, 0], r[200:300, 2]])
    np.testing.assert_array_equal(res.oos_returns, expected)
    assert res.oos_equity[-1] == pytest.approx(np.prod(1 + expected))
    assert 0 <= res.positive_share <= 1


def test_bad_layouts_are_refused():
    with pytest.raises(ConfigError, match="mode"):
        walk_forward_splits(100, mode="expanding")
    with pytest.raises(DataError, match="train_bars"):
        walk_forward_splits(50, train_bars=40, test_bars=20)
