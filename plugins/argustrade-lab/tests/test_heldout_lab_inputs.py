"""A red team of the lab's inputs: its data, its resume ledger and its settings.

Found (each test failed before its fix):

* a sweep resumed over an edited bars file: every point was "already done", so the
  walk-forward, PBO and reality check judged the old data's numbers; the report showed
  the old data's deploy verdict; a worker's compiled series was the old one;
* a damaged row of the resume ledger (a truncated returns blob, metrics that are not
  JSON, returns and stamps of different lengths) stopped every command with a traceback
  (ValueError, JSONDecodeError) or misaligned the returns matrix;
* a linear / log range reaching NaN or infinity was accepted and swept NaN parameters;
* a range repeating a value gave two tasks for one point, two backtests in one run folder;
* ``rc_reps``, ``n_paths`` and ``n_trades`` had no ceiling: 1e9 reality-check reps
  died with a MemoryError traceback, 1e11 resampled trades ran for hours;
* a reality-check or PBO figure that is not a number passed its gate (``p > alpha``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml, error_line, invoke_argus

from argus_core import Config, ConfigError, LedgerError, apply_overrides, load_config

GRID = """
[plugins.lab]
dir = "lab"
family = "inputs"
[plugins.lab.executor]
kind = "serial"
[plugins.lab.sweep.params]
"plugins.example.fast" = { choices = [3, 5] }
"plugins.example.slow" = { choices = [10, 20] }
"""
START, END = 1654041600, 1656633600  # June 2022, the window the config replays


def _config(tmp_path: Path, extra: str = GRID) -> Path:
    """A lab config over June 2022 of a copy of the bundled bars (so it can be edited)."""
    bars = tmp_path / "bars.csv"
    bars.write_bytes(BUNDLED_BARS.read_bytes())
    path = tmp_path / "lab.toml"
    text = demo_toml(bars, start="2022-06-01", end="2022-07-01") + extra
    path.write_text(text.replace("plugins = []", 'plugins = ["lab"]'))
    return path


def _mirror_june(bars: Path) -> None:
    """Rewrite June 2022's prices mirrored around 60,000 (a falling market rises)."""
    out = []
    for line in bars.read_text().splitlines():
        ts, *rest = line.split(",")
        if ts.isdigit() and START <= int(ts) < END:
            o, h, lo, c = (60000 - float(x) for x in rest[:4])
            rest[:4] = [f"{o:.1f}", f"{max(h, lo):.1f}", f"{min(h, lo):.1f}", f"{c:.1f}"]
        out.append(",".join([ts, *rest]))
    bars.write_text("\n".join(out) + "\n")


def _sweep(config: Config) -> dict[str, Any]:
    from argus_lab.executor import SerialExecutor
    from argus_lab.gates import open_lab
    from argus_lab.sweep import run_sweep

    settings, folder, ledger = open_lab(config)
    try:
        points = run_sweep(config, settings.sweep.grid(), ledger=ledger, lab_dir=folder,
                           executor=SerialExecutor(), family="inputs")
    finally:
        ledger.close()
    return {p.point_id: p.metrics["total_return"] for p in points}


def test_a_sweep_over_edited_data_is_run_again(tmp_path: Path) -> None:
    """Before: the second sweep found every point done and returned the first data's
    returns; now the points are run again (afresh, under the same ids) and equal a sweep
    of the new data in a lab folder of its own."""
    path = _config(tmp_path)
    before = _sweep(load_config(path))
    _mirror_june(tmp_path / "bars.csv")
    after = _sweep(load_config(path))
    fresh = apply_overrides(load_config(path), {"plugins.lab.dir": "lab-fresh"})
    assert after == _sweep(fresh)
    assert after.keys() == before.keys() and after != before


def test_a_stored_verdict_of_other_data_is_not_shown(tmp_path: Path) -> None:
    """The report's "Deploy gates" section showed the verdict stored for the config's
    text, judged on the bars before they were edited."""
    import json
    import time

    from argus_lab.config import judging_fingerprint
    from argus_lab.gates import canonical_hash, open_lab
    from argus_lab.inputs import input_fingerprint
    from argus_lab.plugin import report_sections

    path = _config(tmp_path)
    config = load_config(path)
    _settings, _folder, ledger = open_lab(config)
    with ledger.transaction():
        ledger.insert("lab_gate_verdicts", {
            "family": "inputs", "ts_ns": time.time_ns(), "verdict": "deploy",
            "reasons_json": "[]", "details_json": json.dumps(
                {"inputs": input_fingerprint(config),
                 "judged_by": judging_fingerprint(_settings)}),  # the thresholds too
            "config_hash": canonical_hash(config)})
    ledger.close()
    assert "verdict: deploy" in report_sections(config, tmp_path)["Deploy gates"]
    _mirror_june(tmp_path / "bars.csv")
    section = report_sections(load_config(path), tmp_path)["Deploy gates"]
    assert "No verdict stored" in section and "deploy" not in section


def test_a_worker_does_not_keep_the_series_of_other_data(tmp_path: Path) -> None:
    """``compiled.prepared`` remembered a series per config text: a Dask worker that ran
    a sweep kept the old bars for the next sweep of the same config."""
    from argus_lab import compiled

    config = load_config(_config(tmp_path))
    first = compiled.prepared(compiled.base_config(config, {})).close.copy()
    _mirror_june(tmp_path / "bars.csv")
    second = compiled.prepared(compiled.base_config(config, {})).close
    assert not np.array_equal(first, second)


def _damage(db: Path, sql: str) -> None:
    conn = apsw.Connection(str(db))
    conn.execute(sql + " where rowid = (select min(rowid) from lab_sweep_points)")
    conn.close()


@pytest.mark.parametrize(("sql", "said"), [
    ("update lab_sweep_points set returns = substr(returns, 1, 13)",
     "13 bytes of returns"),
    ("update lab_sweep_points set metrics_json = '{bad'", "metrics are not JSON"),
    ("update lab_sweep_points set ts_blob = substr(ts_blob, 1, 16)",
     "returns but 2 timestamps"),
    ("update lab_sweep_points set params_json = '[1]'", "parameters are not a table"),
])
@pytest.mark.parametrize("command", ["sweep", "walkforward"])
def test_a_damaged_resume_row_is_refused_naming_it(tmp_path: Path, sql: str, said: str,
                                                   command: str) -> None:
    """Before: ValueError / JSONDecodeError tracebacks ("a bug in Argus"), or (lengths
    that differ) a returns matrix aligned on the wrong stamps."""
    path = _config(tmp_path)
    _sweep(load_config(path))
    _damage(tmp_path / "lab" / "lab.db", sql)
    result = invoke_argus(["lab", command, "--config", str(path)])
    line = error_line(result, LedgerError.exit_code)
    assert "Traceback" not in result.output
    assert str(tmp_path / "lab" / "lab.db") in line and said in line, line
    assert "remove the sweep's rows or the lab folder" in line, line


@pytest.mark.parametrize("spec", ['{ linear = [1, nan, 3] }', '{ log = [1, inf, 3] }',
                                  '{ linear = [-inf, 5, 3] }'])
def test_a_range_that_is_not_finite_is_a_config_error(tmp_path: Path, spec: str) -> None:
    """Before: NaN / infinite values were swept (every such point failed, or ran)."""
    path = _config(tmp_path, GRID.replace("{ choices = [3, 5] }", spec))
    line = error_line(invoke_argus(["lab", "sweep", "--config", str(path)]), 2)
    assert "plugins.lab.sweep.params" in line and "finite" in line, line


@pytest.mark.parametrize(("spec", "values"), [
    ({"choices": [3, 3, 5]}, [3, 5]), ({"linear": [4.0, 4.0, 3]}, [4.0]),
    ({"choices": [[1, 2], [1, 2]]}, [[1, 2]])])
def test_a_range_repeating_a_value_is_one_point(spec: dict[str, Any],
                                                values: list[Any]) -> None:
    """Before: one point per repeat, all with the same id: two tasks ran one backtest in
    one run folder (on a process pool, at once) and the ledger kept one row."""
    from argus_lab.config import ParamRange, SweepSettings

    grid = SweepSettings(params={"plugins.example.fast": ParamRange(**spec)}).grid()
    assert grid == [{"plugins.example.fast": v} for v in values]


@pytest.mark.parametrize(("item", "said"), [
    ("plugins.lab.gates.rc_reps=1000000000", "rc_reps = 1000000000 is outside"),
    ("plugins.lab.bootstrap.n_paths=1000000000000", "n_paths = 1000000000000 is outside"),
    ("plugins.lab.bootstrap.n_trades=100000000000", "n_trades = 100000000000 is outside"),
])
def test_work_settings_have_a_ceiling(tmp_path: Path, item: str, said: str) -> None:
    """Before: a MemoryError traceback (rc_reps, n_paths) or hours of work (n_trades)."""
    path = _config(tmp_path)
    line = error_line(invoke_argus(["lab", "gates", "--config", str(path), "--set", item]), 2)
    assert line.startswith(f"--set {item.partition('=')[0]}: ") and said in line, line


@pytest.mark.parametrize("figure", ["white_rc", "hansen_spa", "pbo"])
def test_a_figure_that_is_not_a_number_does_not_pass_its_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figure: str) -> None:
    """Before: ``if p > alpha: hold`` let a NaN p-value or PBO through."""
    import attrs
    from argus_lab import stats
    from argus_lab.gates import evaluate_config

    if figure == "pbo":
        real = stats.probability_of_backtest_overfitting
        monkeypatch.setattr(stats, "probability_of_backtest_overfitting", lambda *a, **k:
                            attrs.evolve(real(*a, **k), pbo=math.nan))
    else:
        test = {"white_rc": "white_reality_check", "hansen_spa": "hansen_spa"}[figure]
        real_rc = getattr(stats, test)
        monkeypatch.setattr(stats, test, lambda *a, **k:
                            attrs.evolve(real_rc(*a, **k), pvalue=math.nan))
    config = load_config(_config(tmp_path, GRID + "[plugins.lab.gates]\nrc_reps = 50\n"))
    verdict = evaluate_config(config)
    name = {"white_rc": "White's RC", "hansen_spa": "Hansen's SPA", "pbo": "PBO"}[figure]
    assert any(name in r and "nan" in r for r in verdict.reasons), verdict.reasons


def test_a_config_error_is_raised_for_a_bad_range_in_code() -> None:
    """The settings class itself refuses it (not only the command line)."""
    from argus_lab.config import ParamRange

    with pytest.raises((ValueError, ConfigError), match="finite"):
        ParamRange(linear=[0.0, math.inf, 3])
