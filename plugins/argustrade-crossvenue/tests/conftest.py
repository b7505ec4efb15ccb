"""Fixtures: a market state holding one Kalshi market and one Polymarket market with
each venue's real fee schedule, and a mapping file writer."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_venue_kalshi.fees import KalshiFeeSchedule
from argus_venue_polymarket.fees import PolymarketFeeSchedule

from argus_core import FeeSchedule, Instrument, MarketState, OrderBook

TICKER = "KXFEDCUT-26SEP"
K_YES, K_NO = f"kalshi:{TICKER}/YES", f"kalshi:{TICKER}/NO"
P_YES_TOKEN, P_NO_TOKEN = "111", "222"
P_YES, P_NO = f"polymarket:{P_YES_TOKEN}", f"polymarket:{P_NO_TOKEN}"
PM_FEES = PolymarketFeeSchedule(rate=D("0.05"), exponent=D(1))
K_FEES = KalshiFeeSchedule()


def instruments(pm_min_size: str = "5") -> list[Instrument]:
    """Kalshi's YES/NO of one market (cent ticks, whole contracts) and Polymarket's two
    tokens (cent ticks, 0.01 lots, a 5-share minimum), with the meta the venues set."""
    out = [Instrument("kalshi", f"{TICKER}/{side}", kind="binary", tick_size=D("0.01"),
                      lot_size=D(1), min_size=D(1),
                      meta={"ticker": TICKER, "is_yes": side == "YES", "title":
                            "Will the Fed cut rates at the September 2026 FOMC meeting?"})
           for side in ("YES", "NO")]
    for token, other, outcome in ((P_YES_TOKEN, P_NO_TOKEN, "Yes"),
                                  (P_NO_TOKEN, P_YES_TOKEN, "No")):
        out.append(Instrument("polymarket", token, kind="binary", tick_size=D("0.01"),
                              lot_size=D("0.01"), min_size=D(pm_min_size),
                              meta={"complement": f"polymarket:{other}",
                                    "token_outcome": outcome, "is_yes": outcome == "Yes",
                                    "question": "Will the Fed cut interest rates in "
                                                "September 2026?"}))
    return out


def fees(instrument_id: str) -> FeeSchedule:
    """Each venue's real schedule: Kalshi 0.07 p(1-p) up to the cent, Polymarket
    0.05 p(1-p) down to 0.00001."""
    return K_FEES if instrument_id.startswith("kalshi:") else PM_FEES


Levels = list[tuple[float, float]]


@pytest.fixture
def make_market() -> Callable[..., MarketState]:
    """``make_market({iid: (bids, asks)}, pm_min_size=...)``: books as given (best first)."""
    def make(books: dict[str, tuple[Levels, Levels]], pm_min_size: str = "5") -> MarketState:
        market = MarketState(fees=fees)
        market.add_instruments(instruments(pm_min_size))
        for iid, (bids, asks) in books.items():
            market.apply(OrderBook(iid, 1_000, bids, asks))
        return market
    return make


PAIR: dict[str, Any] = {
    "name": "fed-cut", "relation": "same",
    "kalshi": {"ticker": TICKER, "side": "yes", "resolution_source": "FOMC statement",
               "settles": "2026-09-16"},
    "polymarket": {"token_id": P_YES_TOKEN, "outcome": "Yes",
                   "resolution_source": "FOMC statement", "settles": "2026-09-16"},
}


@pytest.fixture
def write_mapping(tmp_path: Path) -> Callable[..., Path]:
    """Write a mapping file of one pair (``PAIR`` with changes) and return its path."""
    def write(**changes: Any) -> Path:
        pair = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PAIR.items()}
        for key, value in changes.items():
            if "." in key:
                table, field = key.split(".")
                pair[table][field] = value
            else:
                pair[key] = value
        lines = ["[[pairs]]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in pair.items()
                                 if not isinstance(v, dict)]
        for table in ("kalshi", "polymarket"):
            lines.append(f"[pairs.{table}]")
            lines += [f"{k} = \"{v}\"" for k, v in pair[table].items()]
        path = tmp_path / "mapping.toml"
        path.write_text("\n".join(lines) + "\n")
        return path
    return write
