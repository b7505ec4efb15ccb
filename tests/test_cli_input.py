"""Bad input at the command line gets one clear line saying what and where, with the exit
code of its kind (found by a fresh-clone walkthrough; each test failed before its fix):

* a bad ``--set`` value is put on that ``--set``, not on a line of the config file;
* a plugin's own ``DataError`` (or any ``ArgusError``) keeps its class and exit code
  through the fence around plugin code, still naming the plugin;
* a plugin blocked by ``ARGUS_BLOCK_PLUGINS`` is said to be blocked, with the way out;
* click's usage errors keep their three lines and exit 2, and the error line names the
  command (every command's bad-option path is tried);
* ``replay_server.py --help`` shows a whole sentence.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from argus_core.cli import cli
from argus_core.config import apply_overrides, load_config, parse_overrides
from argus_core.errors import (
    ArgusError,
    BasketIncomplete,
    ConfigError,
    DataError,
    PluginError,
    VenueError,
)
from argus_core.plugins import BLOCK_ENV, fenced_call
from argus_core.runtime import validate_settings


def _invoke(args: list[str], **env: str) -> Result:
    return CliRunner().invoke(cli, args, prog_name="argus", env=env or None)


def _error_line(result: Result, code: int) -> str:
    """The one ``error: ...`` line of a refusal (no traceback), without its prefix."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    return line.removeprefix("error: ")


# -- 1. --set ----------------------------------------------------------------------------
@pytest.mark.parametrize(("item", "said"), [
    ("plugins.example.fast=abc", "expected a whole number, got 'abc' @ plugins.example.fast"),
    ("plugins.example.fast=-3", "'fast' must be > 0: -3 @ plugins.example"),
    ("plugins.example.fsat=3", "unknown key(s) (fsat) @ plugins.example"),
    ("run.starting_cash=-5", "starting_cash = -5 is outside the allowed range"),
    ("run.strategies=x", "expected a list, got text"),
    ("argus.mode=bogus", "'mode' must be in"),
])
def test_a_bad_set_value_names_the_set_not_a_line_of_the_file(
        demo_config: Path, tmp_path: Path, item: str, said: str) -> None:
    result = _invoke(["backtest", "--config", str(demo_config), "--no-progress",
                      "--run-dir", str(tmp_path / "run"), "--set", item])
    line = _error_line(result, ConfigError.exit_code)
    # The key only: the value is the validator's to say (redacted), never echoed whole.
    assert line.startswith(f"--set {item.partition('=')[0]}: "), line
    assert said in line
    assert "(line " not in line and str(demo_config) not in line, line


def test_a_bad_value_in_the_file_still_names_its_line(demo_config: Path) -> None:
    """The file's own mistakes keep their line, beside an override of the same table."""
    demo_config.write_text(demo_config.read_text().replace("fast = 5", "fsat = 5"))
    config = apply_overrides(load_config(demo_config),
                             parse_overrides(["plugins.example.slow=30"]), origin="--set")
    from argus_core.plugins import PluginHost

    host = PluginHost()
    host.load([])
    with pytest.raises(ConfigError) as caught:
        validate_settings(config, host)
    message = str(caught.value)
    assert "unknown key(s) (fsat)" in message
    assert message.startswith(str(demo_config)) and "(line " in message, message
    assert "--set" not in message


def test_overrides_do_not_change_what_a_run_is(demo_config: Path) -> None:
    """The record of where a value came from is not part of the config's identity."""
    from argus_core.config import canonical_json

    config = load_config(demo_config)
    same = apply_overrides(config, {"plugins.example.fast": 5}, origin="--set")
    assert same.overrides == {"plugins.example.fast": "--set plugins.example.fast"}
    assert canonical_json(same) == canonical_json(config)
    with pytest.raises(ConfigError, match="unknown top-level key 'overrides'"):
        apply_overrides(config, {"overrides": {}})


# -- 2. the fence keeps an ArgusError's kind -----------------------------------------------
@pytest.mark.parametrize("kind", [DataError, ConfigError, VenueError, ArgusError])
def test_the_fence_keeps_a_plugins_own_error_and_names_the_plugin(kind: type[ArgusError]
                                                                   ) -> None:
    def hook() -> None:
        raise kind("row 7 is malformed")

    with pytest.raises(kind) as caught:
        fenced_call("bars", "venue factory 'bars'", hook)
    assert type(caught.value) is kind and caught.value.exit_code == kind.exit_code
    assert str(caught.value) == "plugin 'bars' failed in hook venue factory 'bars': " \
                                "row 7 is malformed"


def test_the_fence_keeps_what_an_error_carries_and_names_the_plugin_once() -> None:
    fills = [object()]

    def hook() -> None:
        raise BasketIncomplete("leg 2 unfilled", fills)

    def outer() -> None:
        fenced_call("pm", "inner", hook)

    with pytest.raises(BasketIncomplete) as caught:
        fenced_call("pm", "outer", outer)
    assert caught.value.fills is fills
    assert str(caught.value) == "plugin 'pm' failed in hook inner: leg 2 unfilled"
    with pytest.raises(PluginError, match=r"plugin 'pm' failed in hook h: KeyError: 'x'"):
        fenced_call("pm", "h", lambda: {}["x"])  # anything else is still a plugin error


def test_a_registration_hook_raising_its_own_error_is_rolled_back() -> None:
    """A live add whose registration raises a DataError is undone as a PluginError was
    (the fence no longer turns it into one)."""
    import types

    from argus_core.hookspecs import hookimpl
    from argus_core.plugins import PluginHost

    @hookimpl
    def register_strategies(register: Any) -> None:
        raise DataError("its table is malformed")

    host = PluginHost()
    host.load([])
    with pytest.raises(DataError, match="plugin 'bad' failed in hook register_strategies"):
        host.add_plugin(types.SimpleNamespace(register_strategies=register_strategies), "bad")
    assert "bad" not in host.plugin_names() and "ma_cross" in host.registry["strategy"]


def test_a_data_error_in_a_plugin_exits_4_naming_the_plugin(tmp_path: Path) -> None:
    """The replay venue reads a recording's header when it is built: a file that is not
    UTF-8 is bad data (exit 4), not a broken plugin (exit 3)."""
    (tmp_path / "rec.ndjson").write_bytes(b"\xff\xfe{}\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[argus]\nplugins = []\n[run]\nvenue = "replay"\n'
                   '[plugins.replay]\nndjson = "rec.ndjson"\n')
    line = _error_line(_invoke(["run", "--config", str(cfg), "--run-dir",
                                str(tmp_path / "run"), "--no-progress"]), DataError.exit_code)
    assert line.startswith("plugin 'replay' failed in hook venue factory 'replay': ")
    assert "rec.ndjson:1: not UTF-8" in line and "PluginError" not in line


# -- 3. blocked, not missing -------------------------------------------------------------
def test_a_blocked_builtin_is_said_to_be_blocked(demo_config: Path, tmp_path: Path) -> None:
    line = _error_line(_invoke(["run", "--config", str(demo_config), "--run-dir",
                                str(tmp_path / "run"), "--no-progress"],
                               **{BLOCK_ENV: "replay"}), ConfigError.exit_code)
    assert f"{BLOCK_ENV} blocks 'replay'" in line, line
    assert "it is built in" in line and "install the distribution" not in line
    assert f"remove it from {BLOCK_ENV} (now 'replay') or unset that variable" in line


def test_a_component_of_a_blocked_plugin_names_the_block(demo_config: Path, tmp_path: Path
                                                         ) -> None:
    """A config whose venue's plugin is blocked (its table removed, so only the lookup of
    the venue can fail)."""
    text = demo_config.read_text()
    demo_config.write_text(text[:text.index("[plugins.replay]")]
                           + text[text.index("[plugins.example]"):])
    line = _error_line(_invoke(["run", "--config", str(demo_config), "--run-dir",
                                str(tmp_path / "run"), "--no-progress"],
                               **{BLOCK_ENV: "replay"}), PluginError.exit_code)
    assert "no venue named 'replay' is registered" in line
    assert f"({BLOCK_ENV} blocks replay: remove it from {BLOCK_ENV}" in line, line


def test_a_blocked_plugins_command_is_said_to_be_blocked() -> None:
    pytest.importorskip("argus_lab")
    result = _invoke(["lab", "sweep"], **{BLOCK_ENV: "lab"})
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: argus: No such command 'lab': its plugin is blocked by "
                           f"{BLOCK_ENV} (now 'lab')"), last
    assert "No such command 'nope'." in _invoke(["nope"], **{BLOCK_ENV: "lab"}).output


@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["table", "json"])
def test_argus_plugins_says_what_is_blocked(as_json: list[str]) -> None:
    result = CliRunner().invoke(cli, ["plugins", *as_json], env={BLOCK_ENV: "replay,journal"})
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"not loaded, blocked by {BLOCK_ENV}: journal, replay"
    if as_json:
        import json

        names = {p["name"] for p in json.loads(result.stdout)}
        assert "risk" in names and names.isdisjoint({"replay", "journal"})
    else:
        assert "│ risk " in result.stdout and "│ replay " not in result.stdout


# -- 4. usage errors ---------------------------------------------------------------------
def _commands(group: click.Group, path: list[str]) -> Iterator[list[str]]:
    ctx = click.Context(group, info_name="argus")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield [*path, name]
        if isinstance(command, click.Group):
            yield from _commands(command, [*path, name])


def test_every_commands_bad_option_is_a_usage_error_naming_the_command() -> None:
    """Every command and sub-command, the core's and the installed plugins'."""
    paths = [[], *_commands(cli, [])]
    assert ["run"] in paths and len(paths) > 10
    wrong = {}
    for path in paths:
        result = _invoke([*path, "--no-such-option"])
        where = " ".join(["argus", *path])
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        if (result.exit_code != 2 or len(lines) != 3
                or not lines[0].startswith(f"Usage: {where} ")
                or lines[1] != f"Try '{where} --help' for help."
                or not lines[2].startswith(f"Error: {where}: No such option '--no-such-option'")):
            wrong[where] = (result.exit_code, lines)
    assert not wrong, wrong


@pytest.mark.parametrize(("args", "said"), [
    (["run", "--run-dir", "x"], "Error: argus run: Missing option '--config'."),
    (["run", "--config", "c", "--run-dir", "x", "--max-events", "-4"],
     "Error: argus run: Invalid value for '--max-events': -4 is not in the range x>=1."),
    (["report"], "Error: argus report: Missing argument 'RUN_DIR'."),
    (["record", "--config", "c", "--out", "o", "--duration", "nan"],
     "Error: argus record: Invalid value for '--duration': 'nan' is not a number of seconds"),
    (["scan", "--config", "c", "--interval", "-1"],
     "Error: argus scan: Invalid value for '--interval': '-1' is not a number of seconds"),
])
def test_a_usage_error_says_what_and_where(args: list[str], said: str) -> None:
    result = _invoke(args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith(said), result.output


@pytest.mark.parametrize("group", [[], ["strategies"]], ids=["argus", "strategies"])
def test_a_group_without_a_command_shows_its_help_as_before(group: list[str]) -> None:
    if group:
        pytest.importorskip("argus_orchestrator")
    result = _invoke(group)
    assert "Error:" not in result.output, result.output
    assert result.output.startswith(f"Usage: {' '.join(['argus', *group])} [OPTIONS] COMMAND")
    assert result.exit_code in (0, 2)  # click 8.2 made it 2, 8.1 had 0


def test_the_error_line_is_said_once_through_nested_groups() -> None:
    pytest.importorskip("argus_lab")
    result = _invoke(["lab", "sweep", "--bogus"])
    assert result.output.count("argus lab sweep:") == 1, result.output


# -- 7. replay_server --help ---------------------------------------------------------------
def test_the_replay_servers_help_is_whole_sentences() -> None:
    pytest.importorskip("argus_venue_polymarket")
    shown = subprocess.run([sys.executable, "-m", "argus_venue_polymarket.replay_server",
                            "--help"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "100"})
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "replaying a recorded snapshot directory." in text, shown.stdout


# -- the other commands' error paths -------------------------------------------------------
@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of bad inputs: a directory, a file, bad TOML, an unknown plugin."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.toml").write_text("[argus\n")
    (tmp_path / "unknown.toml").write_text('[argus]\nplugins = ["no_such_plugin"]\n')
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "argus.db").write_text("not a database")
    return tmp_path


CONFIGS = [("missing.toml", 2, "missing.toml: config file not found"),
           ("adir", 2, "adir: is a directory, not a config file"),
           ("bad.toml", 2, "bad.toml: not valid TOML"),
           ("unknown.toml", 3, "plugin 'no_such_plugin' is not installed")]
COMMANDS = [["run", "--run-dir", "r"], ["backtest"], ["record", "--out", "o.ndjson"],
            ["scan", "--once"], ["plugins"]]


@pytest.mark.parametrize(("config", "code", "said"), CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_bad_config_is_one_line_for_every_command(inputs: Path, command: list[str],
                                                    config: str, code: int, said: str) -> None:
    line = _error_line(_invoke([command[0], "--config", config, *command[1:]]), code)
    assert said in line, line
    assert sorted(os.listdir(inputs)) == ["adir", "afile", "bad.toml", "damaged",
                                          "unknown.toml"]  # nothing left behind


@pytest.mark.parametrize("args", [["report", "{}"], ["kill", "--run-dir", "{}"],
                                  ["resume", "--run-dir", "{}"]], ids=lambda a: a[0])
@pytest.mark.parametrize(("where", "code", "said"), [
    ("nodir", 7, "nodir: no argus.db"), ("adir", 7, "adir: no argus.db"),
    ("afile", 2, "Invalid value for '--run-dir': Directory 'afile' is a file."),
    ("damaged", 7, "damaged/argus.db cannot be used: NotADBError")])
def test_a_run_directory_that_is_not_one_is_one_line(inputs: Path, args: list[str],
                                                     where: str, code: int, said: str) -> None:
    result = _invoke([a.format(where) for a in args])
    if code == 2:  # a usage error: click's lines, the last naming the command
        assert result.exit_code == 2, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith(f"Error: argus {args[0]}: "), last
        assert said.replace("'--run-dir'", "'RUN_DIR'" if args[0] == "report"
                            else "'--run-dir'") in last, last
    else:
        assert said in _error_line(result, code)


def test_a_replay_window_that_ends_before_it_starts_says_so(tmp_path: Path) -> None:
    from argus_test_helpers import BUNDLED_BARS, demo_toml

    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, start="2022-01-01", end="2021-01-01"))
    line = _error_line(_invoke(["run", "--config", str(cfg), "--run-dir",
                                str(tmp_path / "run"), "--no-progress"]), DataError.exit_code)
    assert "start = 2022-01-01, end = 2021-01-01 (start is not before end); " in line, line
