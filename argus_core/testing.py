"""Pytest plugin for Argus plugin authors (registered through the ``pytest11`` entry point).

Fixtures:

* ``argus_host`` — a :class:`PluginHost` with only the builtins loaded (no
  autoloading of whatever happens to be installed, so tests are hermetic).
* ``register_plugin`` — ``register_plugin(obj, name)`` adds a test plugin to
  ``argus_host`` and always removes it afterwards.
* ``bars_csv`` — path of a small real OHLCVT file (Kraken BTC/USD hourly bars).
* ``run_config`` — ``run_config({...}, tmp_path)`` builds a validated
  :class:`Config` from a dict, as if read from a TOML file in ``tmp_path``.
* ``recorded`` — ``recorded(path)`` loads an NDJSON recording into events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from argus_core.config import Config, parse_config
from argus_core.models import MarketEvent
from argus_core.plugins import PluginHost

_SAMPLE_BARS = """\
1672531200,16541.8,16554.0,16532.9,16548.8,36.43,817
1672534800,16548.8,16565.4,16540.0,16560.6,44.39,923
1672538400,16560.6,16572.1,16549.3,16553.2,53.17,1084
1672542000,16553.2,16562.9,16539.4,16547.0,38.62,874
1672545600,16547.0,16555.5,16536.1,16540.6,31.71,716
1672549200,16540.6,16549.9,16527.0,16530.8,41.05,882
1672552800,16530.8,16547.3,16522.4,16543.2,47.90,951
1672556400,16543.2,16560.0,16538.8,16556.5,52.36,1043
"""


@pytest.fixture
def argus_host() -> PluginHost:
    """A plugin host with the builtins only."""
    host = PluginHost()
    host.load([])
    return host


@pytest.fixture
def register_plugin(argus_host: PluginHost) -> Iterator[Callable[[object, str], None]]:
    """Register test plugins on ``argus_host``; every one is unregistered afterwards."""
    added: list[str] = []

    def register(plugin: object, name: str) -> None:
        argus_host.add_plugin(plugin, name)
        added.append(name)

    try:
        yield register
    finally:
        for name in reversed(added):
            if argus_host.pm.has_plugin(name):
                argus_host.remove_plugin(name)


@pytest.fixture
def bars_csv(tmp_path: Path) -> Path:
    """A small OHLCVT CSV in Kraken's downloadable format (no header)."""
    path = tmp_path / "bars.csv"
    path.write_text(_SAMPLE_BARS)
    return path


@pytest.fixture
def run_config(tmp_path: Path) -> Callable[[dict[str, Any]], Config]:
    """Build a validated config from a dict (relative paths resolve against ``tmp_path``)."""

    def make(raw: dict[str, Any]) -> Config:
        return parse_config(raw, tmp_path / "config.toml")

    return make


@pytest.fixture
def recorded() -> Callable[[Path], list[MarketEvent]]:
    """Load an NDJSON recording (as written by ``argus record``)."""
    from argus_core.builtins.replay_venue import read_ndjson

    return lambda path: list(read_ndjson(Path(path)))
