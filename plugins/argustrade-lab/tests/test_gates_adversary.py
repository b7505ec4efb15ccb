"""An adversary's attack on the deploy gates: getting an overfit strategy deployed.

Found (each test failed before its fix):

* PBO exactly 0.5 -- the chosen variant as likely as not overfit -- passed ``max_pbo =
  0.5`` (``pbo <= max_pbo``);
* a variant whose excess over cash is flat and positive (a constant carry) gave White's
  RC and Hansen's SPA p = 0 (arch's bootstrap of a constant is that constant); beside
  three noise variants it carried pure noise past both tests;
* deleting the lab folder reset the trial registry the DSR deflates by;
* padding a sweep with variants that never trade moved PBO where the padder wanted (one
  noise variant beside 15 idle ones: PBO 0.09, a pass);
* ``cost_multipliers = ["1", "0.5"]`` judged the cost gate at half the costs (the last
  point, not the dearest), and a base below 1 judged every gate at discounted costs;
* a record seen in only one regime passed the regime-stress gate.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_lab import gates, stats
from argus_lab.config import GateSettings
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core import ConfigError, load_config

GRID = """
[plugins.lab]
dir = "lab"
family = "adversary"
[plugins.lab.executor]
kind = "serial"
[plugins.lab.sweep.params]
"plugins.example.fast" = { choices = [3, 5] }
"""


def _config(tmp_path: Path, gates: str = "") -> Path:
    bars = tmp_path / "bars.csv"
    bars.write_bytes(BUNDLED_BARS.read_bytes())
    path = tmp_path / "lab.toml"
    text = (demo_toml(bars, start="2022-06-01", end="2022-07-01") + GRID
            + "[plugins.lab.gates]\nrc_reps = 50\n" + gates)
    path.write_text(text.replace("plugins = []", 'plugins = ["lab"]'))
    return path


def reference_pbo(m: np.ndarray, s: int) -> float:
    """PBO straight from Bailey et al. (2017), section 2: every half of ``s`` blocks is
    in-sample, the rest out of sample; omega = OOS rank of the IS-best / (N + 1) (ties
    share the average rank), lambda = logit(omega); PBO = share of lambda < 0, a lambda of
    exactly 0 (the median) counting half."""
    per = m.shape[0] // s
    blocks = np.split(m[m.shape[0] - per * s:], s)
    lam = []
    for chosen in itertools.combinations(range(s), s // 2):
        ins = np.vstack([blocks[i] for i in chosen])
        oos = np.vstack([blocks[i] for i in range(s) if i not in chosen])

        def sharpe(x: np.ndarray) -> np.ndarray:
            sd = x.std(axis=0, ddof=1)
            return np.where(sd > 1e-12, x.mean(axis=0) / np.where(sd > 0, sd, 1), 0.0)

        best = int(np.argmax(sharpe(ins)))
        o = sharpe(oos)
        rank = float(np.sum(o < o[best]) + (np.sum(o == o[best]) + 1) / 2)
        w = rank / (m.shape[1] + 1)
        lam.append(math.log(w / (1 - w)))
    a = np.array(lam)
    return float(((a < 0).sum() + 0.5 * (a == 0).sum()) / a.size)


# -- PBO ------------------------------------------------------------------------------

def test_pbo_exactly_one_half_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also: the cost gate judges the dearest point, not the last one listed."""
    import attrs
    from argus_lab.gates import evaluate_config

    real = stats.probability_of_backtest_overfitting
    monkeypatch.setattr(stats, "probability_of_backtest_overfitting",
                        lambda *a, **k: attrs.evolve(real(*a, **k), pbo=0.5))
    config = load_config(_config(tmp_path, 'cost_multipliers = ["1", "0.5"]\n'
                                           "min_sharpe_at_max_cost = 1e9\n"))
    verdict = evaluate_config(config)
    assert any("PBO 0.50 >= 0.5" in r for r in verdict.reasons), verdict.reasons
    cost = [r for r in verdict.reasons if "cost sensitivity" in r]
    assert cost and "at cost-1 " in cost[0], cost


def test_the_pbo_gate_passes_below_the_bar_only() -> None:
    rng = np.random.default_rng(3)
    edge = 0.003 + rng.normal(0.0, 0.01, (320, 4)) * np.array([1.0, 1.5, 2.0, 3.0])
    details, hold = gates.judge_pbo(edge, GateSettings(pbo_blocks=8))
    assert details["pbo"] == pytest.approx(reference_pbo(edge, 8))
    assert hold == [] and details["pbo"] < 0.5
    details, hold = gates.judge_pbo(edge, GateSettings(pbo_blocks=8, max_pbo=details["pbo"]))
    assert hold, "PBO equal to max_pbo must hold"


def test_padding_a_grid_with_idle_or_copied_variants_does_not_move_pbo() -> None:
    noise = np.random.default_rng(10).normal(0.0, 0.01, (400, 4))
    one = np.hstack([noise[:, :1], np.zeros((400, 15))])
    assert stats.probability_of_backtest_overfitting(one, 8).pbo == 0.0  # the attack
    details, hold = gates.judge_pbo(one, GateSettings(pbo_blocks=8))
    assert "pbo" not in details and details["left_out"] == 15 and hold == []
    padded = np.hstack([noise, np.zeros((400, 12)), np.full((400, 3), 1e-4),
                        np.repeat(noise[:, :1], 5, axis=1)])
    details, _hold = gates.judge_pbo(padded, GateSettings(pbo_blocks=8))
    assert details["left_out"] == 20
    assert details["pbo"] == pytest.approx(reference_pbo(noise, 8))


def test_pbo_ties_share_the_average_rank() -> None:
    """Identical variants (all tied out of sample): the chosen sits at the median, PBO 1/2
    -- and holds at the default bar."""
    r = np.random.default_rng(5).normal(0.0, 0.01, (64, 1))
    tied = np.hstack([r, r + 0.0])  # equal, so candidate_columns keeps one: no PBO
    assert stats.probability_of_backtest_overfitting(tied, 4).pbo == 0.5
    assert reference_pbo(tied, 4) == 0.5


# -- White's RC / Hansen's SPA ----------------------------------------------------------

@pytest.mark.parametrize("carry", [0.001, 0.0, -0.001])
def test_a_flat_excess_is_no_evidence_of_skill(carry: float) -> None:
    flat = np.full((400, 1), carry)
    for test in (stats.white_reality_check, stats.hansen_spa):
        assert test(np.zeros(400), flat, reps=200, seed=1).pvalue == 1.0
    bench = np.random.default_rng(0).normal(0.0, 0.01, 400)  # excess flat, bench not
    assert stats.white_reality_check(bench, (bench + carry)[:, None], reps=200,
                                     seed=1).pvalue == 1.0
    details, hold = gates.judge_reality_check(flat, GateSettings(), seed=1)
    assert details["flat_variants"] == 1
    assert len(hold) == 1 and "zero variance" in hold[0] and "no evidence" in hold[0], hold


def test_a_flat_carry_does_not_carry_noise_past_the_reality_check() -> None:
    noise = np.random.default_rng(1).normal(0.0, 0.01, (400, 3))
    both = np.hstack([noise, np.full((400, 1), 0.001)])
    details, hold = gates.judge_reality_check(both, GateSettings(), seed=1)
    alone, _ = gates.judge_reality_check(noise, GateSettings(), seed=1)
    assert details["flat_variants"] == 1
    assert details["white_rc_p"] == alone["white_rc_p"] > 0.10
    assert details["spa_p"] == alone["spa_p"]
    assert any("White's RC" in h and "flat" in h for h in hold), hold


# -- the trial registry -----------------------------------------------------------------

def _trials(verdict: Any) -> int:
    return int(verdict.details["dsr"]["n_trials"])


def test_deleting_the_lab_folder_does_not_launder_trials(tmp_path: Path) -> None:
    from argus_lab.gates import evaluate_config
    path = _config(tmp_path)
    first = evaluate_config(load_config(path))
    n = _trials(first)
    assert n >= 3  # the base point and two sweep points
    # More trials in another run of the family (a second grid), then the folder goes.
    wider_text = path.read_text().replace("choices = [3, 5]", "choices = [3, 5, 7, 9]")
    path.write_text(wider_text)
    second = evaluate_config(load_config(path))
    assert _trials(second) == n + 2
    shutil.rmtree(tmp_path / "lab")
    path.write_text(wider_text.replace("choices = [3, 5, 7, 9]", "choices = [3, 5]"))
    third = evaluate_config(load_config(path))
    assert _trials(third) == n + 2, "the reset registry deflated by fewer trials"
    assert third.details["trial_registry"]["restored"] == 2
    assert not any("trial registry" in r for r in third.reasons)

    # The journal's trials lost too (written before it existed, or edited): the reset
    # shows, the verdict holds and deflates by the earlier count.
    journal = tmp_path / ".lab-trials.jsonl"
    assert journal.exists()
    rows = [json.loads(x) for x in journal.read_text().splitlines()]
    journal.write_text("".join(json.dumps(r) + "\n" for r in rows if r["kind"] == "verdict"))
    shutil.rmtree(tmp_path / "lab")
    fourth = evaluate_config(load_config(path))
    assert fourth.verdict != "deploy"
    assert any("trial registry" in r and "cannot restore" in r for r in fourth.reasons)
    assert _trials(fourth) == n + 2
    assert fourth.details["trial_registry"]["missing"] == 2


def test_a_damaged_journal_is_refused_naming_it(tmp_path: Path) -> None:
    from argus_lab.gates import evaluate_config

    from argus_core import DataError

    path = _config(tmp_path)
    (tmp_path / ".lab-trials.jsonl").write_text('{"kind": "trial", "family": "adversary"\n')
    with pytest.raises(DataError, match=r"trial journal .*line 1 is damaged"):
        evaluate_config(load_config(path))


# -- costs and regimes ------------------------------------------------------------------

def test_a_base_cost_point_below_one_is_refused(tmp_path: Path) -> None:
    from argus_lab.config import lab_settings

    with pytest.raises(ConfigError, match=r"cost_multipliers\[0\] = 0.5 is outside"):
        lab_settings(load_config(_config(tmp_path, 'cost_multipliers = ["0.5", "1.5"]\n')))


def test_one_regime_is_no_stress_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "regime_stress", lambda *a, **k: {
        "CALM": {"bars": 500, "sharpe": 2.0, "total_return": 0.1, "max_drawdown": 0.01}})
    config = load_config(_config(tmp_path, 'regime_instrument = "replay:BTC-USD"\n'))
    verdict = gates.evaluate_config(config)
    assert any("only the CALM regime" in r for r in verdict.reasons), verdict.reasons
