"""Argus plugin ``multivenue``: several registered venues as the one venue of a run."""

from __future__ import annotations

from argus_multivenue.config import MultiVenueSettings
from argus_multivenue.venue import MultiVenue, merge_by_time

__all__ = ["MultiVenue", "MultiVenueSettings", "merge_by_time"]
