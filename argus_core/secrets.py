"""Secrets by reference: ``$env:NAME`` or ``$file:PATH``, never inline.

A :class:`Secret` holds only the reference; the value is read when a client
needs it and never appears in ``repr``, logs, the ledger or the thought spool.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import attrs

from argus_core.errors import ConfigError

_REF = re.compile(r"^\$(env|file):(.+)$")


@attrs.frozen(repr=False)
class Secret:
    """A reference to a secret; ``reveal()`` reads it, ``repr`` never shows it."""

    reference: str

    def __attrs_post_init__(self) -> None:
        if not _REF.match(self.reference):
            raise ConfigError("secrets must be references like '$env:KRAKEN_API_SECRET' or "
                              "'$file:/path/to/secret'; inline secret values are refused")

    def reveal(self) -> str:
        """Resolve the reference now; ``ConfigError`` when it cannot be read."""
        kind, target = _REF.match(self.reference).groups()  # type: ignore[union-attr]
        if kind == "env":
            value = os.environ.get(target)
            if value is None:
                raise ConfigError(f"secret {self.reference}: environment variable {target} "
                                  f"is not set")
            return value
        path = Path(target).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"secret {self.reference}: cannot read {path}: "
                              f"{exc.strerror}") from None

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"


#: Shapes of keys and tokens that must never be logged or stored (orchestrator scans use it).
KEY_SHAPES = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"0x[0-9a-fA-F]{64}\b"),  # raw EVM private keys
    re.compile(r"\b[A-Za-z0-9+/]{80,}={0,2}"),  # base64 API secrets (Kraken: 88 chars)
    re.compile(r"(?i)\b(api[_-]?key|secret|passphrase|private[_-]?key)\s*[:=]\s*['\"][^'\"]{8,}"),
)


def find_key_shaped(text: str) -> list[str]:
    """Substrings of ``text`` that look like credentials."""
    return [m.group(0) for pattern in KEY_SHAPES for m in pattern.finditer(text)]


def redact(text: str) -> str:
    """``text`` with every key-shaped substring replaced by ``[REDACTED]``."""
    for pattern in KEY_SHAPES:
        text = pattern.sub("[REDACTED]", text)
    return text
