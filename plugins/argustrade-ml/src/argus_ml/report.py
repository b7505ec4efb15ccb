"""The backtest report's section for a run on ``updown_replay``: the stated binary market
model, in words, and the bets as the run's ledger booked them (read with
:class:`argus_core.Ledger`), each bet's P&L = contracts x (settlement - price) - fees."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from argus_core import Config, DataError, Ledger, plugin_settings
from argus_ml.config import MLSettings


@attrs.frozen
class BinaryBet:
    """One contract's round trip: bought ``quantity`` at ``cost`` (price x quantity) plus
    ``fees``, settled at ``settlement`` (None while open)."""

    instrument_id: str
    quantity: Decimal
    cost: Decimal
    fees: Decimal
    settlement: Decimal | None

    @property
    def pnl(self) -> Decimal | None:
        """Payoff minus cost and fees; None while unsettled."""
        if self.settlement is None:
            return None
        return self.quantity * self.settlement - self.cost - self.fees


def binary_bets(fills: Iterable[Mapping[str, Any]]) -> list[BinaryBet]:
    """Bets from ledger fill rows (``instrument_id, side, price, quantity, fee,
    liquidity``), in the order their first fill appears."""
    acc: dict[str, dict[str, Any]] = {}
    for f in fills:
        a = acc.setdefault(f["instrument_id"], {"q": Decimal(0), "cost": Decimal(0),
                                                "fees": Decimal(0), "settle": None})
        qty, price = Decimal(f["quantity"]), Decimal(f["price"])
        if f["liquidity"] == "settlement":
            a["settle"] = price
        elif f["side"] == "buy":
            a["q"] += qty
            a["cost"] += qty * price
            a["fees"] += Decimal(f["fee"])
    return [BinaryBet(iid, a["q"], a["cost"], a["fees"], a["settle"])
            for iid, a in acc.items() if a["q"] > 0]


def binary_market_section(config: Config, run_dir: Path) -> dict[str, str]:
    """``{title: html}``: the market model stated, then bets, hit rate, P&L and fees."""
    s: MLSettings = plugin_settings(config, "ml", MLSettings) or MLSettings()
    with Ledger.in_dir(run_dir) as ledger:
        bets = binary_bets(r for r in ledger.fills() if "-UP-" in r["instrument_id"]
                           or "-DOWN-" in r["instrument_id"])
        checkpoint = ledger.query("select state_json from checkpoints where name = 'runner'")
        alarms = ledger.query("select ts_ns, action, reason from risk_events"
                              " where check_name = 'ml_drift' order by ts_ns")
    model_id = _model_of_run(checkpoint[0]["state_json"] if checkpoint else "{}")
    settled = [b for b in bets if b.pnl is not None]
    wins = sum(1 for b in settled if b.settlement == 1)
    pnl = sum((b.pnl for b in settled if b.pnl is not None), Decimal(0))
    fees = sum((b.fees for b in bets), Decimal(0))
    ask = 0.5 + s.half_spread
    model = (
        "<p>No up/down market quotes were recorded, so this backtest prices the binary "
        f"market with a stated model: every {s.window_bars}-bar window's up and down "
        f"contracts are offered at ask {ask:.4f} (fair 0.5 plus a half-spread of "
        f"{s.half_spread}) with {s.depth} contracts shown, and every fill pays a fee of "
        f"{s.fee_rate:.2%} of the price: {ask * (1 + s.fee_rate):.4f} a contract all in. "
        "Contracts settle at 1 or 0 at the window's closing bar. The market is assumed to "
        "know nothing (always 0.5): conservative about costs, generous about information "
        "- a real market moves its price with what the features see, so treat the P&L "
        "as an upper bound.</p>")
    table = (
        "<table><tr><th>bets</th><th>settled</th><th>won</th><th>hit rate</th>"
        "<th>P&amp;L</th><th>fees</th></tr>"
        f"<tr><td>{len(bets)}</td><td>{len(settled)}</td><td>{wins}</td>"
        f"<td>{(wins / len(settled) if settled else 0.0):.1%}</td>"
        f"<td>{pnl:.2f}</td><td>{fees:.2f}</td></tr></table>")
    return {"Binary up/down market (stated model)": model + table
            + _in_sample_note(s, model_id, bets) + _drift_alarms(alarms)
            + _model_history(s, model_id)}


def _opens_ns(instrument_id: str) -> int | None:
    """A contract's window opening (``SYMBOL-UP-<open s>``), in ns; None if not named so."""
    tail = instrument_id.rsplit("-", 1)[-1]
    return int(tail) * 10**9 if tail.isdigit() else None


def _in_sample_note(s: MLSettings, model_id: str, bets: list[BinaryBet]) -> str:
    """How many bets opened before the model's training labels ended (in sample: only
    with ``allow_in_sample``), or that every bet came after them."""
    if not model_id or s.registry is None or not Path(s.registry).exists():
        return ""
    from argus_ml.registry import ModelRegistry, open_registry, training_end_ns

    with open_registry(Path(s.registry)) as ledger:
        registry = ModelRegistry(ledger)
        try:
            meta = registry.load(model_id).meta
            report = None if "trained_on" in meta else registry.report(model_id)
        except DataError as exc:  # the registry no longer holds the run's model
            return f"<p>Training period not checked: {html.escape(str(exc))}.</p>"
        end = training_end_ns(meta, report, s.bar_seconds)
    if end is None:
        return ("<p>The model does not record the period it was trained on: whether these "
                "bets are out of sample cannot be checked.</p>")
    inside = [b for b in bets if (_opens_ns(b.instrument_id) or end) < end]
    if not inside:
        return (f"<p>Out of sample: every bet opened at or after unix {end // 10**9}, when "
                "the model's training labels ended.</p>")
    return (f"<p><b>In sample: {len(inside)} of {len(bets)} bets</b> opened before unix "
            f"{end // 10**9}, inside the data the model was trained on "
            "(<code>allow_in_sample = true</code>): they score the model on its own training "
            "data and say nothing about how it trades out of sample.</p>")


def _drift_alarms(alarms: list[dict[str, Any]]) -> str:
    """The run's drift alarms (``ml_drift`` risk events): when, and whether the registry's
    model was demoted or only the run's gate closed (a replay, by default)."""
    if not alarms:
        return "<p>Drift monitor: no alarm in this run.</p>"
    rows = "".join(
        f"<tr><td>{int(a['ts_ns']) // 10**9}</td><td>{html.escape(str(a['action']))}</td>"
        f"<td>{html.escape(str(a['reason']))}</td></tr>" for a in alarms)
    return ("<p>Drift monitor alarms (no bet after one; <i>demote</i>: the model was "
            "demoted in the registry, <i>alert</i>: the registry was left as it was, as a "
            "replay does unless <code>demote_in_replay</code> is set):</p>"
            "<table><tr><th>time (unix s)</th><th>action</th><th>reason</th></tr>"
            f"{rows}</table>")


def _model_of_run(state_json: str) -> str:
    """The model id the run's ``ml_updown`` forecaster used (from its checkpoint)."""
    state = json.loads(state_json)
    for strategy in (state.get("strategies") or {}).values():
        fc = strategy.get("forecaster") if isinstance(strategy, dict) else None
        if isinstance(fc, dict) and fc.get("model_id"):
            return str(fc["model_id"])
    return ""


def _model_history(s: MLSettings, model_id: str) -> str:
    """The model and its status changes (a drift demotion stops the bets)."""
    if not model_id or s.registry is None or not Path(s.registry).exists():
        return ""
    from argus_ml.registry import ModelRegistry, open_registry

    with open_registry(Path(s.registry)) as ledger:
        events = ModelRegistry(ledger).events(model_id)
    rows = "".join(
        f"<tr><td>{html.escape(str(e['event']))}</td><td>{e['from_status']} -&gt; "
        f"{e['to_status']}</td><td>{html.escape(str(e['actor']))}</td>"
        f"<td>{html.escape(str(e['reason']))}</td></tr>" for e in events)
    return (f"<p>Model {html.escape(model_id)} from {html.escape(str(s.registry))}; "
            "its status history (a demotion by the drift monitor ends its bets):</p>"
            f"<table><tr><th>event</th><th>status</th><th>by</th><th>reason</th></tr>{rows}"
            "</table>")
