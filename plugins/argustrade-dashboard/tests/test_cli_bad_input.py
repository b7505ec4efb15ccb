"""``argus serve`` refuses bad input before it listens, as the core's commands do: one
``error:`` line naming what and where, no traceback, the exit code of the error's class.
Each test failed before its fix: a RUN_DIR whose argus.db was a folder, a damaged or a
foreign SQLite file was served (every page an error), as was a damaged or foreign
``--lab`` ledger; ``--poll nan`` was taken; a port in use exited 1 (a bug's code).
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
    (tmp_path / "onebyte").mkdir()  # SQLite reads a one-byte file as an empty database
    for path in (tmp_path / "onebyte" / "argus.db", tmp_path / "onebyte.db"):
        path.write_bytes(b"x")
    with Ledger.in_dir(tmp_path / "run"):
        pass
    return tmp_path


@pytest.mark.parametrize(("args", "code", "said"), [
    (["dbdir"], 7, "dbdir/argus.db: is a directory, not a ledger file"),
    (["damaged"], 7, "damaged/argus.db cannot be used: NotADBError: file is not a "
                     "database (a damaged file, or not an Argus ledger)"),
    (["foreign"], 7, "foreign/argus.db cannot be used: not an Argus ledger (it has no runs "
                     "table)"),
    (["run", "--lab", "damaged.db"], 7, "damaged.db cannot be used: NotADBError"),
    (["onebyte"], 7, "onebyte/argus.db cannot be used: NotADBError: file is not a database"),
    (["run", "--lab", "onebyte.db"], 7, "onebyte.db cannot be used: NotADBError"),
    (["run", "--lab", "foreign.db"], 7, "--lab foreign.db cannot be used: not a lab "
                                        "ledger (it has no lab_ tables)"),
    (["run", "--lab", "nolab"], 2, "--lab nolab: no lab ledger (lab.db) there"),
    (["nodir"], 2, "nodir: no such run directory"),
])
def test_what_cannot_be_served_is_refused_before_listening(inputs: Path, args: list[str],
                                                           code: int, said: str) -> None:
    before = (inputs / "foreign.db").read_bytes()
    line = error_line(invoke_argus(["serve", *args, "--port", "0"]), code)
    assert line.startswith(said), line
    assert (inputs / "foreign.db").read_bytes() == before


def test_a_port_in_use_is_the_options_error(inputs: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line(invoke_argus(["serve", "run", "--port", str(port)]), 2)
    assert line == f"--port {port}: port {port} on 127.0.0.1 is already in use; pick " \
                   f"another (0: any free port)"


@pytest.mark.parametrize(("args", "said"), [
    (["--poll", "nan"], "Invalid value for '--poll': 'nan' is not a finite number"),
    (["--poll", "0"], "Invalid value for '--poll': 0.0 is not in the range 0.05<=x<=60.0."),
    (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range "
                          "0<=x<=65535."),
])
def test_usage_errors_name_the_command(inputs: Path, args: list[str], said: str) -> None:
    result = invoke_argus(["serve", "run", *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == f"Error: argus serve: {said}"


@pytest.mark.parametrize("where", ["adir", "run"])
def test_a_run_directory_without_a_ledger_yet_or_with_one_is_served(inputs: Path,
                                                                    where: str) -> None:
    result = invoke_argus(["serve", where, "--port", "0"])
    assert result.exit_code == 0 and "argus serve: http://127.0.0.1:" in result.output
