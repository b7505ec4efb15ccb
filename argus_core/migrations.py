"""Named migration sets, one per plugin, applied once and in order when a ledger opens.

Modelled on sqlite-utils' migrations: each set has its own history, so two
plugins can never collide over schema versions.  A plugin adds its set in
``register_migrations``::

    @hookimpl
    def register_migrations(migrations):
        kraken = migrations.set("kraken")

        @kraken
        def m001_nonces(conn):
            conn.execute("create table kraken_nonces (key text primary key, nonce integer)")
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import apsw

from argus_core.errors import LedgerError

Migration = Callable[[apsw.Connection], None]


class MigrationSet:
    """An ordered list of migrations owned by one plugin."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.migrations: list[tuple[str, Migration]] = []

    def __call__(self, fn: Migration) -> Migration:
        """Decorator: add ``fn`` as the next migration (its ``__name__`` is its id)."""
        if any(name == fn.__name__ for name, _ in self.migrations):
            raise LedgerError(f"migration set {self.name!r} already has {fn.__name__!r}")
        self.migrations.append((fn.__name__, fn))
        return fn


class Migrations:
    """All migration sets of a run: the core's plus every plugin's."""

    def __init__(self) -> None:
        self.sets: dict[str, MigrationSet] = {}

    def set(self, name: str) -> MigrationSet:
        """The set called ``name`` (created on first use)."""
        if name not in self.sets:
            self.sets[name] = MigrationSet(name)
        return self.sets[name]

    def apply(self, conn: apsw.Connection,
              guard: Callable[[], Collection[str]] = frozenset) -> list[str]:
        """Apply every pending migration inside one transaction; returns what ran.
        ``guard()``: names (the core's tables) that only the ``core`` set may write or
        alter, asked for only when another set has a migration to run."""
        applied: list[str] = []
        # IMMEDIATE: two processes opening a new ledger at once (`argus run` and
        # `argus kill`, say) must not both see nothing applied and both create tables.
        conn.execute("begin immediate")
        try:
            conn.execute(
                "create table if not exists _argus_migrations ("
                " migration_set text not null, name text not null,"
                " primary key (migration_set, name))"
            )
            done = {(s, n) for s, n in conn.execute(
                "select migration_set, name from _argus_migrations")}
            # A migration this version does not know, in a set it does: the ledger was
            # written by a newer Argus (or plugin) whose schema this code cannot honour.
            # (A set of a plugin not loaded here is left alone: its tables are its own.)
            unknown = sorted(f"{s}.{n}" for s, n in done if s in self.sets
                             and all(n != known for known, _ in self.sets[s].migrations))
            if unknown:
                raise LedgerError(
                    f"this ledger was written by a newer version (migration "
                    f"{', '.join(unknown)} is unknown here): upgrade argus and its plugins "
                    f"to open it; nothing was changed")
            for set_name, mset in self.sets.items():
                for name, fn in mset.migrations:
                    if (set_name, name) in done:
                        continue
                    conn.authorizer = _Fence(set_name, () if set_name == "core" else guard())
                    try:
                        fn(conn)
                    except Exception as exc:  # a plugin's bug too: said, never a traceback
                        why = (" (a migration may not begin or end the transaction, nor "
                               "write or alter the core's tables)"
                               if isinstance(exc, apsw.AuthError) else "")
                        raise LedgerError(f"migration {set_name}.{name} failed: "
                                          f"{type(exc).__name__}: {exc}{why}") from exc
                    finally:
                        conn.authorizer = None
                    conn.execute("insert into _argus_migrations values (?, ?)",
                                 (set_name, name))
                    applied.append(f"{set_name}.{name}")
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")
        return applied


#: What a migration writes or alters a table, view, index or trigger with (its name is
#: the authorizer's first or second argument).
_WRITES = frozenset({apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE,
                     apsw.SQLITE_DROP_TABLE, apsw.SQLITE_ALTER_TABLE, apsw.SQLITE_CREATE_INDEX,
                     apsw.SQLITE_DROP_INDEX, apsw.SQLITE_CREATE_TRIGGER,
                     apsw.SQLITE_DROP_TRIGGER, apsw.SQLITE_DROP_VIEW})


class _Fence:
    """SQLite's authorizer while one migration runs: no migration ends or opens the
    transaction (a ``commit`` inside one made the migrations before it permanent without
    their record), and no set but ``core`` writes, alters or drops a name in ``guard``
    (a plugin's set dropped ``fills`` or wrote orders no one sent) or the schema itself."""

    def __init__(self, set_name: str, guard: Collection[str]) -> None:
        self.guard = frozenset() if set_name == "core" else frozenset(
            {n.lower() for n in guard} | {"_argus_migrations"})

    def __call__(self, op: int, p1: Any, p2: Any, _db: Any, _trigger: Any) -> int:
        if op == apsw.SQLITE_TRANSACTION or (
                op == apsw.SQLITE_PRAGMA and str(p1).lower() == "writable_schema"):
            return apsw.SQLITE_DENY
        if self.guard and op in _WRITES and (str(p1).lower() in self.guard
                                             or str(p2).lower() in self.guard):
            return apsw.SQLITE_DENY
        return apsw.SQLITE_OK
