"""Everything the trader's report reads from a run directory, read once.

The ledger is read through :class:`argus_core.Ledger` and the core's own
:func:`argus_core.metrics.equity_series` (the report's numbers and the core's come from
the same arrays).  Nothing here writes to the ledger.
"""

from __future__ import annotations

import json
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core import LEDGER_FILE, Ledger, LedgerError, metrics

#: The runner's checkpoint name; its ``account.marks`` are the marks of the last equity row.
RUNNER_CHECKPOINT = "runner"


@attrs.frozen(eq=False)
class RunData:
    """One run's ledger, as the report needs it (money as exact ``Decimal``)."""

    run_dir: Path
    run: dict[str, Any]
    starting_cash: Decimal
    #: equity row stamps (int64 ns) and equity (float64), from ``metrics.equity_series``
    ts_ns: NDArray[np.int64]
    equity: NDArray[np.float64]
    #: per equity row: whether any position was held (gross exposure > 0)
    exposed: NDArray[np.bool_]
    #: the last equity row, exact (``None`` with no equity rows)
    final_equity: Decimal | None
    fills: list[dict[str, Any]]
    #: client order id -> order row (``reason`` is "" where the ledger predates it)
    orders: dict[str, dict[str, Any]]
    #: instrument -> the account's last mark (the runner's final checkpoint)
    marks: dict[str, Decimal]
    #: whether the ledger's ``orders`` table has a ``reason`` column
    has_reason: bool
    #: the core's metrics for the whole run (``metrics.compute_metrics``)
    core_metrics: dict[str, Any]


def ledger_path(run_dir: Path) -> Path:
    """``run_dir/argus.db``; ``LedgerError`` saying what to do when either is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LedgerError(f"{run_dir}: no such run directory; pass the directory `argus run` "
                          f"or `argus backtest` printed")
    path = run_dir / LEDGER_FILE
    if not path.is_file():
        raise LedgerError(f"{run_dir}: no {LEDGER_FILE} here; is this a run directory? "
                          f"(`argus run` or `argus backtest` writes one)")
    return path


def load_run(run_dir: Path) -> RunData:
    """Read ``run_dir``'s ledger; ``LedgerError`` when there is no ledger or no run."""
    ledger_path(run_dir)
    with Ledger.in_dir(run_dir) as ledger:
        runs = ledger.query("select * from runs")
        if not runs:
            raise LedgerError(f"{run_dir}/{LEDGER_FILE} has no run recorded")
        run = runs[0]
        config = json.loads(run["config_json"])
        starting_cash = Decimal(str(config.get("run", {}).get("starting_cash", "100000")))
        ts, eq = metrics.equity_series(ledger)
        core = metrics.compute_metrics(ledger, starting_cash, series=(ts, eq))
        exposed = _exposed(ledger, len(ts))
        last = ledger.query("select equity from equity order by ts_ns desc limit 1")
        columns = {r["name"] for r in ledger.query("pragma table_info(orders)")}
        orders = {r["client_order_id"]: r for r in ledger.query(
            "select * from orders order by ts_ns, client_order_id")}
        fills = ledger.fills()
        saved = ledger.load_checkpoint(RUNNER_CHECKPOINT)
    marks: dict[str, Decimal] = {}
    if saved is not None:
        marks = {k: Decimal(v) for k, v in saved[2].get("account", {}).get("marks", {}).items()}
    return RunData(run_dir=Path(run_dir), run=run, starting_cash=starting_cash, ts_ns=ts,
                   equity=eq, exposed=exposed,
                   final_equity=Decimal(last[0]["equity"]) if last else None,
                   fills=fills, orders=orders, marks=marks,
                   has_reason="reason" in columns, core_metrics=core)


def _exposed(ledger: Ledger, n: int) -> NDArray[np.bool_]:
    """Per equity row (time order), whether gross exposure was above zero; streamed into
    an array like ``equity_series`` (a 700k-row list of tuples would cost ~100 MiB)."""
    with ledger.conn:
        rows = ledger.conn.execute(
            "select cast(gross_exposure as real) > 0 from equity order by ts_ns")
        flags = np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=n)
    return cast(NDArray[np.bool_], flags.astype(bool))
