"""``[plugins.monitor]`` settings."""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs

from argus_core import POSITIVE, in_range


def _ip_address(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # An address, not a host name: a name could resolve to a public interface unnoticed.
    try:
        ipaddress.ip_address(value)
    except (TypeError, ValueError):
        raise ValueError(f"{attribute.name}: {value!r} is not an IP address "
                         f"(e.g. '127.0.0.1', or '0.0.0.0' for every interface)") from None


@attrs.frozen
class MonitorSettings:
    """Settings of the monitor.

    Attributes:
        port: TCP port of the HTTP server (``/metrics`` and ``/health``); 0, the default,
            serves nothing.
        bind: address to listen on; the default keeps it on this machine.
        stale_after_s: ``/health`` answers 503 when no market event arrived for this long.
        stuck_after_s: ``/health`` answers 503 ``stuck`` when the run's event loop has
            run nothing (no heartbeat, no event) for this long while the process lives.
    """

    port: int = attrs.field(default=0, validator=in_range(0, 65535))
    bind: str = attrs.field(default="127.0.0.1", validator=_ip_address)
    stale_after_s: float = attrs.field(default=60.0, validator=POSITIVE)
    stuck_after_s: float = attrs.field(default=10.0, validator=POSITIVE)

    @property
    def enabled(self) -> bool:
        """Whether a server is to run."""
        return self.port != 0
