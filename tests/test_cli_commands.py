"""Plugin sub-commands come from entry-point metadata (group ``argus.commands``): listed
without importing any plugin, imported when they run, hidden when their plugin is blocked,
and a broken one is a one-line plugin error (exit 3), not a traceback."""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from argus_core import cli as cli_module
from argus_core.plugins import BLOCK_ENV, COMMANDS_GROUP, command_entry_points

PLUGIN_PACKAGES = ("argus_lab", "argus_orchestrator", "argus_venue_kraken", "argus_gpu_heston",
                   "argus_venue_polymarket", "scipy", "numba", "anthropic")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200", **env})


def test_help_lists_plugin_commands_without_importing_a_plugin() -> None:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom argus_core.cli import cli\n"
            "out = CliRunner().invoke(cli, ['--help']).output\n"
            "print(out)\n"
            f"print('IMPORTED', sorted({{m.split('.')[0] for m in sys.modules}} & "
            f"set({PLUGIN_PACKAGES!r})))")
    res = _python(code)
    assert res.returncode == 0, res.stderr
    assert "Plugin commands:" in res.stdout
    assert "lab" in res.stdout and "argustrade-lab:" in res.stdout
    assert res.stdout.strip().endswith("IMPORTED []"), res.stdout[-400:]


def test_a_plugin_command_is_imported_when_it_runs() -> None:
    result = CliRunner().invoke(cli_module.cli, ["lab", "--help"])
    assert result.exit_code == 0, result.output
    assert "sweep" in result.output and "gates" in result.output


def test_blocking_a_plugin_hides_its_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "lab" in command_entry_points()
    monkeypatch.setenv(BLOCK_ENV, "lab")
    assert "lab" not in command_entry_points()
    result = CliRunner().invoke(cli_module.cli, ["lab", "sweep"])
    assert result.exit_code == 2 and "No such command 'lab'" in result.output


@pytest.mark.parametrize(("value", "why"), [
    ("argus_no_such_module:cmd", "ModuleNotFoundError"),
    ("os:sep", "is a str, not a click command"),
])
def test_a_broken_command_is_a_plugin_error_naming_it(monkeypatch: pytest.MonkeyPatch,
                                                       value: str, why: str) -> None:
    broken = md.EntryPoint(name="broken", value=value, group=COMMANDS_GROUP)
    monkeypatch.setattr(cli_module, "command_entry_points", lambda: {"broken": broken})
    result = CliRunner().invoke(cli_module.cli, ["broken"])
    assert result.exit_code == 3, result.output
    assert "command 'broken'" in result.output and why in result.output
    assert "Traceback" not in result.output


def test_core_commands_win_over_a_plugin_command_of_the_same_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    shadow = md.EntryPoint(name="demo", value="os:sep", group=COMMANDS_GROUP)
    monkeypatch.setattr(cli_module, "command_entry_points", lambda: {"demo": shadow})
    command = cli_module.cli.get_command(click.Context(cli_module.cli), "demo")
    assert command is cli_module.cli.commands["demo"]


@pytest.mark.parametrize("statement", [
    "import argus_core",
    "from argus_core import hookimpl, RegisterStrategy",
    "import argus_core.cli",
])
def test_start_up_imports_stay_light(statement: str) -> None:
    """A plugin module's ``from argus_core import hookimpl`` and the CLI's start-up import
    no domain model, numpy, pluggy or asyncio (the public names load on first use)."""
    heavy = ("numpy", "asyncio", "pluggy", "argus_core.models", "argus_core.runner",
             "argus_core.ledger", "rich.console")
    res = _python(f"import sys\n{statement}\nprint(sorted(m for m in {heavy!r} "
                  f"if m in sys.modules))")
    assert res.returncode == 0, res.stderr
    leaked = res.stdout.strip()
    if statement.startswith("from argus_core import hookimpl"):
        assert leaked == "['pluggy']", leaked  # hookimpl is a pluggy marker
    else:
        assert leaked == "[]", leaked
