"""Red team r40: what an unknown key id and a refused data file told a caller.

Found: an unknown key id was answered without any scrypt, a known id with a wrong secret
after one (~50 ms): a timing oracle for which of the 2**48 ids exist; and only a known id
was ever throttled (429), a second oracle.  Now both do the same work (one scrypt, against
a fixed dummy hash for an unknown id) and are throttled alike, and one client's wrong or
unknown keys are bounded (``MAX_CLIENT_FAILURES`` scrypts per window) however many ids it
rotates.  ``bars_unavailable`` listed the server's data folders (every path it tried) to
any key holder; now it names the file as the recorded config does, the log the paths.
Work is compared by counting scrypt calls, never by timing.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
from argus_intel import keys as keys_mod
from argus_intel.app import create_app
from argus_intel.keys import KeyStore
from fastapi.testclient import TestClient
from intel_helpers import auth

from argus_core import Ledger


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    hashed: list[bytes] = []
    real_hash = keys_mod._hash

    def counted(secret: str, salt: bytes) -> bytes:
        hashed.append(salt)
        return real_hash(secret, salt)

    monkeypatch.setattr(keys_mod, "_hash", counted)
    return hashed


def _other_id(key: str, key_id: str) -> str:
    """``key`` with its id replaced by ``key_id`` (the same well-formed secret)."""
    prefix, _, rest = key.partition("_")
    return f"{prefix}_{key_id}_{rest.partition('_')[2]}"


def test_an_unknown_key_id_costs_what_a_wrong_secret_costs(
        keystore: KeyStore, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    unknown = _other_id(key, secrets.token_hex(6))
    hashed = _counting(monkeypatch)
    assert keystore.verify(wrong).outcome == "wrong"
    assert keystore.verify(unknown).outcome == "unknown"
    assert len(hashed) == 2  # one scrypt each (was: 1 and 0)


def test_an_unknown_key_id_is_throttled_as_a_known_one(
        client: TestClient, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``MAX_FAILURES`` misses both ids answer 429: never 401 forever for one and
    429 for the other."""
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    unknown = _other_id(key, secrets.token_hex(6))
    hashed = _counting(monkeypatch)
    n = keys_mod.MAX_FAILURES + 3
    for presented in (wrong, unknown):
        codes = [client.get("/v1/runs", headers=auth(presented)).status_code
                 for _ in range(n)]
        assert codes == [401] * keys_mod.MAX_FAILURES + [429] * 3, codes
    assert len(hashed) == 2 * keys_mod.MAX_FAILURES


def test_rotating_unknown_ids_is_bounded_per_client(
        keystore: KeyStore, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each unknown id now costs a scrypt: one client rotating ids gets no more than
    ``MAX_CLIENT_FAILURES`` of them per window; another client, and the holder of a
    key verified before, are not held back."""
    assert keystore.verify(key, "10.0.0.9").outcome == "ok"  # verified, remembered
    hashed = _counting(monkeypatch)
    outcomes = [keystore.verify(_other_id(key, secrets.token_hex(6)), "10.0.0.1").outcome
                for _ in range(keys_mod.MAX_CLIENT_FAILURES + 10)]
    assert outcomes.count("throttled") == 10, outcomes
    assert len(hashed) == keys_mod.MAX_CLIENT_FAILURES
    assert keystore.verify(_other_id(key, secrets.token_hex(6)), "10.0.0.2").outcome \
        == "unknown"
    assert keystore.verify(key, "10.0.0.1").outcome == "ok"


def test_failure_records_stay_bounded(keystore: KeyStore, key: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_mod, "MAX_TRACKED", 50)
    monkeypatch.setattr(keys_mod, "_hash", lambda s, salt: b"x" * 32)  # work is not the point
    for i in range(200):
        keystore.verify(_other_id(key, secrets.token_hex(6)), f"10.0.{i}.1")
    assert len(keystore._failures) <= 50 and len(keystore._client_failures) <= 50


def _bars_run(tmp_path: Path, bars_csv: str) -> Path:
    run_dir = tmp_path / "runs" / "bars0000000x"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("bars0000000x", "replay", 0, json.dumps({
            "run": {"venue": "replay"}, "plugins": {"replay": {"bars_csv": bars_csv}}}))
    return run_dir


@pytest.mark.parametrize("content", [None, "1609459200,1,1,1,1,1,1\nnot,a,bar,row,x,y,z\n"])
def test_bars_unavailable_names_no_server_path(tmp_path: Path, keystore: KeyStore, key: str,
                                               content: str | None,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A missing file and a damaged one: the answer names ``bars.csv`` as the recorded
    config does, never the data folder nor the working directory; the log names them."""
    data_dir = tmp_path / "secret-data-folder"
    data_dir.mkdir()
    if content is not None:
        (data_dir / "bars.csv").write_text(content)
    run_dir = _bars_run(tmp_path, "bars.csv")
    client = TestClient(create_app([run_dir], keystore, data_dirs=[data_dir]),
                        raise_server_exceptions=False)
    with caplog.at_level(logging.WARNING, logger="argus.intel"):
        r = client.get("/v1/runs/bars0000000x/bars", headers=auth(key))
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error["code"] == "bars_unavailable" and "bars.csv" in error["message"], error
    for path in (str(data_dir), str(Path.cwd()), "secret-data-folder"):
        assert path not in error["message"], error
    assert "secret-data-folder" in caplog.text
