"""Builtin plugin ``journal``: a trader's running log of a run, through the observer hooks.

Logs, through the ``argus.journal`` logger (a child of ``argus``; shown by ``argus -v``):

* each committed fill: instrument, side, quantity, price, fee, liquidity, client order id;
* each opportunity a scanner reports: scanner, kind, event, size, edge, expected profit,
  whether it is risk-free, and its reason;
* at shutdown one summary line: fills, traded notional and fees by quote amount,
  opportunities and their summed expected profit.

Every line is INFO and carries its fields as structured data too, in the log record's
``journal`` attribute (a dict: ``record.journal["kind"]`` is "fill", "opportunity" or
"summary"), so a JSON log handler can ship them as they are.  The observers are fenced
by the runner like every plugin's: a failing journal is a logged risk event, never a
stopped run.  Disable it with ``ARGUS_BLOCK_PLUGINS=journal``.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from argus_core.hookspecs import hookimpl
from argus_core.models import Fill, Opportunity
from argus_core.secrets import redact

if TYPE_CHECKING:
    from argus_core.runtime import RunContext

log = logging.getLogger("argus.journal")


@attrs.define
class RunTally:
    """What the journal counted during one run (for the shutdown summary)."""

    fills: int = 0
    notional: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    opportunities: int = 0
    expected_profit: Decimal = Decimal(0)


#: run id -> its tally; a run's entry lives from on_startup (or its first event) to
#: on_shutdown, so several runs in one process keep separate counts.
_TALLIES: dict[str, RunTally] = {}


def _redacted(fields: dict[str, object]) -> dict[str, object]:
    """``fields`` with secrets redacted from their text: a JSON handler ships them as they
    are, past the formatters that redact the message (a reason may quote a signed URL)."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}


def _tally(ctx: RunContext) -> RunTally:
    return _TALLIES.setdefault(ctx.run_id, RunTally())


@hookimpl
def on_startup(ctx: RunContext) -> None:
    """Start a fresh tally for the run."""
    _TALLIES[ctx.run_id] = RunTally()


@hookimpl
def on_fill(fill: Fill, ctx: RunContext) -> None:
    """Log one committed fill (and count it for the summary)."""
    tally = _tally(ctx)
    tally.fills += 1
    tally.notional += fill.notional
    tally.fees += fill.fee
    if not log.isEnabledFor(logging.INFO):
        return
    fields = _redacted({"run_id": ctx.run_id, "instrument_id": fill.instrument_id,
                        "side": fill.side.value, "quantity": str(fill.quantity),
                        "price": str(fill.price), "fee": str(fill.fee),
                        "liquidity": fill.liquidity.value,
                        "client_order_id": fill.client_order_id, "fill_id": fill.fill_id,
                        "ts_ns": fill.ts_ns})
    log.info("fill %s %s %s @ %s fee %s (%s) order %s", fill.side.value, fill.quantity,
             fill.instrument_id, fill.price, fill.fee, fill.liquidity.value,
             fill.client_order_id, extra={"journal": {"kind": "fill", **fields}})


@hookimpl
def on_opportunity(opportunity: Opportunity, ctx: RunContext) -> None:
    """Log one opportunity a scanner reported (and count it for the summary)."""
    tally = _tally(ctx)
    tally.opportunities += 1
    tally.expected_profit += opportunity.expected_profit
    if not log.isEnabledFor(logging.INFO):
        return
    o = opportunity
    fields = _redacted({"run_id": ctx.run_id, "opportunity_id": o.opportunity_id,
                        "scanner": o.scanner, "opportunity_kind": o.kind,
                        "event_id": o.event_id, "legs": len(o.legs),
                        "max_size": str(o.max_size), "edge_per_unit": str(o.edge_per_unit),
                        "expected_profit": str(o.expected_profit), "costs": str(o.costs),
                        "risk_free": o.risk_free, "lane": o.lane, "reason": o.reason,
                        "ts_ns": o.ts_ns})
    log.info("opportunity %s %s %s [%s]: %s legs x %s, edge %s/unit, expected profit %s%s",
             o.scanner, o.kind, o.event_id, o.lane, len(o.legs), o.max_size, o.edge_per_unit,
             o.expected_profit, "" if o.risk_free else " (NOT risk-free)",
             extra={"journal": {"kind": "opportunity", **fields}})


@hookimpl
def on_shutdown(ctx: RunContext) -> None:
    """Log the run's summary line."""
    tally = _TALLIES.pop(ctx.run_id, RunTally())
    fields = {"run_id": ctx.run_id, "mode": ctx.mode, "fills": tally.fills,
              "notional": str(tally.notional), "fees": str(tally.fees),
              "opportunities": tally.opportunities,
              "expected_profit": str(tally.expected_profit)}
    log.info("run %s (%s) stopped: %d fills, notional %s, fees %s; %d opportunities, "
             "expected profit %s", ctx.run_id, ctx.mode, tally.fills, tally.notional,
             tally.fees, tally.opportunities, tally.expected_profit,
             extra={"journal": {"kind": "summary", **fields}})
