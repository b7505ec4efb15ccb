"""A synthetic bar stream with known up-probabilities: the ground truth that proves the
training recovers probabilities (``tests/test_ml_training.py``).

Bar ``t+1`` closes up with probability ``sigmoid(strength * z_t)``, ``z_t`` the last
log return in units of the move size ``sigma``; moves are half-normal in size.  So the
feature ``ret_1`` carries all the information there is, through a logistic link.
"""

from __future__ import annotations

import numpy as np

from argus_ml.bars import BarColumns


def synthetic_bars(n: int, seed: int = 0, strength: float = 1.5
                   ) -> tuple[BarColumns, np.ndarray]:
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
