"""Red team r38 of the deploy gates: records that rest on one trade, data edited while
the gates run, and a candidate's verdict shown as the config's own.

Found (each test failed before its fix):

* one winning bar beside 29 bars of ~1e-6 noise counted 30 "non-zero returns", so the
  DSR gate judged it: DSR 0.977, past the 0.95 deploy bar;
* White's RC and Hansen's SPA passed one winning bar among 200 idle ones (p = 0.064 <
  rc_alpha 0.10): the bootstrap's chance of redrawing that bar, not evidence;
* the bars file edited while the gates ran (after the base backtest, before the sweep)
  gave a verdict mixing both data sets, stored under the first one's fingerprint;
* a verdict the orchestrator stored for an injected candidate, under the same config
  hash, was shown in ``argus backtest``'s report as the config's own verdict.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from argus_lab import stats
from argus_lab.config import GateSettings
from argus_lab.gates import DSR_MIN_ACTIVE, judge_dsr, judge_reality_check
from argus_lab.ratios import effective_returns
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core import Config, DataError, load_config

GRID = """
[plugins.lab]
dir = "lab"
family = "r38"
[plugins.lab.executor]
kind = "serial"
[plugins.lab.gates]
rc_reps = 50
[plugins.lab.sweep.params]
"plugins.example.fast" = { choices = [3, 5] }
"""


def _one_win_in_noise(n: int = 300) -> np.ndarray:
    """``n`` bars: 29 of ~1e-6 noise, one 50% win, the rest idle."""
    r = np.zeros(n)
    r[100:129] = np.random.default_rng(0).normal(0.0, 1e-6, 29)
    r[-1] = 0.5
    return r


def test_effective_returns_counts_what_a_record_rests_on() -> None:
    """n equal returns count n; one large return among tiny ones about 1."""
    assert effective_returns(np.full(40, -0.01)) == pytest.approx(40.0)
    assert effective_returns(np.zeros(10)) == 0.0
    assert effective_returns([math.nan, 0.02, -0.02]) == pytest.approx(2.0)
    assert effective_returns(_one_win_in_noise()) < 1.01
    assert effective_returns(np.full(5, 1e-300)) == pytest.approx(5.0)  # no underflow


def test_one_win_beside_tiny_noise_does_not_pass_the_dsr_gate() -> None:
    r = _one_win_in_noise()
    assert np.count_nonzero(r) == DSR_MIN_ACTIVE  # the count the gate used to trust
    details, kill, hold = judge_dsr(r, 1, 0.0, GateSettings())
    assert details["dsr"] > 0.95  # the formula outside its regime
    assert kill == [] and len(hold) == 1 and "too few to judge" in hold[0], hold


@pytest.mark.parametrize("noise", [False, True])
def test_one_winning_bar_does_not_pass_the_reality_check(noise: bool) -> None:
    r = _one_win_in_noise(200) if noise else np.r_[np.zeros(199), 0.5]
    g = GateSettings()
    raw = stats.white_reality_check(np.zeros(r.size), r[:, None], reps=1000, seed=1)
    if not noise:
        assert raw.pvalue <= g.rc_alpha  # what the gate used to judge: a pass
    details, hold = judge_reality_check(r[:, None], g, seed=1)
    assert details["thin_variants"] == 1
    assert hold and "too few to judge" in hold[0], hold


def test_a_thin_winner_does_not_carry_a_noise_grid_past_the_reality_check() -> None:
    """Noise variants and one thin winner: the set must pass without the thin one too."""
    noise = np.random.default_rng(3).normal(0.0, 0.01, (200, 3))
    thin = np.r_[np.zeros(199), 0.5][:, None]
    details, hold = judge_reality_check(np.hstack([noise, thin]), GateSettings(), seed=1)
    assert details["thin_variants"] == 1
    assert details["white_rc_p_without_thin"] > 0.10
    assert any("White's RC" in h for h in hold) and any("SPA" in h for h in hold), hold


def test_a_thick_edge_still_passes_the_reality_check() -> None:
    """The guard does not hold a real edge (a steady 0.2% a bar with noise)."""
    r = 0.002 + np.random.default_rng(4).normal(0.0, 0.005, (400, 2))
    details, hold = judge_reality_check(r, GateSettings(), seed=1)
    assert details["thin_variants"] == 0 and hold == [], hold


def test_a_not_a_number_p_value_of_the_thick_set_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The larger of two p-values is NaN when either is (``max(0.05, nan)`` is 0.05)."""
    import attrs

    real = stats.hansen_spa
    calls: list[int] = []

    def second_is_nan(*a: object, **k: object) -> stats.MultipleComparison:
        calls.append(1)
        out = real(*a, **k)  # type: ignore[arg-type]
        return attrs.evolve(out, pvalue=math.nan) if len(calls) == 2 else out

    monkeypatch.setattr(stats, "hansen_spa", second_is_nan)
    edge = 0.002 + np.random.default_rng(4).normal(0.0, 0.005, (400, 1))
    thin = np.r_[np.zeros(399), 0.5][:, None]
    _details, hold = judge_reality_check(np.hstack([edge, thin]), GateSettings(), seed=1)
    assert any("SPA" in h and "nan" in h for h in hold), hold


def _config(tmp_path: Path) -> Path:
    bars = tmp_path / "bars.csv"
    bars.write_bytes(BUNDLED_BARS.read_bytes())
    path = tmp_path / "lab.toml"
    text = demo_toml(bars, start="2022-06-01", end="2022-07-01") + GRID
    path.write_text(text.replace("plugins = []", 'plugins = ["lab"]'))
    return path


def test_bars_edited_while_the_gates_run_store_no_verdict(tmp_path: Path) -> None:
    """The base backtest read the bars before the edit, the sweep after it."""
    from argus_lab.gates import evaluate_config
    from argus_lab.trials import open_lab_ledger

    config = load_config(_config(tmp_path))

    def edit_before_the_sweep(stage: str, done: int, _total: int) -> None:
        if stage == "sweep backtests" and done == 0:
            bars = tmp_path / "bars.csv"
            bars.write_text(bars.read_text() + "\n")

    with pytest.raises(DataError, match="changed while the gates ran"):
        evaluate_config(config, progress=edit_before_the_sweep)
    with open_lab_ledger(tmp_path / "lab" / "lab.db") as ledger:
        assert ledger.query("select * from lab_gate_verdicts") == []


def _section(config: Config, run_dir: Path) -> str:
    """The report's "Deploy gates" section."""
    from argus_lab.plugin import report_sections

    sections = report_sections(config, run_dir)
    assert sections is not None
    return sections["Deploy gates"]


def test_a_candidates_verdict_is_not_shown_as_the_configs_own(tmp_path: Path) -> None:
    from argus_lab.config import judging_fingerprint
    from argus_lab.gates import canonical_hash, open_lab
    from argus_lab.inputs import input_fingerprint

    config = load_config(_config(tmp_path))
    settings, _folder, ledger = open_lab(config)
    identity = {"inputs": input_fingerprint(config),
                "judged_by": judging_fingerprint(settings)}

    def store(verdict: str, variant: str) -> None:
        with ledger.transaction():
            ledger.insert("lab_gate_verdicts", {
                "family": "r38", "ts_ns": time.time_ns(), "verdict": verdict,
                "reasons_json": "[]", "config_hash": canonical_hash(config),
                "details_json": json.dumps({**identity, "variant": variant})})

    store("deploy", "candidate-7")  # an AI-written version judged on this config
    ledger.close()
    section = _section(config, tmp_path)
    assert "No verdict stored" in section and "deploy" not in section
    _settings, _folder, ledger = open_lab(config)
    store("kill", "")
    store("deploy", "candidate-8")
    ledger.close()
    assert "verdict: kill" in _section(config, tmp_path)
