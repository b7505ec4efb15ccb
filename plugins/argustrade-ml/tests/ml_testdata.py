"""Paths and windows of the bundled data the ml tests share, and a one-model registry
(a uniquely named module: every plugin has a ``conftest``, so tests import from here, not
from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[3]
KRAKEN = REPO / "examples" / "data" / "kraken_XBTUSD_60.csv"

#: The training window on the bundled bars: 6,000 hourly bars from 2021-01-01.  With
#: calibration "none" the model passes the gates there; isotonic calibration does not
#: (its out-of-fold Brier loses to climatology), which proves the refusal path.
TRAIN_START = 1_609_459_200
TRAIN_END = TRAIN_START + 6000 * 3600


def tripled_volatility(rows: np.ndarray, anchor: int) -> np.ndarray:
    """Kraken OHLCVT rows whose every log move from row ``anchor`` on is three times the
    real one (prices ``c0 * (x / c0) ** 3`` around the anchor row's open ``c0``, so each
    bar's return, range and realised volatility triple; earlier rows unchanged): a real
    volatility regime shift built from ordinary bars."""
    out = np.array(rows, dtype=np.float64, copy=True)
    c0 = out[anchor, 1]
    out[anchor:, 1:5] = c0 * (out[anchor:, 1:5] / c0) ** 3
    return out


class OneModelRegistry:
    """The registry surface the forecaster reads: one paper model and its CV report."""

    def __init__(self, model: Any, report: dict[str, Any] | None = None) -> None:
        self.model, self._report = model, report or {}

    def usable(self, _status: str) -> list[str]:
        return ["m1"]

    def load(self, _model_id: str) -> Any:
        return self.model

    def get(self, _model_id: str) -> dict[str, Any]:
        return {"status": "paper"}

    def drift_calibration(self, _model_id: str) -> None:
        return None

    def report(self, _model_id: str) -> dict[str, Any]:
        return self._report
