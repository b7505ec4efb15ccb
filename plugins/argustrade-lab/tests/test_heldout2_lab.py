"""A second red team of the lab: the trial count, the walk-forward layout and the verdict's
identity.

Found (each test failed before its fix):

* a sweep point that raised (or left fewer than two returns) was not counted as a trial,
  so the deflated Sharpe ratio deflated by fewer trials than were tried;
* extending a sweep's grid counted every point already tried again (the trial id was
  the sweep's, which the grid changes), so the same variants were counted twice;
* ``purged_kfold``'s refusal said "needs 2 <= n_folds <= 20" without the value given
  (and called too little data a config error);
* a purged k-fold whose training bars were all purged or embargoed still "chose" the
  first variant on no data, and its test block entered the out-of-sample record;
* a stored verdict was shown by ``argus report`` under other thresholds: the gate
  tables are not part of the config hash it is stored under, so one judged with
  ``dsr_deploy = 0`` was shown for a config asking for 0.99.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core import Config, ConfigError, DataError, load_config

SWEEP = """
[plugins.lab]
dir = "lab"
family = "heldout2"
[plugins.lab.executor]
kind = "serial"
[plugins.lab.sweep.params]
"plugins.example.fast" = {{ choices = {fast} }}
"""


def _config(tmp_path: Path, extra: str) -> Config:
    """A lab config over June 2022 of the bundled bars."""
    path = tmp_path / "lab.toml"
    text = demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-07-01") + extra
    path.write_text(text.replace("plugins = []", 'plugins = ["lab"]'))
    return load_config(path)


def _fake_sweep(config: Config, outcomes: list[tuple[np.ndarray, str | None]]) -> None:
    """``run_sweep`` through its own store, each task answered by the next prepared
    ``(returns, error)`` instead of a backtest."""
    from argus_lab.executor import SerialExecutor
    from argus_lab.gates import open_lab
    from argus_lab.sweep import PointOutcome, run_sweep

    class Fake(SerialExecutor):
        def map(self, fn: Any, items: Any, *, progress: Any = None,
                on_result: Any = None) -> list[Any]:
            out = []
            for i, task in enumerate(items):
                r, error = outcomes.pop(0)
                sr = float(r.mean() / r.std(ddof=1)) if r.size > 1 else 0.0
                o = PointOutcome(task.point_id, {} if error else {"sharpe_per_obs": sr}, r,
                                 np.arange(r.size), np.empty(0), error)
                if on_result:
                    on_result(i, o)
                out.append(o)
            return out

    settings, folder, ledger = open_lab(config)
    try:
        run_sweep(config, settings.sweep.grid(), ledger=ledger, lab_dir=folder,
                  executor=Fake(), family="heldout2", engine="event_loop")
    finally:
        ledger.close()


def _trials(config: Config) -> tuple[int, float]:
    from argus_lab.gates import open_lab
    from argus_lab.trials import trial_stats

    _settings, _folder, ledger = open_lab(config)
    try:
        return trial_stats(ledger, "heldout2")
    finally:
        ledger.close()


def test_a_failed_sweep_point_counts_as_a_trial(tmp_path: Path) -> None:
    """Four variants tried: two ran, one raised, one left a single return.  Before: 2
    trials (the DSR's expected maximum Sharpe was that of 2 lucky tries, not 4); now 4,
    with the variance of the Sharpe ratios still that of the two that have one."""
    config = _config(tmp_path, SWEEP.format(fast=[3, 5, 8, 13]))
    rng = np.random.default_rng(7)
    real = rng.normal(0.001, 0.01, (2, 200))
    _fake_sweep(config, [(real[0], None), (real[1], None),
                         (np.empty(0), "ValueError: the strategy raised"),
                         (np.array([0.01]), None)])
    n, var = _trials(config)
    srs = [r.mean() / r.std(ddof=1) for r in real]
    assert n == 4
    assert var == pytest.approx(np.var(srs, ddof=1), rel=1e-12)


def test_extending_a_grid_does_not_count_its_points_twice(tmp_path: Path) -> None:
    """fast = [3, 5] swept, then [3, 5, 8]: three variants tried.  Before: 5 trials (the
    first two again, under the new grid's sweep id)."""
    rng = np.random.default_rng(8)
    runs = [(rng.normal(0.001, 0.01, 200), None) for _ in range(5)]
    _fake_sweep(_config(tmp_path, SWEEP.format(fast=[3, 5])), runs[:2])
    config = _config(tmp_path, SWEEP.format(fast=[3, 5, 8]))
    _fake_sweep(config, runs[2:])
    assert _trials(config)[0] == 3


@pytest.mark.parametrize("n_bars,n_folds,kind,said", [
    (20, 1, ConfigError, "n_folds = 1 must be at least 2"),
    (20, 30, DataError, "n_folds = 30 is more than the 20 bars"),
    (0, 5, DataError, "n_folds = 5 is more than the 0 bars"),
])
def test_purged_kfold_refusals_name_the_setting_and_value(n_bars: int, n_folds: int,
                                                          kind: type, said: str) -> None:
    """Before: "purged_kfold needs 2 <= n_folds <= 20" (no value given) and a
    ConfigError for a backtest shorter than the folds (a data problem)."""
    from argus_lab.walkforward import walk_forward_splits

    with pytest.raises(kind, match=said):
        walk_forward_splits(n_bars, mode="purged_kfold", n_folds=n_folds)


def test_a_fold_purged_to_nothing_is_not_a_selection() -> None:
    """30 bars, 3 folds, label_horizon = embargo = 10: the middle fold's training bars
    are all purged or embargoed.  Before: it was kept with no training bars and chose
    column 0 (Sharpe 0 of nothing), whose test block entered the OOS record; with every
    fold emptied (20 bars, 2 folds, 15 and 15) the whole record was an unselected
    variant.  Now such a fold is dropped, and none left is a DataError naming both."""
    from argus_lab.walkforward import walk_forward, walk_forward_splits

    splits = walk_forward_splits(30, mode="purged_kfold", n_folds=3, label_horizon=10,
                                 embargo=10)
    assert [s.train.size >= 2 for s in splits] == [True] * len(splits)
    assert [int(s.test[0]) for s in splits] == [0, 20]
    rng = np.random.default_rng(9)
    res = walk_forward(rng.normal(0, 0.01, (30, 3)), splits)
    assert res.oos_index.tolist() == [*range(10), *range(20, 30)]
    with pytest.raises(DataError, match="label_horizon = 15 and embargo = 15"):
        walk_forward_splits(20, mode="purged_kfold", n_folds=2, label_horizon=15,
                            embargo=15)
    with pytest.raises(DataError, match="label_horizon = 10"):  # rolling: was "no folds"
        walk_forward_splits(100, train_bars=10, test_bars=5, label_horizon=10)


GATES = """
[plugins.lab]
dir = "lab"
family = "heldout2"
[plugins.lab.executor]
kind = "serial"
[plugins.lab.walkforward]
train_bars = 100
test_bars = 100
[plugins.lab.bootstrap]
n_paths = 100
[plugins.lab.gates]
rc_reps = 100
dsr_kill = {dsr}
dsr_deploy = {dsr}
"""


def test_a_verdict_judged_under_other_thresholds_is_not_shown(tmp_path: Path) -> None:
    """The gates run with dsr_deploy = dsr_kill = 0; the config is then tightened to 0.99.
    Before: the report showed the verdict judged under 0 as this config's."""
    from argus_lab.gates import evaluate_config
    from argus_lab.plugin import report_sections

    loose = _config(tmp_path, GATES.format(dsr=0.0))
    verdict = evaluate_config(loose)
    shown = report_sections(loose, tmp_path)["Deploy gates"]  # type: ignore[index]
    assert f"verdict: {verdict.verdict}" in shown
    strict = _config(tmp_path, GATES.format(dsr=0.99))
    section = report_sections(strict, tmp_path)["Deploy gates"]  # type: ignore[index]
    assert "No verdict stored" in section and "verdict:" not in section
