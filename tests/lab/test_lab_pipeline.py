"""The whole lab pipeline on the VRP strategy: gates locally and on a real Dask cluster give
identical verdicts and figures; sweeps resume; trials count; the CLI prints and stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("argus_strategy_vrp")

from argus_core.config import load_config
from argus_core.lab.executor import SerialExecutor
from argus_core.lab.gates import evaluate_config, open_lab
from argus_core.lab.sweep import load_sweep, run_sweep, sweep_id
from argus_core.lab.trials import record_trial, trial_stats

CONFIG = """
[argus]
plugins = ["vrp"]
seed = 3
[run]
venue = "vrp_options"
strategies = ["vrp_put_spread"]
starting_cash = "100000"
checkpoint_every_events = 5000
[plugins.vrp]
symbols = ["SPY"]
start = "2017-06-01"
end = "2018-06-29"
min_vrp = 0.0
spread_scale = 0.25
[plugins.risk]
max_consecutive_losses = 1000
per_play_fraction = "0.10"
[lab]
dir = "lab"
[lab.executor]
kind = "{kind}"
[lab.sweep.params]
"plugins.vrp.short_delta" = {{ choices = [0.15, 0.25] }}
[lab.walkforward]
train_bars = 100
test_bars = 50
label_horizon = 30
[lab.bootstrap]
n_paths = 1000
batches = 2
[lab.gates]
rc_reps = 100
regime_instrument = "vrp_options:SPY"
regime_min_bars = 5
min_trades = 5
"""


def _config(tmp: Path, kind: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "vrp.toml"
    path.write_text(CONFIG.format(kind=kind))
    return path


def test_gates_locally_and_on_a_dask_cluster_agree(tmp_path):
    distributed = pytest.importorskip("distributed")
    from argus_core.lab.executor import DaskExecutor

    local = evaluate_config(load_config(_config(tmp_path / "a", "serial")))
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None) as cluster,
          DaskExecutor(cluster.scheduler_address) as ex):
        remote = evaluate_config(load_config(_config(tmp_path / "b", "dask")), executor=ex)
    assert local.verdict in ("deploy", "hold", "kill")
    assert local.verdict == remote.verdict
    assert local.reasons == remote.reasons
    for key in ("costs", "walkforward", "bootstrap", "dsr", "reality_check", "regimes"):
        assert json.dumps(local.details[key], sort_keys=True, default=str) == json.dumps(
            remote.details[key], sort_keys=True, default=str), key
    # Every gate ran and the verdict was stored.
    _settings, _folder, ledger = open_lab(load_config(_config(tmp_path / "a", "serial")))
    rows = ledger.query("select verdict, reasons_json from lab_gate_verdicts")
    assert rows and rows[-1]["verdict"] == local.verdict
    # base + 2 sweep points were counted as trials
    assert trial_stats(ledger, "vrp_put_spread")[0] == 3
    ledger.close()


def test_sweep_resumes_without_rerunning_finished_points(tmp_path):
    config = load_config(_config(tmp_path, "serial"))
    settings, folder, ledger = open_lab(config)
    grid = settings.sweep.grid()
    calls = []

    class Counting(SerialExecutor):
        def map(self, fn, items, *, progress=None):
            calls.append(len(items))
            return super().map(fn, items, progress=progress)

    first = run_sweep(config, grid[:1], ledger=ledger, lab_dir=folder, executor=Counting(),
                      family="f")
    # Same sweep id for the full grid only if the grid is equal: resume the *same* sweep.
    again = run_sweep(config, grid[:1], ledger=ledger, lab_dir=folder, executor=Counting(),
                      family="f")
    assert calls == [1, 0]
    np.testing.assert_array_equal(first[0].returns, again[0].returns)
    assert load_sweep(ledger, sweep_id(config, grid[:1]))[0].status == "done"
    ledger.close()


def test_trials_count_every_variant_once(tmp_path):
    config = load_config(_config(tmp_path, "serial"))
    _s, _f, ledger = open_lab(config)
    record_trial(ledger, "fam", "v1", 0.1, 250)
    record_trial(ledger, "fam", "v2", 0.3, 250, source="ai")
    record_trial(ledger, "fam", "v2", 0.2, 250, source="ai")  # re-run of the same variant
    record_trial(ledger, "other", "v1", 5.0, 250)
    n, var = trial_stats(ledger, "fam")
    assert n == 2 and var == pytest.approx(np.var([0.1, 0.2], ddof=1))
    ledger.close()
