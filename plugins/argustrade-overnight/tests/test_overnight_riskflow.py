"""The risk-flow CSV contract and its as-of lookup (no lookahead); the strategy's gate is
tested in test_overnight_strategy.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from argus_overnight.config import utc_seconds as ts
from argus_overnight.riskflow import read_risk_flow

from argus_core import DataError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.csv"
    path.write_text(text)
    return path


def test_rows_are_read_as_of_their_availability(tmp_path: Path) -> None:
    flow = read_risk_flow(write(tmp_path, "available_utc,asia_return,fx_return\n"
                                          "2022-03-04T08:00Z,0.01,\n"
                                          "2022-03-04T16:00:00+00:00,-0.02,0.004\n"))
    day = 86400.0
    assert flow.as_of(ts("2022-03-04T07:59"), day) is None  # nothing known yet
    assert flow.as_of(ts("2022-03-04T08:00"), day) == {"asia_return": 0.01}
    assert flow.score(ts("2022-03-04T15:59"), day) == pytest.approx(0.01)
    assert flow.score(ts("2022-03-04T16:00"), day) == pytest.approx(-0.008)
    assert flow.score(ts("2022-03-06T00:00"), day) is None  # stale


@pytest.mark.parametrize(("text", "match"), [
    ("when,asia_return\n2022-01-01,0.1\n", "no 'available_utc'"),
    ("available_utc,asia_return,nikkei\n2022-01-01,0.1,1\n", "unexpected"),
    ("available_utc\n2022-01-01\n", "one or more"),
    ("available_utc,asia_return\n2022-01-02,0.1\n2022-01-01,0.1\n", "strictly increase"),
    ("available_utc,asia_return\n2022-01-01,abc\n", "not a number"),
    ("available_utc,asia_return\n2022-01-01,nan\n", "not finite"),
    ("available_utc,asia_return\nyesterday,0.1\n", "ISO 8601"),
])
def test_a_broken_contract_is_refused_naming_the_rule(tmp_path: Path, text: str,
                                                      match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_risk_flow(write(tmp_path, text))
