"""Argus scanner plugin: negRisk rebalancing and binary YES+NO arbitrage."""
