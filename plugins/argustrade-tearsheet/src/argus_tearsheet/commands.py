"""``argus export``: the plugin's CLI sub-command (``argus.commands`` entry point).

A RUN_DIR or ``--out`` that is a file is a usage error (exit 2, as ``argus report``); a
run directory without a usable ledger is a ``LedgerError`` naming it (exit 7)."""

from __future__ import annotations

from pathlib import Path

import click

from argus_tearsheet.export import FORMATS, TABLES, export_run


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv",
              show_default=True,
              help="csv, or parquet (pyarrow); money stays exact text in both.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None,
              help="Folder to write into (default: RUN_DIR/export).")
def export(run_dir: Path, fmt: str, out_dir: Path | None) -> None:
    """Write a run's trades, orders, fills and equity as CSV or Parquet files."""
    for path in export_run(run_dir, out_dir, fmt):
        click.echo(f"wrote {path}")


export.help = (export.help or "") + f" Tables: {', '.join(TABLES)}."
