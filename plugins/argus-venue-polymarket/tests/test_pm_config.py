"""``[plugins.polymarket]``: every numeric setting is range-checked and a bad value names
its key; the venue declares its default book staleness for the core."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.config import parse_config, plugin_settings
from argus_core.errors import ConfigError

attrs.resolve_types(PolymarketSettings)
NUMERIC = [f.name for f in attrs.fields(PolymarketSettings)
           if any(t in str(f.type) for t in ("int", "float", "Decimal"))]


def test_every_numeric_setting_has_a_validator() -> None:
    assert len(NUMERIC) >= 20
    missing = [f.name for f in attrs.fields(PolymarketSettings)
               if f.name in NUMERIC and f.validator is None]
    assert missing == []


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("bad", [-1, 10 ** 9, float("nan")])
def test_an_out_of_range_value_names_its_key(name: str, bad: float) -> None:
    value: object = Decimal(str(bad)) if "Decimal" in str(
        attrs.fields_dict(PolymarketSettings)[name].type) else bad
    with pytest.raises(ValueError, match=name):
        PolymarketSettings(**{name: value})  # type: ignore[arg-type]


def test_a_bad_value_in_a_config_file_is_a_config_error_naming_the_key() -> None:
    config = parse_config({"argus": {"plugins": ["polymarket"]},
                           "plugins": {"polymarket": {"order_settle_s": 0,
                                                      "trades_poll_s": 2}}})
    with pytest.raises(ConfigError, match=r"order_settle_s: must be in \(0, 120\], got 0"):
        plugin_settings(config, "polymarket", PolymarketSettings)


def test_defaults_are_valid_and_the_venue_declares_its_staleness() -> None:
    PolymarketSettings()
    assert PolymarketVenue.default_stale_after_s == 30.0
