"""A config error names the file, the dotted key and the line it stands on (tomllib keeps no
positions; the config module finds the key's line in the text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from argus_core.config import load_config
from argus_core.errors import ConfigError

HEAD = '[argus]\nplugins = []\nmode = "replay"\n\n[run]\nstrategies = ["ma_cross"]\n'


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_a_bad_value_names_its_own_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + "# cash\nstarting_cash = \"abc\"\n")
    assert message.endswith("@ run.starting_cash (line 8)"), message


def test_a_dotted_or_quoted_key_is_found(tmp_path: Path) -> None:
    text = HEAD.replace("[run]\n", "[run]\n\"starting_cash\" = \"x\"\n")
    assert error_of(tmp_path, text).endswith("@ run.starting_cash (line 6)")
    text = HEAD + "[paper]\n\n\nlatency_ms = 2.5\n"
    assert error_of(tmp_path, text).endswith("@ paper.latency_ms (line 10)")
    text = '\npaper.latency_ms = 2.5\n' + HEAD  # a dotted key opens its table on its line
    assert error_of(tmp_path, text).endswith("@ paper.latency_ms (line 2)")


def test_an_inline_table_points_at_its_line_and_an_unknown_key_at_its_own(
        tmp_path: Path) -> None:
    """An unknown key names its own line (its table's header line was given)."""
    text = HEAD + "\npaper = { latency_ms = 2.5 }\n"  # run.paper: an unknown key of [run]
    assert error_of(tmp_path, text).endswith("@ run (line 8)")
    text = 'run = { starting_cash = "x" }\n[argus]\nplugins = []\n'
    assert error_of(tmp_path, text).endswith("@ run.starting_cash (line 1)")
    message = error_of(tmp_path, HEAD + "colour = 1\n")
    assert "unknown key(s) (colour) @ run (line 7)" in message, message


def test_a_core_validators_error_names_its_keys_line(tmp_path: Path) -> None:
    """attrs' ``in_`` says "'mode' must be in ..." at the table: it was placed at the
    table's header line (line 1 for a key on line 4)."""
    text = '[argus]\nplugins = []\n\nmode = "livee"\n\n[run]\nstrategies = ["ma_cross"]\n'
    assert error_of(tmp_path, text).endswith("@ argus.mode (line 4)")


def test_a_set_that_configures_a_plugin_not_loaded_is_named(tmp_path: Path) -> None:
    """``--set plugins.bogus.x=1`` was blamed on the config file, which never named it."""
    from argus_core.config import apply_overrides, parse_overrides
    from argus_core.runtime import check_plugin_tables

    path = tmp_path / "c.toml"
    path.write_text(HEAD)
    config = apply_overrides(load_config(path), parse_overrides(["plugins.bogus.x=1"]),
                             origin="--set")
    with pytest.raises(ConfigError) as info:
        check_plugin_tables(config, ["bogus"])
    assert str(info.value).startswith("--set plugins.bogus.x: [plugins.bogus]"), str(info.value)
