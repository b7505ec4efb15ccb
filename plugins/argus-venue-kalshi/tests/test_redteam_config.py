"""Endpoint settings Kalshi's own documentation invites (``.../trade-api/v2`` as the REST
base URL) or that would leak (a password in the URL): refused when the settings are read,
with an error naming the key and what to write, never a 404 / 401 at the first request
(the venue appends ``/trade-api/v2`` itself and signs that path), and never echoing a
password."""

from __future__ import annotations

import pytest
from argus_venue_kalshi.config import KalshiSettings

from argus_core import ConfigError, load_config, plugin_settings


@pytest.mark.parametrize("url", [
    "https://api.elections.kalshi.com/trade-api/v2",   # the docs' base URL
    "https://api.elections.kalshi.com/trade-api/v2/",
    "https://demo-api.kalshi.co/v2?x=1",
])
def test_a_rest_url_with_a_path_is_refused_naming_the_origin(url: str) -> None:
    with pytest.raises(ValueError, match=r"rest_url.*origin.*/trade-api/v2"):
        KalshiSettings(rest_url=url)


@pytest.mark.parametrize("url", ["wss://api.elections.kalshi.com",
                                 "wss://api.elections.kalshi.com/trade-api/v2"])
def test_a_ws_url_off_the_signed_path_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"ws_url.*/trade-api/ws/v2"):
        KalshiSettings(ws_url=url)


@pytest.mark.parametrize("key,url", [("rest_url", "https://me:hunter2pw@api.kalshi.com"),
                                     ("ws_url", "wss://me:hunter2pw@h/trade-api/ws/v2")])
def test_a_password_in_an_endpoint_is_refused_without_echoing_it(tmp_path, key: str,
                                                                  url: str) -> None:
    path = tmp_path / "argus.toml"
    path.write_text(f'[argus]\nplugins = []\n[plugins.kalshi]\n{key} = "{url}"\n')
    with pytest.raises(ConfigError, match=key) as info:
        plugin_settings(load_config(path), "kalshi", KalshiSettings)
    assert "hunter2pw" not in str(info.value)


@pytest.mark.parametrize("rest,ws", [
    ("https://api.elections.kalshi.com", "wss://api.elections.kalshi.com/trade-api/ws/v2"),
    ("http://127.0.0.1:8080/", "ws://127.0.0.1:8081/trade-api/ws/v2"),
])
def test_origins_and_the_documented_ws_path_are_accepted(rest: str, ws: str) -> None:
    settings = KalshiSettings(rest_url=rest, ws_url=ws)
    assert settings.rest_url == rest and settings.ws_url == ws
