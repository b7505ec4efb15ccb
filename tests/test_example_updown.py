"""The up/down example's config (``examples/polymarket_updown/paper.toml``) is one a
user can run: it loads, every plugin's settings validate, the composite builds its inner
venues from the same file, and the scanner is the latency scanner with the documented
pairs.  (Nothing here connects: building a venue opens no socket.)"""

from __future__ import annotations

import pytest
from argus_test_helpers import ROOT

from argus_core.config import load_config
from argus_core.runtime import build, load_host, validate_settings

EXAMPLE = ROOT / "examples" / "polymarket_updown" / "paper.toml"


def test_the_updown_example_validates_and_builds_offline() -> None:
    for plugin in ("argus_multivenue", "argus_venue_kraken", "argus_venue_polymarket",
                   "argus_scanners_polymarket"):
        pytest.importorskip(plugin)
    config = load_config(EXAMPLE)
    assert config.argus.mode == "paper"  # never live by default
    host = load_host(config)
    settings = validate_settings(config, host)
    pm = settings["polymarket"]
    assert (pm.discovery_poll_s, pm.end_when_resolved) == (60, False)
    venue = build(host, settings, "venue", config.run.venue)
    assert sorted(venue.inner) == ["kraken", "polymarket"]
    scanner = build(host, settings, "scanner", "latency")
    assert scanner.name == "latency"
    assert settings["pmscanners"].latency.pairs == {"BTC": "kraken:BTC/USD",
                                                    "ETH": "kraken:ETH/USD"}
