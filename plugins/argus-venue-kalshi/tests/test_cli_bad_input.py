"""``argus kalshi-settlements`` refuses bad input as the core's commands do, before
anything is asked of Kalshi: one ``error:`` line naming what and where, no traceback,
the exit code of the error's class.  A run directory without a readable run ledger is
the core's ``LedgerError`` naming the path (exit 7), a config without the account's
credentials a ``ConfigError`` (exit 2).  Each test failed before its fix: every refusal
was click's ``Error:`` with exit 1 (the code of "differences found"), a directory named
``argus.db`` was opened, and a config without credentials was sent to Kalshi.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from argus_test_helpers import error_line, invoke_argus

from argus_core import Ledger

CREDENTIALS = ('[plugins.kalshi]\napi_key_id = "$env:ARGUS_TEST_NO_SUCH_KEY_ID"\n'
               'private_key = "$file:no-such-key.pem"\nrest_url = "http://127.0.0.1:9"\n')


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run directories that are not one, a run, and configs."""
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
    with Ledger.in_dir(tmp_path / "run"):
        pass
    (tmp_path / "creds.toml").write_text(CREDENTIALS)
    (tmp_path / "none.toml").write_text("[plugins.kalshi]\n")
    (tmp_path / "bad.toml").write_text("[plugins.kalshi\n")
    return tmp_path


@pytest.mark.parametrize(("where", "said"), [
    ("adir", "adir: no run ledger (argus.db) here; pass the run directory of the Kalshi run"),
    ("dbdir", "dbdir/argus.db: is a directory, not a ledger file"),
    ("damaged", "damaged/argus.db cannot be used: NotADBError: file is not a database (a "
                "damaged file, or not an Argus ledger)"),
    ("foreign", "foreign/argus.db cannot be used: not an Argus ledger (it has no runs "
                "table)"),
])
def test_a_run_directory_that_is_not_one_is_a_ledger_error(inputs: Path, where: str,
                                                           said: str) -> None:
    before = (inputs / "foreign" / "argus.db").read_bytes()
    line = error_line(invoke_argus(["kalshi-settlements", "--config", "creds.toml",
                                "--run-dir", where]), 7)
    assert line.startswith(said), line
    assert (inputs / "foreign" / "argus.db").read_bytes() == before


@pytest.mark.parametrize(("config", "said"), [
    ("none.toml", "none.toml: [plugins.kalshi] has no api_key_id and private_key"),
    ("bad.toml", "bad.toml: not valid TOML"),
])
def test_a_config_that_cannot_ask_kalshi_is_a_config_error(inputs: Path, config: str,
                                                          said: str) -> None:
    line = error_line(invoke_argus(["kalshi-settlements", "--config", config,
                                "--run-dir", "run"]), 2)
    assert said in line, line


@pytest.mark.parametrize(("args", "said"), [
    (["--config", "nofile.toml", "--run-dir", "run"],
     "Invalid value for '--config': File 'nofile.toml' does not exist."),
    (["--config", "adir", "--run-dir", "run"],
     "Invalid value for '--config': File 'adir' is a directory."),
    (["--config", "creds.toml", "--run-dir", "nodir"],
     "Invalid value for '--run-dir': Directory 'nodir' does not exist."),
    (["--config", "creds.toml", "--run-dir", "afile"],
     "Invalid value for '--run-dir': Directory 'afile' is a file."),
])
def test_usage_errors_name_the_command(inputs: Path, args: list[str], said: str) -> None:
    result = invoke_argus(["kalshi-settlements", *args])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == f"Error: argus kalshi-settlements: {said}", last
