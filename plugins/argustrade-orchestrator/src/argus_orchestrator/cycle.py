"""One orchestrator cycle, from truth benchmarks to a proven (or refused) candidate.

truth benchmarks (core metrics from the ledger) -> generate call -> review call ->
secret scan -> static validation -> dynamic validation (contract tests in the
sandbox) -> backtest and gates against the incumbent.  Every step's outcome is
written to the ledger; the caller (:mod:`~argus_orchestrator.ladder`)
takes a ``deploy`` candidate up the promotion ladder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from argus_core import Config, Ledger, find_key_shaped, redact
from argus_core.metrics import (
    compute_metrics,
    drawdown,
    equity_series,
    return_stats,
    simple_returns,
)
from argus_orchestrator.config import OrchestratorSettings
from argus_orchestrator.errors import OrchestratorError, SandboxError
from argus_orchestrator.gates import ProvenRun, prove
from argus_orchestrator.llm import ModelClient
from argus_orchestrator.prompts import (
    extract_code,
    generate_prompts,
    parse_review,
    review_prompts,
)
from argus_orchestrator.sandbox import SandboxedStrategy, WorkerPolicy, validate_source
from argus_orchestrator.spool import ThoughtSpool, prompt_hash
from argus_orchestrator.versions import VersionStore

log = logging.getLogger(__name__)

#: Keys of the truth benchmarks (simple, verifiable, computed by the core).
BENCHMARK_KEYS = ("n_trades", "win_rate", "total_pnl", "total_return", "fees",
                  "max_drawdown", "expectancy", "sharpe")


def truth_benchmarks(ledger: Ledger, starting_cash: Decimal,
                     recent_equity: Sequence[tuple[int, float]] = ()) -> dict[str, Any]:
    """Trades, win rate, P&L, fees, drawdown, expectancy and Sharpe of the run so far.

    Trades come from the ledger's fills, P&L, drawdown and Sharpe from its equity rows.
    The loop writes equity rows only when it commits (in a replay every
    ``checkpoint_every_events`` events), while its fills are in the ledger at once; so
    ``recent_equity``, the ``(ts_ns, equity)`` marks the loop has seen (as the ladder
    records them), extends the written curve past its last row.  Without it the figures
    could describe different trades: an expectancy of -195 beside a P&L of 0.
    """
    metrics = compute_metrics(ledger, starting_cash)
    if recent_equity:
        ts, eq = equity_series(ledger)
        last = int(ts[-1]) if len(ts) else None
        newer = [(t, e) for t, e in recent_equity if last is None or t > last]
        if newer:
            ts = np.concatenate([ts, np.array([t for t, _ in newer], dtype=np.int64)])
            eq = np.concatenate([eq, np.array([e for _, e in newer], dtype=np.float64)])
            cash = float(starting_cash)
            # The same formulas as compute_metrics, over the extended curve.
            metrics.update(total_pnl=float(eq[-1] - cash),
                           total_return=float(eq[-1] / cash - 1) if cash else 0.0,
                           max_drawdown=float(drawdown(eq).max()))
            returns = simple_returns(eq)
            metrics.update(return_stats(returns, ts))
    return {k: metrics.get(k) for k in BENCHMARK_KEYS}


@attrs.frozen
class CycleResult:
    """How a cycle ended: ``deploy`` (candidate proven), ``rejected`` or ``failed``."""

    cycle_id: str
    outcome: str
    reason: str
    candidate_id: str | None = None
    candidate_source: str | None = None
    gates: dict[str, Any] | None = None


def synthetic_contract_events(instrument_id: str, n: int = 120) -> list[dict[str, Any]]:
    """Deterministic bars for contract tests: a rise, a fall and a flat stretch."""
    events = []
    price = 100.0
    for i in range(n):
        step = 0.8 if i < n // 3 else (-0.9 if i < 2 * n // 3 else (0.05 if i % 2 else -0.05))
        price = max(1.0, price + step)
        events.append({"type": "bar", "instrument_id": instrument_id,
                       "ts_ns": (i + 1) * 3_600_000_000_000, "open": price - step,
                       "high": max(price, price - step) + 0.1,
                       "low": min(price, price - step) - 0.1, "close": price,
                       "volume": 10.0})
    return events


def dynamic_validation(source: str, policy: WorkerPolicy, handover_state: dict[str, Any],
                       instrument_id: str) -> dict[str, Any]:
    """Contract tests in the sandbox: it starts, takes the incumbent's state, answers every
    event in time with valid intents and JSON state, and is deterministic."""
    from argus_core import Bar, Portfolio
    from argus_orchestrator.sandbox.host import SandboxedStrategy as _S

    runs = []
    for _ in range(2):
        strategy = _S(source, name="contract-test", policy=policy)
        try:
            strategy.set_state(handover_state)
            outputs = []
            portfolio = Portfolio(cash=Decimal(100000))
            for raw in synthetic_contract_events(instrument_id):
                bar = Bar(**{k: v for k, v in raw.items() if k != "type"})
                ctx = _Ctx(bar.ts_ns, portfolio)
                intents = strategy.on_event(bar, ctx)  # type: ignore[arg-type]
                outputs.append([repr(i) for i in intents])
            runs.append((outputs, json.dumps(strategy.get_state(), sort_keys=True)))
            protections = strategy.protections
        finally:
            strategy.close()
    if runs[0] != runs[1]:
        raise SandboxError("the candidate is not deterministic: the same events gave "
                           "different intents or state")
    n_intents = sum(len(o) for o in runs[0][0])
    return {"events": len(runs[0][0]), "intents": n_intents, "protections": protections}


@attrs.frozen
class _Ctx:
    ts_ns: int
    portfolio: Any
    market: Any = None
    pricers: Any = attrs.Factory(dict)


class CycleRunner:
    """Runs cycles for one slot; owned by the ladder controller."""

    def __init__(self, config: Config, settings: OrchestratorSettings, ledger: Ledger,
                 model: ModelClient, versions: VersionStore, work_dir: Path,
                 clock: Callable[[], int]) -> None:
        self.config = config
        self.settings = settings
        self.ledger = ledger
        self.model = model
        self.versions = versions
        # The model's own spool where it writes to this ledger: one list of the rows a
        # stopped replay writes again (see ThoughtSpool.save_pending).
        spool = getattr(model, "spool", None)
        self.spool = spool if isinstance(spool, ThoughtSpool) and spool.ledger is ledger \
            else ThoughtSpool(ledger)
        self.work_dir = work_dir
        self.clock = clock
        self.feedback: list[str] = []
        # Each version's backtest on the proving window, by version id: a later cycle's
        # incumbent is not backtested again (deterministic replay, same window).
        self.proven: dict[tuple[str, str], ProvenRun] = {}
        self._stored: str | None = None  # the running cycle's stored candidate, if any

    def run(self, cycle_id: str, *, incumbent_id: str, incumbent_source: str,
            incumbent_factory: Callable[[], Any], handover_state: dict[str, Any],
            instrument_id: str, recent_equity: Sequence[tuple[int, float]] = ()
            ) -> CycleResult:
        """Run one cycle; never raises for a bad candidate or a step that fails (those are
        outcomes: ``rejected``, ``failed``).

        ``recent_equity``: the loop's equity marks not yet written to the ledger (see
        :func:`truth_benchmarks`)."""
        s = self.settings
        # The row first: a step before it that raised (the benchmarks read the ledger)
        # left no trace of the cycle but a console line.
        self.spool.start_cycle(cycle_id, s.slot, self.clock(), incumbent_id, None)
        self._stored = None
        try:
            benchmarks = truth_benchmarks(self.ledger, self.config.run.starting_cash,
                                          recent_equity)
            self.spool.set_benchmarks(cycle_id, json.dumps(benchmarks, sort_keys=True,
                                                           default=str))
            result = self._run(cycle_id, benchmarks, incumbent_id, incumbent_source,
                               incumbent_factory, handover_state, instrument_id)
        except OrchestratorError as exc:
            result = self._failed(cycle_id, str(exc))
        except Exception as exc:  # fenced: see _failed
            log.exception("%s failed", cycle_id)
            result = self._failed(cycle_id, f"{type(exc).__name__}: {exc}")
        # Redacted before it is cut or fed to the next prompt: a reason quoting a
        # key-shaped string (a reviewer's) made every later prompt "key-shaped", refused
        # for ever; cut first, a secret across the cut would leave its prefix unseen.
        result = attrs.evolve(result, reason=redact(result.reason))
        if result.outcome != "deploy":
            self.feedback.append(result.reason[:300])
        self.spool.finish_cycle(cycle_id, self.clock(), result.outcome, result.reason,
                                result.candidate_id)
        return result

    def _failed(self, cycle_id: str, reason: str) -> CycleResult:
        """A cycle that could not finish (a model call failed, a proving backtest raised,
        a worker could not start there): an outcome, never an exception.  Raised, it
        left the cycle's future and the loop re-raised it at every event as the slot's
        strategy failing (REDUCING, the incumbent silent for the rest of the run); the
        version already stored stayed ``candidate`` for ever."""
        reason = redact(reason)[:1000]
        if self._stored is not None:
            self.versions.set_status(self._stored, "rejected", f"the cycle failed: {reason}")
        return CycleResult(cycle_id, "failed", reason, self._stored)

    def _reject(self, cycle_id: str, candidate_id: str | None, reason: str,
                source: str | None = None) -> CycleResult:
        if candidate_id is not None:
            self.versions.set_status(candidate_id, "rejected", reason)
        return CycleResult(cycle_id, "rejected", reason, candidate_id, source)

    def _run(self, cycle_id: str, benchmarks: dict[str, Any], incumbent_id: str,
             incumbent_source: str, incumbent_factory: Callable[[], Any],
             handover_state: dict[str, Any], instrument_id: str) -> CycleResult:
        s = self.settings
        inc_row = self.versions.get(incumbent_id)
        inc_results = json.loads(inc_row["gate_json"]) if inc_row["gate_json"] else None
        system, prompt = generate_prompts(slot=s.slot, benchmarks=benchmarks,
                                          incumbent_source=incumbent_source,
                                          incumbent_results=inc_results,
                                          feedback=self.feedback)
        reply = self.model.call(cycle_id=cycle_id, purpose="generate", model=s.generate_model,
                                system=system, prompt=prompt, max_tokens=s.max_tokens_generate)
        extracted = extract_code(reply.text, reply.stop_reason)
        if extracted.code is None:
            return self._reject(cycle_id, None, f"generate answer refused: {extracted.problem}")
        code = extracted.code
        candidate_id = self.versions.add(
            slot=s.slot, source=code, parent_id=incumbent_id, status="candidate",
            reason="generated", prompt_hash=prompt_hash(system, prompt), model=reply.model,
            cycle_id=cycle_id)
        self._stored = candidate_id
        secrets = find_key_shaped(code)
        if secrets:
            return self._reject(cycle_id, candidate_id, f"generated code contains "
                                                        f"{len(secrets)} key-shaped string(s)")
        # Independent review (a separate call, by default a different model).
        r_system, r_prompt = review_prompts(candidate=code, incumbent=incumbent_source,
                                            rationale=extracted.rationale)
        r_reply = self.model.call(cycle_id=cycle_id, purpose="review", model=s.review_model,
                                  system=r_system, prompt=r_prompt,
                                  max_tokens=s.max_tokens_review)
        review = parse_review(r_reply.text, r_reply.stop_reason)
        static = validate_source(code)
        validation: dict[str, Any] = {"review": {"approved": review.approved,
                                                 "reasons": list(review.reasons)},
                                      "static": {"accepted": static.accepted,
                                                 "reasons": static.reasons}}
        problems = []
        if not review.approved:
            problems.append("review rejected it: " + "; ".join(review.reasons))
        if not static.accepted:
            problems.append("static validation: " + "; ".join(static.reasons[:10]))
        if problems:
            self.versions.set_status(candidate_id, "candidate", "validated",
                                     validation=validation)
            return self._reject(cycle_id, candidate_id, " | ".join(problems), code)
        policy = s.sandbox.policy()
        try:
            validation["dynamic"] = dynamic_validation(code, policy, handover_state,
                                                       instrument_id)
        except SandboxError as exc:
            validation["dynamic"] = {"error": str(exc)}
            self.versions.set_status(candidate_id, "candidate", "validated",
                                     validation=validation)
            return self._reject(cycle_id, candidate_id, f"dynamic validation: {exc}", code)
        self.versions.set_status(candidate_id, "candidate", "validated", validation=validation)
        outcome = prove(
            self.config, s, candidate_id=candidate_id,
            candidate=lambda: SandboxedStrategy(code, name=s.slot, policy=policy),
            incumbent_id=incumbent_id, incumbent=incumbent_factory,
            work_dir=self.work_dir / cycle_id, proven=self.proven)
        gates = {"verdict": outcome.verdict, "reasons": list(outcome.reasons),
                 **outcome.details}
        if outcome.verdict != "deploy":
            self.versions.set_status(candidate_id, "rejected",
                                     f"gates: {outcome.verdict}: " + "; ".join(outcome.reasons),
                                     gate=gates)
            return CycleResult(cycle_id, "rejected", f"gates said {outcome.verdict}: "
                               + "; ".join(outcome.reasons), candidate_id, code, gates)
        self.versions.set_status(candidate_id, "candidate", "passed the gates", gate=gates)
        return CycleResult(cycle_id, "deploy", "passed review, validation and gates",
                           candidate_id, code, gates)
