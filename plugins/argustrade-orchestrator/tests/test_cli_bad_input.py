"""``argus strategies ...``, ``argus thoughts`` and ``argus orchestrate`` refuse bad input
as the core's commands do: one ``error:`` line naming what and where, no traceback, the
exit code of the error's class.  A ``--run-dir`` that is not a run directory is the core's
``LedgerError`` naming the path (exit 7, as ``argus report``); an unknown version, cycle
or slot is a usage error naming the argument.  Each test failed before its fix: a missing
ledger exited 1, a damaged one 7 naming no file, a foreign SQLite file was migrated into
an Argus ledger (written to) and read as empty, unknown names exited 1.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from argus_orchestrator.plugin import register_migrations
from argus_orchestrator.versions import VersionStore
from argus_test_helpers import error_line, invoke_argus
from click.testing import CliRunner, Result

from argus_core import Ledger, Migrations

COMMANDS = [["strategies", "list"], ["strategies", "show", "{v}"],
            ["strategies", "diff", "{v}", "{v}"],
            ["strategies", "promote", "{v}", "--to", "full"],
            ["strategies", "rollback", "trend"], ["thoughts"], ["thoughts", "cycle-0001"]]
IDS = ["list", "show", "diff", "promote", "rollback", "thoughts", "thoughts-cycle"]


def _usage(result: Result, command: str, said: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: argus {command}: {said}"), last


def _args(command: list[str], run_dir: str, version: str = "trend-v001-x") -> list[str]:
    return [*command[:2], "--run-dir", run_dir,
            *(a.format(v=version) for a in command[2:])] if command[0] == "strategies" \
        else [command[0], "--run-dir", run_dir, *command[1:]]


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run directories that are not one, and a run holding one seed version."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "argus.db").write_text("not a database")
    (tmp_path / "dbdir" / "argus.db").mkdir(parents=True)
    (tmp_path / "foreign").mkdir()
    conn = apsw.Connection(str(tmp_path / "foreign" / "argus.db"))  # SQLite, not a ledger
    conn.execute("create table t (x)")
    conn.close()
    migrations = Migrations()
    register_migrations(migrations)
    with Ledger.in_dir(tmp_path / "run", migrations) as ledger:
        VersionStore(ledger).add(slot="trend", source="x = 1\n", parent_id=None,
                                 status="full", reason="seed incumbent")
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
@pytest.mark.parametrize(("where", "said"), [
    ("nodir", "nodir: no run ledger (argus.db) here; pass the run directory of an"),
    ("adir", "adir: no run ledger (argus.db) here; pass the run directory of an"),
    ("dbdir", "dbdir/argus.db: is a directory, not a ledger file"),
    ("damaged", "damaged/argus.db cannot be used: NotADBError: file is not a database (a "
                "damaged file, or not an Argus ledger)"),
    ("foreign", "foreign/argus.db cannot be used: not an Argus ledger (it has no runs "
                "table)"),
])
def test_a_run_directory_that_is_not_one_is_a_ledger_error(inputs: Path, command: list[str],
                                                           where: str, said: str) -> None:
    before = (inputs / "foreign" / "argus.db").read_bytes()
    line = error_line(invoke_argus(_args(command, where)), 7)
    assert line.startswith(said), line
    assert (inputs / "foreign" / "argus.db").read_bytes() == before  # never migrated
    assert not (inputs / "nodir").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_a_file_for_a_run_directory_is_a_usage_error(inputs: Path,
                                                     command: list[str]) -> None:
    name = " ".join(command[:2]) if command[0] == "strategies" else command[0]
    _usage(invoke_argus(_args(command, "afile")), name,
           "Invalid value for '--run-dir': Directory 'afile' is a file.")


@pytest.mark.parametrize(("command", "argument", "said"), [
    (["strategies", "show", "nope"], "VERSION_ID",
     "no strategy version 'nope' (known: trend-v001-"),
    (["strategies", "diff", "nope", "{v}"], "OLD_ID", "no strategy version 'nope'"),
    (["strategies", "diff", "{v}", "nope"], "NEW_ID", "no strategy version 'nope'"),
    (["strategies", "promote", "nope", "--to", "canary"], "VERSION_ID",
     "no strategy version 'nope'"),
    (["strategies", "rollback", "nope"], "SLOT",
     "slot 'nope' has no live AI version to roll back (slots with one: trend)"),
    (["thoughts", "cycle-0009"], "CYCLE",
     "no thoughts recorded for cycle 'cycle-0009' in run (cycles: none)"),
], ids=["show", "diff-old", "diff-new", "promote", "rollback", "thoughts"])
def test_an_unknown_name_is_a_usage_error_naming_the_argument(
        inputs: Path, command: list[str], argument: str, said: str) -> None:
    with Ledger.in_dir(inputs / "run") as ledger:
        (version,) = [r[0] for r in ledger.conn.execute(
            "select version_id from strategy_versions")]
    name = " ".join(command[:2]) if command[0] == "strategies" else command[0]
    _usage(invoke_argus(_args(command, "run", version)), name,
           f"Invalid value for '{argument}': {said}")


def test_the_known_version_still_shows(inputs: Path) -> None:
    with Ledger.in_dir(inputs / "run") as ledger:
        (version,) = [r[0] for r in ledger.conn.execute(
            "select version_id from strategy_versions")]
    result = invoke_argus(["strategies", "show", "--run-dir", "run", version])
    assert result.exit_code == 0 and "reason: seed incumbent" in result.output, result.output


@pytest.mark.parametrize(("args", "code", "said"), [
    (["--resume"], 2, "Error: argus orchestrate: Invalid value for '--run-dir': --resume "
                      "continues the run in --run-dir: pass it"),
    (["--resume", "--run-dir", "nodir"], 7, "nodir: no run ledger (argus.db) here"),
    (["--resume", "--run-dir", "damaged"], 7, "damaged/argus.db cannot be used"),
    (["--cycles", "-1"], 2, "Error: argus orchestrate: Invalid value for '--cycles': -1 is "
                            "not in the range x>=0."),
])
def test_orchestrate_refuses_a_resume_of_nothing_before_making_anything(
        inputs: Path, args: list[str], code: int, said: str) -> None:
    (inputs / "c.toml").write_text("[argus]\nplugins = []\n")
    result = invoke_argus(["orchestrate", "--config", "c.toml", *args])
    if code == 2:
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines()[-1].startswith(said), result.output
    else:
        assert error_line(result, code).startswith(said)
    assert not (inputs / "nodir").exists() and not (inputs / "argus-runs").exists()


@pytest.mark.parametrize("command", ["strategies_group", "thoughts_cmd"])
def test_each_command_on_its_own_prints_the_same_line(inputs: Path, command: str) -> None:
    from argus_orchestrator import commands

    args = ["list", "--run-dir", "damaged"] if command == "strategies_group" \
        else ["--run-dir", "damaged"]
    result = CliRunner().invoke(getattr(commands, command), args)
    assert error_line(result, 7).startswith("damaged/argus.db cannot be used")


# -- a refused `argus orchestrate` start, and `argus sandbox check` -----------------------
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orchestrator"


def _orchestrate_config(where: Path, spoil: str) -> Path:
    """The offline example's config, made absolute, spoilt one way."""
    text = (EXAMPLE / "orchestrate.toml").read_text()
    text = text.replace('"../data/', f'"{EXAMPLE.parent / "data"}/')
    text = text.replace('"seed_strategy.py"', f'"{EXAMPLE / "seed_strategy.py"}"')
    text = text.replace('"recorded:cassettes/', f'"recorded:{EXAMPLE / "cassettes"}/')
    text = text.replace('prior_trials = "prior_trials.json"', "")
    text = {"live-no-key": text.replace(f'"recorded:{EXAMPLE / "cassettes"}/example.json"',
                                        '"live"'),
            "unknown-strategy": text.replace('["ma_cross"]', '["ma_cross", "nope"]'),
            "missing-bars": text.replace(f'{EXAMPLE.parent / "data"}/kraken_XBTUSD_60.csv',
                                         "/no/such/bars.csv"),
            "empty-window": text.replace('start = "2022-01-01"', 'start = "2031-01-01"')
            .replace('end = "2022-07-01"', 'end = "2031-07-01"')}[spoil]
    path = where / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.skipif(not (EXAMPLE / "orchestrate.toml").exists(), reason="no example")
@pytest.mark.parametrize(("spoil", "code", "said"), [
    ("live-no-key", 9, "plugins.orchestrator.transport is 'live' but "
                       "plugins.orchestrator.api_key is not set"),
    ("unknown-strategy", 3, "no strategy named 'nope' is registered"),
    ("missing-bars", 4, "/no/such/bars.csv: cannot read the replay's data"),
    ("empty-window", 4, "the replay had no events: no market data in its window"),
])
@pytest.mark.parametrize("there", ["new", "empty", "kept", "nested new", "default"])
def test_a_refused_orchestrate_leaves_the_run_directory_as_it_found_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoil: str, code: int, said: str,
        there: str) -> None:
    """A live transport without its key left argus.db and argus.lock in a new run
    directory (exit 9), so did the runner's refusals; an empty replay exited 0."""
    monkeypatch.chdir(tmp_path)
    config = _orchestrate_config(tmp_path, spoil)
    run_dir = {"nested new": tmp_path / "a" / "b" / "run"}.get(there, tmp_path / "run")
    if there in ("empty", "kept"):
        run_dir.mkdir()
    if there == "kept":
        (run_dir / "notes.txt").write_text("mine")
    args = [] if there == "default" else ["--run-dir", str(run_dir)]
    line = error_line(invoke_argus(["orchestrate", "--config", str(config), "--cycles", "0",
                                *args]), code)
    assert said in line, line
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["c.toml", *(["run"] if there in ("empty", "kept") else [])])
    if there in ("empty", "kept"):
        assert sorted(p.name for p in run_dir.iterdir()) == \
            (["notes.txt"] if there == "kept" else [])


@pytest.mark.parametrize("as_json", [False, True])
def test_sandbox_check_of_an_unreadable_file_is_one_error_line(tmp_path: Path,
                                                               as_json: bool) -> None:
    """Exit 4 (DataError's code, as documented) with one ``error:`` line; it printed the
    line without its prefix.  --json keeps its verdict object."""
    import json

    (tmp_path / "adir").mkdir()
    for target, why in ((tmp_path / "missing.py", "No such file or directory"),
                        (tmp_path / "adir", "Is a directory")):
        result = invoke_argus(["sandbox", "check", str(target), *(["--json"] * as_json)])
        if as_json:
            assert result.exit_code == 4 and "Traceback" not in result.output
            assert json.loads(result.output)["error"] == f"cannot read: {why}"
        else:
            assert error_line(result, 4) == f"{target}: cannot read: {why}"
