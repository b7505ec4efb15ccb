"""The daily loss limit's day starts at the day's first equity row.  Before, its start
equity was taken at the day's first order: a held position that fell 10 % between
midnight and the day's first order at 10:00 never counted, and the limit let the day's
orders through as if nothing had been lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from order_path_kit import RTVenue, Scripted, X, bar, buy, q, register, runner

DAY_NS = 86_400 * 10**9
H = 3600  # bars hourly (order_path_kit's bar() takes seconds)


def test_a_fall_before_the_days_first_order_counts_against_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    day2 = DAY_NS // 10**9
    # day 1: buys 500 at 100 (half the equity of 100,000); day 2: from midnight the price
    # falls to 75 by 09:00 (-12.5 % of equity), and at 10:00 the strategy buys again
    closes = {t: 100.0 for t in range(0, day2, H)}
    closes |= {day2 + h * H: 100.0 - 25.0 * h / 9 if h <= 9 else 75.0 for h in range(0, 12)}
    RTVenue.script = [bar(X, t, p) for t, p in sorted(closes.items())]
    first_of_day2 = sorted(closes).index(day2 + 10 * H) + 1
    plan = {2: lambda e, c: [buy(X, "500", limit="102")],
            first_of_day2: lambda e, c: [buy(X, "10", limit="80")]}
    runner(tmp_path, {"s": Scripted(plan)}, checks=["daily_loss_limit"], mode="paper",
           extra={"plugins": {"risk": {"daily_loss_fraction": "0.1"}}}).run_sync()
    vetoes = q(tmp_path / "run", "select reason from risk_events where check_name = "
                                 "'daily_loss_limit' and action = 'veto'")
    assert vetoes and "daily loss" in str(vetoes[0]["reason"]), vetoes
