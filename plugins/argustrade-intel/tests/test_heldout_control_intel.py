"""Held-out audit of the intelligence API's surface: keys missing, empty, in the wrong
header or in the URL (refused, and never written to the access log), malformed and wrong
types of body, huge bodies, SQL and path traversal in parameters, a ledger that is never
written, one run's rows never answering for another's, and no credential in an answer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from argus_intel.app import MAX_BODY, BodyLimit, QueryHidden, create_app
from argus_intel.keys import KeyStore
from argus_intel.ledger_view import decode_cursor, encode_cursor
from intel_helpers import auth
from starlette.testclient import TestClient

from argus_core import DataError, Ledger
from argus_core.testing import RunResult

BUILT = "built0000001"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer    "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": ""},
    {"X-API-Key": ""},
])
def test_a_missing_or_empty_key_is_refused(headers: dict[str, str],
                                           client: TestClient) -> None:
    answer = client.get("/v1/runs", headers=headers)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "missing_key"
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("presented", [
    "argi_000000000000_" + "A" * 43,        # well formed, unknown id
    "argi_zzzz",                             # malformed
    "argi_000000000000_" + "A" * 43 + "x",   # one character too many
])
def test_a_wrong_key_is_refused(presented: str, client: TestClient, key: str) -> None:
    for headers in ({"X-API-Key": presented}, auth(presented)):
        answer = client.get("/v1/runs", headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_key"
    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert client.get("/v1/runs", headers=auth(wrong_secret)).status_code == 401


def test_a_key_in_the_url_is_refused_saying_why(client: TestClient, key: str) -> None:
    for name in ("api_key", "key", "token", "access_token"):
        answer = client.get(f"/v1/runs?{name}={key}")
        assert answer.status_code == 401
        error = answer.json()["error"]
        assert error["code"] == "key_in_url" and "revoke" in error["message"]
        assert key not in answer.text
    # a key in a header still works when the URL also has one (it is not used)
    assert client.get(f"/v1/runs?api_key=x{key}", headers=auth(key)).status_code == 200


def test_the_access_log_never_shows_a_query_string() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/v1/runs?api_key=argi_x_secret", "1.1",
                                401), None)
    assert QueryHidden().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /v1/runs?… HTTP/1.1" 401'


def test_argus_intel_serve_keeps_a_key_sent_in_the_url_out_of_its_log(
        built_run: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.db"
    _, key = KeyStore(keys_file).add("cmd", rate_per_s=10, quota_per_day=None)
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "argus_core.cli", "intel", "serve",
                             str(built_run), "--port", str(port), "--keys", str(keys_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/runs?api_key={key}",
                                   timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "argus intel serve did not start"
                time.sleep(0.1)
        assert answer.status_code == 401
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert "GET /v1/runs?…" in output  # the request was logged, its query hidden
    assert key.split("_", 2)[2] not in output


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'{"closes": [1, 2, 3'),
    ("application/json", b"[1, 2, 3]"),
    ("application/json", b'{"closes": "1,2,3"}'),
    ("application/json", b'{"closes": [1, 2, NaN]}'),
    ("application/json", b"\xff\xfe"),
    ("text/plain", b'{"closes": [1, 2, 3]}'),
    ("application/x-www-form-urlencoded", b"closes=1&closes=2"),
])
def test_a_malformed_or_mistyped_body_is_a_clear_422(content_type: str, body: bytes,
                                                     client: TestClient, key: str) -> None:
    answer = client.post("/v1/regimes", content=body,
                         headers={**auth(key), "Content-Type": content_type})
    assert answer.status_code == 422, answer.text
    # invalid_request: the body's shape; invalid_data: NaN closes, refused by the analysis
    assert answer.json()["error"]["code"] in ("invalid_request", "invalid_data")
    assert answer.json()["error"]["message"]


def test_a_huge_body_is_refused_with_413_before_it_is_read_whole(client: TestClient,
                                                                 key: str) -> None:
    chunk = b" " * (1024 * 1024)
    chunks = iter([b'{"closes": [1, 2]', *([chunk] * (MAX_BODY // len(chunk) + 1)), b"}"])
    answer = client.post("/v1/regimes", content=chunks,
                         headers={**auth(key), "Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"
    # A declared length over the limit is answered before a byte of the body is read.
    sent: list[dict[str, Any]] = []
    read: list[bool] = []

    async def receive() -> dict[str, Any]:
        read.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def never(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not be called")

    scope = {"type": "http", "method": "POST", "path": "/v1/regimes",
             "headers": [(b"content-length", str(10**10).encode())]}
    asyncio.run(BodyLimit(never)(scope, receive, send))  # type: ignore[arg-type]  # a test double
    assert sent[0]["status"] == 413 and not read


def test_sql_and_traversal_in_parameters_find_nothing(client: TestClient, key: str,
                                                      replay_run: RunResult,
                                                      built_run: Path) -> None:
    h = auth(key)
    evil = "negrisk' or '1'='1"
    answer = client.get(f"/v1/runs/{BUILT}/opportunities", params={"scanner": evil},
                        headers=h)
    assert answer.status_code == 200 and answer.json()["data"] == []
    answer = client.get(f"/v1/runs/{BUILT}/signals",
                        params={"name": "x'; drop table signals; --"}, headers=h)
    assert answer.status_code == 200 and answer.json()["data"] == []
    bad_cursor = client.get(f"/v1/runs/{BUILT}/equity", params={"cursor": "' or 1=1 --"},
                            headers=h)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["error"]["code"] == "invalid_data"
    for run_id in ("..%2F..%2Fetc%2Fpasswd", "%2e%2e", f"{BUILT}' or '1'='1"):
        answer = client.get(f"/v1/runs/{run_id}/equity", headers=h)
        assert answer.status_code == 404 and "root:" not in answer.text
    bars = client.get(f"/v1/runs/{replay_run.summary.run_id}/bars",
                      params={"instrument_id": "../../../../etc/passwd"}, headers=h)
    assert bars.status_code == 404 and bars.json()["error"]["code"] == "instrument_not_found"
    assert client.get(f"/v1/runs/{BUILT}/signals", headers=h).json()["data"]  # intact


def _fingerprint(run_dir: Path) -> tuple[str, str]:
    wal = run_dir / "argus.db-wal"
    return (hashlib.sha256((run_dir / "argus.db").read_bytes()).hexdigest(),
            hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest())


def test_reads_never_write_a_ledger_and_runs_stay_apart(client: TestClient, key: str,
                                                        built_run: Path,
                                                        replay_run: RunResult) -> None:
    before = _fingerprint(built_run)
    h = auth(key)
    runs = client.get("/v1/runs", headers=h).json()["data"]
    assert {r["run_id"] for r in runs} == {BUILT, replay_run.summary.run_id}
    built = client.get(f"/v1/runs/{BUILT}/equity?limit=1000", headers=h).json()["data"]
    replay = client.get(f"/v1/runs/{replay_run.summary.run_id}/equity?limit=1000",
                        headers=h).json()["data"]
    assert len(built) == 250 and {r["ts_ns"] for r in built}.isdisjoint(
        {r["ts_ns"] for r in replay})
    # The built run has no bars of its own: never the replay run's.
    assert client.get(f"/v1/runs/{BUILT}/bars", headers=h).status_code == 404
    client.get(f"/v1/runs/{BUILT}/opportunities", headers=h)
    client.get(f"/v1/runs/{BUILT}/signals", headers=h)
    assert _fingerprint(built_run) == before


def test_no_credential_in_a_runs_config_reaches_an_answer(tmp_path: Path,
                                                          keystore: KeyStore) -> None:
    secret = "sk-ant-api03-" + "K" * 40
    run_dir = tmp_path / "leaky"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("leaky0000001", "paper", 0, json.dumps({
            "run": {"venue": "kraken"},
            "plugins": {"kraken": {"api_key": "$env:KRAKEN_KEY", "note": f"was {secret}"}}}))
    _, key = keystore.add("t", rate_per_s=100, quota_per_day=None)
    client = TestClient(create_app([run_dir], keystore))
    answer = client.get("/v1/runs/leaky0000001", headers=auth(key))
    assert answer.status_code == 200 and secret not in answer.text
    config = answer.json()["config"]["plugins"]["kraken"]
    assert config["api_key"] == "$env:KRAKEN_KEY" and "[REDACTED]" in config["note"]


def test_serve_binds_loopback_by_default() -> None:
    from argus_intel.commands import serve

    assert next(p for p in serve.params if p.name == "host").default == "127.0.0.1"


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize("forged", [[10**30], [-2], ["\ud800"], "[" * 5000, [1.5], [True]],
                         ids=["past-int64", "negative", "lone-surrogate", "nested", "float",
                              "bool"])
def test_a_forged_cursor_is_refused_not_a_500(client: TestClient, key: str, built_run: Path,
                                             forged: Any) -> None:
    """A cursor of 10**30 overflowed the ledger's query, a lone surrogate its text, 5,000
    brackets the parser (RecursionError): each a 500; -2 read rows from the end."""
    raw = base64.urlsafe_b64encode(forged.encode()).decode() if isinstance(forged, str) \
        else _cursor(forged)
    answer = client.get(f"/v1/runs/{BUILT}/equity", params={"cursor": raw}, headers=auth(key))
    # (a lone surrogate, made whole, is text where a time belongs: refused too)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_data"


def test_decode_cursor_takes_only_what_the_api_hands_out() -> None:
    assert decode_cursor(encode_cursor([5, "a"]), (int, str)) == [5, "a"]
    for forged in ([-1], [2**63], ["a"]):
        with pytest.raises(DataError):
            decode_cursor(_cursor(forged), (int,))
    with pytest.raises(DataError):  # a time where an id belongs, and the other way round
        decode_cursor(_cursor([5, 6]), (int, str))


@pytest.mark.parametrize("table", ["equity", "opportunities", "signals"])
def test_a_cursor_of_text_for_a_time_is_refused_not_an_empty_page(
        client: TestClient, key: str, built_run: Path, table: str) -> None:
    """Before: a string where the key's time belongs compared greater than every integer
    in SQLite, so the page was empty with a 200, as if the run had no more rows."""
    arity = {"equity": 1, "opportunities": 2, "signals": 3}[table]
    answer = client.get(f"/v1/runs/{BUILT}/{table}",
                        params={"cursor": _cursor(["0"] * arity)}, headers=auth(key))
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_data"
