"""An interrupted sweep keeps every finished point and resumes where it stopped.

A sweep process is killed with SIGKILL (no ``finally``, no cleanup) right after its
first point finished; ``argus lab sweep`` then reruns only the points that were not
done, and the result equals an uninterrupted sweep's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("argus_strategy_vrp")

from argus_lab.executor import LocalExecutor, SerialExecutor
from argus_lab.gates import open_lab
from argus_lab.sweep import load_sweep, run_sweep, sweep_id

from argus_core.config import load_config

CONFIG = """
[argus]
plugins = ["vrp"]
[run]
venue = "vrp_options"
strategies = ["vrp_put_spread"]
[plugins.vrp]
symbols = ["SPY"]
start = "2018-01-02"
end = "2018-06-29"
min_vrp = 0.0
spread_scale = 0.25
[plugins.risk]
max_consecutive_losses = 1000
per_play_fraction = "0.10"
[plugins.lab]
family = "vrp_put_spread"
dir = "{lab}"
[plugins.lab.executor]
kind = "serial"
[plugins.lab.sweep.params]
"plugins.vrp.short_delta" = {{ choices = [0.15, 0.2, 0.25] }}
"""

CRASH_AFTER_FIRST_POINT = textwrap.dedent("""
    import os, signal, sys
    from argus_core.config import load_config
    from argus_lab.executor import SerialExecutor
    from argus_lab.gates import open_lab
    from argus_lab.sweep import run_sweep

    config = load_config(sys.argv[1])
    settings, folder, ledger = open_lab(config)

    def crash(done, total):
        if done >= 1:
            os.kill(os.getpid(), signal.SIGKILL)

    run_sweep(config, settings.sweep.grid(), ledger=ledger, lab_dir=folder,
              executor=SerialExecutor(), family="vrp_put_spread", progress=crash)
    """)


def _config(tmp: Path, name: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(CONFIG.format(lab=f"lab-{name}"))
    return path


def _rows(config_path: Path) -> dict[str, dict]:
    config = load_config(config_path)
    settings, _folder, ledger = open_lab(config)
    sid = sweep_id(config, settings.sweep.grid())
    rows = {r["point_id"]: r for r in ledger.query(
        "select point_id, status, ts_ns from lab_sweep_points where sweep_id = ?", (sid,))}
    ledger.close()
    return rows


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    path = _config(tmp_path, "crash")
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_FIRST_POINT, str(path)],
                             capture_output=True, text=True, timeout=300)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    before = _rows(path)
    done = {p for p, r in before.items() if r["status"] == "done"}
    assert len(before) == 3 and len(done) == 1  # the finished point was committed at once

    resumed = subprocess.run([sys.executable, "-m", "argus_core.cli", "lab", "sweep",
                              "--config", str(path)], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _rows(path)
    assert all(r["status"] == "done" for r in after.values())
    (first,) = done
    assert after[first]["ts_ns"] == before[first]["ts_ns"]  # not run again
    assert all(after[p]["ts_ns"] > before[first]["ts_ns"] for p in after if p != first)

    # The resumed sweep equals an uninterrupted one, point by point.
    clean_path = _config(tmp_path, "clean")
    config = load_config(clean_path)
    settings, folder, ledger = open_lab(config)
    clean = run_sweep(config, settings.sweep.grid(), ledger=ledger, lab_dir=folder,
                      executor=SerialExecutor(), family="vrp_put_spread")
    ledger.close()
    config = load_config(path)
    settings, _folder, ledger = open_lab(config)
    got = load_sweep(ledger, sweep_id(config, settings.sweep.grid()))
    n_trials = ledger.query("select count(*) as n from lab_trials")[0]["n"]
    ledger.close()
    assert [p.point_id for p in got] == [p.point_id for p in clean]
    for a, b in zip(got, clean, strict=True):
        np.testing.assert_array_equal(a.returns, b.returns)
        assert a.metrics == b.metrics
    assert n_trials == 3  # each point counted once, crash or not


def test_points_are_stored_as_they_finish_on_a_process_pool(tmp_path):
    """``on_result`` fires in the parent per finished item, so a pool run checkpoints too."""
    seen: list[tuple[int, float]] = []
    with LocalExecutor(max_workers=2) as ex:
        out = ex.map(float.__neg__, [1.0, 2.0, 3.0],
                     on_result=lambda i, r: seen.append((i, r)))
    assert out == [-1.0, -2.0, -3.0]
    assert sorted(seen) == [(0, -1.0), (1, -2.0), (2, -3.0)]
    serial: list[tuple[int, float]] = []
    SerialExecutor().map(float.__neg__, [1.0, 2.0], on_result=lambda i, r: serial.append((i, r)))
    assert serial == [(0, -1.0), (1, -2.0)]


def test_variants_of_injected_code_never_share_sweep_points(tmp_path):
    """Two candidates under one config (they differ in code) each run their own points."""
    config = load_config(_config(tmp_path, "variants"))
    settings, folder, ledger = open_lab(config)
    grid = settings.sweep.grid()[:1]
    calls: list[int] = []

    class Counting(SerialExecutor):
        def map(self, fn, items, *, progress=None, on_result=None):
            calls.append(len(items))
            return super().map(fn, items, progress=progress, on_result=on_result)

    for variant in ("candidate-1", "candidate-2", "candidate-1"):
        run_sweep(config, grid, ledger=ledger, lab_dir=folder, executor=Counting(),
                  family="vrp_put_spread", variant=variant)
    ledger.close()
    assert calls == [1, 1, 0]  # a new variant runs; the same variant resumes
    assert sweep_id(config, grid, "candidate-1") != sweep_id(config, grid, "candidate-2")
