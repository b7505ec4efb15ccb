"""Shared helpers of the monitor's tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from argus_monitor import stop_all

from argus_core import Ledger


@pytest.fixture(autouse=True)
def _stop_servers() -> Iterator[None]:
    """No test leaves a server (or its port) behind."""
    try:
        yield
    finally:
        stop_all()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A ledger with a run started, its writer closed (no ``-wal``/``-shm`` file left)."""
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("run-1", "paper", 7, json.dumps({"run": {"starting_cash": "10"}}))
    return run_dir
