"""Shared pieces of the league's replay tests: a strategy whose edge is known (it reads
the next bar from the bundled CSV, a test-only oracle) and decays on a given date, and
the replay config."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from argus_core import (
    Bar,
    Config,
    Intent,
    Ledger,
    MarketEvent,
    Side,
    Strategy,
    StrategyContext,
    structure,
)

BARS = Path(__file__).resolve().parents[3] / "examples" / "data" / "kraken_XBTUSD_60.csv"
IID = "replay:BTC/USD"


@cache
def next_bars() -> dict[int, tuple[float, float]]:
    """Bar open time (ns) -> (open, close) of the bundled bars."""
    with open(BARS, newline="") as fh:
        return {int(row[0]) * 10**9: (float(row[1]), float(row[4])) for row in csv.reader(fh)}


def ns(day: str) -> int:
    """Midnight UTC of an ISO date, in ns."""
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 10**9


class Oracle(Strategy):
    """Holds ``quantity`` BTC through the next bar exactly when that bar rises (it reads
    the bar from the CSV: a known edge) until ``decay_ns``; from then on exactly when it
    falls (the edge turned into a loss)."""

    name = "oracle"

    def __init__(self, quantity: str = "0.5", decay_ns: int | None = None) -> None:
        self.quantity = Decimal(quantity)
        self.decay_ns = decay_ns

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if not isinstance(event, Bar):
            return []
        nxt = next_bars().get(event.ts_ns)  # a Bar's ts_ns is its close = the next's open
        if nxt is None:
            return []
        rises = nxt[1] > nxt[0]
        decayed = self.decay_ns is not None and event.ts_ns >= self.decay_ns
        want = rises != decayed
        held = ctx.portfolio.position(event.instrument_id).quantity
        if want and held == 0:
            return [Intent(self.name, event.instrument_id, Side.BUY, quantity=self.quantity,
                           reason="next bar rises" if not decayed else "decayed edge")]
        if not want and held > 0:
            return [Intent(self.name, event.instrument_id, Side.SELL, quantity=held,
                           reduce_only=True, reason="exit")]
        return []


def replay_config(start: str, end: str, league: dict[str, Any] | None = None, *,
                  strategies: Sequence[str] = (), sizer: str = "fixed_fraction",
                  portfolio: dict[str, Any] | None = None,
                  every: int = 24, capital: dict[str, str] | None = None) -> Config:
    """A replay of the bundled bars with only the ``league`` check, no fees or spread."""
    raw: dict[str, Any] = {
        "argus": {"plugins": ["portfolio"], "mode": "replay", "seed": 1},
        "run": {"venue": "replay", "strategies": list(strategies), "risk_checks": ["league"],
                "sizer": sizer, "starting_cash": "100000", "checkpoint_every_events": every,
                "stale_after_s": 0, "capital": capital or {}},
        "paper": {"bar_spread_bps": "0", "bar_depth_fraction": 1.0},
        "plugins": {"replay": {"bars_csv": str(BARS), "symbol": "BTC/USD",
                               "bar_seconds": 3600, "start": start, "end": end,
                               "maker_bps": "0", "taker_bps": "0"},
                    "portfolio": {**(portfolio or {}), "league": league or {}}}}
    return structure(raw, Config, "<test>")


def rows(run_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Query a finished run's ledger."""
    with Ledger.in_dir(run_dir) as ledger:
        return ledger.query(sql, params)
