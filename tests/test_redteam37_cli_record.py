"""Red team of ``argus record`` (round 37): a recording that got no event (a venue that
streams nothing, an unsubscribed channel, a Ctrl-C before the first event) emptied an
earlier recording at the same path down to a header, and the command then failed (exit
4): the earlier data was lost to a failing command.  The file is now emptied when the
first event comes; a recording cut after that still replays up to the cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

import argus_core.runtime
from argus_core.builtins.replay_venue import read_ndjson
from argus_core.config import load_config
from argus_core.interfaces import FeeSchedule, Venue
from argus_core.models import Instrument, MarketEvent, Trade
from argus_core.recorder import read_header, record

SPOT = Instrument("fake", "BTC/USD", "spot", "0.1", "0.00000001")
T = 1_700_000_000 * 10**9
EARLIER = "an earlier recording\n"


class Quiet(Venue):
    """A venue that lists its instrument, streams ``n`` trades, then nothing."""

    name = "fake"

    def __init__(self, n: int = 0) -> None:
        self.n = n

    async def instruments(self) -> list[Instrument]:
        return [SPOT]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for i in range(self.n):
            yield Trade(SPOT.id, T + i, "100.5", "0.25")
        await asyncio.Event().wait()  # idle until the recording's time is up

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return FeeSchedule(Decimal(25), Decimal(40))


def _record(tmp_path: Path, out: Path, venue: Venue, monkeypatch: pytest.MonkeyPatch) -> int:
    seed = tmp_path / "seed.ndjson"
    seed.write_text("")
    config = tmp_path / "argus.toml"
    config.write_text(f'[run]\nvenue = "replay"\n[plugins.replay]\nndjson = "{seed}"\n')
    monkeypatch.setattr(argus_core.runtime, "build", lambda *a, **k: venue)
    return asyncio.run(record(load_config(config), out, duration_s=0.2))


def test_a_recording_of_nothing_leaves_an_earlier_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rec.ndjson"
    out.write_text(EARLIER)
    assert _record(tmp_path, out, Quiet(0), monkeypatch) == 0
    assert out.read_text() == EARLIER


def test_a_new_file_of_nothing_still_gets_its_header(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rec.ndjson"
    assert _record(tmp_path, out, Quiet(0), monkeypatch) == 0
    header = read_header(out)
    assert header is not None and header.instruments == [SPOT]


def test_the_first_event_replaces_an_earlier_recording(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rec.ndjson"
    out.write_text(EARLIER)
    assert _record(tmp_path, out, Quiet(3), monkeypatch) == 3
    header = read_header(out)
    assert header is not None and header.instruments == [SPOT]
    assert [e.ts_ns for e in read_ndjson(out)] == [T, T + 1, T + 2]
