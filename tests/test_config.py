"""Config: TOML -> frozen attrs, with errors naming file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from argus_core.config import apply_overrides, load_config, parse_config
from argus_core.errors import ConfigError
from argus_core.runtime import load_host, validate_settings
from argus_core.secrets import Secret, find_key_shaped, redact


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    if "[argus]" not in text:  # hermetic: builtins only, never whatever is installed
        text = "[argus]\nplugins = []\n" + text
    path.write_text(text)
    return path


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[run]\nventure = 'replay'\n")
    with pytest.raises(ConfigError, match=r"c\.toml.*venture.*run"):
        load_config(path)


def test_bad_value_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'mode' must be in .*'yolo'"):
        load_config(write(tmp_path, "[argus]\nmode = 'yolo'\n"))


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[run\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_plugin_table_validated_by_the_plugins_own_class(tmp_path: Path, bars_csv: Path) -> None:
    path = write(tmp_path, f"[plugins.replay]\nbars_csv = '{bars_csv}'\nbar_secs = 5\n")
    cfg = load_config(path)
    with pytest.raises(ConfigError, match=r"c\.toml.*bar_secs.*plugins\.replay"):
        validate_settings(cfg, load_host(cfg))


def test_plugin_validator_errors_reach_the_user(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[plugins.example]\nfast = 50\nslow = 10\n"))
    with pytest.raises(ConfigError, match=r"fast .50. must be shorter than slow"):
        validate_settings(cfg, load_host(cfg))


def test_table_for_a_plugin_that_is_not_loaded(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[argus]\nplugins = []\n[plugins.kraken]\npairs = []\n"))
    with pytest.raises(ConfigError, match=r"\[plugins\.kraken\].*not loaded"):
        validate_settings(cfg, load_host(cfg))


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    cfg = load_config(write(tmp_path, "[plugins.replay]\nbars_csv = 'data/b.csv'\n"))
    settings = validate_settings(cfg, load_host(cfg))["replay"]
    assert settings.bars_csv == tmp_path / "data" / "b.csv"


def test_overrides_are_validated_like_the_file() -> None:
    cfg = parse_config({})
    assert apply_overrides(cfg, {"run.venue": "x"}).run.venue == "x"
    with pytest.raises(ConfigError, match="unknown"):
        apply_overrides(cfg, {"run.nope": 1})


def test_secrets_are_references_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="inline secret values are refused"):
        Secret("hunter2-plain-text")
    monkeypatch.setenv("ARGUS_TEST_SECRET", "s3cr3t-value")
    secret = Secret("$env:ARGUS_TEST_SECRET")
    assert secret.reveal() == "s3cr3t-value"
    assert "s3cr3t" not in repr(secret)
    (tmp_path / "k").write_text("from-file\n")
    assert Secret(f"$file:{tmp_path / 'k'}").reveal() == "from-file"
    with pytest.raises(ConfigError, match="ARGUS_UNSET_VAR is not set"):
        Secret("$env:ARGUS_UNSET_VAR").reveal()


def test_key_shaped_strings_are_found_and_redacted() -> None:
    key = "sk-ant-api03-" + "A" * 40
    text = f"use {key} now; secret = 'abcdefgh12345'"
    assert key in find_key_shaped(text)
    assert key not in redact(text) and "abcdefgh12345" not in redact(text)


def test_url_scheme_accepts_its_schemes_and_names_the_key_otherwise() -> None:
    import attrs

    from argus_core import url_scheme

    @attrs.frozen
    class Endpoints:
        ws_url: str = attrs.field(default="wss://x", validator=url_scheme("ws", "wss"))

    assert Endpoints("ws://127.0.0.1:8080").ws_url == "ws://127.0.0.1:8080"
    for bad in ("https://x", "wsx://x", "", 8080):
        with pytest.raises(ValueError, match=r"ws_url: .* must start with ws:// or wss://"):
            Endpoints(bad)  # type: ignore[arg-type]  # the wrong type on purpose
