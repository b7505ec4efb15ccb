"""The lab's ledger tables (migration set ``lab``) and the trial registry.

Every variant ever tried for a strategy family -- each sweep point, each
AI-written version -- is one trial; the deflated Sharpe ratio deflates by
their number and the variance of their Sharpe ratios.  A variant recorded
twice (same ``variant_id``) counts once, with its latest figures.  A variant that was
tried but has no Sharpe ratio -- its backtest raised, or it left fewer than two returns
-- still counts in the number of trials (it was tried: leaving it out deflated by fewer
trials than were run), but not in the variance of their Sharpe ratios: such a trial is
stored with ``n_obs`` below 2 (see :func:`record_failed_trial`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import apsw
import numpy as np

from argus_core import DataError, Ledger, Migrations


def lab_migrations(migrations: Migrations) -> None:
    """Add the ``lab`` migration set: trials, sweep points, bootstrap summaries, verdicts."""
    lab = migrations.set("lab")

    @lab
    def m001_lab_tables(conn: apsw.Connection) -> None:
        conn.execute("""
        create table lab_trials (
            family text not null, variant_id text not null, sharpe_per_obs real not null,
            n_obs integer not null, source text not null, ts_ns integer not null,
            primary key (family, variant_id));
        create table lab_sweep_points (
            sweep_id text not null, point_id text not null, seq integer not null,
            params_json text not null, status text not null, metrics_json text,
            returns blob, ts_blob blob, error text, ts_ns integer not null,
            primary key (sweep_id, point_id));
        create table lab_bootstrap (
            id integer primary key autoincrement, family text not null, ts_ns integer not null,
            summary_json text not null);
        create table lab_walkforward (
            id integer primary key autoincrement, family text not null, ts_ns integer not null,
            summary_json text not null);
        create table lab_gate_verdicts (
            id integer primary key autoincrement, family text not null, ts_ns integer not null,
            verdict text not null, reasons_json text not null, details_json text not null,
            config_hash text not null);
        """)


def open_lab_ledger(path: Any) -> Ledger:
    """Open (creating) a ledger with the lab tables at ``path`` (a file path)."""
    migrations = Migrations()
    lab_migrations(migrations)
    return Ledger(path, migrations)


def record_trial(ledger: Ledger, family: str, variant_id: str, sharpe_per_obs: float,
                 n_obs: int, *, source: str = "sweep") -> None:
    """Count one variant of ``family`` as a trial (upsert on ``(family, variant_id)``)."""
    if not family or not variant_id:
        raise DataError("record_trial needs a family and a variant_id")
    if not np.isfinite(sharpe_per_obs):
        raise DataError(f"trial {family}/{variant_id}: Sharpe {sharpe_per_obs!r} is not finite")
    with ledger.transaction():
        ledger.insert("lab_trials", {"family": family, "variant_id": variant_id,
                                     "sharpe_per_obs": float(sharpe_per_obs),
                                     "n_obs": int(n_obs), "source": source,
                                     "ts_ns": time.time_ns()}, replace=True)


def record_failed_trial(ledger: Ledger, family: str, variant_id: str, n_obs: int = 0, *,
                        source: str = "sweep") -> None:
    """Count a variant of ``family`` that was tried but has no Sharpe ratio (its backtest
    raised, or it left ``n_obs`` < 2 returns): one more trial, outside the variance."""
    if n_obs >= 2:
        raise DataError(f"trial {family}/{variant_id}: {n_obs} returns have a Sharpe ratio; "
                        f"record it with record_trial")
    record_trial(ledger, family, variant_id, 0.0, max(int(n_obs), 0), source=source)


def trial_stats(ledger: Ledger, family: str) -> tuple[int, float]:
    """``(n_trials, var_sr)``: how many variants of ``family`` were tried (failed ones
    included) and the sample variance (ddof=1; 0 with fewer than two) of the
    per-observation Sharpe ratios of those with at least two returns."""
    rows = ledger.query("select sharpe_per_obs, n_obs from lab_trials where family = ?",
                        (family,))
    srs = np.array([r["sharpe_per_obs"] for r in rows if r["n_obs"] >= 2], dtype=np.float64)
    if srs.size < 2:
        return len(rows), 0.0
    return len(rows), float(srs.var(ddof=1))


def store_summary(ledger: Ledger, table: str, family: str, summary: dict[str, Any]) -> None:
    """Store a JSON summary row (bootstrap or walk-forward)."""
    with ledger.transaction():
        ledger.insert(table, {"family": family, "ts_ns": time.time_ns(),
                              "summary_json": json.dumps(summary, sort_keys=True, default=float)})
