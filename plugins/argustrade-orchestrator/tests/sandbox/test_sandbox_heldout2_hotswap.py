"""Second held-out audit, the hot-swap: versions that pass the filter and fail later.

A real loop (the builtin replay venue's bars, through a feed that runs a person's CLI
command between two events) runs the seed strategy; a person promotes a version that
passes the static filter but fails somewhere on the way in:

* its worker cannot start (its ``__init__`` raises): the failure escaped the
  orchestrator's tick into the *incumbent's* ``on_event``, so the runner recorded a
  ``strategy_error`` against the slot, went REDUCING (the incumbent's event was lost),
  and the request stayed ``requested:full`` for ever;
* the state hand-over fails at the swap (a version that shadowed keeps its own state
  and takes the incumbent's other keys: together past the 256 KiB limit): the runner
  kept the incumbent, but the orchestrator never looked at the swap's outcome, so the
  ledger said the new version was ``full`` and the seed ``retired`` while the seed
  went on trading, and the new version's worker was never stopped;
* it raises on its first real event: rolled back to the seed, REDUCING, recorded (this
  one held).

Each now leaves the run trading (or REDUCING only for a version that really traded
and failed) with the ledger saying what happened and why.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import types
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from argus_orchestrator import commands as orchestrator_commands
from argus_orchestrator.sandbox import SandboxedStrategy
from argus_orchestrator.session import run_orchestrated
from argus_orchestrator.versions import VersionStore
from click.testing import CliRunner

from argus_core import plugins
from argus_core.builtins.replay_venue import ReplaySettings, ReplayVenue
from argus_core.hookspecs import hookimpl
from argus_core.ledger import Ledger
from argus_core.models import MarketEvent

ROOT = Path(__file__).parents[4]
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
SEED = ROOT / "examples" / "orchestrator" / "seed_strategy.py"

#: Passes the filter; its worker fails while loading (the instance is made at start-up).
FAILS_TO_START = '''"""Refuses to start."""


class Strategy:
    """Its constructor raises."""

    EVENTS = ("bar",)

    def __init__(self):
        raise ValueError("not today")

    def on_event(self, event, state, portfolio):
        return []
'''

#: Passes the filter; keeps only its own key (262,011 bytes as JSON, just inside the
#: 262,144-byte state limit), so the incumbent's keys (its 40 closes) that the promotion
#: adds back take the hand-over past it.
OVERSIZED_HANDOVER = '''"""Holds a big state of its own."""


class Strategy:
    """Drops every key but its own, which fills the state limit."""

    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        for key in list(state.keys()):
            if key != "pad":
                del state[key]
        state["pad"] = "x" * (int(event["close"] > 0) * 262_000)
        return []
'''

#: Passes the filter; raises on the first event it trades.
RAISES_ON_FIRST_EVENT = '''"""Fails on its first event."""


class Strategy:
    """Reads a key it never wrote."""

    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        return [state["never-written"]]
'''


class GatedReplay(ReplayVenue):
    """The replay venue's bars, running ``HOOKS[n]`` (on a thread, the loop idle meanwhile,
    as between two live ticks) before handing out event ``n``."""

    name = "gated2"
    hooks: ClassVar[dict[int, Callable[[], None]]] = {}

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """Events in order, pausing for hooks (only in the loop under test)."""
        live = threading.current_thread() is threading.main_thread()
        for n, event in enumerate(self.events(), start=1):
            hook = self.hooks.get(n) if live else None
            if hook is not None:
                await asyncio.to_thread(hook)
            yield event


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> type[GatedReplay]:
    GatedReplay.hooks = {}
    module = types.ModuleType("argus_test_gated2_feed")
    module.config_class = hookimpl(lambda: ReplaySettings)  # type: ignore[attr-defined]
    module.register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("gated2", GatedReplay))
    monkeypatch.setitem(sys.modules, "argus_test_gated2_feed", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("gated2", "argus_test_gated2_feed")))
    return GatedReplay


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "orchestrate.toml"
    (tmp_path / "cassette.json").write_text(json.dumps({"interactions": []}))
    path.write_text(f"""
[argus]
plugins = ["orchestrator", "lab"]
mode = "replay"
seed = 3

[run]
venue = "gated2"
strategies = ["ma_cross"]
sizer = "kelly"
starting_cash = "100000"
checkpoint_every_events = 1

[plugins.gated2]
bars_csv = "{BARS}"
venue = "replay"
symbol = "BTC/USD"
start = "2022-01-01"
end = "2022-01-06"

[plugins.orchestrator]
slot = "ma_cross"
seed_source = "{SEED}"
transport = "recorded:cassette.json"
poll_every_events = 10
""")
    return path


def _cli(*args: str) -> None:
    result = CliRunner().invoke(orchestrator_commands.strategies_group, list(args))
    assert result.exit_code == 0, result.output


def _add_version(run_dir: Path, source: str, ids: dict[str, str]) -> None:
    with orchestrator_commands._open_ledger(run_dir) as ledger:
        store = VersionStore(ledger)
        ids["seed"] = store.list()[0]["version_id"]
        ids["v2"] = store.add(slot="ma_cross", source=source, parent_id=ids["seed"],
                              status="candidate", reason="held-out sample")


def _run(tmp_path: Path, gated: type[GatedReplay],
         hooks: dict[int, Callable[[Path, dict[str, str]], None]]
         ) -> tuple[Path, dict[str, str], list[str]]:
    run_dir = tmp_path / "run"
    ids: dict[str, str] = {}
    gated.hooks = {n: (lambda h=h: h(run_dir, ids)) for n, h in hooks.items()}
    echoes: list[str] = []
    run_orchestrated(_config(tmp_path), run_dir=run_dir, max_cycles=0, echo=echoes.append)
    return run_dir, ids, echoes


def _promote(to: str, source: str | None = None) -> Callable[[Path, dict[str, str]], None]:
    def hook(run_dir: Path, ids: dict[str, str]) -> None:
        if source is not None:
            _add_version(run_dir, source, ids)
        _cli("promote", "--run-dir", str(run_dir), ids["v2"], "--to", to)
    return hook


def _trading_state(ledger: Ledger) -> str:
    control = json.loads(ledger.get_control("trading_state") or '{"state": "active"}')
    return str(control["state"])


def test_a_version_whose_worker_cannot_start_is_refused_and_the_run_trades_on(
        tmp_path: Path, gated: type[GatedReplay]) -> None:
    run_dir, ids, echoes = _run(tmp_path, gated, {15: _promote("full", FAILS_TO_START)})
    with Ledger.in_dir(run_dir) as ledger:
        store = VersionStore(ledger)
        v2 = store.get(ids["v2"])
        assert v2["status"] == "rejected", store.events(ids["v2"])
        assert "could not start" in v2["reason"] and "not today" in v2["reason"], v2["reason"]
        assert store.get(ids["seed"])["status"] == "full"
        # Nothing was blamed on the incumbent: no strategy error, the loop still ACTIVE.
        assert not ledger.query("select * from risk_events where check_name = "
                                "'strategy_error'")
        assert _trading_state(ledger) == "active"
        state = json.loads(ledger.query("select state_json from checkpoints")[0]["state_json"])
        assert state["versions"].get("ma_cross") in (None, ids["seed"])  # never swapped
    assert any("could not start" in line for line in echoes), echoes


def test_a_failed_state_handover_is_recorded_and_the_incumbent_keeps_trading(
        tmp_path: Path, gated: type[GatedReplay], monkeypatch: pytest.MonkeyPatch) -> None:
    workers: list[SandboxedStrategy] = []
    real_init = SandboxedStrategy.__init__

    def tracking_init(self: SandboxedStrategy, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        workers.append(self)

    monkeypatch.setattr(SandboxedStrategy, "__init__", tracking_init)
    # Requests are read every 10 events: shadow from event 20, full from event 50.
    run_dir, ids, echoes = _run(tmp_path, gated, {15: _promote("shadow", OVERSIZED_HANDOVER),
                                                   45: _promote("full")})
    with Ledger.in_dir(run_dir) as ledger:
        store = VersionStore(ledger)
        path = [e["to_status"] for e in store.events(ids["v2"])]
        assert path[-2:] == ["full", "rejected"], path
        reason = store.get(ids["v2"])["reason"]
        assert "hot-swap" in reason and "hand-over" in reason, reason
        seed_events = store.events(ids["seed"])
        assert store.get(ids["seed"])["status"] == "full", seed_events
        assert "kept trading" in seed_events[-1]["reason"], seed_events[-1]
        state = json.loads(ledger.query("select state_json from checkpoints")[0]["state_json"])
        assert state["versions"].get("ma_cross") in (None, ids["seed"])  # never swapped
        assert "pad" not in state["strategies"]["ma_cross"]
        assert _trading_state(ledger) == "active"  # nothing traded that failed
        assert not ledger.query("select * from risk_events where check_name = "
                                "'strategy_error'")
    # The candidate's worker was stopped when the swap failed, not left running.
    candidates = [w for w in workers if w.source == OVERSIZED_HANDOVER]
    assert candidates and all(w.worker is None for w in candidates)
    assert any("hot-swap" in line and "failed" in line for line in echoes), echoes


def test_a_version_that_raises_on_its_first_event_is_rolled_back(
        tmp_path: Path, gated: type[GatedReplay]) -> None:
    run_dir, ids, echoes = _run(tmp_path, gated, {15: _promote("full", RAISES_ON_FIRST_EVENT)})
    with Ledger.in_dir(run_dir) as ledger:
        store = VersionStore(ledger)
        path = [e["to_status"] for e in store.events(ids["v2"])]
        assert path[-2:] == ["full", "rolled_back"], path
        assert "KeyError" in store.get(ids["v2"])["reason"]
        assert store.get(ids["seed"])["status"] == "full"
        errors = ledger.query("select reason from risk_events where check_name = "
                              "'strategy_error'")
        assert len(errors) == 1 and "KeyError" in errors[0]["reason"]
        assert _trading_state(ledger) == "reducing"
        state = json.loads(ledger.query("select state_json from checkpoints")[0]["state_json"])
        assert state["versions"]["ma_cross"] == ids["seed"]
    assert any(line.startswith("ROLLBACK:") for line in echoes), echoes


def test_a_rollback_whose_previous_version_cannot_start_halts_instead_of_ending_the_run(
        tmp_path: Path, gated: type[GatedReplay], monkeypatch: pytest.MonkeyPatch) -> None:
    """The version raises on its first event and is rolled back, but the seed's worker
    does not start again (under load: its start deadline): the error escaped the risk
    listener and ended the run.  Now the run goes on HALTED, the ledger saying why."""
    seed_source = SEED.read_text()
    real_init = SandboxedStrategy.__init__
    built: list[str] = []

    def init(self: SandboxedStrategy, source: str, *args: Any, **kwargs: Any) -> None:
        if source == seed_source and built:
            raise TimeoutError("the worker did not start within 15 s")
        built.append(source)
        real_init(self, source, *args, **kwargs)

    monkeypatch.setattr(SandboxedStrategy, "__init__", init)
    run_dir, ids, echoes = _run(tmp_path, gated, {15: _promote("full", RAISES_ON_FIRST_EVENT)})
    with Ledger.in_dir(run_dir) as ledger:
        store = VersionStore(ledger)
        assert store.get(ids["v2"])["status"] == "rolled_back"
        seed = store.get(ids["seed"])
        assert seed["status"] == "retired" and "could not reinstate" in seed["reason"], seed
        assert _trading_state(ledger) == "halted"
        (run,) = ledger.query("select status from runs")
        assert run["status"] == "finished"  # the run went on to its end, halted
    assert any(line.startswith("ROLLBACK FAILED:") for line in echoes), echoes
