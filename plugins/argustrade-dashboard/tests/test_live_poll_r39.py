"""Red team of the dashboard's reads, round 39: a finished run's folder, a ledger replaced or
deleted between two polls, and a poll's cost on a long ledger.  What was found (each test
failed before its fix):

* every read (the page, the JSON API, the list of runs, the live stream, the lab's
  verdicts) opened the ledger with a plain read-only connection, which left
  ``argus.db-wal`` and ``argus.db-shm`` in a finished run's folder for good;
* a run folder replaced between two polls (the run deleted and started again, a copy
  restored over it) kept the stream's marks of the old ledger: fills, equity points and
  risk events below them were never sent, and the page showed the old run's rows beside
  the new run's figures; a ledger deleted while served kept its page "live", unchanged;
* a quiet poll's cost grew with the whole history: the signals' and orders' marks
  counted every row, the summary counted every fill, order and risk event whenever
  anything moved, the signals' panel grouped every signal row, and a kill the loop had
  not taken up made every poll scan every risk event for its adoption.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw
from argus_dashboard import RunDir, Tokens, create_app
from argus_dashboard import ledger_view as lv
from argus_dashboard.controls import apply_control
from argus_dashboard.live import LiveCursor
from dashboard_helpers import add_fill
from starlette.testclient import TestClient

from argus_core import Ledger

LEFT_BEHIND = ("argus.db-wal", "argus.db-shm")


def _left(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name in LEFT_BEHIND)


def test_reading_a_finished_run_leaves_its_folder_untouched(finished_run: Path,
                                                            tokens: Tokens) -> None:
    """Before: each read left argus.db-wal and argus.db-shm in the run's folder."""
    before = sorted(p.name for p in finished_run.iterdir())
    assert _left(finished_run) == []
    c = TestClient(create_app([RunDir("0", "run", finished_run)], tokens))
    assert c.get("/api/runs/0").json()["ledger"] is True
    assert _left(finished_run) == []
    assert c.get("/api/runs").json()[0]["fills"] == 16
    assert _left(finished_run) == []
    assert 'id="trading-state"' in c.get("/").text
    assert _left(finished_run) == []
    cursor = LiveCursor(finished_run)
    assert cursor.poll() and cursor.poll() == []
    assert sorted(p.name for p in finished_run.iterdir()) == before


def test_a_lab_ledger_read_is_left_untouched(tmp_path: Path) -> None:
    lab_db = tmp_path / "lab" / "lab.db"
    lab_db.parent.mkdir()
    conn = apsw.Connection(str(lab_db))
    conn.execute("pragma journal_mode=wal").fetchall()
    conn.execute("create table lab_gate_verdicts (id integer "
                 "primary key, family text, ts_ns integer, verdict text, reasons_json text,"
                 " config_hash text); insert into lab_gate_verdicts values (1, 'f', 1, "
                 "'pass', '[]', 'h')")
    conn.close()
    assert [v["verdict"] for v in lv.lab_verdicts(lab_db) or []] == ["pass"]
    assert sorted(p.name for p in lab_db.parent.iterdir()) == ["lab.db"]


def test_the_stream_still_follows_a_writer_that_comes_after_an_untouched_read(
        finished_run: Path) -> None:
    """A finished run's ledger read immutably, then written again (a resumed run, a kill):
    the poll sees every commit, from the writer's WAL while the writer is open."""
    cursor = LiveCursor(finished_run)
    cursor.poll()
    with Ledger.in_dir(finished_run) as writer:  # held open: its WAL stays
        for n in range(3):
            with writer.transaction():
                writer.insert("risk_events", {"ts_ns": n, "check_name": "c", "action": "veto",
                                              "reason": f"r{n}"})
            (events,) = [d for name, d in cursor.poll() if name == "risk_events"]
            assert [e["reason"] for e in events["rows"]] == [f"r{n}"]
    fill_id = add_fill(finished_run, 1)  # a writer that opens, commits and closes
    assert [f["fill_id"] for f in dict(cursor.poll())["fills"]["rows"]] == [fill_id]


def test_a_run_folder_replaced_between_polls_resets_the_stream(
        finished_run: Path, finished_run_template: Path, tmp_path: Path) -> None:
    """Before: the new ledger's fills (rowids under the old mark) never came, and the page
    kept the old run's rows: now the stream says ``reset`` (the page reloads) and follows
    the new ledger from there."""
    for n in range(5):
        add_fill(finished_run, n)
    cursor = LiveCursor(finished_run)
    cursor.poll()
    fresh = tmp_path / "fresh"
    shutil.copytree(finished_run_template, fresh)
    shutil.rmtree(finished_run)
    assert dict(cursor.poll()) == {"reset": {"why": "the ledger is gone"}}
    assert cursor.poll() == []  # said once
    shutil.copytree(fresh, finished_run)
    changes = dict(cursor.poll())
    assert changes["reset"] == {"why": "the ledger was replaced"}
    assert changes["summary"]["summary"]["fills"] == 16
    fill_id = add_fill(finished_run, 99)
    assert [f["fill_id"] for f in dict(cursor.poll())["fills"]["rows"]] == [fill_id]


def test_a_ledger_copied_over_in_place_resets_the_stream(
        finished_run: Path, finished_run_template: Path) -> None:
    """A backup restored over the file (same inode, fewer rows): the marks went back."""
    cursor = LiveCursor(finished_run)
    cursor.poll()
    for n in range(3):
        add_fill(finished_run, n)
    cursor.poll()
    with (finished_run_template / "argus.db").open("rb") as src, \
            (finished_run / "argus.db").open("r+b") as dst:
        data = src.read()
        dst.seek(0)
        dst.write(data)
        dst.truncate()
    assert dict(cursor.poll())["reset"] == {"why": "the ledger was replaced"}


def _bulk(run_dir: Path, n: int) -> None:
    """``n`` more signals, fills (with orders) and risk events, as a long run leaves."""
    with Ledger.in_dir(run_dir) as ledger, ledger.transaction():
        conn = ledger.conn
        conn.executemany("insert into signals values (?, ?, ?, ?)",
                         ((f"s{i % 3}", "replay:BTC/USD", 10**12 + i, 1.0)
                          for i in range(n)))
        conn.executemany(
            "insert into orders (client_order_id, run_id, venue, instrument_id, side, "
            "quantity, order_type, time_in_force, strategy, ts_ns, status) values "
            "(?, 'r', 'replay', 'replay:BTC/USD', 'buy', '1', 'market', 'ioc', 't', ?, "
            "'filled')", ((f"bulk-{i}", i) for i in range(n)))
        conn.executemany(
            "insert into fills (fill_id, client_order_id, venue, instrument_id, side, price,"
            " quantity, fee, liquidity, ts_ns) values (?, ?, 'replay', 'replay:BTC/USD', "
            "'buy', '1', '1', '0', 'taker', ?)", ((f"bf-{i}", f"bulk-{i}", i)
                                                   for i in range(n)))
        conn.executemany("insert into risk_events (ts_ns, check_name, action, reason) values "
                         "(?, 'c', 'veto', 'r')", ((i,) for i in range(n)))


@contextmanager
def _counting_steps() -> Iterator[list[int]]:
    """SQLite's virtual-machine steps (in thousands) of every connection opened inside."""
    steps = [0]

    def hook(conn: apsw.Connection) -> None:
        def tick() -> bool:
            steps[0] += 1
            return False
        conn.set_progress_handler(tick, 1000)

    apsw.connection_hooks.append(hook)
    try:
        yield steps
    finally:
        apsw.connection_hooks.remove(hook)


def _quiet_poll_steps(run_dir: Path, n: int) -> int:
    _bulk(run_dir, n)
    apply_control(run_dir, "kill", "alice", "stop")  # never adopted: the run has ended
    cursor = LiveCursor(run_dir)
    cursor.poll()
    add_fill(run_dir, 1)  # something moved: the summary is sent again
    cursor.poll()
    with _counting_steps() as steps:
        for _ in range(3):
            cursor.poll()
        add_fill(run_dir, 2)
        changes = dict(cursor.poll())
    assert changes["summary"]["summary"]["fills"] == 16 + n + 2
    assert changes["summary"]["summary"]["orders"] > n
    assert changes["summary"]["summary"]["risk_events"] >= n
    return steps[0]


def test_a_poll_costs_the_same_on_a_long_ledger(finished_run_template: Path,
                                                tmp_path: Path) -> None:
    """Before: a poll of a ledger 100 times longer cost about 100 times the steps."""
    short, long = tmp_path / "short", tmp_path / "long"
    shutil.copytree(finished_run_template, short)
    shutil.copytree(finished_run_template, long)
    small = _quiet_poll_steps(short, 200)
    large = _quiet_poll_steps(long, 20_000)
    assert large <= small * 2 + 20, (small, large)


def test_the_signals_panel_shows_each_signals_latest_value(finished_run: Path) -> None:
    """The panel's query walks the index (one seek per signal), with the rows a grouping
    of the whole table gave."""
    with Ledger.in_dir(finished_run) as ledger, ledger.transaction():
        ledger.conn.executemany("insert into signals values (?, ?, ?, ?)", [
            ("a", "x", 1, 1.0), ("a", "x", 5, 5.0), ("a", "y", 2, 2.0), ("b", "x", 9, 9.0),
            ("b", "x", 3, 3.0), ("", "", 1, 0.5), ("a\x00", "x", 1, 7.0)])
    grouped = lv.reading(finished_run, lambda conn: lv.rows(
        conn, "select s.name, s.instrument_id, s.ts_ns, s.value from signals s join (select "
              "name, instrument_id, max(ts_ns) as ts from signals group by name, "
              "instrument_id) m on s.name = m.name and s.instrument_id = m.instrument_id "
              "and s.ts_ns = m.ts order by s.name, s.instrument_id"))
    assert lv.reading(finished_run, lv.signals) == grouped
    assert len(grouped) >= 5
