"""The whole lab pipeline on the bundled VRP example, from the real ``argus`` CLI:

* ``argus backtest`` writes a report with equity, drawdown, trades and the deploy-gate
  verdict (``[plugins.lab] backtest_gates`` runs the gates once per config);
* ``argus lab gates`` runs every gate and stores the verdict, on local processes and on
  a Dask ``LocalCluster`` of two worker processes, with identical results;
* trials are counted per variant.

The example config is used as shipped, shortened through ``--set`` overrides (one year
of SPY) so the suite stays fast; the README command runs the full config.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("argus_strategy_vrp")

from argus_lab.gates import canonical_hash, cost_overrides, open_lab
from argus_lab.trials import open_lab_ledger, record_trial, trial_stats

from argus_core.config import apply_overrides, load_config

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "vrp" / "vrp.toml"

SHORT = {
    "plugins.vrp.symbols": '["SPY"]',
    "plugins.vrp.start": "2017-06-01",
    "plugins.vrp.end": "2018-06-29",
    "plugins.lab.walkforward.train_bars": "100",
    "plugins.lab.walkforward.test_bars": "50",
    "plugins.lab.bootstrap.n_paths": "1000",
    "plugins.lab.bootstrap.batches": "2",
    "plugins.lab.gates.rc_reps": "100",
    "plugins.lab.gates.regime_min_bars": "5",
    "plugins.lab.gates.min_trades": "5",
}
GATES = ("costs", "walkforward", "bootstrap", "dsr", "reality_check", "regimes")


def _sets(lab_dir: Path, **extra: str) -> list[str]:
    out = []
    for key, value in {**SHORT, "plugins.lab.dir": str(lab_dir), **extra}.items():
        out += ["--set", f"{key}={value}"]
    return out


def _argus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a fresh process."""
    res = subprocess.run([sys.executable, "-m", "argus_core.cli", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _value(text: str) -> object:
    """What ``--set`` makes of a value: JSON, else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _short_config(lab_dir: Path):
    raw = {k: _value(v) for k, v in SHORT.items()}
    return apply_overrides(load_config(EXAMPLE), {**raw, "plugins.lab.dir": str(lab_dir)})


def _verdict_row(lab_dir: Path) -> dict:
    with open_lab_ledger(lab_dir / "lab.db") as ledger:
        rows = ledger.query("select * from lab_gate_verdicts order by id")
    assert len(rows) == 1
    return rows[0]


@pytest.mark.slow
def test_gates_cli_locally_and_on_a_local_dask_cluster_agree(tmp_path):
    pytest.importorskip("distributed")
    local = _argus("lab", "gates", "--config", str(EXAMPLE), *_sets(tmp_path / "a"),
                   cwd=tmp_path)
    remote = _argus("lab", "gates", "--config", str(EXAMPLE), "--local-cluster", "2",
                    *_sets(tmp_path / "b"), cwd=tmp_path)
    a, b = _verdict_row(tmp_path / "a"), _verdict_row(tmp_path / "b")
    details = json.loads(a["details_json"])
    # Every gate ran on the example's strategy, and the two engines agree exactly.
    assert set(GATES) <= set(details)
    assert set(details["costs"]) == {"cost-1", "cost-1.25", "cost-1.5"}
    assert details["regime_source"].startswith("signal 'vol_regime'")
    assert a["verdict"] == b["verdict"] and a["reasons_json"] == b["reasons_json"]
    assert a["details_json"] == b["details_json"]
    assert a["config_hash"] == b["config_hash"]
    # Printed: the verdict and every reason.
    for out in (local.stdout, remote.stdout):
        assert f"verdict: {a['verdict'].upper()}" in out
        for reason in json.loads(a["reasons_json"]):
            assert reason.split(":")[1].strip()[:25] in " ".join(out.split())
    # The sweep's choice is judged for overfitting (or held for too few returns).
    reasons = json.loads(a["reasons_json"])
    assert "pbo" in details or any(r.startswith("overfitting:") for r in reasons), reasons
    # The DSR deflates by every trial: the base run and the four sweep points.
    assert details["dsr"]["n_trials"] == 5
    # Costs really scale: the spread (scale_with_costs) and the fees grow with the multiplier.
    fees = [details["costs"][k]["fees"] for k in ("cost-1", "cost-1.25", "cost-1.5")]
    assert fees[0] < fees[1] < fees[2]
    assert details["cost_overrides"]["cost-1.5"]["plugins.vrp.spread_scale"] == \
        pytest.approx(0.25 * 1.5)


@pytest.mark.slow
def test_backtest_cli_report_has_equity_drawdown_trades_and_the_verdict(tmp_path):
    run_dir = tmp_path / "run"
    out = _argus("backtest", "--config", str(EXAMPLE), "--run-dir", str(run_dir),
                 "--no-progress",
                 *_sets(tmp_path / "lab", **{"plugins.lab.executor.kind": "serial"}),
                 cwd=tmp_path).stdout
    html = (run_dir / "report.html").read_text()
    assert 'aria-label="equity curve"' in html and 'aria-label="drawdown"' in html
    assert "Plays (" in html
    row = _verdict_row(tmp_path / "lab")  # backtest_gates = true ran and stored it
    assert row["config_hash"] == canonical_hash(_short_config(tmp_path / "lab"))
    assert f"verdict: {row['verdict']}" in html
    for reason in json.loads(row["reasons_json"]):
        assert reason.replace("'", "&#x27;").replace(">", "&gt;").replace("<", "&lt;") in html
    assert "No historical SPY/QQQ option chains" in html
    assert "report:" in out


def test_cost_points_compose_with_the_configured_multiplier(tmp_path):
    config = apply_overrides(_short_config(tmp_path), {"paper.cost_multiplier": "2"})
    settings, _folder, ledger = open_lab(config)
    ledger.close()
    from decimal import Decimal

    over = cost_overrides(config, settings, Decimal("1.5"))
    assert Decimal(over["paper.cost_multiplier"]) == Decimal("3")
    assert over["plugins.vrp.spread_scale"] == pytest.approx(0.375)


def test_trials_count_every_variant_once(tmp_path):
    _s, _f, ledger = open_lab(_short_config(tmp_path))
    record_trial(ledger, "fam", "v1", 0.1, 250)
    record_trial(ledger, "fam", "v2", 0.3, 250, source="ai")
    record_trial(ledger, "fam", "v2", 0.2, 250, source="ai")  # re-run of the same variant
    record_trial(ledger, "other", "v1", 5.0, 250)
    n, var = trial_stats(ledger, "fam")
    assert n == 2 and var == pytest.approx(np.var([0.1, 0.2], ddof=1))
    ledger.close()
