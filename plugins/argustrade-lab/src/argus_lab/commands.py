"""The ``argus lab`` commands (entry point group ``argus.commands``: imported only when
one runs): ``sweep | walkforward | bootstrap | gates --config C`` run the robustness lab
on a config's ``[plugins.lab]`` table; ``--executor dask --address A`` sends the work to
an existing Dask cluster instead of local processes.

Bad input is refused before any work, as the core's commands refuse it: one ``error:``
line and the exit code of the error's class (a bad ``--set`` is named as that ``--set``,
a bad value of the backtest's plugins or missing data too, not as every point failing).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from argus_core import (
    ArgusError,
    Config,
    ConfigError,
    DataError,
    LedgerError,
    PluginError,
    PluginGroup,
    VenueError,
)


def _load(config_path: Path, executor: str | None, address: str | None,
          sets: tuple[str, ...] = ()) -> Config:
    import attrs

    from argus_core import apply_overrides, load_config, parse_overrides, plugin_settings
    from argus_lab.config import LabSettings, lab_settings

    config = apply_overrides(load_config(config_path), parse_overrides(sets), origin="--set")
    if executor or address:
        lab = dict(config.plugins.get("lab", {}))
        ex = dict(lab.get("executor", {}))
        if executor:
            ex["kind"] = executor
        if address:
            ex["address"] = address
            ex.setdefault("kind", "dask")
        lab["executor"] = ex
        config = attrs.evolve(config, plugins={**config.plugins, "lab": lab})
    # The lab's own table first (the cheaper check), through the core's plugin_settings:
    # its errors name a --set that gave the value (lab_settings then adds its own checks).
    plugin_settings(config, "lab", LabSettings)
    lab_settings(config)
    _preflight(config)
    return config


def _preflight(config: Config) -> None:
    """Build the venue the lab's backtests replay, as they build it: every plugin's table
    (``--set`` values included) is validated and the replay's data opened here, so a bad
    value or a missing file is refused with its own error and exit code before the lab
    folder exists.  Inside the lab each backtest point catches its error (one bad point
    must not sink a sweep): a sweep printed every point failed and exited 0, the gates
    exited 1 with "gate backtest cost-1 failed: ConfigError: ..."."""
    import asyncio

    from argus_core import build_venue

    venue = build_venue(config.without_plugins("lab", "orchestrator"))  # as run_point does
    asyncio.run(venue.close())


#: The core's error classes a failed point's text may start with ("DataError: ...").
_KINDS = {kind.__name__: kind for kind in (ConfigError, DataError, LedgerError, PluginError,
                                           VenueError)}


def _point_error(what: str, text: str) -> ArgusError:
    """``what: <message>`` as the class a backtest point's error text names: a point's
    error is kept as text (it crosses process boundaries), ``"<class>: <message>"``, and
    its class's exit code (DataError 4, ConfigError 2...) is the command's."""
    name, _, said = text.partition(": ")
    kind = _KINDS.get(name)
    return (kind or ArgusError)(f"{what}: {said if kind else text}")


def _refuse_if_every_point_failed(points: list[Any]) -> None:
    """A sweep none of whose points ran is an error (it printed a table of failures and
    exited 0), with the first point's error and its class's exit code."""
    failed = [p for p in points if p.status == "failed"]
    if points and len(failed) == len(points):
        raise _point_error(f"sweep: all {len(points)} point(s) failed; the first",
                           failed[0].error or "no error recorded")


@contextlib.contextmanager
def _executor(config: Config, local_cluster: int | None) -> Iterator[Any]:
    """The configured executor, or a Dask ``LocalCluster`` of ``local_cluster`` worker
    processes started for this command (and stopped after it)."""
    from argus_lab.config import lab_settings
    from argus_lab.executor import DaskExecutor, make_executor

    if not local_cluster:
        with make_executor(lab_settings(config).executor) as ex:
            yield ex
        return
    try:
        from distributed import LocalCluster
    except ImportError:
        raise PluginError("--local-cluster needs dask.distributed: "
                          "pip install 'argustrade-lab[dask]'") from None
    with (LocalCluster(n_workers=local_cluster, threads_per_worker=1, processes=True,
                       dashboard_address=None, silence_logs=logging.WARNING) as cluster,
          DaskExecutor(cluster.scheduler_address) as ex):
        yield ex


_config_opt = click.option("--config", "config_path", required=True,
                           type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           help="TOML config with a [plugins.lab] table.")
_exec_opt = click.option("--executor", type=click.Choice(["local", "serial", "dask"]),
                         default=None, help="Override [plugins.lab.executor] kind.")
_addr_opt = click.option("--address", default=None,
                         help="Dask scheduler address (implies --executor dask).")
_cluster_opt = click.option("--local-cluster", type=click.IntRange(min=1), default=None,
                            metavar="N", help="Start a local Dask cluster of N worker "
                            "processes for this command and run the work on it.")
_set_opt = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                        help="Override a config value, e.g. --set plugins.vrp.end=2015-12-31 "
                             "(repeatable; values are JSON, else strings).")


def _console() -> Any:
    from rich.console import Console

    return Console()


class StageProgress:
    """Rich progress bars for :data:`argus_lab.gates.GateProgress` callbacks: one bar
    per stage (backtests, folds, bootstrap batches...)."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.tasks: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)

    def __enter__(self) -> StageProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()



@click.group("lab", cls=PluginGroup)
def lab() -> None:
    """Robustness lab: sweeps, walk-forward, trade bootstrap, deploy gates."""

@lab.command("sweep")
@_config_opt
@_exec_opt
@_addr_opt
@_cluster_opt
@_set_opt
def sweep_cmd(config_path: Path, executor: str | None, address: str | None,
              local_cluster: int | None, sets: tuple[str, ...]) -> None:
    """Run the [plugins.lab.sweep] grid; each finished point is committed at once, so an
    interrupted sweep resumes where it stopped."""
    from rich.table import Table

    from argus_lab.config import family_of
    from argus_lab.gates import open_lab
    from argus_lab.journal import journal_path, sync_trials
    from argus_lab.sweep import run_sweep

    config = _load(config_path, executor, address, sets)
    settings, folder, ledger = open_lab(config)
    grid = settings.sweep.grid()
    notes: list[str] = []
    try:
        with StageProgress() as bar, _executor(config, local_cluster) as ex:
            points = run_sweep(config, grid, ledger=ledger, lab_dir=folder, executor=ex,
                               family=family_of(config, settings),
                               progress=lambda d, t: bar("sweep backtests", d, t),
                               engine=settings.sweep.engine, report=notes.append)
        sync_trials(ledger, family_of(config, settings), journal_path(config))
    finally:
        ledger.close()
    _refuse_if_every_point_failed(points)
    table = Table(title=f"sweep ({len(points)} points)")
    for col in ("point", "params", "status", "sharpe (ann.)", "return", "max dd",
                "trades", "engine"):
        table.add_column(col)
    for p in points:
        m = p.metrics
        table.add_row(p.point_id, json.dumps(p.params), p.status,
                      f"{m.get('sharpe', 0):.2f}", f"{m.get('total_return', 0):+.2%}",
                      f"{m.get('max_drawdown', 0):.2%}", str(int(m.get("n_trades", 0))),
                      str(m.get("engine", "")))
    con = _console()
    con.print(table)
    for note in notes or ["engine: every point was already done (resumed)"]:
        con.print(note)
    con.print(f"Sharpe {_annualisation(points)}")

@lab.command("walkforward")
@_config_opt
@_exec_opt
@_addr_opt
@_cluster_opt
@_set_opt
def walkforward_cmd(config_path: Path, executor: str | None, address: str | None,
                    local_cluster: int | None, sets: tuple[str, ...]) -> None:
    """Sweep (resumable), then walk-forward selection with purging/embargo."""
    from rich.table import Table

    from argus_core.metrics import annualise
    from argus_lab.config import family_of
    from argus_lab.gates import open_lab
    from argus_lab.journal import journal_path, sync_trials
    from argus_lab.sweep import returns_matrix, run_sweep
    from argus_lab.trials import store_summary
    from argus_lab.walkforward import walk_forward, walk_forward_splits

    config = _load(config_path, executor, address, sets)
    settings, folder, ledger = open_lab(config)
    family = family_of(config, settings)
    w = settings.walkforward
    notes: list[str] = []
    try:
        with StageProgress() as bar, _executor(config, local_cluster) as ex:
            points = run_sweep(config, settings.sweep.grid(), ledger=ledger,
                               lab_dir=folder, executor=ex, family=family,
                               progress=lambda d, t: bar("sweep backtests", d, t),
                               engine=settings.sweep.engine, report=notes.append)
            _refuse_if_every_point_failed(points)
            _ts, matrix, ok = returns_matrix(points)
            splits = walk_forward_splits(matrix.shape[0], mode=w.mode,
                                         train_bars=w.train_bars, test_bars=w.test_bars,
                                         n_folds=w.n_folds, label_horizon=w.label_horizon,
                                         embargo=w.embargo)
            res = walk_forward(matrix, splits, executor=ex,
                               progress=lambda d, t: bar("walk-forward folds", d, t),
                               obs_per_year=_obs_per_year(ok))
        store_summary(ledger, "lab_walkforward", family, res.to_dict())
        sync_trials(ledger, family, journal_path(config))
    finally:
        ledger.close()
    table = Table(title="walk-forward")
    for col in ("fold", "test bars", "chosen", "IS sharpe (ann.)", "OOS sharpe (ann.)",
                "OOS return"):
        table.add_column(col)
    per_year = res.obs_per_year
    for f in res.folds:
        table.add_row(str(f.fold), f"{f.test_start}-{f.test_end}",
                      json.dumps(ok[f.chosen].params),
                      f"{annualise(f.is_sharpe, per_year):.2f}",
                      f"{annualise(f.oos_sharpe, per_year):.2f}", f"{f.oos_return:+.2%}")
    con = _console()
    con.print(table)
    for note in notes:
        con.print(f"sweep {note}")
    con.print(f"stitched OOS: return {res.oos_equity[-1] - 1:+.2%}, Sharpe "
              f"{res.oos_sharpe_annualised:.2f} ({res.oos_sharpe:.3f} per bar), positive "
              f"folds {res.positive_share:.0%}, efficiency {res.efficiency:.2f}")
    con.print(f"Sharpe {res.annualisation}")

@lab.command("bootstrap")
@_config_opt
@_exec_opt
@_addr_opt
@_cluster_opt
@_set_opt
def bootstrap_cmd(config_path: Path, executor: str | None, address: str | None,
                  local_cluster: int | None, sets: tuple[str, ...]) -> None:
    """Backtest once, then resample its realised plays ([plugins.lab.bootstrap])."""
    from argus_lab.bootstrap import BootstrapPaths, batch_tasks, bootstrap_batch, summarise
    from argus_lab.config import family_of
    from argus_lab.gates import canonical_hash, open_lab
    from argus_lab.sweep import PointTask, run_point
    from argus_lab.trials import store_summary

    config = _load(config_path, executor, address, sets)
    settings, folder, ledger = open_lab(config)
    b = settings.bootstrap
    try:
        with StageProgress() as bar:
            bar("backtest", 0, 1)
            base = run_point(PointTask(config, {}, str(
                folder / "runs" / canonical_hash(config) / "base"), "base", fresh=True))
            bar("backtest", 1, 1)
            if base.error:
                raise _point_error("bootstrap: the backtest failed", base.error)
            if base.trade_pnls.size < 2:
                raise ArgusError(f"bootstrap: the backtest made {base.trade_pnls.size} "
                                 f"realised plays; resampling needs at least 2")
            spec = b.spec(float(config.run.starting_cash))
            with _executor(config, local_cluster) as ex:
                parts = ex.map(bootstrap_batch, batch_tasks(base.trade_pnls, spec,
                                                             b.batches),
                               progress=lambda d, t: bar("bootstrap batches", d, t))
        summary = summarise(BootstrapPaths.concat(parts), spec, spec.n_trades or
                            base.trade_pnls.size, min_survival=b.min_survival,
                            max_ruin=b.max_ruin)
        store_summary(ledger, "lab_bootstrap", family_of(config, settings),
                      summary.to_dict())
    finally:
        ledger.close()
    _console().print_json(json.dumps(summary.to_dict()))

@lab.command("gates")
@_config_opt
@_exec_opt
@_addr_opt
@_cluster_opt
@_set_opt
def gates_cmd(config_path: Path, executor: str | None, address: str | None,
              local_cluster: int | None, sets: tuple[str, ...]) -> None:
    """Run every deploy gate; print and store the verdict with its reasons."""
    from argus_lab.gates import evaluate_config

    config = _load(config_path, executor, address, sets)
    con = _console()
    try:
        with StageProgress(con) as bar, _executor(config, local_cluster) as ex:
            verdict = evaluate_config(config, executor=ex, progress=bar)
    except ArgusError as exc:
        # "gate backtest cost-1 failed: DataError: ..." exits as that DataError.
        what, sep, text = str(exc).partition(" failed: ")
        if type(exc) is not ArgusError or not sep or text.partition(": ")[0] not in _KINDS:
            raise
        raise _point_error(f"{what} failed", text) from None
    print_verdict(con, verdict)


def _obs_per_year(points: list[Any]) -> float:
    """Observations/year of a sweep's finished points (one data set: the first that
    measured it; see :func:`argus_core.metrics.observations_per_year`)."""
    return next((float(p.metrics["obs_per_year"]) for p in points
                 if p.metrics.get("obs_per_year")), 0.0)


def _annualisation(points: list[Any]) -> str:
    from argus_core.metrics import annualisation_note

    return annualisation_note(_obs_per_year(points))


def print_verdict(con: Any, verdict: Any) -> None:
    """Verdict, every reason and the headline figure of each gate."""
    colour = {"deploy": "green", "hold": "yellow", "kill": "red"}[verdict.verdict]
    con.print(f"[bold {colour}]verdict: {verdict.verdict.upper()}[/bold {colour}]")
    for r in verdict.reasons:
        con.print(f"  - {r}")
    for line in headline_figures(verdict.details):
        con.print(line)


def headline_figures(d: dict[str, Any]) -> list[str]:
    """One plain line per gate that ran, from a verdict's details."""
    lines = []
    if "annualisation" in d:
        lines.append(f"every Sharpe below is {d['annualisation']}")
    if "costs" in d:
        lines.append("cost sensitivity: " + ", ".join(
            f"{k} Sharpe {v.get('sharpe') or 0:.2f}" for k, v in d["costs"].items()))
    if "sweep_engine" in d:
        lines.append(f"sweep {d['sweep_engine']}")
    if "walkforward" in d:
        wf = d["walkforward"]
        annualised = (f"Sharpe {wf['oos_sharpe_annualised']:.2f} ({wf['oos_sharpe']:.3f} per "
                      f"bar)" if "oos_sharpe_annualised" in wf
                      else f"Sharpe/bar {wf['oos_sharpe']:.3f}")  # verdicts stored before
        lines.append(f"walk-forward: {len(wf['folds'])} folds, "
                     f"{wf['positive_share']:.0%} positive, stitched OOS {annualised}")
    if "bootstrap" in d:
        bs = d["bootstrap"]
        lines.append(f"bootstrap: survival {bs['survival']:.1%}, ruin "
                     f"{bs['ruin_probability']:.1%}")
    if "dsr" in d:
        lines.append(f"DSR {d['dsr']['dsr']:.3f} ({d['dsr']['n_trials']} trials)")
    if "trial_registry" in d:
        tr = d["trial_registry"]
        lines.append(f"trial registry: {tr['n_trials']} trials counted"
                     + (f", {tr['restored']} restored from the journal" if tr.get("restored")
                        else "")
                     + (f", {tr['missing']} missing (registry reset)" if tr.get("missing")
                        else ""))
    if "reality_check" in d:
        rc = d["reality_check"]
        lines.append(f"reality check: White RC p {rc['white_rc_p']:.3f}, SPA p "
                     f"{rc['spa_p']:.3f} over {rc['n_variants']} variants")
    if "pbo" in d and "pbo" not in d["pbo"]:
        lines.append(f"overfitting: {d['pbo'].get('note', 'not judged')}")
    elif "pbo" in d:
        p = d["pbo"]
        lines.append(f"overfitting: PBO {p['pbo']:.2f}, P(OOS loss) {p['p_loss']:.2f}, "
                     f"degradation slope {p['degradation']:+.2f} ({p['splits']} CSCV splits "
                     f"of {p['blocks']} blocks, {p['variants']} variants)")
    if "regimes" in d:
        lines.append("regime stress: " + (", ".join(
            f"{k} Sharpe {v['sharpe']:.2f} max dd {v['max_drawdown']:.1%}"
            for k, v in d["regimes"].items()) or "no regime subset") +
            (f" ({d['regime_source']})" if "regime_source" in d else ""))
    return lines
