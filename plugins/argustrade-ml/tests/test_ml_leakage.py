"""The leakage check catches planted leaks of both kinds and passes the built-ins."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from argus_ml.bars import BarColumns
from argus_ml.dataset import build_dataset
from argus_ml.features import Feature, FeatureRegistry
from argus_ml.labels import LabelSpec
from argus_ml.leakage import check_leakage

from argus_core import DataError


def _ret(w: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.log(w["close"][:, -1] / w["close"][:, 0])  # type: ignore[no-any-return]


def test_builtin_features_do_not_leak(kraken_bars: BarColumns) -> None:
    report = check_leakage(FeatureRegistry.default().select(), kraken_bars, samples=16)
    assert report.ok, report.problems
    assert report.rows_checked >= 16


def test_planted_look_ahead_is_caught(kraken_bars: BarColumns) -> None:
    """A feature that reads the next bar's close (lag -1): its stamps are late."""
    reg = FeatureRegistry.default()
    reg.register(Feature("next_ret", 1, 2, _ret, "plants a leak", lag=-1))
    fs = reg.select(["ret_1", "next_ret"])
    report = check_leakage(fs, kraken_bars.head(400), samples=8)
    assert not report.ok
    assert any(p.startswith("next_ret@1: ") and "after their decision time" in p
               for p in report.problems)
    assert not any(p.startswith("ret_1@1") for p in report.problems)
    with pytest.raises(DataError, match="next_ret@1"):
        build_dataset(kraken_bars.head(400), fs, LabelSpec())


def test_planted_full_history_statistic_is_caught(kraken_bars: BarColumns) -> None:
    """A z-score against the mean of the *whole* history: stamps look fine, but the value
    at t changes when the bars after t are removed."""
    bars = kraken_bars.head(400)
    whole: dict[str, float] = {}

    def zscore_whole(w: Mapping[str, np.ndarray]) -> np.ndarray:
        if w["close"].shape[0] > 1:  # the batch pass sees every bar: remember their mean
            whole["mean"] = float(w["close"].mean())
        return w["close"][:, -1] - whole["mean"]

    leaky = Feature("zwhole", 1, 1, zscore_whole, "plants a leak")
    # its stamps are on time: only the truncation test can see this one
    report = check_leakage(FeatureRegistry([leaky]).select(), bars, samples=8)
    assert [p.split(":")[0] for p in report.problems] == ["zwhole@1"]
    assert "reads the future" in report.problems[0]
