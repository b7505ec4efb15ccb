"""Prior trials: a family's earlier variants (the offline search behind the example's
answer) count in the deflated Sharpe; the bundled file is what its script measures."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from argus_lab.trials import open_lab_ledger
from argus_orchestrator.config import orchestrator_settings
from argus_orchestrator.gates import load_prior_trials

from argus_core.config import load_config
from argus_core.errors import ConfigError

EXAMPLE = Path(__file__).parents[4] / "examples" / "orchestrator"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("argus_example_prior_trials",
                                                  EXAMPLE / "prior_trials.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(tmp_path: Path, data: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    config = load_config(EXAMPLE / "orchestrate.toml")
    (tmp_path / "prior.json").write_text(json.dumps(data))
    settings = attrs.evolve(orchestrator_settings(config),
                            prior_trials=str(tmp_path / "prior.json"))
    n = load_prior_trials(config, settings, tmp_path / "lab" / "lab.db")
    with open_lab_ledger(tmp_path / "lab" / "lab.db") as lab:
        return n, lab.query("select * from lab_trials order by variant_id")


def _file() -> dict[str, Any]:
    return json.loads((EXAMPLE / "prior_trials.json").read_text())


def test_prior_trials_are_recorded_once_and_orchestrator_rows_skipped(tmp_path: Path) -> None:
    data = _file()
    n, rows = _load(tmp_path, data)
    prior = [t for t in data["trials"] if t["recorded_by"] == "prior"]
    assert n == len(prior) >= 12
    assert [r["variant_id"] for r in rows] == sorted(f"prior:{t['variant_id']}" for t in prior)
    assert {r["family"] for r in rows} == {"orchestrator:ma_cross"}
    by_id = {r["variant_id"]: r for r in rows}
    for t in prior:
        assert by_id[f"prior:{t['variant_id']}"]["sharpe_per_obs"] == t["sharpe_per_obs"]
    # loading again (a restart) does not count them twice
    n2, rows2 = _load(tmp_path, data)
    assert n2 == n and len(rows2) == len(rows)


@pytest.mark.parametrize(("change", "needle"), [
    ({"window": {"plugins.replay.start": "2021-01-01", "plugins.replay.end": "2022-01-01"}},
     "re-run the variants on it"),
    ({"family": "orchestrator:other"}, "not 'orchestrator:ma_cross'"),
    ({"trials": [{"variant_id": "x", "sharpe_per_obs": "nan", "n_obs": 100,
                  "recorded_by": "prior"}]}, "has Sharpe nan"),
    ({"trials": [{"variant_id": "x", "recorded_by": "prior"}]}, "needs variant_id"),
    ({"trials": None}, "needs a 'trials' list"),
])
def test_a_prior_trials_file_for_other_data_is_refused(tmp_path: Path, change: dict[str, Any],
                                                       needle: str) -> None:
    with pytest.raises(ConfigError, match=r"orchestrator\.prior_trials") as err:
        _load(tmp_path, {**_file(), **change})
    assert needle in str(err.value)
    assert not (tmp_path / "lab" / "lab.db").exists()  # nothing half-recorded


def test_the_bundled_file_is_the_scripts_search_on_the_proving_window() -> None:
    script, data = _script(), _file()
    settings = orchestrator_settings(load_config(EXAMPLE / "orchestrate.toml"))
    assert data["window"] == dict(settings.backtest) and data["family"] == \
        settings.trial_family
    rows = {t["variant_id"]: t for t in data["trials"]}
    # every variant the script defines is in the file, with exactly the source it runs
    for variant in script.VARIANTS:
        source = script.variant_source(variant)
        assert rows[variant["id"]]["source"] == source
        assert rows[variant["id"]]["source_sha256"] == hashlib.sha256(
            source.encode()).hexdigest()
        assert rows[variant["id"]]["recorded_by"] == "prior"
    # the recorded cycle-1 answer is the script's ANSWER, measured but left to the orchestrator
    assert script.answer_source("cycle1_generate.md") == script.variant_source(script.ANSWER)
    assert rows["cycle1-answer"]["source"] == script.variant_source(script.ANSWER)
    assert rows["seed"]["source"] == (EXAMPLE / "seed_strategy.py").read_text()
    assert {rows["seed"]["recorded_by"], rows["cycle1-answer"]["recorded_by"]} == \
        {"orchestrator"}


@pytest.mark.slow
def test_a_prior_variant_reproduces_its_recorded_figures() -> None:
    """Re-run one variant (the cheapest) through the script: the figures are measured."""
    script, data = _script(), _file()
    (row,) = [t for t in data["trials"] if t["variant_id"] == "ema-120-720-b1-vt20"]
    config = load_config(EXAMPLE / "orchestrate.toml")
    settings = orchestrator_settings(config)
    figures = script.measure(config, settings.backtest, row["source"], settings.slot,
                             settings.sandbox.policy())
    for key in ("sharpe_per_obs", "n_obs", "skew", "kurtosis", "n_trades"):
        assert figures[key] == pytest.approx(row[key], rel=1e-9), key
