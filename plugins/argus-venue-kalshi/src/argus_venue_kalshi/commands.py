"""``argus kalshi-settlements`` (entry point ``argus.commands``: imported only when it
runs): Kalshi's settlements of this account against a run's ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

#: A long read of Kalshi's settlements reports its progress every this many pages.
PROGRESS_EVERY_PAGES = 10


@click.command("kalshi-settlements")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The run's config ([plugins.kalshi] with the account's credentials).")
@click.option("--run-dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run directory whose ledger is compared.")
def kalshi_settlements(config_path: Path, run_dir: Path) -> None:
    """Compare GET /portfolio/settlements with the ledger's settlement fills; print every
    difference (missing, extra, different) and exit 1 when there is one.

    Refused before anything is asked of Kalshi: a run directory without a readable run
    ledger (the core's LedgerError, exit 7), a config without the account's credentials
    (ConfigError, exit 2)."""
    from argus_core import ConfigError, load_config, plugin_settings
    from argus_venue_kalshi.config import KalshiSettings
    from argus_venue_kalshi.reconcile import (
        kalshi_settled,
        ledger_settled,
        ledger_since_s,
        reconcile_settlements,
    )
    from argus_venue_kalshi.venue import KalshiVenue

    ledger, traded = ledger_settled(run_dir)  # read-only, before any request
    since = ledger_since_s(run_dir)  # the run's first fill: older settlements are not its
    config = load_config(config_path)
    settings = plugin_settings(config, "kalshi", KalshiSettings)
    if not settings.has_credentials:
        raise ConfigError(f"{config.path}: [plugins.kalshi] has no api_key_id and "
                          f"private_key: the account's settlements need them "
                          f"(api_key_id = \"$env:KALSHI_API_KEY_ID\", private_key = "
                          f"\"$file:~/.kalshi/key.pem\")")

    def progress(pages: int, items: int) -> None:
        if pages % PROGRESS_EVERY_PAGES == 0:  # a long read says how far it has got
            click.echo(f"kalshi-settlements: {items} settlements read ({pages} pages)",
                       err=True)

    async def compare() -> list[str]:
        venue = KalshiVenue(settings)
        try:
            kalshi = kalshi_settled(await venue.execution.settlements(
                min_ts=since, progress=progress))
        finally:
            await venue.close()
        return [d.describe() for d in reconcile_settlements(kalshi, ledger, traded)]

    # Argus errors reach the core's handler: one error: line with the class's exit code
    # (they were click's Error:, exit 1, the code of "differences found").
    differences = asyncio.run(compare())
    for line in differences:
        click.echo(line)
    if differences:
        raise SystemExit(1)
    click.echo("kalshi settlements match the ledger")
