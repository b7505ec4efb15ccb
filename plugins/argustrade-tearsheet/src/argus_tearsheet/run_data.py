"""Everything the trader's report reads from a run directory, read once.

Inside the core's report the equity series, metrics, fills and plays come from the
core's own read of the ledger (the ``report`` argument of ``report_sections``, see
:func:`from_report`); this module reads only what the core does not hand over (orders,
final marks, opportunities).  On its own (:func:`load_run`, ``tearsheet_sections``) it
reads the same things with the same core functions.  Nothing here writes to the ledger:
it is read through the core's read-only ``Ledger.in_dir(read_only=True)``, in one
deferred read transaction, so a run still being written is read beside its writer (WAL)
as of its last commit, without waiting for the writer's transaction or taking its write
lock, and an older ledger is read as it is, never migrated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import apsw
import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core import LEDGER_FILE, Ledger, LedgerError, metrics

_T = TypeVar("_T")

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
    #: the core's plays: round trips, each basket's legs joined (``metrics.plays``)
    plays: list[dict[str, Any]]
    #: the scanners' findings in time order (``opportunities`` rows)
    opportunities: list[dict[str, Any]] = attrs.Factory(list)


@attrs.frozen
class _Extra:
    """What the core's report does not read: orders, final marks, opportunities."""

    orders: dict[str, dict[str, Any]]
    marks: dict[str, Decimal]
    has_reason: bool
    opportunities: list[dict[str, Any]]


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


def read_run(run_dir: Path, read: Callable[[Ledger], _T]) -> _T:
    """``read(ledger)`` on ``run_dir``'s ledger, read-only (the core's ``Ledger.reading``:
    a finished run's folder is left as it was, no ``-wal``/``-shm`` made), inside one
    read transaction (every row from the same commit); ``LedgerError`` naming the file
    when it is missing, not a run ledger (a zero-byte or foreign file is refused, never
    turned into one) or damaged.  ``read`` may run twice (a writer came meanwhile)."""
    path = ledger_path(run_dir)

    def in_one_transaction(ledger: Ledger) -> _T:
        with ledger.transaction():
            return read(ledger)

    try:
        return Ledger.reading(run_dir, in_one_transaction)
    except apsw.Error as exc:  # damaged, or locked past the busy timeout
        raise LedgerError(f"{path} cannot be used: {type(exc).__name__}: {exc} (a "
                          f"damaged file, or not an Argus ledger)") from None


def from_report(report: Any, run_dir: Path) -> RunData:
    """The run as the core's report read it (``report``: its ``ReportData``, taken
    duck-typed), plus orders, marks and opportunities read here.  Orders are committed
    before their fills, so reading them after the core read the fills finds every one."""
    extra = read_run(run_dir, _read_extra)
    return RunData(run_dir=Path(run_dir), run=report.run, starting_cash=report.starting_cash,
                   ts_ns=report.ts_ns, equity=report.equity, exposed=report.exposed,
                   final_equity=report.final_equity, fills=report.fills,
                   orders=extra.orders, marks=extra.marks, has_reason=extra.has_reason,
                   core_metrics=report.metrics, opportunities=extra.opportunities,
                   plays=report.plays)


def load_run(run_dir: Path) -> RunData:
    """Read ``run_dir``'s ledger; ``LedgerError`` when there is no ledger or no run."""
    # One read transaction: every figure below comes from the same commit, even while a
    # paper or live run keeps writing.
    return read_run(run_dir, lambda ledger: _whole_run(run_dir, ledger))


def _whole_run(run_dir: Path, ledger: Ledger) -> RunData:
    """The run as ``ledger`` holds it (see :func:`load_run`)."""
    runs = ledger.query("select * from runs")
    if not runs:
        raise LedgerError(f"{run_dir}/{LEDGER_FILE} has no run recorded")
    run = runs[0]
    config = json.loads(run["config_json"])
    starting_cash = Decimal(str(config.get("run", {}).get("starting_cash", "100000")))
    ts, eq, exposed = metrics.equity_exposure_series(ledger)
    last = ledger.query("select equity from equity order by ts_ns desc limit 1")
    fills = ledger.fills()
    plays = metrics.plays(metrics.round_trips(fills, metrics.basket_map(ledger)))
    extra = _read_extra(ledger)
    return RunData(run_dir=Path(run_dir), run=run, starting_cash=starting_cash, ts_ns=ts,
                   equity=eq, exposed=exposed,
                   final_equity=Decimal(last[0]["equity"]) if last else None,
                   fills=fills, orders=extra.orders, marks=extra.marks,
                   has_reason=extra.has_reason,
                   core_metrics=metrics.metrics_of(ts, eq, fills, plays, starting_cash),
                   opportunities=extra.opportunities, plays=plays)


def _read_extra(ledger: Ledger) -> _Extra:
    columns = {r["name"] for r in ledger.query("pragma table_info(orders)")}
    orders = {r["client_order_id"]: r for r in ledger.query(
        "select * from orders order by ts_ns, client_order_id")}
    opportunities = ledger.query("select * from opportunities order by ts_ns, opportunity_id")
    saved = ledger.query("select state_json from checkpoints where name = ?",
                         (RUNNER_CHECKPOINT,))
    return _Extra(orders, final_marks(saved[0]["state_json"] if saved else None, ledger.path),
                  "reason" in columns, opportunities)


def final_marks(state_json: str | None, path: Path) -> dict[str, Decimal]:
    """The account's marks in the runner's checkpoint text (none without one);
    ``LedgerError`` naming ``path`` when the checkpoint is not JSON."""
    if state_json is None:
        return {}
    try:
        state = json.loads(state_json)
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{path}: checkpoint {RUNNER_CHECKPOINT!r} is corrupt: {exc}") \
            from None
    marks = state.get("account", {}).get("marks", {})
    return {str(k): Decimal(str(v)) for k, v in marks.items()}
