"""Suite-wide collection order: tests marked ``slow`` are handed out first, so that on two
xdist workers the long end-to-end tests run beside the many short ones instead of being
left for last (the wall time of ``python -m pytest`` is set by its tail)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable sort
