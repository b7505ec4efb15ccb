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
