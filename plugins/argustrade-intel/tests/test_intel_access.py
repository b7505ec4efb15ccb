"""Keys, rate limits, quotas and the OpenAPI document: who gets in, how often, and what
the refusals say."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from argus_intel.keys import KeyStore, parse_quota, parse_rate
from fastapi.testclient import TestClient
from intel_helpers import Clock, MakeClient, auth

from argus_core import ConfigError

ENDPOINTS = {
    ("get", "/v1/runs"), ("get", "/v1/runs/{run_id}"), ("get", "/v1/runs/{run_id}/bars"),
    ("get", "/v1/runs/{run_id}/equity"), ("get", "/v1/runs/{run_id}/opportunities"),
    ("get", "/v1/runs/{run_id}/signals"), ("post", "/v1/regimes"), ("get", "/v1/regimes"),
    ("post", "/v1/options/pop"), ("post", "/v1/options/iv-anomalies"),
    ("post", "/v1/options/spreads"),
}


def test_openapi_lists_every_endpoint_and_docs_need_no_key(client: TestClient) -> None:
    doc = client.get("/openapi.json")
    assert doc.status_code == 200
    listed = {(m, p) for p, ops in doc.json()["paths"].items() for m in ops}
    assert listed == ENDPOINTS
    schemes = doc.json()["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    for path, ops in doc.json()["paths"].items():
        assert path.startswith("/v1/")
        for op in ops.values():
            assert op.get("description") or op.get("summary"), path
    assert "swagger" in client.get("/docs").text.lower()


@pytest.mark.parametrize(("method", "path"), sorted(ENDPOINTS))
def test_every_endpoint_refuses_a_missing_key(client: TestClient, method: str, path: str
                                              ) -> None:
    r = client.request(method.upper(), path.replace("{run_id}", "built0000001"), json={})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_key"
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_malformed_and_unknown_keys_are_401_revoked_is_403(
        client: TestClient, keystore: KeyStore, key: str) -> None:
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    unknown = "argi_000000000000_" + key.split("_", 2)[2]
    for bad in (wrong, unknown, "hunter2", "Bearer"):
        r = client.get("/v1/runs", headers=auth(bad))
        assert r.status_code == 401, bad
        assert r.json()["error"]["code"] == "invalid_key"
    assert client.get("/v1/runs", headers={"Authorization": f"Basic {key}"}).status_code == 401
    assert client.get("/v1/runs", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/v1/runs", headers=auth(key)).status_code == 200
    (record,) = keystore.revoke("tester")
    r = client.get("/v1/runs", headers=auth(key))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "key_revoked"
    assert record.key_id in r.json()["error"]["message"]


def test_rate_limit_answers_429_with_retry_after_and_refills(
        make_client: MakeClient, keystore: KeyStore, clock: Clock) -> None:
    _, key = keystore.add("slow", rate_per_s=0.5, burst=3, quota_per_day=None)
    client = make_client()
    for left in (2, 1, 0):
        r = client.get("/v1/runs", headers=auth(key))
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Remaining"] == str(left)
    r = client.get("/v1/runs", headers=auth(key))
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert r.headers["Retry-After"] == "2"  # one token at 0.5/s
    clock.advance(1.0)
    r = client.get("/v1/runs", headers=auth(key))
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    clock.advance(1.0)
    assert client.get("/v1/runs", headers=auth(key)).status_code == 200
    # Another key has its own bucket.
    _, other = keystore.add("other", rate_per_s=0.5, burst=1, quota_per_day=None)
    assert client.get("/v1/runs", headers=auth(other)).status_code == 200


def test_daily_quota_is_named_persists_across_restarts_and_resets_at_utc_midnight(
        make_client: MakeClient, keystore: KeyStore, clock: Clock) -> None:
    clock.now = 1_767_312_000.0 - 30  # 2026-01-01 23:59:30 UTC
    _, key = keystore.add("metered", rate_per_s=100, quota_per_day=3)
    client = make_client()
    remaining = [client.get("/v1/runs", headers=auth(key)).headers["X-Quota-Remaining"]
                 for _ in range(2)]
    assert remaining == ["2", "1"]
    # A restarted server (a new app on the same keys file) keeps the day's count.
    client = make_client()
    assert client.get("/v1/runs", headers=auth(key)).headers["X-Quota-Remaining"] == "0"
    r = client.get("/v1/runs", headers=auth(key))
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == "quota_exceeded"
    assert "daily quota of 3 requests" in err["message"]
    assert r.headers["Retry-After"] == "30"
    assert r.headers["X-Quota-Limit"] == "3"
    assert keystore.used(keystore.list()[0].key_id, "2026-01-01") == 3  # refusals not counted
    clock.advance(31)  # past midnight UTC
    r = client.get("/v1/runs", headers=auth(key))
    assert r.status_code == 200
    assert r.headers["X-Quota-Remaining"] == "2"


def test_keys_are_stored_hashed_and_never_logged(tmp_path: Path, make_client: MakeClient,
                                                 keystore: KeyStore,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    record, key = keystore.add("secretive", rate_per_s=100, quota_per_day=10)
    secret = key.split("_", 2)[2]
    assert key.startswith(f"argi_{record.key_id}_")
    client = make_client()
    assert client.get("/v1/runs", headers=auth(key)).status_code == 200
    assert client.get("/v1/runs", headers=auth(key[:-1] + "x")).status_code == 401
    keystore.revoke(record.key_id)
    assert client.get("/v1/runs", headers=auth(key)).status_code == 403
    for f in tmp_path.iterdir():  # the keys file, its WAL and shared memory
        if f.is_file():
            data = f.read_bytes()
            assert secret.encode() not in data and key.encode() not in data, f
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged
    assert secret not in logged and secret[:-1] not in logged
    assert all(secret not in repr(k) for k in keystore.list())


def test_hash_check_is_real_not_a_cache_of_the_id(keystore: KeyStore, key: str) -> None:
    assert keystore.verify(key).outcome == "ok"
    assert keystore.verify(key).outcome == "ok"  # remembered
    assert keystore.verify(key[:-2] + ("zz" if key[-2:] != "zz" else "yy")).outcome == "wrong"


def test_rate_and_quota_texts() -> None:
    assert parse_rate("5/s") == 5 and parse_rate("120/min") == 2 and parse_rate("3") == 3
    assert parse_quota("100/day") == 100 and parse_quota("7") == 7
    for bad in ("0/s", "x/s", "5/week"):
        with pytest.raises(ConfigError, match="--rate"):
            parse_rate(bad)
    with pytest.raises(ConfigError, match="--quota"):
        parse_quota("-1/day")
