"""Shared fixtures of the Polymarket venue tests: recorded payloads and local servers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket.replay_server import SnapshotServer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def pm_load() -> Callable[[str], Any]:
    """``pm_load(name)``: a fixture file parsed as JSON (a fresh copy each call)."""
    return lambda name: copy.deepcopy(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def fed_event(pm_load: Callable[[str], Any]) -> dict[str, Any]:
    """The recorded negRisk Gamma event "Fed Decision in September?" (5 outcomes)."""
    return pm_load("polymarket_gamma_event_negrisk.json")


@pytest.fixture
def snapshot_server() -> Iterator[Callable[..., SnapshotServer]]:
    """Factory: ``snapshot_server(events, books, extra=None)`` started on 127.0.0.1."""
    started: list[SnapshotServer] = []

    def make(events: list[dict[str, Any]], books: list[dict[str, Any]],
             extra: Any = None) -> SnapshotServer:
        srv = SnapshotServer(events, books, extra=extra).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def local_chain(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh :class:`pm_chain.LocalChain` (eth-tester + the redemption contracts); the
    signer key is given as ``$env:PM_CHAIN_KEY`` only."""
    import importlib.util
    import sys

    from argus_venue_polymarket.testing import HARDHAT_KEY

    monkeypatch.setenv("PM_CHAIN_KEY", HARDHAT_KEY)
    module = sys.modules.get("pm_chain")
    if module is None:
        spec = importlib.util.spec_from_file_location("pm_chain",
                                                      Path(__file__).parent / "pm_chain.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["pm_chain"] = module
        spec.loader.exec_module(module)
    return module.LocalChain()


@pytest.fixture
def pm_keys(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str, str], None]:
    """``pm_keys(api_key, api_secret, api_passphrase)``: the environment the tests' configs
    read the wallet key and the CLOB credentials from (``PM_TEST_KEY``: the local chain's
    funded test key; ``PM_K``, ``PM_S``, ``PM_P``)."""
    from argus_venue_polymarket.testing import HARDHAT_KEY

    def put(api_key: str, api_secret: str, api_passphrase: str) -> None:
        for name, value in (("PM_TEST_KEY", HARDHAT_KEY), ("PM_K", api_key),
                            ("PM_S", api_secret), ("PM_P", api_passphrase)):
            monkeypatch.setenv(name, value)

    return put
