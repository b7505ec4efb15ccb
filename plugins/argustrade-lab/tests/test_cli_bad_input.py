"""``argus lab`` refuses bad input as the core's commands do: one ``error:`` line naming
what and where, no traceback, the exit code of the error's class; usage errors exit 2
naming the command.  Each test failed before its fix:

* a bad ``--set`` was named by a line of the config file, not as the ``--set``;
* a bad value of the backtest's plugins (or a missing data file) made every sweep point
  fail and the sweep exit 0, the gates exit 1 ("gate backtest cost-1 failed: ...");
* the bootstrap's failed backtest exited 1 with click's ``Error:``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml, error_line, invoke_argus
from click.testing import CliRunner

COMMANDS = ["sweep", "walkforward", "bootstrap", "gates"]
LAB = """
[plugins.lab]
dir = "lab"
[plugins.lab.executor]
kind = "serial"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A demo-like lab config over a month of the bundled bars, in a folder of its own."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lab.toml"
    text = demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-07-01") + LAB
    path.write_text(text.replace("plugins = []", 'plugins = ["lab"]'))
    return path


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("item", "said"), [
    ("plugins.lab.walkforward.train_bars=0", "train_bars = 0 is outside the allowed range"),
    ("plugins.lab.nokey=1", "unknown key(s) (nokey) @ plugins.lab"),
    ("plugins.lab.executor.max_workers=0", "max_workers = 0 is outside the allowed range"),
    ("plugins.example.fast=abc", "expected a whole number"),
    ("plugins.example.fast=-3", "'fast' must be > 0"),
    ("run.strategies=x", "expected a list, got text"),
])
def test_a_bad_set_is_named_as_the_set_before_any_work(config: Path, command: str,
                                                       item: str, said: str) -> None:
    line = error_line(invoke_argus(["lab", command, "--config", str(config), "--set", item]), 2)
    assert line.startswith(f"--set {item.partition('=')[0]}: "), line
    assert said in line and "(line " not in line, line
    assert sorted(os.listdir(config.parent)) == ["lab.toml"]  # no lab folder made


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_data_is_a_data_error(config: Path, command: str) -> None:
    """The replay reads its bars lazily, so every backtest point fails on them."""
    line = error_line(invoke_argus(["lab", command, "--config", str(config), "--set",
                                "plugins.replay.bars_csv=/no/such/bars.csv"]), 4)
    assert "/no/such/bars.csv: cannot read" in line, line
    assert "DataError" not in line, line  # the class is the exit code, not in the text


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("config_arg", "code", "said"), [
    ("missing.toml", 2, "Invalid value for '--config': File 'missing.toml' does not exist"),
    ("adir", 2, "Invalid value for '--config': File 'adir' is a directory"),
    ("bad.toml", 2, "bad.toml: not valid TOML"),
    ("unknown.toml", 3, "plugin 'no_such_plugin' is not installed"),
])
def test_a_bad_config_file_is_one_line(config: Path, command: str, config_arg: str, code: int,
                                       said: str) -> None:
    (config.parent / "adir").mkdir()
    (config.parent / "bad.toml").write_text("[argus\n")
    (config.parent / "unknown.toml").write_text('[argus]\nplugins = ["no_such_plugin"]\n')
    result = invoke_argus(["lab", command, "--config", config_arg])
    assert result.exit_code == code, result.output
    last = result.output.strip().splitlines()[-1]
    if "Invalid value" in said:  # click's usage error, naming the command
        assert last.startswith(f"Error: argus lab {command}: {said}"), last
    else:
        assert said in error_line(result, code)


@pytest.mark.parametrize("args", [["--local-cluster", "0"], ["--local-cluster", "-2"],
                                  ["--executor", "threads"], ["--set", "novalue"],
                                  ["--set", "a..b=1"]])
def test_bad_options_are_usage_errors(config: Path, args: list[str]) -> None:
    result = invoke_argus(["lab", "gates", "--config", str(config), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(("Error: argus lab gates: ", "error: --set ")), last


def test_the_group_on_its_own_prints_the_same_line(config: Path) -> None:
    """A test (or a script) running the group without ``argus`` gets the same refusal."""
    from argus_lab.commands import lab

    result = CliRunner().invoke(lab, ["sweep", "--config", str(config), "--set",
                                      "plugins.example.fast=-3"])
    assert error_line(result, 2).startswith("--set plugins.example.fast: ")
