"""Helpers of the dashboard's tests: configs, reading the ledger independently of the
dashboard, and a dashboard served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argus_testkit import FakeLiveVenue, extra_plugins
from argus_testkit.processes import query
from argus_testkit.processes import wait_for as wait_for  # the test modules' too
from starlette.applications import Starlette

from argus_core import (
    Bar,
    Intent,
    Ledger,
    MarketEvent,
    Register,
    Runner,
    Side,
    Strategy,
    hookimpl,
)
from argus_core.config import parse_config

ROOT = Path(__file__).resolve().parents[3]
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
TOKEN = "alice-secret-token-1"
TOKEN_ENV = "ARGUS_DASHBOARD_TEST_TOKEN"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Browser tests run only where Debian's Chromium and its driver are installed.
NEEDS_CHROMIUM = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless browser tests need Debian's chromium and chromium-driver "
           "(apt-get install -y chromium chromium-driver)")


def replay_config(plugins: list[str] | None = None) -> dict[str, Any]:
    """Two months of the bundled bars with the example strategy (16 fills, REDUCING)."""
    return {"argus": {"plugins": plugins or []},
            "run": {"venue": "replay", "strategies": ["ma_cross"], "sizer": "fixed_fraction"},
            "plugins": {"replay": {"bars_csv": str(BARS), "start": "2022-01-01",
                                   "end": "2022-03-01"},
                        "example": {"fast": 5, "slow": 20}}}


def control_value(run_dir: Path) -> dict[str, Any] | None:
    """The trading-state control row, parsed."""
    found = query(run_dir, "select value from control where key = 'trading_state'")
    return json.loads(found[0]["value"]) if found else None


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium through Debian's chromedriver (Selenium)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def attr(browser: Any, ident: str, name: str = "data-value") -> str:
    """An element's attribute, read from the live DOM."""
    return str(browser.find_element("id", ident).get_attribute(name))


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A dashboard served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def add_fill(run_dir: Path, n: int, price: str = "123.45") -> str:
    """Book one more order and fill in the ledger, as the loop would; its fill id."""
    with Ledger.in_dir(run_dir) as ledger, ledger.transaction():
        coid = f"extra-{n}"
        ledger.insert("orders", {
            "client_order_id": coid, "run_id": "r", "venue": "replay",
            "instrument_id": "replay:BTC/USD", "side": "buy", "quantity": "1",
            "order_type": "market", "time_in_force": "ioc", "strategy": "test",
            "ts_ns": 2 * 10**18 + n, "status": "filled", "filled_quantity": "1"})
        ledger.insert("fills", {
            "fill_id": f"{coid}-1", "client_order_id": coid, "venue": "replay",
            "instrument_id": "replay:BTC/USD", "side": "buy", "price": price,
            "quantity": "1", "fee": "0.5", "liquidity": "taker", "ts_ns": 2 * 10**18 + n})
        ledger.append_equity([(2 * 10**18 + n, "1", "50000.5", "0")])
    return f"{coid}-1"


# -- a paper run on a live local feed ----------------------------------------------------------

IID = "fake:X/USD"


class PacedFeed(FakeLiveVenue):
    """A live local data feed: a bar of ``fake:X/USD`` every 50 ms, stamped with the wall
    clock, until ``stop`` is set (or a minute has passed)."""

    stop = threading.Event()

    async def stream(self) -> AsyncIterator[MarketEvent]:
        started = time.monotonic()
        i = 0
        while not self.stop.is_set() and time.monotonic() - started < 60:
            i += 1
            price = 100.0 + (i % 7) * 0.25
            yield Bar(IID, time.time_ns(), price, price * 1.002, price * 0.998, price, 1000.0)
            await asyncio.sleep(0.05)


class Flip(Strategy):
    """Buys one unit when flat and sells it when long, every fourth bar: it trades for as
    long as it may."""

    name = "flip"

    def __init__(self) -> None:
        self.bars = 0

    def on_event(self, event: MarketEvent, ctx: Any) -> Sequence[Intent]:
        if not isinstance(event, Bar):
            return []
        self.bars += 1
        if self.bars % 4:
            return []
        held = ctx.portfolio.position(IID).quantity
        if held == 0:
            return [Intent("flip", IID, Side.BUY, quantity="1", reason="flat")]
        return [Intent("flip", IID, Side.SELL, quantity=held, reduce_only=True,
                       reason="long")]


class PaperPlugin:
    """The test plugin: venue ``paced`` and strategy ``flip``."""

    @hookimpl
    def register_venues(self, register: Register) -> None:
        register("paced", PacedFeed)

    @hookimpl
    def register_strategies(self, register: Register) -> None:
        register("flip", lambda settings: Flip())


class PaperRun:
    """A paper run in a thread: its runner, and its summary once it has ended."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.summary: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.summary = self.runner.run_sync()
        except BaseException as exc:  # re-raised by the test's thread
            self.error = exc


@contextlib.contextmanager
def paper_run(run_dir: Path) -> Iterator[PaperRun]:
    """A paper run of ``flip`` on the ``paced`` feed, trading while the block runs; on
    leaving, the feed stops, the run ends and its summary is ready."""
    PacedFeed.stop = threading.Event()
    config = parse_config({"argus": {"plugins": [], "mode": "paper"},
                           "run": {"venue": "paced", "strategies": ["flip"],
                                   "risk_checks": []}}, run_dir.parent / "config.toml")
    with extra_plugins({"paced_paper": PaperPlugin()}):
        run = PaperRun(Runner(config, run_dir))
        thread = threading.Thread(target=run.run, daemon=True)
        thread.start()
        try:
            yield run
        finally:
            PacedFeed.stop.set()
            thread.join(timeout=20)
    if run.error is not None:
        raise run.error
    assert run.summary is not None, "the paper run did not end"
