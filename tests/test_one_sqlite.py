"""One copy of SQLite per process: the product reads and writes ledgers through apsw only.

Two SQLite libraries in one process (apsw's and the standard library's ``sqlite3``) do not
see each other's POSIX locks: closing a connection of one drops the other's locks, and a
WAL index can be reset under a live writer ("How To Corrupt An SQLite Database File",
section 2.2). A monitor scraping a live ledger through ``sqlite3`` crashed the loop's
thread with a bus error that way.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "argus_core", *sorted((ROOT / "plugins").glob("*/src"))]


def test_no_product_module_imports_the_standard_librarys_sqlite3() -> None:
    offenders = []
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n.split(".")[0] == "sqlite3" for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"use apsw (as argus_core.Ledger does), not sqlite3: {offenders}"
