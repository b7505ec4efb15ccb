"""Suite-wide scheduling: tests marked ``slow`` are handed out first, so that the long
end-to-end tests run beside the many short ones instead of being left for last (the wall
time of ``python -m pytest`` is set by its tail); and ``-n auto`` starts one xdist worker
more than this process has CPUs, because many end-to-end tests spend their time waiting
on subprocesses, sockets and timers (kill -9 cycles, live loops against local exchanges):
the extra worker fills those waits (2 cores: 6:04 with two workers, 5:24 with three)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable sort


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: the usable CPUs plus one (``PYTEST_XDIST_AUTO_NUM_WORKERS``
    still overrides, as in pytest-xdist itself)."""
    override = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if override:
        return int(override)
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return (len(usable) if usable else os.cpu_count() or 1) + 1


@pytest.fixture(autouse=True)
def _secrets_stay_with_their_test() -> object:
    """What a test reveals is forgotten after it (values revealed at import or by a wider
    fixture stay): the core remembers revealed secrets process-wide, and a 4-letter test
    passphrase ("pass") redacted the word in every later test's messages on that worker."""
    from argus_core import secrets

    saved = (secrets._remembered, secrets._remembered_re)
    yield
    secrets._remembered, secrets._remembered_re = saved
