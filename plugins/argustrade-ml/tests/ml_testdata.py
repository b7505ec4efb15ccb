"""Paths and windows of the bundled data the ml tests share (a uniquely named module:
every plugin has a ``conftest``, so tests import constants from here, not from it)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
KRAKEN = REPO / "examples" / "data" / "kraken_XBTUSD_60.csv"

#: The training window on the bundled bars: 6,000 hourly bars from 2021-01-01.  With
#: calibration "none" the model passes the gates there; isotonic calibration does not
#: (its out-of-fold Brier loses to climatology), which proves the refusal path.
TRAIN_START = 1_609_459_200
TRAIN_END = TRAIN_START + 6000 * 3600
