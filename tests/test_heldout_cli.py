"""Held-out audit: every ``argus`` command given a bad argument, a run directory that is a
file, a damaged ledger or an unusable path answers with one line and a documented exit
code, and loses nothing committed.

Was (each failed before its fix):

* ``--run-dir`` naming a file: ``FileExistsError`` traceback (run, backtest, demo);
* a damaged ``argus.db`` (not SQLite): ``apsw.NotADBError`` traceback from run, report,
  kill and resume;
* ``--max-events 0`` and ``-5`` ran every event; ``--duration -1`` / ``nan`` recorded
  anyway (``nan``: for ever); ``--interval -1`` and ``--max-scans 0`` were accepted;
* ``record --out`` a directory, or under a file: ``IsADirectoryError`` /
  ``FileExistsError`` tracebacks; ``plugins --config`` a directory: a traceback;
* an unexpected exception printed Python's raw traceback and no ``error:`` line.

"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml
from click.testing import CliRunner, Result

from argus_core.cli import EXIT_CODES, cli
from argus_core.ledger import Ledger


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def one_line_error(result: Result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    for needle in needles:
        assert needle in result.output, result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-06-03"))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", [["run", "--config", "{c}"], ["backtest", "--config", "{c}"],
                                     ["demo"]])
def test_a_run_dir_that_is_a_file(tmp_path: Path, config: Path, command: list[str]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    args = [a.format(c=config) for a in command]
    result = invoke(*args, "--run-dir", str(a_file), "--no-progress")
    one_line_error(result, 2, "is a file")
    assert a_file.read_text() == "mine"


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    run_dir = tmp_path / "damaged"
    run_dir.mkdir()
    (run_dir / "argus.db").write_bytes(b"not a database, but somebody's data\n" * 200)
    return run_dir


@pytest.mark.parametrize("command", [["run", "--config", "{c}", "--run-dir", "{d}"],
                                     ["backtest", "--config", "{c}", "--run-dir", "{d}"],
                                     ["report", "{d}"], ["kill", "--run-dir", "{d}"],
                                     ["resume", "--run-dir", "{d}"]])
def test_a_damaged_ledger_is_refused_and_left_as_it_was(config: Path, damaged: Path,
                                                         command: list[str]) -> None:
    before = digest(damaged / "argus.db")
    result = invoke(*[a.format(c=config, d=damaged) for a in command])
    one_line_error(result, 7, str(damaged / "argus.db"), "not a database")
    assert digest(damaged / "argus.db") == before


def test_a_committed_run_survives_refused_commands(tmp_path: Path, config: Path) -> None:
    run_dir = tmp_path / "run"
    assert invoke("run", "--config", str(config), "--run-dir", str(run_dir),
                  "--no-progress").exit_code == 0
    with Ledger.in_dir(run_dir) as ledger:
        before = ledger.query("select count(*) n from equity")[0]["n"]
    for args in (["run", "--config", str(config), "--run-dir", str(run_dir),
                  "--max-events", "0"],
                 ["run", "--config", str(tmp_path), "--run-dir", str(run_dir)],
                 ["kill", "--run-dir", str(run_dir), "extra"]):
        assert invoke(*args).exit_code == 2
    with Ledger.in_dir(run_dir) as ledger:
        assert ledger.query("select count(*) n from equity")[0]["n"] == before > 0
        assert ledger.get_control("trading_state") is None


@pytest.mark.parametrize(("args", "option"), [
    (["run", "--config", "{c}", "--run-dir", "{t}/r", "--max-events", "0"], "--max-events"),
    (["run", "--config", "{c}", "--run-dir", "{t}/r", "--max-events", "-5"], "--max-events"),
    (["record", "--config", "{c}", "--out", "{t}/o.ndjson", "--duration", "-1"], "--duration"),
    (["record", "--config", "{c}", "--out", "{t}/o.ndjson", "--duration", "nan"], "--duration"),
    (["record", "--config", "{c}", "--out", "{t}/o.ndjson", "--duration", "inf"], "--duration"),
    (["record", "--config", "{c}", "--out", "{t}/o.ndjson", "--duration", "0"], "--duration"),
    (["record", "--config", "{c}", "--out", "{t}/o.ndjson", "--max-events", "0"],
     "--max-events"),
    (["record", "--config", "{c}", "--out", "{t}", "--duration", "1"], "--out"),
    (["scan", "--config", "{c}", "--interval", "-1"], "--interval"),
    (["scan", "--config", "{c}", "--interval", "nan"], "--interval"),
    (["scan", "--config", "{c}", "--max-scans", "0"], "--max-scans"),
])
def test_nonsense_arguments_are_usage_errors(tmp_path: Path, config: Path, args: list[str],
                                             option: str) -> None:
    result = invoke(*[a.format(c=config, t=tmp_path) for a in args])
    one_line_error(result, 2, f"Invalid value for '{option}'")
    assert not (tmp_path / "o.ndjson").exists() and not (tmp_path / "r").exists()


def test_a_path_that_cannot_be_written_is_one_line_exit_1(tmp_path: Path, config: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = invoke("record", "--config", str(config), "--out",
                    str(tmp_path / "afile" / "out.ndjson"), "--duration", "1")
    one_line_error(result, 1, "error: ", str(tmp_path / "afile"))
    assert "File exists" in result.output or "Not a directory" in result.output


def test_a_directory_given_as_the_config(tmp_path: Path) -> None:
    for args in (["plugins", "--config", str(tmp_path)],
                 ["run", "--config", str(tmp_path), "--run-dir", str(tmp_path / "r")]):
        one_line_error(invoke(*args), 2, "is a directory, not a config file")


@pytest.mark.parametrize("args", [["run"], ["run", "--config"], ["kill"], ["report"],
                                  ["report", "a", "b"], ["resume", "--run-dir"],
                                  ["backtest", "--config", "x", "--set"], ["nonsense"],
                                  ["record", "--config", "c"], ["run", "--bogus"]])
def test_missing_and_extra_arguments_exit_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_an_unexpected_exception_is_an_error_line_and_exit_1(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: Path) -> None:
    import argus_core.runner

    def boom(self: object) -> None:
        raise ZeroDivisionError("division by zero in a strategy")

    monkeypatch.setattr(argus_core.runner.Runner, "run_sync", boom)
    result = invoke("run", "--config", str(config), "--run-dir", str(tmp_path / "r"),
                    "--no-progress")
    assert result.exit_code == 1
    assert "error: unexpected ZeroDivisionError: division by zero in a strategy" in result.output
    assert "Traceback" in result.output  # a bug: where it happened is shown


def test_exit_codes_say_what_1_covers() -> None:
    assert "cannot be read or written" in EXIT_CODES[1]
    assert "Exit codes" in invoke("--help").output


def test_a_ledger_from_a_newer_argus_is_refused(tmp_path: Path, config: Path) -> None:
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.conn.execute("insert into _argus_migrations values ('core', 'm999_future')")
    before = digest(run_dir / "argus.db")
    result = invoke("run", "--config", str(config), "--run-dir", str(run_dir), "--no-progress")
    one_line_error(result, 7, "newer")
    assert digest(run_dir / "argus.db") == before


def test_a_plugins_migrations_not_loaded_here_do_not_refuse_the_ledger(tmp_path: Path) -> None:
    """A set this process did not load (a plugin not installed here) is that plugin's
    business: the ledger opens; a newer migration of a loaded set is refused."""
    from argus_core.errors import LedgerError
    from argus_core.migrations import Migrations

    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.conn.execute("insert into _argus_migrations values ('kraken', 'm009_later')")
    with Ledger.in_dir(run_dir) as ledger:
        assert ledger.applied == []
    mine = Migrations()
    mine.set("kraken")  # loaded here, knowing none of its migrations
    with pytest.raises(LedgerError, match=r"newer version .*kraken\.m009_later"):
        Ledger.in_dir(run_dir, mine)


def test_default_run_folders_of_one_second_are_distinct(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two backtests started in the same second each get a folder (the second one used to
    pick the first's and be refused by its lock, exit 7)."""
    from argus_core import cli as cli_module

    monkeypatch.chdir(tmp_path)
    made = [cli_module._default_run_dir("backtest") for _ in range(3)]
    assert len(set(made)) == 3 and all(p.is_dir() for p in made)
    assert made[1].name == made[0].name + "-2" or made[1].name != made[0].name


def test_a_recording_of_no_events_is_a_data_error(tmp_path: Path, config: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A venue that streamed nothing (unreachable, no instruments): the header-only file
    replays as a silent empty run, so `argus record` says so and exits 4, not 0."""
    import argus_core.recorder

    async def nothing(*_args: object, **_kwargs: object) -> int:
        return 0

    monkeypatch.setattr(argus_core.recorder, "record", nothing)
    result = CliRunner().invoke(cli, ["record", "--config", str(config), "--out",
                                      str(tmp_path / "o.ndjson"), "--duration", "2"])
    assert result.exit_code == 4, result.output
    assert "recorded no events in 2 s" in result.output
