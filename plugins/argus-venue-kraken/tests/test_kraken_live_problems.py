"""A live Kraken config with missing or broken credentials fails before it starts."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from argus_venue_kraken.venue import KrakenVenue

from argus_core.config import parse_config
from argus_core.errors import ConfigError
from argus_core.secrets import Secret


def test_complete_credentials_have_no_problems(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert KrakenVenue(make_settings(credentials=True)).live_problems() == []


def test_missing_unresolvable_and_malformed_credentials_are_named(
        make_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    assert "api_key and api_secret are required" in \
        KrakenVenue(make_settings()).live_problems()[0]
    monkeypatch.delenv("ARGUS_TEST_KRAKEN_KEY")
    (problem,) = KrakenVenue(make_settings(credentials=True)).live_problems()
    assert problem.startswith("api_key:") and "ARGUS_TEST_KRAKEN_KEY is not set" in problem
    monkeypatch.setenv("ARGUS_TEST_KRAKEN_KEY", "kraken-key")
    monkeypatch.setenv("BAD_SECRET", "not*base64*at*all")
    bad = attrs.evolve(make_settings(credentials=True), api_secret=Secret("$env:BAD_SECRET"))
    (problem,) = KrakenVenue(bad).live_problems()
    assert "not base64" in problem and "not*base64" not in problem  # never the value


def test_a_live_run_without_keys_is_refused_before_it_starts(tmp_path: Path) -> None:
    from argus_core.runner import Runner

    config = parse_config({"argus": {"plugins": ["kraken"], "mode": "live"},
                           "run": {"venue": "kraken", "strategies": ["ma_cross"]},
                           "plugins": {"kraken": {"pairs": ["BTC/USD"]}}},
                          tmp_path / "live.toml")
    with pytest.raises(ConfigError, match=r"live\.toml: venue 'kraken' cannot trade live: "
                                          r".*api_key and api_secret are required"):
        Runner(config, tmp_path / "run", live_confirmed=True)
    assert not (tmp_path / "run" / "argus.db").exists()
