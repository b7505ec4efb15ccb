"""``argus crossvenue suggest --config C``: print candidate Kalshi x Polymarket pairs for a
person to check and put into the mapping file (entry point group ``argus.commands``).
Suggestions are never scanned or traded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import attrs
import click


@click.group("crossvenue")
def crossvenue() -> None:
    """Kalshi x Polymarket: mapping suggestions."""


@crossvenue.command("suggest")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="A config whose [plugins.crossvenue] names both venues.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Smallest TF-IDF cosine similarity shown.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def suggest_cmd(config_path: Path, threshold: float, limit: int, as_json: bool) -> None:
    """Candidate pairs by text similarity (suggestions only: never traded)."""
    from argus_core import ArgusError, Instrument, load_config, plugin_settings
    from argus_crossvenue.config import CrossVenueSettings
    from argus_crossvenue.suggest import suggest
    from argus_crossvenue.venue import CrossVenue

    try:
        config = load_config(config_path)
        settings = plugin_settings(config, "crossvenue", CrossVenueSettings)
        venue = CrossVenue(settings)

        async def fetch() -> list[Instrument]:
            try:
                return list(await venue.instruments())
            finally:
                await venue.close()
        instruments = asyncio.run(fetch())
    except ArgusError as exc:
        raise click.ClickException(str(exc)) from None
    found = suggest(instruments, threshold, limit)
    if as_json:
        click.echo(json.dumps([attrs.asdict(s) for s in found], indent=2))
        return
    if not found:
        click.echo(f"no pair reads alike at similarity >= {threshold}")
        return
    click.echo("# Suggestions only: check both venues' rules, resolution sources and dates "
               "before mapping a pair.")
    for n, s in enumerate(found, 1):
        click.echo(f"\n# {s.similarity:.3f}  kalshi: {s.kalshi_text[:100]!r}\n"
                   f"#        polymarket: {s.polymarket_text[:100]!r}")
        click.echo(s.as_toml(f"candidate-{n}"))
