"""Argus hooks of the ``multivenue`` plugin: the composite venue, configured by
``[plugins.multivenue]``, and a start-up check of the inner venues' settings."""

from __future__ import annotations

from typing import Any

from argus_core import RegisterVenue, hookimpl
from argus_multivenue.config import MultiVenueSettings


@hookimpl
def config_class() -> type:
    """``[plugins.multivenue]`` is validated by :class:`MultiVenueSettings`."""
    return MultiVenueSettings


@hookimpl
def register_venues(register: RegisterVenue) -> None:
    """Register the ``multivenue`` composite venue."""
    from argus_multivenue.venue import MultiVenue

    register(MultiVenue.name, MultiVenue)


@hookimpl
def on_startup(ctx: Any) -> None:
    """Stop the run before it trades when its config (with ``--set`` overrides) gives an
    inner venue's plugin other settings than the file the composite built it from."""
    from argus_multivenue.venue import MultiVenue

    venue = getattr(ctx, "venue", None)
    if not isinstance(venue, MultiVenue):
        return
    plugin_of = {name: ctx.host.get("venue", name).plugin for name in venue.inner}
    venue.check_run_config(ctx.config, plugin_of)
