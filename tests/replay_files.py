"""Recordings and bar files the replay tests write (importable: tests/ is on pytest's
pythonpath): one recording header, one writer of NDJSON lines, one of bar CSVs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from argus_core.builtins.replay_venue import read_ndjson
from argus_core.errors import DataError
from argus_core.interfaces import FeeSchedule
from argus_core.models import Instrument
from argus_core.recorder import dump_header

IID = "replay:BTC/USD"
T0 = 1_700_000_000
NS = 10**9
SPOT = Instrument("replay", "BTC/USD", "spot", "0.1", "0.00000001", "0.0001")


class HeaderVenue:
    """What ``dump_header`` asks of a venue: its name and fee schedules (25/40 bps)."""

    name = "replay"

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return FeeSchedule(Decimal(25), Decimal(40))


def recording_header(*instruments: Instrument) -> dict[str, Any]:
    """The header ``argus record`` writes for ``instruments`` (default: :data:`SPOT`)."""
    return dump_header(HeaderVenue(), list(instruments or (SPOT,)))  # type: ignore[arg-type]


def write_ndjson(tmp_path: Path, rows: Sequence[Any], name: str = "rec.ndjson") -> Path:
    """``rows`` one per line (a string as it is, anything else as JSON); no header added."""
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def write_recording(tmp_path: Path, lines: Sequence[Any], header: Any = None,
                    name: str = "rec.ndjson") -> Path:
    """A recording: ``header`` (default :func:`recording_header`) then ``lines``."""
    return write_ndjson(tmp_path, [header or recording_header(), *lines], name)


def ndjson_error(path: Path) -> str:
    """The :class:`DataError` reading the recording at ``path`` raises, as text."""
    with pytest.raises(DataError) as info:
        list(read_ndjson(path))
    return str(info.value)


def write_csv(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    """A bar file holding exactly ``text`` (no newline translation)."""
    path = tmp_path / name
    path.write_text(text, newline="")
    return path
