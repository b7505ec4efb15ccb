"""``argus orchestrate``: a run of the loop with the orchestrator supervising one slot."""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from argus_core import (
    LEDGER_FILE,
    ConfigError,
    DataError,
    Ledger,
    Migrations,
    Strategy,
    load_config,
    redact,
    undo_refused_start,
)
from argus_orchestrator import plugin as orchestrator_plugin
from argus_orchestrator.config import orchestrator_settings
from argus_orchestrator.cycle import CycleRunner
from argus_orchestrator.errors import SandboxError
from argus_orchestrator.gates import lab_folder, load_prior_trials
from argus_orchestrator.ladder import Orchestrator, Supervised, work_dir_for
from argus_orchestrator.llm import ModelClient, build_client, live_day_clock
from argus_orchestrator.sandbox import SandboxedStrategy, validate_source
from argus_orchestrator.versions import VersionStore, verified_source


def run_orchestrated(config_path: Path, *, run_dir: Path | None = None,
                     max_cycles: int | None = None,
                     echo: Callable[[str], None] = print, resume: bool = False) -> str:
    """Run the configured loop with the orchestrator; returns a short text report.

    ``resume``: continue the run in ``run_dir`` (after a crash, a SIGKILL or a stop)
    with the version its ledger says trades in the slot (see :func:`resume_version`),
    not the configured seed; the runner restores that slot's state from its checkpoint.

    Every line ``echo`` is given, and the report, are redacted: they quote cycle reasons,
    a candidate's failure and a rollback's trigger.

    A start refused before its loop did anything (a bad seed, a live transport without
    its key, the runner refusing the config, an error before the first event) leaves
    ``run_dir`` as it found it, as the core's refused ``argus run`` does: only a run that
    did work leaves a trace."""
    run_dir = Path(run_dir) if run_dir else Path("argus-runs") / time.strftime(
        "orchestrate-%Y%m%d-%H%M%S")
    made = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]
    found = None if made or not run_dir.is_dir() else {*os.listdir(run_dir)}
    started: dict[str, Any] = {}  # what the start has built, for its undoing
    try:
        return _orchestrate(config_path, run_dir, max_cycles, echo, resume, started)
    except BaseException as exc:
        runner: Any = started.get("runner")
        looping = bool(started.get("looping"))
        if runner is not None and not looping:  # the loop closes its ledger and lock itself
            for close in reversed(started.get("closers", [])):
                with contextlib.suppress(Exception):  # closing never hides the refusal
                    close()
            runner.close()
        # Nothing done yet, and no ledger of an earlier run there (whose files a reader may
        # hold open): what the start made goes.
        if (not looping or (isinstance(exc, Exception) and runner.seq == 0
                            and not (runner.n_orders or runner.n_fills))) \
                and LEDGER_FILE not in (found or ()):
            undo_refused_start(run_dir, found, made[1:])
        raise


def _orchestrate(config_path: Path, run_dir: Path, max_cycles: int | None,
                 echo: Callable[[str], None], resume: bool, started: dict[str, Any]) -> str:
    """:func:`run_orchestrated`'s work; ``started`` gets the runner once built, what to
    close if the start is refused before its loop (``closers``), and ``looping``."""
    from argus_core import Runner


    def say(line: str) -> None:
        echo(redact(line))

    config = load_config(config_path)
    settings = orchestrator_settings(config)
    where = str(config.path)
    resuming = (run_dir / LEDGER_FILE).exists()
    if resuming and not resume:
        raise ConfigError(f"{run_dir} already holds a run; pass a new --run-dir, or "
                          f"--resume to continue it")
    # Before anything is made or read: a live transport without its key is refused here
    # (it was refused after the runner had made the run directory and its ledger).
    client, transport = build_client(settings, config.base_dir)
    policy = settings.sandbox.policy()
    slot = settings.slot

    trusted: Strategy | None = None
    if settings.seed_source:
        seed_path = config.resolve_path(settings.seed_source)
        try:
            seed_source = seed_path.read_text()
        except OSError as exc:
            raise ConfigError(f"{where}: orchestrator.seed_source: cannot read {seed_path}: "
                              f"{exc.strerror}") from None
        verdict = validate_source(seed_source)
        if not verdict.accepted:
            raise ConfigError(f"{where}: orchestrator.seed_source {seed_path} breaks the "
                              f"contract: " + "; ".join(verdict.reasons))
    else:
        seed_source = ""

    # Variants tried before this run count as trials of the family from the first cycle on.
    n_prior = load_prior_trials(config, settings,
                                lab_folder(work_dir_for(run_dir) / "cycle") / "lab.db")
    if n_prior:
        say(f"{n_prior} prior trials of {settings.trial_family} loaded from "
             f"{settings.prior_trials}")

    def build(source: str) -> Strategy:
        if not source and trusted is not None:
            return trusted  # the installed (trusted) plugin: in-process
        # Every build, not only a new candidate's: a version read back from the ledger
        # (resumed, reinstated) is held to the contract again before it runs.
        verdict = validate_source(source)
        if not verdict.accepted:
            raise SandboxError("the stored version breaks the strategy contract: "
                               + "; ".join(verdict.reasons[:5]))
        return SandboxedStrategy(source, name=slot, policy=policy)

    holder: dict[str, Orchestrator] = {}
    resumed = resume_version(run_dir, slot) if resuming else None
    # A rollback whose version could not come in left no version full, the loop HALTED
    # and the slot muted: the restart keeps it so (it wrote the seed again and traded it).
    halted = failed_reinstatement(run_dir, slot) if resuming and resumed is None else None
    # The ledger's live version is not the seed (the seed is rebuilt from the config).
    resumed_ai: Strategy | None = MutedSlot(slot) if halted is not None else None
    if resumed is not None and resumed["parent_id"] is not None:
        resumed_ai = build(verified_source(resumed))
    incumbent = resumed_ai if seed_source else None
    if incumbent is None and seed_source:
        incumbent = build(seed_source)
    try:
        runner = Runner(config, run_dir, strategies=(
            {slot: _LateSupervised(incumbent, holder)} if incumbent is not None else None))
    except BaseException:
        _close_strategy(incumbent)
        raise
    started["runner"] = runner
    started["closers"] = [lambda: _close_strategies(runner)]
    if incumbent is None:
        trusted = runner.asm.strategies[slot]
        seed_source = inspect.getsource(inspect.getmodule(type(trusted)))  # type: ignore[arg-type]
        runner.asm.strategies[slot] = _LateSupervised(resumed_ai or trusted, holder)
    ledger = runner.ledger
    # Idempotent: a no-op once the plugin is in argus_core.plugins.BUILTINS (the runner then
    # applies the set itself); until then this adds the orchestrator's tables.
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    migrations.apply(ledger.conn)
    def clock() -> int:
        return int(runner.market.now_ns)  # the loop's clock: replays stay reproducible

    versions = VersionStore(ledger, clock)
    incumbent_source = seed_source
    if resumed is not None:
        seed_id = resumed["version_id"]
        if resumed["parent_id"] is not None:
            incumbent_source = resumed["source"]
    elif halted is not None:  # (the version the failed rollback was to reinstate)
        seed_id, incumbent_source = halted["version_id"], halted["source"]
    else:
        seed_id = versions.add(slot=slot, source=seed_source, parent_id=None, status="full",
                               reason="seed incumbent" + ("" if settings.seed_source else
                                                          " (trusted installed plugin)"))
    # A replay runs its cycles inline (reproducible).  Paper and live run them on a worker
    # thread while the loop trades; that thread gets its own ledger connection, because
    # the runner's connection holds the loop's open transaction and is not to be shared.
    blocking = config.argus.mode == "replay"
    cycle_ledger = ledger
    if not blocking:
        cycle_migrations = Migrations()
        orchestrator_plugin.register_migrations(cycle_migrations)
        cycle_ledger = Ledger(ledger.path, cycle_migrations)
        started["closers"].append(cycle_ledger.close)
    # A live transport's spend counts against the real day (a replay's clock is the data's),
    # on a clock no step of the wall clock moves, before or across a restart (see
    # live_day_clock).
    model = ModelClient(settings, cycle_ledger, client, clock=clock,
                        day_clock=live_day_clock(ledger) if transport is None else None)
    cycles = CycleRunner(config, settings, cycle_ledger, model,
                         VersionStore(cycle_ledger, clock), work_dir_for(run_dir), clock)
    orch = Orchestrator(settings, versions, cycles, incumbent_id=seed_id,
                        incumbent_source=incumbent_source,
                        # the ledger holds the seed's source redacted: either is the seed
                        build=lambda src: build("" if src in (seed_source, redact(seed_source))
                                                and not settings.seed_source else src),
                        max_cycles=max_cycles, blocking=blocking, echo=say,
                        # the trusted plugin: reinstated as this same object, never stopped
                        keep_open=(trusted,) if trusted is not None else (),
                        trusted_sources=(seed_source, redact(seed_source))
                        if trusted is not None else ())
    holder["orch"] = orch
    started["closers"].append(orch.close)
    orch.attach(runner)
    if resuming:
        orch.resume_from_ledger(muted=halted is not None)
    started["looping"] = True
    try:
        summary = runner.run_sync()
    finally:
        with contextlib.suppress(Exception):
            model.stop()  # a cycle still running makes no more calls
        orch.close()
        if cycle_ledger is not ledger:
            cycle_ledger.close()
        _close_strategies(runner)
        if model.spool.pending_thoughts or model.spool.pending_cycles:
            _save_spend(model, ledger.path, say)
    if summary.events == 0 and config.argus.mode == "replay":
        # As the core's `argus run` refuses a replay of nothing (it exited 0, "0 events").
        raise DataError(f"{where}: the replay had no events: no market data in its window "
                        f"(see the warning above; check [plugins.replay] start and end)")
    lines = [f"run {summary.run_id} in {run_dir}: {summary.events} events, "
             f"{summary.fills} fills, final equity {summary.final_equity:.2f}, "
             f"trading state {summary.trading_state}"]
    for result in orch.results:
        lines.append(f"  {result.cycle_id}: {result.outcome} — {redact(result.reason)[:160]}")
    for rb in orch.rollbacks:
        lines.append(f"  rollback: {redact(rb)[:200]}")
    if transport is not None and transport.mismatches:
        lines.append(f"  recorded transport mismatches: {transport.mismatches}")
    lines.append(f"inspect: argus strategies list --run-dir {run_dir}; "
                 f"argus thoughts --run-dir {run_dir}")
    return redact("\n".join(lines))


def _save_spend(model: ModelClient, path: Path, say: Callable[[str], None]) -> None:
    """The model calls of a replay's cycle that the loop's rollback took back (the process
    stopped during the cycle), written again on a connection of their own."""
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    try:
        with Ledger(path, migrations) as ledger:
            written = model.spool.save_pending(ledger)
    except Exception as exc:  # never hides how the run ended
        say(f"could not record the interrupted cycle's model calls: {exc}")
        return
    if written:
        say(f"{written} model call(s) of the interrupted cycle recorded (the budgets count "
            f"them)")


def _close_strategy(strategy: Any) -> None:
    """Stop a sandboxed strategy's worker (a trusted one has none)."""
    close = getattr(strategy, "close", None)
    if callable(close):
        close()


def _close_strategies(runner: Any) -> None:
    """Stop every sandboxed strategy worker of ``runner``'s slots."""
    for strategy in list(runner.asm.strategies.values()):
        _close_strategy(getattr(strategy, "inner", None))


def resume_version(run_dir: Path, slot: str) -> dict[str, Any] | None:
    """The version a resumed run trades in ``slot``: the newest ``full`` one in the ledger
    (what the last checkpoint committed with its swap: a version's status and the swap
    that brings it in commit together).  A canary or shadow in flight is not resumed:
    :meth:`Orchestrator.resume_from_ledger` rejects it with the reason.  None when the
    ledger has no version for the slot (the run never got as far as its seed)."""
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    with Ledger.in_dir(run_dir, migrations) as ledger:
        full = [r for r in VersionStore(ledger).list(slot) if r["status"] == "full"]
    return full[-1] if full else None


def failed_reinstatement(run_dir: Path, slot: str) -> dict[str, Any] | None:
    """The version a rollback could not reinstate in ``slot`` (``retired``, "could not
    reinstate ..."), when that failure is the slot's standing state: no version is full
    (a person's promotion since then made one full).  None otherwise."""
    migrations = Migrations()
    orchestrator_plugin.register_migrations(migrations)
    with Ledger.in_dir(run_dir, migrations) as ledger:
        rows = VersionStore(ledger).list(slot)
    if not rows or any(r["status"] == "full" for r in rows):
        return None
    failed = [r for r in rows if r["status"] == "retired"
              and str(r["reason"]).startswith("could not reinstate")]
    return max(failed, key=lambda r: int(r["updated_ns"])) if failed else None


class MutedSlot(Strategy):
    """The slot of a run resumed after a failed rollback: runs nothing (the slot is
    muted until a person promotes a version) and keeps the slot's checkpointed state as
    it is, for the next checkpoint and for the hand-over to that version."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.state: dict[str, Any] = {}

    def on_event(self, event: Any, ctx: Any) -> list[Any]:
        """Nothing: the slot is muted."""
        return []

    def get_state(self) -> dict[str, Any]:
        """The state the slot had when the rollback failed."""
        return dict(self.state)

    def set_state(self, state: dict[str, Any]) -> None:
        """Keep the slot's state (the checkpoint's, at the restart)."""
        self.state = dict(state)


class _LateSupervised(Supervised):
    """A :class:`Supervised` whose controller is created after the runner (it needs the
    runner's ledger); until then it only runs the strategy."""

    def __init__(self, inner: Strategy, holder: dict[str, Orchestrator]) -> None:
        self.inner = inner
        self.holder = holder
        self.keep_own_state = False  # a restart restores the slot's state as it is
        self.name = getattr(inner, "name", "")  # type: ignore[misc]

    @property
    def controller(self) -> Orchestrator:  # type: ignore[override]
        return self.holder["orch"]
