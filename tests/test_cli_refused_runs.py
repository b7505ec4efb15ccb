"""A run refused at its start leaves its run directory as it found it, and a replay of
nothing is refused (found by a fresh-clone walkthrough; each test failed before its fix).

A refused start used to leave ``argus.lock`` in a new directory (a bad config, a refused
live mode), and one refused before its first event a ledger too, whose "run of a
different config" then refused the corrected command in the same ``--run-dir``.  A replay
whose window holds no bars exited 0 with a flat summary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml, error_line
from click.testing import CliRunner, Result

from argus_core.cli import cli
from argus_core.errors import ConfigError, DataError, LedgerError, PluginError
from argus_core.runlock import LOCK_FILE, RunDirLock


def _invoke(args: list[str], **kwargs: object) -> Result:
    return CliRunner().invoke(cli, args, prog_name="argus", **kwargs)  # type: ignore[arg-type]


def _run(config: Path, run_dir: Path, *extra: str) -> Result:
    return _invoke(["run", "--config", str(config), "--run-dir", str(run_dir),
                    "--no-progress", *extra])


def _listing(path: Path) -> dict[str, bytes] | None:
    return {p.name: p.read_bytes() for p in path.iterdir()} if path.exists() else None


# -- 5. refused starts ---------------------------------------------------------------------
def _bad_plugin_table(cfg: Path) -> None:
    cfg.write_text(cfg.read_text().replace("fast = 5", "fast = -5"))


def _unknown_strategy(cfg: Path) -> None:
    cfg.write_text(cfg.read_text().replace('["ma_cross"]', '["no_such_strategy"]'))


def _missing_bars(cfg: Path) -> None:  # refused by the replay, before its first event
    cfg.write_text(cfg.read_text().replace(str(BUNDLED_BARS), "/no/such/bars.csv"))


@pytest.mark.parametrize(("spoil", "code"), [
    (_bad_plugin_table, ConfigError.exit_code), (_unknown_strategy, PluginError.exit_code),
    (_missing_bars, DataError.exit_code)])
@pytest.mark.parametrize("there", ["new", "empty", "nested new"])
def test_a_refused_run_leaves_the_run_directory_as_it_found_it(
        demo_config: Path, tmp_path: Path, spoil: object, code: int, there: str) -> None:
    run_dir = tmp_path / "a" / "b" / "run" if there == "nested new" else tmp_path / "run"
    if there == "empty":
        run_dir.mkdir()
    spoil(demo_config)  # type: ignore[operator]  # one of the functions above
    error_line(_run(demo_config, run_dir), code)
    assert _listing(run_dir) == ({} if there == "empty" else None)
    # ... and no folder made above it either
    assert sorted(os.listdir(tmp_path)) == ["demo.toml", *(["run"] if there == "empty" else [])]
    demo_config.write_text(demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-06-08"))
    assert _run(demo_config, run_dir).exit_code == 0  # the fixed config runs there


def test_a_refused_backtest_leaves_no_run_folder(demo_config: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["--set", "plugins.example.fast=-3"], ["--set", "run.sizer=nope"]):
        result = _invoke(["backtest", "--config", str(demo_config), "--no-progress", *args])
        assert result.exit_code in (2, 3), result.output
        assert not (tmp_path / "argus-runs").exists()  # made for this run: gone with it
    (tmp_path / "argus-runs").mkdir()
    assert _invoke(["backtest", "--config", str(demo_config), "--no-progress",
                    "--set", "run.sizer=nope"]).exit_code == 3
    assert list((tmp_path / "argus-runs").iterdir()) == []  # there before: kept


def test_a_refused_live_start_leaves_nothing(tmp_path: Path) -> None:
    """Live refused up front (no --live), and by the venue's live checks (its secrets
    unset) after the lock was taken."""
    pytest.importorskip("argus_venue_kraken")
    cfg = tmp_path / "live.toml"
    cfg.write_text('[argus]\nplugins = ["kraken"]\nmode = "live"\n[run]\nvenue = "kraken"\n'
                   '[plugins.kraken]\n')
    run_dir = tmp_path / "run"
    assert "pass --live" in error_line(_run(cfg, run_dir), ConfigError.exit_code)
    assert "cannot trade live" in error_line(_run(cfg, run_dir, "--live"),
                                              ConfigError.exit_code)
    assert not run_dir.exists()


def test_a_run_that_did_work_keeps_its_ledger(demo_config: Path, tmp_path: Path) -> None:
    """An error after events were replayed is not a refused start: the ledger stays."""
    bars = tmp_path / "bars.csv"
    lines = BUNDLED_BARS.read_text().splitlines()
    bars.write_text("\n".join([*lines[:3000], "1700000000,x,1,1,1,1", *lines[3000:3100]]))
    demo_config.write_text(demo_toml(bars, start="2010-01-01").replace(
        "[plugins.replay]", '[plugins.replay]\ntick_size = "0.1"\nlot_size = "0.00000001"'))
    run_dir = tmp_path / "run"
    assert "bars.csv:3001: " in error_line(_run(demo_config, run_dir), DataError.exit_code)
    assert {"argus.db", LOCK_FILE} <= set(os.listdir(run_dir))


def test_an_earlier_runs_ledger_is_never_undone(tmp_path: Path) -> None:
    """Resuming a run whose data has gone fails before its first event: the earlier run's
    ledger (which a reader may hold open) is left whole."""
    bars = tmp_path / "bars.csv"
    bars.write_bytes(BUNDLED_BARS.read_bytes())
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(bars, start="2022-06-01", end="2022-06-08"))
    run_dir = tmp_path / "run"
    assert _run(cfg, run_dir).exit_code == 0
    before = set(os.listdir(run_dir))
    assert "argus.db" in before
    bars.unlink()
    assert "cannot read" in error_line(_run(cfg, run_dir), DataError.exit_code)
    assert set(os.listdir(run_dir)) == before


HOLD = """
import sys, time
from pathlib import Path
from argus_core.runlock import LOCK_FILE, RunDirLock
lock = RunDirLock.acquire(Path(sys.argv[1]))
if sys.argv[2] == "delete":
    (Path(sys.argv[1]) / LOCK_FILE).unlink()
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("lock_file", ["kept", "delete"])
def test_a_run_refused_by_a_live_holder_changes_nothing(demo_config: Path, tmp_path: Path,
                                                        lock_file: str) -> None:
    """Another process writes the directory (its lock file deleted under it, or not): the
    refused run neither touches its files nor makes a lock file of its own."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), lock_file],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = _listing(run_dir)
        line = error_line(_run(demo_config, run_dir), LedgerError.exit_code)
        assert "being written by another process" in line
        if lock_file == "kept":
            assert f"(pid {holder.pid})" in line
        assert _listing(run_dir) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)


def test_undo_leaves_a_directory_another_process_holds(tmp_path: Path) -> None:
    from argus_core.runlock import undo_refused_start

    run_dir = tmp_path / "run"
    lock = RunDirLock.acquire(run_dir)
    try:
        undo_refused_start(run_dir, None)  # not ours to remove: its writer holds it
        assert os.listdir(run_dir) == [LOCK_FILE]
    finally:
        lock.release()
    (run_dir / "mine.txt").write_text("kept")
    undo_refused_start(run_dir, {"mine.txt"})  # only the lock file was new
    assert os.listdir(run_dir) == ["mine.txt"]


# -- 6. a replay of nothing ----------------------------------------------------------------
@pytest.mark.parametrize(("start", "end"), [("2030-01-01", None), ("2010-01-01", "2011-01-01")])
def test_a_replay_window_without_bars_is_a_data_error_naming_both_spans(
        tmp_path: Path, start: str, end: str | None) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, start=start, end=end))
    run_dir = tmp_path / "run"
    line = error_line(_run(cfg, run_dir), DataError.exit_code)
    assert line.startswith(f"{BUNDLED_BARS}: no bars in the replay window [plugins.replay] "
                           f"start = {start}, end = {end or '(none)'}; "), line
    assert line.endswith("the file's bars open from 2013-10-06 21:00 UTC to "
                         "2023-01-07 09:00 UTC"), line
    assert not run_dir.exists()


def test_a_file_of_no_bars_says_so(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("timestamp,open,high,low,close,volume\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_toml(bars))
    line = error_line(_invoke(["backtest", "--config", str(cfg), "--no-progress",
                                "--run-dir", str(tmp_path / "run")]), DataError.exit_code)
    assert line.endswith("; the file holds no bars"), line
    assert not (tmp_path / "run").exists()


def test_an_empty_recording_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "rec.ndjson").write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[argus]\nplugins = []\n[run]\nvenue = "replay"\n'
                   '[plugins.replay]\nndjson = "rec.ndjson"\n')
    line = error_line(_run(cfg, tmp_path / "run"), DataError.exit_code)
    assert line == "the replay had no events: venue 'replay' sent none (is its recording " \
                   "empty?)"
