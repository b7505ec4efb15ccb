"""Argus hooks of the Kraken venue plugin (entry point ``kraken``).

The ``argus kraken-bars`` command is in :mod:`argus_venue_kraken.commands` (entry point
group ``argus.commands``).  No ``on_startup`` hook: a restarted live venue learns the run's
orders from the core through :meth:`KrakenVenue.resume`, never by reading the core's tables.
"""

from __future__ import annotations

from argus_core import Register, hookimpl
from argus_venue_kraken.config import KrakenSettings


@hookimpl
def config_class() -> type:
    """``[plugins.kraken]`` is validated by :class:`KrakenSettings`."""
    return KrakenSettings


@hookimpl
def register_venues(register: Register) -> None:
    """Register the ``kraken`` venue."""
    from argus_venue_kraken.venue import KrakenVenue

    register("kraken", KrakenVenue)
