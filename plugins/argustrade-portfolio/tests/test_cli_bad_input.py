"""``argus tca``, ``argus tca-calibrate`` and ``argus league ...`` refuse bad input as the
core's commands do: one ``error:`` line naming what and where, no traceback, the exit
code of the error's class.  A RUN_DIR that is not one (missing, empty, a damaged or
foreign ``argus.db``) is the core's ``LedgerError`` with the path (exit 7, as ``argus
report``).  Each test failed before its fix: these exited 1 with click's ``Error:``, a
damaged ledger's line named no file, a foreign SQLite file read as a run without events,
and an unknown ``--slot`` was a DataError.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import apsw
import pytest
from argus_test_helpers import error_line, invoke_argus
from click.testing import CliRunner

from argus_core import Ledger

COMMANDS = [["tca", "{}"], ["tca", "--daily", "{}"], ["tca-calibrate", "{}"],
            ["league", "events", "{}"], ["league", "books", "{}"],
            ["league", "reference", "{}", "--slot", "alpha"]]
IDS = [" ".join(c[:2]).replace(" {}", "") for c in COMMANDS]


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run directories that are not one, and a run that kept two books."""
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
    with Ledger.in_dir(tmp_path / "books") as ledger:
        ledger.append_book_equity([(10**18 + i * 3600 * 10**9, slot, "100", str(100 + i))
                                   for i in range(5) for slot in ("alpha", "beta")])
    return tmp_path


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
@pytest.mark.parametrize(("where", "said"), [
    ("nodir", "nodir: no run ledger (argus.db) here; pass the run directory"),
    ("adir", "adir: no run ledger (argus.db) here; pass the run directory"),
    ("dbdir", "dbdir/argus.db: is a directory, not a ledger file"),
    ("damaged", "damaged/argus.db cannot be used: NotADBError: file is not a database (a "
                "damaged file, or not an Argus ledger)"),
    ("foreign", "foreign/argus.db cannot be used: not an Argus ledger (it has no runs "
                "table)"),
])
def test_a_run_directory_that_is_not_one_is_a_ledger_error(inputs: Path, args: list[str],
                                                           where: str, said: str) -> None:
    line = error_line(invoke_argus([a.format(where) for a in args]), 7)
    assert line.startswith(said), line
    assert not (inputs / "nodir").exists()  # nothing made


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_file_for_a_run_directory_is_a_usage_error(inputs: Path, args: list[str]) -> None:
    result = invoke_argus([a.format("afile") for a in args])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    name = " ".join(args[:2]) if args[0] == "league" else args[0]
    assert last.startswith(f"Error: argus {name}: Invalid value for 'RUN_DIR"), last
    assert "Directory 'afile' is a file." in last


def test_calibrate_names_the_one_run_that_is_not_one(inputs: Path) -> None:
    line = error_line(invoke_argus(["tca-calibrate", "books", "damaged"]), 7)
    assert line.startswith("damaged/argus.db cannot be used"), line


def test_calibrate_with_too_few_fills_is_a_config_error(inputs: Path) -> None:
    line = error_line(invoke_argus(["tca-calibrate", "books"]), 2)
    assert "too few taker fills" in line, line


@pytest.mark.parametrize(("args", "said"), [
    (["--slot", "gamma"], "Invalid value for '--slot': no book named 'gamma' in books "
                          "(books: alpha, beta)"),
    (["--slot", "alpha", "--window", "1"], "Invalid value for '--window': 1 is not in the "
                                           "range x>=2."),
    (["--slot", "alpha", "--out", "adir"], "Invalid value for '--out': File 'adir' is a "
                                           "directory."),
    ([], "Missing option '--slot'."),
])
def test_league_reference_usage_errors(inputs: Path, args: list[str], said: str) -> None:
    result = invoke_argus(["league", "reference", "books", *args])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == f"Error: argus league reference: {said}", last


def test_a_known_book_still_measures(inputs: Path) -> None:
    """The guard: the book the run kept is measured as before (too few rows: DataError)."""
    result = invoke_argus(["league", "reference", "books", "--slot", "alpha", "--window", "2"])
    assert result.exit_code in (0, 4), result.output
    assert "no book named" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["tca", "tca_calibrate", "league"])
def test_each_command_on_its_own_prints_the_same_line(inputs: Path, command: str) -> None:
    from argus_portfolio import commands

    args = ["events", "damaged"] if command == "league" else ["damaged"]
    result = CliRunner().invoke(getattr(commands, command), args)
    assert error_line(result, 7).startswith("damaged/argus.db cannot be used")


def test_a_copied_run_reads_as_before(inputs: Path) -> None:
    """The checks read, never write: a ledger's bytes are the same after every command."""
    shutil.copytree(inputs / "books", inputs / "copy")
    before = (inputs / "copy" / "argus.db").read_bytes()
    for args in COMMANDS[:5]:
        invoke_argus([a.format("copy") for a in args])
    assert (inputs / "copy" / "argus.db").read_bytes() == before


def test_calibrate_out_in_a_missing_folder_is_a_usage_error(inputs: Path) -> None:
    """Refused before the runs are read (it printed the snippet, then exited 1)."""
    result = invoke_argus(["tca-calibrate", "books", "--out", "nodir/x.toml"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: argus tca-calibrate: Invalid value for '--out': folder 'nodir' does not "
        "exist")
