"""Scores against hand computations and scikit-learn's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from argus_ml.calibration import Calibrator, fit_calibrator
from argus_ml.scoring import auc, brier, log_loss, murphy, plot_reliability, scorecard

from argus_core import DataError


def test_murphy_decomposition_by_hand() -> None:
    p = np.array([0.2, 0.2, 0.8, 0.8, 0.8])
    y = np.array([0, 1, 1, 1, 0])
    d = murphy(p, y)
    # two groups: f=0.2 (n=2, o=1/2) and f=0.8 (n=3, o=2/3); base rate 3/5
    assert d.brier == pytest.approx((0.04 + 0.64 + 0.04 + 0.04 + 0.64) / 5)
    assert d.reliability == pytest.approx((2 * 0.3**2 + 3 * (0.8 - 2 / 3) ** 2) / 5)
    assert d.resolution == pytest.approx((2 * 0.1**2 + 3 * (2 / 3 - 0.6) ** 2) / 5)
    assert d.uncertainty == pytest.approx(0.24)
    assert d.within_bin == pytest.approx(0.0, abs=1e-15)
    assert d.brier == pytest.approx(d.reliability - d.resolution + d.uncertainty)


def test_binned_decomposition_reports_its_remainder() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(float)
    d = murphy(p, y, bins=10)
    assert d.brier == pytest.approx(d.reliability - d.resolution + d.uncertainty
                                    + d.within_bin)
    assert abs(d.within_bin) < 0.01 and d.reliability < 0.005  # calibrated by construction


def test_log_loss_auc_match_sklearn() -> None:
    from sklearn.metrics import log_loss as sk_log_loss
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    p = np.round(rng.random(300), 1)  # with ties
    y = (rng.random(300) < p).astype(float)
    assert log_loss(p, y) == pytest.approx(sk_log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert auc(p, y) == pytest.approx(roc_auc_score(y, p))
    assert auc(np.array([0.1, 0.9]), np.array([0.0, 1.0])) == 1.0
    assert np.isnan(auc(np.array([0.3, 0.4]), np.array([1.0, 1.0])))
    assert brier(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == 0.5
    with pytest.raises(DataError):
        brier(np.array([1.5]), np.array([1.0]))
    card = scorecard(p, y)
    assert set(card) >= {"brier", "reliability", "resolution", "uncertainty", "log_loss", "auc"}


def test_calibrators_fix_a_miscalibrated_forecast() -> None:
    rng = np.random.default_rng(3)
    p_true = rng.random(20000)
    y = (rng.random(20000) < p_true).astype(float)
    raw = p_true**3  # monotone but badly calibrated
    for kind in ("isotonic", "platt"):
        cal = fit_calibrator(kind, raw, y)
        again = Calibrator.from_dict(cal.to_dict())
        np.testing.assert_array_equal(cal(raw), again(raw))
        assert murphy(cal(raw), y, bins=10).reliability < 0.2 * murphy(raw, y, bins=10).reliability
    assert fit_calibrator("none", raw, y)(np.array([0.5]))[0] == 0.5


def test_reliability_diagram_is_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(float)
    out = plot_reliability({"model": (p, y)}, tmp_path / "rel.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
