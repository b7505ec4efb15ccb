"""Red team r38: private answers and the keys file's permissions.

Found: no ``/v1`` answer said ``Cache-Control``: a shared cache (a corporate proxy, a
CDN in front of the server) may store an answer to a request that sent ``X-API-Key``
(RFC 9111 keeps only ``Authorization`` requests out of shared caches) and hand one
key holder's figures to anyone.  And a new keys file was made by SQLite with the
umask's mode (0644) and only then chmod-ed to 0600: a local user who opened it in
between kept a descriptor that reads every key's hash after the chmod.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from argus_intel import keys as keys_module
from argus_intel.keys import KeyStore
from fastapi.testclient import TestClient
from intel_helpers import auth


@pytest.mark.parametrize("url", ["/v1/runs", "/v1/runs/nope", "/v1/runs?limit=0"])
@pytest.mark.parametrize("how", ["bearer", "x-api-key", "none"])
def test_v1_answers_are_never_stored_by_caches(client: TestClient, key: str, url: str,
                                                how: str) -> None:
    headers = {"bearer": auth(key), "x-api-key": {"X-API-Key": key}, "none": {}}[how]
    r = client.get(url, headers=headers)
    assert r.headers.get("cache-control") == "no-store", (r.status_code, dict(r.headers))
    assert r.headers.get("x-content-type-options") == "nosniff", dict(r.headers)
    assert r.headers["content-type"].startswith("application/json"), dict(r.headers)


def test_a_too_large_body_is_not_stored_either(client: TestClient, key: str) -> None:
    r = client.post("/v1/regimes", headers={**auth(key), "Content-Length": "99999999999"},
                    content=b"{}")
    assert r.status_code == 413, r.text
    assert r.headers.get("cache-control") == "no-store", dict(r.headers)


def test_openapi_stays_cacheable(client: TestClient) -> None:
    """Public documents are not private answers: nothing forced on them."""
    r = client.get("/openapi.json")
    assert r.status_code == 200 and "cache-control" not in r.headers, dict(r.headers)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a new file is 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_keys_file_is_never_readable_by_others(tmp_path: Path, umask_022: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's mode as soon as SQLite has it open, before any chmod."""
    real = apsw.Connection
    modes: list[int] = []

    def spy(path: str, *args: Any, **kwargs: Any) -> apsw.Connection:
        conn = real(path, *args, **kwargs)
        conn.execute("pragma user_version")  # (the file exists from here on)
        modes.append(stat.S_IMODE(os.stat(path).st_mode))
        return conn

    monkeypatch.setattr(keys_module.apsw, "Connection", spy)
    path = tmp_path / "private" / "keys.db"
    KeyStore(path).add("research")
    assert modes and all(m & 0o077 == 0 for m in modes), [oct(m) for m in modes]
    for made in (path, *path.parent.glob("keys.db-*")):
        assert stat.S_IMODE(made.stat().st_mode) & 0o077 == 0, made
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0, "the folder it made"


def test_an_existing_keys_file_is_kept_and_made_private(tmp_path: Path, umask_022: None
                                                        ) -> None:
    path = tmp_path / "keys.db"
    store = KeyStore(path)
    record, _ = store.add("research")
    store.close()
    path.chmod(0o644)
    assert [k.key_id for k in KeyStore(path).list()] == [record.key_id]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
