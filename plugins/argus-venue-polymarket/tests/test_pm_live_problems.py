"""A live Polymarket config without a usable signer key fails before it starts."""

from __future__ import annotations

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.secrets import Secret

KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def test_signer_key_is_required_resolvable_and_well_formed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert "private_key is required" in PolymarketVenue(PolymarketSettings()).live_problems()[0]
    settings = PolymarketSettings(private_key=Secret("$env:PM_LIVE_KEY"))
    (problem,) = PolymarketVenue(settings).live_problems()
    assert "PM_LIVE_KEY is not set" in problem
    monkeypatch.setenv("PM_LIVE_KEY", "deadbeef")
    (problem,) = PolymarketVenue(settings).live_problems()
    assert "not a 32-byte hex key" in problem and "deadbeef" not in problem
    monkeypatch.setenv("PM_LIVE_KEY", KEY)
    assert PolymarketVenue(settings).live_problems() == []
