"""Settings validation and markets -> instruments / events."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from argus_testkit import load_payload
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.instruments import (
    build,
    cents_to_probability,
    instrument_id,
    parse_instrument_id,
    probability_to_cents,
)
from argus_venue_kalshi.schemas import KalshiEvent, Market, count, price

from argus_core import ConfigError, DataError, Secret, plugin_settings

PAYLOADS = Path(__file__).parent / "payloads"


def test_settings_refuse_inline_secrets_and_bad_values() -> None:
    with pytest.raises(ConfigError):
        Secret("-----BEGIN PRIVATE KEY-----")
    with pytest.raises(ValueError, match="markets"):
        KalshiSettings(markets=["not a ticker"])
    with pytest.raises(ValueError, match="fee_rounding"):
        KalshiSettings(fee_rounding="dollar")
    with pytest.raises(ValueError, match="rest_url"):
        KalshiSettings(rest_url="ftp://x")
    assert not KalshiSettings().has_credentials


def test_settings_from_a_config_table(tmp_path) -> None:
    from argus_core import load_config
    path = tmp_path / "argus.toml"
    path.write_text('[argus]\nplugins = []\n[plugins.kalshi]\nmarkets = ["KXHIGHNY-24JAN01-T60"]\n'
                    'api_key_id = "$env:K"\nprivate_key = "$file:/k.pem"\n'
                    'taker_fee_rate = "0.07"\n')
    config = load_config(path)
    settings = plugin_settings(config, "kalshi", KalshiSettings)
    assert settings.has_credentials and settings.taker_fee_rate == D("0.07")


def test_prices_and_ids() -> None:
    assert cents_to_probability(42) == D("0.42")
    assert probability_to_cents(D("0.42")) == 42
    for bad in (D("0.425"), D("0"), D("1")):
        with pytest.raises(ValueError):
            probability_to_cents(bad)
    assert instrument_id("KXHIGHNY-24JAN01-T60") == "kalshi:KXHIGHNY-24JAN01-T60/YES"
    assert parse_instrument_id("kalshi:KXHIGHNY-24JAN01-B59.5/NO") == \
        ("KXHIGHNY-24JAN01-B59.5", "no")
    with pytest.raises(ValueError):
        parse_instrument_id("polymarket:123")


def test_price_and_count_readers_prefer_exact_strings() -> None:
    assert price({"yes_price": 42}, "yes_price") == D("0.42")
    assert price({"yes_price": 42, "yes_price_dollars": "0.4250"}, "yes_price") == D("0.4250")
    assert count({"count_fp": "10.00"}) == D(10)
    with pytest.raises(DataError):
        price({"yes_price_dollars": "NaN"}, "yes_price")
    with pytest.raises(DataError):
        price({"yes_price": 420}, "yes_price")


def test_market_and_event_build_instruments_and_events() -> None:
    market = Market.parse(load_payload("market_KXHIGHNY-24JAN01-T60.json", PAYLOADS)["market"])
    raw = load_payload("event_KXHIGHNY-24JAN01.json", PAYLOADS)
    event = KalshiEvent.parse(raw["event"], raw["markets"])
    events, instruments = build([event], [market])
    assert len(instruments) == 6  # three markets, YES and NO each (the lone market is a dup)
    yes = next(i for i in instruments if i.id == "kalshi:KXHIGHNY-24JAN01-T60/YES")
    assert yes.kind == "binary" and yes.tick_size == D("0.01") and yes.lot_size == 1
    assert yes.meta["complement"] == "kalshi:KXHIGHNY-24JAN01-T60/NO"
    assert yes.meta["series_ticker"] == "KXHIGHNY"
    binary = next(e for e in events if e.event_id == "KXHIGHNY-24JAN01-T60")
    assert binary.exhaustive and binary.outcomes[0].yes_instrument_id == yes.id
    group = next(e for e in events if e.event_id == "KXHIGHNY-24JAN01")
    assert len(group.outcomes) == 3 and not group.exhaustive


def test_a_resolved_market_settles_both_sides() -> None:
    from argus_venue_kalshi.instruments import settlements_of
    raw = load_payload("market_KXHIGHNY-24JAN01-T60.json", PAYLOADS)["market"]
    assert settlements_of(Market.parse(raw), 1) == []  # still active
    done = Market.parse(dict(raw, status="finalized", result="no"))
    yes, no = settlements_of(done, 7)
    assert (yes.instrument_id, yes.price) == ("kalshi:KXHIGHNY-24JAN01-T60/YES", 0)
    assert (no.instrument_id, no.price, no.ts_ns) == ("kalshi:KXHIGHNY-24JAN01-T60/NO", 1, 7)
    assert settlements_of(Market.parse(dict(raw, status="finalized", result="void")), 1) == []
