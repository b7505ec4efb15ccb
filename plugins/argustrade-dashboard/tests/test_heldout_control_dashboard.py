"""Held-out audit of the dashboard's control surface: cross-origin and CSRF posts, the
Host check (DNS rebinding) on every loopback address, CORS, bodies that are malformed,
of the wrong type or huge, hostile reasons, controls handled once, path traversal and
SQL in parameters, a read-only ledger, one run's data and controls kept from another's,
no secret in an answer or a log, and a server that stays up under half-sent requests."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from argus_dashboard import RunDir, Tokens, create_app
from argus_dashboard.commands import loopback_hosts
from argus_dashboard.live import LiveCursor
from argus_testkit.processes import query
from dashboard_helpers import TOKEN, control_value
from starlette.testclient import TestClient

from argus_core import MAX_REASON, Ledger

ALICE = {"X-Argus-Token": TOKEN}
#: The finished replay's own latch: its loop escalated to REDUCING (by argus).
LOOP_LATCH = {"state": "reducing", "reason": "8 losing trades in a row", "flatten": False,
              "by": "argus"}


def client(run_dirs: list[Path], tokens: Tokens | None, **kwargs: Any) -> TestClient:
    """A test client of the dashboard over ``run_dirs`` (Host: testserver)."""
    runs = [RunDir(str(i), p.name, p) for i, p in enumerate(run_dirs)]
    return TestClient(create_app(runs, tokens, **kwargs))


def latch_writes(run_dir: Path) -> int:
    """Writes of the latch (the core's control_log keeps each)."""
    return len(query(run_dir, "select id from control_log where key = 'trading_state'"))


# -- cross-origin requests, CSRF, CORS, DNS rebinding ------------------------------------------
@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},                                  # a sandboxed frame, a file:// page
    {"Origin": "http://testserver.evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},  # another port
])
def test_a_cross_origin_kill_is_refused_even_with_the_token(
        headers: dict[str, str], finished_run: Path, tokens: Tokens) -> None:
    before = latch_writes(finished_run)
    answer = client([finished_run], tokens).post("/api/runs/0/kill_flatten",
                                                 headers={**ALICE, **headers},
                                                 json={"reason": "csrf"})
    assert answer.status_code == 403 and "cross-origin" in answer.json()["error"]
    assert latch_writes(finished_run) == before and control_value(finished_run) == LOOP_LATCH


def test_the_dashboards_own_page_and_a_script_may_post(finished_run: Path,
                                                       tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    same = c.post("/api/runs/0/kill", headers={**ALICE, "Origin": "http://testserver",
                                               "Sec-Fetch-Site": "same-origin"},
                  json={"reason": "from the page"})
    assert same.status_code == 200, same.text
    assert c.post("/api/runs/0/resume", headers=ALICE).status_code == 200  # curl: no Origin


def test_a_form_another_site_could_send_is_refused_and_writes_nothing(
        finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    # text/plain is the one body a cross-site form sends without a preflight.
    plain = c.post("/api/runs/0/kill", content=f"token={TOKEN}&reason=x",
                   headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["error"]
    # a cookie never stands for the token, a GET never acts
    c.cookies.set("argus_token", TOKEN)
    assert c.post("/api/runs/0/kill").status_code == 403
    assert c.get("/api/runs/0/kill", headers=ALICE).status_code == 405
    assert control_value(finished_run) == LOOP_LATCH


def test_no_cors_headers_and_no_framing(finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    for answer in (c.get("/api/runs/0", headers={"Origin": "http://evil.example"}),
                   c.options("/api/runs/0/kill", headers={
                       "Origin": "http://evil.example",
                       "Access-Control-Request-Method": "POST",
                       "Access-Control-Request-Headers": "x-argus-token"}),
                   c.get("/")):
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    page = c.get("/")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("bound", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_a_loopback_dashboard_answers_only_its_own_host_names(
        bound: str, finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens, allowed_hosts=loopback_hosts(bound))
    own = {"127.0.0.1": "127.0.0.1:8765", "::1": "[::1]:8765", "localhost": "localhost:8765",
           "127.0.0.2": "127.0.0.2:8765"}[bound]
    assert c.get("/api/runs", headers={"Host": own}).status_code == 200
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", "",
                 "[::1"):
        answer = c.get("/api/runs", headers={"Host": host})
        assert answer.status_code == 400, host
        kill = c.post("/api/runs/0/kill", headers={**ALICE, "Host": host})
        assert kill.status_code == 400, host
    assert control_value(finished_run) == LOOP_LATCH


def test_serve_binds_loopback_by_default() -> None:
    from argus_dashboard.commands import serve

    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"


# -- bodies -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("content_type", "body", "status", "says"), [
    ("application/json", b'{"reason": "spreads', 400, "not valid JSON"),
    ("application/json", b'["kill"]', 400, "JSON object"),
    ("application/json", b'{"reason": {"nested": 1}}', 400, "reason: text expected"),
    ("application/json", b'{"reason": ["a"]}', 400, "reason: text expected"),
    ("application/json", b'\xff\xfe\x00', 400, "not valid JSON"),
    ("application/xml", b"<kill/>", 415, "unsupported content type"),
    ("multipart/form-data; boundary=x", b"--x--", 415, "unsupported content type"),
    ("application/x-www-form-urlencoded", b"reason=%ff%fe", 400, "UTF-8"),
])
def test_a_body_that_cannot_be_read_is_refused_before_anything_is_written(
        content_type: str, body: bytes, status: int, says: str, finished_run: Path,
        tokens: Tokens) -> None:
    answer = client([finished_run], tokens).post(
        "/api/runs/0/kill", content=body, headers={**ALICE, "Content-Type": content_type})
    assert answer.status_code == status and says in answer.json()["error"], answer.text
    assert control_value(finished_run) == LOOP_LATCH


def test_a_huge_body_is_refused_with_413(finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    body = json.dumps({"reason": "x" * 1_000_000}).encode()
    answer = c.post("/api/runs/0/kill", content=body,
                    headers={**ALICE, "Content-Type": "application/json"})
    assert answer.status_code == 413
    chunked = c.post("/api/runs/0/kill", content=iter([b'{"reason": "', b"y" * 70_000,
                                                       b'"}']),
                     headers={**ALICE, "Content-Type": "application/json"})
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    assert control_value(finished_run) == LOOP_LATCH


def test_a_hostile_reason_is_stored_as_one_short_clean_line_without_secrets(
        finished_run: Path, tokens: Tokens) -> None:
    secret = "sk-ant-api03-" + "Z" * 40
    reason = ("\x1b[2J\x1b[31mred\x00 \u202eevil\r\nforged line <script>alert(1)</script> "
              f"{secret} {TOKEN} " + "word " * 10_000)
    answer = client([finished_run], tokens).post("/api/runs/0/kill", headers=ALICE,
                                                 json={"reason": reason})
    assert answer.status_code == 200, answer.text
    stored = control_value(finished_run)
    assert stored is not None
    kept = stored["reason"]
    assert len(kept) <= MAX_REASON and kept.startswith(" [2J [31mred evil forged line".strip())
    assert not any(c in kept for c in "\x1b\x00\u202e\r\n")
    assert secret not in kept and TOKEN not in kept and "[REDACTED]" in kept
    assert secret not in answer.text and TOKEN not in answer.text
    audit = query(finished_run, "select reason from dashboard_audit")
    assert [a["reason"] for a in audit] == [kept]
    page = client([finished_run], tokens).get("/").text
    assert "<script>alert(1)</script>" not in page


# -- handled once -----------------------------------------------------------------------------
def test_a_second_kill_a_second_flatten_and_resume_while_active_write_nothing(
        finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    writes = latch_writes(finished_run)
    assert c.post("/api/runs/0/resume", headers=ALICE).json()["changed"] is True  # REDUCING
    idle = c.post("/api/runs/0/resume", headers=ALICE).json()
    assert idle["changed"] is False and "already ACTIVE" in idle["message"]
    assert latch_writes(finished_run) == writes + 1
    assert c.post("/api/runs/0/kill_flatten", headers=ALICE,
                  json={"reason": "first"}).json()["changed"] is True
    for action in ("kill_flatten", "kill"):  # twice, and a kill never un-flattens
        again = c.post(f"/api/runs/0/{action}", headers=ALICE, json={"reason": "again"})
        assert again.status_code == 200 and again.json()["changed"] is False
        assert "already HALTED" in again.json()["message"]
    assert control_value(finished_run) == {"state": "halted", "reason": "first",
                                           "flatten": True, "by": "alice",
                                           "via": "dashboard"}
    assert latch_writes(finished_run) == writes + 2
    outcomes = [a["outcome"] for a in query(finished_run,
                                            "select outcome from dashboard_audit order by id")]
    assert outcomes == ["done", "unchanged", "done", "unchanged", "unchanged"]


def test_a_kill_on_a_run_that_is_not_running_says_so(finished_run: Path,
                                                     tokens: Tokens) -> None:
    answer = client([finished_run], tokens).post("/api/runs/0/kill", headers=ALICE).json()
    assert answer["changed"] is True and answer["run_status"] == "finished"
    assert "not running" in answer["message"]


# -- paths, parameters, the ledger, other runs ------------------------------------------------
def test_path_traversal_and_sql_in_parameters_find_nothing(finished_run: Path,
                                                           tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    for path in ("/runs/..%2F..%2Fetc%2Fpasswd", "/runs/../../etc/passwd",
                 "/api/runs/%2e%2e", "/api/runs/0%27%20or%201=1--", "/runs/argus.db",
                 "/api/runs/..%2Freplay-run", "/api/runs/0/..%2F..%2Fkill"):
        answer = c.get(path)
        assert answer.status_code in (404, 405), path
        assert "root:" not in answer.text
    assert c.post("/api/runs/0%20or%201=1/kill", headers=ALICE).status_code == 404
    assert c.post("/api/runs/0/kill;drop%20table%20fills", headers=ALICE).status_code == 404
    fills = len(query(finished_run, "select fill_id from fills"))
    cursor = LiveCursor(finished_run, fills=None)
    with c.stream("GET", "/api/runs/0/stream?fills=1;drop%20table%20fills&equity=1'--"
                         "&risk_events=-1%20union%20select%201") as stream:
        assert stream.status_code == 200
    assert len(query(finished_run, "select fill_id from fills")) == fills
    assert cursor.poll()  # the ledger still reads


def _fingerprint(run_dir: Path) -> tuple[str, str]:
    """The ledger's bytes and its WAL's (SQLite creates an empty WAL and the shared-memory
    index for a read-only reader of a WAL database: no content)."""
    wal = run_dir / "argus.db-wal"
    return (hashlib.sha256((run_dir / "argus.db").read_bytes()).hexdigest(),
            hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest())


def test_reads_never_write_the_ledger(finished_run: Path, tokens: Tokens) -> None:
    before = _fingerprint(finished_run)
    c = client([finished_run], tokens)
    for path in ("/", "/runs/0", "/api/runs", "/api/runs/0", "/healthz"):
        assert c.get(path).status_code == 200
    LiveCursor(finished_run).poll()
    c.post("/api/runs/0/kill", headers={"X-Argus-Token": "wrong-token-123"})  # refused
    assert _fingerprint(finished_run) == before


def test_one_runs_data_and_controls_never_reach_another(finished_run: Path, tmp_path: Path,
                                                        tokens: Tokens) -> None:
    other = tmp_path / "other" / "replay-run"  # the same folder name: keys only
    shutil.copytree(finished_run, other)
    with Ledger.in_dir(other) as ledger, ledger.transaction() as conn:
        conn.execute("update runs set run_id = 'other-run'")
    c = client([finished_run, other], tokens)
    assert c.get("/api/runs/replay-run").status_code == 404  # ambiguous name: no guess
    first, second = c.get("/api/runs/0").json(), c.get("/api/runs/1").json()
    assert "other-run" not in json.dumps(first) and "other-run" in json.dumps(second)
    assert c.post("/api/runs/1/kill", headers=ALICE, json={"reason": "only 1"}
                  ).status_code == 200
    assert control_value(finished_run) == LOOP_LATCH
    assert control_value(other) == {"state": "halted", "reason": "only 1", "flatten": False,
                                    "by": "alice", "via": "dashboard"}
    assert c.post("/api/runs/2/kill", headers=ALICE).status_code == 404


# -- secrets ----------------------------------------------------------------------------------
def test_no_secret_reaches_a_page_an_answer_or_a_log(
        finished_run: Path, tokens: Tokens, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-ant-api03-" + "S" * 40
    with Ledger.in_dir(finished_run) as ledger, ledger.transaction():
        # a row quoting credentials (written by something that did not redact)
        ledger.record_risk_event(1, "venue", "veto", "boom", instrument_id="XBT/USD")
        ledger.conn.execute("update risk_events set reason = ? where check_name = 'venue'",
                            (f"rejected: api_key={secret} token {TOKEN}",))
    c = client([finished_run], tokens, reads_need_token=True)
    login = c.get(f"/?token={TOKEN}", follow_redirects=False)
    assert login.status_code == 303 and TOKEN not in login.headers["location"]
    for path in ("/", "/api/runs/0", "/api/runs"):
        text = c.get(path, headers=ALICE).text
        assert secret not in text and TOKEN not in text, path
    with c.stream("GET", "/api/runs/0/stream?risk_events=0", headers=ALICE) as stream:
        for line in stream.iter_lines():
            assert secret not in line and TOKEN not in line
            if line.startswith("event: summary"):
                break
    c.post("/api/runs/0/kill", headers={"X-Argus-Token": TOKEN + "x"})
    c.post("/api/runs/0/kill%0aWARNING%20forged", headers=ALICE)
    # (the test client's own httpx log shows the URL it asked for: not the server's)
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith("http")]
    assert all(TOKEN not in m and secret not in m for m in logged), [
        m for m in logged if TOKEN in m or secret in m]
    assert all("\n" not in m for m in logged if m.startswith("dashboard:"))


# -- a server that stays up -------------------------------------------------------------------
def test_half_sent_requests_do_not_take_the_server_down(finished_run: Path,
                                                         serve: Any) -> None:
    server = serve(finished_run)
    stalled = []
    try:
        for i in range(40):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"POST /api/runs/0/kill HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Length: 100000\r\n\r\n{\"reason\": \"" if i % 2 else
                         b"GET / HTTP/1.1\r\nHost: 127.0")
            stalled.append(sock)
        t0 = time.monotonic()
        answer = httpx.get(f"{server.url}/healthz", timeout=10)
        assert answer.status_code == 200 and time.monotonic() - t0 < 5
    finally:
        for sock in stalled:
            sock.close()
    assert control_value(finished_run) == LOOP_LATCH


# -- a red team of the inputs (each failed before its fix: a 500) -----------------------------
def test_a_body_nested_deep_or_a_token_with_a_lone_surrogate_is_refused_not_a_500(
        finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    deep = c.post("/api/runs/0/kill", content=b"[" * 30_000,
                  headers={"Content-Type": "application/json"})
    assert deep.status_code == 400, deep.text  # RecursionError before
    odd = c.post("/api/runs/0/kill", content=b'{"token": "\\ud800", "reason": "x"}',
                 headers={"Content-Type": "application/json"})
    assert odd.status_code in (401, 403), odd.text  # UnicodeEncodeError before
    assert control_value(finished_run) == LOOP_LATCH


@pytest.mark.parametrize("mark", ["%C2%B2", "--5", "-%C2%B2", "1" * 30])
def test_a_stream_mark_that_is_no_row_id_is_ignored(finished_run: Path, tokens: Tokens,
                                                    mark: str) -> None:
    """'²' is a digit to isdigit and int() refuses it (a 500); 10**30 made every poll of
    the stream fail for as long as the client stayed."""
    with client([finished_run], tokens).stream(
            "GET", f"/api/runs/0/stream?fills={mark}") as stream:
        assert stream.status_code == 200
