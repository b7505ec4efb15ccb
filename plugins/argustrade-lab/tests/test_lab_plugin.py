"""The lab as a plugin: found through its entry point, and the core neither needs it nor
its dependencies (scipy, arch, numba, dask) -- a config with a ``[plugins.lab]`` table still
loads without it, and ``argus lab`` is simply absent."""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
from pathlib import Path

import pytest

from argus_core import ConfigError
from argus_core.config import load_config
from argus_core.plugins import BLOCK_ENV, BUILTIN_NAMES, PluginHost, remedy_for
from argus_core.runtime import validate_settings

#: Every core module.
CORE_MODULES = ("argus_core", "argus_core.cli", "argus_core.runner", "argus_core.runtime",
                "argus_core.backtest", "argus_core.report", "argus_core.metrics",
                "argus_core.scan", "argus_core.recorder", "argus_core.plugins",
                "argus_core.builtins.replay_venue", "argus_core.builtins.risk_checks",
                "argus_core.builtins.sizers", "argus_core.builtins.example_strategies")
LAB_ONLY = ("argus_lab", "scipy", "arch", "numba", "dask", "distributed")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_the_core_imports_without_the_lab_or_its_dependencies() -> None:
    code = (f"import importlib, sys\n"
            f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({LAB_ONLY!r})))")
    res = _python(code, **{BLOCK_ENV: "lab"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_entry_point_loads_the_plugin_from_this_distribution() -> None:
    (ep,) = [ep for ep in md.entry_points(group="argus") if ep.name == "lab"]
    assert ep.value == "argus_lab.plugin" and ep.dist is not None
    assert ep.dist.name == "argustrade-lab"
    assert "lab" not in BUILTIN_NAMES
    assert "pip install argustrade-lab" in remedy_for("lab")
    host = PluginHost()
    host.load(["lab"])
    (row,) = [r for r in host.info() if r.name == "lab"]
    assert row.distribution == "argustrade-lab"
    assert {"config_class", "register_migrations", "report_sections"} <= set(row.hooks)


def test_without_the_plugin_a_lab_table_names_the_remedy_and_the_commands_are_absent(
        tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[argus]\nplugins = []\n[plugins.lab]\nfamily = 'x'\n"
                    "[plugins.lab.bootstrap]\nn_paths = 100\n")
    monkeypatch.setenv(BLOCK_ENV, "lab")
    config = load_config(path)
    assert config.plugins["lab"]["family"] == "x"
    host = PluginHost()
    host.load(None)
    assert "lab" not in host.plugin_names()
    with pytest.raises(ConfigError, match=r"\[plugins\.lab\] .*not loaded.*pip install "
                                          r"argustrade-lab"):
        validate_settings(config, host)
    cli = [sys.executable, "-m", "argus_core.cli", "--help"]
    without = subprocess.run(cli, capture_output=True, text=True, timeout=120,
                             env={**os.environ, BLOCK_ENV: "lab", "COLUMNS": "200"})
    with_lab = subprocess.run(cli, capture_output=True, text=True, timeout=120,
                              env={**os.environ, BLOCK_ENV: "", "COLUMNS": "200"})
    assert without.returncode == 0 and with_lab.returncode == 0, without.stderr
    commands = {line.split()[0] for line in without.stdout.splitlines()[1:]
                if line.startswith("  ") and line.split()}
    assert "lab" not in commands and "demo" in commands
    assert "  lab " in with_lab.stdout


def test_cost_overrides_scale_named_keys_and_name_bad_ones(tmp_path: Path) -> None:
    from decimal import Decimal

    from argus_lab.config import lab_settings
    from argus_lab.gates import cost_overrides

    def overrides(example: str, scaled: str) -> dict:
        path = tmp_path / "c.toml"
        path.write_text(f"[argus]\nplugins = []\n[plugins.example]\n{example}\n"
                        f"[plugins.lab.gates]\nscale_with_costs = [\"{scaled}\"]\n")
        config = load_config(path)
        return cost_overrides(config, lab_settings(config), Decimal("1.5"))

    out = overrides("fast = 10", "plugins.example.fast")
    assert out == {"paper.cost_multiplier": "1.5", "plugins.example.fast": 15.0}
    with pytest.raises(ConfigError, match=r"plugins\.lab\.gates\.scale_with_costs names "
                                          r"'plugins\.example\.slow', which the config does "
                                          r"not set"):
        overrides("fast = 10", "plugins.example.slow")
    with pytest.raises(ConfigError, match=r"scale_with_costs: plugins\.example\.fast = True "
                                          r"is not a number"):
        overrides("fast = true", "plugins.example.fast")
    with pytest.raises(ConfigError, match=r"= 'ten' is not a number"):
        overrides("fast = 'ten'", "plugins.example.fast")
