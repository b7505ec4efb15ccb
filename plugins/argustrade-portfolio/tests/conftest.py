"""The portfolio plugin's tests: ``league_helpers`` importable beside them."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts a test module's folder on sys.path only when it imports the
# module itself; the helpers are shared by several test modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))
