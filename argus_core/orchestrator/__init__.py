"""The AI orchestrator: rewrite, sandbox, prove and hot-swap strategies, with rollback.

A cycle (:mod:`~argus_core.orchestrator.cycle`): truth benchmarks from the
ledger -> generate call -> independent review call -> static validation ->
dynamic validation in the sandbox -> backtest and deploy gates against the
incumbent -> promotion ladder shadow -> canary -> full
(:mod:`~argus_core.orchestrator.ladder`), with automatic rollback on risk
triggers.  Every model call lands in the thought spool
(:mod:`~argus_core.orchestrator.spool`), every version in the version store
(:mod:`~argus_core.orchestrator.versions`).
"""

from argus_core.errors import ArgusError


class OrchestratorError(ArgusError):
    """A cycle step failed (model call, budget, secret found, bad configuration)."""

    exit_code = 9


class BudgetExceeded(OrchestratorError):
    """A token or cost budget (per cycle or per day) would be exceeded by the next call."""


__all__ = ["BudgetExceeded", "OrchestratorError"]
