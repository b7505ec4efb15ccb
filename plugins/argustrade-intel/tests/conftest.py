"""Shared fixtures of the intelligence API's tests: a real replay run, a hand-built ledger
with ties in its order keys, a keys file, a movable clock and a client factory."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_intel.app import create_app
from argus_intel.keys import KeyStore
from fastapi.testclient import TestClient

from argus_core import Ledger
from argus_core.testing import ConfigRunner, RunResult

# --import-mode=importlib: the helpers' folder goes on sys.path here (as the dashboard's).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from intel_helpers import KRAKEN, OPPORTUNITIES, REPLAY, SIGNAL_TIMES, Clock, MakeClient


@pytest.fixture(scope="session")
def replay_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A real backtest (ma_cross on three weeks of Kraken hourly bars) whose recorded
    config names its bars relative to its config's folder."""
    base = tmp_path_factory.mktemp("replay")
    (base / "bars.csv").write_bytes(KRAKEN.read_bytes())
    runner = ConfigRunner(base)
    return runner.run({
        "argus": {"plugins": [], "seed": 3},
        "run": {"venue": "replay", "strategies": ["ma_cross"], "sizer": "kelly",
                "checkpoint_every_events": 100},
        "plugins": {"replay": REPLAY, "example": {"fast": 5, "slow": 20}},
    })




@pytest.fixture(scope="session")
def built_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger written by hand: equity rows, opportunities (many sharing a time stamp)
    and signals (several names and instruments per time stamp)."""
    run_dir = tmp_path_factory.mktemp("built")
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("built0000001", "paper", 0,
                         json.dumps({"run": {"venue": "kraken", "starting_cash": "1000"}}))
        with ledger.transaction():
            ledger.append_equity([(1_000 + i, f"{1000 - i}.25", f"{1000 + i}.125", str(i))
                                  for i in range(250)])
            for i in range(OPPORTUNITIES):
                ts = 5_000 + (i // 4)  # four opportunities per time stamp
                ledger.insert_opportunity(
                    f"opp-{(i * 37) % OPPORTUNITIES:03d}-{i}", "negrisk" if i % 3 else "value",
                    ts, "basket" if i % 2 else "single", Decimal(f"{i}.5"), i % 5 == 0,
                    json.dumps({"legs": i, "edge": i / 100}), "seen" if i % 7 else "research")
            for t in range(SIGNAL_TIMES):
                for name in ("bocpd_p_change", "vol_regime"):
                    for inst in ("replay:BTC/USD", "replay:ETH/USD"):
                        ledger.record_signal(name, inst, 10_000 + t, t / 100)
    return run_dir


@pytest.fixture
def clock() -> Clock:
    """A clock at 2026-01-01 00:00 UTC."""
    return Clock()


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    """An empty keys file."""
    return KeyStore(tmp_path / "keys.db")


@pytest.fixture
def key(keystore: KeyStore) -> str:
    """A key with room to spare: 1000/s, no quota."""
    return keystore.add("tester", rate_per_s=1000, quota_per_day=None)[1]




@pytest.fixture
def make_client(replay_run: RunResult, built_run: Path, keystore: KeyStore, clock: Clock
                ) -> Iterator[MakeClient]:
    """``make_client(**create_app kwargs)``: a TestClient over the replay run and the
    built ledger, on ``keystore`` and ``clock``."""
    clients: list[TestClient] = []

    def make(**kw: Any) -> TestClient:
        kw.setdefault("data_dirs", [replay_run.run_dir.parent])
        app = create_app([replay_run.run_dir, built_run], keystore, clock=clock, **kw)
        client = TestClient(app)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    """The default client."""
    return make_client()
