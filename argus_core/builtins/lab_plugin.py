"""Builtin plugin ``lab``: the lab's ledger tables and the ``argus lab`` commands.

``argus lab sweep | walkforward | bootstrap | gates --config C`` run the
robustness lab on a config's ``[lab]`` table; ``--executor dask --address A``
sends the work to an existing Dask cluster instead of local processes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import click

from argus_core.config import Config
from argus_core.hookspecs import hookimpl
from argus_core.migrations import Migrations


@hookimpl
def register_migrations(migrations: Migrations) -> None:
    """The ``lab`` migration set (trials, sweep points, summaries, verdicts)."""
    from argus_core.lab.trials import lab_migrations

    lab_migrations(migrations)


def _load(config_path: Path, executor: str | None, address: str | None) -> Config:
    import attrs

    from argus_core.config import load_config

    config = load_config(config_path)
    if executor or address:
        lab = dict(config.lab)
        ex = dict(lab.get("executor", {}))
        if executor:
            ex["kind"] = executor
        if address:
            ex["address"] = address
            ex.setdefault("kind", "dask")
        lab["executor"] = ex
        config = attrs.evolve(config, lab=lab)
    return config


_config_opt = click.option("--config", "config_path", required=True,
                           type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           help="TOML config with a [lab] table.")
_exec_opt = click.option("--executor", type=click.Choice(["local", "serial", "dask"]),
                         default=None, help="Override [lab.executor] kind.")
_addr_opt = click.option("--address", default=None,
                         help="Dask scheduler address (implies --executor dask).")


def _console() -> Any:
    from rich.console import Console

    return Console()


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the ``argus lab`` group."""

    @cli.group("lab")
    def lab() -> None:
        """Robustness lab: sweeps, walk-forward, trade bootstrap, deploy gates."""

    @lab.command("sweep")
    @_config_opt
    @_exec_opt
    @_addr_opt
    def sweep_cmd(config_path: Path, executor: str | None, address: str | None) -> None:
        """Run the [lab.sweep] grid (resumable: finished points are kept)."""
        from rich.progress import Progress
        from rich.table import Table

        from argus_core.lab.config import family_of
        from argus_core.lab.executor import make_executor
        from argus_core.lab.gates import open_lab
        from argus_core.lab.sweep import run_sweep

        config = _load(config_path, executor, address)
        settings, folder, ledger = open_lab(config)
        grid = settings.sweep.grid()
        with Progress() as bar, make_executor(settings.executor) as ex:
            task = bar.add_task("sweep", total=len(grid))
            points = run_sweep(config, grid, ledger=ledger, lab_dir=folder, executor=ex,
                               family=family_of(config, settings),
                               progress=lambda d, t: bar.update(task, completed=d, total=t))
        table = Table(title=f"sweep ({len(points)} points)")
        for col in ("point", "params", "status", "sharpe", "return", "max dd", "trades"):
            table.add_column(col)
        for p in points:
            m = p.metrics
            table.add_row(p.point_id, json.dumps(p.params), p.status,
                          f"{m.get('sharpe', 0):.2f}", f"{m.get('total_return', 0):+.2%}",
                          f"{m.get('max_drawdown', 0):.2%}", str(int(m.get("n_trades", 0))))
        _console().print(table)
        ledger.close()

    @lab.command("walkforward")
    @_config_opt
    @_exec_opt
    @_addr_opt
    def walkforward_cmd(config_path: Path, executor: str | None, address: str | None) -> None:
        """Sweep (resumable), then walk-forward selection with purging/embargo."""
        from rich.table import Table

        from argus_core.lab.config import family_of
        from argus_core.lab.executor import make_executor
        from argus_core.lab.gates import open_lab
        from argus_core.lab.sweep import returns_matrix, run_sweep
        from argus_core.lab.trials import store_summary
        from argus_core.lab.walkforward import walk_forward, walk_forward_splits

        config = _load(config_path, executor, address)
        settings, folder, ledger = open_lab(config)
        family = family_of(config, settings)
        w = settings.walkforward
        with make_executor(settings.executor) as ex:
            points = run_sweep(config, settings.sweep.grid(), ledger=ledger, lab_dir=folder,
                               executor=ex, family=family)
            _ts, matrix, ok = returns_matrix(points)
            splits = walk_forward_splits(matrix.shape[0], mode=w.mode, train_bars=w.train_bars,
                                         test_bars=w.test_bars, n_folds=w.n_folds,
                                         label_horizon=w.label_horizon, embargo=w.embargo)
            res = walk_forward(matrix, splits, executor=ex)
        store_summary(ledger, "lab_walkforward", family, res.to_dict())
        table = Table(title="walk-forward")
        for col in ("fold", "test bars", "chosen", "IS sharpe", "OOS sharpe", "OOS return"):
            table.add_column(col)
        for f in res.folds:
            table.add_row(str(f.fold), f"{f.test_start}-{f.test_end}",
                          json.dumps(ok[f.chosen].params), f"{f.is_sharpe:.3f}",
                          f"{f.oos_sharpe:.3f}", f"{f.oos_return:+.2%}")
        con = _console()
        con.print(table)
        con.print(f"stitched OOS: return {res.oos_equity[-1] - 1:+.2%}, Sharpe/bar "
                  f"{res.oos_sharpe:.3f}, positive folds {res.positive_share:.0%}, "
                  f"efficiency {res.efficiency:.2f}")
        ledger.close()

    @lab.command("bootstrap")
    @_config_opt
    @_exec_opt
    @_addr_opt
    def bootstrap_cmd(config_path: Path, executor: str | None, address: str | None) -> None:
        """Backtest once, then resample its realised plays ([lab.bootstrap])."""
        from argus_core.lab.bootstrap import BootstrapPaths, batch_tasks, bootstrap_batch, summarise
        from argus_core.lab.config import family_of
        from argus_core.lab.executor import make_executor
        from argus_core.lab.gates import canonical_hash, open_lab
        from argus_core.lab.sweep import PointTask, run_point
        from argus_core.lab.trials import store_summary

        config = _load(config_path, executor, address)
        settings, folder, ledger = open_lab(config)
        b = settings.bootstrap
        base = run_point(PointTask(config, {}, str(folder / "runs" / canonical_hash(config) /
                                                   "base"), "base"))
        if base.error:
            raise click.ClickException(f"backtest failed: {base.error}")
        if base.trade_pnls.size < 2:
            raise click.ClickException("fewer than 2 realised plays: nothing to resample")
        spec = b.spec(float(config.run.starting_cash))
        with make_executor(settings.executor) as ex:
            parts = ex.map(bootstrap_batch, batch_tasks(base.trade_pnls, spec, b.batches))
        summary = summarise(BootstrapPaths.concat(parts), spec, spec.n_trades or
                            base.trade_pnls.size, min_survival=b.min_survival,
                            max_ruin=b.max_ruin)
        store_summary(ledger, "lab_bootstrap", family_of(config, settings), summary.to_dict())
        _console().print_json(json.dumps(summary.to_dict()))
        ledger.close()

    @lab.command("gates")
    @_config_opt
    @_exec_opt
    @_addr_opt
    def gates_cmd(config_path: Path, executor: str | None, address: str | None) -> None:
        """Run every deploy gate; print and store the verdict with its reasons."""
        from argus_core.lab.gates import evaluate_config

        config = _load(config_path, executor, address)
        con = _console()
        verdict = evaluate_config(config, progress=lambda m: con.print(f"[dim]{m}[/dim]"))
        print_verdict(con, verdict)


def print_verdict(con: Any, verdict: Any) -> None:
    """Verdict, reasons and the headline figures."""
    colour = {"deploy": "green", "hold": "yellow", "kill": "red"}[verdict.verdict]
    con.print(f"[bold {colour}]verdict: {verdict.verdict.upper()}[/bold {colour}]")
    for r in verdict.reasons:
        con.print(f"  - {r}")
    d = verdict.details
    if "dsr" in d:
        con.print(f"DSR {d['dsr']['dsr']:.3f} ({d['dsr']['n_trials']} trials)")
    if "reality_check" in d:
        rc = d["reality_check"]
        con.print(f"White RC p {rc['white_rc_p']:.3f}, SPA p {rc['spa_p']:.3f}")
    if "bootstrap" in d:
        bs = d["bootstrap"]
        con.print(f"bootstrap survival {bs['survival']:.1%}, ruin {bs['ruin_probability']:.1%}")


@hookimpl
def report_sections(config: Config, run_dir: Path) -> dict[str, str] | None:
    """The latest stored deploy-gate verdict of this config (``argus lab gates`` stores it)."""
    if not config.lab:
        return None
    from argus_core.lab.config import family_of, lab_dir, lab_settings
    from argus_core.lab.gates import canonical_hash
    from argus_core.lab.trials import open_lab_ledger

    settings = lab_settings(config)
    path = lab_dir(config, settings) / "lab.db"
    if not path.exists():
        return {"Deploy gates": "<p>No verdict yet: run <code>argus lab gates --config "
                               f"{html.escape(str(config.path))}</code>.</p>"}
    with open_lab_ledger(path) as ledger:
        rows = ledger.query("select * from lab_gate_verdicts where family = ? and "
                            "config_hash = ? order by id desc limit 1",
                            (family_of(config, settings), canonical_hash(config)))
    if not rows:
        return {"Deploy gates": "<p>No verdict stored for this config: run "
                               "<code>argus lab gates</code>.</p>"}
    row = rows[0]
    items = "".join(f"<li>{html.escape(r)}</li>" for r in json.loads(row["reasons_json"]))
    return {"Deploy gates": f"<p><b>verdict: {html.escape(row['verdict'])}</b></p>"
                            f"<ul>{items}</ul>"}
