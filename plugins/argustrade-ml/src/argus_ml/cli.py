"""``argus ml features | dataset | train | evaluate | models | promote | demote``.

Every command works on files named on the command line: bars (a Kraken OHLCVT CSV),
a dataset folder, and the registry (a ledger file holding the ``ml`` tables).

Bad input is refused as the core's commands refuse it: a usage error (exit 2, naming the
command and the option) for what the command line itself gets wrong (``--end`` not after
``--start``, an unknown ``--features`` name or ``MODEL_ID``, a number out of range), else
the ``ArgusError``'s one ``error:`` line and its class's exit code (bad bars: DataError 4;
a registry that is not a SQLite file: LedgerError 7, naming it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from argus_core import DataError, FiniteFloat, LedgerError, PluginGroup


def _feature_keys(ctx: click.Context, param: click.Parameter, value: str | None
                  ) -> list[str] | None:
    """``--features``: each name[@version] must be registered (a usage error naming the
    option and the known names; it was a DataError, exit 1, after the bars were read)."""
    if value is None:
        return None
    from argus_ml.features import FeatureRegistry

    keys = [k.strip() for k in value.split(",")]
    registry = FeatureRegistry.default()
    names: dict[str, str] = {}
    for key in keys:
        try:
            name = registry.get(key).name
        except DataError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        if name in names:  # a DataError (exit 4) after the option was taken
            raise click.BadParameter(f"{key!r} names feature {name!r} again (after "
                                     f"{names[name]!r}); a model takes each feature once",
                                     ctx, param)
        names[name] = key
    return keys


@contextlib.contextmanager
def _registry(path: Path) -> Iterator[Any]:
    """The registry at ``path``, open; SQLite refusing the file (damaged, not SQLite) is a
    ``LedgerError`` naming it (exit 7; the core refuses a damaged or foreign file itself)."""
    import apsw

    from argus_ml.registry import open_registry

    try:
        with open_registry(path) as ledger:
            yield ledger
    except apsw.Error as exc:
        raise LedgerError(f"{path} cannot be used as a model registry: {type(exc).__name__}: "
                          f"{exc} (a damaged file, or not a SQLite ledger)") from None


def _known_model(registry: Any, model_id: str, path: Path) -> None:
    """A usage error naming ``MODEL_ID`` when the registry holds no such model."""
    known = [r["model_id"] for r in registry.models()]
    if model_id not in known:
        ctx = click.get_current_context()
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        raise click.BadParameter(f"no model {model_id!r} in {path} ("
                                 + (f"models: {shown})" if known else "it holds none)"),
                                 ctx, param_hint="'MODEL_ID'")

_registry_opt = click.option("--registry", "registry_path", required=True,
                             type=click.Path(dir_okay=False, path_type=Path),
                             help="Ledger file holding the model registry (created if new).")
# Commands that read the registry refuse a missing file: a mistyped path would otherwise
# create an empty registry and list nothing, exit 0 (only `train` creates one).
_existing_registry_opt = click.option(
    "--registry", "registry_path", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ledger file holding the model registry (written by `argus ml train`).")


def _bars_opts(fn: Any) -> Any:
    for opt in reversed([
        click.option("--bars", "bars_path", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Kraken OHLCVT CSV (time, open, high, low, close, volume, trades)."),
        click.option("--start", type=int, default=None, help="First bar (unix s, inclusive)."),
        click.option("--end", type=int, default=None, help="Last bar (unix s, exclusive)."),
        click.option("--features", "feature_keys", default=None, callback=_feature_keys,
                     help="Comma-separated name[@version] (default: every feature, latest)."),
        click.option("--horizon", type=click.IntRange(min=1), default=1,
                     help="Label horizon in bars (up/down over this many bars)."),
    ]):
        fn = opt(fn)
    return fn


def _dataset(bars_path: Path, start: int | None, end: int | None,
             feature_keys: list[str] | None, horizon: int) -> Any:
    from argus_ml.bars import read_ohlcvt_csv
    from argus_ml.dataset import build_dataset
    from argus_ml.features import FeatureRegistry
    from argus_ml.labels import LabelSpec

    if start is not None and end is not None and end <= start:
        raise click.BadParameter(f"{end} is not after --start {start} (unix seconds; --end "
                                 f"is exclusive)", click.get_current_context(),
                                 param_hint="'--end'")
    fs = FeatureRegistry.default().select(feature_keys)
    bars = read_ohlcvt_csv(bars_path, start_s=start, end_s=end)
    if len(bars) == 0:  # said "no bars to label", naming neither the file nor the window
        raise DataError(_empty_window(bars_path, start, end))
    try:
        return build_dataset(bars, fs, LabelSpec("up", horizon))
    except DataError as exc:  # e.g. fewer bars than the warm-up: these bars, named
        raise DataError(f"{bars_path}: {exc}") from None


def _empty_window(bars_path: Path, start: int | None, end: int | None) -> str:
    """Why the window holds no bars: the window and the file's own span."""
    import datetime as dt

    from argus_ml.bars import read_ohlcvt_csv

    def when(ts_ns: int) -> str:
        return dt.datetime.fromtimestamp(ts_ns // 10**9, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    every = read_ohlcvt_csv(bars_path)  # only on this error path
    span = (f"its bars close from {when(int(every.ts_ns[0]))} to {when(int(every.ts_ns[-1]))}"
            if len(every) else "it holds no bars")
    return (f"{bars_path}: no bars in the window --start {'(none)' if start is None else start}"
            f", --end {'(none)' if end is None else end} (unix seconds); {span}")


def _gates(edge: float, half_spread: float, fee_rate: float) -> Any:
    from argus_ml.market import BinaryMarket
    from argus_ml.registry import GateSettings

    return GateSettings(edge_threshold=edge, market=BinaryMarket(half_spread, fee_rate))


def _gate_opts(fn: Any) -> Any:
    for opt in reversed([
        click.option("--edge", type=FiniteFloat(0.0, 1.0, max_open=True), default=0.02,
                     show_default=True, help="Edge over ask + fee a bet needs."),
        click.option("--half-spread", type=FiniteFloat(0.0, 0.5, max_open=True), default=0.01,
                     show_default=True, help="Binary market model: ask = 0.5 + this."),
        click.option("--fee-rate", type=FiniteFloat(0.0, 1.0, max_open=True), default=0.02,
                     show_default=True,
                     help="Binary market model: fee as a share of the price paid."),
    ]):
        fn = opt(fn)
    return fn


def build_group() -> click.Group:
    """The ``argus ml`` click group."""

    @click.group("ml", cls=PluginGroup)
    def ml() -> None:
        """The probability layer: features, datasets, training, models and their status."""

    @ml.command("features")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def features(as_json: bool) -> None:
        """List every registered feature definition (name@version, lookback, meaning)."""
        from argus_ml.features import FeatureRegistry

        rows = [{"key": f.key, "lookback": f.lookback, "lag": f.lag,
                 "description": f.description} for f in FeatureRegistry.default().all()]
        if as_json:
            click.echo(json.dumps(rows, indent=1))
            return
        for r in rows:
            click.echo(f"{r['key']:<20} lookback {r['lookback']:>3}  {r['description']}")

    @ml.command("dataset")
    @_bars_opts
    @click.option("--out", "out_dir", required=True,
                  type=click.Path(file_okay=False, path_type=Path),
                  help="Folder for the data file and manifest.json.")
    @click.option("--format", "fmt", type=click.Choice(["ndjson", "parquet"]),
                  default="ndjson", show_default=True,
                  help="data.ndjson (canonical bytes) or data.parquet (same content hash).")
    def dataset(bars_path: Path, start: int | None, end: int | None,
                feature_keys: list[str] | None, horizon: int, out_dir: Path, fmt: str) -> None:
        """Build a leakage-checked dataset and export it with a hashed manifest."""
        from argus_ml.dataset import export_dataset

        man = export_dataset(_dataset(bars_path, start, end, feature_keys, horizon),
                             out_dir, fmt=fmt)
        click.echo(f"{man['rows']} rows, {len(man['features'])} features, label up@{horizon}; "
                   f"dataset {man['dataset_hash'][:16]} -> {out_dir}")

    @ml.command("train")
    @_bars_opts
    @_registry_opt
    @click.option("--model", type=click.Choice(["logreg", "gbm"]), default="logreg",
                  show_default=True)
    @click.option("--calibration", type=click.Choice(["isotonic", "platt", "none"]),
                  default="isotonic", show_default=True)
    @click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
    # training.DEFAULT_EMBARGO_ROWS (not imported here: the CLI loads training on use)
    @click.option("--embargo", type=click.IntRange(min=0), default=24, show_default=True,
                  help="Embargo after each test block, in rows (bars).")
    @click.option("--name", default="updown", show_default=True)
    @click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
                  default=None,
                  help="Write report.json and reliability.png here.")
    @click.option("--drift-window", type=click.IntRange(min=1), default=500,
                  show_default=True,
                  help="Rows per PSI window the drift thresholds are calibrated on.")
    @click.option("--drift-quantile", type=FiniteFloat(0.0, 1.0, min_open=True),
                  default=0.99, show_default=True,
                  help="Quantile of the training windows' PSI that is a feature's threshold.")
    def train_cmd(bars_path: Path, start: int | None, end: int | None,
                  feature_keys: list[str] | None, horizon: int, registry_path: Path,
                  model: str,
                  calibration: str, folds: int, embargo: int, name: str,
                  report_dir: Path | None, drift_window: int, drift_quantile: float) -> None:
        """Train under purged walk-forward CV, calibrate out of fold, register as shadow."""
        from rich.progress import Progress

        from argus_ml import training
        from argus_ml.registry import ModelRegistry

        ds = _dataset(bars_path, start, end, feature_keys, horizon)
        spec = training.TrainSpec(model, calibration, n_folds=folds, embargo_rows=embargo,
                                  drift_window=drift_window, drift_quantile=drift_quantile)
        with Progress(transient=True) as bar:
            task = bar.add_task(f"training {model}", total=folds + 2)
            try:
                result = training.train(
                    ds, spec, progress=lambda done, total: bar.update(task, completed=done,
                                                                      total=total))
            except DataError as exc:  # these bars cannot be trained on: say which
                raise DataError(f"{bars_path}: {exc}") from None
        with _registry(registry_path) as ledger:
            mid = ModelRegistry(ledger).register(
                result.model, result.report, name=name, dataset_hash=ds.content_hash(),
                source_sha256=ds.source_sha256, code_version=training.code_version(),
                drift=result.drift)
        rep = result.report
        if report_dir is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            summary = {k: v for k, v in rep.items() if k != "oof"}
            (report_dir / "report.json").write_text(json.dumps(summary, indent=1,
                                                               sort_keys=True))
            training.write_reliability(result, ds, report_dir / "reliability.png")
        click.echo(f"model {mid} (shadow): {len(ds)} rows, params {rep['params']}")
        for key in ("oof_calibrated", "oof_raw", "climatology", "market_0.5"):
            s = rep[key]
            click.echo(f"  {key:<15} Brier {s['brier']:.5f}  rel {s['reliability']:.5f}  "
                       f"res {s['resolution']:.5f}  logloss {s['log_loss']:.5f}  "
                       f"AUC {s['auc']:.4f}")
        if result.drift is None:
            click.echo(f"  drift: {len(ds)} rows < 2 x {drift_window}: no PSI thresholds "
                       "calibrated (the monitor will use its fixed limit)")
        else:
            click.echo(f"  drift: PSI thresholds (q{drift_quantile:g} of "
                       f"{result.drift['windows']} {drift_window}-row training windows): "
                       + ", ".join(f"{k} {v['threshold']:.3f}"
                                   for k, v in result.drift["features"].items()))

    @ml.command("evaluate")
    @_existing_registry_opt
    @click.argument("model_id")
    @_gate_opts
    def evaluate(registry_path: Path, model_id: str, edge: float, half_spread: float,
                 fee_rate: float) -> None:
        """Judge a model's out-of-sample record against the promotion gates (changes nothing)."""
        from argus_ml.registry import ModelRegistry, check_gates

        with _registry(registry_path) as ledger:
            registry = ModelRegistry(ledger)
            _known_model(registry, model_id, registry_path)
            verdict = check_gates(registry.report(model_id), _gates(edge, half_spread, fee_rate))
        click.echo(("PASS" if verdict.passed else "FAIL") + f" {model_id}")
        for k, v in verdict.figures.items():
            click.echo(f"  {k:<24} {v:.5g}")
        for f in verdict.failures:
            click.echo(f"  - {f}")

    @ml.command("models")
    @_existing_registry_opt
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--events", is_flag=True, help="Also list every status change.")
    def models(registry_path: Path, as_json: bool, events: bool) -> None:
        """List registered models (and their status history)."""
        from argus_ml.registry import ModelRegistry

        with _registry(registry_path) as ledger:
            reg = ModelRegistry(ledger)
            rows, evs = reg.models(), reg.events() if events else []
        if as_json:
            click.echo(json.dumps({"models": rows, "events": evs}, indent=1))
            return
        for r in rows:
            click.echo(f"{r['model_id']}  {r['status']:<6} {r['name']:<10} {r['model_kind']:<6} "
                       f"{r['features_json']}  data {r['dataset_hash'][:12]}  "
                       f"code {r['code_version']}")
        for e in evs:
            click.echo(f"  {e['model_id']} {e['event']:<10} {e['from_status']} -> "
                       f"{e['to_status']} ({e['actor']}): {e['reason']}")

    @ml.command("promote")
    @_existing_registry_opt
    @click.argument("model_id")
    @click.option("--to", "to_status", type=click.Choice(["paper", "live"]), required=True)
    @click.option("--reason", default="", help="Why (recorded with the gate figures).")
    @_gate_opts
    def promote(registry_path: Path, model_id: str, to_status: str, reason: str, edge: float,
                half_spread: float, fee_rate: float) -> None:
        """Promote one step (shadow -> paper -> live) if the gates pass; refusals are recorded."""
        from argus_ml.registry import ModelRegistry

        with _registry(registry_path) as ledger:
            registry = ModelRegistry(ledger)
            _known_model(registry, model_id, registry_path)
            registry.promote(model_id, to_status, _gates(edge, half_spread, fee_rate),
                             reason=reason)
        click.echo(f"{model_id} -> {to_status}")

    @ml.command("demote")
    @_existing_registry_opt
    @click.argument("model_id")
    @click.option("--to", "to_status", type=click.Choice(["shadow", "paper"]), default="shadow")
    @click.option("--reason", required=True)
    def demote(registry_path: Path, model_id: str, to_status: str, reason: str) -> None:
        """Demote a model, recording why."""
        from argus_ml.registry import ModelRegistry

        with _registry(registry_path) as ledger:
            registry = ModelRegistry(ledger)
            _known_model(registry, model_id, registry_path)
            registry.demote(model_id, to_status, reason)
        click.echo(f"{model_id} -> {to_status}")

    return ml


#: The group the ``argus.commands`` entry point names.
ml = build_group()
