"""CLI errors print as written: square brackets in a message (a config table, a pip
extra) are text, not console markup."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from argus_core.cli import cli


def test_brackets_in_an_error_message_survive(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[argus]\nplugins = ["not-installed[extra]"]\n')
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                      str(tmp_path / "run")])
    assert result.exit_code == 3, result.output
    assert "not-installed[extra]" in result.output


def test_ctrl_c_says_where_the_run_stopped_and_exits_130(
        demo_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_core.risk import TradingState
    from argus_core.runner import Runner

    def interrupted(self: Runner) -> None:
        self.seq = 1234
        self.set_trading_state(TradingState.HALTED, "a test's kill")
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "run_sync", interrupted)
    result = CliRunner().invoke(cli, ["run", "--config", str(demo_config), "--run-dir",
                                      str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 130
    assert "interrupted after event 1,234, trading state halted" in result.output
    assert "the same command resumes it" in result.output
