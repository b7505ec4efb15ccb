"""The probability of backtest overfitting (CSCV, Bailey et al. 2017) against a plain loop
over every in-sample / out-of-sample split, and on cases whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from argus_lab.stats import probability_of_backtest_overfitting as pbo_of
from scipy.stats import rankdata

from argus_core import DataError


def reference(returns: np.ndarray, n_splits: int) -> tuple[float, list[float], float, float]:
    """The paper's procedure written plainly: blocks, each half as in-sample, the best
    in-sample column's out-of-sample relative rank, its logit."""
    per = returns.shape[0] // n_splits
    m = returns[returns.shape[0] - per * n_splits:]
    blocks = [m[k * per:(k + 1) * per] for k in range(n_splits)]

    def sharpe(rows: np.ndarray) -> np.ndarray:
        out = []
        for col in rows.T:
            sd = col.std(ddof=1)
            out.append(0.0 if np.ptp(col) == 0 else col.mean() / sd)
        return np.array(out)

    logits, is_best, oos_best = [], [], []
    for chosen in itertools.combinations(range(n_splits), n_splits // 2):
        ins = np.concatenate([blocks[k] for k in chosen])
        outs = np.concatenate([blocks[k] for k in range(n_splits) if k not in chosen])
        is_sr, oos_sr = sharpe(ins), sharpe(outs)
        best = int(np.argmax(is_sr))
        omega = rankdata(oos_sr)[best] / (len(oos_sr) + 1)
        logits.append(float(np.log(omega / (1 - omega))))
        is_best.append(is_sr[best])
        oos_best.append(oos_sr[best])
    lam = np.array(logits)
    pbo = float(((lam < 0).sum() + 0.5 * (lam == 0).sum()) / lam.size)
    slope = float(np.polyfit(is_best, oos_best, 1)[0])
    return pbo, logits, slope, float((np.array(oos_best) < 0).mean())


@pytest.mark.parametrize("seed", range(6))
def test_equals_the_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, n, s = int(rng.integers(40, 300)), int(rng.integers(2, 12)), int(rng.choice([2, 4, 6, 8]))
    r = rng.normal(rng.normal(0, 0.001, n), 0.01, (t, n))
    if seed % 2:
        r[:, 0] = 0.0  # a variant that never traded
    got = pbo_of(r, s)
    want_pbo, want_logits, want_slope, want_loss = reference(r, s)
    assert got.pbo == pytest.approx(want_pbo, abs=1e-12)
    assert np.allclose(got.logits, want_logits, atol=1e-9)
    assert got.degradation == pytest.approx(want_slope, rel=1e-7, abs=1e-9)
    assert got.p_loss == pytest.approx(want_loss)
    assert got.n_combinations == len(want_logits)


def test_noise_is_a_coin_flip() -> None:
    rng = np.random.default_rng(7)
    got = pbo_of(rng.normal(0, 0.01, (1600, 40)), 16)
    assert got.n_combinations == 12_870
    assert 0.3 < got.pbo < 0.7


def test_a_real_edge_is_not_overfit() -> None:
    rng = np.random.default_rng(8)
    r = rng.normal(0, 0.01, (1600, 30))
    r[:, 5] += 0.004  # one variant with a persistent edge (Sharpe 0.4 a bar)
    got = pbo_of(r, 16)
    assert got.pbo < 0.01 and got.p_loss < 0.01


def test_a_winner_that_reverses_is_overfit() -> None:
    """Each variant earns in some blocks and loses the same in the others: whatever wins
    in sample loses out of sample."""
    rng = np.random.default_rng(9)
    n, s, per = 20, 8, 50
    signs = rng.choice([-1.0, 1.0], (s, n))
    r = np.concatenate([rng.normal(0, 0.01, (per, n)) + 0.005 * signs[k] for k in range(s)])
    signs_sum = signs.sum(axis=0)
    r -= (0.005 * signs_sum / s)  # every variant's full-sample mean is the noise's
    assert pbo_of(r, s).pbo > 0.9


def test_bad_input_says_what() -> None:
    with pytest.raises(DataError, match="at least 2 variants"):
        pbo_of(np.zeros((100, 1)))
    with pytest.raises(DataError, match="even number"):
        pbo_of(np.zeros((100, 3)), 5)
    with pytest.raises(DataError, match="at least 32 returns"):
        pbo_of(np.zeros((20, 3)), 16)
    bad = np.zeros((100, 3))
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        pbo_of(bad, 4)


@pytest.mark.parametrize("blocks", [0, 3, 26, "16"])
def test_pbo_blocks_setting_is_checked(blocks: object) -> None:
    from argus_lab.config import GateSettings

    with pytest.raises(Exception, match="pbo_blocks"):
        GateSettings(pbo_blocks=blocks)  # type: ignore[arg-type]
