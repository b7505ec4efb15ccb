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

from collections.abc import Callable

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

    def apply(self, conn: apsw.Connection) -> list[str]:
        """Apply every pending migration inside one transaction; returns what ran."""
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
                    try:
                        fn(conn)
                    except apsw.Error as exc:
                        raise LedgerError(
                            f"migration {set_name}.{name} failed: {exc}") from exc
                    conn.execute("insert into _argus_migrations values (?, ?)",
                                 (set_name, name))
                    applied.append(f"{set_name}.{name}")
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")
        return applied
