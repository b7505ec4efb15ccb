"""Shared fixture: the bundled bar file."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
KRAKEN = REPO / "examples" / "data" / "kraken_XBTUSD_60.csv"


@pytest.fixture
def kraken_csv() -> Path:
    """The bundled Kraken BTC/USD hourly bars (skips outside an Argus checkout)."""
    if not KRAKEN.exists():
        pytest.skip("the bundled Kraken bars are not in this checkout")
    return KRAKEN
