"""Fixtures for the Kalshi plugin tests: payloads, an RSA test key, settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argus_venue_kalshi.config import KalshiSettings
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
