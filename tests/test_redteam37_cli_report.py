"""Red team of ``argus report`` (round 37): what it found.

1. ``report.html`` was written in place (``Path.write_text``): a full disk emptied the
   previous report and left a half page, and the error line said only "No space left on
   device", not which file.  It is now written beside it and renamed over it.
2. A damaged or hand-edited ``runs`` row (a recorded config that is not JSON, a text where
   a number belongs) was "unexpected JSONDecodeError ... (a bug)" with a traceback, exit
   1; it is a ledger error naming the file, exit 7.
3. A run whose config names a plugin no longer installed got no report at all (exit 3),
   where the report promises to leave that plugin's sections out with a warning.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml, error_line, invoke_argus

OLD = "<p>the previous report</p>"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short finished replay (two weeks of the bundled bars), made once."""
    base = tmp_path_factory.mktemp("run")
    config = base / "c.toml"
    config.write_text(demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-06-15"))
    result = invoke_argus(["run", "--config", str(config), "--run-dir", str(base / "run"),
                           "--no-progress"])
    assert result.exit_code == 0, result.output
    return base / "run"


@pytest.fixture
def run(finished_run: Path, tmp_path: Path) -> Path:
    """A copy of the finished run this test may change, with a previous report."""
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("argus.db", "argus.db-wal"):
        if (finished_run / name).exists():
            (copy / name).write_bytes((finished_run / name).read_bytes())
    (copy / "report.html").write_text(OLD)
    return copy


def _edit(run: Path, sql: str, *args: Any) -> None:
    with sqlite3.connect(run / "argus.db") as conn:
        conn.execute(sql, args)


def test_a_full_disk_leaves_the_previous_report_whole(
        run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write gets half its text down, then ENOSPC (a disk that fills up mid-page)."""
    def half_then_full(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        with open(self, "w", encoding="utf-8") as fh:
            fh.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_full)
    line = error_line(invoke_argus(["report", str(run)]), 1)
    assert str(run / "report.html") in line and "No space left on device" in line
    assert (run / "report.html").read_text(encoding="utf-8") == OLD
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(("sql", "value"), [
    ("update runs set config_json = ?", "{not json"),
    ("update runs set config_json = ?", "[]"),
    ("update runs set config_json = ?", json.dumps({"run": {"starting_cash": "abc"}})),
    ("update fills set price = ? where rowid = 1", "x"),
])
def test_a_damaged_row_is_a_ledger_error_naming_the_file(run: Path, sql: str,
                                                          value: str) -> None:
    _edit(run, sql, value)
    line = error_line(invoke_argus(["report", str(run)]), 7)
    assert str(run / "argus.db") in line and "damaged" in line
    assert (run / "report.html").read_text(encoding="utf-8") == OLD


def test_a_plugin_no_longer_installed_is_left_out_of_the_report(
        run: Path, caplog: pytest.LogCaptureFixture) -> None:
    with sqlite3.connect(run / "argus.db") as conn:
        (text,) = conn.execute("select config_json from runs").fetchone()
    config = json.loads(text)
    config.setdefault("argus", {})["plugins"] = ["gone_since_the_run"]
    _edit(run, "update runs set config_json = ?", json.dumps(config))
    result = invoke_argus(["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "Argus run" in (run / "report.html").read_text(encoding="utf-8")
    assert "'gone_since_the_run' left out" in caplog.text
