"""Shared helpers of the monitor's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argus_monitor import stop_all


@pytest.fixture(autouse=True)
def _stop_servers() -> Iterator[None]:
    """No test leaves a server (or its port) behind."""
    try:
        yield
    finally:
        stop_all()
