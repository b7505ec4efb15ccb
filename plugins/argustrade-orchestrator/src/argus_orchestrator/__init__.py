"""The AI orchestrator: rewrite, sandbox, prove and hot-swap strategies, with rollback.

A cycle (:mod:`~argus_orchestrator.cycle`): truth benchmarks from the
ledger -> generate call -> independent review call -> static validation ->
dynamic validation in the sandbox -> backtest and deploy gates against the
incumbent -> promotion ladder shadow -> canary -> full
(:mod:`~argus_orchestrator.ladder`), with automatic rollback on risk
triggers.  Every model call lands in the thought spool
(:mod:`~argus_orchestrator.spool`), every version in the version store
(:mod:`~argus_orchestrator.versions`).
"""

from argus_orchestrator.errors import BudgetExceeded, OrchestratorError, SandboxError

__all__ = ["BudgetExceeded", "OrchestratorError", "SandboxError"]
