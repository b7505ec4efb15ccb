"""A seeded, exchange-shaped synthetic snapshot (the benchmark's, and the equality tests').

``synthetic(n_events)``: Gamma-style events of five markets each, YES and NO books of ten
levels a side one tick apart, 1 % taker fees, books stamped 60 s before ``NOW_NS``, and
one Kraken BTC/USD spot book (``SPOT``):

* negRisk events (Dirichlet probabilities); a negRisk arbitrage in 2 %, a resolved winner
  still quoted in 2 %, a near-certain outcome 48 h before the end in 4 %, 5 % of the books
  four ticks wide, 1 % of YES tokens with a trade printed 0.08 above the mid 30 s ago;
* every 20th event (from 0): a family of five nested binary markets ("Will the Fed cut
  rates by 25+ / ... / 125+ bps at the <month> <year> meeting?"), one in three priced
  against its nesting;
* every 20th event (from 10): five BTC up/down markets (a 15-minute window with 5 minutes
  left, opening price within 0.4 % of the spot), one in five quoted at a stale 0.50.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from argus_core import Event, FeeSchedule, MarketState, Outcome, Trade
from argus_scanners_polymarket.fixtures import MarketBuilder, updown_pair
from argus_scanners_polymarket.value import BaselineForecaster

NOW_NS = 10**18
HOUR_NS = 3600 * 10**9
YEAR_NS = 365 * 24 * HOUR_NS
TAKER = 0.01  # the synthetic taker fee: 1 % of notional (FeeSchedule(taker_bps=100))
SPOT = "kraken:BTC/USD"
WORDS = ["election", "senate", "house", "governor", "bitcoin", "ethereum", "price", "above",
         "below", "fed", "cut", "rates", "march", "june", "july", "champion", "league",
         "final", "winner", "oscar", "film", "album", "chart", "tariff", "court", "ruling",
         "war", "ceasefire", "deal", "summit", "launch", "approve", "inflation", "jobs"]
MONTHS = ["january", "march", "may", "june", "july", "september", "november", "december"]


def _ladder(best: float, step: float, sizes: np.ndarray) -> list[tuple[float, float]]:
    """Ten levels from ``best`` one tick apart (``step`` -0.01 bids, +0.01 asks), in (0, 1)."""
    out = []
    for k, size in enumerate(sizes.tolist()):
        price = round(best + step * k, 2)
        if 0.001 < price < 0.999:
            out.append((price, size))
    return out


def quote(b: MarketBuilder, rng: np.random.Generator, yes: str, no: str, p: float,
           *, half_spread: float = 0.01, ts_ns: int = NOW_NS - 60 * 10**9) -> None:
    """YES books around ``p`` (bid p - half_spread, ask p + half_spread) and NO mirrored."""
    sizes = rng.uniform(10, 500, 10).round(2)
    for iid, mid in ((yes, p), (no, round(1 - p, 2))):
        b.book(iid, _ladder(round(mid - half_spread, 2), -0.01, sizes),
               _ladder(round(mid + half_spread, 2), 0.01, sizes), ts_ns=ts_ns)


def synthetic(n_events: int, seed: int = 0) -> MarketState:
    """The snapshot of the module docstring."""
    rng = np.random.default_rng(seed)
    b = MarketBuilder(FeeSchedule(taker_bps=Decimal(100)))
    spot = 100_000.0
    b.book(SPOT, [(spot - 5, 2.0)], [(spot + 5, 2.0)], ts_ns=NOW_NS - 10**9)
    for e in range(n_events):
        if e % 20 == 0:  # nested thresholds: P(cut >= 50) <= P(cut >= 25) <= ...
            month, year = MONTHS[e // 20 % 8], 2026 + e // 160
            qs = [f"Will the Fed cut rates by {k}+ bps at the {month} {year} meeting?"
                  for k in (25, 50, 75, 100, 125)]
            ids = b.event(f"E{e}", [f"{k}+" for k in (25, 50, 75, 100, 125)], questions=qs,
                          neg_risk=False, end_ts_ns=NOW_NS + 400 * HOUR_NS)
            probs = [0.70, 0.45, 0.25, 0.12, 0.05]
            if e % 60 == 0:
                probs[0], probs[1] = 0.40, 0.50  # the market says 50+ is likelier than 25+
            for (yes, no), p in zip(ids, probs, strict=True):
                quote(b, rng, yes, no, p)
            continue
        if e % 20 == 10:  # BTC up/down windows over the spot book
            for k in range(5):
                start, end = NOW_NS - 600 * 10**9, NOW_NS + 300 * 10**9
                open_price = spot * (1 + float(rng.uniform(-0.004, 0.004)))
                up, down = updown_pair(b, f"E{e}-{k}", "BTC", start, end, open_price)
                b.market.apply(Event("polymarket", f"E{e}-{k}", f"BTC up or down {e}-{k}",
                                     (Outcome("Up", up, down), Outcome("Down", down, up)),
                                     neg_risk=False, end_ts_ns=end))
                fair = p_up_of(spot, open_price, 0.6, 300 / (365 * 24 * 3600))
                p = 0.50 if k == 0 else min(max(round(fair, 2), 0.03), 0.97)
                quote(b, rng, up, down, p)
            continue
        near = e % 25 == 1
        end = NOW_NS + (48 if near else int(rng.integers(100, 2000))) * HOUR_NS
        ids = b.event(f"E{e}", [f"o{i}" for i in range(5)],
                      questions=[" ".join(rng.choice(WORDS, 8)) + f" {e} {i}?"
                                 for i in range(5)], end_ts_ns=end)
        probs = rng.dirichlet(np.ones(5)).tolist()
        if near or e % 50 == 3:
            probs = [0.97, 0.01, 0.01, 0.005, 0.005]
        arb = e % 50 == 7
        for i, ((yes, no), p) in enumerate(zip(ids, probs, strict=True)):
            p = float(np.clip(round(p, 2), 0.02, 0.97))
            if arb:
                p = max(round(p - 0.03, 2), 0.02)
            wide = rng.random() < 0.05
            quote(b, rng, yes, no, p, half_spread=0.02 if wide else 0.01)
            if rng.random() < 0.01:  # a print above the ask: what the baseline flags
                b.market.apply(Trade(yes, NOW_NS - 30 * 10**9, Decimal(repr(round(p + 0.08, 2))),
                                     Decimal(25)))
            if e % 50 == 3 and i == 0:
                b.settle(yes, 1, ts_ns=NOW_NS - 120 * 10**9)
    b.market.now_ns = NOW_NS
    b.market.forecasters = {"baseline": BaselineForecaster()}
    return b.market


def p_up_of(spot: float, open_price: float, sigma: float, tau_years: float) -> float:
    """``P(up)`` of the latency scanner's model, in floats (to quote the markets fairly)."""
    scale = sigma * math.sqrt(tau_years)
    return 0.5 * (1 + math.erf(math.log(spot / open_price) / scale / math.sqrt(2)))
