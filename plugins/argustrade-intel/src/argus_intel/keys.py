"""API keys: stored hashed, checked in constant time, with per-key rate and quota.

A key looks like ``argi_<key_id>_<secret>``.  ``key_id`` (public, 12 hex digits) finds
the row; ``secret`` (32 random bytes, URL-safe base64) is never stored: the store keeps
``scrypt(secret, salt)`` (RFC 7914, n=2**14, r=8, p=1, a random 16-byte salt per key)
and compares with :func:`hmac.compare_digest`.  The full key is printed once, by
``argus intel keys add``, and appears nowhere else: not in the store, not in a log.

scrypt costs tens of milliseconds by design, so a verified key is remembered for the
life of the process under an HMAC of the presented key with a random per-process secret
(never written anywhere); revocation is still read from the store on every request.

The store is a small SQLite file (apsw, WAL) beside nothing else: ``keys`` (one row per
key) and ``usage`` (requests served per key per UTC day, so a restart does not reset a
daily quota).  Key management (``argus intel keys``) and the server may use it at once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import apsw
import attrs

from argus_core import ConfigError, LedgerError, ledger_tables

KEY_PREFIX = "argi"
_KEY_RE = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
#: scrypt cost: 16 MiB of memory and ~50 ms per derivation (OWASP's interactive minimum).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1

_SCHEMA = """
create table if not exists keys (
    key_id text primary key, name text not null, salt blob not null, hash blob not null,
    rate_per_s real not null, burst real not null, quota_per_day integer,
    created_ns integer not null, revoked_ns integer);
create table if not exists usage (
    key_id text not null, day text not null, requests integer not null,
    primary key (key_id, day));
"""


def _check_keys_file(path: Path) -> None:
    """Refuse, read-only, a file that is there but is not a keys file: no database (a
    damaged file, another kind of file, a one-byte file SQLite would have taken for an
    empty database) or a database with tables but no ``keys`` table (another program's,
    which opening as a store would have written two tables into).  The core's
    ``LedgerError`` naming the path (exit 7, as a damaged ledger)."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # made on first use
    tables = ledger_tables(path, "an API keys file")
    if tables and "keys" not in tables:
        raise LedgerError(f"{path} cannot be used as the API keys file: it is another "
                          f"program's database (tables: {', '.join(sorted(tables)[:5])}); "
                          f"pass --keys a new file or the one `argus intel keys add` made")


def _create_private(path: Path) -> None:
    """Make ``path`` empty with mode 0600 unless it is there: SQLite would make it with
    the umask's mode (0644), readable by every local user until the chmod after it, and
    a descriptor opened in that moment keeps reading the hashes after the chmod."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                          maxmem=64 * 1024 * 1024, dklen=32)


def parse_rate(text: str) -> float:
    """``"5/s"``, ``"300/min"``, ``"5"`` (per second) -> requests per second."""
    value, _, unit = text.strip().partition("/")
    seconds = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}.get(
        unit.strip().lower())
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if seconds is None or not (rate > 0 and math.isfinite(rate)):
        raise ConfigError(f"--rate {text!r}: expected a positive number of requests per "
                          f"second or minute, like 5/s or 300/min")
    return rate / seconds


def parse_quota(text: str) -> int:
    """``"10000/day"`` or ``"10000"`` -> requests per UTC day."""
    value, _, unit = text.strip().partition("/")
    if unit.strip().lower() not in ("", "day", "d") or not value.strip().isdigit() \
            or int(value) < 1:
        raise ConfigError(f"--quota {text!r}: expected a positive whole number of requests "
                          f"per day, like 10000/day")
    return int(value)


@attrs.frozen
class ApiKey:
    """A stored key's public record (no secret, no hash)."""

    key_id: str
    name: str
    rate_per_s: float
    burst: float
    quota_per_day: int | None
    created_ns: int
    revoked_ns: int | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked (it is then refused with 403)."""
        return self.revoked_ns is not None


@attrs.frozen
class Verdict:
    """What :meth:`KeyStore.verify` found: the key, or why there is none."""

    key: ApiKey | None
    #: "ok", "malformed", "unknown", "wrong", "revoked", "throttled"
    outcome: str
    #: "throttled": seconds until the key id's secrets are checked again
    retry_after_s: float = 0.0


#: Wrong secrets of one key id tolerated in :data:`FAILURE_WINDOW_S` before its secrets
#: are no longer checked for the rest of the window: each check is a full scrypt (~50 ms
#: and 16 MiB), run before any rate limit, so a key id (they appear in error messages)
#: let anyone make the server hash without end.
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0
#: Wrong or unknown keys one client (peer address) may send in :data:`FAILURE_WINDOW_S`
#: before its keys are no longer checked for the rest of the window: unknown ids cost a
#: scrypt too (see :meth:`KeyStore.verify`), and there are 2**48 of them to rotate.
MAX_CLIENT_FAILURES = 30
#: Key ids or clients with recent misses remembered at most (the oldest go first), so
#: that rotating ids or addresses cannot grow the server's memory without end.
MAX_TRACKED = 10_000


def _wait(misses_by: dict[str, list[float]], name: str, now: float, limit: int) -> float:
    """Seconds ``name`` must wait (0: none): its misses within the window, pruned."""
    misses = [t for t in misses_by.get(name, ()) if now - t < FAILURE_WINDOW_S]
    if misses:
        misses_by[name] = misses
    else:
        misses_by.pop(name, None)
    return misses[0] + FAILURE_WINDOW_S - now if len(misses) >= limit else 0.0


def _note(misses_by: dict[str, list[float]], name: str, now: float) -> None:
    """Record a miss of ``name``; beyond :data:`MAX_TRACKED` names the stalest go."""
    misses = misses_by.pop(name, [])  # re-inserted last: dict order is recency
    misses.append(now)
    misses_by[name] = misses[-max(MAX_FAILURES, MAX_CLIENT_FAILURES):]
    while len(misses_by) > MAX_TRACKED:
        del misses_by[next(iter(misses_by))]


class KeyStore:
    """The keys file (an SQLite database).  Safe to share between threads: calls take
    turns on one connection (each a short transaction)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._pepper = secrets.token_bytes(32)  # per process, never stored
        self._verified: dict[bytes, str] = {}  # HMAC(pepper, presented key) -> key_id
        self._failures: dict[str, list[float]] = {}  # key id -> monotonic times of misses
        self._client_failures: dict[str, list[float]] = {}  # peer address -> the same
        # What an unknown key id's secret is checked against (never matches: the secret
        # behind it is thrown away), so that it costs one scrypt like a known id's.
        dummy_salt = secrets.token_bytes(16)
        self._dummy = (dummy_salt, _hash(secrets.token_urlsafe(32), dummy_salt))
        self._conn: apsw.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._lock = threading.Lock()
        _check_keys_file(self.path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private(self.path)
            conn = apsw.Connection(str(self.path))
            try:
                conn.set_busy_timeout(5000)  # `argus intel keys` may be writing it now
                conn.execute("pragma journal_mode=wal")
                conn.execute(_SCHEMA)
            finally:
                conn.close()
        except (apsw.Error, OSError) as exc:
            raise ConfigError(f"{self.path}: cannot open the API keys file: {exc}") from None
        self.path.chmod(0o600)  # hashes only, but nobody else needs to read them

    @contextlib.contextmanager
    def _connect(self) -> Iterator[apsw.Connection]:
        """The store's connection, inside one transaction, for one thread at a time.

        One connection for the store's life: closing the last connection of a WAL
        database checkpoints it (an fsync per request).  A new transaction sees what
        other processes committed (``argus intel keys revoke`` while serving).  A keys
        file removed or replaced since is reopened, never made anew (a held connection
        would have kept reading the removed file, its revocations unseen); a file that
        is gone or damaged is a ``LedgerError`` naming it."""
        with self._lock:
            try:
                conn = self._open()
                with conn:
                    yield conn
            except apsw.Error as exc:
                self._drop()  # the next call opens the file afresh
                raise LedgerError(f"{self.path}: cannot use the API keys file: "
                                  f"{type(exc).__name__}: {exc}") from None

    def _open(self) -> apsw.Connection:
        """The held connection, (re)opened when the file at ``path`` is another one."""
        try:
            st = self.path.stat()
            identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            identity = None
        if self._conn is not None and identity != self._identity:
            self._drop()
        if self._conn is None:
            # No SQLITE_OPEN_CREATE: __init__ made the file; a request never makes one.
            conn = apsw.Connection(str(self.path), flags=apsw.SQLITE_OPEN_READWRITE)
            conn.set_busy_timeout(5000)
            # WAL + NORMAL: no fsync per commit (a request's usage count is one); a
            # power cut may lose the last few counts, an application crash loses none.
            conn.execute("pragma synchronous=normal")
            self._conn, self._identity = conn, identity
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(apsw.Error):
                self._conn.close()
        self._conn, self._identity = None, None

    def close(self) -> None:
        """Close the store's connection (it reopens on next use)."""
        with self._lock:
            self._drop()

    # -- management ----------------------------------------------------------------
    def add(self, name: str, *, rate_per_s: float = 5.0, burst: float | None = None,
            quota_per_day: int | None = 10_000) -> tuple[ApiKey, str]:
        """Create a key; returns its record and the full key (shown once, stored hashed)."""
        if not name.strip():
            raise ConfigError("a key needs a non-empty name")
        if not rate_per_s > 0:
            raise ConfigError(f"rate must be > 0 requests per second, got {rate_per_s}")
        burst = max(1.0, rate_per_s) if burst is None else burst
        if not (burst >= 1 and math.isfinite(burst)):
            raise ConfigError(f"burst must be >= 1 request, got {burst}")
        if quota_per_day is not None and quota_per_day < 1:
            raise ConfigError(f"quota must be >= 1 request per day, got {quota_per_day}")
        key_id = secrets.token_hex(6)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        salt = secrets.token_bytes(16)
        record = ApiKey(key_id, name, float(rate_per_s), float(burst), quota_per_day,
                        time.time_ns())
        with self._connect() as conn:
            conn.execute("insert into keys values (?,?,?,?,?,?,?,?,null)",
                         (key_id, name, salt, _hash(secret, salt), record.rate_per_s,
                          record.burst, quota_per_day, record.created_ns))
        return record, f"{KEY_PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id_or_name: str) -> list[ApiKey]:
        """Revoke the key with this id, or every live key with this name; returns them.

        A whole key (``argi_<id>_<secret>``, what a person who leaked it has at hand)
        names its id; its secret is never printed back, not even in the error."""
        whole = _KEY_RE.match(key_id_or_name)
        target = whole.group(1) if whole else key_id_or_name
        shown = f"{KEY_PREFIX}_{target}_…" if whole else repr(key_id_or_name)
        with self._connect() as conn:
            conn.execute("update keys set revoked_ns = ? where revoked_ns is null and "
                         "(key_id = ? or name = ?)", (time.time_ns(), target, target))
            if not conn.changes():
                raise ConfigError(f"{self.path}: no live key with id or name {shown}")
        return [k for k in self.list() if target in (k.key_id, k.name)]

    def list(self) -> list[ApiKey]:
        """Every key (live and revoked), oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "select key_id, name, rate_per_s, burst, quota_per_day, created_ns, "
                "revoked_ns from keys order by created_ns, key_id").fetchall()
        return [_record(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        """The record of ``key_id``, or None."""
        with self._connect() as conn:
            row = conn.execute(
                "select key_id, name, rate_per_s, burst, quota_per_day, created_ns, "
                "revoked_ns from keys where key_id = ?", (key_id,)).fetchone()
        return _record(row) if row is not None else None

    # -- checking --------------------------------------------------------------------
    def verify(self, presented: str, client: str | None = None) -> Verdict:
        """Check a presented key: found, right secret, not revoked.

        An unknown key id costs what a known one with a wrong secret costs (one scrypt,
        against a fixed dummy hash) and is throttled the same way: answering it sooner,
        or never with 429, told anyone which of the 2**48 ids exist.  ``client`` (the
        peer's address) bounds the scrypt work one client can cause with wrong or
        unknown keys: :data:`MAX_CLIENT_FAILURES` per :data:`FAILURE_WINDOW_S`."""
        match = _KEY_RE.match(presented)
        if match is None:
            return Verdict(None, "malformed")
        key_id, secret = match.groups()
        tag = hmac.new(self._pepper, presented.encode(), hashlib.sha256).digest()
        with self._connect() as conn:
            row = conn.execute(
                "select key_id, name, rate_per_s, burst, quota_per_day, created_ns, "
                "revoked_ns, salt, hash from keys where key_id = ?", (key_id,)).fetchone()
        record = _record(row[:7]) if row is not None else None
        if record is None or self._verified.get(tag) != key_id:
            # A key verified before is remembered: its holder is never throttled.
            wait = self._throttled(key_id, client)
            if wait:
                return Verdict(None, "throttled", wait)
            salt, stored = (cast(bytes, row[7]), cast(bytes, row[8])) if row is not None \
                else self._dummy
            if not hmac.compare_digest(_hash(secret, salt), stored) or record is None:
                self._failed(key_id, client)
                return Verdict(None, "unknown" if record is None else "wrong")
            self._verified[tag] = key_id
        if record.revoked:
            return Verdict(record, "revoked")
        self._check_limits(record)  # only for the key's holder: the secret was right
        return Verdict(record, "ok")

    def _throttled(self, key_id: str, client: str | None) -> float:
        """Seconds until ``key_id``'s secrets (or any from ``client``) are checked again
        (0: now)."""
        with self._lock:
            now = time.monotonic()
            waits = [_wait(self._failures, key_id, now, MAX_FAILURES)]
            if client is not None:
                waits.append(_wait(self._client_failures, client, now, MAX_CLIENT_FAILURES))
            return max(waits)

    def _failed(self, key_id: str, client: str | None) -> None:
        with self._lock:
            now = time.monotonic()
            _note(self._failures, key_id, now)
            if client is not None:
                _note(self._client_failures, client, now)

    def _check_limits(self, key: ApiKey) -> None:
        """Refuse a stored key whose limits ``add`` would never have written (a rate of 0
        divided by zero in the token bucket): a ``LedgerError`` naming key and file."""
        quota_ok = key.quota_per_day is None or key.quota_per_day >= 1
        if not (0 < key.rate_per_s < math.inf and 1 <= key.burst < math.inf and quota_ok):
            raise LedgerError(f"{self.path}: key {key.key_id} holds invalid limits (rate "
                              f"{key.rate_per_s}/s, burst {key.burst}, quota "
                              f"{key.quota_per_day}); revoke it and add another")

    def count_request(self, key_id: str, day: str, quota: int | None) -> int | None:
        """Count one request of ``key_id`` on UTC ``day`` unless that would exceed
        ``quota``; returns the day's count after it, or None when the quota is spent.
        One statement, so two servers on one keys file cannot both take the last one."""
        with self._connect() as conn:
            if quota is None:
                conn.execute("insert into usage values (?, ?, 1) on conflict(key_id, day) "
                             "do update set requests = requests + 1", (key_id, day))
            else:
                conn.execute("insert into usage select ?, ?, 1 where ? >= 1 "
                             "on conflict(key_id, day) do update set requests = requests + 1"
                             " where requests < ?", (key_id, day, quota, quota))
                if not conn.changes():
                    return None
            row = conn.execute("select requests from usage where key_id = ? and day = ?",
                               (key_id, day)).fetchone()
        return int(cast(int, row[0])) if row is not None else None

    def used(self, key_id: str, day: str) -> int:
        """Requests of ``key_id`` served on UTC ``day``."""
        with self._connect() as conn:
            row = conn.execute("select requests from usage where key_id = ? and day = ?",
                               (key_id, day)).fetchone()
        return int(cast(int, row[0])) if row is not None else 0


def _record(row: Any) -> ApiKey:
    key_id, name, rate, burst, quota, created, revoked = row
    return ApiKey(str(key_id), str(name), float(cast(float, rate)), float(cast(float, burst)),
                  None if quota is None else int(cast(int, quota)), int(cast(int, created)),
                  None if revoked is None else int(cast(int, revoked)))
