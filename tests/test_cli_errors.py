"""CLI errors print as written: square brackets in a message (a config table, a pip
extra) are text, not console markup."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from argus_core.cli import cli


def test_brackets_in_an_error_message_survive(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[argus]\nplugins = ["not-installed[extra]"]\n')
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                      str(tmp_path / "run")])
    assert result.exit_code == 3, result.output
    assert "not-installed[extra]" in result.output
