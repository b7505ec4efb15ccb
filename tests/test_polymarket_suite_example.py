"""The Polymarket suite's offline example (examples/polymarket_suite) does what its README says.

Both configs run unchanged except for the server's ports (the snapshot server binds free
ports here): ``argus scan --once --json`` through the real CLI prints every finding with
its lane and score, and ``argus run`` paper-trades the executable lane through the
markets' resolution.  Every number the README shows is checked against these runs, and
the README must show them exactly as written here, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_test_helpers import ROOT
from click.testing import CliRunner

from argus_core.cli import cli
from argus_core.ledger import Ledger

EXAMPLE = ROOT / "examples" / "polymarket_suite"
README = (EXAMPLE / "README.md").read_text()

# (lane, score, kind, event, size, edge/unit, profit, risk-free) per finding, best first:
# the README's scan table.
SCAN_ROWS = [
    ("research", "0.486", "near_certain", "900000", "450.00", "0.0190", "8.56", "NO"),
    ("executable", "0.485", "implication", "900000", "150.00", "0.0153", "2.29", "yes"),
    ("executable", "0.391", "long_rebalance", "481717", "150.00", "0.0047", "0.70", "yes"),
    ("research", "0.201", "maker_ask", "900000", "5", "0.0050", "0.02", "NO"),
    ("research", "0.200", "maker_bid", "900000", "5", "0.0050", "0.02", "NO"),
    ("research", "0.173", "maker_ask", "900000", "5", "0.0050", "0.02", "NO"),
    ("research", "0.171", "maker_bid", "900000", "5", "0.0050", "0.02", "NO"),
]


def _served(name: str, tmp_path: Path, http_url: str, ws_url: str) -> Path:
    """The example's config with the server's URLs in place of its fixed ports."""
    text = (EXAMPLE / name).read_text()
    for fixed in ("ws://127.0.0.1:8765/ws/market", "ws://127.0.0.1:8766/ws/market"):
        text = text.replace(fixed, ws_url)
    text = text.replace("http://127.0.0.1:8765", http_url)
    out = tmp_path / name
    out.write_text(text)
    return out


def _row(o: dict[str, Any]) -> tuple[str, ...]:
    """A finding as the README's table shows it (the CLI table's formats)."""
    score = "" if o["score"] is None else f"{o['score']:.3f}"
    return (o["lane"], score, o["kind"], o["event_id"], str(o["max_size"]),
            f"{Decimal(o['edge_per_unit']):.4f}", f"{Decimal(o['expected_profit']):.2f}",
            "yes" if o["risk_free"] else "NO")


def _readme_line(row: tuple[str, ...]) -> str:
    lane, score, kind, event, size, edge, profit, risk_free = row
    return (f"| {lane} | {score} | {kind} | {event} | {size} | {edge} | {profit} | "
            f"{risk_free} |")


def test_the_scan_prints_every_scanners_findings_with_lanes(tmp_path: Path) -> None:
    pytest.importorskip("argus_scanners_polymarket")
    pytest.importorskip("argus_scanner_negrisk")
    from argus_venue_polymarket.replay_server import SnapshotServer

    with SnapshotServer.from_dir(EXAMPLE / "snapshot") as srv:
        config = _served("scan.toml", tmp_path, srv.url, f"{srv.url.replace('http', 'ws')}/ws")
        result = CliRunner().invoke(cli, ["scan", "--config", str(config), "--once", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    rows = [_row(o) for o in found]
    assert rows == SCAN_ROWS
    for row in rows:
        assert _readme_line(row) in README, f"README's scan table lacks {row}"
    by_kind = {o["kind"]: o for o in found}
    # exact figures the README quotes
    assert Decimal(by_kind["long_rebalance"]["expected_profit"]) == Decimal("0.70448")
    assert Decimal(by_kind["implication"]["expected_profit"]) == Decimal("2.28900")
    assert Decimal(by_kind["near_certain"]["expected_profit"]) == Decimal("8.56050")
    for text in ("0.70448", "2.28900", "8.56050", "0.984740"):
        assert text in README
    assert "0.984740 < 1 for 150.00" in by_kind["implication"]["reason"]
    assert by_kind["implication"]["reason"].startswith("lane=executable: risk-free")
    # every finding carries its lane; only the risk-free ones are executable
    assert {(o["lane"], o["risk_free"]) for o in found} == {("executable", True),
                                                            ("research", False)}


def test_a_paper_run_trades_the_executable_lane_through_settlement(tmp_path: Path) -> None:
    pytest.importorskip("argus_scanners_polymarket")
    pytest.importorskip("argus_scanner_negrisk")
    from argus_venue_polymarket.replay_server import SnapshotServer

    run_dir = tmp_path / "run"
    with SnapshotServer.from_dir(EXAMPLE / "snapshot", ws_port=0,
                                 resolve_after_books=True) as srv:
        config = _served("paper.toml", tmp_path, srv.url, srv.ws_url)
        result = CliRunner().invoke(cli, ["run", "--config", str(config),
                                          "--run-dir", str(run_dir)],
                                    env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for line in ("│ events         │ 105", "│ orders / fills │ 7 / 14", "│ fees paid      │ 4.21",
                 "│ equity         │ 10,000.00 -> 10,002.99 (+0.03%)"):
        assert line in result.output, line
        assert line in README, f"README lacks {line!r}"

    with Ledger.in_dir(run_dir) as ledger:
        fills = ledger.fills()
        opps = {(r["scanner"], r["kind"], r["status"])
                for r in ledger.query("select scanner, kind, status from opportunities")}
        positions = ledger.query("select quantity from positions")
    buys = sorted((Decimal(f["price"]), Decimal(f["quantity"]), Decimal(f["fee"]))
                  for f in fills if f["liquidity"] == "taker")
    settled = sorted(Decimal(f["price"]) for f in fills if f["liquidity"] == "settlement")
    # the negRisk basket (5 legs) and the nested-threshold basket (2 legs), 150 each
    assert [(p, q) for p, q, _ in buys] == [(Decimal(p), Decimal(150)) for p in (
        "0.003", "0.005", "0.014", "0.04", "0.31", "0.64", "0.94")]
    fees = sum(f for _, _, f in buys)
    cost = sum(p * q for p, q, _ in buys)
    assert settled == [0, 0, 0, 0, 0, 1, 1]  # "No change" and "Above 2.00%" pay 1
    pnl = 150 * 2 - cost - fees
    assert fees == Decimal("4.20652") and pnl == Decimal("2.99348")
    assert pnl == Decimal("0.70448") + Decimal("2.28900")  # what the scan promised
    for text in ("4.20652", "2.99348"):
        assert text in README
    # research findings are stored, never traded; every position ends flat
    assert ("resolution", "near_certain", "research") in opps
    assert ("maker", "maker_bid", "research") in opps
    assert all(Decimal(p["quantity"]) == 0 for p in positions)


@pytest.mark.slow  # ~20 s on a loaded 2-core machine: scikit-learn, numba, gc per timing
def test_the_scan_benchmark_runs_and_its_plain_twins_agree() -> None:
    """benchmarks/pmscan on a small snapshot: every row runs, and the plain-Python twins
    find what the scanners find wherever both are stateless (so the ratios compare like
    with like)."""
    pytest.importorskip("argus_scanners_polymarket")
    pytest.importorskip("argus_scanner_negrisk")
    sys.path[:0] = [str(ROOT / "benchmarks" / "pmscan"), str(ROOT / "benchmarks")]
    try:
        bench_pmscan = importlib.import_module("bench_pmscan")
    finally:
        del sys.path[:2]
    market = bench_pmscan.synthetic(40)
    assert len(market.books) == 40 * 10 + 1  # ten books an event, and the spot book
    corr, _, _ = bench_pmscan.correlation_structure(market)
    rows = {r.name: r for r in bench_pmscan.measure(market, corr, changed=10, scans=1)}
    assert set(rows) == {"resolution", "correlation", "stale", "spike", "value", "maker",
                         "latency", "ranked", "negrisk"}
    # planted: 1 resolved + 2 near-certain events, 1 nested violation, 2 stale up/down
    # quotes, 1 negRisk arbitrage, and trades above the ask
    expected = {"resolution": 3, "correlation": 1, "latency": 2, "negrisk": 1}
    for name, row in rows.items():
        if name in expected:
            assert row.found >= expected[name], (name, row)
        if name in ("resolution", "correlation", "value", "latency", "negrisk"):
            assert row.found == row.plain_found, (name, row)
