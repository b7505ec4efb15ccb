"""The ``ml_updown`` strategy through the real loop, and the ``argus ml`` commands."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_ml.cli import ml
from argus_ml.synthetic import synthetic_bars
from argus_testkit import ConfigRunner
from click.testing import CliRunner


def _write_csv(path: Path, n: int, seed: int) -> Path:
    bars, _ = synthetic_bars(n, seed=seed)
    rows = [f"{int(t) // 10**9 - 3600},{float(o)!r},{float(h)!r},{float(lo)!r},"
            f"{float(c)!r},1000000.0,1"
            for t, o, h, lo, c in zip(bars.ts_ns, bars.open, bars.high, bars.low, bars.close,
                                      strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A synthetic bar file, a registry, and a model trained, gated and promoted to paper
    through the CLI."""
    d = tmp_path_factory.mktemp("ml")
    csv = _write_csv(d / "bars.csv", 3000, seed=11)
    reg = d / "reg.db"
    cli = CliRunner()
    out = cli.invoke(ml, ["train", "--bars", str(csv), "--registry", str(reg), "--features",
                          "ret_1,vol_24", "--folds", "3", "--embargo", "2", "--calibration",
                          "platt", "--report-dir", str(d / "rep")])
    assert out.exit_code == 0, out.output
    mid = out.output.split()[1]
    assert (d / "rep/reliability.png").exists()
    assert json.loads((d / "rep/report.json").read_text())["oof_calibrated"]["n"] > 500
    out = cli.invoke(ml, ["evaluate", "--registry", str(reg), mid])
    assert out.output.startswith("PASS"), out.output
    out = cli.invoke(ml, ["promote", "--registry", str(reg), mid, "--to", "paper",
                          "--reason", "synthetic proof"])
    assert out.exit_code == 0, out.output
    return csv, reg, mid


def test_cli_lists_features_and_exports_a_dataset(tmp_path: Path) -> None:
    cli = CliRunner()
    out = cli.invoke(ml, ["features", "--json"])
    assert {"ret_1@1", "vol_24@1"} <= {r["key"] for r in json.loads(out.output)}
    csv = _write_csv(tmp_path / "b.csv", 400, seed=1)
    out = cli.invoke(ml, ["dataset", "--bars", str(csv), "--out", str(tmp_path / "ds"),
                          "--horizon", "2"])
    assert out.exit_code == 0, out.output
    man = json.loads((tmp_path / "ds/manifest.json").read_text())
    assert man["label"] == {"kind": "up", "horizon_bars": 2, "purge_rows": 2}
    out = cli.invoke(ml, ["dataset", "--bars", str(csv), "--out", str(tmp_path / "pq"),
                          "--horizon", "2", "--format", "parquet"])
    assert out.exit_code == 0, out.output
    pq_man = json.loads((tmp_path / "pq/manifest.json").read_text())
    assert pq_man["dataset_hash"] == man["dataset_hash"] and "data.parquet" in pq_man["files"]


def test_cli_refuses_a_gate_failure_and_records_it(tmp_path: Path) -> None:
    csv = _write_csv(tmp_path / "b.csv", 1500, seed=2)
    reg = tmp_path / "reg.db"
    cli = CliRunner()
    out = cli.invoke(ml, ["train", "--bars", str(csv), "--registry", str(reg), "--features",
                          "hour_sin,hour_cos", "--folds", "3"])  # features with no signal
    assert out.exit_code == 0, out.output
    mid = out.output.split()[1]
    out = cli.invoke(ml, ["promote", "--registry", str(reg), mid, "--to", "paper"])
    assert out.exit_code != 0 and "not promoted" in out.output
    out = cli.invoke(ml, ["models", "--registry", str(reg), "--events"])
    assert "refused" in out.output and "shadow" in out.output


def test_updown_backtests_with_a_paper_model(promoted: tuple[Path, Path, str],
                                             run_config: ConfigRunner) -> None:
    csv, reg, _ = promoted
    result = run_config.run({
        "argus": {"plugins": ["ml"]},
        "run": {"venue": "updown_replay", "strategies": ["ml_updown"],
                "risk_checks": ["per_play_cap", "max_drawdown"]},
        # the model was trained on these very bars: the loop's plumbing, in sample on purpose
        "plugins": {"ml": {"registry": str(reg), "max_fraction": 0.05, "bars_csv": str(csv),
                           "drift_min_obs": 5000, "psi_limit": 10.0,
                           "allow_in_sample": True}},
    })
    assert result.orders, result.risk_events
    assert {o["side"] for o in result.orders if o["strategy"] == "ml_updown"} == {"buy"}
    settled = [f for f in result.fills if f.liquidity == "settlement"]
    bought = {f.instrument_id for f in result.fills if f.liquidity != "settlement"}
    assert bought and {f.instrument_id for f in settled} == bought  # every bet settles
    assert all(f.price in (Decimal(0), Decimal(1)) for f in settled)


def test_cli_demote_and_a_shadow_model_does_not_trade(promoted: tuple[Path, Path, str],
                                                      run_config: ConfigRunner,
                                                      tmp_path: Path) -> None:
    csv, reg, mid = promoted
    import shutil

    reg2 = tmp_path / "reg2.db"
    shutil.copy(reg, reg2)
    out = CliRunner().invoke(ml, ["demote", "--registry", str(reg2), mid, "--reason", "test"])
    assert out.exit_code == 0, out.output
    cfg = {"argus": {"plugins": ["ml"]},
           "run": {"venue": "updown_replay", "strategies": ["ml_updown"]},
           "plugins": {"ml": {"registry": str(reg2), "model_id": mid, "bars_csv": str(csv)}}}
    result = run_config.run(cfg)
    assert not result.orders
    np.testing.assert_equal(len(result.fills), 0)


@pytest.mark.parametrize("args", [["models"], ["evaluate", "m1"],
                                  ["promote", "m1", "--to", "paper"],
                                  ["demote", "m1", "--reason", "r"]])
def test_cli_reading_a_registry_refuses_a_missing_file(tmp_path: Path, args: list[str]) -> None:
    """A mistyped --registry is refused, naming the path, and no empty registry is created
    (``models`` used to create one, print nothing and exit 0)."""
    missing = tmp_path / "typo.db"
    out = CliRunner().invoke(ml, [args[0], "--registry", str(missing), *args[1:]])
    assert out.exit_code == 2, out.output
    assert "typo.db" in out.output and "does not exist" in out.output
    assert not missing.exists()
