"""Argus hooks of the monitor plugin (entry point ``monitor``).

``on_startup`` starts the server (when ``[plugins.monitor] port`` is set) and wraps the
run's venue stream; ``on_fill`` and ``on_opportunity`` count; ``on_shutdown`` marks the
run stopped.  The server keeps answering with the final figures (health 503,
``stopped``) until the process exits or the next run in this process starts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from argus_core import Fill, Opportunity, hookimpl
from argus_monitor.config import MonitorSettings
from argus_monitor.probe import LoopProbe
from argus_monitor.server import MonitorServer, stop_all

log = logging.getLogger(__name__)
PLUGIN = "monitor"
_monitors: dict[int, MonitorServer] = {}  # id(RunContext) -> its run's server


@hookimpl
def config_class() -> type:
    """``[plugins.monitor]`` is validated by :class:`MonitorSettings`."""
    return MonitorSettings


@hookimpl
def on_startup(ctx: Any) -> None:
    """Start serving this run, if a port is configured."""
    settings = ctx.settings.get(PLUGIN) or MonitorSettings()
    if not settings.enabled:
        return
    stop_all(finished_only=True)  # a finished run's server gives way (and its port)
    probe = LoopProbe()
    probe.watch_queue(ctx)
    if ctx.venue is None or not probe.watch_venue(ctx.venue):
        log.warning("monitor: cannot watch the venue's stream; loop metrics stay empty")
    run = ctx.config.run
    stale_s = getattr(run, "stale_after_s", None)
    if stale_s is None:
        stale_s = getattr(ctx.venue, "default_stale_after_s", 0.0)
    server = MonitorServer(settings, probe, ctx.run_dir, run_id=ctx.run_id, mode=ctx.mode,
                           venue=run.venue, book_stale_after_s=float(stale_s or 0.0))
    server.start()
    _monitors[id(ctx)] = server
    try:
        probe.watch_loop(asyncio.get_running_loop())  # on_startup runs inside the run's loop
    except RuntimeError:  # called outside a loop (embedding): no stuck detection
        log.warning("monitor: no running event loop; a stuck loop is not detected")


@hookimpl
def on_fill(fill: Fill, ctx: Any) -> None:
    """Count a committed fill."""
    server = _monitors.get(id(ctx))
    if server is not None:
        server.probe.on_fill(fill)


@hookimpl
def on_opportunity(opportunity: Opportunity, ctx: Any) -> None:
    """Count a stored opportunity."""
    server = _monitors.get(id(ctx))
    if server is not None:
        server.probe.on_opportunity(opportunity)


@hookimpl
def on_shutdown(ctx: Any) -> None:
    """Mark the run stopped; the server keeps its final figures."""
    server = _monitors.pop(id(ctx), None)
    if server is not None:
        server.probe.stop()


def monitor_of(ctx: Any) -> MonitorServer | None:
    """The server of a running run (for tests and embedding)."""
    return _monitors.get(id(ctx))
