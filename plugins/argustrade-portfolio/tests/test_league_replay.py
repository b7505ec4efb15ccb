"""The league in real replays of the bundled Kraken bars: two slots trading a known edge
(:class:`league_helpers.Oracle`), references measured from a backtest of Jan-Feb 2021 by
``argus league reference``, then a live replay of Mar-Apr 2021 in which slot ``a``'s edge
turns into a loss on 1 April."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from argus_portfolio.commands import league as league_cli
from argus_portfolio.league import Reference
from click.testing import CliRunner
from league_helpers import Oracle, ns, replay_config, rows

from argus_core import Ledger, Runner

DECAY = "2021-04-01"
EVERY = 12  # commit (and so hand the league its book rows) twice a day of hourly bars


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Both slots' references from a Jan-Feb 2021 backtest, written by the command."""
    base = tmp_path_factory.mktemp("reference")
    Runner(replay_config("2021-01-01", "2021-03-01", every=500), base / "backtest",
           strategies={"a": Oracle(), "b": Oracle(quantity="0.3")}).run_sync()
    out = {}
    for slot in ("a", "b"):
        path = base / f"{slot}.json"
        result = CliRunner().invoke(league_cli, ["reference", str(base / "backtest"),
                                                 "--slot", slot, "--window", "72",
                                                 "--out", str(path)])
        assert result.exit_code == 0, result.output
        assert f"wrote {path}" in result.output
        out[slot] = str(path)
    return out


def live(run_dir: Path, refs: dict[str, str], *, max_events: int | None = None,
         league: dict[str, Any] | None = None) -> Any:
    """The Mar-Apr 2021 replay: ``a`` decays on 1 April, ``b`` keeps its edge."""
    config = replay_config("2021-03-01", "2021-05-01",
                           {"references": refs, **(league or {})}, every=EVERY)
    return Runner(config, run_dir, max_events=max_events,
                  strategies={"a": Oracle(decay_ns=ns(DECAY)),
                              "b": Oracle(quantity="0.3")}).run_sync()


def test_the_reference_describes_the_backtest(references: dict[str, str]) -> None:
    ref = Reference.load(Path(references["a"]))
    assert ref.slot == "a" and ref.window == 72
    assert ref.periods_per_year == pytest.approx(8766, rel=1e-3)  # hourly rows
    assert ref.sharpe_mean > 10 and ref.sharpe_std > 0  # a known edge
    assert 0 < ref.drawdown_quantile(0.99) <= ref.max_drawdown < 0.02
    assert ref.hit_rate is not None and ref.hit_rate > 0.8


def test_a_decaying_strategy_is_quarantined_and_the_other_keeps_trading(
        tmp_path: Path, references: dict[str, str]) -> None:
    summary = live(tmp_path / "run", references)
    assert summary.trading_state == "active"  # the run goes on
    events = rows(tmp_path / "run", "select * from risk_events order by id")
    transitions = [e for e in events if e["action"] != "veto"]
    quarantine = transitions[0]
    assert (quarantine["strategy"], quarantine["action"]) == ("a", "quarantined")
    assert {e["strategy"] for e in events} == {"a"}  # b: never judged unhealthy
    reason = quarantine["reason"]
    assert reason.startswith("league: strategy 'a' quarantined as of its book row of 2021-04-")
    for figure in ("rolling Sharpe", "over 72 rows", "SD from the reference's",
                   "(limit -3)", "drawdown", "reference q0.99"):
        assert figure in reason
    # detected within days of the decay, never before it
    assert ns(DECAY) < quarantine["ts_ns"] < ns(DECAY) + 5 * 86_400 * 10**9
    z = float(reason.split(" SD from")[0].rsplit(" ", 1)[1])
    assert z <= -3
    (logged,) = rows(tmp_path / "run", "select * from league_events where to_status = "
                                       "'quarantined'")
    assert logged["slot"] == "a" and logged["reason"] == reason and logged["sharpe_z"] <= -3
    assert logged["drawdown"] >= 0.01 and logged["verdict"] == "unknown"
    # `argus league events` prints the transition with its UTC time, not the raw ns
    out = CliRunner().invoke(league_cli, ["events", str(tmp_path / "run")])
    assert out.exit_code == 0, out.output
    when = dt.datetime.fromtimestamp(logged["ts_ns"] // 10**9, dt.UTC)
    assert out.output.startswith(when.strftime("%Y-%m-%d %H:%M:%S UTC") + "  a  active -> "
                                 "quarantined  league: strategy 'a'"), out.output
    # vetoes name the state and the reason; a opens nothing after it, b trades to the end
    vetoes = [e for e in events if e["action"] == "veto"]
    assert vetoes and all("only orders that reduce its own position" in v["reason"]
                          for v in vetoes)
    orders = rows(tmp_path / "run", "select strategy, side, ts_ns from orders")
    after = [o for o in orders if o["ts_ns"] > quarantine["ts_ns"]]
    assert not [o for o in after if o["strategy"] == "a" and o["side"] == "buy"]
    assert len([o for o in after if o["strategy"] == "b"]) > 200
    # a's exit passed: it ends flat
    (held,) = rows(tmp_path / "run", "select coalesce(sum(case side when 'buy' then "
                                     "cast(quantity as real) else -cast(quantity as real) "
                                     "end), 0) q from orders where strategy = 'a'")
    assert held["q"] == pytest.approx(0)


def test_without_decay_nothing_is_judged_unhealthy(tmp_path: Path,
                                                   references: dict[str, str]) -> None:
    """Attack on the guard: the same strategies on fresh data with their edge intact."""
    config = replay_config("2021-03-01", "2021-05-01", {"references": references},
                           every=EVERY)
    Runner(config, tmp_path / "run",
           strategies={"a": Oracle(), "b": Oracle(quantity="0.3")}).run_sync()
    assert not rows(tmp_path / "run", "select * from risk_events")
    assert not rows(tmp_path / "run", "select * from league_events")


def test_a_strategy_failing_eligibility_never_trades(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    trials = pytest.importorskip("argus_lab.trials")
    with trials.open_lab_ledger(lab / "lab.db") as ledger, ledger.transaction():
        for family, verdict in (("oracle_b", "deploy"), ("oracle_a", "deploy"),
                                ("oracle_a", "kill")):  # a's newest verdict is kill
            ledger.insert("lab_gate_verdicts", {
                "family": family, "ts_ns": 1, "verdict": verdict, "reasons_json": "[]",
                "details_json": "{}", "config_hash": "x"})
    league = {"lab_dir": str(lab), "allow_unknown": False,
              "lab_families": {"a": "oracle_a", "b": "oracle_b"}}
    Runner(replay_config("2021-03-01", "2021-03-15", league), tmp_path / "run",
           strategies={"a": Oracle(), "b": Oracle(), "c": Oracle()}).run_sync()
    orders = rows(tmp_path / "run", "select strategy, count(*) n from orders group by 1")
    assert {o["strategy"]: o["n"] for o in orders}.keys() == {"b"}  # a: kill; c: unknown
    events = rows(tmp_path / "run", "select * from league_events order by id")
    assert {(e["slot"], e["to_status"], e["verdict"]) for e in events} == {
        ("a", "ineligible", "fail"), ("c", "ineligible", "unknown")}
    reasons = {e["slot"]: e["reason"] for e in events}
    assert "lab verdict kill (family 'oracle_a' in " in reasons["a"]
    assert "no lab verdict" in reasons["c"] and "allow_unknown is false" in reasons["c"]


def test_the_league_survives_a_resumed_run(tmp_path: Path,
                                           references: dict[str, str]) -> None:
    live(tmp_path / "full", references)
    want_events = rows(tmp_path / "full", "select ts_ns, check_name, action, strategy, "
                                          "reason from risk_events order by id")
    want_orders = rows(tmp_path / "full", "select * from orders order by client_order_id")
    (alarm,) = rows(tmp_path / "full", "select ts_ns from league_events where to_status = "
                                       "'quarantined'")
    for stop in (300, 800):  # mid-March (healthy, windows filling) and after the alarm
        split = tmp_path / f"split{stop}"
        first = live(split, references, max_events=stop)
        with Ledger.in_dir(split) as ledger:
            saved = ledger.load_checkpoint("runner")
        assert saved is not None
        state = saved[2]["risk_checks"]["league"]
        assert (state["slots"]["a"]["status"] == "quarantined") == (saved[1] > alarm["ts_ns"])
        assert len(state["slots"]["a"]["health"]["returns"]) == 72  # a full window
        json.dumps(state)  # JSON-able
        resumed = live(split, references)
        assert resumed.resumed_from == first.events
        assert rows(split, "select ts_ns, check_name, action, strategy, reason from "
                           "risk_events order by id") == want_events
        assert rows(split, "select * from orders order by client_order_id") == want_orders


def test_an_in_run_baseline_stands_in_for_a_reference(tmp_path: Path) -> None:
    """No reference file: each slot's first 400 rows (Mar 1-17) are its reference."""
    config = replay_config("2021-03-01", "2021-05-01",
                           {"baseline_periods": 400, "window": 72}, every=EVERY)
    Runner(config, tmp_path / "run", strategies={
        "a": Oracle(decay_ns=ns(DECAY)), "b": Oracle(quantity="0.3")}).run_sync()
    events = rows(tmp_path / "run", "select * from league_events order by id")
    assert events and events[0]["slot"] == "a" and events[0]["to_status"] == "quarantined"
    assert {e["slot"] for e in events} == {"a"}
    assert ns(DECAY) < events[0]["ts_ns"] < ns(DECAY) + 5 * 86_400 * 10**9
    with Ledger.in_dir(tmp_path / "run") as ledger:
        saved = ledger.load_checkpoint("runner")
    assert saved is not None
    ref = saved[2]["risk_checks"]["league"]["slots"]["b"]["reference"]
    assert ref["source"] == "this run's first 400 rows" and ref["window"] == 72
