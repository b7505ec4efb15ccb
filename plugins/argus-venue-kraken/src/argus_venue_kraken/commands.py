"""``argus kraken-bars`` (entry point ``argus.commands``: imported only when it runs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

#: A WS v2 pair name: base and quote of letters and digits (``BTC/USD``, ``1INCH/EUR``).
_PAIR = re.compile(r"[A-Z0-9]{1,16}/[A-Z0-9]{1,16}")
#: The intervals Kraken's OHLC files and API have, in minutes.
_INTERVALS_MIN = (1, 5, 15, 30, 60, 240, 720, 1440, 10080, 21600)


@click.command("kraken-bars")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", default="BTC/USD", show_default=True,
              help="WS v2 pair name the bars belong to.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="NDJSON file of bars (replayable recording).")
@click.option("--interval", "interval_min", type=click.Choice([str(m) for m in _INTERVALS_MIN]),
              default=None, help="Bar interval in minutes (default: from the file name, "
                                 "XBTUSD_60.csv is 60, else the most common spacing).")
def kraken_bars(csv_path: Path, symbol: str, out_path: Path, interval_min: str | None
                ) -> None:
    """Convert a Kraken OHLCVT CSV into a replayable NDJSON recording; report gaps."""
    from argus_core import dump_event
    from argus_venue_kraken.history import load_ohlcvt_csv
    from argus_venue_kraken.instruments import instrument_id

    if not _PAIR.fullmatch(symbol):
        raise click.BadParameter(f"{symbol!r} is not a Kraken pair name such as BTC/USD "
                                 f"(upper-case base/quote)", param_hint="'--symbol'")
    if not out_path.parent.is_dir():  # before the CSV is read (it failed after, exit 1)
        raise click.BadParameter(f"folder '{out_path.parent}' does not exist",
                                 param_hint="'--out'")
    bars, report = load_ohlcvt_csv(csv_path, instrument_id(symbol),
                                   int(interval_min) * 60 if interval_min else None)
    with out_path.open("w") as handle:
        for bar in bars:
            handle.write(json.dumps(dump_event(bar), separators=(",", ":")) + "\n")
    click.echo(report.summary())
    for gap in report.gaps[:10]:
        click.echo(f"  gap: {gap.missing} bars from {gap.start_ns // 10**9} "
                   f"to {gap.end_ns // 10**9}")
    if len(report.gaps) > 10:
        click.echo(f"  ... {len(report.gaps) - 10} more gaps")
