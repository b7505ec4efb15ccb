"""The loop: determinism, crash-and-resume, kill/resume, swaps, bad recorded data."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml
from click.testing import CliRunner

from argus_core import open_read_only
from argus_core.cli import cli
from argus_core.config import load_config
from argus_core.errors import DataError
from argus_core.ledger import Ledger
from argus_core.runner import Runner

TABLES = ("orders", "fills", "positions", "equity", "risk_events")


def dump(run_dir: Path) -> dict[str, list[tuple]]:
    with Ledger.in_dir(run_dir) as ledger:
        return {t: [tuple(r.values()) for r in ledger.query(f"select * from {t} order by 1")]
                for t in TABLES}


def test_replay_is_deterministic_row_for_row(demo_config: Path, tmp_path: Path) -> None:
    a = Runner(load_config(demo_config), tmp_path / "a").run_sync()
    Runner(load_config(demo_config), tmp_path / "b").run_sync()
    assert a.fills > 10
    assert dump(tmp_path / "a") == dump(tmp_path / "b")


def test_no_lookahead_orders_fill_after_the_bar_they_were_decided_on(
        demo_config: Path, tmp_path: Path) -> None:
    Runner(load_config(demo_config), tmp_path / "r").run_sync()
    with Ledger.in_dir(tmp_path / "r") as ledger:
        rows = ledger.query("select o.ts_ns as decided, f.ts_ns as filled from orders o "
                            "join fills f using (client_order_id)")
    assert rows and all(r["filled"] > r["decided"] for r in rows)


def test_resume_of_a_finished_run_changes_nothing(demo_config: Path, tmp_path: Path) -> None:
    Runner(load_config(demo_config), tmp_path / "r").run_sync()
    before = dump(tmp_path / "r")
    again = Runner(load_config(demo_config), tmp_path / "r").run_sync()
    assert again.resumed_from == again.events
    assert dump(tmp_path / "r") == before


def _wait_for_fills(db: Path, at_least: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            # A plain read-only connection (apsw's, like the ledger's: never a second
            # SQLite copy in one process): opening a Ledger sets pragmas that want the
            # write lock, which the replay's writer holds almost all the time, so under
            # load such reads kept failing until the run was over.
            try:
                conn = open_read_only(db, 500)
                try:
                    if conn.execute("select count(*) from fills").fetchone()[0] >= at_least:
                        return
                finally:
                    conn.close()
            except apsw.Error:  # not created yet, or locked for an instant
                pass
        time.sleep(0.02)


@pytest.mark.parametrize("kill_after_fills", [1, 40, 150])
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path,
                                                         kill_after_fills: int) -> None:
    cfg = tmp_path / "crash.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, start="2019-01-01", checkpoint_every=50))
    reference = tmp_path / "reference"
    Runner(load_config(cfg), reference).run_sync()
    crashed = tmp_path / "crashed"
    cmd = [sys.executable, "-c", "from argus_core.cli import main; main()", "run",
           "--config", str(cfg), "--run-dir", str(crashed), "--no-progress"]
    env = {**os.environ, "ARGUS_BLOCK_PLUGINS": ""}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_fills(crashed / "argus.db", kill_after_fills, proc, timeout_s=60)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed; use a longer replay"
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stdout
    assert dump(crashed) == dump(reference)


def test_kill_and_resume_commands_latch_the_trading_state(demo_config: Path,
                                                          tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    Runner(load_config(demo_config), run_dir, max_events=100).run_sync()
    runner = CliRunner()
    assert runner.invoke(cli, ["kill", "--run-dir", str(run_dir)]).exit_code == 0
    summary = Runner(load_config(demo_config), run_dir).run_sync()
    assert summary.trading_state == "halted"
    with Ledger.in_dir(run_dir) as ledger:
        late = ledger.query("select count(*) as n from orders where ts_ns > "
                            "(select ts_ns from checkpoints) - 1")[0]["n"]
        vetoes = ledger.query("select count(*) as n from risk_events where "
                              "check_name = 'trading_state'")[0]["n"]
    assert late == 0 or vetoes > 0
    assert vetoes > 0
    assert runner.invoke(cli, ["resume", "--run-dir", str(run_dir)]).exit_code == 0
    with Ledger.in_dir(run_dir) as ledger:
        assert json.loads(ledger.get_control("trading_state"))["state"] == "active"


def test_a_crashing_strategy_puts_the_loop_in_reducing(demo_config: Path, tmp_path: Path) -> None:
    class Crashy:
        name = "crashy"

        def on_event(self, event, ctx):  # type: ignore[no-untyped-def]
            raise ZeroDivisionError("bad math")

        def get_state(self):  # type: ignore[no-untyped-def]
            return {}

        def set_state(self, state):  # type: ignore[no-untyped-def]
            pass

    runner = Runner(load_config(demo_config), tmp_path / "r",
                    strategies={"ma_cross": Crashy()})  # type: ignore[dict-item]
    triggers: list[str] = []
    runner.risk_trigger_listeners.append(triggers.append)
    summary = runner.run_sync()
    assert summary.trading_state == "reducing" and summary.orders == 0
    assert "ZeroDivisionError: bad math" in triggers[0]


def test_hot_swap_happens_between_events_with_state_handed_over(demo_config: Path,
                                                                tmp_path: Path) -> None:
    from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross

    seen: list[int] = []

    class Recorder(MovingAverageCross):
        def on_event(self, event, ctx):  # type: ignore[no-untyped-def]
            seen.append(event.ts_ns)
            return super().on_event(event, ctx)

    runner = Runner(load_config(demo_config), tmp_path / "r")
    old = runner.asm.strategies["ma_cross"]
    new = Recorder(ExampleSettings(fast=5, slow=20))

    async def go() -> None:
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0)  # the run starts and yields every 1,000 events
        swap = runner.request_swap("ma_cross", new, version_id="v2")
        await swap
        assert not task.done()  # swapped mid-run, at a safe point
        await task

    asyncio.run(go())
    assert runner.asm.strategies["ma_cross"] is new and old is not new
    assert runner.versions == {"ma_cross": "v2"}
    assert len(new.closes) == 20  # state (the price window) was handed over
    assert seen == sorted(set(seen))  # no event twice


def test_malformed_recording_fails_with_file_and_line(tmp_path: Path) -> None:
    rec = tmp_path / "rec.ndjson"
    rec.write_text('{"type":"signal","name":"a","instrument_id":"b","ts_ns":1,"value":1.0}\n'
                   '{"type":"bar","instrument_id":"b","ts_ns":2,"open":1}\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[argus]\nplugins = []\n[plugins.replay]\nndjson = "{rec}"\n')
    with pytest.raises(DataError, match=r"rec\.ndjson:2: invalid bar"):
        Runner(load_config(cfg), tmp_path / "r").run_sync()
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                      str(tmp_path / "r2"), "--no-progress"])
    assert result.exit_code == 4 and "rec.ndjson:2" in result.output


def test_demo_command_writes_ledger_and_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--run-dir", str(tmp_path / "d"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "d" / "report.html").read_text()
    assert page.count('<svg class="plot" role="img"') == 2  # the equity and drawdown plots
    assert 'aria-label="equity curve"' in page and 'aria-label="drawdown"' in page
    assert "sharpe" in page and "max_drawdown" in page
    assert "fees paid" in result.output


def test_config_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[run]\nvenu = 'x'\n")
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--run-dir",
                                      str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "bad.toml" in result.output and "venu" in result.output
    assert "Traceback" not in result.output


_OPEN_AT = """
import sys, time
from pathlib import Path
from argus_core.ledger import Ledger
start = float(sys.argv[2])
while time.time() < start:  # line the processes up on the same instant
    pass
with Ledger(Path(sys.argv[1])):
    pass
"""


@pytest.mark.slow
def test_processes_opening_a_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    """`argus run` and `argus kill` (or two runs) may create the same ledger together:
    migrations run once, WAL is switched on once, nobody fails."""
    errors = []
    for round_ in range(6):
        db = tmp_path / f"r{round_}" / "argus.db"
        start = time.time() + 1.5
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(db), str(start)],
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            if p.returncode != 0:
                errors.append(err.strip().splitlines()[-1])
        with Ledger(db) as ledger:
            names = [r["name"] for r in ledger.query("select name from _argus_migrations")]
            assert len(names) == len(set(names)) and "m001_initial" in names
    assert errors == []


def test_the_run_records_its_config_file_so_relative_paths_resolve_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``argus report`` (and any tool reading a run) parses the recorded config against
    the config file's own folder, not the current directory."""
    import shutil
    import types
    from typing import Any

    from argus_core import hookimpl, plugins
    from argus_core.builtins.replay_venue import ReplaySettings
    from argus_core.config import plugin_settings
    from argus_core.ledger import Ledger
    from argus_core.report import write_report

    folder = tmp_path / "cfg"
    folder.mkdir()
    shutil.copy(BUNDLED_BARS, folder / "bars.csv")
    (folder / "run.toml").write_text(demo_toml(Path("bars.csv"), end="2022-02-01"))
    Runner(load_config(folder / "run.toml"), tmp_path / "run").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (row,) = ledger.query("select config_path from runs")
    assert row["config_path"] == str((folder / "run.toml").resolve())

    seen: list[Path] = []
    module = types.ModuleType("argus_test_sections")

    def report_sections(config: Any, run_dir: Path) -> dict[str, str]:
        seen.append(plugin_settings(config, "replay", ReplaySettings).bars_csv)
        return {}

    module.report_sections = hookimpl(report_sections)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "argus_test_sections", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("sections", "argus_test_sections")))
    monkeypatch.chdir(tmp_path)  # somewhere the relative path does not exist
    write_report(tmp_path / "run")
    assert seen == [folder / "bars.csv"] and seen[0].exists()


def test_a_runner_that_never_runs_gives_its_directory_back_on_close(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-01-05"))
    inspected = Runner(load_config(cfg), tmp_path / "run")
    assert inspected.asm.strategies  # built only to look at its components
    inspected.close()
    inspected.close()  # idempotent
    assert Runner(load_config(cfg), tmp_path / "run").run_sync().events > 0


def test_a_stop_moved_while_the_run_goes_on_is_obeyed(demo_config: Path, tmp_path: Path
                                                      ) -> None:
    """``max_events`` is read at every event, not once at the start: a caller (a test, a
    supervisor) may set or move it while the loop runs."""
    runner = Runner(load_config(demo_config), tmp_path / "run")

    def progress(seq: int) -> None:  # called every 1,000 events
        if runner.max_events is None:
            runner.max_events = seq + 10

    runner.progress = progress
    runner.run_sync()
    assert runner.seq == 1_010
