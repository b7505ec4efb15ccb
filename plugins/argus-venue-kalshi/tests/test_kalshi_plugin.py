"""The plugin is found through the ``argus`` entry-point group and registers its venue."""

from __future__ import annotations

from importlib.metadata import entry_points

from argus_venue_kalshi import plugin
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.venue import KalshiVenue


def test_entry_point_and_hooks() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="argus")}
    assert eps["kalshi"] == "argus_venue_kalshi.plugin"
    assert plugin.config_class() is KalshiSettings
    registered: dict[str, object] = {}
    plugin.register_venues(lambda name, factory: registered.__setitem__(name, factory))
    assert registered == {"kalshi": KalshiVenue}
    assert KalshiVenue.supports_live_orders and KalshiVenue.supports_post_only
