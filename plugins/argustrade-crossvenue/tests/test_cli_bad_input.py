"""``argus crossvenue suggest`` refuses bad input as the core's commands do: one
``error:`` line naming what and where, no traceback, the exit code of the error's class,
before any venue is asked.  Each test failed before its fix: every refusal was click's
``Error:`` with exit 1, a config without the venues' tables went to the real exchanges'
default URLs, and ``--threshold nan`` was taken (every pair shown).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_test_helpers import error_line, invoke_argus


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "bad.toml").write_text("[argus\nx=")
    (tmp_path / "one.toml").write_text('[plugins.crossvenue.kalshi]\nrest_url = '
                                       '"http://127.0.0.1:9"\n')
    (tmp_path / "both.toml").write_text('[plugins.crossvenue]\nmin_edge = "-1"\n'
                                        '[plugins.crossvenue.kalshi]\n'
                                        '[plugins.crossvenue.polymarket]\n')
    return tmp_path


@pytest.mark.parametrize(("config", "code", "said"), [
    ("nofile.toml", 2, "nofile.toml: config file not found"),
    ("bad.toml", 2, "bad.toml: not valid TOML"),
    ("empty.toml", 2, "empty.toml: [plugins.crossvenue] names no "
                      "[plugins.crossvenue.kalshi] and no [plugins.crossvenue.polymarket] "
                      "table"),
    ("one.toml", 2, "one.toml: [plugins.crossvenue] names no "
                    "[plugins.crossvenue.polymarket] table"),
    ("both.toml", 2, "min_edge"),
])
def test_a_bad_config_is_refused_before_any_venue_is_asked(inputs: Path, config: str,
                                                          code: int, said: str) -> None:
    line = error_line(invoke_argus(["crossvenue", "suggest", "--config", config]), code)
    assert said in line, line


@pytest.mark.parametrize(("args", "said"), [
    (["--config", "adir"], "Invalid value for '--config': File 'adir' is a directory."),
    (["--config", "both.toml", "--threshold", "nan"],
     "Invalid value for '--threshold': 'nan' is not a finite number"),
    (["--config", "both.toml", "--threshold", "inf"],
     "Invalid value for '--threshold': inf is not in the range 0<=x<=1."),
    (["--config", "both.toml", "--threshold", "-0.5"],
     "Invalid value for '--threshold': -0.5 is not in the range 0<=x<=1."),
    (["--config", "both.toml", "--threshold", "x"],
     "Invalid value for '--threshold': 'x' is not a valid number."),
    (["--config", "both.toml", "--limit", "0"],
     "Invalid value for '--limit': 0 is not in the range x>=1."),
])
def test_usage_errors_name_the_command_and_the_option(inputs: Path, args: list[str],
                                                      said: str) -> None:
    result = invoke_argus(["crossvenue", "suggest", *args])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == f"Error: argus crossvenue suggest: {said}", last
