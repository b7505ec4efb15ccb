"""The plugin is found through the ``argus`` entry-point group, registers its scanners, and
validates ``[plugins.pmscanners]`` with ranges and clear errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from importlib.metadata import entry_points

import pytest
from argus_scanners_polymarket import plugin
from argus_scanners_polymarket.config import PmScannersSettings, RankingSettings
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.maker_strategy import MakerStrategy
from argus_scanners_polymarket.ranking import RankedScanner
from argus_scanners_polymarket.value import BaselineForecaster

from argus_core import ConfigError, Forecaster, Scanner, structure
from argus_core.testing import PluginHost


def test_entry_point_and_registered_scanners() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="argus")}
    assert eps["pmscanners"] == "argus_scanners_polymarket.plugin"
    assert plugin.config_class() is PmScannersSettings
    registered: dict[str, object] = {}
    plugin.register_scanners(lambda name, factory: registered.__setitem__(name, factory))
    assert set(registered) == set(plugin.SCANNERS)
    for name, factory in registered.items():
        scanner = factory(None)  # type: ignore[operator]
        assert isinstance(scanner, Scanner) and scanner.name == name
        assert type(scanner).__doc__ and type(scanner).scan.__doc__


def test_settings_sub_tables_validate() -> None:
    s = structure({"resolution": {"near_certain_price": "0.97", "max_size": 50}},
                  PmScannersSettings, "c.toml", prefix="plugins.pmscanners")
    assert s.resolution.near_certain_price == Decimal("0.97")
    assert s.resolution.max_size == Decimal(50)
    assert s.correlation.max_per_event == 3  # untouched tables keep their defaults


@pytest.mark.parametrize(("table", "needle"), [
    ({"resolution": {"near_certain_price": "1.2"}}, "near_certain_price = 1.2 is outside"),
    ({"resolution": {"max_hours_to_expiry": "0"}}, "max_hours_to_expiry = 0 is outside"),
    ({"correlation": {"similarity_threshold": 1.5}}, "similarity_threshold = 1.5 is outside"),
    ({"stale": {"persistence_scans": 0}}, "persistence_scans = 0 is outside"),
    ({"spike": {"reversion_fraction": "0"}}, "reversion_fraction = 0 is outside"),
    ({"maker": {"adverse_floor": "-0.1"}}, "adverse_floor = -0.1 is outside"),
    ({"value": {"executable_min_confidence": 2}}, "executable_min_confidence = 2.0 is outside"),
    ({"latency": {"default_vol": 0}}, "default_vol = 0.0 is outside"),
    ({"ranked": {"w_edge": -1}}, "w_edge = -1.0 is outside"),
    ({"baseline": {"confidence": "1.5"}}, "confidence = 1.5 is outside"),
    ({"resolution": {"bogus": 1}}, "unknown key(s) (bogus)"),
    ({"nope": {}}, "unknown key(s) (nope)"),
    ({"pm_maker": {"max_inventory": "0"}}, "max_inventory = 0 is outside"),
    ({"pm_maker": {"cancel_ofi": 0}}, "cancel_ofi = 0.0 is outside"),
    ({"pm_maker": {"min_requote_s": -1}}, "min_requote_s = -1.0 is outside"),
    ({"pm_maker": {"time_in_force": "ioc"}}, "time_in_force"),
    ({"pm_maker": {"bogus": 1}}, "unknown key(s) (bogus)"),
])
def test_settings_out_of_range_or_unknown_are_refused_by_name(table: dict[str, object],
                                                              needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        structure(table, PmScannersSettings, "c.toml", prefix="plugins.pmscanners")
    assert needle in str(info.value) and str(info.value).startswith("c.toml")


def test_host_registers_the_scanners_and_the_baseline_forecaster(
        argus_host: PluginHost, register_plugin: Callable[[object, str], None]) -> None:
    register_plugin(plugin, "pmscanners")
    for name in ("value", "maker", "latency", "ranked"):
        assert argus_host.get("scanner", name).plugin == "pmscanners"
    strategy = argus_host.get("strategy", "pm_maker")
    assert strategy.plugin == "pmscanners"
    made = strategy.factory(PmScannersSettings())
    assert isinstance(made, MakerStrategy) and made.name == "pm_maker"
    reg = argus_host.get("forecaster", "baseline")
    assert reg.plugin == "pmscanners"
    assert isinstance(reg.factory(None), Forecaster)


def test_argus_scan_table_shows_each_lane_and_its_reason() -> None:
    """``argus scan`` prints the core's table (``argus_core.scan``): lane, kind, ..., reason;
    the ``ranked`` scanner's reasons start with the lane's reason and the score."""
    from rich.console import Console

    from argus_core.scan import _table

    b = MarketBuilder()
    (a, _), _ = b.event("R", ["A", "B"], end_ts_ns=10)
    b.book(a, [], [(0.97, 100)], ts_ns=20)
    b.settle(a, 1)
    ((v, _),) = b.event("V", ["T"], neg_risk=False)
    b.book(v, [(0.30, 100)], [(0.45, 100)], ts_ns=20)
    b.market.forecasters = {"baseline": BaselineForecaster()}
    opps = RankedScanner(PmScannersSettings(ranked=RankingSettings(
        scanners=["resolution", "maker"]))).scan(b.market, 30)
    assert {(o.kind, o.lane) for o in opps} == {("resolved", "research"),
                                                ("maker_bid", "research"),
                                                ("maker_ask", "research")}
    console = Console(width=400, record=True)
    console.print(_table(opps))
    text = console.export_text()
    assert "lane" in text.splitlines()[1] and "reason" in text.splitlines()[1]
    assert "lane=research: resolution reports it as research; score" in text
    assert "lane=research: maker quote: needs the maker lifecycle; score" in text
