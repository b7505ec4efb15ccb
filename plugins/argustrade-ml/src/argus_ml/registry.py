"""The model registry: models with their lineage in the plugin's own ledger tables,
statuses with promotion gates, and every status change a row with its reason.

Tables (migration set ``ml``, so they never collide with the core's or another
plugin's): ``ml_models`` (one row per model: the model document itself, its sha256,
features with versions, label, dataset hash, source data hash, code version, the CV
report, status, and the per-feature PSI thresholds calibrated on the training rows)
and ``ml_model_events`` (registered / promoted / demoted / refused, with from, to,
reason, actor and time).

Statuses: ``shadow`` (forecasts logged, never used), ``paper`` (may drive paper and
replay trading), ``live``.  Promotion goes one step at a time and only through
:func:`check_gates`: the out-of-sample calibration gate (calibrated out-of-fold
reliability, Brier skill over climatology, enough rows) and the P&L gate (the
out-of-fold forecasts traded on the stated binary market model must make money over
enough bets).  A refused promotion is recorded too.  Demotion needs only a reason.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import apsw
import attrs
import numpy as np

from argus_core import DataError, Ledger, Migrations
from argus_ml.drift import PSI_MAX
from argus_ml.market import BinaryMarket
from argus_ml.modelfile import (
    ProbabilityModel,
    check_model_size,
    load_model,
    model_bytes,
    model_sha256,
)

STATUSES = ("shadow", "paper", "live")


def ml_migrations(migrations: Migrations) -> None:
    """Add the ``ml`` migration set."""
    ml = migrations.set("ml")

    @ml
    def m001_model_registry(conn: apsw.Connection) -> None:
        conn.execute("""
        create table ml_models (
            model_id text primary key, name text not null, created_ns integer not null,
            status text not null, model_kind text not null, features_json text not null,
            label_json text not null, dataset_hash text not null, source_sha256 text not null,
            code_version text not null, cv_json text not null, model_json text not null,
            model_sha256 text not null);
        create table ml_model_events (
            id integer primary key autoincrement, model_id text not null
                references ml_models(model_id),
            ts_ns integer not null, event text not null, from_status text,
            to_status text, reason text not null, actor text not null,
            details_json text not null);
        """)

    @ml
    def m002_drift_thresholds(conn: apsw.Connection) -> None:
        # per-feature PSI thresholds calibrated on the training rows (drift.calibrate_psi);
        # NULL for models registered before them: their monitor uses the fixed limit
        conn.execute("alter table ml_models add column drift_json text")


def open_registry(path: Path) -> Ledger:
    """Open (creating) a ledger with the ``ml`` tables at ``path``."""
    migrations = Migrations()
    ml_migrations(migrations)
    return Ledger(Path(path), migrations)


def training_end_ns(meta: dict[str, Any], report: dict[str, Any] | None,
                    bar_seconds: int) -> int | None:
    """When the last label a model was trained on became known: a forecast at a bar
    before it is in sample.  ``meta["trained_on"]`` (recorded by training) when there;
    for a model registered before it, the CV report's last test row plus the label
    horizon in ``bar_seconds`` bars (a lower bound: a gap in the bars ends the labels
    later; the forecaster counts the bars instead); None when neither says."""
    trained = meta.get("trained_on")
    if isinstance(trained, dict) and "label_end_ts_ns" in trained:
        return int(trained["label_end_ts_ns"])
    last = training_last_row_ns(report)
    if last is None:
        return None
    horizon = int(meta.get("label", {}).get("horizon_bars", 1))
    return last + horizon * bar_seconds * 10**9


def training_last_row_ns(report: dict[str, Any] | None) -> int | None:
    """The decision time of a model's last training row by its CV report (its last test
    row: the final fit uses every row), or None; for models without ``trained_on``."""
    folds = (report or {}).get("folds") or []
    ends = [int(f["test_end_ts_ns"]) for f in folds
            if isinstance(f, dict) and isinstance(f.get("test_end_ts_ns"), int)]
    return max(ends) if ends else None


def check_drift_calibration(cal: Any, where: str) -> dict[str, Any]:
    """A registry row's PSI thresholds as the forecaster reads them: ``window`` a whole
    number >= 1 and each feature's ``threshold`` a PSI a window can reach (at most
    :data:`~argus_ml.drift.PSI_MAX`).  The row is not covered by the model's sha256: a
    missing ``window`` was a KeyError when the forecaster loaded, and a threshold of 1e308
    (or ``Infinity``) switched the feature's PSI alarm off without a word."""
    if not isinstance(cal, dict):
        raise DataError(f"{where}: must be an object, got {type(cal).__name__}")
    window = cal.get("window")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise DataError(f"{where}: 'window' must be a whole number of rows >= 1, got "
                        f"{window!r:.80}")
    features = cal.get("features", {})
    if not isinstance(features, dict):
        raise DataError(f"{where}: 'features' must be an object of feature -> threshold")
    for key, v in features.items():
        t = v.get("threshold") if isinstance(v, dict) else None
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= PSI_MAX:
            raise DataError(f"{where}: feature {key!r:.80}'s 'threshold' must be a PSI in "
                            f"[0, {PSI_MAX:.2f}] (no PSI is larger: a higher one never "
                            f"alarms), got {t!r:.80}")
    return cal


class PromotionRefused(DataError):
    """A promotion failed its gates; the message lists every failing gate."""


@attrs.frozen
class GateSettings:
    """Thresholds of the promotion gates."""

    max_reliability: float = 0.01  # calibrated OOF reliability term of the Brier score
    min_brier_skill: float = 0.0  # 1 - Brier / climatology Brier must exceed this
    min_rows: int = 500  # calibrated OOF rows
    min_bets: int = 50  # bets of the OOF P&L replay
    edge_threshold: float = 0.02
    market: BinaryMarket = attrs.field(factory=BinaryMarket)


@attrs.frozen
class GateVerdict:
    """The outcome of the gates: pass/fail, every failure, and the figures."""

    passed: bool
    failures: tuple[str, ...]
    figures: dict[str, float]


def _gate_inputs(report: Any) -> tuple[dict[str, float], dict[str, float], np.ndarray,
                                       np.ndarray]:
    """The figures the gates read from a CV report, or a ``DataError`` saying what is
    missing: a model registered through the library with another report (``{}``) made
    `argus ml evaluate` and `promote` end in a KeyError traceback."""
    why = "it was registered without the out-of-fold record `argus ml train` writes"
    try:
        cal, clim = dict(report["oof_calibrated"]), dict(report["climatology"])
        figures = [float(cal[k]) for k in ("brier", "reliability", "n")] + \
            [float(clim["brier"])]
        p = np.asarray(report["oof"]["p"], dtype=np.float64)
        y = np.asarray(report["oof"]["y"], dtype=np.float64)
    except KeyError as exc:
        raise DataError(f"the model's CV report has no {exc} for the gates ({why})") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"the model's CV report has a figure the gates cannot read "
                        f"({type(exc).__name__}: {exc!s:.80})") from None
    if not np.all(np.isfinite(figures)) or p.ndim != 1 or p.shape != y.shape or \
            not np.all((p >= 0) & (p <= 1)) or not np.all((y == 0) | (y == 1)):
        raise DataError("the model's CV report holds out-of-fold figures that are not "
                        "finite probabilities and 0/1 outcomes (an edited report?)")
    return cal, clim, p, y


def check_gates(report: dict[str, Any], gates: GateSettings) -> GateVerdict:
    """Judge a training report's out-of-sample record against ``gates``."""
    cal, clim, p, y = _gate_inputs(report)
    skill = 1.0 - cal["brier"] / clim["brier"] if clim["brier"] > 0 else 0.0
    side = gates.market.decide(p, gates.edge_threshold)
    pnl = gates.market.pnl(side, y)
    bets = int(np.count_nonzero(side))
    figures = {"reliability": cal["reliability"], "brier": cal["brier"],
               "climatology_brier": clim["brier"], "brier_skill": skill, "rows": cal["n"],
               "bets": float(bets), "pnl_per_contract_total": float(pnl.sum()),
               "pnl_per_bet": float(pnl.sum() / bets) if bets else 0.0,
               "hit_rate": float(np.mean(pnl[side != 0] > 0)) if bets else 0.0}
    fails = []
    if cal["reliability"] > gates.max_reliability:
        fails.append(f"calibration: OOF reliability {cal['reliability']:.4f} > "
                     f"{gates.max_reliability}")
    if skill <= gates.min_brier_skill:
        fails.append(f"calibration: Brier skill over climatology {skill:.4f} <= "
                     f"{gates.min_brier_skill}")
    if cal["n"] < gates.min_rows:
        fails.append(f"calibration: {int(cal['n'])} OOF rows < {gates.min_rows}")
    if bets < gates.min_bets:
        fails.append(f"pnl: {bets} OOF bets < {gates.min_bets}")
    if pnl.sum() <= 0:
        fails.append(f"pnl: OOF P&L {pnl.sum():.2f} per contract <= 0 on the binary market "
                     f"(ask {gates.market.ask}, fee {gates.market.fee_rate:.0%})")
    return GateVerdict(not fails, tuple(fails), figures)


class ModelRegistry:
    """Models and their status history in an open ledger holding the ``ml`` tables."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def _event(self, model_id: str, event: str, from_status: str | None,
               to_status: str | None, reason: str, actor: str, ts_ns: int | None,
               details: dict[str, Any] | None = None) -> None:
        self.ledger.insert("ml_model_events", {
            "model_id": model_id, "ts_ns": ts_ns if ts_ns is not None else time.time_ns(),
            "event": event, "from_status": from_status, "to_status": to_status,
            "reason": reason, "actor": actor,
            "details_json": json.dumps(details or {}, sort_keys=True)})

    def register(self, model: ProbabilityModel, report: dict[str, Any], *, name: str,
                 dataset_hash: str, source_sha256: str, code_version: str,
                 drift: dict[str, Any] | None = None) -> str:
        """Store a model as ``shadow``; returns its id (the first 16 hex of its sha256).
        ``drift``: its PSI thresholds from training (:func:`argus_ml.drift.calibrate_psi`),
        kept with its lineage for the drift monitor."""
        sha = model_sha256(model)
        model_id = sha[:16]
        if self.ledger.query("select 1 from ml_models where model_id = ?", (model_id,)):
            raise DataError(f"model {model_id} is already registered")
        with self.ledger.transaction():
            self.ledger.insert("ml_models", {
                "model_id": model_id, "name": name, "created_ns": time.time_ns(),
                "status": "shadow", "model_kind": str(model.meta.get("model", "")),
                "features_json": json.dumps(list(model.features)),
                "label_json": json.dumps(model.meta.get("label", {}), sort_keys=True),
                "dataset_hash": dataset_hash, "source_sha256": source_sha256,
                "code_version": code_version, "cv_json": json.dumps(report, sort_keys=True),
                "model_json": model_bytes(model).decode(), "model_sha256": sha,
                "drift_json": json.dumps(drift, sort_keys=True) if drift else None})
            self._event(model_id, "registered", None, "shadow", "trained", "train", None)
        return model_id

    def get(self, model_id: str) -> dict[str, Any]:
        """The model's row; ``DataError`` if there is none."""
        rows = self.ledger.query("select * from ml_models where model_id = ?", (model_id,))
        if not rows:
            raise DataError(f"no model {model_id!r} in {self.ledger.path}")
        return rows[0]

    def load(self, model_id: str) -> ProbabilityModel:
        """The model, loaded safely and checked against its stored sha256."""
        size = self.ledger.query("select length(cast(model_json as blob)) as n from "
                                 "ml_models where model_id = ?", (model_id,))
        if size:  # measured in SQL first: a huge row is refused before it is fetched
            check_model_size(int(size[0]["n"] or 0), f"{self.ledger.path}: model {model_id}")
        row = self.get(model_id)
        if not str(row["model_sha256"]).startswith(model_id):
            # the id is the first 16 hex of the document's sha256 (register): a row whose
            # document and stored hash were both rewritten still fails here
            raise DataError(f"{self.ledger.path}: model {model_id}'s stored sha256 "
                            f"{str(row['model_sha256'])[:16]}... is not the one it was "
                            "registered with (the row was edited); retrain and register it")
        return load_model(row["model_json"].encode(), expected_sha256=row["model_sha256"])

    def drift_calibration(self, model_id: str) -> dict[str, Any] | None:
        """The model's PSI thresholds from training, or None for a model registered
        without them (before they existed, or trained on too few rows)."""
        raw = self.get(model_id).get("drift_json")
        if not raw:
            return None
        where = f"{self.ledger.path}: model {model_id}'s drift thresholds (drift_json)"
        try:
            cal = json.loads(raw)
        except ValueError as exc:
            raise DataError(f"{where}: not JSON ({exc})") from None
        return check_drift_calibration(cal, where)

    def report(self, model_id: str) -> dict[str, Any]:
        """The model's CV report."""
        return json.loads(self.get(model_id)["cv_json"])

    def models(self) -> list[dict[str, Any]]:
        """Every model (no model documents), newest first."""
        return self.ledger.query(
            "select model_id, name, created_ns, status, model_kind, features_json, label_json,"
            " dataset_hash, source_sha256, code_version, model_sha256 from ml_models"
            " order by created_ns desc, model_id")

    def events(self, model_id: str | None = None) -> list[dict[str, Any]]:
        """Status history (all models, or one), oldest first."""
        if model_id is None:
            return self.ledger.query("select * from ml_model_events order by id")
        return self.ledger.query("select * from ml_model_events where model_id = ? order by id",
                                 (model_id,))

    def promote(self, model_id: str, to: str, gates: GateSettings, *, reason: str = "",
                actor: str = "cli") -> GateVerdict:
        """Move a model one status up if its gates pass; a refusal is recorded and raised."""
        row = self.get(model_id)
        current = row["status"]
        if to not in STATUSES or STATUSES.index(to) != STATUSES.index(current) + 1:
            raise DataError(f"model {model_id} is {current}: promotion goes one step at a "
                            f"time ({' -> '.join(STATUSES)}), not to {to!r}")
        verdict = check_gates(json.loads(row["cv_json"]), gates)
        details = {"figures": verdict.figures, "failures": list(verdict.failures),
                   "gates": attrs.asdict(gates)}
        with self.ledger.transaction():
            if not verdict.passed:
                self._event(model_id, "refused", current, to, "; ".join(verdict.failures),
                            actor, None, details)
            else:
                self.ledger.conn.execute("update ml_models set status = ? where model_id = ?",
                                         (to, model_id))
                self._event(model_id, "promoted", current, to,
                            reason or "gates passed", actor, None, details)
        if not verdict.passed:
            raise PromotionRefused(f"model {model_id} not promoted to {to}: "
                                   + "; ".join(verdict.failures))
        return verdict

    def demote(self, model_id: str, to: str = "shadow", reason: str = "", *,
               ts_ns: int | None = None, actor: str = "cli") -> None:
        """Move a model down (to ``shadow`` by default); needs a reason.  A drift demotion
        also writes a risk event in this ledger."""
        if not reason:
            raise DataError("a demotion needs a reason")
        current = self.get(model_id)["status"]
        if to not in STATUSES or STATUSES.index(to) >= STATUSES.index(current):
            raise DataError(f"model {model_id} is {current}: cannot demote it to {to!r}")
        ts = ts_ns if ts_ns is not None else time.time_ns()
        with self.ledger.transaction():
            self.ledger.conn.execute("update ml_models set status = ? where model_id = ?",
                                     (to, model_id))
            self._event(model_id, "demoted", current, to, reason, actor, ts)
            if actor == "drift-monitor":
                self.ledger.record_risk_event(ts, "ml_drift", "demote",
                                              f"model {model_id} -> {to}: {reason}")

    def usable(self, mode: str) -> list[str]:
        """Ids of models allowed to drive trading in ``mode``, newest first: ``live`` needs
        status live; ``paper`` and ``replay`` accept paper or live."""
        allowed = ("live",) if mode == "live" else ("paper", "live")
        return [r["model_id"] for r in self.models() if r["status"] in allowed]
