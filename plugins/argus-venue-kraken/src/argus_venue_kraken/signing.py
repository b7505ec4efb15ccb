"""Kraken private-API authentication: the ``API-Sign`` header and a durable nonce.

``API-Sign = base64(HMAC-SHA512(key=base64decode(secret), msg=path + SHA256(nonce + body)))``
(docs.kraken.com/api/docs/guides/spot-rest-auth).  The stdlib ``hmac``/``hashlib``
are the right tools; no third-party crypto is needed.

Nonces must strictly increase per API key, across restarts and across every
process using the key.  :class:`NonceStore` keeps the last nonce in a file and
takes an exclusive ``fcntl`` lock for each read-increment-write, so two
processes can never draw the same value and a restart never goes backwards
(even if the wall clock does).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from pathlib import Path

from argus_core import ConfigError, VenueError


def api_sign(uri_path: str, body: str, nonce: str | int, secret_b64: str) -> str:
    """The ``API-Sign`` value for a private request.

    ``uri_path`` is the part from ``/0/private``; ``body`` is the exact
    url-encoded POST body sent (which itself contains ``nonce=...``).
    """
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        # Never echo the secret itself.
        raise ConfigError("Kraken api_secret is not valid base64; paste the private key "
                          "exactly as Kraken shows it") from None
    digest = hashlib.sha256((str(nonce) + body).encode()).digest()
    mac = hmac.new(key, uri_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class NonceStore:
    """Strictly increasing nonces shared by every process through a locked file.

    Each nonce is ``max(last + 1, clock())`` where ``clock`` defaults to the
    wall clock in microseconds; the new value is written (and fsynced) before
    it is handed out.
    """

    def __init__(self, path: Path, clock: Callable[[], int] | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or (lambda: time.time_ns() // 1_000)

    def next(self) -> int:
        """Draw the next nonce (blocks briefly while another process holds the lock)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise VenueError(f"Kraken nonce file {self.path}: cannot open ({exc.strerror}); "
                             f"set nonce_path in [plugins.kraken] to a writable file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            try:
                last = int(raw) if raw else 0
            except ValueError:
                raise VenueError(f"Kraken nonce file {self.path} is corrupt ({raw[:20]!r}); "
                                 f"delete it (the next nonce falls back to the clock)") from None
            nonce = max(last + 1, self._clock())
            self._write(fd, str(nonce).encode())
            return nonce
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, fd: int, data: bytes) -> None:
        """Overwrite the file with ``data``, then cut what is left of the old text.

        Written before truncating (never the other way round): a write that fails (disk
        full) then leaves the last nonce in place.  Truncating first left an empty file,
        and the next nonce fell back to the clock, which may be behind the last nonce
        handed out.  A new nonce has at least as many digits as the old, so the write
        covers the old text whole."""
        try:
            written = os.pwrite(fd, data, 0)
            if written != len(data):
                raise OSError(0, f"short write ({written} of {len(data)} bytes)")
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except OSError as exc:
            raise VenueError(f"Kraken nonce file {self.path}: cannot write the next nonce "
                             f"({exc.strerror or exc}); free space or set nonce_path in "
                             f"[plugins.kraken] to a writable file") from None

    def bump_past(self, nonce: int) -> None:
        """Make sure later nonces exceed ``nonce`` (after Kraken said ours was too low)."""
        while self.next() <= nonce:
            pass
