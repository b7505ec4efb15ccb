"""Opportunity lanes: the runner trades only a scanner's executable findings; research
findings are stored (status ``research``) and observed, never sent, so listing a research
scanner in a paper or live config cannot trade its guesses."""

from __future__ import annotations

import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_test_helpers import BUNDLED_BARS

from argus_core import Leg, Opportunity, Scanner, Side, hookimpl
from argus_core.config import parse_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner


class OneLegScanner(Scanner):
    """Every scan: one buy of 0.01 BTC up to 1% over the last close, in the configured
    lane."""

    name = "one_leg"

    def __init__(self, lane: str) -> None:
        self.lane = lane

    def scan(self, market: Any, ts_ns: int) -> list[Opportunity]:
        bar = market.bars.get(next(iter(market.instruments)))
        if bar is None:
            return []
        limit = (Decimal(str(bar.close)) * Decimal("1.01")).quantize(Decimal("0.1"))
        return [Opportunity(f"opp-{ts_ns}", self.name, ts_ns, "test",
                            (Leg(bar.instrument_id, Side.BUY, limit, Decimal("0.01")),),
                            Decimal("0.1"), Decimal("0.01"), Decimal("0.001"), Decimal(0),
                            reason="constructed", lane=self.lane)]


@pytest.fixture
def scanner_plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    from argus_core import plugins

    module = types.ModuleType("argus_test_lanes")
    module.seen = []  # type: ignore[attr-defined]
    module.register_scanners = hookimpl(  # type: ignore[attr-defined]
        lambda register: [register(f"one_leg_{lane}", lambda s, lane=lane: OneLegScanner(lane))
                          for lane in ("executable", "research")])
    module.on_opportunity = hookimpl(  # type: ignore[attr-defined]
        lambda opportunity: module.seen.append(opportunity.lane))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "argus_test_lanes", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS, ("lanes", "argus_test_lanes")))
    return module


def _config(tmp_path: Path, scanner: str) -> Any:
    return parse_config({
        "argus": {"plugins": []},
        "run": {"venue": "replay", "strategies": [], "scanners": [scanner],
                "scan_every_events": 100, "sizer": "fixed_fraction"},
        "plugins": {"replay": {"bars_csv": str(BUNDLED_BARS), "start": "2022-01-01",
                               "end": "2022-01-10"}}}, tmp_path / "c.toml")


@pytest.mark.parametrize(("lane", "traded"), [("executable", True), ("research", False)])
def test_only_the_executable_lane_is_traded(tmp_path: Path, scanner_plugin: types.ModuleType,
                                            lane: str, traded: bool) -> None:
    summary = Runner(_config(tmp_path, f"one_leg_{lane}"), tmp_path / "run").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        found = ledger.query("select status from opportunities")
        orders = ledger.query("select basket_id from orders")
    assert len(found) >= 2 and set(scanner_plugin.seen) == {lane}
    assert {r["status"] for r in found} == ({"seen"} if traded else {"research"})
    if traded:
        assert len(orders) == len(found) and summary.fills > 0
        assert all(r["basket_id"].startswith("opp-") for r in orders)
    else:
        assert orders == [] and summary.fills == 0


def test_an_unknown_lane_is_refused_where_the_opportunity_is_made() -> None:
    base = Opportunity("o", "s", 1, "k", (), Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    assert base.lane == "executable"
    with pytest.raises(ValueError, match="lane"):
        attrs.evolve(base, lane="maybe")


def test_argus_scan_lists_ranked_findings_best_score_first_then_by_profit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from argus_core import plugins
    from argus_core.scan import _table, snapshot_and_scan

    def opp(oid: str, profit: str, score: float | None) -> Opportunity:
        return Opportunity(oid, "fixed", 0, "k", (), Decimal(0), Decimal(0), Decimal(profit),
                           Decimal(0), score=score)

    class Fixed(Scanner):
        name = "fixed"

        def scan(self, market: Any, ts_ns: int) -> list[Opportunity]:
            return [opp("a", "5", None), opp("b", "1", 0.9), opp("c", "9", 0.2),
                    opp("d", "7", None)]

    module = types.ModuleType("argus_test_scores")
    module.register_scanners = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("fixed", lambda s: Fixed()))
    monkeypatch.setitem(sys.modules, "argus_test_scores", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS, ("scores", "argus_test_scores")))
    found = asyncio.run(snapshot_and_scan(_config(tmp_path, "fixed")))
    assert [o.opportunity_id for o in found] == ["b", "c", "d", "a"]
    table = _table(found)
    assert table.columns[1].header == "score"
    assert list(table.columns[1].cells) == ["0.900", "0.200", "", ""]


class TwinScanner(OneLegScanner):
    """The same buy as :class:`OneLegScanner`, under its own ids (another scanner plugin
    finding the same liquidity)."""

    name = "twin"

    def scan(self, market: Any, ts_ns: int) -> list[Opportunity]:
        return [attrs.evolve(o, opportunity_id=f"twin-{ts_ns}", scanner=self.name)
                for o in super().scan(market, ts_ns)]


def test_two_scanners_finding_one_book_side_trade_it_once_per_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """negRisk and a ranking (or any two scanners) finding the same basket in one scan:
    the first configured trades it, the second is kept as research naming the first (it
    would have chased liquidity already bought)."""
    from argus_core import plugins

    module = types.ModuleType("argus_test_twins")
    module.register_scanners = hookimpl(  # type: ignore[attr-defined]
        lambda register: [register("first", lambda s: OneLegScanner("executable")),
                          register("twin", lambda s: TwinScanner("executable"))])
    monkeypatch.setitem(sys.modules, "argus_test_twins", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS, ("twins", "argus_test_twins")))
    config = _config(tmp_path, "first")
    config = attrs.evolve(config, run=attrs.evolve(config.run, scanners=["first", "twin"]))
    Runner(config, tmp_path / "run").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        found = ledger.query("select opportunity_id, status, body_json from opportunities")
        orders = ledger.query("select distinct basket_id from orders")
    firsts = [r for r in found if r["opportunity_id"].startswith("opp-")]
    twins = [r for r in found if r["opportunity_id"].startswith("twin-")]
    assert len(firsts) >= 2 and len(twins) == len(firsts)
    assert {r["status"] for r in firsts} == {"seen"} and {r["status"] for r in twins} == {
        "research"}
    assert all("trades the same book side this scan" in r["body_json"] for r in twins)
    assert {r["basket_id"] for r in orders} == {r["opportunity_id"] for r in firsts}


class PersistingScanner(OneLegScanner):
    """The same buy under fixed ids: ``keep`` in every scan, ``blink`` in every other."""

    name = "persisting"

    def __init__(self) -> None:
        super().__init__("executable")
        self.scans = 0

    def scan(self, market: Any, ts_ns: int) -> list[Opportunity]:
        self.scans += 1
        found = super().scan(market, ts_ns)
        ids = ["keep", "blink"] if self.scans % 2 else ["keep"]
        return [attrs.evolve(o, opportunity_id=i, scanner=self.name) for o in found for i in ids]


def test_a_finding_the_last_scan_stored_is_not_stored_or_serialised_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ranking's persisting findings: each is serialised and offered to the ledger once
    while it persists (it cost ~30 ms a scan for ~3,000 of them), traded once, observed
    once; one that vanished and came back is offered again, its row kept as it was."""
    from argus_core import plugins, runner

    module = types.ModuleType("argus_test_persisting")
    module.seen = []  # type: ignore[attr-defined]
    module.register_scanners = hookimpl(  # type: ignore[attr-defined]
        lambda register: [register("persisting", lambda s: PersistingScanner())])
    module.on_opportunity = hookimpl(  # type: ignore[attr-defined]
        lambda opportunity: module.seen.append(  # type: ignore[attr-defined]
            opportunity.opportunity_id))
    monkeypatch.setitem(sys.modules, "argus_test_persisting", module)
    monkeypatch.setattr(plugins, "BUILTINS",
                        (*plugins.BUILTINS, ("persisting", "argus_test_persisting")))
    offered: list[str] = []
    insert = Ledger.insert_opportunity
    monkeypatch.setattr(Ledger, "insert_opportunity",
                        lambda self, oid, *a, **k: offered.append(oid) or insert(self, oid, *a,
                                                                                  **k))
    dumped: list[Any] = []
    dumps = runner.json.dumps
    monkeypatch.setattr(runner.json, "dumps", lambda obj, **k: dumped.append(obj) or dumps(
        obj, **k))
    config = _config(tmp_path, "persisting")
    config = attrs.evolve(config, run=attrs.evolve(config.run, scan_every_events=20))
    Runner(config, tmp_path / "run").run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        found = ledger.query("select opportunity_id, status from opportunities order by 1")
        orders = ledger.query("select basket_id from orders")
    blinks = offered.count("blink")
    assert blinks >= 4 and offered.count("keep") == 1
    assert sum(1 for d in dumped if isinstance(d, dict)  # (a book's slot name: a str)
               and d.get("opportunity_id") in ("keep", "blink")) == len(offered)
    # blink wants the book side keep took in its first scan: kept as research, as before
    assert [(r["opportunity_id"], r["status"]) for r in found] == [("blink", "research"),
                                                                   ("keep", "seen")]
    assert [r["basket_id"] for r in orders] == ["keep"]
    assert sorted(module.seen) == ["blink", "keep"]  # type: ignore[attr-defined]
