"""The offline example's exchanges: a local Kalshi exchange and the Polymarket replay
server, serving one mapped event with a planted cross-venue mispricing.

Run them and write ready configs (the local Kalshi exchange listens on a free port, so
the configs are written with the ports it got)::

    python -m argus_crossvenue.testing --out runs/crossvenue [--settle-after 20]

prints the ``argus scan`` / ``argus run`` commands and serves until interrupted.  Tests
use :class:`ExampleServers` directly.  Everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any

from argus_venue_kalshi.testing import LocalKalshi
from argus_venue_polymarket.replay_server import SnapshotServer

#: The example folder of a source checkout (``plugins/argustrade-crossvenue/example``).
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example"


class ExampleServers:
    """Both local exchanges of the example: ``with ExampleServers() as ex:``; ``ex.urls``
    for the configs, ``ex.settle()`` resolves the event on both venues (Kalshi's
    lifecycle ``settled`` frame; Polymarket's Gamma serves the market resolved, which
    the venue's resolution poll picks up)."""

    def __init__(self, example_dir: Path = EXAMPLE_DIR) -> None:
        self.example_dir = Path(example_dir)
        self.kalshi_spec: dict[str, Any] = json.loads(
            (self.example_dir / "kalshi" / "market.json").read_text())
        self.polymarket = SnapshotServer.from_dir(self.example_dir / "polymarket", ws_port=0)
        self.kalshi: LocalKalshi | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="local-kalshi")

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(10)

    def start(self) -> ExampleServers:
        """Start both servers."""
        self.polymarket.start()
        self._thread.start()

        async def up() -> LocalKalshi:
            ex = LocalKalshi()  # no public key: the example needs no credentials
            await ex.__aenter__()
            spec = self.kalshi_spec
            ex.add_market(dict(spec["market"]),
                          yes_bids={int(k): v for k, v in spec["yes_bids"].items()},
                          no_bids={int(k): v for k, v in spec["no_bids"].items()})
            return ex
        self.kalshi = self._call(up())
        return self

    def stop(self) -> None:
        """Stop both servers."""
        if self.kalshi is not None:
            self._call(self.kalshi.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self.polymarket.stop()

    def __enter__(self) -> ExampleServers:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                 ) -> None:
        self.stop()

    @property
    def urls(self) -> dict[str, str]:
        """The placeholders of the example's config templates, filled in."""
        assert self.kalshi is not None
        return {"KALSHI_REST": self.kalshi.rest.url, "KALSHI_WS": self.kalshi.ws.url,
                "POLYMARKET_HTTP": self.polymarket.url,
                "POLYMARKET_WS": self.polymarket.ws_url,
                "EXAMPLE": str(self.example_dir)}

    def settle(self) -> None:
        """Resolve the event on both venues as ``kalshi/market.json``'s ``result`` and
        ``polymarket/resolutions.json`` say."""
        kalshi = self.kalshi
        assert kalshi is not None
        ticker, result = self.kalshi_spec["market"]["ticker"], self.kalshi_spec["result"]

        async def settle() -> None:
            kalshi.engine.settle(ticker, result)
        self._call(settle())
        self.polymarket.resolve()

    def write_configs(self, out_dir: Path) -> dict[str, Path]:
        """The example's ``*.toml`` templates with this run's addresses, under ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = {}
        for template in sorted(self.example_dir.glob("*.toml")):
            if template.name == "mapping.toml":
                continue
            text = template.read_text()
            for key, value in self.urls.items():
                text = text.replace(f"@{key}@", value)
            target = out_dir / template.name
            target.write_text(text)
            written[template.stem] = target
        return written


def main(argv: list[str] | None = None) -> None:
    """Serve the example and write its configs (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", type=Path, default=EXAMPLE_DIR)
    parser.add_argument("--out", type=Path, required=True, help="where configs are written")
    parser.add_argument("--settle-after", type=float, default=None,
                        help="resolve the event on both venues after this many seconds")
    args = parser.parse_args(argv)
    with ExampleServers(args.example) as servers:
        configs = servers.write_configs(args.out)
        for key, value in servers.urls.items():
            print(f"{key.lower()}={value}")
        for name, path in configs.items():
            print(f"{name}: {path}")
        started = time.monotonic()
        try:
            while True:
                time.sleep(0.2)
                if args.settle_after is not None and \
                        time.monotonic() - started >= args.settle_after:
                    servers.settle()
                    print("settled both venues", flush=True)
                    args.settle_after = None
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
