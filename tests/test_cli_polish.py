"""CLI polish (issue 18): bracketed text prints verbatim everywhere, one error style,
documented exit codes, ``argus --version``, progress with percentage and ETA, and
logging (-v levels per logger family, JSON lines with the run id, secrets redacted)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import argus_core.errors
from argus_core import cli as cli_module
from argus_core.cli import EXIT_CODES, cli
from argus_core.discovery import CORE_DISTRIBUTION

ROOT = Path(__file__).resolve().parent.parent
ATTACKS = ["[run]", "[plugins.kraken]", "[bold]loud[/bold]", "[/]", "[red]x"]
PLUGIN_PACKAGES = ("argus_lab", "argus_orchestrator", "argus_venue_kraken", "argus_gpu_heston",
                   "argus_venue_polymarket", "argus_ml", "scipy", "anthropic")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures the root logger; put it back for the tests that follow."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)


def _invoke(args: list[str], **kwargs: object) -> Result:
    return CliRunner().invoke(cli, args, **kwargs)  # type: ignore[arg-type]


def _one_error_line(result: Result, code: int) -> str:
    """Assert the one error style and return the message after ``error: ``."""
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0].removeprefix("error: ")


# -- brackets are text, never markup -------------------------------------------------
@pytest.mark.parametrize("attack", ATTACKS)
def test_a_config_error_keeps_its_brackets(tmp_path: Path, attack: str) -> None:
    missing = tmp_path / attack / "base.toml"
    result = _invoke(["run", "--config", str(missing), "--run-dir", str(tmp_path / "r")])
    assert str(missing) in _one_error_line(result, 2)


def test_the_scan_refusal_keeps_its_table_name(tmp_path: Path) -> None:
    cfg = tmp_path / "base.toml"
    cfg.write_text('[argus]\nmode = "paper"\n[run]\nvenue = "replay"\n')
    message = _one_error_line(_invoke(["scan", "--config", str(cfg), "--once"]), 2)
    assert message.startswith(f"{cfg}: [run] scanners is empty")


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_plugin_name_keeps_its_brackets(tmp_path: Path, attack: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[argus]\nplugins = [{json.dumps('x' + attack)}]\n")
    result = _invoke(["run", "--config", str(cfg), "--run-dir", str(tmp_path / "r")])
    assert "x" + attack in _one_error_line(result, 3)


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_broken_plugin_row_keeps_its_brackets(monkeypatch: pytest.MonkeyPatch,
                                                attack: str) -> None:
    from argus_core.plugins import PluginHost

    real_load = PluginHost.load

    def load(self: PluginHost, *args: object, **kwargs: object) -> None:
        real_load(self, *args, **kwargs)  # type: ignore[arg-type]
        self.broken["x" + attack] = f"ImportError: {attack}"

    monkeypatch.setattr(PluginHost, "load", load)
    monkeypatch.setattr(cli_module.out.get(), "width", 250)  # one line per row
    listed = _invoke(["plugins"])
    row = next(ln for ln in listed.stdout.splitlines() if "BROKEN" in ln)
    assert "x" + attack in row and f"ImportError: {attack}" in row
    assert _one_error_line(listed, 3) == \
        f"plugin(s) failed to load: x{attack} (ImportError: {attack})"


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_exception_message_keeps_its_brackets(monkeypatch: pytest.MonkeyPatch,
                                                 attack: str) -> None:
    def boom(path: Path) -> None:
        raise argus_core.errors.DataError(f"bad row {attack} in {path}")

    monkeypatch.setattr(cli_module, "load_config", boom)
    result = _invoke(["run", "--config", "c.toml", "--run-dir", "r"])
    assert _one_error_line(result, 4) == f"bad row {attack} in c.toml"


def test_run_output_kill_reason_and_halt_keep_brackets(
        tmp_path: Path, demo_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module.out.get(), "width", 250)  # the path on one line
    monkeypatch.setattr(cli_module.console.get(), "width", 250)
    run_dir = tmp_path / "[bold]run[/]"
    args = ["run", "--config", str(demo_config), "--run-dir", str(run_dir), "--max-events",
            "50", "--no-progress"]
    first = _invoke(args)
    assert first.exit_code == 0, first.output
    assert str(run_dir) in first.stdout  # the summary table's run directory row
    killed = _invoke(["kill", "--run-dir", str(run_dir), "--reason", "[red]stop[/] [run]"])
    assert "([red]stop[/] [run])" in killed.stdout
    halted = _invoke(args)  # resumes, ends HALTED: exit 6, one line
    assert f"trading in {run_dir} is HALTED" in _one_error_line(halted, 6)


def test_the_progress_bar_shows_percentage_eta_and_a_verbatim_label(
        monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(cli_module, "console", cli_module._Console(
        file=buf, force_terminal=True, width=160, markup=False))
    with cli_module._progress("replay [bold]x[/] [run]", True) as bar:
        bar(0, 4000)
        bar(1000)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())
    assert "replay [bold]x[/] [run]" in text
    assert "25%" in text and "1,000 events" in text and "eta" in text


# -- exit codes and --version --------------------------------------------------------
def _error_classes(base: type[argus_core.errors.ArgusError],
                   ) -> Iterator[type[argus_core.errors.ArgusError]]:
    for sub in base.__subclasses__():
        yield sub
        yield from _error_classes(sub)


def test_the_documented_exit_codes_are_the_ones_the_code_uses() -> None:
    import argus_orchestrator.errors  # noqa: F401  (its codes 8 and 9 are documented too)

    classes: list[type[argus_core.errors.ArgusError]] = [
        argus_core.errors.ArgusError, *_error_classes(argus_core.errors.ArgusError)]
    used = {0, 130} | {c.exit_code for c in classes}
    assert set(EXIT_CODES) == used
    assert click.UsageError.exit_code == 2  # documented as part of code 2
    readme = (ROOT / "README.md").read_text().split("### Exit codes", 1)[1].split("\n#", 1)[0]
    assert {int(c) for c in re.findall(r"^\| (\d+) \|", readme, re.M)} == used
    epilog = _invoke(["--help"]).output.split("Exit codes:", 1)[1]
    assert {int(c) for c in re.findall(r"^\s+(\d+)\s", epilog, re.M)} == used


def test_every_refusal_in_the_cli_goes_through_fail() -> None:
    source = Path(cli_module.__file__).read_text()
    exits = re.findall(r"SystemExit\(|ctx\.exit\([^0]|sys\.exit\([^0]", source)
    assert exits == ["SystemExit("], exits  # the one in fail()


def test_version_names_the_core_and_plugins_without_importing_them() -> None:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom argus_core.cli import cli\n"
            "r = CliRunner().invoke(cli, ['--version'])\nprint(r.exit_code)\nprint(r.output)\n"
            f"print('IMPORTED', sorted({{m.split('.')[0] for m in sys.modules}} & "
            f"set({PLUGIN_PACKAGES!r})))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=os.environ.copy())
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    from importlib.metadata import version

    assert lines[0] == "0"
    assert lines[1] == f"argus {version(CORE_DISTRIBUTION)}"
    assert f"  argustrade-lab {version('argustrade-lab')}" in lines
    assert lines[-1] == "IMPORTED []"


# -- logging -------------------------------------------------------------------------
@click.command("_log-sample")
def _log_sample() -> None:
    """Log one record per (family, level), and a secret, for the tests below."""
    for name in ("argus_core.runner", "argus_lab.sweep", "argus.journal",
                 "matplotlib.font_manager"):
        logging.getLogger(name).info("info from %s", name)
        logging.getLogger(name).debug("debug from %s", name)
    logging.getLogger("argus_core.x").warning("api_key = 'abcdefghijklmnop' [run]")


@pytest.fixture
def log_sample() -> Iterator[None]:
    """``argus _log-sample``, registered for one test only."""
    cli.add_command(_log_sample)
    try:
        yield
    finally:
        cli.commands.pop("_log-sample", None)


@pytest.mark.parametrize(("flags", "shown", "hidden"), [
    ([], set(), {"info from argus_core.runner", "info from matplotlib.font_manager"}),
    (["-v"], {"info from argus_core.runner", "info from argus_lab.sweep",
              "info from argus.journal"},
     {"debug from argus_core.runner", "info from matplotlib.font_manager"}),
    (["-vv"], {"debug from argus_core.runner", "debug from argus_lab.sweep"},
     {"info from matplotlib.font_manager", "debug from matplotlib.font_manager"}),
    (["-vvv"], {"debug from argus.journal", "debug from matplotlib.font_manager"}, set()),
])
@pytest.mark.usefixtures("log_sample")
def test_verbosity_is_argus_first(flags: list[str], shown: set[str],
                                  hidden: set[str]) -> None:
    result = _invoke([*flags, "_log-sample"])
    assert result.exit_code == 0, result.output
    for text in shown:
        assert text in result.stderr, (flags, text, result.stderr)
    for text in hidden:
        assert text not in result.stderr, (flags, text, result.stderr)
    assert "abcdefghijklmnop" not in result.stderr and "[REDACTED]' [run]" in result.stderr


@pytest.mark.parametrize("how", [["--log-json"], ["env"]])
@pytest.mark.usefixtures("log_sample")
def test_json_logs_carry_level_component_and_redact_secrets(how: list[str]) -> None:
    env = {"ARGUS_LOG_JSON": "1"} if how == ["env"] else {}
    args = ["-v", "_log-sample"] if env else ["-v", *how, "_log-sample"]
    result = _invoke(args, env=env)
    lines = [json.loads(ln) for ln in result.stderr.splitlines()]
    assert {ln["logger"] for ln in lines} == {"argus_core.runner", "argus_lab.sweep",
                                               "argus.journal", "argus_core.x"}
    warning = next(ln for ln in lines if ln["level"] == "WARNING")
    assert warning["message"] == "[REDACTED]' [run]"
    assert set(warning) == {"ts", "level", "logger", "message"}  # no run in progress


def test_json_logs_of_a_run_carry_its_run_id(tmp_path: Path, demo_config: Path) -> None:
    result = _invoke(["-v", "--log-json", "run", "--config", str(demo_config), "--run-dir",
                      str(tmp_path / "r"), "--max-events", "50", "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(ln) for ln in result.stderr.splitlines()]
    start = next(ln for ln in lines if ln["logger"] == "argus_core.runner")
    assert start["level"] == "INFO" and "starts" in start["message"]
    assert re.fullmatch(r"[0-9a-f]{12}", start["run_id"]), start
    assert f"Argus run {start['run_id']}" in result.stdout


# -- progress totals -----------------------------------------------------------------
def test_replay_counts_its_bars_for_the_progress_total(tmp_path: Path) -> None:
    from argus_core.builtins.replay_venue import count_bars_csv, read_bars_csv

    csv = tmp_path / "bars.csv"
    csv.write_text("volume,ts,open,high,low,close\n1,100,1,1,1,1\n\n1,200,1,1,1,1\n"
                   "1,300,1,1,1,1\n1,400,1,1,1,1\n")
    for start, end in ((None, None), (200, None), (None, 400), (200, 300)):
        assert count_bars_csv(csv, start, end) == len(read_bars_csv(csv, "x", 60, start, end))


def test_a_run_gives_its_progress_bar_the_total(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path, demo_config: Path) -> None:
    calls: list[tuple[int, int | None]] = []

    @contextlib.contextmanager
    def progress(label: str, enabled: bool) -> Iterator[object]:
        yield lambda n, total=None: calls.append((n, total))

    monkeypatch.setattr(cli_module, "_progress", progress)
    result = _invoke(["run", "--config", str(demo_config), "--run-dir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    total = calls[0][1]
    assert total is not None and total > 1000 and calls[-1] == (total, None)
    calls.clear()
    _invoke(["run", "--config", str(demo_config), "--run-dir", str(tmp_path / "b"),
             "--max-events", "50"])
    assert calls[0] == (0, 50)
