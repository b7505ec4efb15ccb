"""The seeded hot-swap campaign (see ``swap_campaign``): 20 seeds in the suite, 200 more
under ``-m slow``.  A failing seed prints what broke and its plan; shrink it with
``swap_campaign.shrink`` and keep it as a test in ``test_swap_campaign_regressions.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import swap_campaign as sc

SEEDS = range(20)


@pytest.fixture
def campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    sc.install(monkeypatch)


@pytest.mark.parametrize("seed", SEEDS)
def test_swap_campaign_seed(seed: int, tmp_path: Path, campaign: None) -> None:
    result = sc.run_seed(seed, tmp_path)
    assert not result.problems, result.report()


@pytest.mark.slow
def test_swap_campaign_long(tmp_path: Path, campaign: None) -> None:
    failures = []
    for seed in range(100, 300):
        result = sc.run_seed(seed, tmp_path / str(seed))
        if result.problems:
            failures.append(result.report())
    assert not failures, "\n".join(failures[:3])
