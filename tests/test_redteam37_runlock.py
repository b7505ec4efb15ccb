"""Red team 37 of the run-directory lock: a lock file that is a symbolic link (or a hard
link) to another file had the pid written over that file, and the release emptied it
(a config, a key file, anything the link named); now refused with the path and why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from argus_core.errors import LedgerError
from argus_core.runlock import LOCK_FILE, RunDirLock


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_linked_lock_file_never_writes_over_what_it_names(tmp_path: Path, link: str) -> None:
    victim = tmp_path / "precious.toml"
    victim.write_text("precious = true\n")
    run = tmp_path / "run"
    run.mkdir()
    (os.symlink if link == "symlink" else os.link)(victim, run / LOCK_FILE)
    with pytest.raises(LedgerError, match=f"{LOCK_FILE}.*(link|symbolic)"):
        RunDirLock.acquire(run).release()
    assert victim.read_text() == "precious = true\n"
    (run / LOCK_FILE).unlink()  # removed, the run directory locks as usual
    RunDirLock.acquire(run).release()
