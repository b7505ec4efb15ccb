"""The mapping file, the settings, the inner venues built from their tables, and
``argus crossvenue suggest``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from argus_crossvenue.config import CrossVenueSettings
from argus_crossvenue.mapping import load_mapping
from argus_crossvenue.suggest import suggest
from argus_crossvenue.testing import ExampleServers
from argus_crossvenue.venue import CrossVenue, build_inner
from argus_venue_kalshi.venue import KalshiVenue
from argus_venue_polymarket.venue import PolymarketVenue
from click.testing import CliRunner

from argus_core import ConfigError, Instrument, Settlement, load_config, plugin_settings
from argus_core.cli import cli


def test_a_mapping_pair_reads_back(write_mapping: Callable[..., Path]) -> None:
    (pair,) = load_mapping(write_mapping())
    assert pair.kalshi.instrument_id == "kalshi:KXFEDCUT-26SEP/YES"
    assert pair.kalshi.complement_id == "kalshi:KXFEDCUT-26SEP/NO"
    assert pair.polymarket.instrument_id == "polymarket:111"
    assert pair.risk_free and pair.differences() == []


@pytest.mark.parametrize(("change", "message"), [
    ({"relation": "inverse"}, "relation: must be 'same' or 'complement'"),
    ({"kalshi.side": "maybe"}, "kalshi.side: must be 'yes' or 'no'"),
    ({"kalshi.settles": "soon"}, "kalshi.settles: required, a date"),
    ({"polymarket.token_id": "0xabc"}, "is not a decimal CLOB token id"),
    ({"polymarket.colour": "red"}, "unknown key(s) colour"),
    ({"kalshi.ticker": "lower-case"}, "is not a Kalshi market ticker"),
])
def test_a_bad_mapping_names_the_file_the_pair_and_the_key(
        write_mapping: Callable[..., Path], change: dict[str, str], message: str) -> None:
    path = write_mapping(**change)
    with pytest.raises(ConfigError, match="pairs\\[0\\]") as caught:
        load_mapping(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_a_missing_mapping_file_and_duplicate_names_are_refused(tmp_path: Path,
                                                                 write_mapping: Callable[..., Path]
                                                                 ) -> None:
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_mapping(tmp_path / "nope.toml")
    path = write_mapping()
    path.write_text(path.read_text() * 2)
    with pytest.raises(ConfigError, match="fed-cut used more than once"):
        load_mapping(path)


def test_the_inner_venues_are_built_by_their_own_plugins_from_their_tables(
        tmp_path: Path) -> None:
    settings = CrossVenueSettings(kalshi={"markets": ["KXFEDCUT-26SEP"]},
                                  polymarket={"gamma_url": "http://127.0.0.1:9"},
                                  base_dir=tmp_path)
    inner = build_inner(settings)
    assert isinstance(inner["kalshi"], KalshiVenue)
    assert inner["kalshi"].settings.markets == ["KXFEDCUT-26SEP"]  # type: ignore[attr-defined]  # a KalshiVenue (checked above)
    assert isinstance(inner["polymarket"], PolymarketVenue)
    with pytest.raises(ConfigError, match=r"plugins\.crossvenue\.kalshi.*unknown key"):
        build_inner(CrossVenueSettings(kalshi={"colour": "red"}))


def test_settings_from_a_config_resolve_paths_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "xv.toml").write_text(
        '[argus]\nplugins = ["crossvenue"]\n[run]\nvenue = "crossvenue"\n'
        '[plugins.crossvenue]\nmapping = "m.toml"\nfirst_leg = "kalshi"\n')
    settings = plugin_settings(load_config(tmp_path / "xv.toml"), "crossvenue",
                               CrossVenueSettings)
    assert settings.mapping == (tmp_path / "m.toml").resolve()
    assert settings.base_dir == tmp_path.resolve()
    with pytest.raises(ConfigError, match="first_leg"):
        (tmp_path / "bad.toml").write_text(
            '[argus]\nplugins = ["crossvenue"]\n[plugins.crossvenue]\nfirst_leg = "fast"\n')
        plugin_settings(load_config(tmp_path / "bad.toml"), "crossvenue", CrossVenueSettings)


def _inst(venue: str, symbol: str, **meta: object) -> Instrument:
    return Instrument(venue, symbol, kind="binary", meta={"is_yes": True, **meta})


def test_suggestions_pair_alike_texts_across_venues_only() -> None:
    instruments = [
        _inst("kalshi", "KXFEDCUT-26SEP/YES", ticker="KXFEDCUT-26SEP",
              title="Will the Fed cut interest rates in September 2026?"),
        _inst("kalshi", "KXRAIN-NYC/YES", ticker="KXRAIN-NYC",
              title="Will it rain in New York City tomorrow?"),
        _inst("polymarket", "111", token_outcome="Yes",
              question="Fed cuts interest rates at the September 2026 meeting?"),
        _inst("polymarket", "333", token_outcome="Yes",
              question="Will Bitcoin close above 100k this year?"),
    ]
    (best, *rest) = suggest(instruments, threshold=0.2)
    assert (best.kalshi_ticker, best.polymarket_token) == ("KXFEDCUT-26SEP", "111")
    assert all(s.similarity < best.similarity for s in rest)
    assert 'ticker = "KXFEDCUT-26SEP"' in best.as_toml("x")
    assert suggest(instruments[:2]) == []  # one venue alone: nothing to pair


def test_the_suggest_command_prints_candidates_from_both_venues(tmp_path: Path) -> None:
    with ExampleServers() as servers:
        configs = servers.write_configs(tmp_path)
        result = CliRunner().invoke(cli, ["crossvenue", "suggest", "--config",
                                          str(configs["scan"]), "--json"],
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (found,) = json.loads(result.output)
    assert found["kalshi_ticker"] == "KXFEDCUT-26SEP"
    assert found["polymarket_token"].endswith("0001") and found["similarity"] > 0.3


async def test_the_composite_stream_merges_both_venues_and_ends_with_them(
        tmp_path: Path) -> None:
    import asyncio

    with ExampleServers() as servers:
        config = load_config(servers.write_configs(tmp_path)["paper"])
        venue = CrossVenue(plugin_settings(config, "crossvenue", CrossVenueSettings))
        seen: list[object] = []

        async def consume() -> None:
            async for event in venue.stream():
                seen.append(event)
                if len(seen) == 6:  # 2 events + 4 books: settle both venues
                    await asyncio.to_thread(servers.settle)
        try:
            await asyncio.wait_for(consume(), 20)
        finally:
            await venue.close()
    settled = {s.instrument_id: s.price for s in seen if isinstance(s, Settlement)}
    assert len(settled) == 4 and sorted(settled.values()) == [0, 0, 1, 1]
