"""A local Kalshi exchange on 127.0.0.1 for tests and offline runs.

:class:`LocalKalshi` starts both servers in the running event loop: the Trade API v2
REST server (:mod:`.rest`) and the websocket server (:mod:`.ws`), over one matching
engine (:mod:`.engine`).  Signed requests are verified with the test key's public key;
faults (lost answers, late answers, 5xx, resets, 429, dropped sockets, sequence gaps,
malformed frames) are scripted per request or per frame.
"""

from argus_venue_kalshi.testing.engine import LocalEngine
from argus_venue_kalshi.testing.exchange import LocalKalshi
from argus_venue_kalshi.testing.rest import Fault, RateLimit

__all__ = ["Fault", "LocalEngine", "LocalKalshi", "RateLimit"]
