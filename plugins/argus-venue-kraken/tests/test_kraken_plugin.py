"""Config validation, plugin registration, and a recording round trip through core serde."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.testing import AwaitSubscribe, LocalKrakenWs, Send, book_frame
from argus_venue_kraken.venue import KrakenVenue

from argus_core.config import parse_config, plugin_settings
from argus_core.errors import ConfigError
from argus_core.models import OrderBook
from argus_core.plugins import PluginHost
from argus_core.serde import dump_event, load_event


def settings_from(table: dict) -> KrakenSettings:
    cfg = parse_config({"plugins": {"kraken": table}}, Path("/tmp/argus.toml"))
    return plugin_settings(cfg, "kraken", KrakenSettings)


def test_config_table_is_validated_with_clear_errors():
    s = settings_from({"pairs": ["XBT/USD", "ETH/USD"], "book_depth": 25,
                       "api_key": "$env:KRAKEN_API_KEY", "api_secret": "$env:KRAKEN_API_SECRET",
                       "rest_url": "http://127.0.0.1:8080", "ws_url": "ws://127.0.0.1:8081"})
    assert s.pairs == ["BTC/USD", "ETH/USD"] and s.book_depth == 25 and s.has_credentials
    assert "KRAKEN_API_SECRET" in repr(s.api_secret)
    with pytest.raises(ConfigError, match="inline secret"):
        settings_from({"api_secret": "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18f"})
    with pytest.raises(ConfigError, match="book_depth"):
        settings_from({"book_depth": 15})
    with pytest.raises(ConfigError, match=r"unknown key.*bookdepth"):
        settings_from({"bookdepth": 10})
    with pytest.raises(ConfigError, match="channels"):
        settings_from({"channels": ["book", "level3"]})
    with pytest.raises(ConfigError, match="ws_url"):
        settings_from({"ws_url": "https://ws.kraken.com/v2"})
    with pytest.raises(ConfigError, match="pairs"):
        settings_from({"pairs": ["BTCUSD"]})
    tiers = settings_from({"fee_tiers": [{"min_volume_usd": "0", "maker_bps": "10",
                                          "taker_bps": "20"}]})
    assert tiers.fee_tier() == (10, 20)


@pytest.mark.parametrize(("key", "bad"), [
    ("request_timeout_s", 0), ("request_timeout_s", 301), ("max_retries", -1),
    ("max_retries", 21), ("order_deadline_s", 1), ("order_deadline_s", 61),
    ("lookup_settle_s", -0.5), ("reconnect_base_s", 0), ("reconnect_max_s", 0),
    ("heartbeat_timeout_s", 0), ("dead_man_timeout_s", -1), ("dead_man_timeout_s", 86401),
    ("maker_bps", "-1"), ("taker_bps", "1001"), ("volume_30d_usd", "-5"),
    ("heartbeat_timeout_s", float("nan")),
])
def test_every_numeric_setting_is_range_checked_naming_its_key(key, bad):
    with pytest.raises(ConfigError, match=rf"{key}: must be"):
        settings_from({key: bad})
    with pytest.raises(ConfigError, match=r"maker_bps: must be >= 0 and <= 1000"):
        settings_from({"fee_tiers": [{"min_volume_usd": "0", "maker_bps": "2000",
                                      "taker_bps": "20"}]})


@pytest.mark.parametrize("key", ["maker_bps", "taker_bps", "volume_30d_usd"])
def test_decimal_settings_refuse_nan_and_infinity_naming_the_key(key):
    for bad in ("NaN", "inf"):
        with pytest.raises(ConfigError, match=rf"'{bad}' is not finite @ plugins\.kraken\.{key}"):
            settings_from({key: bad})


def test_defaults_are_in_range_and_the_venue_declares_its_book_staleness():
    s = KrakenSettings()
    assert (s.order_deadline_s, s.lookup_settle_s, s.max_retries) == (5.0, 2.0, 3)
    assert KrakenVenue.default_stale_after_s == 10.0 == s.heartbeat_timeout_s


def test_entry_point_registers_the_venue():
    host = PluginHost()
    host.load(["kraken"], builtins=False)
    reg = host.get("venue", "kraken")
    assert reg.factory is KrakenVenue and reg.plugin == "kraken"
    assert host.config_classes()["kraken"] is KrakenSettings
    assert KrakenVenue.supports_live_orders and KrakenVenue.name == "kraken"


async def test_snapshot_uses_rest_depth(rest_server, make_settings):
    venue = KrakenVenue(make_settings(rest_url=rest_server.url), clock_ns=lambda: 42)
    try:
        (book,) = await venue.snapshot()
        (inst,) = await venue.instruments()
    finally:
        await venue.close()
    assert isinstance(book, OrderBook) and book.ts_ns == 42 and book.best_ask == 3539.9
    assert rest_server.calls("Depth")[0].params == {"pair": "XBTUSD", "count": "10"}
    assert inst.id == "kraken:BTC/USD"


async def test_record_stream_to_ndjson_and_reload(load, rest_server, make_settings,
                                                  tmp_path: Path):
    """What ``argus record`` does with this venue: dump_event per line, reload identical."""
    from argus_venue_kraken.testing import random_book_messages

    snap = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    updates = list(random_book_messages(snap, 30, seed=3, price_decimals=1, lot_decimals=8))
    trade = {"channel": "trade", "type": "update",
             "data": [{"symbol": "BTC/USD", "side": "buy", "price": 45285.2, "qty": 0.001,
                       "ord_type": "limit", "trade_id": 1,
                       "timestamp": "2023-11-14T22:13:21.000000Z"}]}
    session = [AwaitSubscribe("book"), AwaitSubscribe("trade"), Send(book_frame("snapshot", snap)),
               Send(trade), *(Send(book_frame("update", u)) for u in updates),
               Send(book_frame("update", {**updates[-1], "checksum": 1}))]
    out = tmp_path / "kraken.ndjson"
    async with LocalKrakenWs([session]) as ws:
        venue = KrakenVenue(make_settings(rest_url=rest_server.url, ws_url=ws.url,
                                          channels=["book", "trade"]))
        recorded = []
        try:
            async with contextlib.aclosing(venue.stream()) as stream, asyncio.timeout(10):
                with out.open("w") as handle:
                    async for event in stream:
                        handle.write(json.dumps(dump_event(event)) + "\n")
                        recorded.append(event)
                        if len(recorded) == 33:
                            break
        finally:
            await venue.close()
    lines = out.read_text().splitlines()
    reloaded = [load_event(json.loads(line), where=f"{out}:{i}") for i, line in
                enumerate(lines, 1)]
    assert reloaded == recorded
    assert [json.loads(line)["type"] for line in lines[:2]] == ["book", "trade"]
    assert json.loads(lines[-1])["type"] == "book_status"


async def test_argus_record_writes_the_venue_stream(load, rest_server, tmp_path: Path):
    """The core ``argus record`` path (config -> plugin -> venue.stream -> NDJSON)."""
    recorder = pytest.importorskip("argus_core.recorder")
    from argus_core.config import load_config

    snap = load("kraken_ws_v2_book_checksum_example.json")["data"][0]
    session = [AwaitSubscribe("book"), Send(book_frame("snapshot", snap)),
               Send({"channel": "heartbeat"})]
    async with LocalKrakenWs([session]) as ws:
        cfg_path = tmp_path / "argus.toml"
        cfg_path.write_text(
            '[argus]\nplugins = ["kraken"]\n[run]\nvenue = "kraken"\n'
            f'[plugins.kraken]\nrest_url = "{rest_server.url}"\nws_url = "{ws.url}"\n'
            f'channels = ["book"]\nnonce_path = "{tmp_path / "nonce"}"\n')
        out = tmp_path / "rec.ndjson"
        count = await recorder.record(load_config(cfg_path), out, duration_s=10, max_events=1)
    assert count == 1
    # A recording may start with a header line (instruments, fees); the events follow it.
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    (event,) = [load_event(data) for data in lines if data.get("type") != "recording"]
    assert isinstance(event, OrderBook) and event.instrument_id == "kraken:BTC/USD"
    assert event.best_bid == 45283.5 and event.best_ask == 45285.2
