"""The dashboard on a real port (uvicorn): server-sent events deliver a new fill and a
kill within a couple of seconds; ``argus serve`` refuses a missing run directory, a port
in use (by number), a bad token reference and an open bind without a token."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from dashboard_helpers import IID, TOKEN, TOKEN_ENV, add_fill, free_port, paper_run, query

from argus_core.cli import cli


def sse_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """``(event, data)`` pairs of a server-sent event stream."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "" and data:
            yield name, json.loads(data)
            name, data = "message", ""


def test_a_new_fill_and_a_kill_arrive_over_the_stream_within_seconds(
        finished_run: Path, serve: Any) -> None:
    server = serve(finished_run, poll_s=0.2)
    seen: list[tuple[float, str, Any]] = []
    ready, done = threading.Event(), threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{server.url}/api/runs/0/stream", timeout=15) as response:
            seen.append((time.monotonic(), "content-type", response.headers["content-type"]))
            try:
                for name, data in sse_events(response):
                    seen.append((time.monotonic(), name, data))
                    if name == "summary":
                        ready.set()
                    if done.is_set() or len(seen) > 200:
                        return
            except httpx.HTTPError:
                return  # the server stopped first

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10), "no first summary over the stream"
    assert seen[0][2].startswith("text/event-stream")
    first = {name for _, name, _ in seen[1:]}
    assert {"state", "summary", "orders", "positions"} <= first and "fills" not in first
    booked = time.monotonic()
    fill_id = add_fill(finished_run, 1, price="43210.5")
    deadline = booked + 3
    while time.monotonic() < deadline and not any(n == "fills" for _, n, _ in seen):
        time.sleep(0.05)
    fills = [(t, d) for t, n, d in seen if n == "fills"]
    assert fills, "the new fill did not arrive within 3 s"
    arrived, data = fills[0]
    assert arrived - booked < 2.5
    assert [(f["fill_id"], f["price"]) for f in data["rows"]] == [(fill_id, "43210.5")]
    # the same poll's summary follows its fills
    while time.monotonic() < deadline and not any(
            n == "summary" and d["summary"]["fills"] == 17 for _, n, d in seen):
        time.sleep(0.05)
    assert [d["summary"]["fills"] for _, n, d in seen if n == "summary"][-1] == 17
    killed = time.monotonic()
    answer = httpx.post(f"{server.url}/api/runs/0/kill", headers={"X-Argus-Token": TOKEN},
                        json={"reason": "over the wire"}, timeout=10)
    assert answer.status_code == 200, answer.text
    while time.monotonic() < killed + 3 and not any(
            n == "state" and d["trading_state"]["state"] == "halted" for _, n, d in seen):
        time.sleep(0.05)
    states = [d["trading_state"] for _, n, d in seen if n == "state"]
    # (a finished run: no loop will adopt it)
    assert states[-1] == {"state": "halted", "reason": "over the wire", "flatten": False,
                          "by": "alice", "ts_ns": states[-1]["ts_ns"], "adopted": False}
    done.set()
    add_fill(finished_run, 2)  # wakes the listener so it can leave
    thread.join(timeout=10)


def test_kill_and_flatten_over_http_closes_a_running_paper_runs_position_and_halts_it(
        tmp_path: Path, serve: Any) -> None:
    run_dir = tmp_path / "paper-run"

    def long_now() -> bool:
        rows = query(run_dir, "select quantity from positions where instrument_id = ?", (IID,))
        return bool(rows) and Decimal(rows[0]["quantity"]) > 0

    with paper_run(run_dir) as run:
        deadline = time.monotonic() + 20
        while not ((run_dir / "argus.db").exists() and long_now()):
            assert time.monotonic() < deadline, "the paper run never held a position"
            time.sleep(0.02)
        server = serve(run_dir)
        answer = httpx.post(f"{server.url}/api/runs/0/kill_flatten", timeout=10,
                            headers={"X-Argus-Token": TOKEN}, json={"reason": "flatten now"})
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 10
        while run.runner.trading_state.value != "halted" or long_now():
            assert time.monotonic() < deadline, "the loop did not halt flat"
            time.sleep(0.05)
        time.sleep(0.5)
    assert run.summary.trading_state == "halted"
    (position,) = query(run_dir, "select quantity from positions where instrument_id = ?",
                        (IID,))
    assert Decimal(position["quantity"]) == 0
    flattening = query(run_dir, "select side, reduce_only from orders order by ts_ns desc "
                                "limit 1")
    assert flattening == [{"side": "sell", "reduce_only": 1}]
    assert query(run_dir, "select action, actor from dashboard_audit") == [
        {"action": "kill_flatten", "actor": "alice"}]


def test_the_page_over_a_real_port_has_the_numbers(finished_run: Path, serve: Any) -> None:
    server = serve(finished_run)
    page = httpx.get(server.url + "/", timeout=10)
    assert page.status_code == 200 and 'id="fill-count"' in page.text
    assert 'data-value="16"' in page.text


# -- argus serve ---------------------------------------------------------------------------

def test_serve_is_an_argus_command() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--token", "--poll"):
        assert option in result.output


def test_serve_refuses_a_missing_run_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "nowhere: no such run directory" in result.output


def test_serve_refuses_a_port_in_use_naming_it(finished_run: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(finished_run), "--port", str(port)])
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.output


def test_serve_refuses_a_bad_token_reference_without_showing_a_value(
        finished_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGUS_NO_SUCH_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", str(finished_run), "--port", str(free_port()),
                                      "--token", "$env:ARGUS_NO_SUCH_TOKEN"])
    assert result.exit_code == 2
    assert "ARGUS_NO_SUCH_TOKEN is not set" in result.output
    result = CliRunner().invoke(cli, ["serve", str(finished_run), "--port", str(free_port()),
                                      "--token", "hunter2-inline-secret"])
    assert result.exit_code == 2 and "inline secret values are refused" in result.output
    assert "hunter2" not in result.output


def test_serve_beyond_loopback_needs_a_token(finished_run: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", str(finished_run), "--host", "0.0.0.0",
                                      "--port", str(free_port())])
    assert result.exit_code == 2 and "give --token" in result.output


def test_serve_serves_until_stopped(finished_run: Path, monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    import uvicorn

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    served: dict[str, Any] = {}

    def run(self: uvicorn.Server, sockets: list[socket.socket]) -> None:
        # Instead of serving forever: what the command built, then a real request.
        served["port"] = sockets[0].getsockname()[1]
        served["app"] = self.config.app
        served["access_log"] = self.config.access_log
        sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    port = free_port()
    result = CliRunner().invoke(cli, ["serve", str(finished_run), "--port", str(port),
                                      "--token", f"bob=$env:{TOKEN_ENV}"])
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{port}/" in result.output and "controls for bob" in result.output
    assert TOKEN not in result.output
    assert served["port"] == port and served["access_log"] is False
    from starlette.testclient import TestClient

    local = TestClient(served["app"], base_url="http://127.0.0.1:8765")
    answer = local.post("/api/runs/0/kill", headers={"X-Argus-Token": TOKEN},
                        json={"reason": "cli"})
    assert answer.status_code == 200 and answer.json()["by"] == "bob"
    assert TestClient(served["app"], base_url="http://localhost").get("/").status_code == 200
    # a page elsewhere that rebinds its own name to 127.0.0.1 is not answered
    assert TestClient(served["app"], base_url="http://evil.example").get(
        "/api/runs/0").status_code == 400
