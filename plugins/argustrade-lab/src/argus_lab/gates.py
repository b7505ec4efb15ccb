"""Deploy gates: cost sensitivity, regime stress, walk-forward stability, bootstrap survival,
deflated Sharpe and the reality check -> deploy / hold / kill, with every reason.

``kill`` reasons are evidence the strategy does not work (it loses at 1.5x costs,
most resampled paths fail, its OOS record is negative, a regime wrecks it, its
DSR is low); ``hold`` reasons are missing evidence (too few trades, DSR or
reality-check p-value short of the deploy bar).  The verdict is ``kill`` if any
kill reason holds, else ``hold`` if any hold reason holds, else ``deploy``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import attrs
import numpy as np

from argus_core import (
    ArgusError,
    BacktestResult,
    Bar,
    Config,
    ConfigError,
    DataError,
    Ledger,
    Strategy,
    apply_overrides,
    canonical_json,
)
from argus_core.metrics import annualisation_note, observations_per_year
from argus_lab import stats
from argus_lab.bootstrap import BootstrapPaths, batch_tasks, bootstrap_batch, summarise
from argus_lab.config import (
    GateSettings,
    LabSettings,
    family_of,
    judging_fingerprint,
    lab_dir,
    lab_settings,
)
from argus_lab.executor import Executor, SerialExecutor, make_executor
from argus_lab.inputs import input_fingerprint
from argus_lab.journal import journal_path, journal_verdict, sync_trials
from argus_lab.ratios import effective_returns, per_obs_sharpe
from argus_lab.regime import REGIME_NAMES, vol_regimes
from argus_lab.sweep import (
    PointTask,
    gate_sharpe,
    outcome_of,
    returns_matrix,
    run_point,
    run_sweep,
    trial_sharpe,
)
from argus_lab.trials import open_lab_ledger, record_trial, store_summary, trial_stats
from argus_lab.walkforward import walk_forward, walk_forward_splits

#: ``progress(stage, done, total)``: ``done = 0`` when a stage starts, then once per
#: finished unit of work (a backtest, a fold, a bootstrap batch).
GateProgress = Callable[[str, int, int], None]


@attrs.frozen
class GateVerdict:
    """The gates' verdict: ``deploy`` / ``hold`` / ``kill``, every reason, and the figures."""

    verdict: str
    reasons: list[str]
    details: dict[str, Any]


def open_lab(config: Config) -> tuple[LabSettings, Path, Ledger]:
    """Validated settings, the lab folder and its ledger."""
    settings = lab_settings(config)
    folder = lab_dir(config, settings)
    folder.mkdir(parents=True, exist_ok=True)
    return settings, folder, open_lab_ledger(folder / "lab.db")


def recorded_regime_labels(run_dir: Path, signal: str, instrument_id: str
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, label) of the ``signal`` the run itself saw (the runner stores every Signal
    in the ``signals`` table): the regime exactly as the strategy and the risk checks
    knew it, stamp by stamp, with no lookahead.  Empty when the run recorded none."""
    from argus_core import LEDGER_FILE

    if not (run_dir / LEDGER_FILE).exists():
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    with Ledger.in_dir(run_dir) as ledger:
        rows = ledger.conn.execute(
            "select ts_ns, value from signals where name = ? and instrument_id = ? "
            "order by ts_ns", (signal, instrument_id)).fetchall()
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return ts, np.rint(cast("list[float]", [r[1] for r in rows])).astype(np.int64)  # REAL column


def regime_labels(config: Config, instrument_id: str, settings: LabSettings
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, vol regime) per bar of ``instrument_id`` from the configured venue's replay
    (classified here from the bars' closes; the fallback when the run recorded no regime
    signal)."""
    from argus_core import build_venue

    venue = build_venue(config)

    async def closes() -> list[tuple[int, float]]:
        out = []
        try:
            async for ev in venue.stream():
                if type(ev) is Bar and ev.instrument_id == instrument_id:
                    out.append((ev.ts_ns, ev.close))
        finally:
            await venue.close()
        return out

    rows = asyncio.run(closes())
    if len(rows) < 3:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return ts, vol_regimes(np.array([r[1] for r in rows])).regime


def regime_stress(returns: np.ndarray, ts_ns: np.ndarray, label_ts: np.ndarray,
                  labels: np.ndarray, min_bars: int, periods: float) -> dict[str, dict[str, float]]:
    """Per regime: bars, annualised Sharpe, compounded return and max drawdown of the
    returns whose period *started* in that regime (the label known when it began).

    ``ts_ns`` are the returns' end stamps: return ``i`` starts at ``ts_ns[i - 1]``, so its
    regime is the last label stamped at or before that; the first return's start is
    not given, so it takes the last label stamped strictly before its end.  (Counting
    back two labels from the end stamp, as this did, is the same only when every equity
    row has a label: with rows of another instrument between the labelled bars it gave
    the regime of the bar before.)  A flat subset has Sharpe 0
    (:func:`argus_lab.ratios.is_flat`).

    ``periods`` is observations per year, measured from the whole record's timestamps
    (:func:`~argus_core.metrics.observations_per_year`): a regime's returns are a subset
    of one series, so they share its sampling rate."""
    if label_ts.size == 0 or returns.size == 0:
        return {}
    pos = np.empty(ts_ns.size, dtype=np.int64)
    pos[0] = np.searchsorted(label_ts, ts_ns[0], side="left") - 1
    pos[1:] = np.searchsorted(label_ts, ts_ns[:-1], side="right") - 1
    lab = np.where(pos >= 0, labels[np.clip(pos, 0, None)], -1)
    out = {}
    for code, name in REGIME_NAMES.items():
        r = returns[lab == code]
        if r.size < min_bars:
            continue
        eq = np.cumprod(1.0 + r)
        peak = np.maximum.accumulate(np.concatenate([[1.0], eq]))[1:]
        out[name] = {"bars": int(r.size),
                     "sharpe": per_obs_sharpe(r) * math.sqrt(periods),
                     "total_return": float(eq[-1] - 1.0),
                     "max_drawdown": float(np.max((peak - eq) / peak))}
    return out


def cost_overrides(config: Config, settings: LabSettings, multiplier: Decimal
                   ) -> dict[str, Any]:
    """Overrides of one cost point: ``[paper] cost_multiplier`` (fees and slippage) times
    ``multiplier``, and every ``[plugins.lab.gates] scale_with_costs`` key (e.g. a quote
    model's spread) times ``multiplier``."""
    where = str(config.path) if config.path else "<config>"
    out: dict[str, Any] = {"paper.cost_multiplier": str(config.paper.cost_multiplier
                                                         * multiplier)}
    for key in settings.gates.scale_with_costs:
        try:
            value = config.get(key)
        except KeyError:
            raise ConfigError(f"{where}: plugins.lab.gates.scale_with_costs names {key!r}, "
                              f"which the config does not set; set it explicitly") from None
        not_a_number = ConfigError(f"{where}: plugins.lab.gates.scale_with_costs: {key} = "
                                   f"{value!r} is not a number")
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise not_a_number
        try:
            scaled = Decimal(str(value)) * multiplier
        except ArithmeticError:
            raise not_a_number from None
        out[key] = str(scaled) if isinstance(value, str | Decimal) else float(scaled)
    return out


def cost_tasks(config: Config, settings: LabSettings, folder: Path,
               strategies: dict[str, Strategy] | None, tag: str) -> list[PointTask]:
    """One backtest per ``[plugins.lab.gates] cost_multipliers`` entry (the first is the base), each
    run afresh: a gate judges the code as it is now, not a run left by an older version."""
    return [PointTask(config, cost_overrides(config, settings, m),
                      str(folder / "runs" / tag / f"cost-{m}"), f"cost-{m}", strategies,
                      fresh=True)
            for m in settings.gates.cost_multipliers]


#: The DSR is judged only on a record resting on at least this many returns
#: (:func:`argus_lab.ratios.effective_returns`).  Its standard error is asymptotic: on a
#: record of idle bars and one winning trade (skew ~sqrt(n), kurtosis ~n) it gave DSR
#: 0.977 -- past the 0.95 deploy bar -- and on three winning trades 0.9997, where a coin
#: toss is all one trade can tell.  Counting non-zero returns was not enough: the one
#: win beside 29 bars of ~1e-6 noise counted 30 and passed.
DSR_MIN_ACTIVE = 30

#: White's RC and Hansen's SPA are judged only when every variant that gained rests on
#: at least this many returns: their bootstrap is asymptotic too, and one winning bar
#: among 200 idle ones gave p = 0.064 (past rc_alpha 0.10) -- the chance a resample
#: draws that bar three times, not evidence of skill.
RC_MIN_ACTIVE = DSR_MIN_ACTIVE


def judge_dsr(returns: np.ndarray, n_trials: int, var_sr: float, g: GateSettings
              ) -> tuple[dict[str, Any], list[str], list[str]]:
    """The deflated Sharpe ratio gate: ``(details, kill reasons, hold reasons)``.

    Held, not judged, when the record has fewer than :data:`DSR_MIN_ACTIVE` non-zero
    returns (the figure is still computed and shown) or too few returns at all; a DSR
    that is not a number kills."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size <= 2:
        return {}, [], [f"DSR: {r.size} returns are too few to judge"]
    mom = stats.return_moments(r)
    dsr = stats.deflated_sharpe_ratio(mom.sharpe, mom.n_obs, mom.skew, mom.kurtosis,
                                      max(n_trials, 1), var_sr)
    active = int(np.count_nonzero(r[np.isfinite(r)]))
    effective = effective_returns(r)
    details = {"dsr": dsr, "sharpe_per_obs": mom.sharpe, "n_obs": mom.n_obs,
               "skew": mom.skew, "kurtosis": mom.kurtosis, "n_trials": n_trials,
               "var_trials_sr": var_sr, "active_returns": active,
               "effective_returns": effective}
    if not effective >= DSR_MIN_ACTIVE:
        return details, [], [f"DSR: the record rests on {effective:.1f} returns ({active} "
                              f"of {mom.n_obs} non-zero; < {DSR_MIN_ACTIVE}): too few to "
                              f"judge (DSR {dsr:.3f})"]
    if not dsr >= g.dsr_kill:  # NaN fails
        return details, [f"DSR {dsr:.3f} < {g.dsr_kill} after {n_trials} trials"], []
    if not dsr >= g.dsr_deploy:
        return details, [], [f"DSR {dsr:.3f} < {g.dsr_deploy} after {n_trials} trials"]
    return details, [], []


def _rc_pvalues(matrix: np.ndarray, g: GateSettings, seed: int
                ) -> tuple[stats.MultipleComparison, stats.MultipleComparison]:
    """White's RC and Hansen's SPA of the columns of ``matrix`` against cash."""
    bench = np.zeros(matrix.shape[0])
    rc = stats.white_reality_check(bench, matrix, block_size=g.rc_block, reps=g.rc_reps,
                                   seed=seed)
    spa = stats.hansen_spa(bench, matrix, block_size=g.rc_block, reps=g.rc_reps, seed=seed)
    return rc, spa


def _larger(a: float, b: float) -> float:
    """The larger p-value, NaN when either is (``max`` returned the other one)."""
    return a if math.isnan(a) or a >= b else b


def judge_reality_check(matrix: np.ndarray, g: GateSettings, seed: int
                        ) -> tuple[dict[str, Any], list[str]]:
    """White's RC and Hansen's SPA of the variant set (the (T, k) aligned returns) against
    cash: ``(details, hold reasons)``.

    A variant that gained but rests on fewer than :data:`RC_MIN_ACTIVE` returns
    (:func:`argus_lab.ratios.effective_returns`) is *thin*: its bootstrap p-value is the
    chance of redrawing a few bars, not evidence.  With thin variants the tests must pass
    twice, over the whole set (every variant tried counts in the snooping) and over the
    variants that are not thin (the significance may not rest on the thin ones); the
    larger p-values are judged.  With only thin gainers the gate holds.  A variant whose
    excess over cash has zero variance (flat) is left out of both tests (no evidence
    either way; see :func:`argus_lab.stats.flat_columns`); with only flat variants the
    gate holds saying so."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 10 or m.shape[1] < 1:
        return {}, [f"reality check: {m.shape[0] if m.ndim else 0} aligned returns are "
                    f"too few"]
    flat = stats.flat_columns(m)  # the excess over cash (zero) is the returns themselves
    if flat.all():
        return {"white_rc_p": 1.0, "spa_p": 1.0, "best_variant": 0, "n_variants": m.shape[1],
                "thin_variants": 0, "flat_variants": int(flat.sum())}, [
            f"reality check: the excess return over cash of every variant ({m.shape[1]}) "
            f"has zero variance (constant: a variant that never trades, or a fixed carry): "
            f"no evidence of skill, White's RC and Hansen's SPA are not defined (p = 1)"]
    rc, spa = _rc_pvalues(m, g, seed)
    thin = np.array([effective_returns(m[:, k]) < RC_MIN_ACTIVE and m[:, k].mean() > 0.0
                     for k in range(m.shape[1])])
    rc_p, spa_p = rc.pvalue, spa.pvalue
    details: dict[str, Any] = {"white_rc_p": rc_p, "spa_p": spa_p,
                               "best_variant": rc.best_model, "n_variants": rc.n_models,
                               "thin_variants": int(thin.sum()),
                               "flat_variants": int(flat.sum())}
    hold = []
    if thin.all():
        hold.append(f"reality check: every variant that gained rests on fewer than "
                    f"{RC_MIN_ACTIVE} returns: too few to judge (White's RC p = {rc_p:.3f})")
        return details, hold
    if thin.any():
        rc_thick, spa_thick = _rc_pvalues(m[:, ~thin], g, seed)
        details["white_rc_p_without_thin"] = rc_thick.pvalue
        details["spa_p_without_thin"] = spa_thick.pvalue
        rc_p, spa_p = _larger(rc_p, rc_thick.pvalue), _larger(spa_p, spa_thick.pvalue)
    without = f" ({int(thin.sum())} thin variants)" if thin.any() else ""
    if flat.any():
        without += f" ({int(flat.sum())} flat variants left out: no evidence)"
    if not rc_p <= g.rc_alpha:  # NaN holds
        hold.append(f"reality check: White's RC p = {rc_p:.3f} > {g.rc_alpha} "
                    f"over {rc.n_models} variants{without}")
    if not spa_p <= g.rc_alpha:
        hold.append(f"reality check: Hansen's SPA p = {spa_p:.3f} > {g.rc_alpha}{without}")
    return details, hold


def candidate_columns(matrix: np.ndarray) -> np.ndarray:
    """The columns of ``matrix`` that are distinct candidates for PBO: not flat (a
    variant that never trades, or a fixed carry, has Sharpe 0 in every split) and not an
    exact copy of an earlier column (a parameter the strategy ignores).  Padding a grid
    with such columns moved PBO where the padder wanted: one noise variant beside 15
    that never trade gave PBO 0.09 (the noise variant, best in sample whenever its
    in-sample Sharpe is positive, outranks 15 zeros out of sample half the time and
    ties them otherwise), where the noise alone is ~0.5."""
    m = np.asarray(matrix, dtype=np.float64)
    flat = stats.flat_columns(m)
    keep: list[int] = []
    for k in range(m.shape[1]):
        if not flat[k] and not any(np.array_equal(m[:, k], m[:, j]) for j in keep):
            keep.append(k)
    return np.array(keep, dtype=np.intp)


def judge_pbo(matrix: np.ndarray, g: GateSettings) -> tuple[dict[str, Any], list[str]]:
    """The overfitting gate over the sweep's aligned returns ((T, k), k >= 2):
    ``(details, hold reasons)``.

    PBO is computed over :func:`candidate_columns` (distinct variants that trade).  The
    gate passes only when PBO is **below** ``max_pbo``: PBO is the probability that the
    variant chosen in sample is overfit (ranks below the median out of sample), so at the
    default 0.5 a choice as likely as not to be overfit -- all-noise variants, PBO ~0.5
    -- holds (``<=`` let exactly 0.5 through).  NaN holds too.  With fewer than two
    distinct candidates there is no selection to judge (no figure, no reason)."""
    m = np.asarray(matrix, dtype=np.float64)
    cols = candidate_columns(m)
    left_out = int(m.shape[1] - cols.size)
    if cols.size < 2:
        return {"variants": int(cols.size), "left_out": left_out,
                "note": "fewer than 2 distinct variants that trade: no selection to judge"}, []
    if m.shape[0] < 2 * g.pbo_blocks:
        return {}, [f"overfitting: {m.shape[0]} aligned returns are too few for PBO over "
                    f"{g.pbo_blocks} blocks"]
    pbo = stats.probability_of_backtest_overfitting(m[:, cols], g.pbo_blocks)
    details = {"pbo": pbo.pbo, "p_loss": pbo.p_loss, "degradation": pbo.degradation,
               "blocks": pbo.n_splits, "splits": pbo.n_combinations,
               "variants": pbo.n_variants, "left_out": left_out}
    if not pbo.pbo < g.max_pbo:  # NaN holds
        extra = (f"; {left_out} flat or duplicate variants left out" if left_out else "")
        return details, [f"overfitting: PBO {pbo.pbo:.2f} >= {g.max_pbo} (the variant best "
                         f"in sample ranks below the median out of sample in "
                         f"{pbo.pbo:.0%} of {pbo.n_combinations} CSCV splits{extra})"]
    return details, []


@attrs.frozen
class BaseRun:
    """A backtest the caller already ran of the code under test: the config it ran
    (its own ``[plugins.lab]`` / ``[plugins.orchestrator]`` tables aside) and its result."""

    config: Config
    result: BacktestResult


def evaluate_gates(config: Config, *, strategies: dict[str, Strategy] | None = None,
                   family: str, executor: Executor | None = None,
                   progress: GateProgress | None = None,
                   variant: str | None = None, reuse: BaseRun | None = None) -> GateVerdict:
    """Run every gate on ``config`` (its strategies, or the injected ``strategies``) and
    store the verdict in the lab ledger (``[plugins.lab] dir``/lab.db).

    ``progress(stage, done, total)`` follows the long work (see :data:`GateProgress`).
    ``variant`` names injected strategies' code (e.g. an AI-written version id) so their
    backtests and sweep points never mix with another variant's under the same config;
    injected strategies without one get a fresh variant per call (no reuse).
    ``reuse``: the caller's own backtest of the same code (the orchestrator's proving run),
    taken as the base cost point when its config is exactly that point's (by canonical
    hash), so it is not run twice; run again otherwise.
    """
    say: GateProgress = progress or (lambda _stage, _done, _total: None)
    settings, folder, lab_ledger = open_lab(config)
    g = settings.gates
    own_executor = executor is None
    if executor is None:
        # Injected strategy objects may not pickle (AI-written, sandboxed): run in-process.
        executor = SerialExecutor() if strategies else make_executor(settings.executor)
    config_tag = canonical_hash(config)
    if variant is None:
        variant = f"injected-{time.time_ns()}" if strategies else ""
    tag = config_tag
    if variant:
        import hashlib

        tag = f"{config_tag}-{hashlib.sha256(variant.encode()).hexdigest()[:8]}"
    kill: list[str] = []
    hold: list[str] = []
    # The content of the files it reads: a verdict of other data is not this config's.
    # ... and the thresholds it was judged by (the config hash leaves [plugins.lab] out).
    details: dict[str, Any] = {"family": family, "variant": variant,
                               "inputs": input_fingerprint(config),
                               "judged_by": judging_fingerprint(settings)}
    # ... and the files the sweep's points name, checked again before the verdict is kept.
    inputs_at_start = input_fingerprint(config, settings.sweep.grid())

    def stage(name: str, total: int) -> Callable[[int, int], None]:
        say(name, 0, total)
        return lambda done, n: say(name, done, n)

    try:
        tasks = cost_tasks(config, settings, folder, strategies, tag)
        reused = None
        if reuse is not None and canonical_hash(reuse.config) == canonical_hash(
                apply_overrides(tasks[0].config, tasks[0].overrides)):
            reused = outcome_of(tasks[0].point_id, reuse.result)
            tasks = tasks[1:]
        costs = executor.map(run_point, tasks,
                             progress=stage("cost sensitivity backtests", len(tasks)))
        costs = [reused, *costs] if reused is not None else costs
        details["base_reused"] = reused is not None
        for c in costs:
            if c.error:
                raise ArgusError(f"gate backtest {c.point_id} failed: {c.error}")
        base = costs[0]
        details["costs"] = {c.point_id: {k: c.metrics.get(k) for k in
                                         ("sharpe", "total_return", "max_drawdown", "fees")}
                            for c in costs}
        details["cost_overrides"] = {t.point_id: t.overrides for t in tasks}
        # The dearest point, wherever the list puts it: judging the last one let
        # cost_multipliers = ["1", "0.5"] pass the gate at half the costs.
        dearest = max(range(len(g.cost_multipliers)), key=lambda i: g.cost_multipliers[i])
        worst = costs[dearest]
        worst_sharpe = gate_sharpe(worst)
        if not worst_sharpe >= g.min_sharpe_at_max_cost:  # NaN (a ruined run) fails too
            kill.append(f"cost sensitivity: annualised Sharpe {worst_sharpe:.2f}"
                        f" at {worst.point_id} is below {g.min_sharpe_at_max_cost}")
        n_plays = int(base.trade_pnls.size)
        details["n_plays"] = n_plays
        if n_plays < g.min_trades:
            hold.append(f"evidence: {n_plays} realised plays < {g.min_trades}")
        record_trial(lab_ledger, family, f"base:{tag}",
                     trial_sharpe(base.metrics, base.returns), int(base.returns.size),
                     source="gates")

        # Sweep (resumable) -> the variant set for walk-forward and the reality check.
        grid = settings.sweep.grid()
        if settings.sweep.params:
            notes: list[str] = []
            points = run_sweep(config, grid, ledger=lab_ledger, lab_dir=folder,
                               executor=executor, family=family, strategies=strategies,
                               progress=stage("sweep backtests", len(grid)), variant=variant,
                               engine=settings.sweep.engine, report=notes.append)
            details["sweep_engine"] = "; ".join(notes) or "every point already done"
            _ts, matrix, _ok = returns_matrix(points)
        else:
            matrix = base.returns[:, None]
        details["n_variants"] = int(matrix.shape[1]) if matrix.size else 0
        # The one annualisation rule (observations/year measured from the data), stated.
        obs_per_year = float(base.metrics.get("obs_per_year")
                             or observations_per_year(base.ts_ns))
        details["obs_per_year"] = obs_per_year
        details["annualisation"] = annualisation_note(obs_per_year)

        # Walk-forward stability.
        wf_cfg = settings.walkforward
        if matrix.shape[0] >= wf_cfg.train_bars + wf_cfg.test_bars or \
                wf_cfg.mode == "purged_kfold":
            splits = walk_forward_splits(matrix.shape[0], mode=wf_cfg.mode,
                                         train_bars=wf_cfg.train_bars, test_bars=wf_cfg.test_bars,
                                         n_folds=wf_cfg.n_folds,
                                         label_horizon=wf_cfg.label_horizon,
                                         embargo=wf_cfg.embargo)
            wf = walk_forward(matrix, splits, executor=executor,
                              progress=stage("walk-forward folds", len(splits)),
                              obs_per_year=obs_per_year)
            details["walkforward"] = wf.to_dict()
            store_summary(lab_ledger, "lab_walkforward", family, wf.to_dict())
            if not wf.positive_share >= wf_cfg.min_positive_share:  # NaN fails
                kill.append(f"walk-forward: only {wf.positive_share:.0%} of "
                            f"{len(wf.folds)} folds made money out of sample "
                            f"(need {wf_cfg.min_positive_share:.0%})")
            if not wf.oos_sharpe >= wf_cfg.min_oos_sharpe:  # NaN fails
                kill.append(f"walk-forward: stitched out-of-sample Sharpe {wf.oos_sharpe:.3f} "
                            f"per bar ({wf.oos_sharpe_annualised:.2f} annualised) < "
                            f"{wf_cfg.min_oos_sharpe} per bar")
        else:
            hold.append(f"walk-forward: {matrix.shape[0]} bars < train_bars + test_bars")

        # Bootstrap of realised plays.
        if n_plays >= 2:
            spec = settings.bootstrap.spec(float(config.run.starting_cash))
            btasks = batch_tasks(base.trade_pnls, spec, settings.bootstrap.batches)
            parts = executor.map(bootstrap_batch, btasks,
                                 progress=stage("bootstrap batches", len(btasks)))
            summary = summarise(BootstrapPaths.concat(parts), spec,
                                spec.n_trades or n_plays,
                                min_survival=settings.bootstrap.min_survival,
                                max_ruin=settings.bootstrap.max_ruin)
            details["bootstrap"] = summary.to_dict()
            store_summary(lab_ledger, "lab_bootstrap", family, summary.to_dict())
            if summary.fragile:
                kill.append(f"bootstrap: fragile: {summary.reason}")
        else:
            hold.append("bootstrap: fewer than 2 realised plays to resample")

        # Deflated Sharpe over every trial of the family: the registry first made whole
        # from the journal beside the config (a deleted lab folder reset the count).
        journal = journal_path(config)
        check = sync_trials(lab_ledger, family, journal)
        n_trials, var_sr = trial_stats(lab_ledger, family)
        lost = max(check.earlier_trials - n_trials, 0)
        details["trial_registry"] = {"n_trials": n_trials, "restored": check.restored,
                                     "earlier_trials": check.earlier_trials,
                                     "missing": lost}
        if lost:
            hold.append(f"trial registry: an earlier verdict of {family!r} deflated by "
                        f"{check.earlier_trials} trials, the registry now counts {n_trials} "
                        f"and the journal ({check.journal}) cannot restore the other {lost} "
                        f"(lab folder deleted or moved?): deflating by "
                        f"{check.earlier_trials}, but the variance of the lost trials' "
                        f"Sharpe ratios is unknown")
            n_trials = check.earlier_trials
        dsr_details, dsr_kill, dsr_hold = judge_dsr(base.returns, n_trials, var_sr, g)
        if dsr_details:
            details["dsr"] = dsr_details
        kill.extend(dsr_kill)
        hold.extend(dsr_hold)

        # Reality check / SPA of the variant set against cash (zero excess return).
        if matrix.shape[0] >= 10:
            stage("reality check (White RC, Hansen SPA)", 1)
        rc_details, rc_hold = judge_reality_check(matrix, g, config.argus.seed)
        if rc_details:
            say("reality check (White RC, Hansen SPA)", 1, 1)
            details["reality_check"] = rc_details
        hold.extend(rc_hold)

        # Probability of backtest overfitting of the sweep's choice (no sweep: no choice).
        if matrix.ndim == 2 and matrix.shape[1] >= 2:
            if matrix.shape[0] >= 2 * g.pbo_blocks:
                stage("overfitting (PBO, CSCV)", 1)
            pbo_details, pbo_hold = judge_pbo(matrix, g)
            if matrix.shape[0] >= 2 * g.pbo_blocks:
                say("overfitting (PBO, CSCV)", 1, 1)
            if pbo_details:
                details["pbo"] = pbo_details
            hold.extend(pbo_hold)

        # Regime-subset stress: the regime signal the base run itself recorded, else the
        # vol regime classified from the instrument's bars in a replay of the venue.
        instrument = g.regime_instrument
        if instrument:
            stage("regime stress", 1)
            label_ts, labels = recorded_regime_labels(Path(tasks[0].run_dir), g.regime_signal,
                                                      instrument)
            source = f"signal {g.regime_signal!r} recorded by the run"
            if label_ts.size == 0:
                label_ts, labels = regime_labels(config, instrument, settings)
                source = "vol regime classified from a replay of the bars"
            per = regime_stress(base.returns, base.ts_ns, label_ts, labels, g.regime_min_bars,
                                obs_per_year)
            say("regime stress", 1, 1)
            details["regimes"] = per
            details["regime_source"] = source
            for name, r in per.items():
                if not r["max_drawdown"] <= g.max_regime_drawdown:  # NaN fails
                    kill.append(f"regime stress: {name} regime drawdown {r['max_drawdown']:.1%} "
                                f"> {g.max_regime_drawdown:.0%}")
                if not r["sharpe"] >= g.min_regime_sharpe:  # NaN fails
                    kill.append(f"regime stress: {name} regime annualised Sharpe "
                                f"{r['sharpe']:.2f} < {g.min_regime_sharpe}")
            if not per:
                hold.append(f"regime stress: no regime labels for {instrument}")
            elif len(per) < 2:
                # One regime is no stress test: a record seen only in a calm market says
                # nothing about a stressed one (missing evidence: hold, not kill).
                hold.append(f"regime stress: only the {next(iter(per))} regime has "
                            f"{g.regime_min_bars} or more bars: the record was not seen "
                            f"in another regime")
        else:
            hold.append("regime stress: set [plugins.lab.gates] regime_instrument to run it")
    finally:
        if own_executor:
            executor.close()
    _refuse_if_inputs_changed(config, settings, inputs_at_start, lab_ledger)
    verdict = "kill" if kill else ("hold" if hold else "deploy")
    reasons = [f"kill: {r}" for r in kill] + [f"hold: {r}" for r in hold]
    result = GateVerdict(verdict, reasons, details)
    with lab_ledger.transaction():
        lab_ledger.insert("lab_gate_verdicts", {
            "family": family, "ts_ns": time.time_ns(), "verdict": verdict,
            "reasons_json": json.dumps(reasons),
            "details_json": json.dumps(details, sort_keys=True, default=_json_default),
            "config_hash": config_tag})
    lab_ledger.close()
    journal_verdict(journal, family, n_trials, verdict)
    return result


def _refuse_if_inputs_changed(config: Config, settings: LabSettings, at_start: str,
                              lab_ledger: Ledger) -> None:
    """Refuse to keep a verdict when a file the config or its sweep names changed while
    the gates ran: the base backtest, the sweep's points and the regime replay each read
    the files at their own time, so an edit between them gave a verdict mixing two data
    sets, stored under the fingerprint of the first."""
    if input_fingerprint(config, settings.sweep.grid()) == at_start:
        return
    lab_ledger.close()
    raise DataError(f"{config.path or '<config>'}: a data file the config names changed "
                    f"while the gates ran; no verdict is stored: run the gates again on "
                    f"data that stays as it is")


def canonical_hash(config: Config) -> str:
    """Short hash of a config (without [plugins.lab]) identifying gate runs."""
    import hashlib

    return hashlib.sha256(canonical_json(config.without_plugins("lab", "orchestrator"))
                          .encode()).hexdigest()[:12]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def evaluate_config(config: Config, **kw: Any) -> GateVerdict:
    """:func:`evaluate_gates` with the family taken from ``[plugins.lab] family`` / the strategy."""
    return evaluate_gates(config, family=family_of(config, lab_settings(config)), **kw)
