"""Everything the trader's report reads from a run directory, read once.

The ledger is read through :class:`argus_core.Ledger`; the equity series is the very
array :func:`argus_core.metrics.equity_series` returns (read faster, see
:func:`read_equity`), and the core's :func:`~argus_core.metrics.compute_metrics` computes
the metrics they share.  Nothing here writes to the ledger.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
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
    #: the scanners' findings in time order (``opportunities`` rows)
    opportunities: list[dict[str, Any]] = attrs.Factory(list)


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
    # One read transaction: every figure below comes from the same commit, even while a
    # paper or live run keeps writing.
    with Ledger.in_dir(run_dir) as ledger, ledger.transaction():
        runs = ledger.query("select * from runs")
        if not runs:
            raise LedgerError(f"{run_dir}/{LEDGER_FILE} has no run recorded")
        run = runs[0]
        config = json.loads(run["config_json"])
        starting_cash = Decimal(str(config.get("run", {}).get("starting_cash", "100000")))
        ts, eq, exposed = read_equity(ledger)
        core = metrics.compute_metrics(ledger, starting_cash, series=(ts, eq))
        last = ledger.query("select equity from equity order by ts_ns desc limit 1")
        columns = {r["name"] for r in ledger.query("pragma table_info(orders)")}
        orders = {r["client_order_id"]: r for r in ledger.query(
            "select * from orders order by ts_ns, client_order_id")}
        fills = ledger.fills()
        opportunities = ledger.query("select * from opportunities order by ts_ns, "
                                     "opportunity_id")
        saved = ledger.load_checkpoint(RUNNER_CHECKPOINT)
    marks: dict[str, Decimal] = {}
    if saved is not None:
        marks = {k: Decimal(v) for k, v in saved[2].get("account", {}).get("marks", {}).items()}
    return RunData(run_dir=Path(run_dir), run=run, starting_cash=starting_cash, ts_ns=ts,
                   equity=eq, exposed=exposed,
                   final_equity=Decimal(last[0]["equity"]) if last else None,
                   fills=fills, orders=orders, marks=marks,
                   has_reason="reason" in columns, core_metrics=core,
                   opportunities=opportunities)


def read_equity(ledger: Ledger) -> tuple[NDArray[np.int64], NDArray[np.float64],
                                         NDArray[np.bool_]]:
    """``(ts_ns, equity, exposed)`` of every equity row in time order: the same arrays,
    bit for bit, as :func:`argus_core.metrics.equity_series` (a test holds them equal),
    plus whether gross exposure was above zero at each row.

    Read about twice as fast: SQLite joins each column into one newline-separated string
    in a single scan (``ts_ns`` is the table's integer primary key, so the scan runs in
    time order), and Arrow's CSV parser turns the decimal text into float64, correctly
    rounded like Python's ``float()``; 700k rows of Python ``float()`` calls cost more
    than the whole rest of the report.  ``cast(equity as real)`` would be quicker still
    but SQLite's conversion is not correctly rounded for long decimals; the exposure flag
    uses it safely, since only the sign matters."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    row = ledger.conn.execute(
        "select count(*), group_concat(ts_ns, char(10)), group_concat(equity, char(10)),"
        " group_concat(flag, '') from (select ts_ns, equity,"
        " cast(gross_exposure as real) > 0 as flag from equity order by ts_ns)").fetchone()
    if row is None or not row[0]:
        return (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64),
                np.empty(0, dtype=bool))
    n = int(row[0])
    ts = _column(pacsv, str(row[1]), pa.int64())
    equity = _column(pacsv, str(row[2]), pa.float64())
    exposed = np.frombuffer(str(row[3]).encode("ascii"), dtype=np.uint8) == ord("1")
    if not len(ts) == len(equity) == len(exposed) == n:
        raise LedgerError(f"{ledger.path}: equity rows could not be read back whole")
    return (cast(NDArray[np.int64], ts), cast(NDArray[np.float64], equity),
            cast(NDArray[np.bool_], exposed))


def _column(pacsv: Any, text: str, kind: Any) -> NDArray[Any]:
    """One newline-separated column of numbers parsed by Arrow into a numpy array."""
    options = pacsv.ConvertOptions(column_types={"v": kind})
    table = pacsv.read_csv(io.BytesIO(text.encode("ascii")),
                           read_options=pacsv.ReadOptions(column_names=["v"]),
                           convert_options=options)
    return cast(NDArray[Any], table.column("v").to_numpy())
