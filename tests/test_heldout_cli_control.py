"""Held-out audit of a person's controls (``argus kill`` / ``kill --flatten`` / ``resume``)
and of the command line's output, pressed as a person under stress and as an adversary.

Found and fixed (each test failed before its fix):

* ``argus kill`` on a run directory whose ``argus.db`` was an empty file made a whole new
  ledger of it and said "trading HALTED": no run was there to halt;
* a damaged latch (the ``control`` row not JSON) stopped the loop with a
  ``JSONDecodeError`` traceback at its start (it now starts HALTED and says why), and
  ``argus resume``, the remedy, said "trading ACTIVE already; nothing changed" and wrote
  nothing;
* ``argus kill`` on a run already HALTED printed the stored reason as it was: a reason
  the loop wrote (venue text) reached the terminal with its escape sequences (a link, a
  clear screen) and a credential in it unredacted;
* ``by`` (``cli:$LOGNAME``) was stored with the escape sequences of a hostile login name,
  and a reason of control characters only was stored empty ("trading HALTED ()");
* a ledger whose write lock another process held past the 5 s wait was reported as "a
  damaged file, or not an Argus ledger": the person was told the ledger was broken when
  it was busy (and the kill was not recorded);
* piped, kill's and resume's one-line answer wrapped at 80 columns (a long run path);
* a closed pipe (``argus kill ... | head -0``): rich's own handler exited 1, silently,
  after the kill was recorded (a script read the kill as failed), and a HALTED run's
  exit 6 became 1.

Held: two presses racing write once; Ctrl-C during a backtest (SIGINT at 0.3-0.9 s, by
hand) exits 130 and the same command resumes to the uninterrupted result; ``--live`` is
never implied (mode 'live' without it, or in a backtest, is refused before anything).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from argus_testkit import run_and_collect
from click.testing import CliRunner, Result

from argus_core import Intent, MarketEvent, Strategy, apply_overrides, load_config
from argus_core.cli import cli
from argus_core.control import CONTROL_STATE
from argus_core.ledger import Ledger


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def a_run(tmp_path: Path, latch: str | None = None) -> Path:
    """A run directory with a ledger, and ``latch`` stored raw as the control row."""
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        if latch is not None:
            ledger.set_control(CONTROL_STATE, latch, 1)
    return run_dir


def stored_latch(run_dir: Path) -> dict[str, object]:
    with Ledger.in_dir(run_dir) as ledger:
        raw = ledger.get_control(CONTROL_STATE)
    assert raw is not None
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


def test_kill_on_an_empty_ledger_file_is_refused(tmp_path: Path) -> None:
    """Was: a 0-byte argus.db became a new ledger and the kill said "trading HALTED"."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "argus.db").write_bytes(b"")
    result = invoke("kill", "--run-dir", str(run_dir))
    assert result.exit_code == 7, result.output
    assert "HALTED" not in result.output and "not an Argus ledger" in result.output
    assert (run_dir / "argus.db").stat().st_size == 0


@pytest.mark.parametrize("damaged", ["{not json", "{}", '"halted"', '{"state": ["halted"]}',
                                     '{"state": "paused"}'])
def test_resume_over_a_damaged_latch_writes_a_readable_one(tmp_path: Path,
                                                           damaged: str) -> None:
    """Was: "trading ACTIVE already; nothing changed" while the loop could not start (not
    JSON, no state, not an object; a state no ``TradingState`` was rewritten: pinned)."""
    run_dir = a_run(tmp_path, damaged)
    result = invoke("resume", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "nothing changed" not in result.output
    assert stored_latch(run_dir)["state"] == "active"


def test_an_already_halted_reason_is_printed_clean_and_redacted(tmp_path: Path) -> None:
    """Was: the stored reason printed raw: escape sequences and a token reached the
    terminal."""
    hostile = ("venue said \x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\ \x1b[2J "
               "token=abcdefghijklmnop1234")
    run_dir = a_run(tmp_path, json.dumps({"state": "halted", "reason": hostile,
                                          "flatten": False, "by": "argus"}))
    result = invoke("kill", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "already HALTED" in result.output
    assert "\x1b" not in result.output and "abcdefghijklmnop1234" not in result.output


def test_who_and_an_empty_reason_are_stored_as_clean_lines(tmp_path: Path) -> None:
    """Was: ``by`` kept a login name's escape sequences; a reason of control characters
    only was stored empty."""
    run_dir = a_run(tmp_path)
    result = invoke("kill", "--run-dir", str(run_dir), "--reason", "\x1b\x07\u202e",
                    env={"LOGNAME": "\x1b[2Jmallory\u202e"})
    assert result.exit_code == 0, result.output
    latch = stored_latch(run_dir)
    assert latch["by"] == "cli: [2Jmallory", latch  # the ESC a space, the override gone
    assert isinstance(latch["reason"], str) and latch["reason"].strip(), latch
    assert "()" not in result.output


def test_a_busy_ledger_is_said_busy_not_damaged(tmp_path: Path) -> None:
    """Was: "cannot be used: BusyError: database is locked (a damaged file, or not an
    Argus ledger)" when another process held the write lock past the 5 s wait."""
    run_dir = a_run(tmp_path)
    holder = apsw.Connection(str(run_dir / "argus.db"))
    holder.execute("begin immediate")
    try:
        result = invoke("kill", "--run-dir", str(run_dir))
    finally:
        holder.execute("rollback")
        holder.close()
    assert result.exit_code == 7, result.output
    assert "busy" in result.output and "try again" in result.output, result.output
    assert "damaged" not in result.output, result.output


def argus_to_a_closed_pipe(*args: str) -> tuple[int, str]:
    """Run ``argus args`` with its stdout a pipe nobody reads (closed at once)."""
    proc = subprocess.Popen([sys.executable, "-m", "argus_core.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `| head -0` does
    err = proc.stderr.read().decode()
    return proc.wait(120), err


def test_a_kill_to_a_closed_pipe_exits_zero(tmp_path: Path) -> None:
    """Was: exit 1 and no word on stderr, after the kill was recorded."""
    run_dir = a_run(tmp_path)
    code, err = argus_to_a_closed_pipe("kill", "--run-dir", str(run_dir))
    assert code == 0, err
    assert stored_latch(run_dir)["state"] == "halted"


@pytest.mark.parametrize("command", ["run", "backtest"])
def test_a_halted_run_to_a_closed_pipe_still_exits_6(tmp_path: Path, demo_config: Path,
                                                      command: str) -> None:
    """Was: exit 1 (rich's handler), so a script read a HALTED run as a plain failure
    (and exit 0, the reader gone before the report's line, once rich's exit was fixed)."""
    run_dir = tmp_path / "run"
    assert invoke("backtest", "--config", str(demo_config), "--run-dir", str(run_dir),
                  "--no-progress").exit_code == 0
    assert invoke("kill", "--run-dir", str(run_dir)).exit_code == 0
    code, err = argus_to_a_closed_pipe(command, "--config", str(demo_config), "--run-dir",
                                       str(run_dir), "--no-progress")
    assert code == 6, err
    assert "HALTED" in err and "Traceback" not in err


def test_two_presses_racing_write_once(tmp_path: Path) -> None:
    """Held: two `kill --flatten` at once store one latch write; a kill after a flatten
    never takes the flatten back.  Was: each answer, piped, wrapped at 80 columns
    ("...; nothing \nchanged"): a script's grep, or a log's one line, missed it."""
    run_dir = a_run(tmp_path)
    presses = [subprocess.Popen([sys.executable, "-m", "argus_core.cli", "kill", "--flatten",
                                 "--run-dir", str(run_dir)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [press.communicate(timeout=120)[0].decode() for press in presses]
    assert [press.returncode for press in presses] == [0, 0], outputs
    assert sum("nothing changed" in output for output in outputs) == 1, outputs
    assert invoke("kill", "--run-dir", str(run_dir)).exit_code == 0
    with Ledger.in_dir(run_dir) as ledger:
        assert len(ledger.control_history(CONTROL_STATE)) == 1
    assert stored_latch(run_dir)["flatten"] is True


@pytest.mark.parametrize("damaged", ["{not json", '{"state": "paused"}', "[]"])
def test_a_run_over_a_damaged_latch_starts_halted_and_says_why(tmp_path: Path,
                                                               demo_config: Path,
                                                               damaged: str) -> None:
    """Was: the loop read the latch with ``json.loads`` and ``data["state"]``: a damaged
    row stopped ``argus run`` at its start with a traceback.  It now starts HALTED (it
    trades nothing on a latch nobody can read), says so in a risk event, and ``argus
    resume`` rewrites the latch."""
    run_dir = a_run(tmp_path, damaged)
    result = invoke("run", "--config", str(demo_config), "--run-dir", str(run_dir),
                    "--no-progress")
    assert result.exit_code == 6, result.output
    assert "Traceback" not in result.output
    with Ledger.in_dir(run_dir) as ledger:
        said = ledger.query("select action, reason from risk_events where check_name = "
                            "'control'")
        assert ledger.query("select count(*) as n from orders")[0]["n"] == 0
    assert said and said[0]["action"] == "halted" and "cannot be read" in said[0]["reason"]
    assert invoke("resume", "--run-dir", str(run_dir)).exit_code == 0
    assert stored_latch(run_dir)["state"] == "active"


class _Slow(Strategy):
    """Trades nothing; 20 ms an event (a model's inference, say)."""

    name = "slow"

    def on_event(self, event: MarketEvent, ctx: Any) -> list[Intent]:
        time.sleep(0.02)
        return []


def test_a_kill_gets_through_while_a_busy_paper_loop_works(tmp_path: Path,
                                                           demo_config: Path) -> None:
    """Was: a paper loop whose queue never ran dry (no idle point) held its write
    transaction until its next checkpoint, 1,000 events later (20 s at 20 ms an event):
    a person's ``argus kill`` waited 5 s for the lock and failed as busy.  The loop now
    commits at least once a second of wall time."""
    run_dir = tmp_path / "run"
    config = load_config(demo_config)
    config = apply_overrides(config, {"argus.mode": "paper", "run.strategies": ["slow"],
                                      "plugins.replay.end": "2022-06-12"})
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(run_and_collect(
        config, run_dir, strategies={"slow": _Slow()})), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (run_dir / "argus.db").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # the loop is well into its events, the queue never empty
        started = time.monotonic()
        result = invoke("kill", "--run-dir", str(run_dir), "--reason", "enough")
        # before: exit 7, "busy" after the kill's 5 s wait (here ~0.75 s when idle)
        assert result.exit_code == 0, (result.output, time.monotonic() - started)
        assert "no process is running" not in result.output  # this one is
    finally:
        thread.join(timeout=60)
    assert done and done[0].summary.trading_state == "halted"


def test_a_kill_of_a_run_no_process_runs_says_so(tmp_path: Path, demo_config: Path) -> None:
    """Was: "trading HALTED" and nothing more for a run whose process had stopped: the
    person read the orders it left at a venue as cancelled."""
    run_dir = tmp_path / "run"
    assert invoke("backtest", "--config", str(demo_config), "--run-dir", str(run_dir),
                  "--no-progress").exit_code == 0
    result = invoke("kill", "--run-dir", str(run_dir))
    assert result.exit_code == 0 and "trading HALTED" in result.output
    assert "no process is running this run: it is halted when it next starts" \
        in result.output
    result = invoke("resume", "--run-dir", str(run_dir))
    assert "no process is running this run: it trades when it next starts" in result.output


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(source, view)``: ``view`` a read-only bind mount of ``source`` (root only)."""
    source, view = tmp_path / "src", tmp_path / "view"
    source.mkdir()
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(view)],
                      capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root and mount rights)")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(view)],
                          capture_output=True).returncode:
            pytest.skip("cannot make a bind mount read-only here")
        yield source, view
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)


def test_a_run_on_a_read_only_mount_is_read_and_its_controls_say_why_not(
        read_only_mount: tuple[Path, Path], demo_config: Path) -> None:
    """Was: every command said "CantOpenError: unable to open database file (a damaged
    file, or not an Argus ledger)": a reader could not make the WAL's ``-shm`` file there,
    and a kill blamed the ledger for the mount."""
    source, view = read_only_mount
    assert invoke("backtest", "--config", str(demo_config), "--run-dir",
                  str(source / "run"), "--no-progress").exit_code == 0
    with Ledger.in_dir(source / "run") as ledger:  # closed by its last writer: no WAL left
        fills = ledger.query("select count(*) as n from fills")[0]["n"]
    with Ledger.in_dir(view / "run", read_only=True) as ledger:
        assert ledger.query("select count(*) as n from fills")[0]["n"] == fills > 0
    result = invoke("kill", "--run-dir", str(view / "run"))
    assert result.exit_code == 7 and "is read-only" in result.output, result.output
    assert "damaged" not in result.output


def test_what_a_resume_leaves_open_is_one_rule(tmp_path: Path) -> None:
    """The command line, the Telegram bot and the dashboard each read the positions a
    resume leaves open their own way (the CLI's ``Decimal(quantity)`` raised on a quantity
    that is no number); one core rule now: none without a flatten under way, a quantity
    that is no number counted as open, sorted, the wording shared."""
    from argus_core import left_open_by_resume, left_open_text, request_trading_state

    with Ledger.in_dir(tmp_path) as ledger:
        ledger.conn.execute("insert into positions values ('b:Y', 'x', '0', 1, 0)")
        ledger.conn.execute("insert into positions values ('a:X', '2', '1', 1, 0)")
        ledger.conn.execute("insert into positions values ('c:Z', '0', '1', 1, 0)")
        assert left_open_by_resume(ledger) == []  # no flatten under way
        request_trading_state(ledger, "flatten", "test", "tester")
        left = left_open_by_resume(ledger)
    assert left == ["a:X", "b:Y"]
    assert left_open_text(left, "/flatten") == (
        "the flatten under way stops: 2 position(s) stay open (a:X, b:Y); /flatten closes them")
    assert "and 2 more" in left_open_text([f"i{k}" for k in range(7)], "x")
