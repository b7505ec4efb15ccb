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
