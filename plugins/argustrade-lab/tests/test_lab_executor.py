"""Executors: a local process pool and a real Dask LocalCluster give the local answer."""

from __future__ import annotations

import numpy as np
import pytest
from argus_lab.bootstrap import (
    BootstrapPaths,
    BootstrapSpec,
    batch_tasks,
    bootstrap_batch,
    bootstrap_paths,
)
from argus_lab.executor import LocalExecutor, SerialExecutor
from argus_lab.walkforward import evaluate_fold, walk_forward_splits

PNL = np.random.default_rng(4).normal(25.0, 300.0, 250)
SPEC = BootstrapSpec(n_paths=2000, seed=13)


def _fold_tasks():
    r = np.random.default_rng(1).normal(0.0005, 0.01, (400, 4))
    return [(r, s) for s in walk_forward_splits(400, train_bars=200, test_bars=50)]


def test_local_pool_matches_serial_and_single_run():
    tasks = batch_tasks(PNL, SPEC, 4)
    serial = SerialExecutor().map(bootstrap_batch, tasks)
    with LocalExecutor(max_workers=2) as ex:
        seen = []
        pooled = ex.map(bootstrap_batch, tasks, progress=lambda d, t: seen.append((d, t)))
    whole = bootstrap_paths(PNL, SPEC)
    for a, b in zip(serial, pooled, strict=True):
        np.testing.assert_array_equal(a.final_equity, b.final_equity)
    np.testing.assert_array_equal(BootstrapPaths.concat(pooled).max_drawdown, whole.max_drawdown)
    assert sorted(seen) == [(i, 4) for i in range(1, 5)]


def test_dask_local_cluster_matches_local_run():
    distributed = pytest.importorskip("distributed")
    from argus_lab.executor import DaskExecutor

    tasks = batch_tasks(PNL, SPEC, 4)
    local = SerialExecutor().map(bootstrap_batch, tasks)
    folds_local = SerialExecutor().map(evaluate_fold, _fold_tasks())
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None) as cluster,
          DaskExecutor(cluster.scheduler_address) as ex):
        assert len(ex.client.scheduler_info()["workers"]) == 2
        remote = ex.map(bootstrap_batch, tasks)
        folds_remote = ex.map(evaluate_fold, _fold_tasks())
    for a, b in zip(local, remote, strict=True):
        for f in ("max_drawdown", "final_equity", "ruined", "sharpe"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert folds_local == folds_remote
