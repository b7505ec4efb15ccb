"""Helpers of the intelligence API's tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[3]
KRAKEN = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
#: 2021-01-01 00:00 UTC .. 2021-01-22: ~500 hourly bars
REPLAY = {"bars_csv": "bars.csv", "symbol": "BTC/USD", "bar_seconds": 3600,
          "start": "2021-01-01", "end": "2021-01-22"}
OPPORTUNITIES = 57
SIGNAL_TIMES = 40
MakeClient = Callable[..., TestClient]

class Clock:
    """Unix seconds that move only when told."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01 00:00 UTC
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def auth(key: str) -> dict[str, str]:
    """The header that presents ``key``."""
    return {"Authorization": f"Bearer {key}"}


def walk(client: TestClient, url: str, headers: dict[str, str], *, method: str = "GET",
         body: Any = None) -> tuple[list[dict[str, Any]], int]:
    """Every row of a paged listing, following ``next`` (or ``next_cursor`` for a POST);
    returns the rows and the number of pages."""
    rows: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    next_url: str | None = url
    while True:
        if method == "GET":
            assert next_url is not None
            r = client.get(next_url, headers=headers)
        else:
            r = client.post(url + (f"&cursor={cursor}" if cursor else ""), headers=headers,
                            json=body)
        assert r.status_code == 200, r.text
        page = r.json()
        rows.extend(page["data"])
        pages += 1
        cursor, next_url = page["next_cursor"], page["next"]
        if cursor is None:
            assert next_url is None
            return rows, pages
