"""The run ledger: one SQLite file (``argus.db``) per run directory, through apsw.

Durability: WAL journal with ``synchronous=FULL``, so every committed
transaction (an order before it is sent, its fills, a checkpoint) survives a
crash, SIGKILL or power loss.  A replay relaxes it to ``NORMAL`` while it runs
(:meth:`Ledger.set_commit_sync`): its commits survive a crash or SIGKILL all the same,
and a power loss can only take back its last few commits, each atomic with its
checkpoint, which the resumed replay re-derives; its final commit is FULL again.
Money is stored as exact decimal text.  All writes go through explicit transactions
(:meth:`Ledger.transaction`); nothing auto-commits half of a change.

Deferred rows (``defer_writes``, set by a replay, whose rows only need to be durable
with its checkpoint): order, fill and position rows are kept in memory (an order's later
status changes update its row there) and written with one ``executemany`` each when the
transaction commits, or before any read through this class could miss them; a rollback
drops them with the rest of the transaction.  An order row is still written before the
order is sent: into the open transaction's buffer, committed with the checkpoint that
covers the event that sent it, exactly as the rows it replaced.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast

import apsw

from argus_core.errors import DataError, LedgerError
from argus_core.migrations import Migrations
from argus_core.models import (
    Fill,
    KnownOrder,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    VenueResume,
)
from argus_core.secrets import redact, redact_revealed
from argus_core.serde import check_depth, loads_frame

log = logging.getLogger(__name__)
LEDGER_FILE = "argus.db"
#: How a run can end (``runs.status``; ``running`` while it runs).
RUN_ENDS = ("finished", "stopped", "failed")

#: The core's ``orders`` columns, as a deferred order row holds them.
ORDER_COLUMNS = ("client_order_id", "run_id", "venue", "instrument_id", "side", "quantity",
                 "limit_price", "order_type", "time_in_force", "strategy", "ts_ns", "status",
                 "basket_id", "reduce_only", "filled_quantity", "venue_order_id",
                 "status_reason", "reason", "decision_price", "arrival_price",
                 "arrival_spread")
_STATUS, _BASKET, _FILLED, _VENUE_ID, _STATUS_REASON = (ORDER_COLUMNS.index(c) for c in (
    "status", "basket_id", "filled_quantity", "venue_order_id", "status_reason"))
_INSERT_ORDERS = (f"insert into orders ({', '.join(ORDER_COLUMNS)}) values "
                  f"({','.join('?' * len(ORDER_COLUMNS))})")
_INSERT_ORDER_ONCE = _INSERT_ORDERS.replace("insert", "insert or ignore", 1)


#: What reading a damaged row raises (text where a number belongs, a NULL, an unknown
#: status or side, JSON that is not JSON or nests past the recursion limit).
_DAMAGE = (ValueError, ArithmeticError, TypeError, KeyError, RecursionError, DataError)
_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


def _reads(table: str) -> Callable[[_F], _F]:
    """A reader of ``table`` meeting a row it cannot read raises a ``LedgerError`` naming
    the file, the table, the call and the value (it was a traceback from deep inside a
    resumed run: ``InvalidOperation [<class 'decimal.ConversionSyntax'>]``)."""
    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def reader(self: Ledger, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except _DAMAGE as exc:
                why = "a number out of range" if type(exc).__module__ == "decimal" else exc
                raise LedgerError(f"{self.path}: a damaged {table} row ({fn.__name__}"
                                  f"{args!r:.80}): {why}") from None
        return cast(_F, reader)
    return wrap


def _dec(text: Any) -> Decimal:
    """A stored amount's text as a finite Decimal; ValueError naming it when it is none."""
    try:
        value = Decimal(text)
    except (ArithmeticError, TypeError, ValueError):
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValueError(f"{str(text)[:40]!r} is not a decimal number")
    return value


def core_migrations(migrations: Migrations) -> None:
    """The core's schema (migration set ``core``)."""
    core = migrations.set("core")

    @core
    def m001_initial(conn: apsw.Connection) -> None:
        conn.execute("""
        create table runs (
            run_id text primary key, mode text not null, seed integer not null,
            config_json text not null, config_hash text not null,
            status text not null, started_ns integer not null, ended_ns integer);
        create table orders (
            client_order_id text primary key, run_id text not null, venue text not null,
            instrument_id text not null, side text not null, quantity text not null,
            limit_price text, order_type text not null, time_in_force text not null,
            strategy text not null, ts_ns integer not null, status text not null,
            basket_id text, reduce_only integer not null default 0,
            filled_quantity text not null default '0', venue_order_id text);
        create index orders_status on orders(status);
        create table fills (
            fill_id text primary key, client_order_id text not null
                references orders(client_order_id),
            venue text not null, instrument_id text not null, side text not null,
            price text not null, quantity text not null, fee text not null,
            liquidity text not null, ts_ns integer not null);
        create index fills_order on fills(client_order_id);
        create table positions (
            instrument_id text primary key, quantity text not null, avg_price text not null,
            realized_pnl text not null, ts_ns integer not null);
        create table equity (
            ts_ns integer primary key, cash text not null, equity text not null,
            gross_exposure text not null);
        create table opportunities (
            opportunity_id text primary key, scanner text not null, ts_ns integer not null,
            kind text not null, expected_profit text not null, risk_free integer not null,
            status text not null, body_json text not null);
        create table risk_events (
            id integer primary key autoincrement, ts_ns integer not null,
            check_name text not null, action text not null, reason text not null,
            instrument_id text, strategy text, intent_json text);
        create table checkpoints (
            name text primary key, seq integer not null, ts_ns integer not null,
            state_json text not null);
        create table signals (
            name text not null, instrument_id text not null, ts_ns integer not null,
            value real not null, primary key (name, instrument_id, ts_ns));
        create table control (
            key text primary key, value text not null, ts_ns integer not null);
        """)

    @core
    def m002_order_status_reason(conn: apsw.Connection) -> None:
        # Why an order ended as it did (the venue's cancel/expiry/reject reason).
        conn.execute("alter table orders add column status_reason text")

    @core
    def m003_order_costs(conn: apsw.Connection) -> None:
        # What transaction-cost analysis measures fills against (see Order).
        conn.execute("alter table orders add column reason text not null default '';"
                     "alter table orders add column decision_price text;"
                     "alter table orders add column arrival_price text;"
                     "alter table orders add column arrival_spread text")

    @core
    def m004_book_equity(conn: apsw.Connection) -> None:
        # Each strategy slot's book (see argus_core.account), when a run keeps several.
        conn.execute("create table book_equity (ts_ns integer not null, slot text not null,"
                     " cash text not null, equity text not null, primary key (slot, ts_ns))")

    @core
    def m005_run_config_path(conn: apsw.Connection) -> None:
        # The config file's path: relative data paths in config_json resolve against it.
        conn.execute("alter table runs add column config_path text")

    @core
    def m006_control_log(conn: apsw.Connection) -> None:
        # Every control write, kept: `control` holds only the latest value per key, and
        # an audit must say who killed or resumed a run, from where, and when.
        conn.execute("create table control_log (id integer primary key autoincrement,"
                     " key text not null, value text not null, ts_ns integer not null)")

    @core
    def m007_book_equity_clustered(conn: apsw.Connection) -> None:
        # The books' rows stored in their key's order (slot, ts_ns): one b-tree instead of
        # a rowid table plus its key's index (a replay writes a row per book and
        # timestamp: ~20% cheaper each), and a book read back is one contiguous range in
        # time order (was: the whole table scanned and filtered per book, then sorted).
        conn.execute("create table book_equity_m007 (ts_ns integer not null, slot text not"
                     " null, cash text not null, equity text not null,"
                     " primary key (slot, ts_ns)) without rowid;"
                     "insert into book_equity_m007 (ts_ns, slot, cash, equity)"
                     " select ts_ns, slot, cash, equity from book_equity;"
                     "drop table book_equity;"
                     "alter table book_equity_m007 rename to book_equity")

    @core
    def m008_fill_corrections(conn: apsw.Connection) -> None:
        # A venue's corrections of booked fills (a final fee, a bust), append-only: the
        # fills row holds the corrected fee, this says what it was, when and why.
        conn.execute("create table fill_corrections (id integer primary key autoincrement,"
                     " fill_id text not null, kind text not null, ts_ns integer not null,"
                     " old_value text not null, new_value text not null, reason text not null);"
                     "create index fill_corrections_fill on fill_corrections(fill_id)")

    @core
    def m009_book_equity_changes(conn: apsw.Connection) -> None:
        # A book's row is stored only when its cash or equity moved (a book per symbol
        # wrote one row per event, half of them a flat book's same text): the table is
        # book_equity_changes, and book_equity a view carrying each book's last row onto
        # every equity row (and its own rows' times) from its first on, the rows the
        # table held when every book was written at every equity row.
        last = ("(select c.{0} from book_equity_changes c where c.slot = t.slot and "
                "c.ts_ns <= t.ts_ns order by c.ts_ns desc limit 1) as {0}")
        conn.execute("alter table book_equity rename to book_equity_changes;"
                     "create view book_equity as with firsts as (select slot, min(ts_ns) as"
                     " since from book_equity_changes group by slot), stamps as (select"
                     " f.slot as slot, e.ts_ns as ts_ns from equity e join firsts f on"
                     " e.ts_ns >= f.since union select slot, ts_ns from book_equity_changes)"
                     f" select t.ts_ns as ts_ns, t.slot as slot, {last.format('cash')},"
                     f" {last.format('equity')} from stamps t;"
                     # rows inserted into the view as into the table it was are stored
                     "create trigger book_equity_insert instead of insert on book_equity"
                     " begin insert or replace into book_equity_changes (ts_ns, slot, cash,"
                     " equity) values (new.ts_ns, new.slot, new.cash, new.equity); end")

    @core
    def m010_book_rows(conn: apsw.Connection) -> None:
        # The books that moved at one time are one row, ``books`` a JSON object
        # {slot: [cash, equity]}, appended in time order: a row per book and time, keyed
        # (slot, ts_ns), cost ~2.5 us each (every commit rewrote a page per book), a
        # book per symbol 1.16x the cost per event of one symbol.  ``book_equity_changes``
        # (the stored rows) and ``book_equity`` (every book carried onto every equity
        # row) are views of the rows they held, and take inserts as they did.
        rows = ("select b.ts_ns as ts_ns, j.key as slot, j.value ->> 0 as cash,"
                " j.value ->> 1 as equity from book_rows b, json_each(b.books) j")
        # The carry as one sort (the m009 view looked each row up: ~1 us a row):
        # ``run`` numbers a book's stored rows, a stamp takes its run's first (stored) row.
        carried = (f"with c as ({rows}), f as (select slot, min(ts_ns) as since from c group"
                   " by slot), s as (select slot, ts_ns, cash, equity, 1 as own from c union"
                   " all select f.slot, e.ts_ns, null, null, 0 from equity e join f on"
                   " e.ts_ns >= f.since), g as (select *, sum(own) over (partition by slot"
                   " order by ts_ns, own desc rows unbounded preceding) as run, row_number()"
                   " over (partition by slot, ts_ns order by own desc) as dup from s)"
                   " select ts_ns, slot, first_value(cash) over w as cash, first_value(equity)"
                   " over w as equity from g where dup = 1 window w as (partition by slot,"
                   " run order by ts_ns, own desc)")
        store = ("begin select raise(abort, 'NOT NULL constraint failed: {0}') where"
                 " new.ts_ns is null or new.slot is null or new.cash is null or new.equity"
                 " is null; insert into book_rows (ts_ns, books) values (new.ts_ns,"
                 " json_object(cast(new.slot as text), json_array(cast(new.cash as text),"
                 " cast(new.equity as text)))) on conflict (ts_ns) do update set books ="
                 " json_patch(books, excluded.books); end")
        conn.execute("create table book_rows (ts_ns integer primary key, books text not null);"
                     "insert into book_rows (ts_ns, books) select ts_ns, json_group_object("
                     "slot, json_array(cash, equity)) from book_equity_changes group by ts_ns;"
                     "drop view book_equity; drop table book_equity_changes;"
                     f"create view book_equity_changes as {rows};"
                     f"create view book_equity as {carried};"
                     "create trigger book_equity_changes_insert instead of insert on"
                     f" book_equity_changes {store.format('book_equity_changes')};"
                     "create trigger book_equity_insert instead of insert on book_equity"
                     f" {store.format('book_equity')}")


@functools.cache
def core_names() -> frozenset[str]:
    """Every table, view, index and trigger the core's migrations make (built once, in
    memory): another set's migrations may read them, never write or alter them."""
    conn = apsw.Connection(":memory:")
    core = Migrations()
    core_migrations(core)
    core.apply(conn)
    return frozenset(str(n) for (n,) in conn.execute("select name from sqlite_master"))


def _refuse_headless(path: Path, what: str = "an Argus ledger") -> None:
    """SQLite refuses a file without its header ("file is not a database") before
    writing, except a one-byte file, which it took for an empty database and wrote a
    ledger over: refused alike here, in SQLite's words."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return  # not there yet (or unreadable: SQLite says so when it opens it)
    if head and head != b"SQLite format 3\x00":
        raise LedgerError(f"{path} cannot be used: NotADBError: file is not a database (a "
                          f"damaged file, or not {what})")


def _wait_for_lock(tries: int) -> bool:
    """SQLite's busy handler for ledger connections: try again every 2 ms, for up to 5 s.
    (SQLite's own timeout backs off to one try in 100 ms, and a busy loop frees the lock
    only a moment each second: a person's `argus kill` was starved.)"""
    time.sleep(0.002)
    return tries < 2_500


def open_read_only(path: Path | str, busy_timeout_ms: int = 5000, *,
                   immutable: bool = False) -> apsw.Connection:
    """A read-only connection to the SQLite file ``path`` (nothing is created or written)
    that waits up to ``busy_timeout_ms`` for a lock instead of failing at once.  A WAL
    reader meets a lock whenever a writer's last connection closes (SQLite checkpoints and
    removes the WAL under an exclusive lock: every ``argus kill``, bot command or CLI
    write does it) or recovers the WAL a killed process left; without a wait such a read
    fails with ``BusyError`` (it did, about one read in 200 beside a writer opening and
    closing).  Every reader of a ledger another process may write opens it here.
    ``immutable``: the file as it is, no lock taken and no ``-wal``/``-shm`` made (a WAL
    reader's are never removed), for a caller that checks no writer came meanwhile."""
    path = Path(path)
    wal = path.with_name(f"{path.name}-wal")
    if not immutable and (os.access(path.parent, os.W_OK)
                          or (wal.exists() and wal.stat().st_size)):
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    else:  # a read-only mount: no writer, and no -shm file a WAL reader could make there
        conn = apsw.Connection(f"{path.resolve().as_uri()}?immutable=1",
                               flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    conn.set_busy_timeout(busy_timeout_ms)
    return conn


def read_untouched(path: Path, read: Callable[[apsw.Connection], _T],
                   busy_timeout_ms: int = 5000) -> _T:
    """``read(connection)`` on the SQLite file ``path``, read-only, leaving the folder as
    it was.  A read-only connection to a WAL database whose writer has closed (a finished
    run) makes ``-wal`` and ``-shm`` files and, unable to checkpoint, never removes them;
    so while no ``-wal`` file exists the file is read ``immutable`` (no lock, no file
    made) and the read is kept only when no writer came meanwhile: still no ``-wal`` and
    the file's inode, size and time unchanged.  Otherwise (a writer is there, or came) it
    is read again through :func:`open_read_only`, beside its WAL."""
    def attempt(immutable: bool) -> _T:
        with contextlib.closing(open_read_only(path, busy_timeout_ms,
                                               immutable=immutable)) as conn:
            return read(conn)
    return read_quietly(path, attempt)


def read_quietly(path: Path, read: Callable[[bool], _T]) -> _T:
    """``read(immutable)``, first with ``immutable=True`` while ``path`` has no ``-wal``
    file, kept when no writer came meanwhile (see :func:`read_untouched`), else again with
    ``immutable=False``.  For a reader holding more than a connection (a read-only
    :class:`Ledger`)."""
    wal = path.with_name(f"{path.name}-wal")
    if not wal.exists():
        before = _stamp(path)
        try:
            result, error = read(True), None
        except (apsw.Error, LedgerError) as exc:  # damaged, or torn by a checkpoint
            result, error = None, exc
        if not wal.exists() and _stamp(path) == before:
            if error is not None:
                raise error
            return cast(_T, result)
    return read(False)


def _stamp(path: Path) -> tuple[int, int, int]:
    """What a writer's checkpoint into ``path`` changes: its inode, size and time."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def ledger_tables(path: Path, what: str = "an Argus ledger") -> set[str]:
    """The tables of the SQLite file ``path``, read without writing anything (an empty
    file has none); a ``LedgerError`` naming it when it is no database (damaged, another
    kind of file: ``what`` says what it should have been)."""
    _refuse_headless(path, what)
    try:
        return read_untouched(path, lambda conn: {str(name) for (name,) in conn.execute(
            "select name from sqlite_master where type = 'table'")})
    except apsw.Error as exc:
        raise LedgerError(f"{path} cannot be used: {type(exc).__name__}: {exc} (a damaged "
                          f"file, or not {what})") from None


def check_run_ledger(run_dir: Path, hint: str = "pass the run directory `argus run` or "
                                                 "`argus backtest` wrote") -> set[str]:
    """The tables of ``run_dir``'s run ledger, read without writing anything; a
    ``LedgerError`` naming the path and what is wrong when there is none (missing, a
    folder, a damaged or a foreign file), ``hint`` saying what to pass instead.  For a
    plugin that reads a run's ledger on a connection of its own (a report, a server, a
    reconciliation) and must never create or migrate one."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.is_file():
        what = (f"{path}: is a directory, not a ledger file" if path.is_dir()
                else f"{run_dir}: no run ledger ({LEDGER_FILE}) here")
        raise LedgerError(f"{what}; {hint}")
    tables = ledger_tables(path)
    if "runs" not in tables:
        raise LedgerError(f"{path} cannot be used: not an Argus ledger (it has no runs table)")
    return tables


def _behind(path: Path) -> bool:
    """Whether the ledger at ``path`` lacks a core migration this version has."""
    known = Migrations()
    core_migrations(known)
    done = read_untouched(path, lambda conn: {n for (n,) in conn.execute(
        "select name from _argus_migrations where migration_set = 'core'")})
    return any(name not in done for name, _ in known.sets["core"].migrations)


class Ledger:
    """An open run ledger.  Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path, migrations: Migrations | None = None, *,
                 read_only: bool = False, immutable: bool = False) -> None:
        self.path = Path(path)
        _refuse_headless(self.path)
        try:
            if read_only:  # its readers work, a write raises (see :meth:`in_dir`)
                self.conn = open_read_only(self.path, immutable=immutable)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = apsw.Connection(str(self.path))
        except (apsw.Error, OSError) as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from None
        self.conn.setbusyhandler(_wait_for_lock)
        #: Buffer order, fill and position rows until the commit (see the module docstring).
        self.defer_writes = False
        self._orders: dict[str, list[Any]] = {}  # ORDER_COLUMNS values, by client id
        self._fills: list[tuple[Any, ...]] = []
        self._positions: dict[str, tuple[Any, ...]] = {}
        # The last status written by set_order_status: the same write again is skipped.
        self._status_written: tuple[Any, ...] | None = None
        self._order_columns: tuple[str, ...] | None = None
        self._redacted_checkpoints: set[str] = set()  # said once each (save_checkpoint)
        self.applied: list[str] = []
        if read_only:
            return
        migrations = migrations or Migrations()
        if "core" in migrations.sets:  # it would run before (or in place of) the core's
            self.conn.close()
            raise LedgerError(f"{self.path}: a plugin registered migrations in the set "
                              f"'core', which is the core's own; nothing was changed")
        core_migrations(migrations)
        # The core's set must run first: move it to the front.
        migrations.sets = {"core": migrations.sets.pop("core"), **migrations.sets}
        try:
            tables = {n for (n,) in self.conn.execute(
                "select name from sqlite_master where type = 'table'")}
            if tables and "_argus_migrations" not in tables:  # never write into it
                raise LedgerError(f"not an Argus ledger (it holds other tables: "
                                  f"{', '.join(sorted(tables)[:5])}); nothing was changed")
            self._enable_wal()
            self.conn.execute("pragma synchronous=full")
            self.conn.execute("pragma foreign_keys=on")
            self.applied = migrations.apply(self.conn, core_names)
        except (apsw.Error, LedgerError) as exc:
            self.conn.close()
            if isinstance(exc, LedgerError):
                raise LedgerError(f"{self.path}: {exc}") from None
            if isinstance(exc, apsw.BusyError):  # a writer held the lock past the wait
                raise LedgerError(f"{self.path} is busy: another process held its write lock "
                                  f"for over 5 s; nothing was written, try again") from None
            raise LedgerError(f"{self.path} cannot be used: {type(exc).__name__}: {exc} "
                              f"(a damaged file, or not an Argus ledger)") from None

    def _enable_wal(self) -> None:
        # Switching a new file to WAL needs an exclusive lock, and SQLite answers BUSY at
        # once (no busy handler) when another process is opening the same new ledger.
        for _ in range(100):
            try:
                self.conn.execute("pragma journal_mode=wal")
                return
            except apsw.BusyError:
                time.sleep(0.05)
        raise LedgerError(f"{self.path}: locked by another process for 5 s while opening")

    def set_commit_sync(self, *, full: bool) -> None:
        """``synchronous=FULL`` (each commit fsyncs the WAL) or ``NORMAL`` (commits reach
        the OS at once, the disk at the next WAL checkpoint or FULL commit; a power loss
        can drop the newest commits, never half of one).  Outside a transaction only."""
        self.conn.execute(f"pragma synchronous={'full' if full else 'normal'}")

    def sync_wal(self) -> None:
        """Make every commit so far durable now (fsync the WAL), whatever the setting."""
        wal = Path(f"{self.path}-wal")
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(wal, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @classmethod
    def in_dir(cls, run_dir: Path, migrations: Migrations | None = None, *,
               read_only: bool = False, immutable: bool = False) -> Ledger:
        """Open ``run_dir/argus.db``.  ``read_only``: a run's ledger as it is, for a reader
        (a report): checked first (:func:`check_run_ledger`: a missing, zero-byte or foreign
        file is refused, never made a ledger), never migrated, and read beside its writer
        without waiting for its write lock.  ``immutable`` (with ``read_only``): see
        :meth:`reading`, the way to ask for it."""
        path = Path(run_dir) / LEDGER_FILE
        if read_only:  # (a ledger older than this core is migrated first, as any open does)
            read_only = "_argus_migrations" in check_run_ledger(run_dir) and not _behind(path)
        return cls(path, migrations, read_only=read_only, immutable=read_only and immutable)

    @classmethod
    def reading(cls, run_dir: Path, read: Callable[[Ledger], _T]) -> _T:
        """``read(ledger)`` on ``run_dir``'s ledger opened read-only (:meth:`in_dir`),
        leaving the run's folder as it was: a finished run's ledger is read immutably and
        the read done again beside the writer if one came meanwhile (:func:`read_quietly`;
        a read-only connection left ``-wal`` and ``-shm`` files in every finished run a
        report or an export read).  ``read`` may run twice: it must only read."""
        def attempt(immutable: bool) -> _T:
            with cls.in_dir(run_dir, read_only=True, immutable=immutable) as ledger:
                return read(ledger)
        return read_quietly(Path(run_dir) / LEDGER_FILE, attempt)

    def close(self) -> None:
        """Checkpoint the WAL and close."""
        with contextlib.suppress(apsw.Error):
            self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic helpers -------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        """An explicit transaction: everything inside commits together or not at all."""
        with self.conn:
            yield self.conn

    @contextlib.contextmanager
    def immediate(self) -> Iterator[None]:
        """A write transaction taken at once (:meth:`begin`), committed at the end and
        abandoned on an error; inside one already open (a running loop's own
        connection), part of that one.  For a read that decides a write another
        process may race (a person's command)."""
        if self.in_transaction:
            yield
            return
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on this connection."""
        return bool(self.conn.in_transaction)

    def begin(self) -> None:
        """Open a write transaction at once.  IMMEDIATE takes the write lock up front: a
        deferred transaction that read first could not write after another connection (a
        CLI command) committed meanwhile."""
        self.conn.execute("begin immediate")

    def commit(self) -> None:
        """Commit the open transaction (with the deferred rows)."""
        self.flush()
        self.conn.execute("commit")

    def rollback(self) -> None:
        """Abandon the open transaction (and the deferred rows)."""
        self._orders, self._fills, self._positions, self._status_written = {}, [], {}, None
        self.conn.execute("rollback")

    def flush(self) -> None:
        """Write the deferred order, fill and position rows now (inside the open
        transaction; orders first: a fill refers to its order)."""
        self._flush_orders()
        if self._fills:
            self.conn.executemany("insert into fills values (?,?,?,?,?,?,?,?,?,?)", self._fills)
            self._fills = []
        if self._positions:
            self.conn.executemany("insert or replace into positions values (?,?,?,?,?)",
                                  self._positions.values())
            self._positions = {}

    def _flush_orders(self) -> None:
        """Write the deferred order rows (before any read of the orders table)."""
        if self._orders:
            self.conn.executemany(_INSERT_ORDERS, self._orders.values())
            self._orders = {}

    # -- runs ----------------------------------------------------------------------
    def start_run(self, run_id: str, mode: str, seed: int, config_json: str,
                  config_path: str | None = None) -> None:
        """Mark ``run_id`` running (a new row, or a resumed one); refuses a directory that
        holds a run of another config."""
        rows = self.query("select run_id from runs")
        if rows and rows[0]["run_id"] != run_id:
            raise LedgerError(f"{self.path.parent} holds a run of a different config "
                              f"(run {rows[0]['run_id']}); use a new --run-dir")
        with self.transaction():
            if rows:
                self.conn.execute("update runs set status = 'running' where run_id = ?",
                                  (run_id,))
            else:
                self.insert("runs", {"run_id": run_id, "mode": mode, "seed": seed,
                                     "config_json": config_json, "config_hash": run_id,
                                     "status": "running", "started_ns": time.time_ns(),
                                     "config_path": config_path})

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        """Mark ``run_id`` ended: ``finished`` (its data ran out, or its event limit),
        ``stopped`` (Ctrl-C, cancelled) or ``failed`` (an error ended it); a resumed run
        is ``running`` again."""
        if status not in RUN_ENDS:
            raise LedgerError(f"finish_run: status {status!r} is not one of {RUN_ENDS}")
        with self.transaction():
            self.conn.execute("update runs set status = ?, ended_ns = ? where run_id = ?",
                              (status, time.time_ns(), run_id))

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts (deferred rows written first: the SQL may read them)."""
        self.flush()
        cursor = self.conn.execute(sql, params)
        try:
            names = [d[0] for d in cursor.getdescription()]
        except apsw.ExecutionCompleteError:
            return []
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def insert(self, table: str, row: dict[str, Any], *, replace: bool = False) -> None:
        """Insert one row (``replace`` upserts on the primary key)."""
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        verb = "insert or replace" if replace else "insert"
        self.conn.execute(f"{verb} into {table} ({cols}) values ({marks})",
                          [_sql(v) for v in row.values()])

    # -- orders and fills ----------------------------------------------------------
    def insert_order(self, order: Order, run_id: str) -> bool:
        """Persist ``order`` before it is sent; False when that client id already exists
        (idempotency: a resumed run re-deriving the same order id sends nothing twice)."""
        coid = order.client_order_id
        # ORDER_COLUMNS' values: not yet filled, no venue id, no status reason
        row = [coid, run_id, order.venue, order.instrument_id, order.side.value,
               str(order.quantity), _sql(order.limit_price), order.order_type.value,
               order.time_in_force.value, order.strategy, order.ts_ns, order.status.value,
               order.basket_id, int(order.reduce_only), "0", None, None,
               redact(order.reason) if order.reason else order.reason,
               _sql(order.decision_price), _sql(order.arrival_price),
               _sql(order.arrival_spread)]
        if self.defer_writes:
            if self.order_exists(coid):  # the buffer, then the table
                return False
            self._orders[coid] = row
            return True
        self.conn.execute(_INSERT_ORDER_ONCE, row)
        return self.conn.changes() == 1

    def order_exists(self, client_order_id: str) -> bool:
        """Whether an order with this client id was ever persisted."""
        return client_order_id in self._orders or bool(self.conn.execute(
            "select 1 from orders where client_order_id = ?", (client_order_id,)).fetchall())

    def set_order_status(self, client_order_id: str, status: OrderStatus,
                         filled_quantity: Decimal | None = None, reason: str | None = None
                         ) -> None:
        """Update an order's status (and cumulative filled quantity, and why).  The very
        write this method made last, asked for again before anything else was written on
        this connection, is skipped (booking a paper fill writes the status, and the
        order path then asks for the same)."""
        filled = None if filled_quantity is None else str(filled_quantity)
        if reason:  # a venue's words: an exception's text may echo a key or a signed URL
            reason = redact(reason)
        row = self._orders.get(client_order_id)
        if row is not None:  # deferred: its row changes in memory
            row[_STATUS] = status.value
            if filled is not None:
                row[_FILLED] = filled
            if reason is not None:
                row[_STATUS_REASON] = reason
            return
        written = (client_order_id, status, filled, reason)
        if self._status_written == (*written, self.conn.total_changes()):
            return
        if reason is not None:
            self.conn.execute("update orders set status_reason = ? where client_order_id = ?",
                              (reason, client_order_id))
        if filled_quantity is None:
            self.conn.execute("update orders set status = ? where client_order_id = ?",
                              (status.value, client_order_id))
        else:
            self.conn.execute("update orders set status = ?, filled_quantity = ? "
                              "where client_order_id = ?",
                              (status.value, filled, client_order_id))
        self._status_written = (*written, self.conn.total_changes())

    def move_order_status(self, client_order_id: str, status: OrderStatus,
                          from_: Sequence[OrderStatus], reason: str | None = None) -> None:
        """Set ``status`` (and why) only while the order is in one of ``from_``: news that
        arrives late never undoes what the ledger already knows."""
        if reason:
            reason = redact(reason)
        row = self._orders.get(client_order_id)
        if row is not None:  # deferred: as the SQL below, in memory
            if row[_STATUS] in {s.value for s in from_}:
                row[_STATUS] = status.value
                if reason is not None:
                    row[_STATUS_REASON] = reason
            return
        marks = ",".join("?" * len(from_))
        self.conn.execute(
            f"update orders set status = ?, status_reason = coalesce(?, status_reason) "
            f"where client_order_id = ? and status in ({marks})",
            (status.value, reason, client_order_id, *(s.value for s in from_)))

    def insert_fill(self, fill: Fill) -> None:
        """One row per fill."""
        row = (fill.fill_id, fill.client_order_id, fill.venue, fill.instrument_id,
               fill.side.value, str(fill.price), str(fill.quantity), str(fill.fee),
               fill.liquidity.value, fill.ts_ns)
        if self.defer_writes:
            self._fills.append(row)
        else:
            self.conn.execute("insert into fills values (?,?,?,?,?,?,?,?,?,?)", row)

    def upsert_position(self, position: Position, ts_ns: int) -> None:
        """Store the latest position of an instrument."""
        row = (position.instrument_id, str(position.quantity), str(position.avg_price),
               str(position.realized_pnl), ts_ns)
        if self.defer_writes:
            self._positions[position.instrument_id] = row
        else:
            self.conn.execute("insert or replace into positions values (?,?,?,?,?)", row)

    def order_row(self, client_order_id: str) -> dict[str, Any] | None:
        """The order's row, or None when the ledger does not know the id."""
        # Not through query(): only deferred orders need writing first, not fills; its
        # column names are read once (booking a fill asks for its order's row).
        self._flush_orders()
        cursor = self.conn.execute("select * from orders where client_order_id = ?",
                                   (client_order_id,))
        if self._order_columns is None:
            try:
                self._order_columns = tuple(d[0] for d in cursor.getdescription())
            except apsw.ExecutionCompleteError:
                return None  # no such order
        rows = cursor.fetchall()
        return dict(zip(self._order_columns, rows[0], strict=True)) if rows else None

    @_reads("orders")
    def order_status(self, client_order_id: str) -> OrderStatus | None:
        """The order's status, or None when the ledger does not know the id."""
        row = self._orders.get(client_order_id)
        if row is not None:
            return OrderStatus(row[_STATUS])
        rows = self.conn.execute("select status from orders where client_order_id = ?",
                                 (client_order_id,)).fetchall()
        return OrderStatus(cast(str, rows[0][0])) if rows else None  # a TEXT column

    def order_ids_in(self, status: OrderStatus) -> list[str]:
        """Client order ids of every order in ``status``, oldest first."""
        self._flush_orders()
        return [r[0] for r in self.conn.execute(
            "select client_order_id from orders where status = ? order by ts_ns, "
            "client_order_id", (status.value,))]

    def working_orders(self) -> list[tuple[str, str, str]]:
        """``(client_order_id, strategy, instrument_id)`` of every open or partly filled
        order."""
        self._flush_orders()
        return [(r[0], r[1], r[2]) for r in self.conn.execute(
            "select client_order_id, strategy, instrument_id from orders where status in "
            "(?, ?) order by ts_ns, client_order_id",
            (OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value))]

    @_reads("orders")
    def working_orders_of(self, strategy: str) -> list[KnownOrder]:
        """``strategy``'s orders not yet final (pending, open, partly filled), oldest
        first, with their venue ids and quantities filled (``StrategyContext.orders``)."""
        return [KnownOrder(_order(r), r["venue_order_id"], r["filled_quantity"] or "0")
                for r in self.query(
                    "select * from orders where strategy = ? and status in (?, ?, ?) order "
                    "by ts_ns, client_order_id", (strategy, OrderStatus.PENDING.value,
                                                  OrderStatus.OPEN.value,
                                                  OrderStatus.PARTIALLY_FILLED.value))]

    @_reads("orders")
    def working_quantities(self) -> list[tuple[str, str, Decimal, Decimal | None, bool]]:
        """Every order not yet final as ``(instrument_id, side, quantity still wanted,
        limit price, reduce_only)`` (the risk checks' ``RiskContext.pending``)."""
        self._flush_orders()
        return [(iid, side, _dec(qty) - _dec(filled or 0),
                 None if limit is None else _dec(limit), bool(reduce_only))
                for iid, side, qty, filled, limit, reduce_only in self.conn.execute(
                    "select instrument_id, side, quantity, filled_quantity, limit_price, "
                    "reduce_only from orders where status in (?, ?, ?)",
                    (OrderStatus.PENDING.value, OrderStatus.OPEN.value,
                     OrderStatus.PARTIALLY_FILLED.value))]

    @_reads("orders")
    def working_on_side(self, instrument_id: str, side: str) -> Decimal:
        """What orders on ``instrument_id`` and ``side`` not yet final still want to trade
        (their quantity less what filled), summed: reduce-only or not, each would close
        part of a position on the other side if it filled."""
        self._flush_orders()
        total = Decimal(0)
        for qty, filled in self.conn.execute(
                "select quantity, filled_quantity from orders where instrument_id = ? and "
                "side = ? and status in (?, ?, ?)",
                (instrument_id, side, OrderStatus.PENDING.value, OrderStatus.OPEN.value,
                 OrderStatus.PARTIALLY_FILLED.value)):
            total += _dec(qty) - _dec(filled or 0)
        return total

    def working_instruments(self, strategy: str) -> set[str]:
        """Instruments on which ``strategy`` has an order not yet final."""
        self._flush_orders()
        return {r[0] for r in self.conn.execute(
            "select distinct instrument_id from orders where strategy = ? and status in "
            "(?, ?, ?)", (strategy, OrderStatus.PENDING.value, OrderStatus.OPEN.value,
                          OrderStatus.PARTIALLY_FILLED.value))}

    def set_venue_order_id(self, client_order_id: str, venue_order_id: str) -> None:
        """Remember the venue's id of an acknowledged order."""
        row = self._orders.get(client_order_id)
        if row is not None:
            row[_VENUE_ID] = venue_order_id
            return
        self.conn.execute("update orders set venue_order_id = ? where client_order_id = ?",
                          (venue_order_id, client_order_id))

    def fill_exists(self, fill_id: str) -> bool:
        """Whether a fill with this id is booked."""
        self.flush()
        return bool(self.conn.execute("select 1 from fills where fill_id = ?",
                                      (fill_id,)).fetchall())

    @_reads("fills")
    def filled_quantity(self, client_order_id: str, side: Side) -> Decimal:
        """Quantity booked on ``client_order_id``'s own side (exact), less its busted fills
        (each offset by a ``<fill id>:bust`` or ``<fill id>:bust:<part>`` fill on the other
        side)."""
        self.flush()
        return sum((_dec(q) if s == side.value else -_dec(q) for q, s in self.conn.execute(
            "select quantity, side from fills where client_order_id = ? and (side = ? or "
            "fill_id like '%:bust' or fill_id like '%:bust:%')", (client_order_id, side.value))),
            Decimal(0))

    def fill_row(self, fill_id: str) -> dict[str, Any] | None:
        """The ``fills`` row of ``fill_id``, or None when it was never booked."""
        rows = self.query("select * from fills where fill_id = ?", (fill_id,))
        return rows[0] if rows else None

    def correct_fill(self, fill_id: str, kind: str, ts_ns: int, old: str, new: str,
                     reason: str) -> None:
        """Record a venue's correction of a booked fill (``fill_corrections``); a ``fee``
        correction also sets the fill's fee to ``new`` in place."""
        if kind == "fee":
            self.conn.execute("update fills set fee = ? where fill_id = ?", (new, fill_id))
        self.conn.execute("insert into fill_corrections (fill_id, kind, ts_ns, old_value,"
                          " new_value, reason) values (?,?,?,?,?,?)",
                          (fill_id, kind, ts_ns, old, new, redact(reason)))

    def basket_of(self, client_order_id: str) -> str | None:
        """The basket an order belongs to (None: a single order, or unknown)."""
        row = self._orders.get(client_order_id)
        if row is not None:
            return cast("str | None", row[_BASKET])
        rows = self.conn.execute("select basket_id from orders where client_order_id = ?",
                                 (client_order_id,)).fetchall()
        return cast("str | None", rows[0][0]) if rows else None  # a nullable TEXT column

    @_reads("orders")
    def basket_legs(self, basket_id: str) -> list[Order]:
        """The legs of a basket as persisted (not its unwind orders), oldest first."""
        return [_order(r) for r in self.query(
            "select * from orders where basket_id = ? and reduce_only = 0 order by ts_ns, "
            "client_order_id", (basket_id,))]

    @staticmethod
    def as_order(row: dict[str, Any]) -> Order:
        """An ``orders`` row (from :meth:`order_row`) as the persisted Order."""
        return _order(row)

    @_reads("orders")
    def basket_unwinds(self, basket_id: str) -> list[Order]:
        """The unwind orders of a basket (its reduce-only orders), oldest first."""
        return [_order(r) for r in self.query(
            "select * from orders where basket_id = ? and reduce_only = 1 order by ts_ns, "
            "client_order_id", (basket_id,))]

    @_reads("fills")
    def basket_fills(self, basket_id: str) -> dict[str, tuple[Decimal, Decimal]]:
        """Per leg order of a basket: ``(quantity filled on its own side, average price)``
        (busted fills left out; a busted part of a fill, ``<fill id>:bust:<part>`` on the
        other side, taken off at its price)."""
        self.flush()
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for coid, qty, price, own in self.conn.execute(
                "select o.client_order_id, f.quantity, f.price, f.side = o.side from orders o "
                "join fills f on f.client_order_id = o.client_order_id where o.basket_id = ? "
                "and (f.side = o.side and not exists (select 1 from fills b where b.fill_id "
                "= f.fill_id || ':bust') or f.side != o.side and f.fill_id like '%:bust:%')",
                (basket_id,)):
            q, p = _dec(qty) * (1 if own else -1), _dec(price)
            done, avg = out.get(coid, (Decimal(0), Decimal(0)))
            left = done + q
            out[coid] = (left, (avg * done + p * q) / left if left else Decimal(0))
        return out

    def record_signal(self, name: str, instrument_id: str, ts_ns: int, value: float) -> None:
        """The latest value of a published signal."""
        self.conn.execute("insert or replace into signals values (?,?,?,?)",
                          (name, instrument_id, ts_ns, value))

    def insert_opportunity(self, opportunity_id: str, scanner: str, ts_ns: int, kind: str,
                           expected_profit: Decimal, risk_free: bool, body: str,
                           status: str = "seen") -> bool:
        """Store a scanner's opportunity once (``status`` ``seen``, or ``research`` for one
        the runner must not trade); False when it was seen before."""
        self.conn.execute(
            "insert or ignore into opportunities values (?,?,?,?,?,?,?,?)",
            (opportunity_id, scanner, ts_ns, kind, str(expected_profit), int(risk_free),
             status, _redact_json(body)))
        return self.conn.changes() == 1

    def append_equity(self, rows: Sequence[tuple[int, str, str, str]]) -> None:
        """Equity rows ``(ts_ns, cash, equity, gross exposure)``."""
        self.conn.executemany("insert or replace into equity values (?,?,?,?)", rows)

    def append_book_equity(self, rows: Sequence[tuple[int, str, str, str]]) -> None:
        """Per-slot ``(ts_ns, slot, cash, equity)`` rows, each where its book moved,
        through the view ``book_equity_changes`` (a row at a time: the runner writes
        :meth:`append_book_rows`)."""
        self.conn.executemany("insert into book_equity_changes (ts_ns, slot, cash, equity)"
                              " values (?,?,?,?)", rows)

    def append_book_rows(self, rows: Sequence[tuple[int, str]]) -> None:
        """``(ts_ns, books)`` rows, ``books`` a JSON object ``{slot: [cash, equity]}`` of
        the books that moved then, merged into a row the time has already (a resumed run
        rewrites its own); the views ``book_equity_changes`` and ``book_equity`` (every
        book carried onto every equity row) read them."""
        self.conn.executemany("insert into book_rows (ts_ns, books) values (?, ?) on conflict"
                              " (ts_ns) do update set books = json_patch(books,"
                              " excluded.books)", rows)

    @_reads("book_rows")
    def last_book_rows(self, slots: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Each of ``slots``' last stored book row's ``(cash, equity)`` texts (those with
        one), in one pass back from the run's end that stops once every slot is found: a
        book that has not moved for long is a long way back, and a pass per book would
        read those rows once per book."""
        wanted, found = set(slots), dict[str, tuple[str, str]]()
        for (books,) in self.conn.execute("select books from book_rows order by ts_ns desc"):
            for slot, (cash, equity) in json.loads(books).items():
                if slot in wanted and slot not in found:
                    found[slot] = (str(cash), str(equity))
            if len(found) == len(wanted):
                break
        return found

    @_reads("orders or fills")
    def venue_resume(self, venue: str) -> VenueResume:
        """What a restarted ``venue`` needs to know of this run's orders and fills."""
        known = []
        for r in self.query("select * from orders where venue = ? order by ts_ns, "
                            "client_order_id", (venue,)):
            known.append(KnownOrder(_order(r), r["venue_order_id"], r["filled_quantity"] or "0"))
        # A fill is the venue's when it names the venue or fills one of its orders: a
        # composite's inner venue booked fills under its own name (``kalshi``) beside
        # orders under the run's (``multivenue``), and a restart handed it none of them.
        mine = "(venue = ? or client_order_id in (select client_order_id from orders " \
               "where venue = ?))"
        fills = self.query(f"select fill_id, client_order_id, fee from fills where {mine}",
                           (venue, venue))
        fill_ids = {str(r["fill_id"]): str(r["client_order_id"]) for r in fills}
        newest = self.query(f"select max(ts_ns) as ts from fills where {mine} and fill_id "
                            f"not like '%:bust' and fill_id not like '%:bust:%'",
                            (venue, venue))  # a bust: when it was said
        since = newest[0]["ts"] if newest and newest[0]["ts"] is not None else (
            known[0].order.ts_ns if known else None)
        return VenueResume(tuple(known), fill_ids, since,
                           {str(r["fill_id"]): _dec(r["fee"]) for r in fills})

    def fills(self) -> list[dict[str, Any]]:
        """Every fill in ledger order."""
        return self.query("select * from fills order by ts_ns, rowid")

    # -- checkpoints and control ---------------------------------------------------
    def save_checkpoint(self, name: str, seq: int, ts_ns: int, state: dict[str, Any]) -> None:
        """Store component state at event ``seq`` (call inside a transaction).  A value
        revealed as a secret (a strategy that kept its API key in its state) is stored
        as ``[REDACTED]``, said once per checkpoint name: secrets never reach the ledger."""
        try:  # NaN passes (as ``NaN``: json.loads reads it; a warming indicator holds one)
            text = json.dumps(state, sort_keys=True, separators=(",", ":"))
            if (found := _not_text_key(state)):  # json made it a text, which came back
                raise ValueError(found)
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"{self.path}: checkpoint {name!r} cannot be stored: "
                              f"{_not_json(state) or exc} (a component's state must be "
                              f"JSON: texts, finite numbers, lists, objects)") from None
        stored = redact_revealed(text)
        if stored != text and name not in self._redacted_checkpoints:
            self._redacted_checkpoints.add(name)
            log.warning("checkpoint %r held a value read as a secret: stored as [REDACTED] "
                        "(a component must not keep credentials in its state)", name)
        self.conn.execute("insert or replace into checkpoints values (?,?,?,?)",
                          (name, seq, ts_ns, stored))

    def load_checkpoint(self, name: str) -> tuple[int, int, dict[str, Any]] | None:
        """``(seq, ts_ns, state)`` of the latest checkpoint called ``name``."""
        rows = self.conn.execute("select seq, ts_ns, state_json from checkpoints where name = ?",
                                 (name,)).fetchall()
        if not rows:
            return None
        seq, ts_ns, state_json = cast(tuple[int, int, str], rows[0])  # INTEGER, INTEGER, TEXT
        try:  # depth-checked first: an import may have raised the recursion limit (py_ecc's
            # 100,000), and a damaged row nested that deep then crashed the process
            check_depth(state_json)
            state = json.loads(state_json)
        except (ValueError, TypeError, RecursionError) as exc:
            raise LedgerError(f"{self.path}: checkpoint {name!r} is corrupt: {exc}") from None
        if type(seq) is not int or type(ts_ns) is not int or not isinstance(state, dict):
            raise LedgerError(f"{self.path}: checkpoint {name!r} is corrupt: seq {seq!r}, "
                              f"ts_ns {ts_ns!r} and a state of {type(state).__name__} (want "
                              f"integers and an object)")
        return seq, ts_ns, state

    def set_control(self, key: str, value: str, ts_ns: int) -> None:
        """Set a control flag (e.g. the trading state latch) durably."""
        with self.conn:
            self.put_control(key, value, ts_ns)

    def put_control(self, key: str, value: str, ts_ns: int) -> None:
        """Set a control flag inside the caller's open transaction (and append it to
        ``control_log``, the trail of every write: :meth:`control_history`)."""
        self.conn.execute("insert or replace into control values (?,?,?)", (key, value, ts_ns))
        self.conn.execute("insert into control_log (key, value, ts_ns) values (?,?,?)",
                          (key, value, ts_ns))

    def control_history(self, key: str, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` writes of control flag ``key``, newest first: ``id``,
        ``value``, ``ts_ns``."""
        return self.query("select id, value, ts_ns from control_log where key = ? "
                          "order by id desc limit ?", (key, limit))

    def get_control(self, key: str) -> str | None:
        """A control flag's value."""
        rows = self.conn.execute("select value from control where key = ?", (key,)).fetchall()
        return cast(str, rows[0][0]) if rows else None  # a TEXT column

    def record_control_adopted(self, key: str, state: str, reason: str) -> None:
        """A ``control`` risk event for the control row ``key`` as it stands (at that row's
        time, once: a resumed run adopting the same row again adds nothing)."""
        reason = redact(reason)
        self.conn.execute(
            "insert into risk_events (ts_ns, check_name, action, reason) select c.ts_ns,"
            " 'control', ?, ? from control c where c.key = ? and not exists (select 1 from"
            " risk_events r where r.check_name = 'control' and r.ts_ns = c.ts_ns and"
            " r.action = ? and r.reason = ?)", (state, reason, key, state, reason))

    def record_risk_event(self, ts_ns: int, check: str, action: str, reason: str,
                          instrument_id: str | None = None, strategy: str | None = None,
                          intent_json: str | None = None) -> None:
        """One row per denial or shrink, with its reason (secrets redacted: a venue's
        exception text may echo a key)."""
        reason = redact(reason)
        if intent_json:
            intent_json = _redact_json(intent_json)
        self.conn.execute(
            "insert into risk_events (ts_ns, check_name, action, reason, instrument_id,"
            " strategy, intent_json) values (?,?,?,?,?,?,?)",
            (ts_ns, check, action, reason, instrument_id, strategy, intent_json))


def _order(r: dict[str, Any]) -> Order:
    """An ``orders`` row as the Order that was persisted (ValueError naming the order
    when the row is damaged)."""
    try:
        if type(r["ts_ns"]) is not int:
            raise TypeError(f"ts_ns {r['ts_ns']!r} is not an integer")
        return Order(r["client_order_id"], r["venue"], r["instrument_id"], Side(r["side"]),
                     r["quantity"], r["limit_price"], OrderType(r["order_type"]),
                     TimeInForce(r["time_in_force"]), r["strategy"], r["ts_ns"],
                     OrderStatus(r["status"]), r["basket_id"], bool(r["reduce_only"]),
                     r.get("reason") or "", r.get("decision_price"), r.get("arrival_price"),
                     r.get("arrival_spread"))
    except _DAMAGE as exc:
        raise ValueError(f"order {r.get('client_order_id')!r}: {exc}") from None


def _redact_json(text: str) -> str:
    """JSON ``text`` with each text in it redacted, else as it was: redacted whole, a key
    inside a text (``"reason": "{\\"secret\\": \\"...\\"}"``, JSON's escaped quotes) was
    missed, and a mask could swallow a quote and leave no JSON."""
    try:
        data = loads_frame(text)
    except (ValueError, RecursionError):
        return redact(text)
    clean = _redact_texts(data)
    return text if clean == data else json.dumps(clean, sort_keys=True)


def _redact_texts(data: Any) -> Any:
    """``data`` (parsed JSON) with every text in it, keys too, redacted."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, list):
        return [_redact_texts(v) for v in data]
    if isinstance(data, dict):
        return {redact(k): _redact_texts(v) for k, v in data.items()}
    return data


def _not_text_key(value: Any, where: str = "state") -> str:
    """Where in ``value`` a dict has a key that is not a text ("" when none): ``json.dumps``
    writes an int key ``1`` as ``"1"``, so a state of ``{1: ...}`` came back ``{"1": ...}``
    after a restart (only keys of mixed types failed, on sorting).  Only containers walked."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has the key {key!r}, not a text"
            if isinstance(item, dict | list | tuple) and (
                    found := _not_text_key(item, f"{where}.{key}")):
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, dict | list | tuple) and (
                    found := _not_text_key(item, f"{where}[{i}]")):
                return found
    return ""


def _not_json(value: Any, where: str = "state") -> str:
    """Where in ``value`` the first thing JSON cannot hold is, and what (a checkpoint's
    error: the component and key to look at); "" when there is none."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = (f"{where} has the key {key!r}, not a text" if not isinstance(key, str)
                     else _not_json(item, f"{where}.{key}"))
            if found:
                return found
    elif isinstance(value, list | tuple):
        return next(filter(None, (_not_json(v, f"{where}[{i}]") for i, v in
                                  enumerate(value))), "")
    elif not isinstance(value, str | int | float | None):
        return f"{where} is {type(value).__name__} {str(value)[:40]!r}"
    return ""


def _sql(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if value is None or isinstance(value, int | float | str | bytes):
        return value
    raise LedgerError(f"cannot store {type(value).__name__} in the ledger")
