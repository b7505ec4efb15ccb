"""Constants of the VRP plugin."""

from __future__ import annotations

VENUE = "vrp_options"
STRATEGY = "vrp_put_spread"
MULTIPLIER = 100  # shares per listed SPY/QQQ option contract
#: Option prices on this venue are quoted **per contract** (premium per share x 100), so the
#: core's position P&L (price x quantity) is in dollars without a multiplier.
TICK_PER_CONTRACT = "1"  # $0.01 per share (penny-pilot classes) = $1 per contract
VIX_INSTRUMENT = f"{VENUE}:VIX"
CLOSE_HOUR_UTC = 21  # bars and quotes are stamped at the 16:00 New York close (~21:00 UTC)
LEAN_FILES = {"SPY": "lean_spy_daily.csv", "QQQ": "lean_qqq_daily.csv"}
VIX_FILE = "cboe_vix_daily.csv"
#: Splits in the raw (unadjusted) Lean files: (first day at the new price, new shares per
#: old share).  Prices before it are divided by the ratio and volumes multiplied, so the
#: replayed underlying (and the puts, the regime features and the settlements priced from
#: it) does not fall 50% on a day the market did not move: QQQ split 2:1 on 2000-03-20.
SPLITS: dict[str, tuple[tuple[str, float], ...]] = {"QQQ": (("2000-03-20", 2.0),)}
#: A close-to-close move beyond this factor (either way) after the splits are applied is
#: refused as an unlisted split or a bad row (SPY's and QQQ's largest: 1.18 on 2001-01-03).
MAX_DAILY_MOVE = 1.6
#: More calendar days than this between two bars is a hole in the file, not a holiday or
#: a market closure (the longest closure in the data: 2001-09-10 -> 2001-09-17, 7 days);
#: the bundled QQQ file has no bars from 2004-12-01 to 2011-03-22.
MAX_GAP_DAYS = 10
