"""Trading-session segments of the 24-hour, 7-day crypto clock, in UTC.

Each instant belongs to one *segment*, the stretch between two session
transitions (local times, converted with :mod:`zoneinfo`, so daylight saving
time is handled per exchange):

========================== ================================================ ====================
segment                    from -> to (local)                               UTC, winter / summer
========================== ================================================ ====================
``asia_open_to_europe_open`` Tokyo 09:00 -> London 08:00                     00-08 / 00-07
``europe_open_to_us_open``   London 08:00 -> New York 09:00                  08-14 / 07-13
``us_open_to_us_close``      New York 09:00 -> 16:00                          14-21 / 13-20
``us_close_to_asia_open``    New York 16:00 -> Tokyo 09:00 (Mon-Thu nights)  21-24 / 20-24
``weekend``                  New York 16:00 Friday -> Tokyo 09:00 Monday
========================== ================================================ ====================

Tokyo keeps no DST, so Asia opens at 00:00 UTC all year and every segment of a
UTC weekday lies inside that UTC day.  The New York cut is the 09:00 hour (the
09:30 bell falls inside the 09:00-10:00 hourly bar).  The US and UK change
their clocks on different Sundays, so for two or three weeks a year the Europe
segment is an hour longer or shorter.  Exchange holidays are ignored.  Every
boundary is a whole UTC hour, so an hourly bar lies inside one segment.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

ASIA = "asia_open_to_europe_open"
EUROPE = "europe_open_to_us_open"
US = "us_open_to_us_close"
OVERNIGHT = "us_close_to_asia_open"
WEEKEND = "weekend"
#: Every segment, in the order they follow each other on a weekday.
SEGMENTS = (ASIA, EUROPE, US, OVERNIGHT, WEEKEND)

_LONDON = ZoneInfo("Europe/London")
_NEW_YORK = ZoneInfo("America/New_York")
_FRIDAY = 4


@lru_cache(maxsize=4096)
def _cuts_s(day: date) -> tuple[int, int, int]:
    """UTC unix seconds of London 08:00, New York 09:00 and New York 16:00 on ``day``."""
    def at(hour: int, tz: ZoneInfo) -> int:
        return int(datetime.combine(day, time(hour), tz).timestamp())
    return at(8, _LONDON), at(9, _NEW_YORK), at(16, _NEW_YORK)


def segment_of(ts_s: int) -> tuple[str, int]:
    """The segment holding the instant ``ts_s`` (UTC unix seconds) and that segment's
    key: the unix day (days since 1970-01-01 UTC) on which the segment instance began
    (a weekend's key is its Friday)."""
    day_index = ts_s // 86400
    day = date(1970, 1, 1) + timedelta(days=day_index)
    weekday = day.weekday()
    if weekday > _FRIDAY:  # Saturday and Sunday (UTC) belong to Friday's weekend
        return WEEKEND, day_index - (weekday - _FRIDAY)
    europe_open, us_open, us_close = _cuts_s(day)
    if ts_s < europe_open:
        return ASIA, day_index
    if ts_s < us_open:
        return EUROPE, day_index
    if ts_s < us_close:
        return US, day_index
    return (WEEKEND if weekday == _FRIDAY else OVERNIGHT), day_index


def utc(ts_s: int) -> datetime:
    """``ts_s`` as an aware UTC datetime (for messages and tests)."""
    return datetime.fromtimestamp(ts_s, UTC)
