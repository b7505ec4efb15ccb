"""``argus kalshi-settlements`` (entry point ``argus.commands``: imported only when it
runs): Kalshi's settlements of this account against a run's ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click


@click.command("kalshi-settlements")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The run's config ([plugins.kalshi] with the account's credentials).")
@click.option("--run-dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run directory whose ledger is compared.")
def kalshi_settlements(config_path: Path, run_dir: Path) -> None:
    """Compare GET /portfolio/settlements with the ledger's settlement fills; print every
    difference (missing, extra, different) and exit 1 when there is one."""
    from argus_core import ArgusError, load_config, plugin_settings
    from argus_venue_kalshi.config import KalshiSettings
    from argus_venue_kalshi.reconcile import reconcile_run
    from argus_venue_kalshi.venue import KalshiVenue

    async def compare() -> list[str]:
        settings = plugin_settings(load_config(config_path), "kalshi", KalshiSettings)
        venue = KalshiVenue(settings)
        try:
            return [d.describe() for d in await reconcile_run(venue, run_dir)]
        finally:
            await venue.close()

    try:
        differences = asyncio.run(compare())
    except ArgusError as exc:
        raise click.ClickException(str(exc)) from None
    for line in differences:
        click.echo(line)
    if differences:
        raise SystemExit(1)
    click.echo("kalshi settlements match the ledger")
