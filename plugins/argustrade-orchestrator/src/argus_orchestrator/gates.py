"""Proving a candidate: backtest it beside the incumbent, count it as a trial, gate it.

Both run through the core's :func:`argus_core.backtest.run_backtest` (the real
loop, risk, sizing and paper broker) on the proving window
(``[plugins.orchestrator] backtest`` overrides).  Every variant, accepted or not, is a
trial of the slot's family in the lab's trial registry, so the deflated Sharpe
ratio deflates by everything the orchestrator ever tried.  When the robustness
lab's deploy gates (``argus_lab.gates.evaluate_gates``) are installed
their verdict is required as well.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from argus_lab.stats import deflated_sharpe_ratio, return_moments
from argus_lab.trials import open_lab_ledger, record_trial, trial_stats

from argus_core import (
    BacktestResult,
    CancelIntent,
    Config,
    ConfigError,
    Fill,
    Intent,
    MarketEvent,
    Strategy,
    StrategyContext,
    apply_overrides,
    run_backtest,
)
from argus_orchestrator.config import OrchestratorSettings


@attrs.frozen
class GateOutcome:
    """``deploy`` | ``hold`` | ``kill``, every reason, and the figures behind them."""

    verdict: str
    reasons: tuple[str, ...]
    details: dict[str, Any]


def _summary(result: BacktestResult) -> dict[str, Any]:
    keys = ("total_return", "sharpe", "max_drawdown", "win_rate", "fees", "n_trades",
            "turnover", "expectancy")
    out = {k: result.metrics.get(k) for k in keys}
    out["trading_state"] = result.summary.trading_state
    return out


def _sharpe_per_obs(returns: np.ndarray) -> float:
    if len(returns) < 2 or float(np.std(returns, ddof=1)) == 0.0:
        return 0.0
    return float(np.mean(returns) / np.std(returns, ddof=1))


class IntentCounter(Strategy):
    """Counts the intents a strategy emits, so the gates can tell "it never wanted to trade"
    from "it wanted to, but the sizer or the risk checks turned every intent down"."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "")  # type: ignore[misc]
        self.intents = 0  # orders asked for (cancels are not counted: they trade nothing)
        self.unsized = 0  # orders without a quantity or a forecast
        self.cancels = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> list[Intent | CancelIntent]:
        """Run the strategy and count what it asked for."""
        return self._counted(self.inner.on_event(event, ctx))

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Intent | CancelIntent]:
        """The strategy hears its fill; what it asks for is counted too."""
        return self._counted(self.inner.on_fill(fill, ctx))

    def _counted(self, intents: Sequence[Intent | CancelIntent]) -> list[Intent | CancelIntent]:
        out = list(intents)
        for intent in out:
            if isinstance(intent, Intent):
                self.intents += 1
                self.unsized += intent.quantity is None and intent.forecast is None
            else:
                self.cancels += 1
        return out

    def get_state(self) -> dict[str, Any]:
        """The strategy's state."""
        return self.inner.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Hand ``state`` to the strategy."""
        self.inner.set_state(state)


def lab_folder(work_dir: Path) -> Path:
    """The orchestrator's lab folder (one per run, shared by every cycle), so the trial
    registry behind the deflated Sharpe sees every variant the run ever tried."""
    return Path(work_dir).resolve().parent / "lab"


def proving_config(config: Config, settings: OrchestratorSettings, work_dir: Path) -> Config:
    """The config the lab's gates judge on: the proving window (``[plugins.orchestrator] backtest``:
    history before the live loop's data, so nothing is judged on data the loop has not
    reached yet) with the lab's files in the run's orchestrator folder."""
    return apply_overrides(config, {**settings.backtest,
                                    "plugins.lab.dir": str(lab_folder(work_dir))})


def load_prior_trials(config: Config, settings: OrchestratorSettings, lab_path: Path) -> int:
    """Record ``[plugins.orchestrator] prior_trials`` (variants of the family tried before this run,
    with their per-observation Sharpe ratios on the proving window) in the lab's trial
    registry at ``lab_path``; returns how many.  Rows ``recorded_by: "orchestrator"`` (the
    seed and answers the orchestrator records itself) are skipped, so nothing counts twice.

    The file must be about this family and this proving window: a Sharpe ratio measured on
    other data says nothing about the selection made on this one.
    """
    if not settings.prior_trials:
        return 0
    where = f"{config.path or '<config>'}: orchestrator.prior_trials"
    path = config.resolve_path(settings.prior_trials)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("trials"), list):
        raise ConfigError(f"{where}: {path} needs a 'trials' list (see "
                          f"examples/orchestrator/prior_trials.py)")
    if data.get("family") != settings.trial_family:
        raise ConfigError(f"{where}: {path} holds trials of family {data.get('family')!r}, "
                          f"not {settings.trial_family!r}")
    if data.get("window") != dict(settings.backtest):
        raise ConfigError(f"{where}: {path} was measured on the window {data.get('window')}, "
                          f"but the proving window ([plugins.orchestrator.backtest]) is "
                          f"{dict(settings.backtest)}; re-run the variants on it")
    rows = []
    for i, row in enumerate(data["trials"]):
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: {path}: trials[{i}] is not an object")
        if row.get("recorded_by") == "orchestrator":
            continue
        try:
            vid, sr, n = str(row["variant_id"]), float(row["sharpe_per_obs"]), int(row["n_obs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {path}: trials[{i}] needs variant_id, "
                              f"sharpe_per_obs and n_obs ({exc!r})") from None
        if not vid or not math.isfinite(sr) or n < 2:
            raise ConfigError(f"{where}: {path}: trials[{i}] ({vid!r}) has Sharpe {sr!r} "
                              f"over {n} observations")
        rows.append((f"prior:{vid}", sr, n))
    with open_lab_ledger(lab_path) as lab:
        for vid, sr, n in rows:
            record_trial(lab, settings.trial_family, vid, sr, n, source="prior")
    return len(rows)


@attrs.frozen
class ProvenRun:
    """One version's backtest on the proving window, kept for later cycles."""

    result: BacktestResult
    intents: int
    unsized: int
    failure: str | None
    cancels: int = 0


def prove(config: Config, settings: OrchestratorSettings, *, candidate_id: str,
          candidate: Callable[[], Strategy], incumbent_id: str,
          incumbent: Callable[[], Strategy], work_dir: Path,
          proven: dict[tuple[str, str], ProvenRun] | None = None) -> GateOutcome:
    """Backtest candidate and incumbent on the proving window and apply the gates.

    ``proven`` (the cycle runner's, one per run) keeps each version's backtest by version id
    and window: the incumbent of a later cycle was backtested on the same window when it
    was a candidate (or the previous incumbent), and a replay is deterministic, so it is
    not run again.
    """
    slot = settings.slot
    window = json.dumps(settings.backtest, sort_keys=True, default=str)
    proven = {} if proven is None else proven
    runs: dict[str, BacktestResult] = {}
    failures: dict[str, str] = {}
    counters: dict[str, ProvenRun] = {}
    for name, make, version_id in (("incumbent", incumbent, incumbent_id),
                                   ("candidate", candidate, candidate_id)):
        earlier = proven.get((version_id, window))
        if earlier is None:
            strategy = make()
            counter = IntentCounter(strategy)
            try:
                result = run_backtest(config, work_dir / name, overrides=settings.backtest,
                                      strategies={slot: counter})
            finally:
                close = getattr(strategy, "close", None)
                if callable(close):
                    close()
            failure = getattr(strategy, "failure", None)
            earlier = ProvenRun(result, counter.intents, counter.unsized,
                                None if failure is None else str(failure), counter.cancels)
            proven[(version_id, window)] = earlier
        runs[name], counters[name] = earlier.result, earlier
        if earlier.failure is not None:
            failures[name] = earlier.failure
    inc, cand = runs["incumbent"], runs["candidate"]
    details: dict[str, Any] = {"incumbent": _summary(inc), "candidate": _summary(cand),
                               "window": settings.backtest}
    for name, proven_run in counters.items():
        details[name].update(intents=proven_run.intents, unsized_intents=proven_run.unsized,
                             cancels=proven_run.cancels, orders=runs[name].summary.orders)
    kills: list[str] = []
    holds: list[str] = []
    if "candidate" in failures:
        kills.append(f"candidate failed in its sandbox during the backtest: "
                     f"{failures['candidate']}")
    elif cand.summary.trading_state != "active":
        kills.append(f"candidate ended the backtest in state {cand.summary.trading_state}")
    n_c, n_i = int(cand.metrics.get("n_trades", 0)), int(inc.metrics.get("n_trades", 0))
    if n_c > settings.max_trades or n_c > 3 * n_i + 20:
        kills.append(f"overtrading: {n_c} round trips against the incumbent's {n_i} "
                     f"(limit {min(settings.max_trades, 3 * n_i + 20)})")
    if n_c < settings.min_trades:
        why = ""
        cc = counters["candidate"]
        if cc.intents and cand.summary.orders == 0:
            # It wanted to trade; nothing reached the broker.  Say why instead of
            # "too few trades", which reads as "it chose not to".
            why = (f" (it emitted {cc.intents} intents but none became an order"
                   + (f"; {cc.unsized} had neither a quantity nor a forecast, which the "
                      f"{config.run.sizer!r} sizer sizes to zero" if cc.unsized else "")
                   + ")")
        holds.append(f"too few trades to judge: {n_c} < {settings.min_trades}{why}")
    sr_c, sr_i = float(cand.metrics.get("sharpe", 0.0)), float(inc.metrics.get("sharpe", 0.0))
    if not sr_c > sr_i:
        holds.append(f"Sharpe {sr_c:.3f} does not beat the incumbent's {sr_i:.3f}")
    ret_c, ret_i = float(cand.metrics["total_return"]), float(inc.metrics["total_return"])
    if not ret_c > ret_i:
        holds.append(f"return {ret_c:.2%} does not beat the incumbent's {ret_i:.2%}")
    dd_c, dd_i = float(cand.metrics["max_drawdown"]), float(inc.metrics["max_drawdown"])
    if dd_c > dd_i * 1.25 + 0.02:
        kills.append(f"max drawdown {dd_c:.2%} exceeds the incumbent's {dd_i:.2%} by more "
                     f"than the allowance")

    # Every variant counts as a trial of the family, exactly once (the deflated Sharpe sees
    # them all).  The lab's gates record the candidate they judge as "base:<config hash>",
    # the same hash for every candidate (they differ in code, not config), so that row is
    # renamed to the candidate's version id afterwards; recording it here as well would
    # count it twice and deflate it against its own copy.
    family = settings.trial_family
    lab_path = lab_folder(work_dir) / "lab.db"
    with open_lab_ledger(lab_path) as lab:
        record_trial(lab, family, incumbent_id, _sharpe_per_obs(inc.returns),
                     len(inc.returns), source="orchestrator")
    lab_verdict = None
    if settings.lab_gates and kills:
        # Already refused on evidence; the lab's gates would only spend minutes agreeing.
        details["lab_gates"] = {"verdict": "skipped", "reasons": ["the relative gates "
                                                                   "already kill it"]}
    elif settings.lab_gates:
        lab_verdict = _lab_gates(proving_config(config, settings, work_dir), settings, slot,
                                 candidate, candidate_id,
                                 base=(apply_overrides(config, settings.backtest), cand))
    with open_lab_ledger(lab_path) as lab:
        with lab.transaction() as conn:
            conn.execute("delete from lab_trials where family = ? and variant_id like "
                         "'base:%'", (family,))
        record_trial(lab, family, candidate_id, _sharpe_per_obs(cand.returns),
                     len(cand.returns), source="orchestrator")
        n_trials, var_sr = trial_stats(lab, family)
    if len(cand.returns) > 3:
        m = return_moments(cand.returns)
        try:
            dsr = deflated_sharpe_ratio(_sharpe_per_obs(cand.returns), len(cand.returns),
                                        m.skew, m.kurtosis, max(n_trials, 1), var_sr)
        except Exception:  # degenerate moments: report, do not gate on it
            dsr = float("nan")
        details["deflated_sharpe"] = None if math.isnan(dsr) else dsr
    details["trials"] = {"family": family, "n": n_trials, "var_sr": var_sr}
    if lab_verdict is not None:
        details["lab_gates"] = {"verdict": lab_verdict.verdict,
                                "reasons": list(lab_verdict.reasons),
                                **{k: lab_verdict.details[k] for k in
                                   ("dsr", "bootstrap", "walkforward", "reality_check",
                                    "costs", "n_plays", "base_reused")
                                   if k in lab_verdict.details}}
        if lab_verdict.verdict == "kill":
            kills.extend(f"lab: {r}" for r in lab_verdict.reasons)
        elif lab_verdict.verdict == "hold":
            holds.extend(f"lab: {r}" for r in lab_verdict.reasons)
    verdict = "kill" if kills else ("hold" if holds else "deploy")
    return GateOutcome(verdict, tuple(kills + holds), details)


def _lab_gates(config: Config, settings: OrchestratorSettings, slot: str,
               candidate: Callable[[], Strategy], candidate_id: str,
               base: tuple[Config, BacktestResult]) -> GateOutcome | None:
    """The robustness lab's deploy gates on ``config`` (the proving window), when that
    module is installed; the version id keeps this candidate's backtests and sweep points
    apart from every other variant's (and lets an interrupted evaluation resume).
    ``base``: the candidate's proving backtest, which the lab takes as its base cost point
    when the configs agree (one backtest less per cycle)."""
    try:
        gates = importlib.import_module("argus_lab.gates")
    except ImportError:
        return None
    strategy = candidate()
    try:
        v = gates.evaluate_gates(config, strategies={slot: strategy},
                                 family=settings.trial_family, variant=candidate_id,
                                 reuse=gates.BaseRun(*base))
    finally:
        close = getattr(strategy, "close", None)
        if callable(close):
            close()
    return GateOutcome(v.verdict, tuple(v.reasons), dict(getattr(v, "details", {}) or {}))
