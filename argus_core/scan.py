"""``argus scan``: snapshot the configured venues and run the configured scanners."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from argus_core.config import Config
from argus_core.errors import ConfigError
from argus_core.market_state import MarketState
from argus_core.models import Opportunity
from argus_core.runtime import Lazy, build, load_host, validate_settings
from argus_core.serde import converter


async def snapshot_and_scan(config: Config) -> list[Opportunity]:
    """One snapshot of the configured venue, folded into market state, then every scanner."""
    host = load_host(config)
    settings = validate_settings(config, host)
    if not config.run.scanners:
        raise ConfigError(f"{config.path}: [run] scanners is empty; name at least one scanner "
                          f"(e.g. scanners = [\"negrisk\"])")
    venue = build(host, settings, "venue", config.run.venue)
    scanners = [build(host, settings, "scanner", name) for name in config.run.scanners]
    try:
        market = MarketState(fees=venue.fee_schedule)
        market.forecasters = Lazy(partial(build, host, settings, "forecaster"),
                                  sorted(host.registry["forecaster"]))
        market.add_instruments(await venue.instruments())
        for event in await venue.snapshot():
            market.apply(event)
    finally:
        await venue.close()
    found: list[Opportunity] = []
    for scanner in scanners:
        found.extend(scanner.scan(market, market.now_ns))
    found.sort(key=lambda o: (o.score is None, -(o.score or 0.0), -o.expected_profit))
    return found


def _table(opps: list[Opportunity]) -> Table:
    table = Table("lane", "score", "kind", "event", "legs", "size", "edge/unit", "profit",
                  "risk-free", "reason")
    for o in opps:
        table.add_row(o.lane, "" if o.score is None else f"{o.score:.3f}", o.kind, o.event_id,
                      str(len(o.legs)), f"{o.max_size}",
                      f"{o.edge_per_unit:.4f}", f"{o.expected_profit:.2f}",
                      "yes" if o.risk_free else "NO", o.reason)
    return table


async def run_scan(config: Config, *, once: bool, as_json: bool, interval_s: float,
                   max_scans: int | None, out: Console) -> None:
    """The command's body: once (optionally JSON) or continuously with a live table."""
    if once:
        opps = await snapshot_and_scan(config)
        if as_json:
            data: list[dict[str, Any]] = [converter.unstructure(o) for o in opps]
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            out.print(_table(opps))
        return
    scans = 0
    with Live(_table([]), console=out, refresh_per_second=2) as live:
        while max_scans is None or scans < max_scans:
            live.update(_table(await snapshot_and_scan(config)))
            scans += 1
            if max_scans is None or scans < max_scans:
                await asyncio.sleep(interval_s)
