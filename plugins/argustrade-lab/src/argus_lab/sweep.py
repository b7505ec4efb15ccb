"""Parameter sweeps: one full deterministic backtest per grid point, stored, resumable.

Each point's results (metrics, per-bar returns, timestamps) go into
``lab_sweep_points`` of the lab ledger in one commit as soon as that point
finishes (the executor's ``on_result`` hook), so an interrupted sweep -- Ctrl-C,
SIGKILL, a lost cluster -- keeps every finished point; a rerun of the same sweep
(same config, same grid) skips points already done.  Every point is counted as a
trial of the strategy family, in the same commit -- a point that failed too.

Each point's metrics carry :data:`RESULTS_VERSION` and the fingerprint of the files the
config reads (:func:`argus_lab.inputs.input_fingerprint`); points stored by an older
version (valued or annualised differently) or computed from other data (the bars file
edited) are run again afresh rather than mixed with new ones, under the same ids, so
they are not counted as new trials.  A stored row that cannot be read back (a damaged
ledger) is refused with a :class:`~argus_core.LedgerError` naming it.  Annualised figures
follow the one rule of :func:`argus_core.metrics.observations_per_year`.

Engines: points of a strategy that declares a kernel (:mod:`argus_lab.compiled`) run
through it, a whole chunk of the grid per call, with results identical to the event
loop's; every other point -- and any point the kernel cannot vouch for -- runs a full
backtest on the event loop.  Each point's metrics say which (``engine``), and the
sweep reports one line saying how many ran where and why any fell back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from argus_core import BacktestResult, Config, Ledger, LedgerError, Strategy, canonical_json
from argus_core.metrics import basket_map, plays, round_trips
from argus_lab.executor import DaskExecutor, Executor, SerialExecutor
from argus_lab.inputs import input_fingerprint
from argus_lab.ratios import is_flat, per_obs_sharpe
from argus_lab.trials import record_failed_trial, record_trial

#: ``[plugins.lab.sweep] engine``: the kernel where a strategy qualifies, or never.
ENGINES = ("auto", "event_loop")

#: Bump when how a backtest is valued or summarised changes, so stored points are redone.
#: 2: marks of flat instruments dropped (no stale re-entry marks); annualisation measured
#: from the data's observations per year.
RESULTS_VERSION = 2


@attrs.frozen
class PointTask:
    """One backtest to run (picklable; ``strategies`` only with in-process executors)."""

    config: Config
    overrides: dict[str, Any]
    run_dir: str
    point_id: str
    strategies: dict[str, Strategy] | None = None
    fresh: bool = False  # discard an earlier run in run_dir (else the runner resumes it)


@attrs.frozen
class PointOutcome:
    """What the lab keeps of one backtest."""

    point_id: str
    metrics: dict[str, Any]
    returns: np.ndarray
    ts_ns: np.ndarray  # end stamp of each return
    trade_pnls: np.ndarray  # per play (legs of a basket summed)
    error: str | None = None


def trial_sharpe(metrics: dict[str, Any], returns: np.ndarray) -> float:
    """The per-observation Sharpe ratio a point enters the trial registry with: the
    backtest's ``sharpe_per_obs``, except 0 when its returns are flat up to rounding
    (the core's figure is then ~1e15, which would swamp the variance of the family's
    Sharpe ratios and deflate every other variant to nothing), and the Sharpe ratio of
    its finite returns when the core's is not a number (a run whose equity reached 0
    has 0/0 returns after it; recording NaN is refused and sank the whole sweep)."""
    value = float(metrics.get("sharpe_per_obs", 0.0))
    r = np.asarray(returns, dtype=np.float64)
    if math.isfinite(value) and not is_flat(r):
        return value
    return per_obs_sharpe(r[np.isfinite(r)])


def gate_sharpe(outcome: PointOutcome) -> float:
    """A backtest's annualised Sharpe ratio for a gate: ``metrics["sharpe"]``, 0 when its
    returns are flat up to rounding (:func:`argus_lab.ratios.is_flat`), NaN as it is (a
    gate must fail it: compare with ``not sharpe >= bar``)."""
    value = float(outcome.metrics.get("sharpe", 0.0))
    return 0.0 if is_flat(outcome.returns) else value


def play_pnls(ledger: Ledger) -> np.ndarray:
    """Realised P&L (net of fees) per play: round trips of legs opened by one basket summed
    (see :func:`argus_core.metrics.plays`)."""
    trips = plays(round_trips(ledger.fills(), basket_map(ledger)))
    return np.array([float(t["pnl"]) for t in trips], dtype=np.float64)


def run_point(task: PointTask) -> PointOutcome:
    """Run one backtest (top level, so executors can ship it)."""
    from argus_core import run_backtest

    strategies = copy.deepcopy(task.strategies) if task.strategies else None
    if task.fresh:
        shutil.rmtree(task.run_dir, ignore_errors=True)
    # The lab's and the orchestrator's own tables configure the study, not the backtest
    # (and the point's run need not load those plugins).
    config = task.config.without_plugins("lab", "orchestrator")
    try:
        res = run_backtest(config, Path(task.run_dir), overrides=task.overrides,
                           strategies=strategies)
    except Exception as exc:  # one bad point must not sink a sweep; it is recorded
        return PointOutcome(task.point_id, {}, np.empty(0), np.empty(0, dtype=np.int64),
                            np.empty(0), f"{type(exc).__name__}: {exc}")
    return outcome_of(task.point_id, res)


def outcome_of(point_id: str, res: BacktestResult) -> PointOutcome:
    """What the lab keeps of a finished backtest."""
    with Ledger.in_dir(res.run_dir) as ledger:
        plays = play_pnls(ledger)
    metrics = {k: (float(v) if isinstance(v, int | float | Decimal) else v)
               for k, v in res.metrics.items()}
    metrics["results_version"] = RESULTS_VERSION
    metrics["engine"] = "event loop"
    return PointOutcome(point_id, metrics, np.asarray(res.returns, dtype=np.float64),
                        np.asarray(res.equity_ts_ns[1:], dtype=np.int64), plays)


def point_id(params: dict[str, Any]) -> str:
    """Stable id of a parameter point."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()
                          ).hexdigest()[:12]


def sweep_id(config: Config, grid: list[dict[str, Any]], variant: str = "") -> str:
    """Id of a sweep: the config (without its [plugins.lab] table), the grid and the ``variant``
    (the code under test when it is not named by the config, e.g. an AI-written version)."""
    base = config.without_plugins("lab", "orchestrator")
    text = canonical_json(base) + json.dumps(grid, sort_keys=True, default=str) + variant
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@attrs.frozen
class SweepPoint:
    """A finished point, as read back from the ledger."""

    point_id: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    returns: np.ndarray
    ts_ns: np.ndarray
    status: str
    error: str | None


def run_sweep(config: Config, grid: list[dict[str, Any]], *, ledger: Ledger, lab_dir: Path,
              executor: Executor, family: str, strategies: dict[str, Strategy] | None = None,
              progress: Callable[[int, int], None] | None = None,
              variant: str = "", engine: str = "auto",
              report: Callable[[str], None] | None = None) -> list[SweepPoint]:
    """Run every not-yet-done point of ``grid``, store each, return all points in grid order.

    Injected ``strategies`` are code the config does not name: give each a distinct
    ``variant`` (e.g. its version id), or one candidate would resume another's points.
    ``engine``: ``"auto"`` runs points of a vectorisable strategy through its kernel
    (:mod:`argus_lab.compiled`), ``"event_loop"`` never; ``report(line)`` is told
    which engine ran how many points and why any fell back.
    """
    sid = sweep_id(config, grid, variant)
    inputs = input_fingerprint(config, grid)
    done: set[str] = set()
    stale: set[str] = set()
    for p in load_sweep(ledger, sid):
        if p.metrics.get("inputs") != inputs:  # other data (or stored before it was kept)
            stale.add(p.point_id)  # its run folder too: a resumed run would replay it
        elif p.status == "done":
            (done if p.metrics.get("results_version") == RESULTS_VERSION else stale
             ).add(p.point_id)
    # A point's trial is its config, parameters and code, not the grid around it: keyed by
    # the sweep id, extending a grid counted every point already tried a second time.
    trial_ids = {point_id(p): f"sweep:{sweep_id(config, [p], variant)}" for p in grid}
    tasks = []
    with ledger.transaction():
        for seq, params in enumerate(grid):
            pid = point_id(params)
            if pid in done:
                continue
            # A stale point's finished run would only be resumed as it was: start afresh.
            tasks.append(PointTask(config, params, str(lab_dir / "runs" / sid / pid), pid,
                                   strategies, fresh=pid in stale))
            ledger.insert("lab_sweep_points", {
                "sweep_id": sid, "point_id": pid, "seq": seq, "params_json": params,
                "status": "running", "metrics_json": json.dumps({"inputs": inputs}),
                "ts_ns": time.time_ns()}, replace=True)

    def store(_index: int, outcome: PointOutcome) -> None:
        # Runs in this process as each point finishes (one writer), committed at once:
        # an interrupted sweep keeps every finished point and reruns only the rest.
        metrics = {**outcome.metrics, "inputs": inputs}
        with ledger.transaction():
            ledger.conn.execute(
                "update lab_sweep_points set status = ?, metrics_json = ?, returns = ?,"
                " ts_blob = ?, error = ?, ts_ns = ? where sweep_id = ? and point_id = ?",
                ("failed" if outcome.error else "done",
                 json.dumps(metrics, sort_keys=True, default=float),
                 outcome.returns.astype("<f8").tobytes(), outcome.ts_ns.astype("<i8").tobytes(),
                 outcome.error, time.time_ns(), sid, outcome.point_id))
            # Same commit (savepoint).  A point that raised or left < 2 returns was still
            # tried: it counts (it was left out, so the DSR deflated by fewer trials).
            trial = trial_ids[outcome.point_id]
            if not outcome.error and outcome.returns.size > 1:
                record_trial(ledger, family, trial,
                             trial_sharpe(outcome.metrics, outcome.returns),
                             int(outcome.returns.size), source="sweep")
            else:
                record_failed_trial(ledger, family, trial,
                                    0 if outcome.error else int(outcome.returns.size))

    n_done = len(grid) - len(tasks)
    finished = n_done
    if progress:
        progress(n_done, len(grid))

    def advance(count: int) -> None:
        nonlocal finished
        finished += count
        if progress:
            progress(finished, len(grid))

    loop_tasks = tasks
    if tasks and engine == "auto" and strategies is None:
        loop_tasks = _run_compiled(config, tasks, executor, store, advance, report)
    elif report is not None and tasks:
        why = "injected strategies" if strategies is not None else "engine = event_loop"
        report(f"engine: event loop for all {len(tasks)} points ({why})")
    def stored(index: int, outcome: PointOutcome) -> None:
        store(index, outcome)
        advance(1)

    executor.map(run_point, loop_tasks, on_result=stored)
    return load_sweep(ledger, sid)


def _run_compiled(config: Config, tasks: list[PointTask], executor: Executor,
                  store: Callable[[int, PointOutcome], None], advance: Callable[[int], None],
                  report: Callable[[str], None] | None) -> list[PointTask]:
    """Run the tasks the kernel takes, store them; return those left for the event loop."""
    from argus_lab.compiled import ChunkResult, engine_note, plan_sweep, run_compiled_chunk

    chunk_size = 64  # points per kernel call: bounded memory, the kernel's threads busy
    if isinstance(executor, DaskExecutor):  # a few chunks per worker, so all take part
        workers = max(1, len(executor.client.scheduler_info().get("workers", {})))
        chunk_size = max(1, min(chunk_size, -(-len(tasks) // (2 * workers))))
    plan = plan_sweep(config, [(t.point_id, t.overrides) for t in tasks],
                      chunk_size=chunk_size)
    refused: dict[str, str] = {}

    def landed(_index: int, result: ChunkResult) -> None:
        for outcome in result.outcomes:
            store(0, outcome)
        refused.update(result.refused)
        advance(len(result.outcomes))

    # The kernel is parallel itself (numba threads): chunks go to other machines only
    # when there is a cluster; local worker processes would only add start-up time.
    runner = executor if isinstance(executor, DaskExecutor) else SerialExecutor()
    runner.map(run_compiled_chunk, plan.chunks, on_result=landed)
    if report is not None:
        report(engine_note(plan, refused, len(tasks)))
    return [t for t in tasks if t.point_id in plan.loop_ids or t.point_id in refused]


def load_sweep(ledger: Ledger, sid: str) -> list[SweepPoint]:
    """Every point of sweep ``sid`` in grid order; a row that cannot be read back is a
    :class:`~argus_core.LedgerError` naming the ledger, the sweep and the point."""
    return [_read_point(ledger, sid, r) for r in ledger.query(
        "select * from lab_sweep_points where sweep_id = ? order by seq", (sid,))]


def _read_point(ledger: Ledger, sid: str, row: dict[str, Any]) -> SweepPoint:
    """One stored row, checked: JSON where JSON is kept, whole float64 / int64 arrays of
    one length (a damaged row raised ValueError or JSONDecodeError tracebacks, or was
    aligned on the wrong stamps)."""
    def damaged(what: str) -> LedgerError:
        return LedgerError(f"{ledger.path}: sweep {sid} point {row['point_id']}: {what}; the "
                           f"lab ledger is damaged: remove the sweep's rows or the lab folder "
                           f"to run it afresh")

    try:
        params, metrics = json.loads(row["params_json"]), json.loads(row["metrics_json"] or "{}")
    except (TypeError, ValueError):
        raise damaged("its parameters or metrics are not JSON") from None
    if not isinstance(params, dict):
        raise damaged("its parameters are not a table")
    if not isinstance(metrics, dict):
        raise damaged("its metrics are not JSON of a table")
    returns_blob, ts_blob = bytes(row["returns"] or b""), bytes(row["ts_blob"] or b"")
    if len(returns_blob) % 8 or len(ts_blob) % 8:
        raise damaged(f"{len(returns_blob)} bytes of returns and {len(ts_blob)} of "
                      f"timestamps are not whole 8-byte numbers")
    returns = np.frombuffer(returns_blob, dtype="<f8").copy()
    ts = np.frombuffer(ts_blob, dtype="<i8").copy()
    if returns.size != ts.size:
        raise damaged(f"{returns.size} returns but {ts.size} timestamps")
    if row["status"] not in ("running", "done", "failed"):
        raise damaged(f"status {row['status']!r}")
    return SweepPoint(row["point_id"], params, metrics, returns, ts, row["status"],
                      row["error"])


def returns_matrix(points: list[SweepPoint]) -> tuple[np.ndarray, np.ndarray, list[SweepPoint]]:
    """(common timestamps, (T, k) returns) of the finished points, aligned on timestamps."""
    ok = [p for p in points if p.status == "done" and p.returns.size > 1]
    if not ok:
        return np.empty(0, dtype=np.int64), np.empty((0, 0)), []
    common = ok[0].ts_ns
    for p in ok[1:]:
        common = np.intersect1d(common, p.ts_ns)
    cols = []
    for p in ok:
        idx = np.searchsorted(p.ts_ns, common)
        cols.append(p.returns[idx])
    return common, np.column_stack(cols), ok
