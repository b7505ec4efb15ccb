"""Argus plugin ``crossvenue``: Kalshi and Polymarket as one composite venue, the
cross-venue arbitrage scanner over an explicit mapping file, and ``argus crossvenue
suggest`` (text-similarity candidates for a person to map; never traded)."""
