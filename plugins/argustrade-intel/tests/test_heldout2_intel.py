"""Second held-out audit of the intelligence API: what an adversary or a careless client
found, one test per finding, each failing before its fix.

Found: a ledger damaged while served, and a keys file damaged, replaced or holding a
key with a zero rate, were 500s; a recorded config or opportunity body that is not JSON
(or not a table) was a 500, and a recorded ``bar_seconds`` of text a 500 (negative: bars
stamped before they opened); infinite regime parameters (``inf``, ``1e309``) were
answered 200 with meaningless figures; ``warmup_bars`` past the series was silently cut,
and one warm-up return made a zero-variance prior; a cursor of another endpoint or run
was taken (an equity cursor paged bars; a regimes cursor past the end answered an
empty last page); two keys in one request (two ``Authorization`` headers, or
``X-API-Key`` beside ``Bearer``) were resolved by header order, a valid key refused as
"not valid"; posted ``ts_ns`` out of order or past int64 were echoed back.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import apsw
import pytest
from argus_intel.app import create_app
from argus_intel.keys import KeyStore
from fastapi.testclient import TestClient
from intel_helpers import MakeClient, auth

from argus_core import Ledger
from argus_core.testing import RunResult

BUILT = "built0000001"


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _error(answer: Any, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text[:300]
    assert "Traceback" not in answer.text
    error = answer.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


def test_a_ledger_damaged_while_served_is_503_naming_it(tmp_path: Path, built_run: Path,
                                                         keystore: KeyStore, key: str) -> None:
    """Before: a run's argus.db overwritten while served raised apsw's NotADBError from
    every read: 500 internal_error on /v1/runs and the run's pages."""
    run_dir = tmp_path / "run"
    shutil.copytree(built_run, run_dir)
    client = TestClient(create_app([run_dir], keystore), raise_server_exceptions=False)
    for path in run_dir.glob("argus.db*"):
        path.unlink()
    (run_dir / "argus.db").write_bytes(b"not a database" * 100)
    for url in ("/v1/runs", f"/v1/runs/{BUILT}", f"/v1/runs/{BUILT}/equity"):
        message = _error(client.get(url, headers=auth(key)), 503, "ledger_unavailable")
        assert "argus.db" in message and "NotADBError" in message, message


@pytest.mark.parametrize("damage", ["garbage", "replaced", "zero_rate"])
def test_a_keys_file_gone_bad_while_serving_is_503_without_its_path(
        tmp_path: Path, built_run: Path, damage: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """Before: a keys file overwritten with garbage (NotADBError), replaced by an empty
    one (SQLError: no such table; the reconnect had made a new file) or holding a key
    whose rate is 0 (ZeroDivisionError in the token bucket) was a 500 for every
    request; a keys file removed while served went on answering 200 from the removed
    file (the held connection), its revocations unseen."""
    store = KeyStore(tmp_path / "keys.db")
    _, key = store.add("k", rate_per_s=10, quota_per_day=None)
    client = TestClient(create_app([built_run], store), raise_server_exceptions=False)
    assert client.get("/v1/runs", headers=auth(key)).status_code == 200
    if damage == "zero_rate":
        conn = apsw.Connection(str(store.path))
        conn.execute("update keys set rate_per_s = 0")
        conn.close()
    else:  # the server's connection stays open: it kept reading the removed file
        for path in tmp_path.glob("keys.db*"):
            path.unlink()
        if damage == "garbage":
            store.path.write_bytes(b"garbage" * 1000)
    with caplog.at_level(logging.ERROR, "argus.intel"):
        message = _error(client.get("/v1/runs", headers=auth(key)), 503, "keys_unavailable")
    assert str(tmp_path) not in message  # unauthenticated callers see this too
    assert str(store.path) in caplog.text  # the operator's log names the file
    assert key.split("_", 2)[2] not in caplog.text
    if damage == "replaced":
        assert not store.path.exists()  # a read never makes a new, empty keys file


def _run_with(tmp_path: Path, name: str, config: str) -> Path:
    run_dir = tmp_path / name
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run(name, "replay", 0, config)
    return run_dir


def test_damaged_json_in_a_ledger_is_a_clear_error_not_500(tmp_path: Path,
                                                            keystore: KeyStore,
                                                            key: str) -> None:
    """Before: a runs.config_json that is not JSON was a 500 (JSONDecodeError) on
    /v1/runs/{id}, /bars and /regimes; one that is JSON but not a table (``[1, 2]``)
    or whose ``run`` is no table (``{"run": "x"}``) a 500 (AttributeError) on /bars; an
    opportunity's body_json that is not JSON a 500 on /opportunities."""
    bad = _run_with(tmp_path, "notjson00001", "{not json")
    listed = _run_with(tmp_path, "alist0000001", "[1, 2]")
    text_run = _run_with(tmp_path, "textrun00001", json.dumps({"run": "x"}))
    conn = apsw.Connection(str(bad / "argus.db"))
    conn.execute("insert into opportunities values ('o1', 's', 1, 'k', '1', 0, 'seen', "
                  "'{broken')")
    conn.close()
    client = TestClient(create_app([bad, listed, text_run], keystore),
                        raise_server_exceptions=False)
    h = auth(key)
    for url in ("/v1/runs/notjson00001", "/v1/runs/notjson00001/bars",
                "/v1/regimes?run_id=notjson00001", "/v1/runs/alist0000001/bars"):
        message = _error(client.get(url, headers=h), 503, "ledger_unavailable")
        assert "config_json" in message and "argus.db" in message, message
    message = _error(client.get("/v1/runs/notjson00001/opportunities", headers=h), 503,
                     "ledger_unavailable")
    assert "o1" in message and "body_json" in message, message
    message = _error(client.get("/v1/runs/textrun00001/bars", headers=h), 404,
                     "bars_unavailable")
    assert "[run]" in message, message


@pytest.mark.parametrize("bar_seconds", ["abc", -5, 0, 1.5, True])
def test_a_bad_recorded_bar_seconds_is_bars_unavailable(tmp_path: Path, keystore: KeyStore,
                                                        key: str, bar_seconds: Any) -> None:
    """Before: ``bar_seconds = "abc"`` was a 500 (ValueError from int()); -5 and 0 served
    bars stamped before or at their open, 1.5 was cut to 1 second."""
    (tmp_path / "bars.csv").write_text("1609459200,1,1,1,1,1,1\n1609462800,1,1,1,1,1,1\n")
    run_dir = _run_with(tmp_path, "bars00000001", json.dumps({
        "run": {"venue": "replay"},
        "plugins": {"replay": {"bars_csv": "bars.csv", "bar_seconds": bar_seconds}}}))
    client = TestClient(create_app([run_dir], keystore, data_dirs=[tmp_path]),
                        raise_server_exceptions=False)
    message = _error(client.get("/v1/runs/bars00000001/bars", headers=auth(key)), 404,
                     "bars_unavailable")
    assert "bar_seconds" in message, message


@pytest.mark.parametrize("value", ["inf", "1e309", "Infinity"])
@pytest.mark.parametrize("name", ["hazard_lambda", "periods_per_year"])
def test_non_finite_regime_parameters_are_422(client: TestClient, key: str,
                                              replay_run: RunResult, name: str,
                                              value: str) -> None:
    """Before: ``hazard_lambda=inf`` (or 1e309, which parses to inf) and
    ``periods_per_year=inf`` passed ``gt`` checks and were answered 200 with figures of
    no meaning (no change point ever; zero vol), in the query and in a posted body."""
    h = auth(key)
    answer = client.get("/v1/regimes", headers=h,
                        params={"run_id": replay_run.summary.run_id, name: value})
    assert name in _error(answer, 422, "invalid_request")
    as_json = {"inf": "Infinity", "-inf": "-Infinity"}.get(value, value)  # Python's JSON
    body = f'{{"closes": [1, 2, 3], "{name}": {as_json}}}'.encode()
    answer = client.post("/v1/regimes", content=body,
                         headers={**h, "Content-Type": "application/json"})
    assert name in _error(answer, 422, "invalid_request")


@pytest.mark.parametrize("warmup", [1, 3, 50])
def test_warmup_bars_must_fit_the_series_returns(client: TestClient, key: str,
                                                 warmup: int) -> None:
    """Before: ``warmup_bars`` beyond the series' returns was silently cut to what there
    was (50 on 3 closes: a 200), and 1 made the prior's variance that of one return: 0
    (floored at 1e-12, every later move a change)."""
    answer = client.post("/v1/regimes", headers=auth(key),
                         json={"closes": [1.0, 1.1, 1.05], "warmup_bars": warmup})
    assert "warmup_bars" in _error(answer, 422, "invalid_data")
    ok = client.post("/v1/regimes", headers=auth(key),
                     json={"closes": [1.0, 1.1, 1.05], "warmup_bars": 2})
    assert ok.status_code == 200, ok.text


def test_a_cursor_of_another_endpoint_or_run_is_refused(client: TestClient, key: str,
                                                        replay_run: RunResult) -> None:
    """Before: a cursor was only a row key, so the equity cursor of one run paged the
    bars (200, rows after that "time") and the equity of another run; a regimes cursor
    past the series (or another run's) answered an empty last page, 200."""
    h = auth(key)
    replay = replay_run.summary.run_id
    equity = client.get(f"/v1/runs/{BUILT}/equity?limit=1", headers=h).json()["next_cursor"]
    for url in (f"/v1/runs/{replay}/bars", f"/v1/runs/{replay}/equity",
                f"/v1/regimes?run_id={replay}", f"/v1/runs/{BUILT}/signals"):
        sep = "&" if "?" in url else "?"
        message = _error(client.get(f"{url}{sep}cursor={equity}", headers=h), 422,
                         "invalid_data")
        assert "cursor" in message
    posted = client.post("/v1/regimes?limit=2", headers=h,
                         json={"closes": [1, 2, 3, 4, 5]}).json()["next_cursor"]
    assert client.post(f"/v1/regimes?cursor={posted}", headers=h,
                       json={"closes": [1, 2, 3, 4, 5]}).status_code == 200
    assert client.get(f"/v1/regimes?run_id={replay}&cursor={posted}",
                      headers=h).status_code == 422
    assert client.post(f"/v1/regimes?cursor={posted}", headers=h,
                       json={"closes": [1, 2]}).status_code == 422  # past this series
    past = _cursor(["regimes:posted", 10**9])
    assert client.post(f"/v1/regimes?cursor={past}", headers=h,
                       json={"closes": [1, 2, 3]}).status_code == 422


@pytest.mark.parametrize("headers", [
    [("Authorization", "Bearer argi_000000000000_" + "A" * 43), ("Authorization", "KEY")],
    [("Authorization", "KEY"), ("Authorization", "Bearer argi_000000000000_" + "A" * 43)],
    [("X-API-Key", "junk"), ("Authorization", "KEY")],
    [("X-API-Key", "KEY"), ("Authorization", "Bearer junk")],
    [("X-API-Key", "KEY"), ("X-API-Key", "junk")],
])
def test_several_keys_in_one_request_are_refused_naming_the_headers(
        client: TestClient, key: str, headers: list[tuple[str, str]]) -> None:
    """Before: the first ``Authorization`` header won and ``X-API-Key`` beat ``Bearer``,
    so a request with a valid key beside a wrong one was 200 or 401 "the API key is not
    valid" by header order (a proxy that reads the other header authorises another
    key)."""
    sent = [(name, value.replace("KEY", f"Bearer {key}" if name == "Authorization" else key))
            for name, value in headers]
    message = _error(client.get("/v1/runs", headers=sent), 401, "invalid_key")
    assert "2 API keys" in message and "send one" in message, message
    assert key not in message
    # The same key twice (a client library adding its header to the caller's) is one key.
    same = [("X-API-Key", key), ("Authorization", f"Bearer {key}")]
    assert client.get("/v1/runs", headers=same).status_code == 200
    assert client.get("/v1/runs", headers={"X-API-Key": f"  {key} "}).status_code == 200


@pytest.mark.parametrize("ts_ns", [[2, 1, 3], [1, 1, 2], [-1, 0, 1], [0, 1, 2**63]])
def test_posted_time_stamps_must_increase_within_int64(client: TestClient, key: str,
                                                       ts_ns: list[int]) -> None:
    """Before: ``ts_ns`` was only counted: out of order, repeated, negative or past
    int64 (``2**70``) stamps were echoed back as the bars' times, change points
    included."""
    answer = client.post("/v1/regimes", headers=auth(key),
                         json={"closes": [1.0, 1.1, 1.2], "ts_ns": ts_ns})
    assert "ts_ns" in _error(answer, 422, "invalid_request")


def test_page_walks_still_see_every_row(make_client: MakeClient, key: str) -> None:
    """The scoped cursors still walk a listing to its end (a guard on the fix above)."""
    client = make_client()
    rows, pages = [], 0
    url: str | None = f"/v1/runs/{BUILT}/signals?limit=7"
    while url is not None:
        page = client.get(url, headers=auth(key)).json()
        rows.extend(page["data"])
        pages, url = pages + 1, page["next"]
    assert len(rows) == 160 and pages == 23


def test_wrong_secrets_of_one_key_id_stop_being_hashed(
        client: TestClient, keystore: KeyStore, key: str, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """Every wrong secret of a known key id (ids appear in error messages) cost a full
    scrypt (~50 ms, 16 MiB) before any rate limit: anyone holding an id could keep the
    server hashing.  After ``MAX_FAILURES`` misses in the window the id's secrets are not
    checked (429 with Retry-After); the holder whose key was verified before goes on."""
    from argus_intel import keys as keys_mod

    assert client.get("/v1/runs", headers=auth(key)).status_code == 200  # verified, remembered
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    hashed: list[bytes] = []
    real_hash = keys_mod._hash
    monkeypatch.setattr(keys_mod, "_hash", lambda s, salt: hashed.append(salt) or real_hash(
        s, salt))
    codes = [client.get("/v1/runs", headers=auth(wrong)).status_code
             for _ in range(keys_mod.MAX_FAILURES + 5)]
    assert codes == [401] * keys_mod.MAX_FAILURES + [429] * 5, codes
    assert len(hashed) == keys_mod.MAX_FAILURES  # none after the limit
    r = client.get("/v1/runs", headers=auth(wrong))
    assert r.json()["error"]["code"] == "too_many_failures"
    assert 1 <= int(r.headers["Retry-After"]) <= keys_mod.FAILURE_WINDOW_S
    assert client.get("/v1/runs", headers=auth(key)).status_code == 200
