"""Shared fixtures: real Kraken bars (a slice of the bundled file) and a synthetic stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from argus_ml.bars import BarColumns, read_ohlcvt_csv

REPO = Path(__file__).resolve().parents[3]
KRAKEN = REPO / "examples" / "data" / "kraken_XBTUSD_60.csv"


@pytest.fixture(scope="session")
def kraken_bars() -> BarColumns:
    """About 3,000 hourly BTC/USD bars from 2022 (real data, with its gaps)."""
    return read_ohlcvt_csv(KRAKEN, start_s=1_640_995_200, end_s=1_640_995_200 + 3000 * 3600)


def synthetic_bars(n: int, seed: int = 0, strength: float = 1.5) -> tuple[BarColumns, np.ndarray]:
    """Bars whose next move is up with a known probability ``sigmoid(strength * z)``, ``z``
    the standardised last return; returns the bars and ``p_up[t]`` for decision bar t."""
    rng = np.random.default_rng(seed)
    close = np.empty(n)
    p_up = np.full(n, np.nan)
    close[0], close[1] = 100.0, 100.5
    sigma = 0.01
    for t in range(1, n - 1):
        z = np.log(close[t] / close[t - 1]) / sigma
        p_up[t] = 1.0 / (1.0 + np.exp(-strength * z))
        up = rng.random() < p_up[t]
        size = abs(rng.normal(0.0, sigma)) + 1e-4
        close[t + 1] = close[t] * np.exp(size if up else -size)
    opn = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(opn, close) * 1.001
    low = np.minimum(opn, close) * 0.999
    ts = (1_600_000_000 + 3600 * np.arange(1, n + 1)) * 10**9
    return BarColumns(ts.astype(np.int64), opn, high, low, close, np.ones(n)), p_up
