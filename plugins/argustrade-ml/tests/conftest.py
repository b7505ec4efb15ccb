"""Shared fixtures: real Kraken bars (a slice of the bundled file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_ml.bars import BarColumns, read_ohlcvt_csv

REPO = Path(__file__).resolve().parents[3]
KRAKEN = REPO / "examples" / "data" / "kraken_XBTUSD_60.csv"


@pytest.fixture(scope="session")
def kraken_bars() -> BarColumns:
    """About 3,000 hourly BTC/USD bars from 2022 (real data, with its gaps)."""
    return read_ohlcvt_csv(KRAKEN, start_s=1_640_995_200, end_s=1_640_995_200 + 3000 * 3600)
