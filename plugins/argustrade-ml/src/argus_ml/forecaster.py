"""The ``ml`` forecaster: a registry model as a core :class:`argus_core.Forecaster`.

Strategies find it as ``ctx.market.forecasters["ml"]`` (scanners: ``market.forecasters``)
and ask ``forecast(instrument_id, market, ts_ns)``:

* for the underlying (a spot instrument with bars): ``p_win`` = the model's P(close
  ``h`` bars after the newest bar is higher), ``h`` = the model's label horizon;
* for a binary up/down contract (an instrument whose ``meta`` names ``underlying``,
  ``outcome`` "up"/"down", ``opens_ns`` and ``window_bars``, as the ``updown_replay``
  venue lists them): P(up) or 1 - P(up) -- but only at the window's opening (its
  reference close is the newest bar); later in a window the model has no view (None).

Point in time: the features come from the bars the market state holds, fed to a
:class:`~argus_ml.features.FeatureEngine` as they appear (``market.bars`` keeps only the
newest bar, so the forecaster must be asked on every bar of the underlying -- the
strategies do; a bar it is never shown is a gap in its history).  It never reads a bar
stamped after ``ts_ns``.

In sample.  No forecast is given at a bar before the model's training labels ended
(``meta["trained_on"]``; for an older model, the ``h``-th bar after its CV report's last
test row, counted as the bars arrive -- a gap in the bars makes clock time wrong):
the model has seen that bar's outcome, or later data, so a backtest there would score it
on its own training data.  Counted in ``stats["in_sample"]`` and said once; ``[plugins.ml]
allow_in_sample = true`` gives those forecasts (logged, and the backtest report counts the
bets placed on them as in sample).

Status gate.  A model's registry status decides who may trade on it: ``shadow`` --
forecasts are computed, recorded (counted, logged at DEBUG) and drift-monitored, never
traded; ``paper`` -- only in ``replay`` and ``paper`` runs; ``live`` -- in any mode.  The
forecaster cannot see the run's mode, so the gate is :meth:`MLForecaster.allows`, which
strategies call through :func:`gated_forecast` with ``ctx.mode``; a shadow model's
forecasts also carry ``confidence`` 0, so a confidence-shrunk sizer stakes nothing on
them either way.

Confidence.  For a paper/live model, ``confidence`` is the drift monitor's health: 1
while the online Brier EMA is at or below the model's out-of-fold Brier, falling
linearly to 0 at the alarm level (OOF + ``brier_margin``).  Sizers shrink binary Kelly
by it.

Drift.  Every forecast of the underlying is scored when its window ends (Brier EMA) and
every feature row goes into the PSI window, checked against each feature's threshold
calibrated at training time (the registry row; a model without one gets the fixed
``psi_limit``, said in a log line).  An alarm closes the gate for the rest of the run
(:meth:`allows` says no, confidence 0) and is written as an ``ml_drift`` risk event in the
run's ledger.  In a ``paper`` or ``live`` run it also demotes the model to shadow in the
registry (event row + risk event there); in a ``replay`` run -- or outside any run, where
the mode is unknown -- it does not, unless ``[plugins.ml] demote_in_replay = true``: a
backtest on old data must not demote a model that trades live.  The mode comes from the
run (the plugin's ``on_startup`` hook) or from the strategy's context
(:func:`find_forecaster`, :func:`gated_forecast`, :meth:`MLForecaster.bind_mode`).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

import numpy as np

from argus_core import (
    ConfigError,
    DataError,
    Forecast,
    Forecaster,
    Ledger,
    MarketState,
    StrategyContext,
)
from argus_ml.config import MLSettings
from argus_ml.drift import DriftMonitor
from argus_ml.features import FeatureEngine, FeatureRegistry
from argus_ml.modelfile import ProbabilityModel
from argus_ml.registry import ModelRegistry, training_last_row_ns

#: 1973-03-03 in nanoseconds: a bar clock at or after it with a training end before it
#: means the model's times are in seconds, milliseconds or microseconds.
NS_1973 = 10**17

log = logging.getLogger(__name__)

#: The run modes each registry status may trade in.
MODES_BY_STATUS: dict[str, tuple[str, ...]] = {
    "shadow": (), "paper": ("replay", "paper"), "live": ("replay", "paper", "live")}

#: PSI window of a model whose thresholds were never calibrated (and the training default).
DEFAULT_PSI_WINDOW = 500


class RunInfo(NamedTuple):
    """The run a forecaster serves: its mode and its ledger (where drift alarms go)."""

    mode: str
    ledger: Ledger | None


#: Set by the plugin's ``on_startup`` for the run's task (a context variable: each run's
#: asyncio task has its own, so two runs in one process never see each other's).
CURRENT_RUN: ContextVar[RunInfo | None] = ContextVar("argus_ml_current_run", default=None)


class _Track:
    """Per underlying: its feature engine, bar count, unsettled forecasts and the newest
    forecast ``(bar ts_ns, P(up))``."""

    def __init__(self, engine: FeatureEngine) -> None:
        self.engine = engine
        self.bar_index = 0
        self.pending: deque[tuple[int, float, float]] = deque()  # (due bar, P, close)
        self.latest: tuple[int, float | None] = (-1, None)
        #: an older model (no ``trained_on``): bars seen after its last training row, and
        #: the close of the ``h``-th of them, when its last training label became known
        self.bars_after_training = 0
        self.training_label_end_ns: int | None = None


class MLForecaster(Forecaster):
    """A registry model's P(up) for strategies, scanners and sizers (module docstring:
    what it answers, the status gate, confidence and drift)."""

    name = "ml"

    def __init__(self, settings: MLSettings | None,
                 registry: ModelRegistry | None = None) -> None:
        self.s = settings or MLSettings()
        self.registry = registry
        self.model: ProbabilityModel | None = None
        self.model_id = ""
        self.status = "shadow"
        self.horizon = 1
        self.monitor: DriftMonitor | None = None
        self.mode: str | None = None  # the run's mode when a strategy told us (bind_mode)
        self.tracks: dict[str, _Track] = {}
        self.stats = {"forecasts": 0, "shadow_forecasts": 0, "outcomes": 0}
        self._refused: set[str] = set()  # underlyings a refusal was logged for
        #: when the model's last training label became known: a bar before it is in
        #: sample (None: the model does not record it)
        self.trained_until_ns: int | None = None
        #: an older model's last training row (its CV report's last test row): its
        #: training labels end ``horizon`` bars later, counted per underlying
        self.trained_last_row_ns: int | None = None
        self._clock_checked = False
        self._said_in_sample = False

    # -- loading -----------------------------------------------------------------------
    def load(self) -> ProbabilityModel:
        """Load the model (once): ``[plugins.ml] model_id``, else the newest model whose
        status is paper or live.  ``ConfigError`` names the file and the remedy."""
        if self.model is not None:
            return self.model
        if self.registry is None:
            from argus_ml.registry import open_registry

            if self.s.registry is None:
                raise ConfigError("the ml forecaster needs [plugins.ml] registry = the model "
                                  "registry file (argus ml train --registry FILE)")
            if not self.s.registry.is_file():
                # opening it created an empty registry (and any missing folders) and then
                # said only "no model with status paper or live"
                raise ConfigError(f"[plugins.ml] registry = {self.s.registry}: no such file "
                                  "(`argus ml train --registry FILE` writes one)")
            self.registry = ModelRegistry(open_registry(self.s.registry))
        if self.s.model_id is not None:
            try:
                self.registry.get(self.s.model_id)
            except DataError as exc:
                raise ConfigError(f"[plugins.ml] model_id = {self.s.model_id!r}: {exc}; "
                                  "`argus ml models` lists them") from None
        model_id = self.s.model_id or next(iter(self.registry.usable("paper")), None)
        if model_id is None:
            raise ConfigError(f"{self.registry.ledger.path}: no model with status paper or "
                              "live; promote one with `argus ml promote`, or name a shadow "
                              "model with [plugins.ml] model_id to record its forecasts")
        model = self.registry.load(model_id)
        try:  # refuse now, not on the first bar: features this version does not define
            FeatureRegistry.default().select(list(model.features))
        except DataError as exc:
            raise ConfigError(f"model {model_id} needs features this version of argus-ml "
                              f"does not define: {exc}; retrain it with `argus ml train`"
                              ) from None
        self.model, self.model_id = model, model_id
        self.status = str(self.registry.get(model_id)["status"])
        self.horizon = int(model.meta.get("label", {}).get("horizon_bars", 1))
        self._training_end(model_id, model)
        window, thresholds = self._psi_thresholds(model_id)
        self.monitor = DriftMonitor(
            model_id, self.registry, baseline_brier=float(model.meta.get("oof_brier", 0.25)),
            reference=model.meta.get("reference", {}), keys=model.features,
            alpha=self.s.brier_ema_alpha, margin=self.s.brier_margin,
            psi_limit=self.s.psi_limit, min_obs=self.s.drift_min_obs, window=window,
            thresholds=thresholds, consecutive=self.s.psi_consecutive)
        self._sync_monitor()
        if self.status == "shadow":
            log.info("model %s is shadow: its forecasts are recorded and monitored, "
                     "never traded", model_id)
        return model

    def _training_end(self, model_id: str, model: ProbabilityModel) -> None:
        """Set when the model's training labels ended: its ``trained_on``, or for an older
        model its CV report's last test row (the end is then counted in bars as they come:
        ``last row + h x bar_seconds`` fell short across a gap); a WARNING when neither."""
        trained = model.meta.get("trained_on")
        if isinstance(trained, dict) and "label_end_ts_ns" in trained:
            self.trained_until_ns = int(trained["label_end_ts_ns"])
            return
        read = getattr(self.registry, "report", None)
        self.trained_last_row_ns = training_last_row_ns(read(model_id) if callable(read)
                                                        else None)
        if self.trained_last_row_ns is None:
            log.warning("model %s does not record the period it was trained on: a replay "
                        "cannot be checked for forecasts on its own training data", model_id)

    def _check_clock(self, bar_ts_ns: int) -> None:
        """Refuse a training end in another clock unit than the bars (once, at the first
        bar): seconds against nanoseconds made every bar look out of sample."""
        if self._clock_checked:
            return
        self._clock_checked = True
        end = self.trained_until_ns if self.trained_until_ns is not None \
            else self.trained_last_row_ns
        if end is not None and end < NS_1973 <= bar_ts_ns:
            raise DataError(f"model {self.model_id}: its training ended at {end}, before 1973 "
                            f"in nanoseconds, but the bars are at {bar_ts_ns} ns: its "
                            "trained_on (or CV report) is in seconds or milliseconds, not "
                            "nanoseconds; retrain it with `argus ml train`")

    def in_sample(self, bar_ts_ns: int, underlying: str | None = None) -> bool:
        """Whether a forecast at the bar closing at ``bar_ts_ns`` (of ``underlying``) would
        use a model fitted on that bar's outcome (or on later data): before its training
        labels ended.  For an older model that end is the ``h``-th bar of ``underlying``
        after its last training row; until it is seen, every bar is in sample (a replay
        starting after the last row withholds its first ``h - 1`` bars: conservative)."""
        if self.trained_until_ns is not None:
            return bar_ts_ns < self.trained_until_ns
        if self.trained_last_row_ns is None:
            return False
        track = self.tracks.get(underlying) if underlying is not None else None
        end = track.training_label_end_ns if track is not None else None
        return end is None or bar_ts_ns < end

    def _count_training_end(self, track: _Track, bar_ts_ns: int) -> None:
        """An older model: count the bars after its last training row up to ``h``."""
        last = self.trained_last_row_ns
        if last is None or track.training_label_end_ns is not None or bar_ts_ns <= last:
            return
        track.bars_after_training += 1
        if track.bars_after_training >= self.horizon:
            track.training_label_end_ns = bar_ts_ns

    def _say_in_sample(self, bar_ts_ns: int) -> None:
        """Log once per forecaster that forecasts in sample were withheld (or given)."""
        if self._said_in_sample:
            return
        self._said_in_sample = True
        end = self.trained_until_ns if self.trained_until_ns is not None else \
            f"the {self.horizon}th bar after {self.trained_last_row_ns}"
        if self.s.allow_in_sample:
            log.warning("model %s: forecasts in sample (bar %d is before its training "
                        "labels ended at %s) are given because allow_in_sample = true: "
                        "bets on them score the model on its own training data",
                        self.model_id, bar_ts_ns, end)
        else:
            log.warning("model %s: no forecast at bar %d or any bar before %s, when its "
                        "training labels ended (in sample: a backtest there would score the "
                        "model on its own training data; counted in stats['in_sample']); "
                        "replay later bars, or set [plugins.ml] allow_in_sample = true",
                        self.model_id, bar_ts_ns, end)

    def _psi_thresholds(self, model_id: str) -> tuple[int, dict[str, float] | None]:
        """The PSI window and each feature's threshold from the model's registry row."""
        assert self.registry is not None
        calibration = self.registry.drift_calibration(model_id)
        if calibration is None:
            window = self.s.psi_window or DEFAULT_PSI_WINDOW
            log.warning("model %s has no calibrated PSI thresholds (registered before them, "
                        "or trained on fewer than two %d-row windows): its drift monitor "
                        "uses the fixed limit psi_limit = %s for every feature",
                        model_id, window, self.s.psi_limit)
            return window, None
        window = int(calibration["window"])
        if self.s.psi_window is not None and self.s.psi_window != window:
            raise ConfigError(
                f"[plugins.ml] psi_window = {self.s.psi_window}, but model {model_id}'s PSI "
                f"thresholds were calibrated on {window}-row windows; remove psi_window, or "
                f"retrain with `argus ml train --drift-window {self.s.psi_window}`")
        return window, {k: float(v["threshold"])
                        for k, v in calibration.get("features", {}).items()}

    # -- the run's mode --------------------------------------------------------------------
    def bind_mode(self, mode: str) -> None:
        """Tell the forecaster the run's mode (strategies do, from ``ctx.mode``): a drift
        alarm demotes the registry's model only in ``paper`` and ``live`` runs (and in
        ``replay`` with ``demote_in_replay``)."""
        self.mode = mode
        self._sync_monitor()

    @property
    def run_mode(self) -> str | None:
        """The run's mode: bound by a strategy, else the run's own, else None (unknown)."""
        run = CURRENT_RUN.get()
        return self.mode or (run.mode if run is not None else None)

    @property
    def demotes_on_drift(self) -> bool:
        """Whether a drift alarm may demote the model in the registry in this run."""
        return self.run_mode in ("paper", "live") or self.s.demote_in_replay

    def _sync_monitor(self) -> None:
        if self.monitor is not None:
            run = CURRENT_RUN.get()
            self.monitor.demote = self.demotes_on_drift
            self.monitor.run_ledger = run.ledger if run is not None else None

    # -- the gate ------------------------------------------------------------------------
    def allows(self, mode: str) -> bool:
        """Whether a strategy in a run of ``mode`` may trade on this model's forecasts."""
        self.load()
        tripped = self.monitor is not None and self.monitor.tripped
        return not tripped and mode in MODES_BY_STATUS.get(self.status, ())

    @property
    def confidence(self) -> float:
        """0 for a shadow (or drift-demoted) model, else the drift monitor's health."""
        if self.status == "shadow" or self.monitor is None or self.monitor.tripped:
            return 0.0
        return self.monitor.brier.health

    # -- forecasts -----------------------------------------------------------------------
    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        """P(up) of the underlying's next ``h`` bars, or of a binary window at its opening
        (module docstring); None without a view."""
        self.load()
        inst = market.instruments.get(instrument_id)
        meta: Mapping[str, Any] = inst.meta if inst is not None else {}
        underlying = str(meta.get("underlying", instrument_id))
        bar_ts, p_up = self._observe(underlying, market, ts_ns)
        if p_up is None:
            return None
        if self.in_sample(bar_ts, underlying):
            self._say_in_sample(bar_ts)
            if not self.s.allow_in_sample:
                return None
        if "outcome" in meta:
            if meta["outcome"] not in ("up", "down"):
                # another venue's binary ("Yes", "Up", a candidate's name): no view on it;
                # it was read as "down", 1 - P(up) for any outcome but "up"
                return None
            window = int(meta.get("window_bars", 0))
            if window != self.horizon:
                raise ConfigError(
                    f"model {self.model_id} forecasts up/down over {self.horizon} bars but "
                    f"{instrument_id} is a {window}-bar window; set [plugins.ml] "
                    f"window_bars = {self.horizon} (or train with --horizon {window})")
            if int(meta.get("opens_ns", -1)) != bar_ts:
                return None  # the window opened before the newest bar: no view on it
            p_up = p_up if meta["outcome"] == "up" else 1.0 - p_up
        return Forecast(p_win=p_up, confidence=self.confidence)

    def _observe(self, underlying: str, market: MarketState, ts_ns: int
                 ) -> tuple[int, float | None]:
        """Feed the underlying's newest bar (if new) to its engine, score forecasts whose
        window it ends, forecast from it; the newest ``(bar ts_ns, P(up))``."""
        assert self.model is not None and self.monitor is not None
        bar = market.bars.get(underlying)
        if bar is None or bar.ts_ns > ts_ns:
            return -1, None
        track = self.tracks.get(underlying)
        if track is None:
            features = FeatureRegistry.default().select(list(self.model.features))
            track = self.tracks[underlying] = _Track(FeatureEngine(features))
        if bar.ts_ns == track.latest[0]:
            return track.latest
        if bar.ts_ns < track.latest[0]:
            # older than the newest bar this underlying has had: a venue's backfill after a
            # restart from a checkpoint (the fresh market state keeps the first bar it gets)
            # is not news.  It raised the feature engine's DataError, ending the run, after
            # counting the bar (every pending window's due bar was then one off).
            return -1, None
        self._sync_monitor()  # the run may have started since the model loaded
        self._check_clock(bar.ts_ns)
        row = track.engine.update(bar)
        i = track.bar_index
        track.bar_index += 1
        track.latest = (bar.ts_ns, None)  # this bar is consumed, whatever happens below
        self._count_training_end(track, bar.ts_ns)
        while track.pending and track.pending[0][0] <= i:
            _, p_old, close0 = track.pending.popleft()
            self.stats["outcomes"] += 1
            self.monitor.observe_outcome(p_old, 1.0 if bar.close > close0 else 0.0, bar.ts_ns)
        p: float | None = None
        if row.complete and not all(map(math.isfinite, row.values)):
            # an infinite feature: no imputation, no forecast (said once per underlying)
            self._refuse(underlying, bar.ts_ns, f"features {row.values} are not finite")
        elif row.complete:
            p = float(self.model.predict(np.array([row.values]))[0])
            if not 0.0 <= p <= 1.0:  # NaN too: a model file validated, yet broken
                self._refuse(underlying, bar.ts_ns, f"the model gave P(up) = {p}")
                track.latest = (bar.ts_ns, None)
                return track.latest
            track.pending.append((i + self.horizon, p, bar.close))
            if self.in_sample(bar.ts_ns, underlying):
                self.stats["in_sample"] = self.stats.get("in_sample", 0) + 1
            self.monitor.observe_features(row.values, bar.ts_ns)
            self.stats["forecasts"] += 1
            if self.status == "shadow" or self.monitor.tripped:
                self.stats["shadow_forecasts"] += 1
                log.debug("shadow forecast %s %s@%d: P(up) %.4f", self.model_id, underlying,
                          bar.ts_ns, p)
        if self.monitor.tripped and self.status != "shadow":
            # the gate closes for this run; the registry changed only if the monitor
            # demoted the model there (paper/live, or demote_in_replay)
            self.status = "shadow"
        track.latest = (bar.ts_ns, p)
        return track.latest

    def _refuse(self, underlying: str, ts_ns: int, why: str) -> None:
        """No forecast at this bar; counted, and logged once per underlying."""
        self.stats["refused"] = self.stats.get("refused", 0) + 1
        if underlying not in self._refused:
            self._refused.add(underlying)
            log.error("model %s: no forecast for %s at %d: %s (refused, not imputed; "
                      "counted in stats['refused'])", self.model_id, underlying, ts_ns, why)

    # -- checkpoints ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """JSON state: each underlying's feature window, unsettled forecasts and the drift
        monitor's EMAs (the strategies store it in their checkpoints)."""
        return {"model_id": self.model_id,
                "tracks": {k: {"engine": t.engine.get_state(), "bar_index": t.bar_index,
                               "pending": [list(p) for p in t.pending],
                               "latest": list(t.latest),
                               "bars_after_training": t.bars_after_training,
                               "training_label_end_ns": t.training_label_end_ns}
                           for k, t in self.tracks.items()},
                "drift": self.monitor.get_state() if self.monitor is not None else None,
                "stats": dict(self.stats)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state` for the same model (another model's state is ignored)."""
        self.load()
        assert self.model is not None and self.monitor is not None
        if state.get("model_id") != self.model_id:
            log.warning("forecaster state is for model %s, not %s: starting afresh",
                        state.get("model_id"), self.model_id)
            return
        features = FeatureRegistry.default().select(list(self.model.features))
        self.tracks = {}
        for key, t in state.get("tracks", {}).items():
            track = self.tracks[key] = _Track(FeatureEngine(features))
            track.engine.set_state(t["engine"])
            track.bar_index = int(t["bar_index"])
            track.pending = deque((int(a), float(b), float(c)) for a, b, c in t["pending"])
            ts, p = t["latest"]
            track.latest = (int(ts), None if p is None else float(p))
            track.bars_after_training = int(t.get("bars_after_training", 0))
            end = t.get("training_label_end_ns")
            track.training_label_end_ns = None if end is None else int(end)
        if state.get("drift"):
            self.monitor.set_state(state["drift"])
            if self.monitor.tripped:
                self.status = "shadow"
        self.stats.update(state.get("stats", {}))


def gated_forecast(forecaster: Forecaster, instrument_id: str, ctx: StrategyContext
                   ) -> tuple[Forecast | None, str]:
    """A forecast a strategy may trade on in ``ctx.mode``, or ``(None, why not)``.

    The forecaster is asked either way (so a shadow model's forecasts are still
    recorded and monitored); a forecaster with an ``allows(mode)`` method (the ``ml``
    one) decides whether its forecast may be used; one without is always usable."""
    _bind_mode(forecaster, ctx.mode)
    fc = forecaster.forecast(instrument_id, ctx.market, ctx.ts_ns)
    if fc is None:
        return None, "no forecast"
    allows = getattr(forecaster, "allows", None)
    if callable(allows) and not allows(ctx.mode):
        status = getattr(forecaster, "status", "?")
        return None, f"model status {status} may not trade in a {ctx.mode} run"
    return fc, ""


def find_forecaster(ctx: StrategyContext, name: str, who: str) -> Forecaster:
    """``ctx.market.forecasters[name]``, or ``ConfigError`` naming the ones there are;
    a forecaster with ``bind_mode`` (the ``ml`` one) learns the run's mode."""
    try:
        forecaster = ctx.market.forecasters[name]
    except KeyError:
        raise ConfigError(f"{who}: no forecaster {name!r} in this run (registered: "
                          f"{', '.join(ctx.market.forecasters) or 'none'}); set "
                          f"[plugins.ml] forecaster") from None
    _bind_mode(forecaster, ctx.mode)
    return forecaster


def _bind_mode(forecaster: Forecaster, mode: str) -> None:
    bind = getattr(forecaster, "bind_mode", None)
    if callable(bind):
        bind(mode)
