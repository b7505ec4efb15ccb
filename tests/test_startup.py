"""Start-up stays light (issue 14 item 1), asserted on structure, never on timings:
``argus --help`` and ``--version`` import no plugin, numpy or pluggy; a builtins-only
``argus run`` imports no plugin package and no plotting library and reads no entry
points; a run whose stderr is not a terminal makes no progress bar (whose total is an
extra pass over the replayed file)."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from argus_core import cli as cli_module
from argus_core.builtins.replay_venue import ReplayVenue
from argus_core.discovery import ENTRY_POINT_GROUP
from argus_core.plugins import BUILTIN_NAMES, PluginHost

#: The import packages of every installed entry-point plugin (argus_lab, ...).
PLUGIN_PACKAGES = sorted({ep.value.split(":")[0].split(".")[0]
                          for ep in md.entry_points(group=ENTRY_POINT_GROUP)} - {"argus_core"})


def _modules_after(argv: list[str], tmp_path: Path) -> dict[str, object]:
    """Run ``argus ARGV`` in a fresh interpreter; what it printed, its exit code and the
    top-level packages it had imported when the command returned."""
    code = (
        "import json, sys\n"
        "from argus_core.cli import cli\n"
        "try:\n"
        f"    cli({argv!r}, prog_name='argus')\n"
        "    rc = 0\n"
        "except SystemExit as exc:\n"
        "    rc = exc.code\n"
        "print('\\nMODULES', json.dumps({'rc': rc, 'modules': sorted(sys.modules)}))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert "MODULES" in res.stdout, res.stderr[-2000:]
    out, _, tail = res.stdout.rpartition("\nMODULES ")
    data: dict[str, object] = json.loads(tail)
    data["out"] = out
    return data


def _top_level(modules: object) -> set[str]:
    assert isinstance(modules, list)
    return {m.split(".")[0] for m in modules}


def test_plugin_packages_are_known() -> None:
    # Guards the assertions below against an empty list (nothing installed to leak).
    assert "argus_lab" in PLUGIN_PACKAGES and "argus_venue_kraken" in PLUGIN_PACKAGES


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_no_plugin_numpy_or_pluggy(argv: list[str],
                                                           tmp_path: Path) -> None:
    ran = _modules_after(argv, tmp_path)
    assert ran["rc"] == 0, ran["out"]
    assert "argus" in str(ran["out"])
    leaked = _top_level(ran["modules"]) & {*PLUGIN_PACKAGES, "numpy", "pluggy", "matplotlib",
                                            "apsw", "asyncio"}
    assert leaked == set()


def _tiny_demo(tmp_path: Path, rows: int = 300) -> Path:
    """examples/demo.toml (builtins only) on its first ``rows`` bars from 2021."""
    from argus_test_helpers import BUNDLED_BARS, ROOT

    lines = [ln for ln in BUNDLED_BARS.read_text().splitlines()
             if ln and int(ln.split(",", 1)[0]) >= 1_609_459_200][:rows]
    bars = tmp_path / "bars.csv"
    bars.write_text("\n".join(lines) + "\n")
    text = (ROOT / "examples" / "demo.toml").read_text()
    assert 'plugins = []' in text and 'bars_csv = "data/kraken_XBTUSD_60.csv"' in text
    config = tmp_path / "demo.toml"
    config.write_text(text.replace('"data/kraken_XBTUSD_60.csv"', json.dumps(str(bars))))
    return config


def test_a_builtins_only_run_imports_no_plugin_and_no_plotting(tmp_path: Path) -> None:
    config = _tiny_demo(tmp_path)
    ran = _modules_after(["run", "--config", str(config), "--run-dir", str(tmp_path / "r"),
                          "--no-progress"], tmp_path)
    assert ran["rc"] == 0, ran["out"]
    assert "orders / fills" in str(ran["out"])
    assert _top_level(ran["modules"]) & {*PLUGIN_PACKAGES, "matplotlib", "pandas"} == set()


def test_a_builtins_only_load_reads_no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(**_: object) -> object:
        raise AssertionError("installed entry points were read for a builtins-only config")

    monkeypatch.setattr("argus_core.plugins.md.entry_points", no_scan)
    host = PluginHost()
    host.load([])
    assert set(host.plugin_names()) == BUILTIN_NAMES
    # Naming a builtin loads nothing more and reads nothing either.
    again = PluginHost()
    again.load(["replay", "example"])
    assert set(again.plugin_names()) == BUILTIN_NAMES


def test_a_named_plugin_is_still_found_and_a_missing_one_still_refused() -> None:
    host = PluginHost()
    host.load(["kraken"])
    assert "kraken" in host.plugin_names()
    with pytest.raises(Exception, match="plugin 'no_such_plugin' is not installed"):
        PluginHost().load(["no_such_plugin"])


def test_without_a_terminal_a_run_draws_no_bar_and_counts_no_bars(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_count(self: ReplayVenue) -> int:
        raise AssertionError("counted the bars for a progress bar nobody sees")

    monkeypatch.setattr(ReplayVenue, "expected_events", no_count)
    config = _tiny_demo(tmp_path, rows=200)
    # Progress is on (no --no-progress), but CliRunner's stderr is not a terminal.
    result = CliRunner().invoke(cli_module.cli, ["run", "--config", str(config),
                                                 "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "orders / fills" in result.output


def test_backtest_prints_the_metrics_of_its_ledger(tmp_path: Path) -> None:
    """The summary's metrics come from the report's one read of the run; they are still
    exactly what compute_metrics reads from the ledger afterwards."""
    from argus_core.ledger import Ledger
    from argus_core.metrics import compute_metrics

    config = _tiny_demo(tmp_path, rows=600)
    run_dir = tmp_path / "bt"
    result = CliRunner().invoke(cli_module.cli, ["backtest", "--config", str(config),
                                                 "--run-dir", str(run_dir), "--no-progress"])
    assert result.exit_code == 0, result.output
    with Ledger.in_dir(run_dir) as ledger:
        metrics = compute_metrics(ledger, cli_module.load_config(config).run.starting_cash)
    assert metrics["n_trades"] > 0
    assert f"{metrics['sharpe']:.2f} (" in result.output
    assert f"{metrics['max_drawdown']:.2%}" in result.output
    assert f"{metrics['n_trades']} / {metrics['win_rate']:.1%}" in result.output
    assert (run_dir / "report.html").exists()
