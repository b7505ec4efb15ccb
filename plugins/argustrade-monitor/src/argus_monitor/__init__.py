"""Argus monitor: Prometheus metrics and a health endpoint for a running loop.

Configure ``[plugins.monitor] port`` to serve; see the README for every metric.
"""

from __future__ import annotations

from argus_monitor.config import MonitorSettings
from argus_monitor.server import MonitorServer, stop_all

__all__ = ["MonitorServer", "MonitorSettings", "stop_all"]
