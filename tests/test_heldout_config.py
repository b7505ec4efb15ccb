"""Held-out audit: bad config values get one clear ``ConfigError`` naming the file and the
key, before anything runs; live trading is never reached by accident.

Was (each failed before its fix):

* a list written as text was read letter by letter: ``strategies = "ma_cross"`` asked for
  strategies ``m``, ``a``...; ``plugins = "kraken"`` for plugins ``k``, ``r``... (a plugin
  error about ``'m'``, exit 3); a table where a list belongs gave its keys;
* any value became text: ``sizer = ["kelly"]`` looked for a sizer named ``"['kelly']"``,
  ``venue = true`` for one named ``True``;
* ``bars_csv = ""`` was the config's own folder (``Path("") == "."``): "Is a directory";
* ``starting_cash = "1e999999"`` passed and the run died at its first equity row with
  ``decimal.InvalidOperation``; ``stale_after_s = 1e300`` with ``OverflowError``;
* a config path that is a directory, unreadable, or not UTF-8 was a Python traceback;
* a scalar or list where a table belongs read "unknown error ('list' object has no
  attribute 'keys')" or "invalid value for type, expected RunSection"; an unknown top-level
  table ended "@ $";
* ``--set run..x=1`` reported "unknown key(s) ()".

Held (pinned): typos name the key and the table, TOML syntax errors their line, NaN/inf and
negatives are refused, ``mode = "live"`` needs ``--live`` and no other spelling of it passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core.config import Config, load_config, parse_config, parse_overrides
from argus_core.errors import ConfigError
from argus_core.runner import Runner


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def refused(path: Path, *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize(("table", "line", "key"), [
    ("run", 'strategies = "ma_cross"', "run.strategies"),
    ("run", 'scanners = "negrisk"', "run.scanners"),
    ("run", 'risk_checks = "max_drawdown"', "run.risk_checks"),
    ("argus", 'plugins = "kraken"', "argus.plugins"),
    ("run", "strategies = { ma_cross = 1 }", "run.strategies"),
])
def test_a_list_written_as_text_or_a_table_is_refused(tmp_path: Path, table: str, line: str,
                                                      key: str) -> None:
    message = refused(write(tmp_path, f"[{table}]\n{line}\n"), "expected a list", key)
    if '"' in line:
        assert 'write ["' in message


@pytest.mark.parametrize(("line", "key", "got"), [
    ('sizer = ["kelly"]', "run.sizer", "a list"),
    ("venue = true", "run.venue", "true/false"),
    ("venue = { name = 'replay' }", "run.venue", "a table"),
])
def test_a_name_must_be_text(tmp_path: Path, line: str, key: str, got: str) -> None:
    refused(write(tmp_path, f"[run]\n{line}\n"), "expected text", got, key)


def test_numbers_still_pass_as_text_for_overrides() -> None:
    # --set plugins.x.symbol=2024 arrives as the JSON number 2024
    assert parse_config({"run": {"venue": 5}}).run.venue == "5"


@pytest.mark.parametrize("value", ['""', '"   "', "5", "[]"])
def test_an_empty_or_non_text_path_is_refused(tmp_path: Path, value: str) -> None:
    from argus_core.builtins.replay_venue import ReplaySettings
    from argus_core.config import plugin_settings

    config = load_config(write(tmp_path, f"[plugins.replay]\nbars_csv = {value}\n"))
    with pytest.raises(ConfigError, match=r"expected a path.*plugins\.replay\.bars_csv"):
        plugin_settings(config, "replay", ReplaySettings)


@pytest.mark.parametrize(("line", "key"), [
    ('starting_cash = "1e999999"', "starting_cash = 1E+999999"),
    ('starting_cash = "1e16"', "starting_cash = 1E+16"),
    ("stale_after_s = 1e300", "stale_after_s = 1e+300"),
])
def test_numbers_too_large_to_run_with_are_refused(tmp_path: Path, line: str, key: str) -> None:
    refused(write(tmp_path, f"[run]\n{line}\n"), key, "outside the allowed range", "@ run")


def test_the_largest_accepted_cash_runs(tmp_path: Path) -> None:
    """1e15 (the bound) runs a replay to the end: equity rows are written exactly."""
    path = write(tmp_path, demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-06-08")
                 .replace("checkpoint_every_events", 'starting_cash = "1e15"\n'
                          "checkpoint_every_events"))
    summary = Runner(load_config(path), tmp_path / "run").run_sync()
    assert summary.starting_equity == 10**15


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path)


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'[argus]\nseed = 1\nmode = "r\xe9play"\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at line 3\)"):
        load_config(path)


def test_an_unreadable_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[argus]\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ConfigError, match="cannot read the config file: Permission denied"):
        load_config(path)


@pytest.mark.parametrize(("text", "key"), [
    ("argus = 5\n", "@ argus"), ("run = [1, 2]\n", "@ run"), ('paper = "x"\n', "@ paper"),
])
def test_a_scalar_where_a_table_belongs(tmp_path: Path, text: str, key: str) -> None:
    message = refused(write(tmp_path, text), "expected a table", key)
    assert "unknown error" not in message and "RunSection" not in message


def test_an_unknown_top_level_table_is_named(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "[rnu]\nstrategies = []\n"), "unknown key(s) (rnu)",
                      "at the top level")
    assert "$" not in message


def test_an_override_with_an_empty_key_part() -> None:
    for item in ("run..x=1", ".x=1", "run.=1"):
        with pytest.raises(ConfigError, match="empty part"):
            parse_overrides([item])


# -- held -----------------------------------------------------------------------------------
def test_a_typo_names_the_key_and_the_table(tmp_path: Path) -> None:
    from argus_core.builtins.risk_checks import RiskSettings
    from argus_core.config import plugin_settings

    config = load_config(write(tmp_path, '[plugins.risk]\nmax_drawdown_fracton = "0.2"\n'))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \(max_drawdown_fracton\) @ "
                                          r"plugins\.risk"):
        plugin_settings(config, "risk", RiskSettings)


def test_a_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    refused(write(tmp_path, "[run]\nvenue = \"replay\"\nstrategies = = [\"a\"]\n"),
            "not valid TOML", "line 3")


@pytest.mark.parametrize(("line", "key"), [
    ("starting_cash = nan", "run.starting_cash"), ("starting_cash = -inf", "run.starting_cash"),
    ("checkpoint_every_events = -1", "checkpoint_every_events = -1"),
    ("unwind_slippage_bps = 1e400", "run.unwind_slippage_bps"),
])
def test_nan_inf_and_negatives(tmp_path: Path, line: str, key: str) -> None:
    refused(write(tmp_path, f"[run]\n{line}\n"), key)


@pytest.mark.parametrize("mode", ["LIVE", "Live", "live ", "production", "real"])
def test_no_other_spelling_of_live_passes(tmp_path: Path, mode: str) -> None:
    refused(write(tmp_path, f'[argus]\nmode = "{mode}"\n'), "'mode' must be in")


def test_live_is_never_the_default_and_needs_confirmation(tmp_path: Path) -> None:
    assert Config().argus.mode == "replay"
    config = load_config(write(tmp_path, demo_toml(BUNDLED_BARS).replace(
        'mode = "replay"', 'mode = "live"')))
    with pytest.raises(ConfigError, match="pass --live to confirm"):
        Runner(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the run directory exists


def test_a_backtest_override_cannot_turn_live(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from argus_core.cli import cli

    path = write(tmp_path, demo_toml(BUNDLED_BARS))
    result = CliRunner().invoke(cli, ["backtest", "--config", str(path), "--set",
                                      "argus.mode=live", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "cannot run in mode 'live'" in result.output


def test_capital_naming_no_slot_is_refused(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, demo_toml(BUNDLED_BARS)
                               .replace("[paper]", '[run.capital]\nnot_a_slot = "0.5"\n\n[paper]')))
    with pytest.raises(ConfigError, match="not_a_slot"):
        Runner(config, tmp_path / "run")


def test_a_replay_start_that_is_no_date_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    """It was a data error (exit 4) when the run first read it, naming no key."""
    from argus_core.builtins.replay_venue import ReplaySettings
    from argus_core.config import plugin_settings

    # ("+-5" and "²" passed the digits test and showed int()'s own message)
    for value in ("yesterday", "+-5", "²", "5" * 5000):
        config = load_config(write(tmp_path, f'[plugins.replay]\nstart = "{value}"\n'))
        with pytest.raises(ConfigError, match=r"start = '.*' is not an ISO date.*"
                                              r"plugins\.replay"):
            plugin_settings(config, "replay", ReplaySettings)
    config = load_config(write(tmp_path, '[plugins.replay]\nstart = "2022-01-03T00:00+05:00"'
                                         '\nend = "1700000000"\n'))
    assert plugin_settings(config, "replay", ReplaySettings).start == "2022-01-03T00:00+05:00"


@pytest.mark.parametrize("value", ["true", "false", "[1]", '"x"'])
def test_a_number_setting_of_true_is_refused_not_read_as_one(tmp_path: Path, value: str
                                                             ) -> None:
    """cattrs read a float setting of ``true`` as 1.0 (``bar_depth_fraction = true`` was the
    whole bar's volume, a plugin's ``stale_after_s = true`` one second); text that is a
    number still passes (overrides arrive as text)."""
    config = write(tmp_path, demo_toml(BUNDLED_BARS).replace(
        "[paper]", f"[paper]\nbar_depth_fraction = {value}"))
    with pytest.raises(ConfigError, match=r"expected a number, got .* @ "
                                          r"paper\.bar_depth_fraction"):
        load_config(config)
    config = write(tmp_path, demo_toml(BUNDLED_BARS).replace(
        "[paper]", '[paper]\nbar_depth_fraction = "0.2"'))
    assert load_config(config).paper.bar_depth_fraction == 0.2


def test_a_toml_error_at_the_end_names_the_last_line(tmp_path: Path) -> None:
    """Was: "Unterminated string (at end of document)": no line to look at."""
    refused(write(tmp_path, '[run]\nvenue = "replay"\nx = "abc'),
            "not valid TOML", "at end of document, line 3")


def test_a_byte_order_mark_is_not_a_key(tmp_path: Path) -> None:
    """Was: "Invalid statement (at line 1, column 1)" for a file a Windows editor saved
    with a UTF-8 byte order mark, which no one can see."""
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xef\xbb\xbf" + demo_toml(BUNDLED_BARS).encode())
    assert load_config(path).run.venue == "replay"


def test_an_unknown_top_level_override_names_its_set(tmp_path: Path) -> None:
    """Was: "c.toml: unknown key(s) (risk) at the top level": the file was blamed for a
    key only ``--set risk.x=1`` gave."""
    from argus_core.config import apply_overrides

    config = load_config(write(tmp_path, demo_toml(BUNDLED_BARS)))
    with pytest.raises(ConfigError) as info:
        apply_overrides(config, parse_overrides(["risk.x=1"]), origin="--set")
    assert str(info.value).startswith("--set risk.x"), info.value
    assert "c.toml" not in str(info.value)
