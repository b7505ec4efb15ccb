"""Secrets by reference: ``$env:NAME`` or ``$file:PATH``, never inline.

A :class:`Secret` holds only the reference; the value is read when a client
needs it and never appears in ``repr``, logs, the ledger or the thought spool.

Every value :meth:`Secret.reveal` reads is remembered (in this process only), and
:func:`redact` replaces it wherever it appears, whatever its shape: an exception that
echoes a URL or a request header, a traceback, a log line.  Text that merely looks like a
credential (:data:`KEY_SHAPES`: Anthropic keys, EVM private keys, long base64 secrets, PEM
private keys, Telegram bot tokens, ``api_key=...`` / ``"secret": "..."`` / ``Authorization:
Bearer ...`` assignments) is replaced too, revealed here or not.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import quote, quote_plus

import attrs

from argus_core.errors import ConfigError

_REF = re.compile(r"^\$(env|file):(.+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Values this long are replaced wherever they appear; shorter ones (a short password)
#: only as whole tokens, since replacing a 4-letter word inside others would garble every
#: message.  Under MIN_SECRET characters a value cannot be hidden without hiding common
#: words and numbers too, and no venue issues a credential that short: it is refused.
MIN_REMEMBERED = 8
MIN_SECRET = 4
_MASK = "[REDACTED]"


@attrs.frozen(repr=False)
class Secret:
    """A reference to a secret; ``reveal()`` reads it, ``repr`` never shows it."""

    reference: str

    def __attrs_post_init__(self) -> None:
        ref = self.reference
        if not isinstance(ref, str) or not _REF.match(ref):
            raise ConfigError("secrets must be references like '$env:KRAKEN_API_SECRET' or "
                              "'$file:/path/to/secret'; inline secret values are refused")
        kind, target = _REF.match(ref).groups()  # type: ignore[union-attr]  # matched above
        if kind == "env" and not _ENV_NAME.match(target):
            raise ConfigError(f"secret {ref!r}: {target!r} is not an environment variable "
                              f"name (letters, digits and '_', not starting with a digit)")

    @property
    def kind(self) -> str:
        """``"env"`` or ``"file"``."""
        return self._parts()[0]

    @property
    def target(self) -> str:
        """The environment variable's name or the file's path, as written."""
        return self._parts()[1]

    def _parts(self) -> tuple[str, str]:
        kind, target = _REF.match(self.reference).groups()  # type: ignore[union-attr]  # checked in __attrs_post_init__
        return kind, target

    def reveal(self) -> str:
        """Resolve the reference now; ``ConfigError`` when it cannot be read or is empty.

        The value is remembered so that :func:`redact` hides it from then on."""
        kind, target = self._parts()
        if kind == "env":
            value = os.environ.get(target)
            if value is None:
                raise ConfigError(f"secret {self.reference}: environment variable {target} "
                                  f"is not set")
            where = f"environment variable {target}"
        else:
            path = Path(target).expanduser()
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"secret {self.reference}: cannot read {path}: "
                                  f"{exc.strerror}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"secret {self.reference}: {path} is not UTF-8 text (a "
                                  f"binary key file? store it as text, e.g. PEM)") from None
            where = str(path)
        if not value.strip():
            raise ConfigError(f"secret {self.reference}: {where} is empty")
        if len(value.strip()) < MIN_SECRET:
            raise ConfigError(f"secret {self.reference}: {where} holds under {MIN_SECRET} "
                              f"characters: no credential is that short, and it could not "
                              f"be kept out of logs")
        remember(value)
        return value

    def resolved(self, base_dir: Path) -> Secret:
        """This reference with a relative ``$file:`` path made absolute against
        ``base_dir`` (the config file's folder, as for every other path in a config)."""
        kind, target = self._parts()
        if kind != "file":
            return self
        path = Path(target).expanduser()
        return self if path.is_absolute() else Secret(f"$file:{(base_dir / path).resolve()}")

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"


# -- values revealed in this process -----------------------------------------------------------
_lock = threading.Lock()
_remembered: frozenset[str] = frozenset()
_remembered_re: re.Pattern[str] | None = None


def remember(value: str) -> None:
    """Treat ``value`` as a secret from now on: :func:`redact` replaces it and
    :func:`find_key_shaped` reports it.  :meth:`Secret.reveal` calls it for every value it
    reads; a client calls it for a credential it derives (a session token, say).  A
    multi-line value (a PEM key) is remembered line by line too, so one line of it in a
    traceback is hidden as well."""
    global _remembered, _remembered_re
    parts = {value, value.strip()}
    parts.update(line.strip() for line in value.splitlines())
    # As a URL, a form, JSON or a repr writes it (a signed URL in an httpx error, say).
    parts.update(e for p in list(parts) for e in (quote(p, safe=""), quote_plus(p),
                                                  json.dumps(p)[1:-1], repr(p)[1:-1]))
    new = {p for p in parts if len(p) >= MIN_SECRET and not p.startswith("-----")}
    with _lock:
        if new <= _remembered:
            return
        _remembered = _remembered | new
        # Longest first: a value that contains another is replaced whole; a short one
        # only where no word character touches it.
        longest = sorted(_remembered, key=len, reverse=True)
        _remembered_re = re.compile("|".join(map(_alternative, longest)))


def _alternative(value: str) -> str:
    """``value`` as a pattern: a short one bounded where its edge is a word character, so
    that it is not found inside a longer word or number."""
    escaped = re.escape(value)
    if len(value) >= MIN_REMEMBERED:
        return escaped
    return ((r"(?<!\w)" if re.match(r"\w", value[0]) else "") + escaped
            + (r"(?!\w)" if re.match(r"\w", value[-1]) else ""))


def forget_all() -> None:
    """Forget every remembered value (tests)."""
    global _remembered, _remembered_re
    with _lock:
        _remembered, _remembered_re = frozenset(), None


#: Names under which a credential is assigned in code, config, JSON, a query string or an
#: HTTP header (``API-Key``, ``API-Sign``, ``KALSHI-ACCESS-SIGNATURE``, ``POLY_PASSPHRASE``,
#: ``x-api-key``, ``Authorization``).  A left boundary of anything but a letter or digit lets
#: ``client_secret`` and ``POLY_API_KEY`` match; ``token`` alone must end there (a
#: ``token_id`` is a market, not a credential).  What may follow a name is bounded and
#: possessive, as is the digit look-ahead below: unbounded, each name in a long run of word
#: characters (``-secret-secret...``) scanned the rest of the run again, quadratic in it
#: (105 kB took two minutes, in the loop's thread, from text a strategy or a model wrote).
_NAMES = (r"(?:api[_-]?(?:key|secret|sign|passphrase)|(?:client[_-]?)?secret|passphrase"
          r"|passw(?:or)?d|private[_-]?key|access[_-]?(?:key|token)|(?:auth|bot|refresh)"
          r"[_-]?token|signature|authorization)[\w-]{0,40}+|token(?![\w-])")
#: Shapes of keys and tokens that must never be logged or stored (orchestrator scans use it).
KEY_SHAPES = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"0x[0-9a-fA-F]{64}\b"),  # raw EVM private keys
    re.compile(r"\b[A-Za-z0-9+/]{80,}={0,2}"),  # base64 API secrets (Kraken: 88 chars)
    # PEM private keys (Kalshi's RSA key), whole or cut short (then to the end of the text).
    re.compile(r"-----BEGIN[A-Z ]* PRIVATE KEY-----[\s\S]*?"
               r"(?:-----END[A-Z ]* PRIVATE KEY-----|\Z)"),
    # Telegram bot tokens, also inside the Bot API's URLs (.../bot<id>:<secret>/getMe).
    re.compile(r"(?<!\d)\d{5,12}:[A-Za-z0-9_-]{30,}"),
    # "name": "value", name = 'value', "Authorization": "Bearer v": any quoted value.
    re.compile(r"(?i)(?<![A-Za-z0-9])(?:" + _NAMES + r")[\"']?\s*[:=]\s*[\"']"
               r"(?:(?:bearer|basic|token)\s+)?(?!\$(?:env|file):)(?!\[REDACTED\])"
               r"(?:[^\s\"']{8,})"),
    # name=value&... (a query string), Name: value (a header): an unquoted value only with a
    # digit in it, so code such as ``signature = inspect.signature(f)`` is no credential.
    re.compile(r"(?i)(?<![A-Za-z0-9])(?:" + _NAMES + r")\s*[:=]\s*"
               r"(?:(?:bearer|basic|token)\s+)?(?!\$(?:env|file):)(?!\[REDACTED\])"
               r"(?:(?=[^\s\"'&,;{}()\[\]<>]{0,255}?\d)"
               r"[^\s\"'&,;{}()\[\]<>]{8,})"),
)


def find_key_shaped(text: str) -> list[str]:
    """Substrings of ``text`` that look like credentials or are a revealed secret."""
    found = [m.group(0) for pattern in KEY_SHAPES for m in pattern.finditer(text)]
    remembered = _remembered_re
    if remembered is not None:
        found += [m.group(0) for m in remembered.finditer(text)]
    return found


def redact(text: str) -> str:
    """``text`` with every revealed secret and key-shaped substring replaced by
    ``[REDACTED]``, and made writable as UTF-8: a lone surrogate (JSON's ``"\\ud800"``
    from a venue or a strategy) is written out as the six characters ``\\ud800`` (the
    ledger's SQLite and a log handler refused the text, which stopped the run)."""
    # Short texts' answers are cached (an order's reason repeats on every order); the
    # key includes the remembered values' pattern, so a value remembered since is honoured.
    return (_redact if len(text) <= 256 else _redact.__wrapped__)(text, _remembered_re)


def redact_revealed(text: str) -> str:
    """``text`` with every revealed secret replaced by ``[REDACTED]``, and nothing else
    touched: for text that must read back as written (a checkpoint's state), where a
    key-shaped substring may be the state itself but a value read as a secret never is."""
    remembered = _remembered_re
    return text if remembered is None else remembered.sub(_MASK, text)


@functools.lru_cache(maxsize=1024)
def _redact(text: str, remembered: re.Pattern[str] | None) -> str:
    """:func:`redact` with the pattern of the values remembered (None: none)."""
    if not text.isascii():  # only what UTF-8 cannot encode is written out
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if remembered is not None:
        text = remembered.sub(_MASK, text)
    for pattern in KEY_SHAPES:
        text = pattern.sub(_MASK, text)
    return text
