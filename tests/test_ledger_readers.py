"""A reader of a ledger another process writes waits out a brief lock instead of failing:
a WAL reader meets an exclusive lock whenever a writer's last connection closes (SQLite
checkpoints and removes the WAL) or recovers a killed writer's WAL, and a read-only
connection without a busy handler failed there with ``BusyError`` (a CI run's Telegram
test read the latch just as the bot's connection closed).  Every read-only connection in
the core and the first-party plugins is opened by ``argus_core.open_read_only``."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import apsw
import pytest

from argus_core import Ledger, open_read_only

ROOT = Path(__file__).resolve().parent.parent


def _locked_for(db: Path, seconds: float) -> None:
    """Hold an exclusive lock on ``db`` (a WAL ledger) for ``seconds``, as a closing
    writer does while it checkpoints: readers get SQLITE_BUSY until it is released."""
    writer = apsw.Connection(str(db))
    writer.execute("pragma locking_mode = exclusive")
    writer.execute("create table if not exists lock_probe (x)")
    writer.execute("insert into lock_probe values (1)")  # takes and keeps the lock
    threading.Timer(seconds, writer.close).start()


def _ledger(tmp_path: Path) -> Path:
    with Ledger.in_dir(tmp_path) as ledger:
        ledger.start_run("run-1", "paper", 7, "{}")
    return ledger.path


def test_a_reader_waits_out_a_writers_lock(tmp_path: Path) -> None:
    db = _ledger(tmp_path)
    _locked_for(db, 0.3)
    started = time.monotonic()
    conn = open_read_only(db)
    try:
        rows = list(conn.execute("select run_id from runs"))
    finally:
        conn.close()
    assert rows == [("run-1",)]
    assert time.monotonic() - started >= 0.2  # it did wait for the lock


def test_the_attack_a_reader_without_the_wait_fails_on_the_same_lock(tmp_path: Path) -> None:
    """What the helper guards against is real: the same lock fails a bare read-only
    connection at once (so the test above would fail if the wait were dropped)."""
    db = _ledger(tmp_path)
    _locked_for(db, 0.3)
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        with pytest.raises(apsw.BusyError):
            list(conn.execute("select run_id from runs"))
    finally:
        conn.close()
    time.sleep(0.4)


def test_a_reader_beside_a_writer_opening_and_closing_never_fails(tmp_path: Path) -> None:
    """The CI failure's shape: a process writes through short-lived connections (a bot
    command, ``argus kill``) while another reads; each close checkpoints under a lock."""
    db = _ledger(tmp_path)
    stop = threading.Event()
    writes = 0

    def write() -> None:
        nonlocal writes
        while not stop.is_set():
            with Ledger(db) as ledger:
                ledger.set_control("probe", str(writes), writes)
            writes += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        deadline = time.monotonic() + 1.0
        reads = 0
        while time.monotonic() < deadline:
            conn = open_read_only(db)
            try:
                list(conn.execute("select value from control where key = 'probe'"))
            finally:
                conn.close()
            reads += 1
    finally:
        stop.set()
        thread.join()
    assert reads > 100 and writes > 10


def test_every_read_only_connection_is_opened_by_the_helper() -> None:
    """No reader in the core or a first-party plugin opens SQLite read-only by hand (one
    that did would have no busy handler unless it remembered one)."""
    sources = [*ROOT.glob("argus_core/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]
    helper = ROOT / "argus_core" / "ledger.py"
    bad = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "SQLITE_OPEN_READONLY" \
                    and path != helper:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "open these with argus_core.open_read_only:\n" + "\n".join(bad)


def test_fills_at_one_stamp_come_in_the_order_they_were_booked(tmp_path: Path) -> None:
    """``Ledger.fills`` ordered fills of one stamp by their id as text, so ``run-10`` came
    before ``run-9`` (and ``settle-...`` before a run's own ids): a buy then a sell at one
    stamp read as the sell first, which reverses a round trip's side in the metrics."""
    from decimal import Decimal

    from argus_core import Fill, Liquidity, Order, Side

    with Ledger.in_dir(tmp_path) as ledger, ledger.transaction():
        ledger.start_run("run-1", "paper", 7, "{}")
        for n, side in ((9, Side.BUY), (10, Side.SELL)):
            ledger.insert_order(Order(f"o{n}", "v", "v:X", side, Decimal(1), ts_ns=5), "r")
            ledger.insert_fill(Fill(f"run-{n}", f"o{n}", "v", "v:X", side, Decimal(1),
                                    Decimal(1), Decimal(0), Liquidity.TAKER, 5))
        assert [f["fill_id"] for f in ledger.fills()] == ["run-9", "run-10"]


# -- a finished run's folder is left as it was ---------------------------------------------
def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_reading_a_finished_run_leaves_no_wal_or_shm(tmp_path: Path) -> None:
    """A read-only connection to a WAL ledger whose writer closed made ``-wal`` and
    ``-shm`` files and never removed them: every report, export and check of a finished
    run left two files in its folder (the demo showed them)."""
    from argus_core import check_run_ledger, ledger_tables, read_untouched

    _ledger(tmp_path)
    before = _files(tmp_path)
    assert before == ["argus.db"]
    check_run_ledger(tmp_path)
    ledger_tables(tmp_path / "argus.db")
    runs = Ledger.reading(tmp_path, lambda ledger: ledger.query("select run_id from runs"))
    assert [r["run_id"] for r in runs] == ["run-1"]
    assert read_untouched(tmp_path / "argus.db",
                          lambda conn: list(conn.execute("select run_id from runs"))) \
        == [("run-1",)]
    assert _files(tmp_path) == before


def test_a_writer_that_comes_during_the_read_makes_it_read_again(tmp_path: Path) -> None:
    """An immutable read takes no lock: a writer that checkpoints into the file under it
    could tear it, so the read is kept only when the file is untouched after it; here a
    writer comes and writes during the first read, and the answer is the second's, read
    beside the writer (which sees its newest row)."""
    _ledger(tmp_path)
    calls: list[bool] = []

    def read(ledger: Ledger) -> list[str]:
        if not calls:  # the first read: a writer comes and commits meanwhile
            with Ledger.in_dir(tmp_path) as writer:
                writer.set_control("probe", "during", 1)
        calls.append(True)
        return [r["value"] for r in ledger.query(
            "select value from control where key = 'probe'")]

    assert Ledger.reading(tmp_path, read) == ["during"]
    assert len(calls) == 2


def test_a_live_writers_rows_in_its_wal_are_read(tmp_path: Path) -> None:
    """While a writer is open its newest commits live in the ``-wal`` file, which an
    immutable read would not see: with a ``-wal`` there the read goes beside it."""
    _ledger(tmp_path)
    with Ledger.in_dir(tmp_path) as writer:
        writer.set_control("probe", "live", 1)
        seen = Ledger.reading(tmp_path, lambda ledger: ledger.query(
            "select value from control where key = 'probe'"))
    assert [r["value"] for r in seen] == ["live"]


def test_a_restart_hands_a_venue_the_fills_of_its_orders_whatever_venue_they_name(
        tmp_path: Path) -> None:
    """A composite's inner venue (Kalshi) books fills under its own name beside orders the
    run books under the composite's (``multivenue``): a restart's ``venue_resume`` read
    fills by venue only, found none, and the inner venue re-reported a taker fill under
    another id (booked twice) and backfilled from its first order."""
    from decimal import Decimal

    from argus_core import Fill, Liquidity, Order, Side

    with Ledger.in_dir(tmp_path) as ledger, ledger.transaction():
        ledger.start_run("run-1", "live", 7, "{}")
        ledger.insert_order(Order("o1", "multivenue", "kalshi:X", Side.BUY, Decimal(2),
                                  ts_ns=5), "run-1")
        ledger.insert_fill(Fill("t-1", "o1", "kalshi", "kalshi:X", Side.BUY, Decimal("0.4"),
                                Decimal(2), Decimal("0.01"), Liquidity.TAKER, 9))
        ledger.insert_order(Order("other", "kalshi", "kalshi:Y", Side.BUY, Decimal(1),
                                  ts_ns=10), "run-1")  # another venue's order and fill
        ledger.insert_fill(Fill("t-9", "other", "kalshi", "kalshi:Y", Side.BUY,
                                Decimal("0.4"), Decimal(1), Decimal(0), Liquidity.TAKER, 11))
        resume = ledger.venue_resume("multivenue")
    assert resume.fill_ids == {"t-1": "o1"} and resume.fill_fees == {"t-1": Decimal("0.01")}
    assert resume.newest_fill_ts_ns == 9
