"""Kalshi request signing: RSA-PSS with SHA-256 over ``timestamp + METHOD + path``.

Documented scheme (docs.kalshi.com, "Quick start: authenticated requests"): the message
is the millisecond timestamp, the upper-case HTTP method and the request path *without*
its query string (``1703123456789GET/trade-api/v2/portfolio/balance``), signed with
RSA-PSS (SHA-256, MGF1-SHA-256, salt length = digest length), base64-encoded, and sent
in ``KALSHI-ACCESS-SIGNATURE`` beside ``KALSHI-ACCESS-KEY`` and
``KALSHI-ACCESS-TIMESTAMP``.  The websocket handshake signs ``GET /trade-api/ws/v2``.
PSS is randomised, so a signature cannot be reproduced byte for byte: tests verify
signatures with the public key instead.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from argus_core import ConfigError
from argus_venue_kalshi import constants as C

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def message(timestamp_ms: str, method: str, path: str) -> bytes:
    """The signed text: ``timestamp + METHOD + path`` with any query string dropped."""
    return f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM text (PKCS#1 or PKCS#8); ConfigError otherwise."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"[plugins.kalshi] private_key is not an unencrypted PEM RSA "
                          f"private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("[plugins.kalshi] private_key is not an RSA key")
    return key


def sign(key: rsa.RSAPrivateKey, timestamp_ms: str, method: str, path: str) -> str:
    """The base64 RSA-PSS signature of :func:`message`."""
    return base64.b64encode(key.sign(message(timestamp_ms, method, path), _PSS,
                                     hashes.SHA256())).decode()


def verify(public_key: rsa.RSAPublicKey, signature_b64: str, timestamp_ms: str, method: str,
           path: str) -> bool:
    """Whether ``signature_b64`` signs this request (salt length exactly the digest's)."""
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True),
                          message(timestamp_ms, method, path), _PSS, hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


class Signer:
    """Builds the three authentication headers for one API key."""

    def __init__(self, key_id: str, key: rsa.RSAPrivateKey,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.key_id = key_id
        self._key = key
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def headers(self, method: str, path: str) -> dict[str, str]:
        """``KALSHI-ACCESS-*`` headers for ``method path`` signed now."""
        ts = str(self._clock_ms())
        return {C.HEADER_KEY: self.key_id, C.HEADER_TIMESTAMP: ts,
                C.HEADER_SIGNATURE: sign(self._key, ts, method, path)}

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r}, key=<redacted>)"
