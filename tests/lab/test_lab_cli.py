"""``argus lab gates`` prints and stores the verdict (commands added through the hook)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

pytest.importorskip("argus_strategy_vrp")

from argus_core.builtins import lab_plugin
from argus_core.config import load_config
from argus_core.lab.gates import open_lab

CONFIG = """
[argus]
plugins = ["vrp"]
[run]
venue = "vrp_options"
strategies = ["vrp_put_spread"]
[plugins.vrp]
symbols = ["SPY"]
start = "2018-01-02"
end = "2018-09-28"
min_vrp = 0.0
spread_scale = 0.25
[plugins.risk]
max_consecutive_losses = 1000
per_play_fraction = "0.10"
[lab.walkforward]
train_bars = 80
test_bars = 40
[lab.bootstrap]
n_paths = 500
[lab.gates]
rc_reps = 50
min_trades = 3
"""


def test_lab_gates_command_prints_and_stores_the_verdict(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)

    @click.group()
    def cli() -> None:
        pass

    lab_plugin.register_commands(cli)
    result = CliRunner().invoke(cli, ["lab", "gates", "--config", str(path),
                                      "--executor", "serial"])
    assert result.exit_code == 0, result.output
    assert "verdict:" in result.output
    _s, _f, ledger = open_lab(load_config(path))
    rows = ledger.query("select verdict from lab_gate_verdicts")
    ledger.close()
    assert len(rows) == 1 and rows[0]["verdict"].upper() in result.output
    sections = lab_plugin.report_sections(load_config(path), tmp_path)
    assert "verdict" in sections["Deploy gates"]
