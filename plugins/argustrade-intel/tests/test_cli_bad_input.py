"""``argus intel ...`` refuses bad input as the core's commands do: one ``error:`` line
naming what and where, no traceback, the exit code of the error's class.  Each test failed
before its fix: a damaged ledger's line named no file and a foreign one said "no such
table: runs"; a foreign SQLite file given as ``--keys`` was written into (two tables
created) and read as empty, a damaged one was a ConfigError; ``keys list`` of a missing
file made it and its folders; ``--rate 1e400/s`` and ``--burst inf`` were stored; a port
in use exited 1 (a bug's code).
"""

from __future__ import annotations

import socket
from pathlib import Path

import apsw
import pytest
import uvicorn
from argus_test_helpers import error_line, invoke_argus

from argus_core import Ledger


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    (tmp_path / "adir").mkdir()
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "argus.db").write_text("not a database")
    (tmp_path / "dbdir" / "argus.db").mkdir(parents=True)
    (tmp_path / "foreign").mkdir()
    for path in (tmp_path / "foreign" / "argus.db", tmp_path / "foreign.db"):
        conn = apsw.Connection(str(path))  # SQLite, not a ledger
        conn.execute("create table t (x)")
        conn.close()
    (tmp_path / "damaged.db").write_text("not a database")
    (tmp_path / "onebyte.db").write_bytes(b"\n")
    with Ledger.in_dir(tmp_path / "run"):
        pass
    return tmp_path


@pytest.mark.parametrize(("where", "said"), [
    ("adir", "adir: no run ledger (argus.db) here"),
    ("dbdir", "dbdir/argus.db: is a directory, not a ledger file"),
    ("damaged", "damaged/argus.db cannot be used: NotADBError: file is not a database (a "
                "damaged file, or not an Argus ledger)"),
    ("foreign", "foreign/argus.db cannot be used: not an Argus ledger (it has no runs "
                "table)"),
])
def test_a_run_directory_that_is_not_one_is_a_ledger_error(inputs: Path, where: str,
                                                           said: str) -> None:
    line = error_line(invoke_argus(["intel", "serve", where, "--keys", "k.db", "--port", "0"]),
                       7)
    assert line.startswith(said), line


@pytest.mark.parametrize("command", [["serve", "run", "--port", "0"], ["keys", "list"],
                                     ["keys", "add", "bob"], ["keys", "revoke", "bob"]])
@pytest.mark.parametrize(("keys", "said"), [
    ("foreign.db", "foreign.db cannot be used as the API keys file: it is another "
                   "program's database (tables: t)"),
    ("damaged.db", "damaged.db cannot be used: NotADBError: file is not a database (a "
                   "damaged file, or not an API keys file)"),
    # one byte: SQLite took it for an empty database and wrote the keys tables over it
    ("onebyte.db", "onebyte.db cannot be used: NotADBError: file is not a database"),
])
def test_a_keys_file_that_is_not_one_is_refused_untouched(inputs: Path, command: list[str],
                                                          keys: str, said: str) -> None:
    before = (inputs / keys).read_bytes()
    line = error_line(invoke_argus(["intel", *command, "--keys", keys]), 7)
    assert line.startswith(said), line
    assert (inputs / keys).read_bytes() == before


def test_listing_a_missing_keys_file_makes_nothing(inputs: Path) -> None:
    result = invoke_argus(["intel", "keys", "list", "--keys", "nodir/k.db"])
    assert result.exit_code == 0 and "does not exist yet" in result.output
    assert not (inputs / "nodir").exists()


@pytest.mark.parametrize(("args", "said"), [
    (["--rate", "1e400/s"], "--rate '1e400/s': expected a positive number"),
    (["--rate", "nan"], "--rate 'nan': expected a positive number"),
])
def test_limits_must_be_finite(inputs: Path, args: list[str], said: str) -> None:
    line = error_line(invoke_argus(["intel", "keys", "add", "bob", "--keys", "k.db", *args]), 2)
    assert line.startswith(said), line


@pytest.mark.parametrize("burst", ["inf", "nan", "0.5"])
def test_a_burst_that_is_no_finite_number_from_1_is_a_usage_error(inputs: Path,
                                                                   burst: str) -> None:
    # nan passed click's range check (and inf its open end) to the store's own check
    result = invoke_argus(["intel", "keys", "add", "bob", "--keys", "k.db", "--burst", burst])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: argus intel keys add: Invalid value for '--burst': "), last
    assert not (inputs / "k.db").exists()


def test_a_port_in_use_is_the_options_error(inputs: Path) -> None:
    assert invoke_argus(["demo", "--run-dir", "demo", "--no-progress"]).exit_code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line(invoke_argus(["intel", "serve", "demo", "--keys", "k.db", "--port",
                                    str(port)]), 2)
    assert line.startswith(f"--port {port}: port {port} on 127.0.0.1 is already in use")
