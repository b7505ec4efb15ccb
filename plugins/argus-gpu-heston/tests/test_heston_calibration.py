"""Calibration to the bundled SPX chain and to a synthetic chain with a planted anomaly."""

from __future__ import annotations

import numpy as np
import pytest
from argus_gpu_heston.analytic import heston_price, implied_vol
from argus_gpu_heston.calibration import (
    Chain,
    calibrate,
    load_chain,
    model_prices,
    robust_zscores,
)
from argus_gpu_heston.params import HestonParams

from argus_core.errors import DataError


@pytest.fixture(scope="module")
def spx_fit():
    chain = load_chain()
    return chain, calibrate(chain)


@pytest.mark.slow
def test_bundled_chain_filters(spx_fit) -> None:
    chain, _ = spx_fit
    assert str(chain.trade_date) == "2011-01-03"
    assert len(chain) > 300 and chain.spot == pytest.approx(1271.87)
    # out of the money only: calls above the forward, puts below
    assert np.all(chain.strike[chain.is_call] >= chain.fwd[chain.is_call])
    assert np.all(chain.strike[~chain.is_call] < chain.fwd[~chain.is_call])
    assert chain.t.min() >= 7 / 365


def test_spx_fit_quality_and_ranked_anomalies(spx_fit) -> None:
    _, res = spx_fit
    p = res.params
    assert 0 < p.v0 < 0.2 and -1 < p.rho < 0  # equity skew: negative correlation
    assert res.rmse_vol_pts < 1.5 and res.mae_vol_pts < 1.0
    z = [abs(row.zscore) for row in res.table]
    assert z == sorted(z, reverse=True)
    assert all(abs(row.zscore) > res.threshold for row in res.anomalies)
    assert all(abs(row.zscore) <= res.threshold for row in res.table if not row.flagged)


def test_chain_pricing_shortcut_is_accurate(spx_fit) -> None:
    chain, res = spx_fit
    fast = model_prices(res.params, chain)
    exact = model_prices(res.params, chain, n_alpha=48)
    np.testing.assert_allclose(fast, exact, rtol=1e-9, atol=1e-9 * chain.fwd.max())


def test_synthetic_chain_recovers_parameters_and_flags_planted_quote() -> None:
    truth = HestonParams(v0=0.03, kappa=2.5, theta=0.05, sigma=0.7, rho=-0.65)
    fwd, ts = 100.0, [0.08, 0.25, 0.5, 1.0, 2.0]
    t, k = np.meshgrid(ts, np.linspace(-0.25, 0.15, 11), indexing="ij")
    t, strike = t.ravel(), fwd * np.exp(k.ravel())
    is_call = strike >= fwd
    iv = implied_vol(heston_price(is_call, fwd, strike, t, 0.0, 0.0, truth), is_call, fwd,
                     strike, t)
    planted = 17
    iv[planted] += 0.03  # a 3-vol-point outlier
    chain = Chain(trade_date=__import__("datetime").date(2020, 1, 2), spot=fwd,
                  expiry=np.array([None] * t.size, dtype=object), t=t, strike=strike,
                  is_call=is_call, iv=iv, fwd=np.full(t.size, fwd))
    res = calibrate(chain, x0=(0.04, 1.0, 0.04, 0.4, -0.3))
    got = res.params
    assert got.v0 == pytest.approx(truth.v0, rel=0.05)
    assert got.theta == pytest.approx(truth.theta, rel=0.1)
    assert got.rho == pytest.approx(truth.rho, abs=0.05)
    assert got.sigma == pytest.approx(truth.sigma, rel=0.1)
    top = res.table[0]
    assert top.flagged and top.strike == pytest.approx(strike[planted])
    assert top.residual_vol_pts == pytest.approx(3.0, abs=0.3)
    assert len(res.anomalies) == 1


def test_robust_zscores() -> None:
    x = np.array([0.0, 0.1, -0.1, 0.05, -0.05, 5.0])
    z = robust_zscores(x)
    assert np.argmax(np.abs(z)) == 5 and abs(z[5]) > 10 and np.all(np.abs(z[:5]) < 2)


def test_bad_chain_inputs(tmp_path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_chain(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="missing columns"):
        load_chain(bad)
    with pytest.raises(DataError, match="no quotes on"):
        load_chain(None, "2012-05-05")
