"""Shared fixtures of the dashboard's tests: a finished replay run, tokens and a live
server on a free port."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_dashboard import RunDir, Tokens, create_app
from argus_testkit import run_and_collect

# --import-mode=importlib puts a test module's folder on sys.path only when it imports the
# module, after this conftest loaded: the helpers' folder goes on it here.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_helpers import TOKEN, TOKEN_ENV, LiveServer, chromium, replay_config


@pytest.fixture(scope="session")
def finished_run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished replay run, made once; tests copy it (:func:`finished_run`)."""
    run_dir = tmp_path_factory.mktemp("template") / "run"
    result = run_and_collect(replay_config(), run_dir)
    assert len(result.fills) > 5 and result.risk_events
    return run_dir


@pytest.fixture
def finished_run(finished_run_template: Path, tmp_path: Path) -> Path:
    """A private copy of the finished replay run (controls write to it)."""
    run_dir = tmp_path / "replay-run"
    shutil.copytree(finished_run_template, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (one per test module), through Debian's chromedriver."""
    with chromium() as driver:
        yield driver


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Tokens:
    """Alice's token, read from the environment by reference."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return Tokens(["alice=$env:" + TOKEN_ENV])


@pytest.fixture
def serve(tokens: Tokens) -> Iterator[Any]:
    """``serve(run_dir, ...)``: the dashboard over run directories on a live port."""
    servers: list[LiveServer] = []

    def start(*run_dirs: Path, poll_s: float = 0.2, **kwargs: Any) -> LiveServer:
        runs = [RunDir(str(i), p.name, p) for i, p in enumerate(run_dirs)]
        server = LiveServer(create_app(runs, tokens, poll_s=poll_s, **kwargs)).start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
