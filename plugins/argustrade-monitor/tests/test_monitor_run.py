"""The monitor on a real replay run: scrapes during and after agree with the ledger,
health follows the kill switch and the event clock, scraping changes nothing, and a
port in use is refused by number."""

from __future__ import annotations

import json
import socket
import threading
import types
from pathlib import Path
from typing import Any

import httpx
import pytest
from argus_monitor import MonitorServer, MonitorSettings
from argus_monitor.probe import LoopProbe
from argus_testkit import FakeClock, run_and_collect
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from argus_core import ArgusError, hookimpl, open_read_only
from argus_core.cli import cli

ROOT = Path(__file__).resolve().parents[3]
BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replay_config(monitor: dict[str, Any] | None) -> dict[str, Any]:
    """A two-month replay of the bundled bars with the example strategy (trades)."""
    plugins: dict[str, Any] = {
        "replay": {"bars_csv": str(BARS), "start": "2022-01-01", "end": "2022-03-01"},
        "example": {"fast": 5, "slow": 20}}
    if monitor is not None:
        plugins["monitor"] = monitor
    return {"argus": {"plugins": ["monitor"]},
            "run": {"venue": "replay", "strategies": ["ma_cross"], "sizer": "fixed_fraction"},
            "plugins": plugins}


def scrape(port: int) -> dict[str, float]:
    """``/metrics`` parsed: ``{'name{label="v",...}': value}``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def health(port: int) -> tuple[int, dict[str, Any]]:
    """``/health``: status code and body."""
    answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
    return answer.status_code, answer.json()


def ledger_figures(run_dir: Path) -> tuple[int, float, str]:
    """Fills, the last equity row and the trading state, read independently of the
    monitor (no control row: ACTIVE)."""
    # apsw, like the ledger: a second SQLite copy in this process could drop its locks.
    conn = open_read_only(run_dir / "argus.db")
    try:
        (fills,) = conn.execute("select count(*) from fills").fetchone()
        row = conn.execute("select equity from equity order by ts_ns desc limit 1").fetchone()
        control = conn.execute("select value from control where key = 'trading_state'"
                               ).fetchone()
    finally:
        conn.close()
    state = json.loads(control[0])["state"] if control else "active"
    return int(fills), float(row[0]), state


def test_scrapes_during_and_after_a_run_match_the_ledger_and_a_kill_turns_health_503(
        tmp_path: Path) -> None:
    port, run_dir = free_port(), tmp_path / "run"
    seen: dict[str, Any] = {}
    observer = types.SimpleNamespace()

    def on_fill(fill: Any, ctx: Any) -> None:
        # Runs on the loop's thread between two events: the ledger holds still meanwhile.
        n = seen["fills"] = seen.get("fills", 0) + 1
        if n == 2:
            seen["during"], seen["ledger"] = scrape(port), ledger_figures(run_dir)
            seen["health"] = health(port)
        if n == 3:
            result = CliRunner().invoke(cli, ["kill", "--run-dir", str(run_dir),
                                              "--reason", "test kill"])
            assert result.exit_code == 0, result.output
            seen["halted"] = health(port)

    observer.on_fill = hookimpl(on_fill)
    result = run_and_collect(replay_config({"port": port}), run_dir,
                             plugins={"kill_observer": observer})

    during, (fills_then, equity_then, state_then) = seen["during"], seen["ledger"]
    assert during["argus_fills_total"] == fills_then >= 2
    assert during["argus_equity"] == pytest.approx(equity_then, abs=0.005)
    for state in ("active", "reducing", "halted"):
        assert during[f'argus_trading_state{{state="{state}"}}'] == (state == state_then)
    run_id = result.summary.run_id
    assert during[f'argus_run_info{{mode="replay",run_id="{run_id}",venue="replay"}}'] == 1
    assert during["argus_events_total"] > 0 and during["argus_events_per_second"] > 0
    code, body = seen["health"]
    # REDUCING still trades (exits only): healthy
    assert code == 200 and body["status"] == "ok" and body["trading_state"] == state_then
    assert state_then != "halted"
    assert body["run_id"] == result.summary.run_id and body["last_event_age_s"] >= 0
    code, body = seen["halted"]
    assert code == 503 and body["status"] == "halted" and body["trading_state"] == "halted"

    after = scrape(port)  # the server keeps the final figures after the run
    fills_end, equity_end, state_end = ledger_figures(run_dir)
    assert after["argus_fills_total"] == fills_end == len(result.fills)
    assert after["argus_equity"] == pytest.approx(equity_end, abs=0.005)
    assert after["argus_equity"] == pytest.approx(float(result.summary.final_equity),
                                                  abs=0.005)
    assert state_end == "halted"  # the loop never overwrites a person's kill
    for state in ("active", "reducing", "halted"):
        assert after[f'argus_trading_state{{state="{state}"}}'] == (state == state_end)
    assert after["argus_events_total"] == result.summary.events
    statuses = {o["status"] for o in result.orders}
    for status in statuses:
        assert after[f'argus_orders{{status="{status}"}}'] == sum(
            o["status"] == status for o in result.orders)
    assert health(port)[0] == 503 and health(port)[1]["status"] == "stopped"


def _fill_tuples(result: Any) -> list[tuple[Any, ...]]:
    # Ids carry the run id (the config's hash, which the monitor table changes): compare
    # what was traded instead.
    return [(f.instrument_id, f.side, f.price, f.quantity, f.fee, f.ts_ns)
            for f in result.fills]


def test_scraping_while_the_loop_runs_changes_nothing_in_the_ledger(tmp_path: Path) -> None:
    port = free_port()
    stop, scrapes = threading.Event(), []

    def hammer() -> None:
        while not stop.is_set():
            try:
                scrapes.append(scrape(port))
                health(port)
            except httpx.TransportError:
                pass  # not serving yet

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        watched = run_and_collect(replay_config({"port": port}), tmp_path / "watched")
    finally:
        stop.set()
        thread.join(timeout=30)
    plain = run_and_collect(replay_config(None), tmp_path / "plain")
    assert _fill_tuples(watched) == _fill_tuples(plain) and len(plain.fills) > 5
    assert watched.summary.final_equity == plain.summary.final_equity
    assert [o["status"] for o in watched.orders] == [o["status"] for o in plain.orders]
    assert scrapes  # the scrapes did happen


def test_no_monitor_table_serves_nothing(tmp_path: Path) -> None:
    result = run_and_collect(replay_config(None), tmp_path / "run")
    assert result.summary.fills > 0  # the plugin loaded and stayed out of the way


def test_a_port_in_use_is_refused_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ArgusError, match=rf"port {port}\b.*already in use"):
            run_and_collect(replay_config({"port": port}), tmp_path / "run")


def _server(tmp_path: Path, clock: FakeClock, stale_after_s: float) -> MonitorServer:
    probe = LoopProbe(clock.time_ns)
    server = MonitorServer(MonitorSettings(port=free_port(), stale_after_s=stale_after_s),
                           probe, tmp_path, run_id="r1", mode="paper", venue="fake",
                           book_stale_after_s=10.0)
    server.start()
    return server


def test_health_turns_503_when_events_stop(tmp_path: Path) -> None:
    clock = FakeClock()
    server = _server(tmp_path, clock, stale_after_s=5.0)
    assert health(server.port)[0] == 200  # fresh start, within stale_after_s
    clock.advance(5.5)
    code, body = health(server.port)
    assert code == 503 and body["status"] == "stale" and body["last_event_age_s"] is None
    server.probe.note(types.SimpleNamespace(ts_ns=clock.time_ns() - 2_000_000_000))
    clock.advance(4.9)  # just inside stale_after_s: still healthy
    code, body = health(server.port)
    assert code == 200 and body["last_event_age_s"] == pytest.approx(4.9)
    clock.advance(0.2)
    code, body = health(server.port)
    assert code == 503 and body["status"] == "stale"
    metrics = scrape(server.port)
    assert metrics['argus_venue_up{venue="fake"}'] == 0
    assert metrics["argus_loop_lag_seconds"] == pytest.approx(2.0)


def test_book_staleness_and_connectivity(tmp_path: Path) -> None:
    from argus_core import OrderBook

    clock = FakeClock()
    server = _server(tmp_path, clock, stale_after_s=60.0)
    now = clock.time_ns()
    server.probe.note(OrderBook("A", now - 3_000_000_000, [[0.4, 1]], [[0.6, 1]]))
    server.probe.note(OrderBook("B", now - 12_000_000_000, [[0.4, 1]], [[0.6, 1]]))
    metrics = scrape(server.port)
    assert metrics['argus_book_age_seconds{instrument="A"}'] == pytest.approx(3.0)
    assert metrics['argus_book_age_seconds{instrument="B"}'] == pytest.approx(12.0)
    assert metrics['argus_venue_books{state="live",venue="fake"}'] == 1  # 3 s <= 10 s
    assert metrics['argus_venue_books{state="stale",venue="fake"}'] == 1  # 12 s > 10 s
    assert metrics['argus_venue_up{venue="fake"}'] == 1
    assert httpx.get(f"http://127.0.0.1:{server.port}/nope").status_code == 404
