"""Walk-forward analysis: rolling / anchored splits (and purged k-fold) with purging and embargo.

Splits are over bar indices.  When a bar's label (here: the P&L of a trade
opened on it) looks ahead ``label_horizon`` bars, training bars whose label
window reaches into the test block are **purged**, and training bars in the
``embargo`` bars right after a test block are dropped (Lopez de Prado,
*Advances in Financial Machine Learning*, ch. 7).  In forward-only layouts
(rolling, anchored) training never follows a test block, so only purging
bites; ``purged_kfold`` trains on both sides and uses both.

Evaluation (:func:`walk_forward`) works on the per-bar returns of a set of
variants (the sweep's points, each a full deterministic backtest over the
whole period): in each fold the variant with the best in-sample Sharpe on the
purged training bars is chosen and its returns on the test block are the
out-of-sample record; the test blocks are stitched into one OOS equity
curve.  Note the OOS returns come from the full-period runs, so a position
opened in training and still open in the test block counts in the test
block (purging keeps it out of the *selection*).

Selection compares per-observation Sharpe ratios (annualising scales them all
alike); what is shown is annualised by the one rule of
:func:`argus_core.metrics.observations_per_year`, from the returns' timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import numpy as np

from argus_core import ConfigError, DataError
from argus_core.metrics import annualisation_note, annualise
from argus_lab.ratios import per_obs_sharpe

MODES = ("rolling", "anchored", "purged_kfold")


@attrs.frozen
class Split:
    """One fold: training and test bar indices (sorted)."""

    fold: int
    train: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))
    test: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))


def purge_and_embargo(train: np.ndarray, test_start: int, test_end: int, *,
                      label_horizon: int = 0, embargo: int = 0) -> np.ndarray:
    """Drop training bars whose label overlaps ``[test_start, test_end)`` or that sit in the
    ``embargo`` bars after it."""
    train = np.asarray(train, dtype=np.int64)
    overlaps = (train < test_start) & (train + label_horizon >= test_start)
    inside = (train >= test_start) & (train < test_end)
    embargoed = (train >= test_end) & (train < test_end + embargo)
    return train[~(overlaps | inside | embargoed)]


#: A fold needs this many training bars left after purging and embargo to choose by.
MIN_TRAIN_BARS = 2


def walk_forward_splits(n_bars: int, *, mode: str = "rolling", train_bars: int = 252,
                        test_bars: int = 63, n_folds: int = 5, label_horizon: int = 0,
                        embargo: int = 0) -> list[Split]:
    """Fold layout over ``n_bars`` bars.

    - ``rolling``: train on the ``train_bars`` bars before each test block;
    - ``anchored``: train on every bar from the start up to the test block;
    - ``purged_kfold``: ``n_folds`` contiguous test blocks, train on the rest.

    Test blocks of rolling/anchored are consecutive ``test_bars`` blocks starting
    after the first ``train_bars`` bars (a last partial block is kept).  A fold left with
    fewer than :data:`MIN_TRAIN_BARS` training bars after purging and embargo is dropped
    (in every mode: a purged k-fold whose training was purged away "chose" the first
    variant on no data); with none left it is a :class:`DataError` naming the settings.
    """
    if mode not in MODES:
        raise ConfigError(f"walk-forward mode {mode!r} is not one of {MODES}")
    for name, value in (("label_horizon", label_horizon), ("embargo", embargo)):
        if value < 0:
            raise ConfigError(f"walk-forward: {name} = {value} bars must be >= 0")
    if mode == "purged_kfold":
        layout = _kfold_layout(n_bars, n_folds)
    else:
        layout = _forward_layout(n_bars, mode, train_bars, test_bars)
    splits: list[Split] = []
    for train, lo, hi in layout:
        kept = purge_and_embargo(train, lo, hi, label_horizon=label_horizon, embargo=embargo)
        if kept.size >= MIN_TRAIN_BARS:
            splits.append(Split(len(splits), kept, np.arange(lo, hi)))
    if not splits:
        raise DataError(f"walk-forward ({mode}): no fold keeps {MIN_TRAIN_BARS} training "
                        f"bars after purging label_horizon = {label_horizon} and embargo = "
                        f"{embargo} bars of {n_bars} bars; lower label_horizon / embargo"
                        + (" or n_folds" if mode == "purged_kfold" else ", raise train_bars")
                        + " or give more data")
    return splits


def _kfold_layout(n_bars: int, n_folds: int) -> list[tuple[np.ndarray, int, int]]:
    """(candidate training bars, test start, test end) of each purged k-fold."""
    if n_folds < 2:
        raise ConfigError(f"walk-forward purged_kfold: n_folds = {n_folds} must be at "
                          f"least 2 (one fold has nothing to train on)")
    if n_folds > n_bars:
        raise DataError(f"walk-forward purged_kfold: n_folds = {n_folds} is more than the "
                        f"{n_bars} bars to split (each test block needs a bar); lower "
                        f"n_folds to at most {n_bars} or give more data")
    edges = np.linspace(0, n_bars, n_folds + 1).astype(np.int64)
    everything = np.arange(n_bars)
    return [(everything, int(edges[k]), int(edges[k + 1])) for k in range(n_folds)]


def _forward_layout(n_bars: int, mode: str, train_bars: int, test_bars: int
                    ) -> list[tuple[np.ndarray, int, int]]:
    """(candidate training bars, test start, test end) of each rolling / anchored fold."""
    if train_bars < 2 or test_bars < 1:
        raise ConfigError(f"walk-forward needs train_bars >= 2 and test_bars >= 1 (got "
                          f"train_bars = {train_bars}, test_bars = {test_bars})")
    if train_bars + test_bars > n_bars:
        raise DataError(f"walk-forward needs at least train_bars + test_bars = "
                        f"{train_bars + test_bars} bars; the backtest has {n_bars}")
    out = []
    start = train_bars
    while start < n_bars:
        end = min(start + test_bars, n_bars)
        lo = 0 if mode == "anchored" else start - train_bars
        out.append((np.arange(lo, start), start, end))
        start = end
    return out


def _sharpe(r: np.ndarray) -> float:
    return per_obs_sharpe(r)  # 0 when flat, constant up to rounding included


@attrs.frozen
class FoldResult:
    """One fold's choice and its in- and out-of-sample Sharpe (per bar)."""

    fold: int
    chosen: int  # column of the returns matrix
    is_sharpe: float
    oos_sharpe: float
    oos_return: float
    test_start: int
    test_end: int  # exclusive


def evaluate_fold(args: tuple[np.ndarray, Split]) -> FoldResult:
    """Pick the best in-sample variant on the (purged) training bars; score it on the test bars.

    A top-level function so an executor can run folds in parallel.  Ties go to the
    lowest column (deterministic).
    """
    returns, split = args
    is_sr = np.array([_sharpe(returns[split.train, k]) for k in range(returns.shape[1])])
    chosen = int(np.argmax(is_sr))
    oos = returns[split.test, chosen]
    return FoldResult(split.fold, chosen, float(is_sr[chosen]), _sharpe(oos),
                      float(np.prod(1.0 + oos) - 1.0), int(split.test[0]), int(split.test[-1]) + 1)


@attrs.frozen
class WalkForwardResult:
    """Folds, the stitched out-of-sample returns/equity and stability figures."""

    folds: list[FoldResult]
    oos_index: np.ndarray  # bar indices of the stitched OOS record
    oos_returns: np.ndarray
    oos_equity: np.ndarray  # compounded from 1.0
    oos_sharpe: float  # per bar, of the stitched record
    positive_share: float  # share of folds with a positive OOS return
    efficiency: float  # mean OOS Sharpe / mean IS Sharpe (walk-forward efficiency)
    obs_per_year: float = 0.0  # measured from the returns' timestamps (0: none given)

    @property
    def oos_sharpe_annualised(self) -> float:
        """The stitched OOS Sharpe, annualised like every other Sharpe in Argus."""
        return annualise(self.oos_sharpe, self.obs_per_year)

    @property
    def annualisation(self) -> str:
        """The sentence stating how the annualised figures were annualised."""
        return annualisation_note(self.obs_per_year)

    def to_dict(self) -> dict[str, object]:
        """JSON-able summary (no arrays but the fold table); Sharpe ratios per bar and
        annualised (``*_annualised``, with ``obs_per_year``)."""
        folds = [{**attrs.asdict(f),
                  "is_sharpe_annualised": annualise(f.is_sharpe, self.obs_per_year),
                  "oos_sharpe_annualised": annualise(f.oos_sharpe, self.obs_per_year)}
                 for f in self.folds]
        return {"folds": folds, "oos_sharpe": self.oos_sharpe,
                "oos_sharpe_annualised": self.oos_sharpe_annualised,
                "obs_per_year": self.obs_per_year, "annualisation": self.annualisation,
                "positive_share": self.positive_share, "efficiency": self.efficiency,
                "oos_total_return": float(self.oos_equity[-1] - 1.0) if self.oos_equity.size
                else 0.0, "n_oos_bars": int(self.oos_index.size)}


def stitch(returns: np.ndarray, folds: list[FoldResult], obs_per_year: float = 0.0
           ) -> WalkForwardResult:
    """Join the folds' test blocks (in fold order) into one OOS record."""
    parts_idx = [np.arange(f.test_start, f.test_end) for f in folds]
    parts_ret = [returns[f.test_start:f.test_end, f.chosen] for f in folds]
    idx = np.concatenate(parts_idx) if parts_idx else np.empty(0, dtype=np.int64)
    oos = np.concatenate(parts_ret) if parts_ret else np.empty(0)
    equity = np.cumprod(1.0 + oos)
    is_mean = float(np.mean([f.is_sharpe for f in folds])) if folds else 0.0
    oos_mean = float(np.mean([f.oos_sharpe for f in folds])) if folds else 0.0
    eff = oos_mean / is_mean if is_mean > 0 else (math.nan if not folds else 0.0)
    positive = float(np.mean([f.oos_return > 0 for f in folds])) if folds else 0.0
    return WalkForwardResult(folds, idx, oos, equity, _sharpe(oos), positive, eff,
                             obs_per_year)


def walk_forward(returns: np.ndarray, splits: list[Split], *, executor: object = None,
                 progress: Callable[[int, int], None] | None = None,
                 obs_per_year: float = 0.0) -> WalkForwardResult:
    """Run every fold (on ``executor`` when given) and stitch the OOS record.

    ``returns`` is (bars, variants): one column per swept parameter point;
    ``obs_per_year`` annualises what is shown: the backtests' ``metrics["obs_per_year"]``
    or :func:`~argus_core.metrics.observations_per_year` of the rows' timestamps (0: the
    figures stay per bar).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    if not splits:
        raise DataError("walk-forward produced no folds; lower train_bars/test_bars")
    if not np.all(np.isfinite(r)):
        raise DataError("walk-forward returns contain NaN or infinity")
    reach = max(int(max(s.train.max(), s.test.max())) for s in splits) + 1
    if reach > r.shape[0]:  # splits of a longer series: an IndexError, or a short last fold
        raise DataError(f"walk-forward splits reach bar {reach - 1} but the returns have "
                        f"{r.shape[0]} rows; make the splits from these returns")
    tasks = [(r, s) for s in splits]
    if executor is None:
        folds = [evaluate_fold(t) for t in tasks]
    else:
        folds = executor.map(evaluate_fold, tasks,  # type: ignore[attr-defined]
                             progress=progress)
    return stitch(r, folds, obs_per_year)
