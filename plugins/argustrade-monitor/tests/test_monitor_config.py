"""``[plugins.monitor]``: range-checked, errors name the key; the pass cases pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from argus_monitor import MonitorSettings

from argus_core import ConfigError, plugin_settings
from argus_core.config import parse_config


def _settings(tmp_path: Path, table: dict[str, Any]) -> MonitorSettings:
    config = parse_config({"argus": {"plugins": []}, "run": {"venue": "replay"},
                           "plugins": {"monitor": table}}, tmp_path / "c.toml")
    settings: MonitorSettings = plugin_settings(config, "monitor", MonitorSettings)
    return settings


@pytest.mark.parametrize(("table", "key"), [
    ({"port": 65536}, "port"), ({"port": -1}, "port"),
    ({"bind": "localhost"}, "bind"), ({"bind": "300.1.1.1"}, "bind"),
    ({"stale_after_s": 0}, "stale_after_s"), ({"stale_after_s": -3.0}, "stale_after_s"),
    ({"prot": 9100}, "prot"),
])
def test_bad_settings_are_refused_naming_the_key(tmp_path: Path, table: dict[str, Any],
                                                 key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        _settings(tmp_path, table)


def test_settings_at_the_edges_pass(tmp_path: Path) -> None:
    assert not _settings(tmp_path, {}).enabled  # default: off
    top = _settings(tmp_path, {"port": 65535, "bind": "::1", "stale_after_s": 0.001})
    assert top.enabled and top.port == 65535 and top.bind == "::1"
    assert _settings(tmp_path, {"port": 1, "bind": "0.0.0.0"}).port == 1
