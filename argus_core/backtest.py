"""One full deterministic backtest through the real loop, as a function.

The robustness lab and the orchestrator call :func:`run_backtest`; it runs the
same :class:`~argus_core.runner.Runner` as ``argus run`` (risk, sizing, paper
broker, ledger) and reads its results back from the ledger.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from argus_core.config import Config, apply_overrides
from argus_core.errors import ConfigError
from argus_core.interfaces import Strategy
from argus_core.ledger import Ledger
from argus_core.metrics import (
    basket_map,
    compute_metrics,
    equity_series,
    plays,
    round_trips,
    simple_returns,
)
from argus_core.models import Fill, Liquidity, Side
from argus_core.runner import Runner, RunSummary


@attrs.frozen
class BacktestResult:
    """Equity, fills, round-trip P&L and metrics of one backtest."""

    run_dir: Path
    summary: RunSummary
    equity: np.ndarray
    equity_ts_ns: np.ndarray
    returns: np.ndarray
    fills: list[Fill]
    trade_pnls: np.ndarray
    metrics: dict[str, Any]


def run_backtest(config: Config, run_dir: Path | None = None, *,
                 overrides: dict[str, Any] | None = None,
                 strategies: dict[str, Strategy] | None = None,
                 progress: bool = False) -> BacktestResult:
    """Replay ``config`` (with dotted-key ``overrides``) into ``run_dir`` (a fresh temporary
    directory when None) and return its results."""
    config = apply_overrides(config, overrides or {})
    if config.argus.mode == "live":
        raise ConfigError("a backtest cannot run in mode 'live'")
    if config.argus.mode == "paper":
        config = apply_overrides(config, {"argus.mode": "replay"})
    run_dir = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="argus-bt-"))
    summary = Runner(config, run_dir, strategies=strategies).run_sync()
    return load_result(run_dir, summary, config)


def load_result(run_dir: Path, summary: RunSummary, config: Config) -> BacktestResult:
    """Read a finished run's results from its ledger."""
    with Ledger.in_dir(run_dir) as ledger:
        ts, eq = equity_series(ledger)
        rows = ledger.fills()
        baskets = basket_map(ledger)
        metrics = compute_metrics(ledger, config.run.starting_cash, series=(ts, eq))
    fills = [Fill(r["fill_id"], r["client_order_id"], r["venue"], r["instrument_id"],
                  Side(r["side"]), r["price"], r["quantity"], r["fee"],
                  Liquidity(r["liquidity"]), r["ts_ns"]) for r in rows]
    pnls = np.array([float(t["pnl"]) for t in plays(round_trips(rows, baskets))],
                    dtype=np.float64)
    returns = simple_returns(eq)
    return BacktestResult(run_dir, summary, eq, ts, returns, fills, pnls, metrics)
