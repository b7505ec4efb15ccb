"""Fixtures for the Kalshi plugin tests: payloads, an RSA test key, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.testing import LocalKalshi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PAYLOADS = Path(__file__).parent / "payloads"
KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"  # the docs' example key id shape


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """A throwaway 2048-bit RSA key (generated per test session; never a real key)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_files(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    """The test key written as PEM (PKCS#8) under tmp_path."""
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path = tmp_path / "kalshi.pem"
    path.write_bytes(pem)
    return path


@pytest.fixture
def make_settings(key_files: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Callable[..., KalshiSettings]:
    """Settings with the test credentials (references) and any overrides."""
    monkeypatch.setenv("KALSHI_TEST_KEY_ID", KEY_ID)

    def make(**overrides: Any) -> KalshiSettings:
        from argus_core import Secret
        base: dict[str, Any] = {"api_key_id": Secret("$env:KALSHI_TEST_KEY_ID"),
                                "private_key": Secret(f"$file:{key_files}"),
                                "markets": ["KXHIGHNY-24JAN01-T60"]}
        base.update(overrides)
        return KalshiSettings(**base)
    return make


MARKET = {"ticker": "KXHIGHNY-24JAN01-T60", "event_ticker": "KXHIGHNY-24JAN01",
          "title": "Will the high temp in NYC be >60° on Jan 1, 2024?",
          "yes_sub_title": "61° or above", "status": "active",
          "close_time": "2024-01-02T04:59:00Z", "tick_size": 1, "result": ""}


@pytest.fixture
async def exchange(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[LocalKalshi]:
    """A local Kalshi exchange verifying the test key, serving one market with bids
    YES 38/39/40 and NO 55/57/58 cents (so YES asks 42/43/45)."""
    async with LocalKalshi(KEY_ID, rsa_key.public_key()) as ex:
        ex.add_market(dict(MARKET), yes_bids={38: 25, 39: 10, 40: 13},
                      no_bids={55: 30, 57: 8, 58: 20})
        yield ex


@pytest.fixture
def local_settings(exchange: LocalKalshi, make_settings: Callable[..., KalshiSettings]
                   ) -> Callable[..., KalshiSettings]:
    """Settings pointing at ``exchange`` with short timeouts."""
    def make(**overrides: Any) -> KalshiSettings:
        base: dict[str, Any] = {"rest_url": exchange.rest.url, "ws_url": exchange.ws.url,
                                "request_timeout_s": 0.5, "poll_interval_s": 0.02,
                                "reconnect_base_s": 0.01, "reconnect_max_s": 0.05,
                                "max_retries": 2}
        base.update(overrides)
        return make_settings(**base)
    return make
