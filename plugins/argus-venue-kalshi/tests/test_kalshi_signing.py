"""RSA-PSS request signing: the documented message layout, verified with the public key."""

from __future__ import annotations

import base64

import pytest
from argus_venue_kalshi import signing
from argus_venue_kalshi.signing import Signer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from argus_core import ConfigError


def test_message_is_the_documented_layout() -> None:
    # docs: "Example: 1703123456789GET/trade-api/v2/portfolio/balance"
    assert signing.message("1703123456789", "GET", "/trade-api/v2/portfolio/balance") == \
        b"1703123456789GET/trade-api/v2/portfolio/balance"
    # docs: for /portfolio/orders?limit=5 sign only /trade-api/v2/portfolio/orders
    assert signing.message("1703123456789", "get", "/trade-api/v2/portfolio/orders?limit=5") \
        == b"1703123456789GET/trade-api/v2/portfolio/orders"


def test_signature_is_rsa_pss_sha256_with_digest_length_salt(rsa_key: rsa.RSAPrivateKey
                                                             ) -> None:
    sig = signing.sign(rsa_key, "1703123456789", "POST", "/trade-api/v2/portfolio/orders")
    raw = base64.b64decode(sig)
    assert len(raw) == 256  # a 2048-bit key signs 256 bytes
    # The exact parameters Kalshi documents: PSS, MGF1(SHA-256), salt = 32 bytes.
    rsa_key.public_key().verify(
        raw, b"1703123456789POST/trade-api/v2/portfolio/orders",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    # ... and no other salt length.
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(
            raw, b"1703123456789POST/trade-api/v2/portfolio/orders",
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20), hashes.SHA256())


def test_verify_rejects_another_path_method_or_time(rsa_key: rsa.RSAPrivateKey) -> None:
    pub = rsa_key.public_key()
    sig = signing.sign(rsa_key, "1", "GET", "/trade-api/ws/v2")
    assert signing.verify(pub, sig, "1", "GET", "/trade-api/ws/v2")
    assert not signing.verify(pub, sig, "2", "GET", "/trade-api/ws/v2")
    assert not signing.verify(pub, sig, "1", "POST", "/trade-api/ws/v2")
    assert not signing.verify(pub, sig, "1", "GET", "/trade-api/v2/ws")
    assert not signing.verify(pub, "not base64!", "1", "GET", "/trade-api/ws/v2")


def test_signer_headers_and_repr(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = Signer("key-id", rsa_key, clock_ms=lambda: 1703123456789)
    headers = signer.headers("GET", "/trade-api/v2/portfolio/balance?x=1")
    assert headers["KALSHI-ACCESS-KEY"] == "key-id"
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == "1703123456789"
    assert signing.verify(rsa_key.public_key(), headers["KALSHI-ACCESS-SIGNATURE"],
                          "1703123456789", "GET", "/trade-api/v2/portfolio/balance")
    assert "redacted" in repr(signer) and "PRIVATE" not in repr(signer)


def test_a_bad_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="private_key"):
        signing.load_private_key("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
