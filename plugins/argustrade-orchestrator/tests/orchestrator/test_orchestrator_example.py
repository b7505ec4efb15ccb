"""The offline example end to end: prompt -> gates -> shadow -> canary -> full hot-swap,
an escape attempt refused, a rollback, all of it in the ledger and the thought spool."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from argus_lab.trials import open_lab_ledger
from argus_orchestrator.commands import strategies_group, thoughts_cmd
from argus_orchestrator.session import run_orchestrated
from click.testing import CliRunner

from argus_core.ledger import Ledger

EXAMPLE = Path(__file__).parents[4] / "examples" / "orchestrator" / "orchestrate.toml"
#: Three cycles of the example, every event of every proving backtest a round trip to a
#: sandboxed worker: minutes.
pytestmark = pytest.mark.slow


def ledger_trials(run_dir: Path) -> dict[str, float]:
    """The run's trial registry: variant id -> per-observation Sharpe."""
    with open_lab_ledger(run_dir / "orchestrator" / "lab" / "lab.db") as lab:
        return {r["variant_id"]: r["sharpe_per_obs"] for r in lab.query(
            "select * from lab_trials where family = 'orchestrator:ma_cross'")}


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("orch") / "run"
    report = run_orchestrated(EXAMPLE, run_dir=run_dir, max_cycles=3, echo=lambda _: None)
    return run_dir, report


def test_cycle_one_is_hot_swapped_through_the_ladder(example_run: tuple[Path, str]) -> None:
    run_dir, _ = example_run
    with Ledger.in_dir(run_dir) as ledger:
        cycles = {r["cycle_id"]: r for r in ledger.query("select * from orchestrator_cycles")}
        assert cycles["cycle-0001"]["outcome"] == "deploy"
        v2 = cycles["cycle-0001"]["candidate_id"]
        path = [e["to_status"] for e in ledger.query(
            "select to_status from strategy_events where version_id = ? order by id", (v2,))]
        assert path[:5] == ["candidate", "candidate", "candidate", "shadow", "canary"]
        assert "full" in path
        row = ledger.query("select * from strategy_versions where version_id = ?", (v2,))[0]
        assert row["parent_id"] and row["prompt_hash"] and row["model"] == "claude-opus-5-5"
        gates = json.loads(row["gate_json"])
        assert gates["verdict"] == "deploy"
        # the lab's absolute gates ran (lab_gates is on) on the proving window and said so
        lab = gates["lab_gates"]
        assert lab["verdict"] == "deploy" and lab["n_plays"] >= 20
        # its base cost point is the proving backtest itself (same config), not a rerun
        assert lab["base_reused"] is True
        assert lab["costs"]["cost-1"]["sharpe"] == pytest.approx(gates["candidate"]["sharpe"])
        # The example's bar is 0.85 (README, "Trials"): the answer's honest DSR after 16
        # trials is about 0.895, held at the lab's default 0.95.
        assert 0.85 <= lab["dsr"]["dsr"] < 0.95 and lab["bootstrap"]["fragile"] is False
        # Every variant of the family counts: the offline search behind this answer
        # (prior_trials.json), the incumbent and the candidate, each once, with the
        # variance of their Sharpe ratios.
        prior = json.loads((EXAMPLE.parent / "prior_trials.json").read_text())["trials"]
        prior_srs = [t["sharpe_per_obs"] for t in prior if t["recorded_by"] == "prior"]
        later = cycles["cycle-0003"]["candidate_id"]  # tried after cycle 1: a trial too
        trials = {k: v for k, v in ledger_trials(run_dir).items() if k != later}
        assert lab["dsr"]["n_trials"] == len(prior_srs) + 2 == len(trials)
        assert sorted(trials) == sorted([*(f"prior:{t['variant_id']}" for t in prior
                                           if t["recorded_by"] == "prior"),
                                         row["parent_id"], v2])
        assert trials[v2] == pytest.approx(lab["dsr"]["sharpe_per_obs"])
        assert lab["dsr"]["var_trials_sr"] == pytest.approx(np.var(list(trials.values()),
                                                                   ddof=1))
        # the bundled figures of the seed and this answer are what the gates measured
        answer = next(t for t in prior if t["variant_id"] == "cycle1-answer")
        seed = next(t for t in prior if t["variant_id"] == "seed")
        assert lab["dsr"]["sharpe_per_obs"] == pytest.approx(answer["sharpe_per_obs"])
        assert trials[row["parent_id"]] == pytest.approx(seed["sharpe_per_obs"])
        assert lab["dsr"]["n_obs"] == answer["n_obs"]
        assert gates["window"]["plugins.replay.end"] <= "2022-01-01"  # before the live data
        # the runner recorded the swap in its checkpointed versions map
        state = json.loads(ledger.query("select state_json from checkpoints where name = "
                                        "'runner'")[0]["state_json"])
        assert state["versions"]["ma_cross"]


def test_truth_benchmarks_describe_the_trades_so_far(example_run: tuple[Path, str]) -> None:
    """Cycle 1 starts at event 300, before the loop's first commit (every 500 events): its
    benchmarks still hold the P&L, drawdown and Sharpe of the equity up to that moment
    (they were 0 beside a non-zero expectancy when read from the written rows alone)."""
    from argus_core.metrics import drawdown, return_stats

    run_dir, _ = example_run
    with Ledger.in_dir(run_dir) as ledger:
        cycle = ledger.query("select * from orchestrator_cycles where cycle_id = "
                             "'cycle-0001'")[0]
        rows = ledger.query("select ts_ns, equity from equity where ts_ns <= ? order by ts_ns",
                            (cycle["started_ns"],))
    bench = json.loads(cycle["benchmarks_json"])
    assert bench["n_trades"] > 0 and bench["expectancy"] != 0
    ts = np.array([r["ts_ns"] for r in rows], dtype=np.int64)
    eq = np.array([float(r["equity"]) for r in rows])
    assert len(eq) > 250 and ts[-1] == cycle["started_ns"]
    assert bench["total_pnl"] == pytest.approx(eq[-1] - 100_000)
    assert bench["total_pnl"] != 0
    assert bench["max_drawdown"] == pytest.approx(float(drawdown(eq).max()))
    assert bench["sharpe"] == pytest.approx(return_stats(np.diff(eq) / eq[:-1], ts)["sharpe"])


def test_escape_attempt_is_rejected_with_reasons(example_run: tuple[Path, str]) -> None:
    run_dir, _ = example_run
    with Ledger.in_dir(run_dir) as ledger:
        c2 = ledger.query("select * from orchestrator_cycles where cycle_id = 'cycle-0002'")[0]
        assert c2["outcome"] == "rejected"
        assert "import of 'os'" in c2["reason"] and "review rejected" in c2["reason"]
        v = ledger.query("select status from strategy_versions where version_id = ?",
                         (c2["candidate_id"],))[0]
        assert v["status"] == "rejected"


def test_overtrader_is_killed_for_overtrading(example_run: tuple[Path, str]) -> None:
    run_dir, _ = example_run
    with Ledger.in_dir(run_dir) as ledger:
        c3 = ledger.query("select * from orchestrator_cycles where cycle_id = 'cycle-0003'")[0]
        assert c3["outcome"] == "rejected"
        assert "overtrading" in c3["reason"] and "too few trades" not in c3["reason"]
        row = ledger.query("select * from strategy_versions where version_id = ?",
                           (c3["candidate_id"],))[0]
        gates = json.loads(row["gate_json"])
        assert row["status"] == "rejected" and gates["verdict"] == "kill"
        # it really traded, far more than the incumbent, until a risk check stopped it (the
        # consecutive-losses circuit breaker: REDUCING; or the drawdown kill switch: HALTED)
        cand, inc = gates["candidate"], gates["incumbent"]
        assert cand["orders"] > 3 * inc["orders"]
        assert cand["trading_state"] in ("reducing", "halted")
        assert cand["n_trades"] > 3 * inc["n_trades"] + 20
        assert gates["lab_gates"]["verdict"] == "skipped"
        # its incumbent is cycle 1's version, whose proving backtest is reused as it was
        c1 = ledger.query("select * from orchestrator_cycles where cycle_id = 'cycle-0001'")[0]
        c1_gates = json.loads(ledger.query("select gate_json from strategy_versions where "
                                           "version_id = ?", (c1["candidate_id"],))[0]
                              ["gate_json"])
        assert inc == c1_gates["candidate"]
        # killed, and still a trial of the family: the next candidate's DSR counts it
        assert c3["candidate_id"] in ledger_trials(run_dir)


def test_every_model_call_is_in_the_spool(example_run: tuple[Path, str]) -> None:
    run_dir, _ = example_run
    with Ledger.in_dir(run_dir) as ledger:
        thoughts = ledger.query("select * from thoughts order by cycle_id, seq")
        assert [t["purpose"] for t in thoughts] == ["generate", "review"] * 3
        assert all(t["status"] == "ok" and t["input_tokens"] > 0 for t in thoughts)
        assert "CONTRACT" in thoughts[0]["system_prompt"] or "contract" in \
            thoughts[0]["system_prompt"]
        budget = ledger.query("select * from budgets")
        assert sum(b["tokens"] for b in budget) == sum(
            t["input_tokens"] + t["output_tokens"] for t in thoughts)


def test_rollback_leaves_the_loop_reducing(example_run: tuple[Path, str]) -> None:
    run_dir, report = example_run
    assert "rollback" in report
    with Ledger.in_dir(run_dir) as ledger:
        rolled = ledger.query("select * from strategy_versions where status = 'rolled_back'")
        assert rolled
        control = json.loads(ledger.get_control("trading_state") or "{}")
        assert control["state"] == "reducing" and "rolled back" in control["reason"]


def test_cli_reads_the_ledger(example_run: tuple[Path, str]) -> None:
    run_dir, _ = example_run
    runner = CliRunner()
    listed = runner.invoke(strategies_group, ["list", "--run-dir", str(run_dir)])
    assert listed.exit_code == 0 and "rolled_back" in listed.output
    thoughts = runner.invoke(thoughts_cmd, ["--run-dir", str(run_dir), "cycle-0001"])
    assert thoughts.exit_code == 0 and "--- response ---" in thoughts.output
    with Ledger.in_dir(run_dir) as ledger:
        ids = [r["version_id"] for r in ledger.query(
            "select version_id from strategy_versions order by created_ns, rowid")]
    diff = runner.invoke(strategies_group, ["diff", "--run-dir", str(run_dir), ids[0], ids[1]])
    assert diff.exit_code == 0 and "+TARGET_VOL = 0.40" in diff.output
