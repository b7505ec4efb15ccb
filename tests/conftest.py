"""Shared fixtures of the core test suite (the argus_testkit plugin adds more)."""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    """A config replaying 2022 of the bundled bars through ma_cross (fast)."""
    path = tmp_path / "demo.toml"
    path.write_text(demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-09-01"))
    return path
