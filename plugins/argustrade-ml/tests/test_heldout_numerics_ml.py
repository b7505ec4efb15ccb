"""Held-out audit of the probability layer's numerics on ETH hourly bars (``../shared``;
the models were developed on XBT): labels against the venue's payout rule, features
point in time by brute force, the scores against scikit-learn, binary Kelly against a
brute-force maximum of expected log growth, the market model's P&L by simulation, and
the z-score of a market whose price does not move."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from argus_ml.bars import read_ohlcvt_csv
from argus_ml.features import FeatureRegistry, batch_feature
from argus_ml.labels import LabelSpec, horizon_rows, make_labels
from argus_ml.market import BinaryMarket, kelly_fraction
from argus_ml.scoring import auc, brier, log_loss, murphy

ETH = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "crypto" / \
    "kraken_ETHUSD_60.csv"
needs_eth = pytest.mark.skipif(not ETH.exists(), reason="../shared/data is not here")


@pytest.fixture(scope="module")
def eth():
    return read_ohlcvt_csv(ETH, start_s=1_600_000_000, end_s=1_610_000_000)


@needs_eth
@pytest.mark.parametrize("h", [1, 4, 24])
def test_labels_are_the_venues_payout_rule(eth, h):
    """``up@h`` is 1 exactly when the close ``h`` bars on is strictly higher (the
    ``updown_replay`` contract pays UP then; a flat window pays DOWN); known at that
    bar's close; unknown (NaN, -1) where the window runs past the data."""
    lab = make_labels(eth, LabelSpec("up", h))
    c, n = eth.close, len(eth)
    for t in range(0, n, 37):
        if t + h < n:
            assert lab.values[t] == (1.0 if c[t + h] > c[t] else 0.0)
            assert lab.end_ts_ns[t] == eth.ts_ns[t + h]
        else:
            assert math.isnan(lab.values[t]) and lab.end_ts_ns[t] == -1
    assert horizon_rows(eth.ts_ns, lab.end_ts_ns) == h


@needs_eth
def test_every_feature_is_point_in_time_by_brute_force(eth):
    """Each feature's value at bar t, computed on the whole history, equals its value
    computed on the bars up to t only, and is stamped no later than bar t's close."""
    rng = np.random.default_rng(0)
    rows = rng.integers(30, len(eth), 12)
    for feature in FeatureRegistry.default().all():
        full, known = batch_feature(feature, eth)
        for t in rows:
            cut, _ = batch_feature(feature, eth.head(int(t) + 1))
            assert cut[t] == full[t] or (math.isnan(cut[t]) and math.isnan(full[t])), \
                feature.key
            assert known[t] <= eth.ts_ns[t]


def test_zscore_of_an_unmoving_market_is_zero():
    """24 equal closes: before, ``std`` was 1e-13 for ~15% of price levels and z was
    rounding noise over rounding noise (any value); version 2 gives 0 for every level."""
    from argus_ml.bars import BarColumns

    levels = np.random.default_rng(0).uniform(1, 70_000, 400).round(2)
    n = 24
    for level in levels:
        bars = BarColumns(np.arange(1, n + 1, dtype=np.int64) * 3_600 * 10**9,
                          np.full(n, level), np.full(n, level), np.full(n, level),
                          np.full(n, level), np.ones(n))
        v, _ = batch_feature(FeatureRegistry.default().get("zscore_24"), bars)
        assert v[-1] == 0.0, level
    assert FeatureRegistry.default().get("zscore_24").version == 2


@needs_eth
def test_zscore_versions_agree_on_a_moving_market(eth):
    """Where prices move, version 2 is version 1 to the bit."""
    reg = FeatureRegistry.default()
    v1, k1 = batch_feature(reg.get("zscore_24@1"), eth)
    v2, k2 = batch_feature(reg.get("zscore_24@2"), eth)
    assert np.array_equal(v1, v2, equal_nan=True) and np.array_equal(k1, k2)


@needs_eth
def test_scores_against_scikit_learn_on_heldout_forecasts(eth):
    """A naive forecast on ETH (P(up) from the last bar's sign, shrunk): Brier, log
    loss and AUC equal scikit-learn's; Murphy's identity is exact over distinct values."""
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.metrics import log_loss as sk_log_loss

    lab = make_labels(eth, LabelSpec("up", 1))
    ret = np.r_[np.nan, np.diff(np.log(eth.close))]
    ok = ~np.isnan(lab.values) & ~np.isnan(ret)
    y = lab.values[ok]
    p = np.clip(0.5 + 40 * ret[ok], 0.05, 0.95).round(3)
    assert brier(p, y) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert log_loss(p, y) == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    assert auc(p, y) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    d = murphy(p, y)
    assert d.reliability - d.resolution + d.uncertainty == pytest.approx(d.brier, abs=1e-15)
    assert d.within_bin == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("p_win,cost", [(0.6, 0.5), (0.93, 0.9), (0.3, 0.2), (0.55, 0.56),
                                        (0.999, 0.95)])
def test_binary_kelly_maximises_expected_log_growth(p_win, cost):
    """Stake f of wealth on contracts costing ``cost`` (all-in) paying 1: wealth becomes
    1 + f (1 - cost) / cost on a win, 1 - f on a loss; the Kelly fraction is the f in
    [0, 1) maximising p log(win) + (1 - p) log(loss) (a grid of 1e5 points)."""
    f = np.linspace(0, 0.99999, 100_000)
    growth = p_win * np.log1p(f * (1 - cost) / cost) + (1 - p_win) * np.log1p(-f)
    best = float(f[np.argmax(growth)])
    assert kelly_fraction(p_win, cost) == pytest.approx(best, abs=2e-5)


def test_kelly_refuses_costs_outside_the_unit_interval():
    """A contract whose all-in cost is 1 or more (or nothing) is no bet."""
    assert kelly_fraction(0.99, 1.0) == 0.0 and kelly_fraction(0.99, 1.02) == 0.0
    assert kelly_fraction(0.5, 0.0) == 0.0


def test_market_pnl_matches_its_expectation_by_simulation():
    """With true P(up) = q, buying UP earns q - cost per contract on average and DOWN
    (1 - q) - cost: the model's edges, checked over 400k simulated windows."""
    m = BinaryMarket(half_spread=0.01, fee_rate=0.02)
    rng = np.random.default_rng(3)
    q = rng.uniform(0.3, 0.7, 400_000)
    up = (rng.random(q.size) < q).astype(np.int64)
    for side, edge in ((1, q - m.cost), (-1, (1 - q) - m.cost)):
        pnl = m.pnl(np.full(q.size, side), up)
        assert pnl.mean() == pytest.approx(edge.mean(), abs=3e-3)
    assert m.edges(np.array([0.5]))[0][0] == pytest.approx(0.5 - 0.51 * 1.02, abs=1e-15)
