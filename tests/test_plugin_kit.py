"""The plugin kit: ``argus_testkit`` (fake venue, clock, payloads, running a config, the
venue conformance suite), the plugin template in ``plugins/_template`` and the README's
"Writing a plugin", each followed from a temporary directory as a stranger would."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_test_helpers import BUNDLED_BARS
from argus_testkit import (
    ConfigRunner,
    FakeClock,
    FakeExchange,
    FakeLiveVenue,
    FakeVenueHarness,
    PayloadLoader,
    VenueConformance,
    fake_venue_plugin,
    load_payload,
)

from argus_core.config import Config
from argus_core.errors import DataError, OrderUnknown
from argus_core.interfaces import Strategy, StrategyContext, Venue
from argus_core.models import (
    Bar,
    Fill,
    Intent,
    Liquidity,
    MarketEvent,
    Order,
    OrderStatus,
    OrderUpdate,
    Side,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "plugins" / "_template"
README = (ROOT / "README.md").read_text()
X = "fake:X/USD"


# -- the conformance suite, run against the fake venue ----------------------------------

class TestFakeLiveVenueConformance(VenueConformance):
    """The reference run: the kit's own fake venue passes the suite it ships, whether fills
    come only from the stream, also in the submit answer (and twice), or are not replayed
    on reconnect.  The fixture is async, as a real venue's (a websocket server) will be."""

    @pytest.fixture(params=["stream", "answer+repeats", "no-replay"])
    async def venue_harness(self, request: pytest.FixtureRequest
                            ) -> AsyncIterator[FakeVenueHarness]:
        exchange = FakeExchange(replay_on_connect=request.param != "no-replay")
        exchange.fills_in_answer = exchange.repeat_fills = request.param == "answer+repeats"
        yield FakeVenueHarness(exchange)


class _Quick(FakeVenueHarness):
    timeout_s = 0.3


class _BlindResender(FakeLiveVenue):
    """Re-sends after a lost answer without asking the exchange first."""

    async def submit(self, order: Order) -> list[Fill]:
        wire = self._to_wire(order)
        try:
            self.exchange.submit(wire)
        except Exception:
            self.exchange.submit(wire)
        return []


class _Renumbering(FakeLiveVenue):
    """Gives a replayed fill a new id after each reconnect."""

    async def executions(self) -> Any:
        async for item in super().executions():
            if isinstance(item, Fill) and self.connections > 1:
                item = Fill(f"{item.fill_id}-{self.connections}", item.client_order_id,
                            item.venue, item.instrument_id, item.side, item.price,
                            item.quantity, item.fee, item.liquidity, item.ts_ns)
            yield item


class _Forgetful(FakeLiveVenue):
    """Ignores ``resume``: a restarted venue cannot map its orders back."""

    def resume(self, known: Any) -> None:
        return None


class _NoReconnect(FakeLiveVenue):
    """Ends its executions stream when the connection drops."""

    async def executions(self) -> Any:
        async for item in super().executions():
            yield item
            if self.connections > 1:
                return


class _Unstoppable(FakeLiveVenue):
    """Swallows the cancellation of its executions stream (stops only once closed); its
    fills come in the submit answer."""

    def __init__(self, settings: object = None, *, exchange: FakeExchange | None = None
                 ) -> None:
        super().__init__(settings, exchange=exchange)
        self.exchange.fills_in_answer = True

    async def executions(self) -> Any:
        while not self.closed:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue
        return
        yield


def _harness_of(venue_class: type[FakeLiveVenue]) -> FakeVenueHarness:
    class Harness(_Quick):
        def make_venue(self) -> Venue:
            return venue_class(exchange=self.exchange)

    return Harness(FakeExchange())


@pytest.mark.parametrize(("venue_class", "test", "complaint"), [
    (_BlindResender, "test_an_ambiguous_submit_never_makes_a_second_order",
     "holds 2 orders"),
    (_Renumbering, "test_a_fill_repeated_after_a_reconnect_is_booked_once",
     "new fill id"),
    (_Forgetful, "test_a_restarted_venue_resumes_its_orders", "after resume"),
    (_NoReconnect, "test_a_fill_repeated_after_a_reconnect_is_booked_once",
     "executions\\(\\) ended"),
    (_Unstoppable, "test_submit_is_acknowledged_and_filled", "kept running"),
], ids=["blind-resend", "renumbered-fills", "no-resume", "no-reconnect", "unstoppable"])
async def test_the_suite_catches_a_broken_venue(venue_class: type[FakeLiveVenue], test: str,
                                                complaint: str) -> None:
    suite = VenueConformance()
    with pytest.raises(AssertionError, match=complaint):
        await getattr(suite, test)(_harness_of(venue_class))


async def test_a_lost_answer_the_venue_cannot_resolve_is_order_unknown() -> None:
    exchange = FakeExchange()
    venue = FakeLiveVenue(exchange=exchange)
    order = FakeVenueHarness(exchange).marketable_order("r-1-s-0")
    exchange.fault_next_submit("unknown")
    with pytest.raises(OrderUnknown) as info:
        await venue.submit(order)
    assert info.value.client_order_ids == ["r-1-s-0"] and exchange.count("r-1-s-0") == 1
    exchange.fault_next_submit("unseen")
    await venue.submit(FakeVenueHarness(exchange).marketable_order("r-2-s-0"))
    assert exchange.count("r-2-s-0") == 1 and venue.resent == 1


# -- the fake venue through the real loop -----------------------------------------------

class BuyOnce(Strategy):
    """Buys two units on the first bar of ``instrument_id``."""

    name = "buy_once"

    def __init__(self, instrument_id: str = X) -> None:
        self.instrument_id = instrument_id
        self.done = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
        if self.done or not isinstance(event, Bar) or event.instrument_id != self.instrument_id:
            return []
        self.done = True
        return [Intent(self.name, self.instrument_id, Side.BUY, quantity="2")]

    def get_state(self) -> dict[str, Any]:
        return {"done": self.done}

    def set_state(self, state: dict[str, Any]) -> None:
        self.done = state["done"]


LIVE = {"argus": {"plugins": [], "mode": "live"},
        "run": {"venue": "fake", "strategies": ["buy_once"], "risk_checks": []}}


def test_a_live_run_books_repeated_fills_once_and_flags_a_stranger(
        run_config: ConfigRunner, fake_exchange: FakeExchange) -> None:
    fake_exchange.repeat_fills = True
    fake_exchange.fills_in_answer = True  # the answer and the stream both report the fill
    fake_exchange.push(Fill("T-stranger", "not-ours", "fake", X, Side.BUY, "1", "1", "0",
                            Liquidity.TAKER, 1))
    result = run_config.run(LIVE, strategies={"buy_once": BuyOnce()},
                            plugins={"fake": fake_venue_plugin(fake_exchange)},
                            live_confirmed=True)
    assert [(o["status"], Decimal(o["filled_quantity"])) for o in result.orders] == [
        ("filled", Decimal(2))]
    ours = [f for f in result.fills if f.client_order_id == result.orders[0]["client_order_id"]]
    assert len(ours) == 1 and result.positions[X] == 2
    assert result.orders[0]["venue_order_id"] == "V1"
    (unknown,) = [e for e in result.risk_events if e["action"] == "unknown_fill"]
    assert "not-ours" in unknown["reason"]  # pushed before the run: replayed on connect
    assert result.summary.fills == 1


def test_an_order_unknown_is_left_pending_until_the_stream_says(
        run_config: ConfigRunner, fake_exchange: FakeExchange) -> None:
    fake_exchange.fault_next_submit("unknown")
    result = run_config.run(LIVE, strategies={"buy_once": BuyOnce()},
                            plugins={"fake": fake_venue_plugin(fake_exchange)},
                            live_confirmed=True)
    assert fake_exchange.count(result.orders[0]["client_order_id"]) == 1  # never re-sent
    assert result.orders[0]["status"] == "filled"  # the executions stream resolved it
    assert [e["action"] for e in result.risk_events] == ["order_unknown"]


def test_a_failing_executions_stream_halts_the_run(run_config: ConfigRunner,
                                                   fake_exchange: FakeExchange) -> None:
    from argus_core.errors import ArgusError

    fake_exchange.fail_executions()
    with pytest.raises(ArgusError, match="executions stream refused"):
        run_config.run(LIVE, strategies={"buy_once": BuyOnce()},
                       plugins={"fake": fake_venue_plugin(fake_exchange)}, live_confirmed=True)


async def test_scripted_orders_resting_fills_and_baskets(fake_exchange: FakeExchange,
                                                         fake_venue: FakeLiveVenue) -> None:
    from argus_core.errors import BasketIncomplete

    harness = FakeVenueHarness(fake_exchange)
    fake_exchange.on_order = lambda o: [
        OrderUpdate(o.client_order_id, OrderStatus.REJECTED, 1, reason="scripted")]
    await fake_venue.submit(harness.marketable_order("a-1-s-0"))
    fake_exchange.on_order = None
    resting = harness.resting_order("a-2-s-0")
    await fake_venue.submit(resting)
    assert [o.client_order_id for o in await fake_venue.open_orders()] == ["a-2-s-0"]
    fill = fake_exchange.fill_resting("a-2-s-0")
    assert (fill.liquidity, fill.price, fill.fee) == (Liquidity.MAKER, resting.limit_price, 0)
    assert await fake_venue.open_orders() == []
    legs = [harness.marketable_order("a-3-s-0"), harness.marketable_order("a-3-s-1")]
    fake_exchange.fault_next_submit("basket_incomplete", "leg 2 killed")
    with pytest.raises(BasketIncomplete, match="leg 2 killed") as info:
        await fake_venue.submit_basket(legs)
    assert [f.client_order_id for f in info.value.fills] == ["a-3-s-0"]
    statuses = [ex.status for ex in fake_exchange.orders.values()]
    assert statuses == [OrderStatus.REJECTED, OrderStatus.FILLED, OrderStatus.FILLED,
                        OrderStatus.CANCELLED]


# -- running a config in a test ---------------------------------------------------------

def test_run_config_still_builds_a_config(run_config: ConfigRunner, tmp_path: Path) -> None:
    config = run_config({"argus": {"plugins": []}, "plugins": {"replay": {"bars_csv": "b.csv"}}})
    assert isinstance(config, Config) and config.base_dir == tmp_path


def test_run_config_runs_and_says_why_nothing_traded(run_config: ConfigRunner,
                                                     bars_csv: Path) -> None:
    """An intent without quantity or forecast is sized 0 by kelly; the result shows why."""

    class NoForecast(BuyOnce):
        def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
            return [Intent("buy_once", event.instrument_id, Side.BUY)] if isinstance(
                event, Bar) else []

    raw = {"argus": {"plugins": []},
           "run": {"venue": "replay", "strategies": ["buy_once"], "sizer": "kelly"},
           "plugins": {"replay": {"bars_csv": str(bars_csv)}}}
    silent = run_config.run(raw, strategies={"buy_once": NoForecast()})
    assert silent.orders == [] and len(silent.risk_events_of("sizing")) == 8
    assert "sized the intent to 0" in silent.risk_events_of("sizing")[0]["reason"]
    sized = run_config.run(raw, strategies={"buy_once": BuyOnce("replay:BTC/USD")})
    assert len(sized.orders_of("buy_once")) == 1 and len(sized.fills) == 1
    assert sized.summary.orders == 1 and sized.run_dir != silent.run_dir


# -- payloads and time -------------------------------------------------------------------

def test_payloads_json_ndjson_and_helpful_errors(tmp_path: Path, payloads: PayloadLoader
                                                ) -> None:
    assert payloads.directory == Path(__file__).parent / "fixtures"
    (tmp_path / "book.json").write_text('{"price": 0.1}')
    (tmp_path / "ws.ndjson").write_text('{"a": 1}\n\n{"a": 2}\n')
    (tmp_path / "bad.ndjson").write_text('{"a": 1}\n{oops\n')
    mine = PayloadLoader(tmp_path)
    assert mine("book.json", parse_float=Decimal) == {"price": Decimal("0.1")}
    assert mine("ws.ndjson") == [{"a": 1}, {"a": 2}]
    assert load_payload(tmp_path / "ws.ndjson") == [{"a": 1}, {"a": 2}]
    with pytest.raises(DataError, match=r"bad.ndjson:2"):
        mine("bad.ndjson")
    listing = re.escape("holds: bad.ndjson, book.json, ws.ndjson")
    with pytest.raises(FileNotFoundError, match=listing):
        mine("missing.json")


async def test_fake_clock_moves_only_when_told(fake_clock: FakeClock) -> None:
    start = fake_clock.time()
    await fake_clock.sleep(30)
    fake_clock.advance(0.5)
    assert fake_clock.monotonic() - start == 30.5 and fake_clock.sleeps == [30]
    assert fake_clock.time_ns() == round(fake_clock.clock() * 1e9)
    with pytest.raises(ValueError):
        fake_clock.advance(-1)


# -- the template and the README, followed from a temporary directory --------------------

#: Files a plugin author writes; the template's README is the only other file it has.
TEMPLATE_FILES = ("pyproject.toml", "src/argus_strategy_mine/__init__.py",
                  "src/argus_strategy_mine/plugin.py", "breakout.toml",
                  "tests/test_breakout.py")


def _writing_a_plugin() -> str:
    return README.split("\n## Writing a plugin\n", 1)[1].split("\n## ", 1)[0]


def _readme_files() -> dict[str, str]:
    """Fenced toml/python blocks whose first line is ``# <relative path>``: path -> text."""
    files = {}
    for body in re.findall(r"```(?:toml|python)\n(.*?)```", _writing_a_plugin(), re.S):
        first, _, rest = body.partition("\n")
        path = re.fullmatch(r"# ([\w/.-]+\.(?:toml|py))", first)
        if path:
            files[path.group(1)] = rest
    return files


def _readme_commands() -> list[str]:
    (block,) = re.findall(r"```bash\n(.*?)```", _writing_a_plugin(), re.S)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_the_readme_shows_the_template_file_for_file() -> None:
    files = _readme_files()
    assert sorted(files) == sorted(TEMPLATE_FILES)
    for rel, text in files.items():
        assert (TEMPLATE / rel).read_text() == text, f"README and plugins/_template/{rel} differ"
    # What following the README inside the template leaves behind is not shipped.
    local = {"__pycache__", ".pytest_cache", "argus-runs", "bars.csv", "build", "dist"}
    shipped = {p.relative_to(TEMPLATE).as_posix() for p in TEMPLATE.rglob("*")
               if p.is_file() and not local & set(p.parts)
               and not any(part.endswith(".egg-info") for part in p.parts)}
    # py.typed: the empty typing marker the README's prose mentions (nothing to show).
    assert shipped == {*TEMPLATE_FILES, "README.md", "src/argus_strategy_mine/py.typed"}
    meta = tomllib.loads(files["pyproject.toml"])
    assert meta["build-system"]["build-backend"] == "hatchling.build"  # pip can build it
    assert (meta["project"]["version"], meta["project"]["dependencies"]) == (
        "0.1.0", ["argustrade-core"])
    assert meta["project"]["entry-points"]["argus"] == {"mine": "argus_strategy_mine.plugin"}


class FreshEnv:
    """A new virtual environment that sees this one's packages (the core, its
    dependencies, hatchling) but not what gets installed into it, and commands run in it
    as a plugin author types them."""

    def __init__(self, root: Path) -> None:
        import site
        import sysconfig

        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)],
                       check=True, timeout=60)
        self.python = str(root / "bin" / "python")
        purelib = subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig."
                                  "get_paths()['purelib'])"], check=True, text=True,
                                 capture_output=True, timeout=60).stdout.strip()
        # addsitedir (not a bare path) so the parent's .pth files, editable installs
        # among them, are honoured; works whether or not this interpreter is a venv.
        parents = dict.fromkeys([sysconfig.get_paths()["purelib"],
                                 sysconfig.get_paths()["platlib"], *site.getsitepackages()])
        (Path(purelib) / "_argus_parent_env.pth").write_text(
            "".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
        # The first-party plugins installed here are not in a stranger's environment.
        from argus_core.plugins import KNOWN_DISTRIBUTIONS

        self.env = {**os.environ, "ARGUS_BLOCK_PLUGINS": ",".join(KNOWN_DISTRIBUTIONS),
                    "COLUMNS": "200", "NO_COLOR": "1"}

    def argv(self, command: str) -> list[str]:
        """``pip install X`` / ``argus ...`` / ``python ...`` in this environment.  pip
        installs without dependencies or build isolation: offline, and the core's
        distribution name may not be the one the template depends on yet."""
        words = command.split()
        if words[:2] == ["pip", "install"]:
            return [sys.executable, "-m", "pip", "--python", self.python, "install", "-q",
                    "--no-deps", "--no-build-isolation", *words[2:]]
        if words[0] == "argus":
            return [self.python, "-m", "argus_core.cli", *words[1:]]
        if words[0] == "python":
            return [self.python, *words[1:]]
        raise AssertionError(f"no rule to run {command!r}")

    def run(self, command: str, cwd: Path) -> str:
        done = subprocess.run(self.argv(command), cwd=cwd, env=self.env, text=True,
                              capture_output=True, timeout=300)
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n" \
                                     f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout


def _orders_in(run_root: Path) -> int:
    from argus_core.ledger import Ledger

    (db,) = run_root.glob("**/argus.db")
    with Ledger.in_dir(db.parent) as ledger:
        return int(ledger.query("select count(*) as n from orders")[0]["n"])


def _bars(folder: Path) -> None:
    shutil.copy(BUNDLED_BARS, folder / "bars.csv")


@pytest.mark.slow
def test_the_readme_is_followed_exactly_from_an_empty_folder(tmp_path: Path) -> None:
    """Write the README's files, copy the bars, run the README's commands."""
    folder = tmp_path / "argus-strategy-mine"
    for rel, text in _readme_files().items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    _bars(folder)
    env = FreshEnv(tmp_path / "venv")
    commands = _readme_commands()
    assert commands == ["pip install -e .", "argus plugins",
                        "argus backtest --config breakout.toml", "python -m pytest"]
    env.run(commands[0], folder)
    listed = env.run(commands[1], folder)
    assert re.search(r"mine\s.*argus-strategy-mine\s.*0\.1\.0.*strategy: breakout", listed)
    summary = env.run(commands[2], folder)
    assert _orders_in(folder / "argus-runs") > 0, summary
    assert "2 passed" in env.run(commands[3] + " -q -p no:cacheprovider", folder)


def test_the_template_installs_renamed_and_trades_under_kelly(tmp_path: Path) -> None:
    """Copy plugins/_template, rename it as its README says, pip install it (no editable
    mode), then ``argus plugins --json`` and the README's backtest."""
    folder = tmp_path / "argus-strategy-kitcheck"
    shutil.copytree(TEMPLATE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "src" / "argus_strategy_mine").rename(folder / "src" / "argus_strategy_kitcheck")
    renames = {"argus_strategy_mine": "argus_strategy_kitcheck",
               "argus-strategy-mine": "argus-strategy-kitcheck"}
    for path in (p for p in folder.rglob("*") if p.is_file() and p.suffix != ".csv"):
        text = path.read_text()
        for old, new in renames.items():
            text = text.replace(old, new)
        path.write_text(text)
    _bars(folder)
    env = FreshEnv(tmp_path / "venv")
    env.run(f"pip install {folder}", tmp_path)
    rows = {r["name"]: r for r in json.loads(env.run("argus plugins --json", tmp_path))}
    mine = rows["mine"]
    assert (mine["distribution"], mine["version"], mine["error"]) == (
        "argus-strategy-kitcheck", "0.1.0", None)
    assert mine["registered"] == {"strategy": ["breakout"]}
    env.run("argus backtest --config breakout.toml --run-dir run --no-progress", folder)
    assert _orders_in(folder / "run") > 0
