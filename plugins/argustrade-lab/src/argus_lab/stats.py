"""Selection statistics: probabilistic and deflated Sharpe ratios, Reality Check, SPA, PBO.

Conventions (the papers'):

- Sharpe ratios are **per observation** (not annualised): ``mean / std`` of the
  per-period returns.  Annualise only for display, and only with the observations
  per year measured from the data (:func:`argus_core.metrics.observations_per_year`,
  the one rule every Argus output uses).
- ``kurtosis`` is the **non-excess** fourth standardised moment (a normal
  distribution has 3), ``skew`` the third.

References:

- Bailey, D. H. and Lopez de Prado, M. (2012), "The Sharpe Ratio Efficient
  Frontier", Journal of Risk 15(2): PSR (eq. 9) and the minimum track record
  length (eq. 11).
- Bailey, D. H. and Lopez de Prado, M. (2014), "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality",
  Journal of Portfolio Management 40(5): the expected maximum Sharpe ratio of
  ``N`` independent trials (eq. 4) and DSR = PSR(SR0) (eq. 5).
- Bailey, D. H., Borwein, J. M., Lopez de Prado, M. and Zhu, Q. J. (2017), "The
  Probability of Backtest Overfitting", Journal of Computational Finance 20(4): CSCV
  and PBO (section 2), performance degradation and the probability of loss (2.3).
- White, H. (2000), "A Reality Check for Data Snooping", Econometrica 68(5).
- Hansen, P. R. (2005), "A Test for Superior Predictive Ability", JBES 23(4).

White's RC and Hansen's SPA are delegated to ``arch.bootstrap.SPA`` (Kevin
Sheppard's ``arch``, the reference Python implementation): ``arch`` works on
*losses*, so returns are negated on the way in.  White's RC is the
non-studentised statistic with the "upper" (no re-centring of poor models)
p-value -- exactly Hansen's SPA_u without studentisation; Hansen's SPA is the
studentised statistic with the "consistent" p-value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import attrs
import numpy as np
from scipy import stats as _st

from argus_core import DataError
from argus_lab.ratios import is_flat

#: Euler-Mascheroni constant (used by the expected maximum of N Gaussian draws).
EULER_GAMMA = 0.5772156649015329


def _sharpe_variance(sr: float, skew: float, kurtosis: float) -> float:
    """``1 - skew SR + (kurtosis - 1)/4 SR^2``, checked: every figure finite (a NaN skew or
    kurtosis gave PSR NaN, an infinite kurtosis PSR 0.5), the kurtosis non-excess and the
    result positive."""
    for name, value in (("Sharpe ratio", sr), ("skew", skew), ("kurtosis", kurtosis)):
        if not math.isfinite(value):
            raise DataError(f"{name} {value!r} is not finite")
    if kurtosis < 1:
        # Non-excess kurtosis is always >= 1 (>= 1 + skew^2); an excess value was likely passed.
        raise DataError(f"kurtosis {kurtosis} < 1: pass the non-excess kurtosis (normal = 3)")
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0:
        raise DataError(f"non-positive Sharpe variance (skew={skew}, kurtosis={kurtosis}, "
                        f"sr={sr}): the moments are inconsistent")
    return var


def sharpe_std_error(sr: float, n_obs: float, skew: float, kurtosis: float) -> float:
    """Standard error of a per-observation Sharpe estimate under non-normal returns.

    ``sqrt((1 - skew*SR + (kurtosis-1)/4 * SR^2) / (n_obs - 1))`` (Mertens 2002, as used
    by Bailey & Lopez de Prado 2012, eq. 8).
    """
    if not 1 < n_obs < math.inf:  # NaN gave a NaN error, infinity a ZeroDivisionError
        raise DataError(f"n_obs must be a finite number > 1 (got {n_obs})")
    return math.sqrt(_sharpe_variance(sr, skew, kurtosis) / (n_obs - 1.0))


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: float,
                               skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """PSR: the probability that the true Sharpe ratio exceeds ``sr_benchmark``.

    ``PSR = Phi((SR - SR*) sqrt(n-1) / sqrt(1 - skew SR + (kurt-1)/4 SR^2))``
    with per-observation Sharpe ratios and non-excess kurtosis.
    """
    se = sharpe_std_error(sr, n_obs, skew, kurtosis)
    if math.isnan(sr_benchmark):  # a NaN probability passed silently
        raise DataError("benchmark Sharpe ratio is NaN")
    return float(_st.norm.cdf((sr - sr_benchmark) / se))


def expected_max_sharpe(n_trials: int, var_trials_sr: float, mean_trials_sr: float = 0.0) -> float:
    """Expected maximum Sharpe ratio among ``n_trials`` independent trials (DSR paper, eq. 4).

    ``E[max SR] ~ mean + sqrt(V) ((1-g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``
    where ``g`` is the Euler-Mascheroni constant and ``V`` the variance of the
    trials' (per-observation) Sharpe ratios.  With one trial there is no
    selection, so the answer is ``mean``.
    """
    if n_trials < 1:
        raise DataError(f"n_trials must be >= 1 (got {n_trials})")
    if var_trials_sr < 0 or not math.isfinite(var_trials_sr):
        raise DataError(f"var_trials_sr must be a finite non-negative number (got {var_trials_sr})")
    if not math.isfinite(mean_trials_sr):
        raise DataError(f"mean_trials_sr must be finite (got {mean_trials_sr})")
    if n_trials == 1:
        return mean_trials_sr
    z1 = _st.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = _st.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(mean_trials_sr + math.sqrt(var_trials_sr)
                 * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def deflated_sharpe_ratio(sr: float, n_obs: float, skew: float, kurtosis: float,
                          n_trials: int, var_trials_sr: float) -> float:
    """DSR: PSR against the Sharpe ratio expected from the best of ``n_trials`` lucky trials.

    All Sharpe ratios (``sr`` and the variance ``var_trials_sr``) are per
    observation; ``kurtosis`` is non-excess.  Example (the 2014 paper): an
    annualised SR of 2.5 over 1,250 daily observations, skew -3, kurtosis 10,
    100 trials with annualised V[SR] = 0.5 give
    ``deflated_sharpe_ratio(2.5/sqrt(250), 1250, -3, 10, 100, 0.5/250) ~= 0.90``.
    """
    sr0 = expected_max_sharpe(n_trials, var_trials_sr)
    return probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis)


def min_track_record_length(sr: float, sr_benchmark: float, skew: float = 0.0,
                            kurtosis: float = 3.0, prob: float = 0.95) -> float:
    """Minimum number of observations for PSR(sr_benchmark) to reach ``prob`` (2012, eq. 11).

    ``MinTRL = 1 + (1 - skew SR + (kurt-1)/4 SR^2) (z_prob / (SR - SR*))^2``; infinite when
    ``sr <= sr_benchmark``; 1 when ``prob <= 0.5`` (PSR is 0.5 or more from the first
    observation: the squared ``z`` of prob 0.3 gave the length for 0.7).  The moments are
    checked as for :func:`sharpe_std_error` (inconsistent ones gave a negative length).
    """
    var = _sharpe_variance(sr, skew, kurtosis)
    if math.isnan(sr_benchmark) or not 0 < prob < 1:
        raise DataError(f"min_track_record_length: benchmark Sharpe {sr_benchmark!r} must "
                        f"be a number and prob {prob!r} in (0, 1)")
    if sr <= sr_benchmark:
        return math.inf
    z = max(float(_st.norm.ppf(prob)), 0.0)
    return float(1.0 + var * (z / (sr - sr_benchmark)) ** 2)


@attrs.frozen
class ReturnMoments:
    """Per-observation Sharpe ratio and the moments PSR/DSR need."""

    sharpe: float
    skew: float
    kurtosis: float  # non-excess
    n_obs: int


def return_moments(returns: Sequence[float] | np.ndarray) -> ReturnMoments:
    """Sharpe (per observation, ddof=1 std), skew and non-excess kurtosis of ``returns``.

    Skew and kurtosis are the population (biased) standardised moments, as in the
    papers' code.  A flat series (:func:`argus_lab.ratios.is_flat`: constant up to float
    rounding) has Sharpe 0, skew 0 and kurtosis 3.
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = int(r.size)
    if n < 2:
        raise DataError(f"need at least 2 returns for Sharpe statistics (got {n})")
    if is_flat(r):
        return ReturnMoments(0.0, 0.0, 3.0, n)
    sd = float(r.std(ddof=1))
    skew = float(_st.skew(r))
    # Kurtosis is at least 1 + skew^2 (Pearson), reached by two-valued returns; rounding
    # put +1.3% / -0.7% alternating at 0.9999999999999997, which PSR refused as "< 1: pass
    # the non-excess kurtosis" and the gates stopped.
    kurtosis = max(float(_st.kurtosis(r, fisher=False)), 1.0 + skew * skew)
    return ReturnMoments(float(r.mean() / sd), skew, kurtosis, n)


@attrs.frozen
class MultipleComparison:
    """Result of a data-snooping test over a set of strategies versus a benchmark."""

    test: str  # "white_rc" | "hansen_spa"
    pvalue: float
    pvalues: dict[str, float]  # arch's lower / consistent / upper
    best_model: int  # column with the largest mean excess return
    n_models: int
    reps: int


def flat_columns(excess: np.ndarray) -> np.ndarray:
    """Which columns of ``excess`` ((T, k) excess returns) are flat (zero variance up to
    float rounding: :func:`argus_lab.ratios.is_flat`)."""
    return np.array([is_flat(excess[:, k]) for k in range(excess.shape[1])], dtype=bool)


def _spa(benchmark: np.ndarray, models: np.ndarray, *, studentize: bool, block_size: int | None,
         reps: int, seed: int) -> tuple[dict[str, float], int]:
    from arch.bootstrap import SPA  # imported lazily: arch pulls in pandas/statsmodels

    bench = np.asarray(benchmark, dtype=np.float64)
    mods = np.asarray(models, dtype=np.float64)
    if mods.ndim == 1:
        mods = mods[:, None]
    if bench.ndim != 1 or mods.ndim != 2 or mods.shape[0] != bench.shape[0]:
        raise DataError(f"benchmark must be (T,) and models (T, k) with the same T; got "
                        f"{bench.shape} and {mods.shape}")
    if bench.shape[0] < 10:
        raise DataError(f"need at least 10 observations for a bootstrap test "
                        f"(got {bench.shape[0]})")
    if not (np.all(np.isfinite(bench)) and np.all(np.isfinite(mods))):
        raise DataError("benchmark/model returns contain NaN or infinity")
    best = int(np.argmax(mods.mean(axis=0) - bench.mean()))
    # A model whose excess over the benchmark has zero variance (flat: constant up to
    # float rounding, :func:`argus_lab.ratios.is_flat`) gives no evidence either way:
    # both tests' asymptotics assume a non-degenerate long-run variance of the excess
    # (White 2000, Hansen 2005: omega_k > 0), and arch's bootstrap of a constant is that
    # constant, so its re-centred draws are all 0.  Against it a flat excess that is not
    # positive (a variant that never trades, against cash) reported p = 0 (a grid of such
    # a variant and losers passed Hansen's SPA), and a flat *positive* excess (a constant
    # carry) p = 0 too -- beside noise variants it carried pure noise past both tests.
    # Every flat model is left out; with none left there is no evidence against the
    # null: p = 1.
    excess = mods - bench[:, None]
    dead = flat_columns(excess)
    if dead.all():
        return {"lower": 1.0, "consistent": 1.0, "upper": 1.0}, best
    # arch tests losses (smaller is better): a return is a negative loss.
    test = SPA(-bench, -mods[:, ~dead], block_size=block_size, reps=reps,
               bootstrap="stationary", studentize=studentize, nested=False,
               seed=np.random.default_rng(seed))
    test.compute()
    pv = {k: float(v) for k, v in test.pvalues.items()}
    return pv, best


def white_reality_check(benchmark: np.ndarray, models: np.ndarray, *, block_size: int | None = None,
                        reps: int = 1000, seed: int = 0) -> MultipleComparison:
    """White's (2000) Reality Check: is the best of ``models`` better than ``benchmark``?

    ``benchmark`` is a (T,) array of per-period returns, ``models`` (T, k).  The
    p-value is that of H0 "no model beats the benchmark"; small means the best
    model's edge survives the data snooping of having tried all ``k``.
    """
    pv, best = _spa(benchmark, models, studentize=False, block_size=block_size, reps=reps,
                    seed=seed)
    k = 1 if np.ndim(models) == 1 else int(np.shape(models)[1])
    return MultipleComparison("white_rc", pv["upper"], pv, best, k, reps)


def hansen_spa(benchmark: np.ndarray, models: np.ndarray, *, block_size: int | None = None,
               reps: int = 1000, seed: int = 0) -> MultipleComparison:
    """Hansen's (2005) test for Superior Predictive Ability (studentised, consistent p-value).

    Less conservative than White's RC when poor models are included.
    """
    pv, best = _spa(benchmark, models, studentize=True, block_size=block_size, reps=reps,
                    seed=seed)
    k = 1 if np.ndim(models) == 1 else int(np.shape(models)[1])
    return MultipleComparison("hansen_spa", pv["consistent"], pv, best, k, reps)


@attrs.frozen
class OverfitProbability:
    """The probability of backtest overfitting of choosing the best of a set of variants
    by in-sample Sharpe, estimated by combinatorially symmetric cross-validation.

    ``pbo``: the share of the ``n_combinations`` in-sample / out-of-sample splits in
    which the variant best in sample ranks below the median out of sample (a logit
    ``lambda`` < 0; one exactly at the median counts half).  About 0.5 for variants that
    are all noise, near 0 when in-sample skill persists, near 1 when the best in sample
    is the worst out of sample.  ``degradation``: the slope of the chosen variant's
    out-of-sample Sharpe on its in-sample Sharpe across the splits (negative: the better
    it looked, the worse it did); ``p_loss``: the share of splits where the chosen
    variant's out-of-sample Sharpe is negative.  Sharpe ratios per observation."""

    pbo: float
    p_loss: float
    degradation: float
    logits: tuple[float, ...]
    n_splits: int
    n_combinations: int
    n_variants: int
    n_obs: int  # rows used: the latest n_splits x (T // n_splits)


def _block_sharpe(s1: np.ndarray, s2: np.ndarray, n: int) -> np.ndarray:
    """Per-observation Sharpe (ddof=1) from sums and sums of squares of ``n`` returns; a
    series with no variance (a variant that did not trade, or a constant return: the
    one-pass variance leaves ~1e-8 of the mean as rounding) has Sharpe 0."""
    mean = s1 / n
    var = np.maximum(s2 - n * mean * mean, 0.0) / (n - 1)
    sd = np.sqrt(var)
    flat = sd <= 1e-6 * np.abs(mean) + 1e-300
    return np.where(flat, 0.0, mean / np.where(flat, 1.0, sd))


def probability_of_backtest_overfitting(returns: np.ndarray, n_splits: int = 16
                                        ) -> OverfitProbability:
    """PBO of picking the best column of ``returns`` ((T, N) per-period returns of N
    variants on common timestamps) by in-sample Sharpe (Bailey et al. 2017).

    The rows are cut into ``n_splits`` (even) consecutive blocks of ``T // n_splits``
    (the oldest ``T % n_splits`` rows are left out); every choice of half the blocks is
    one in-sample set, the other half its out-of-sample set: C(S, S/2) splits (12,870
    for 16).  Written here, vectorised over splits from per-block sums, because no
    maintained library implements it (the public ``pypbo`` is unreleased); the tests
    check it against a plain loop over the splits."""
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise DataError(f"PBO compares at least 2 variants: returns must be (T, N >= 2), "
                        f"got shape {m.shape}")
    if n_splits < 2 or n_splits % 2:
        raise DataError(f"PBO needs an even number of blocks >= 2 (got {n_splits})")
    per = m.shape[0] // n_splits
    if per < 2:
        raise DataError(f"PBO with {n_splits} blocks needs at least {2 * n_splits} returns "
                        f"(got {m.shape[0]})")
    if not np.all(np.isfinite(m)):
        raise DataError("PBO: returns contain NaN or infinity")
    blocks = m[m.shape[0] - per * n_splits:].reshape(n_splits, per, m.shape[1])
    s1, s2 = blocks.sum(axis=1), (blocks * blocks).sum(axis=1)  # (S, N)
    half = n_splits // 2
    n_half = per * half
    combos = np.array(list(itertools.combinations(range(n_splits), half)), dtype=np.intp)
    logits, is_best, oos_best = [], [], []
    n_var = m.shape[1]
    for start in range(0, len(combos), 2048):  # (chunk, N) arrays stay small
        chunk = combos[start:start + 2048]
        mask = np.zeros((len(chunk), n_splits))
        mask[np.arange(len(chunk))[:, None], chunk] = 1.0
        is_sr = _block_sharpe(mask @ s1, mask @ s2, n_half)
        oos_sr = _block_sharpe((1.0 - mask) @ s1, (1.0 - mask) @ s2, n_half)
        best = np.argmax(is_sr, axis=1)
        rows = np.arange(len(chunk))
        chosen = oos_sr[rows, best][:, None]
        # Its out-of-sample rank among the N (1 = worst; ties share the average rank).
        rank = (oos_sr < chosen).sum(axis=1) + ((oos_sr == chosen).sum(axis=1) + 1) / 2.0
        omega = rank / (n_var + 1.0)
        logits.append(np.log(omega / (1.0 - omega)))
        is_best.append(is_sr[rows, best])
        oos_best.append(chosen[:, 0])
    lam = np.concatenate(logits)
    x, y = np.concatenate(is_best), np.concatenate(oos_best)
    degradation = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
    pbo = float(((lam < 0).sum() + 0.5 * (lam == 0).sum()) / lam.size)
    return OverfitProbability(pbo, float((y < 0).mean()), degradation,
                              tuple(float(v) for v in lam), n_splits, int(lam.size), n_var,
                              per * n_splits)


def annualise_sharpe(sr_per_obs: float, periods_per_year: float) -> float:
    """Per-observation Sharpe times ``sqrt(periods_per_year)`` (display only).

    ``periods_per_year`` should be measured, not assumed: pass
    :func:`argus_core.metrics.observations_per_year` of the returns' timestamps (or a
    backtest's ``metrics["obs_per_year"]``); 0 or less gives 0, as
    :func:`argus_core.metrics.annualise` does.
    """
    return sr_per_obs * math.sqrt(periods_per_year) if periods_per_year > 0 else 0.0
