"""The ledger endpoints against the ledgers themselves: runs, equity, opportunities,
signals and bars, every row exactly once through the pages, in a stable order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from argus_intel.app import create_app
from argus_intel.keys import KeyStore
from argus_intel.ledger_view import EQUITY, RunLedger
from fastapi.testclient import TestClient
from intel_helpers import KRAKEN, OPPORTUNITIES, REPLAY, SIGNAL_TIMES, auth, walk

from argus_core import ConfigError, Ledger
from argus_core.builtins.replay_venue import _to_epoch_s, iter_bars_csv
from argus_core.testing import RunResult

BUILT = "built0000001"


def _ledger_rows(run_dir: Path, sql: str) -> list[dict[str, object]]:
    with Ledger.in_dir(run_dir) as ledger:
        return ledger.query(sql)


def test_runs_lists_both_runs_with_their_counts(client: TestClient, key: str,
                                                replay_run: RunResult, built_run: Path
                                                ) -> None:
    rows, _ = walk(client, "/v1/runs?limit=1", auth(key))
    by_id = {r["run_id"]: r for r in rows}
    replay_id = replay_run.summary.run_id
    assert sorted(by_id) == sorted([replay_id, BUILT])
    assert by_id[replay_id]["counts"]["fills"] == len(replay_run.fills) > 0
    assert by_id[replay_id]["mode"] == "replay" and by_id[replay_id]["status"] == "finished"
    assert by_id[BUILT]["counts"]["opportunities"] == OPPORTUNITIES
    one = client.get(f"/v1/runs/{BUILT}", headers=auth(key)).json()
    assert one["config"]["run"]["venue"] == "kraken" and one["mode"] == "paper"
    r = client.get("/v1/runs/nope", headers=auth(key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "run_not_found"


@pytest.mark.parametrize("limit", [25, 1000])
def test_equity_pages_walk_every_row_once_equal_to_the_ledger(
        client: TestClient, key: str, replay_run: RunResult, limit: int) -> None:
    run_id = replay_run.summary.run_id
    rows, pages = walk(client, f"/v1/runs/{run_id}/equity?limit={limit}", auth(key))
    expected = _ledger_rows(replay_run.run_dir, "select * from equity order by ts_ns")
    assert len(expected) > 400
    assert rows == expected  # exact decimal text, in time order, each row once
    assert pages == -(-len(expected) // limit)  # no empty last page


def test_opportunities_with_tied_times_are_each_served_once(client: TestClient, key: str,
                                                            built_run: Path) -> None:
    rows, pages = walk(client, f"/v1/runs/{BUILT}/opportunities?limit=3", auth(key))
    assert pages == 19
    expected = _ledger_rows(built_run, "select * from opportunities "
                                       "order by ts_ns, opportunity_id")
    assert [r["opportunity_id"] for r in rows] == [e["opportunity_id"] for e in expected]
    assert len({r["opportunity_id"] for r in rows}) == OPPORTUNITIES
    first = next(r for r in rows if r["opportunity_id"] == expected[0]["opportunity_id"])
    assert first["body"] == json.loads(str(expected[0]["body_json"]))
    assert first["expected_profit"] == expected[0]["expected_profit"]
    assert first["risk_free"] is bool(expected[0]["risk_free"])
    value, _ = walk(client, f"/v1/runs/{BUILT}/opportunities?scanner=value&status=research"
                            f"&limit=2", auth(key))
    assert [r["opportunity_id"] for r in value] == [
        e["opportunity_id"] for e in expected
        if e["scanner"] == "value" and e["status"] == "research"]


def test_signals_filter_and_page(client: TestClient, key: str, built_run: Path) -> None:
    rows, _ = walk(client, f"/v1/runs/{BUILT}/signals?limit=9", auth(key))
    assert len(rows) == SIGNAL_TIMES * 4
    assert rows == _ledger_rows(built_run, "select name, instrument_id, ts_ns, value from "
                                           "signals order by ts_ns, name, instrument_id")
    eth, _ = walk(client, f"/v1/runs/{BUILT}/signals?name=vol_regime&instrument_id="
                          f"replay:ETH/USD&limit=1", auth(key))
    assert [r["ts_ns"] for r in eth] == [10_000 + t for t in range(SIGNAL_TIMES)]
    assert {(r["name"], r["instrument_id"]) for r in eth} == {("vol_regime", "replay:ETH/USD")}


def test_a_page_walk_sees_rows_appended_behind_it_once(tmp_path: Path, built_run: Path
                                                        ) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(built_run, run_dir)
    view = RunLedger(run_dir)
    first = view.page(EQUITY, 100)
    with Ledger.in_dir(run_dir) as ledger, ledger.transaction():
        ledger.append_equity([(5_000_000 + i, "1", "2", "0") for i in range(5)])
    seen = [r["ts_ns"] for r in first.rows]
    cursor = first.next_cursor
    while cursor is not None:
        page = view.page(EQUITY, 100, cursor)
        seen += [r["ts_ns"] for r in page.rows]
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 255


def test_bad_cursor_and_limit_are_clear_422s(client: TestClient, key: str) -> None:
    r = client.get(f"/v1/runs/{BUILT}/equity?cursor=notacursor", headers=auth(key))
    assert r.status_code == 422 and "next_cursor" in r.json()["error"]["message"]
    r = client.get(f"/v1/runs/{BUILT}/equity?limit=0", headers=auth(key))
    assert r.status_code == 422 and "limit" in r.json()["error"]["message"]
    r = client.get(f"/v1/runs/{BUILT}/equity?limit=1001", headers=auth(key))
    assert r.status_code == 422


def test_bars_are_the_replayed_bars(client: TestClient, key: str, replay_run: RunResult
                                    ) -> None:
    run_id = replay_run.summary.run_id
    rows, _ = walk(client, f"/v1/runs/{run_id}/bars?limit=64", auth(key))
    core = list(iter_bars_csv(KRAKEN, "replay:BTC/USD", 3600, _to_epoch_s(REPLAY["start"]),
                              _to_epoch_s(REPLAY["end"])))
    assert len(rows) == len(core) == 21 * 24
    assert [(r["instrument_id"], r["ts_ns"], r["open"], r["high"], r["low"], r["close"],
             r["volume"]) for r in rows] == [
        (b.instrument_id, b.ts_ns, b.open, b.high, b.low, b.close, b.volume) for b in core]
    # The run's equity rows are stamped at its bars' close times.
    equity_ts = {e["ts_ns"] for e in _ledger_rows(replay_run.run_dir, "select ts_ns from "
                                                                       "equity")}
    assert equity_ts <= {r["ts_ns"] for r in rows}
    one = client.get(f"/v1/runs/{run_id}/bars?instrument_id=replay:ETH/USD", headers=auth(key))
    assert one.status_code == 404 and "replay:BTC/USD" in one.json()["error"]["message"]


def test_bars_need_the_data_dir_of_a_relative_path(replay_run: RunResult, keystore: KeyStore,
                                                   key: str) -> None:
    app = create_app([replay_run.run_dir], keystore, data_dirs=[])
    with TestClient(app) as client:
        r = client.get(f"/v1/runs/{replay_run.summary.run_id}/bars", headers=auth(key))
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "bars_unavailable" and "--data-dir" in err["message"]
    with TestClient(create_app([replay_run.run_dir], keystore,
                               data_dirs=[replay_run.run_dir.parent])) as client:
        r = client.get(f"/v1/runs/{replay_run.summary.run_id}/bars", headers=auth(key))
    assert r.status_code == 200


def test_a_non_replay_run_has_no_bars_and_clashing_runs_are_refused(
        client: TestClient, key: str, built_run: Path, tmp_path: Path,
        keystore: KeyStore) -> None:
    r = client.get(f"/v1/runs/{BUILT}/bars", headers=auth(key))
    assert r.status_code == 404 and "'kraken'" in r.json()["error"]["message"]
    twin = tmp_path / "twin"
    shutil.copytree(built_run, twin)
    with pytest.raises(ConfigError, match="same run built0000001"):
        create_app([built_run, twin], keystore)


def test_ledger_is_opened_read_only(tmp_path: Path, built_run: Path) -> None:
    run_dir = tmp_path / "ro"
    shutil.copytree(built_run, run_dir)
    view = RunLedger(run_dir)
    import apsw

    with pytest.raises(apsw.ReadOnlyError):
        view.query("delete from equity")


def test_bars_of_a_recording_per_instrument(tmp_path: Path, keystore: KeyStore, key: str
                                            ) -> None:
    from argus_core import Bar, Trade, dump_event

    bars = [Bar(inst, 3_600_000_000_000 * (i + 1), 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i,
                float(i)) for i in range(30) for inst in ("rec:AAA", "rec:BBB")]
    lines = [json.dumps(dump_event(b)) for b in bars]
    lines.insert(5, json.dumps(dump_event(Trade("rec:AAA", 1, "10", "1"))))
    (tmp_path / "tape.ndjson").write_text("\n".join(lines) + "\n")
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("recorded0001", "replay", 0, json.dumps(
            {"run": {"venue": "replay"}, "plugins": {"replay": {"ndjson": "tape.ndjson"}}}))
    with TestClient(create_app([run_dir], keystore, data_dirs=[tmp_path])) as client:
        r = client.get("/v1/runs/recorded0001/bars", headers=auth(key))
        assert r.status_code == 404 and "rec:AAA, rec:BBB" in r.json()["error"]["message"]
        rows, _ = walk(client, "/v1/runs/recorded0001/bars?instrument_id=rec:BBB&limit=7",
                       auth(key))
    assert [(r["ts_ns"], r["close"]) for r in rows] == [
        (b.ts_ns, b.close) for b in bars if b.instrument_id == "rec:BBB"]


def test_reading_a_finished_run_leaves_its_folder_as_it_was(tmp_path: Path, built_run: Path
                                                             ) -> None:
    """A read-only connection to a finished run's WAL ledger made ``-wal`` and ``-shm``
    files there and never removed them: every API read left two files in the run."""
    run_dir = tmp_path / "run"
    shutil.copytree(built_run, run_dir)
    before = sorted(p.name for p in run_dir.iterdir())
    assert not any(name.endswith(("-wal", "-shm")) for name in before)
    view = RunLedger(run_dir)
    assert view.run()["run_id"] and view.page(EQUITY, 10).rows
    assert sorted(p.name for p in run_dir.iterdir()) == before
