"""Held-out faults against "a crash or a stop resumes without loss": stops and kills at
random points of replay and paper runs, then the same command again.

Found and fixed (each test failed before):

* a paper run on recorded data (``mode = "paper"`` with the replay venue) that stopped
  — Ctrl-C, ``--max-events``, SIGKILL — and was started again replayed its file from the
  first event on top of the restored state: every bar before the stop was traded a
  second time (1,416 bars became 1,916 events, 105 orders 124).  ``Runner.run``
  restarted the event numbering for every non-replay mode; a venue whose stream replays
  a recording (``Venue.replays_recording``) now skips its seen events by number;
* SIGTERM (what ``docker stop``, systemd and Kubernetes send) ended ``argus run`` at
  once: exit -15, no message, the run row left ``running``, no on_shutdown, no drain of
  live answers in flight; it now stops as Ctrl-C does (exit 130, ``stopped``).

Held: Ctrl-C mid-replay stops cleanly and the resumed ledger equals an uninterrupted
run's; three SIGKILLs at random moments of one replay (mid-commit included) then a
resume equal the uninterrupted ledger row for row.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core import open_read_only
from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner

TABLES = ("orders", "fills", "positions", "equity", "risk_events")
ENV = {**os.environ, "ARGUS_BLOCK_PLUGINS": ""}


def dump(run_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every trading table, row for row."""
    with Ledger.in_dir(run_dir) as ledger:
        return {t: [tuple(r.values()) for r in ledger.query(f"select * from {t} order by 1")]
                for t in TABLES}


def _config(tmp_path: Path, *, mode: str = "replay", start: str = "2022-01-01",
            end: str | None = "2022-01-20", checkpoint_every: int = 50) -> Path:
    cfg = tmp_path / f"{mode}.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, start=start, end=end,
                             checkpoint_every=checkpoint_every)
                   .replace('mode = "replay"', f'mode = "{mode}"'))
    return cfg


def _cmd(cfg: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-c", "from argus_core.cli import main; main()", "run",
            "--config", str(cfg), "--run-dir", str(run_dir), "--no-progress"]


def _count(run_dir: Path, table: str) -> int:
    """Rows in ``table`` as another process sees them (0 before the ledger exists)."""
    try:
        conn = open_read_only(run_dir / "argus.db")
    except apsw.Error:
        return 0
    try:
        conn.set_busy_timeout(500)
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])
    except apsw.Error:  # not created yet, or locked for an instant
        return 0
    finally:
        conn.close()


def _wait_for(run_dir: Path, table: str, at_least: int, proc: subprocess.Popen[bytes],
              timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _count(run_dir, table) < at_least:
        assert proc.poll() is None, "the run ended before the fault; use a longer one"
        assert time.monotonic() < deadline, f"no {at_least} {table} rows in {timeout_s} s"
        time.sleep(0.01)


def _run_status(run_dir: Path) -> str:
    with Ledger.in_dir(run_dir) as ledger:
        return str(ledger.query("select status from runs")[0]["status"])


# -- held ----------------------------------------------------------------------------------
def test_ctrl_c_mid_replay_stops_cleanly_and_resumes_to_the_same_ledger(
        tmp_path: Path) -> None:
    cfg = _config(tmp_path, start="2019-01-01", end=None)
    Runner(load_config(cfg), tmp_path / "reference").run_sync()
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(_cmd(cfg, run_dir), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _wait_for(run_dir, "fills", 20, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted after event" in out and b"Traceback" not in err
    assert _run_status(run_dir) == "stopped"
    resumed = subprocess.run(_cmd(cfg, run_dir), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stdout
    assert dump(run_dir) == dump(tmp_path / "reference")


@pytest.mark.slow
def test_three_sigkills_at_random_moments_then_resume_equal_an_uninterrupted_replay(
        tmp_path: Path) -> None:
    cfg = _config(tmp_path, start="2019-01-01", end=None, checkpoint_every=37)
    Runner(load_config(cfg), tmp_path / "reference").run_sync()
    run_dir = tmp_path / "run"
    rng = random.Random(7)
    fills = 0
    for _ in range(3):
        proc = subprocess.Popen(_cmd(cfg, run_dir), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        fills += rng.randint(20, 200)
        _wait_for(run_dir, "fills", fills, proc)
        time.sleep(rng.uniform(0, 0.05))  # anywhere, mid-commit included
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        fills = _count(run_dir, "fills")
    resumed = subprocess.run(_cmd(cfg, run_dir), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert dump(run_dir) == dump(tmp_path / "reference")


# -- found -------------------------------------------------------------------------------


def test_a_paper_run_on_recorded_data_resumes_where_it_stopped(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, mode="paper"))
    reference = Runner(cfg, tmp_path / "reference").run_sync()
    first = Runner(cfg, tmp_path / "run", max_events=200).run_sync()
    assert 0 < first.orders < reference.orders
    resumed = Runner(cfg, tmp_path / "run").run_sync()
    assert resumed.events == reference.events  # not 200 more than the file holds
    assert dump(tmp_path / "run") == dump(tmp_path / "reference")


def test_a_sigkilled_paper_run_on_recorded_data_resumes_to_the_same_ledger(
        tmp_path: Path) -> None:
    cfg = _config(tmp_path, mode="paper")
    Runner(load_config(cfg), tmp_path / "reference").run_sync()
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(_cmd(cfg, run_dir), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # Paper commits after every order and fill: a kill between an order row and its fill
    # loses neither (one transaction); it lands anywhere after the fifth fill.
    _wait_for(run_dir, "fills", 5, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    resumed = subprocess.run(_cmd(cfg, run_dir), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert dump(run_dir) == dump(tmp_path / "reference")


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_mid_run_is_a_clean_stop_that_resumes(tmp_path: Path, sigint: str) -> None:
    """Also when SIGINT is ignored, as in a job a script started in the background (`argus
    run ... &`, nohup): SIGTERM was turned into a SIGINT, which such a run ignored."""
    cfg = _config(tmp_path, start="2019-01-01", end=None)
    run_dir = tmp_path / "run"
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" \
        else None
    proc = subprocess.Popen(_cmd(cfg, run_dir), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=ignore)
    _wait_for(run_dir, "fills", 20, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, 128 + signal.SIGTERM), (proc.returncode, err)
    assert b"interrupted" in out + err
    assert _run_status(run_dir) == "stopped"  # finished its run row: a clean stop
    resumed = subprocess.run(_cmd(cfg, run_dir), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference"
    Runner(load_config(cfg), reference).run_sync()
    assert dump(run_dir) == dump(reference)
