"""Session labels on hand-picked timestamps: both DST changes, their mismatch weeks and
a weekend."""

from __future__ import annotations

import pytest
from argus_overnight.config import utc_seconds as ts
from argus_overnight.sessions import ASIA, EUROPE, OVERNIGHT, US, WEEKEND, segment_of


@pytest.mark.parametrize(("when", "segment"), [
    # Winter (GMT, EST): London opens 08 UTC, New York 14-21 UTC.
    ("2022-01-11T00:00", ASIA), ("2022-01-11T07:59", ASIA), ("2022-01-11T08:00", EUROPE),
    ("2022-01-11T13:59", EUROPE), ("2022-01-11T14:00", US), ("2022-01-11T20:59", US),
    ("2022-01-11T21:00", OVERNIGHT), ("2022-01-11T23:59", OVERNIGHT),
    # US on EDT (from 2022-03-13), UK still on GMT: New York 13-20 UTC, London 08 UTC.
    ("2022-03-14T13:00", US), ("2022-03-14T12:59", EUROPE), ("2022-03-14T20:00", OVERNIGHT),
    ("2022-03-25T07:30", ASIA),
    # UK on BST (from 2022-03-27): London opens 07 UTC.
    ("2022-03-28T07:00", EUROPE), ("2022-03-28T06:59", ASIA),
    # Autumn: UK back on GMT 2022-10-30, US still on EDT until 2022-11-06.
    ("2022-10-31T07:30", ASIA), ("2022-10-31T13:30", US), ("2022-11-07T13:30", EUROPE),
])
def test_weekday_segments_follow_local_clocks(when: str, segment: str) -> None:
    assert segment_of(ts(when))[0] == segment


def test_the_weekend_runs_from_friday_us_close_to_monday_asia_open() -> None:
    friday = segment_of(ts("2022-01-14T00:00"))[1]
    assert segment_of(ts("2022-01-14T20:59")) == (US, friday)
    for when in ("2022-01-14T21:00", "2022-01-15T12:00", "2022-01-16T23:59"):
        assert segment_of(ts(when)) == (WEEKEND, friday), when
    assert segment_of(ts("2022-01-17T00:00")) == (ASIA, friday + 3)
    # A Thursday night is an ordinary overnight, keyed by its own day.
    thursday = segment_of(ts("2022-01-13T22:00"))
    assert thursday == (OVERNIGHT, friday - 1)
