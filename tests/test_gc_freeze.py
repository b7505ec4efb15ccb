"""A run freezes what start-up built (full collections skip it) and hands it back when it
ends, so nothing is frozen between runs and nothing cyclic leaks across them."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Sequence
from pathlib import Path

import pytest

from argus_core.config import load_config
from argus_core.gcfreeze import freeze_startup, thaw
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.models import Intent, MarketEvent
from argus_core.runner import Runner


class FreezeWatcher(Strategy):
    """Records the frozen count on the first event and every 1,000th after it (the count
    walks the whole frozen generation: on every event, in a suite worker whose heap held
    millions of objects, this test took 258 s)."""

    name = "watch"

    def __init__(self) -> None:
        self.frozen: list[int] = []
        self.seen = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if self.seen % 1000 == 0:
            self.frozen.append(gc.get_freeze_count())
        self.seen += 1
        return ()


def test_a_run_freezes_start_up_and_thaws_at_its_end(demo_config: Path, tmp_path: Path
                                                     ) -> None:
    assert gc.get_freeze_count() == 0
    watcher = FreezeWatcher()
    Runner(load_config(demo_config), tmp_path / "r", strategies={"watch": watcher}).run_sync()
    assert watcher.frozen and min(watcher.frozen) > 10_000  # modules, plugins, instruments
    assert gc.get_freeze_count() == 0


def test_a_failed_run_thaws_too(demo_config: Path, tmp_path: Path) -> None:
    class Boom(FreezeWatcher):
        def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
            raise KeyboardInterrupt  # not fenced like an exception: the run ends

    with pytest.raises(KeyboardInterrupt):
        Runner(load_config(demo_config), tmp_path / "r", strategies={"watch": Boom()}
               ).run_sync()
    assert gc.get_freeze_count() == 0


def test_a_cycle_frozen_alive_is_collected_once_thawed() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    garbage = Cycle()
    ref = weakref.ref(garbage)
    freeze_startup()  # alive and tracked: frozen with the rest
    try:
        del garbage  # now a garbage cycle: only the collector frees it
        gc.collect()
        assert ref() is not None  # frozen: collections skip it
        freeze_startup()  # a second holder (a nested run)
        thaw()
        gc.collect()
        assert ref() is not None and gc.get_freeze_count() > 0  # still held by the first
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None  # thawed: collected, not leaked


def test_what_the_application_froze_before_stays_frozen() -> None:
    """An application embedding Argus froze its own objects first: a run's thaw must not
    hand them back to the collector (gc.unfreeze cannot tell theirs from ours)."""
    gc.freeze()
    try:
        theirs = gc.get_freeze_count()
        assert theirs > 0
        freeze_startup()
        thaw()
        assert gc.get_freeze_count() >= theirs
    finally:
        gc.unfreeze()
