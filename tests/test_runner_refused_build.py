"""A Runner whose construction fails after it took the run directory's lock (the ledger
cannot be opened, the engine cannot be built) releases the lock and closes the ledger at
once: the process that asked (a notebook, a test, the orchestrator's retry) can start a
run there again without exiting first."""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml

import argus_core.runner as runner_module
from argus_core.config import load_config
from argus_core.runlock import RunDirLock
from argus_core.runner import Runner


def _config(tmp_path: Path):  # type: ignore[no-untyped-def]  # a Config
    path = tmp_path / "run.toml"
    path.write_text(demo_toml(BUNDLED_BARS, start="2022-01-01", end="2022-01-05"))
    return load_config(path)


@pytest.mark.parametrize("failing", ["ExecutionEngine", "open_ledger"])
def test_a_failed_build_releases_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          failing: str) -> None:
    config, run_dir = _config(tmp_path), tmp_path / "run"

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError(f"{failing} could not be built")

    with monkeypatch.context() as m:
        m.setattr(runner_module, failing, boom)
        with pytest.raises(RuntimeError, match="could not be built"):
            Runner(config, run_dir)
    RunDirLock.acquire(run_dir).release()  # free: refused while the failed Runner held it
    summary = Runner(config, run_dir).run_sync()
    assert summary.events > 0
