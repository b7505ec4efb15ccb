"""Fixtures of the tearsheet tests (the suite imports with ``--import-mode=importlib``, so
this folder goes on ``sys.path`` for the shared ``tearsheet_ledger`` helpers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tearsheet_ledger import build_ledger


@pytest.fixture
def constructed_run(tmp_path: Path) -> Path:
    """The constructed run's directory (see ``tearsheet_ledger``)."""
    return build_ledger(tmp_path / "run")
