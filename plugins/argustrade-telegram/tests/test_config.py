"""``[plugins.telegram]`` validation: errors name the key and the file; tokens only by
reference; no token means no bot (and no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_telegram.config import TelegramSettings

from argus_core import ConfigError, Secret, load_config, plugin_settings


def settings_from(tmp_path: Path, table: str) -> TelegramSettings:
    """``[plugins.telegram]`` of a config file holding ``table``."""
    path = tmp_path / "argus.toml"
    path.write_text('[argus]\nplugins = ["telegram"]\n\n[run]\nvenue = "replay"\n\n'
                    f"[plugins.telegram]\n{table}\n")
    settings: TelegramSettings = plugin_settings(load_config(path), "telegram",
                                                 TelegramSettings)
    return settings


def test_defaults_leave_the_bot_off() -> None:
    settings = TelegramSettings()
    assert not settings.enabled and settings.chat_ids == []
    assert settings.base_url == "https://api.telegram.org/bot"
    assert settings.wants("fills") and settings.wants("states")


def test_a_full_table_is_read(tmp_path: Path) -> None:
    s = settings_from(tmp_path, 'token = "$env:TG_TOKEN"\nchat_ids = [1, -1002]\n'
                                'events = ["states", "rollbacks"]\nbatch_interval_s = 5\n'
                                'base_url = "http://127.0.0.1:9/bot"')
    assert s.token == Secret("$env:TG_TOKEN") and s.enabled
    assert s.chat_ids == [1, -1002] and s.batch_interval_s == 5
    assert s.wants("states") and not s.wants("fills")
    assert "TG_TOKEN" in repr(s.token)  # the reference, never a value


@pytest.mark.parametrize(("table", "message"), [
    ('token = "123456:ABCdef"\nchat_ids = [1]', "inline secret"),
    ('token = "$env:T"', "chat_ids"),
    ('token = "$env:T"\nchat_ids = ["alice"]', "chat_ids"),
    ('chat_ids = [1, 1]', "listed twice"),
    ('events = ["fills", "gossip"]', "gossip"),
    ('max_messages_per_minute = 0', "max_messages_per_minute"),
    ('batch_interval_s = -1', "batch_interval_s"),
    ('base_url = "api.telegram.org/bot"', "base_url"),
    ('chat_id = [1]', "chat_id"),  # a typo: unknown key
])
def test_bad_settings_are_refused_naming_the_key(tmp_path: Path, table: str,
                                                 message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        settings_from(tmp_path, table)
    assert "argus.toml" in str(err.value)
    assert "ABCdef" not in str(err.value)  # not even an inline token is echoed
