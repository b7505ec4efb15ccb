"""The commands: ``argus intel keys add|list|revoke`` through the core's CLI, and the API
served by uvicorn on a free port, spoken to over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from argus_intel.app import create_app
from argus_intel.keys import KeyStore
from click.testing import CliRunner
from intel_helpers import auth

from argus_core.cli import cli
from argus_core.testing import RunResult


def test_keys_add_prints_the_key_once_and_list_never_shows_it(tmp_path: Path) -> None:
    keys_file = tmp_path / "k" / "keys.db"
    runner = CliRunner()
    added = runner.invoke(cli, ["intel", "keys", "add", "research", "--rate", "120/min",
                                "--quota", "500/day", "--keys", str(keys_file)])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("argi_") and key.count("\n") == 0
    store = KeyStore(keys_file)
    (record,) = store.list()
    assert (record.name, record.rate_per_s, record.quota_per_day) == ("research", 2.0, 500)
    assert store.verify(key).outcome == "ok"
    listed = runner.invoke(cli, ["intel", "keys", "list", "--keys", str(keys_file)])
    assert listed.exit_code == 0 and record.key_id in listed.output
    assert key.split("_", 2)[2] not in listed.output and "live" in listed.output
    assert keys_file.stat().st_mode & 0o077 == 0  # only the owner reads the hashes
    revoked = runner.invoke(cli, ["intel", "keys", "revoke", record.key_id,
                                  "--keys", str(keys_file)])
    assert revoked.exit_code == 0 and f"revoked {record.key_id}" in revoked.output
    assert store.verify(key).outcome == "revoked"
    again = runner.invoke(cli, ["intel", "keys", "revoke", record.key_id,
                                "--keys", str(keys_file)])
    assert again.exit_code != 0 and "no live key" in again.output
    bad = runner.invoke(cli, ["intel", "keys", "add", "x", "--rate", "fast",
                              "--keys", str(keys_file)])
    assert bad.exit_code != 0 and "--rate 'fast'" in bad.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(replay_run: RunResult, built_run: Path, keystore: KeyStore
           ) -> Iterator[tuple[str, str]]:
    """``(base URL, key)`` of the API on uvicorn, on a free port, in a thread."""
    _, key = keystore.add("live", rate_per_s=0.5, burst=4, quota_per_day=100)
    app = create_app([replay_run.run_dir, built_run], keystore,
                     data_dirs=[replay_run.run_dir.parent])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_api_over_uvicorn(served: tuple[str, str], replay_run: RunResult) -> None:
    base, key = served
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/v1/runs").status_code == 401
        assert set(http.get("/openapi.json").json()["paths"]) >= {"/v1/runs",
                                                                 "/v1/options/pop"}
        r = http.get(f"/v1/runs/{replay_run.summary.run_id}/equity?limit=5",
                     headers=auth(key))
        assert r.status_code == 200 and len(r.json()["data"]) == 5
        assert r.json()["next"].startswith("/v1/runs/")  # relative: no Host in it
        follow = http.get(r.json()["next"], headers=auth(key))  # the link works as given
        forged = http.get(f"/v1/runs/{replay_run.summary.run_id}/equity?limit=5",
                          headers={**auth(key), "Host": "attacker.example"})
        assert "attacker" not in (forged.json().get("next") or ""), forged.text
        assert follow.status_code == 200
        assert follow.json()["data"][0]["ts_ns"] > r.json()["data"][-1]["ts_ns"]
        burst = [http.get("/v1/runs", headers=auth(key)) for _ in range(3)]
        limited = [b for b in burst if b.status_code == 429]
        assert limited and int(limited[0].headers["Retry-After"]) >= 1
        assert limited[0].json()["error"]["code"] == "rate_limited"


def test_argus_intel_serve_runs_as_a_command(built_run: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    keys_file = tmp_path / "keys.db"
    _, key = KeyStore(keys_file).add("cmd", rate_per_s=10, quota_per_day=None)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "argus_core.cli", "intel", "serve",
                             str(built_run), "--port", str(port), "--keys", str(keys_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/runs", headers=auth(key),
                              timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "argus intel serve did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        assert [x["run_id"] for x in r.json()["data"]] == ["built0000001"]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert key.split("_", 2)[2] not in output  # not in uvicorn's access log either
    assert "/v1/runs" in output


def test_serve_refuses_a_port_in_use_naming_it(built_run: Path, tmp_path: Path) -> None:
    """One error line and exit 1 before anything is served (it printed "serving ..." and
    then uvicorn's bind error, exit 3)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["intel", "serve", str(built_run), "--port",
                                          str(port), "--keys", str(tmp_path / "keys.db")])
    assert result.exit_code == 2, result.output
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert "serving" not in result.output
