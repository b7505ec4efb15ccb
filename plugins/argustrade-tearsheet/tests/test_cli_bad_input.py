"""``argus export`` refuses bad input as the core's ``argus report`` does: a run
directory without a usable ledger is a ``LedgerError`` naming the path (exit 7), a file
where a folder belongs a usage error (exit 2) naming the command.  Each test marked so
failed before its fix: a damaged or foreign ledger exited 1 ("cannot read the ledger"),
a RUN_DIR that is a file was "no such run directory" (exit 7), an ``--out`` that is a
file failed after the ledger was read (exit 1).
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner, Result

from argus_core import Ledger
from argus_core.cli import cli


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, prog_name="argus")


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run directories that are not one, and an empty but whole run ledger."""
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
    Ledger.in_dir(tmp_path / "run").close()
    return tmp_path


@pytest.mark.parametrize(("where", "code", "said"), [
    ("nodir", 7, "error: nodir: no such run directory"),
    ("adir", 7, "error: adir: no argus.db here; is this a run directory?"),
    ("dbdir", 7, "error: dbdir: no argus.db here; is this a run directory?"),
    ("damaged", 7, "error: damaged/argus.db cannot be used: NotADBError: file is not a "
                   "database (a damaged file, or not an Argus ledger)"),
    ("foreign", 7, "error: foreign/argus.db cannot be used: SQLError: no such table: "),
    ("afile", 2, "Error: argus export: Invalid value for 'RUN_DIR': Directory 'afile' is a "
                 "file."),
])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_run_directory_that_is_not_one_is_one_line(inputs: Path, where: str, code: int,
                                                     said: str, fmt: str) -> None:
    result = _invoke(["export", where, "--format", fmt])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(said), last
    assert not (inputs / where / "export").exists() or where == "adir"
    assert not (inputs / "adir" / "export").exists()  # nothing written


@pytest.mark.parametrize(("args", "said"), [
    (["--out", "afile"], "Invalid value for '--out': Directory 'afile' is a file."),
    (["--format", "xlsx"], "Invalid value for '--format': 'xlsx' is not one of"),
])
def test_bad_options_are_usage_errors(inputs: Path, args: list[str], said: str) -> None:
    result = _invoke(["export", "run", *args])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: argus export: {said}"), last
    assert not (inputs / "run" / "export").exists()


def test_an_out_folder_that_cannot_be_made_says_where(inputs: Path) -> None:
    """The guard: a folder under a file cannot be made (exit 1 with the path, the core's
    rule for files and folders)."""
    result = _invoke(["export", "run", "--out", "afile/sub"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith(
        "error: afile/sub: cannot create the export folder: ")


def test_an_empty_run_exports(inputs: Path) -> None:
    result = _invoke(["export", "run"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (inputs / "run" / "export").iterdir()) == [
        "equity.csv", "fills.csv", "orders.csv", "trades.csv"]
