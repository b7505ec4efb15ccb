"""The local Kraken exchange as a process (:mod:`.paper_market`) and a paper-trading
config on it: for end-to-end tests of a paper run that a person follows live and halts
(the dashboard's browser tests, the Telegram plugin's bot test)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from argus_testkit.processes import Child, seq, wait_for

INSTRUMENT = "kraken:BTC/USD"


class KrakenMarket(Child):
    """The local Kraken exchange process (:mod:`.paper_market`): REST and WS URLs;
    :meth:`hold` pauses the market (no new bars), :meth:`release` lets it go on."""

    def __init__(self, tmp: Path, every_s: float = 0.2) -> None:
        self.ready = tmp / "market.json"
        self.hold_path = tmp / "market.hold"
        self.events_path = tmp / "market.events"
        super().__init__("the local Kraken exchange",
                         [sys.executable, "-m", "argus_venue_kraken.testing.paper_market",
                          "--ready", str(self.ready),
                          "--every", str(every_s), "--hold", str(self.hold_path),
                          "--events", str(self.events_path)],
                         tmp / "market.log")
        try:
            urls = wait_for(lambda: self.ready.exists() and json.loads(self.ready.read_text()),
                            30, "the local Kraken exchange to listen")
        except AssertionError:
            self.stop()
            raise AssertionError(f"the local Kraken exchange did not start:\n"
                                 f"{self.output[-3000:]}") from None
        self.rest_url, self.ws_url = str(urls["rest_url"]), str(urls["ws_url"])

    def hold(self) -> None:
        """Pause: no bar after the one being played."""
        self.hold_path.touch()

    def release(self) -> None:
        """Go on with the market."""
        self.hold_path.unlink(missing_ok=True)

    def events_sent(self) -> int:
        """Market events sent so far (each book frame, each completed bar)."""
        return int(self.events_path.read_text()) if self.events_path.exists() else 0

    def settle(self, run_dir: Path, quiet_s: float = 0.5, timeout_s: float = 20) -> None:
        """Hold the market and wait until neither the market nor the run has moved for
        ``quiet_s``: the bar in flight as the hold came has been sent and handled.  (The
        run's checkpoint is its only outside mark of progress, and an event that changes
        nothing commits without one: quiet, not a count, is the sign.)"""
        self.hold()

        def quiet() -> bool:
            before = (self.events_sent(), seq(run_dir))
            time.sleep(quiet_s)
            return (self.events_sent(), seq(run_dir)) == before

        wait_for(quiet, timeout_s, "the held market and the run to settle", poll_s=0)


def paper_config(path: Path, market: KrakenMarket, *, plugins: list[str],
                 extra: str = "") -> Path:
    """A paper-trading config: ``ma_cross`` (fast 2, slow 3) on ``market``'s BTC/USD with
    the paper broker; the builtin checks stay on, with the losing-streak breaker out of
    the way (the zigzag market pays fees on every round trip) so that the run stays
    ACTIVE until a person halts it.  ``extra``: more TOML (a plugin's table)."""
    names = ", ".join(json.dumps(p) for p in ["kraken", *plugins])
    path.write_text(f"""\
[argus]
plugins = [{names}]
mode = "paper"

[run]
venue = "kraken"
strategies = ["ma_cross"]

[plugins.example]
fast = 2
slow = 3

[plugins.risk]
max_consecutive_losses = 1000000

[plugins.kraken]
rest_url = "{market.rest_url}"
ws_url = "{market.ws_url}"
pairs = ["BTC/USD"]
channels = ["book", "ohlc"]
nonce_path = "{path.parent / 'kraken-nonce'}"
heartbeat_timeout_s = 60
dead_man_timeout_s = 0
{extra}""")
    return path
