"""A seeded random campaign against the hot-swap and rollback path (``test_swap_campaign*``).

One seed draws a plan: one to three segments (each ``run_orchestrated`` on the same run
directory, the later ones with ``resume=True``; a segment may end in a SIGKILL of a
forked child), each a stream of bars on two instruments, and between events what a
person or the orchestrator does: promote a version (full, canary or shadow) that is good,
raises on its k-th event (with a key-shaped secret in its message), replies garbage
(an unknown instrument, a negative / out-of-range / string quantity, extra keys, too
many intents, a cancel on an unknown instrument), is slow (the call deadline), has its
worker killed between or during a call, or (in-process stand-ins for the sandbox,
:class:`FakeVersion`) fails to start, fails the state hand-over, sends intents for
another slot, cancels another slot's orders or asks for a huge quantity; a request twice,
for an unknown slot; a person's rollback, kill (HALTED) or REDUCING.  A trusted slot
``base`` trades beside the supervised slot ``ai``; its every call is counted.

:func:`check` reads the ledger and the record of every order the paper broker was sent,
and returns what broke (see its docstring).  Nothing is timed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import signal
import sys
import traceback
import types
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
from argus_orchestrator import ladder
from argus_orchestrator.errors import SandboxError
from argus_orchestrator.ladder import Orchestrator
from argus_orchestrator.sandbox import SandboxedStrategy
from argus_orchestrator.sandbox.host import WorkerProcess
from argus_orchestrator.session import MutedSlot, run_orchestrated
from argus_orchestrator.versions import VersionStore

from argus_core import (
    Bar,
    CancelIntent,
    Instrument,
    Intent,
    Ledger,
    MarketEvent,
    Order,
    Side,
    Strategy,
    StrategyContext,
    TradingState,
    Venue,
    hookimpl,
)
from argus_core import plugins as core_plugins
from argus_core.paper import PaperBroker
from argus_core.runner import Runner

VENUE = "swp"
X, Y, Z = f"{VENUE}:X/USD", f"{VENUE}:Y/USD", f"{VENUE}:Z/USD"  # Z: not an instrument
S = 10**9
#: Key-shaped: the redaction must keep it out of the ledger and the logs.
SECRET = "sk-ant-api03-" + "Qz7" * 16
SLOT = "ai"

# -- versions ---------------------------------------------------------------------------------
#: An AI-contract strategy: trades X on every third bar (a buy when flat, a reduce-only
#: exit when long, a far GTC bid that rests), tagging every intent ``v:<tag>``; ``FAULT``
#: is replaced by the version's fault, run from its K-th call on.
TEMPLATE = '''"""Campaign version {tag}: kind {kind}."""


class Strategy:
    """Tagged trader."""

    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        n = state.get("n", 0) + 1
        state["n"] = n
        iid = event["instrument_id"]
        if n >= {k}:
            {fault}
        if iid != "{x}":
            return []
        held = portfolio["positions"].get(iid, 0.0)
        if n % 3 == 0 and held <= 0:
            return [{{"instrument_id": iid, "side": "buy", "quantity": 1,
                     "reason": "v:{tag}"}}]
        if n % 3 == 1 and held > 0:
            return [{{"instrument_id": iid, "side": "sell", "quantity": held,
                     "reduce_only": True, "reason": "v:{tag}"}}]
        if n % 9 == 2:
            return [{{"instrument_id": iid, "side": "buy", "quantity": 1,
                     "order_type": "limit", "limit_price": event["close"] * 0.5,
                     "time_in_force": "gtc", "reason": "v:{tag}"}}]
        return []
'''

#: What each sandboxed kind does from its K-th call on (one statement, indented).
FAULTS = {
    "good": "pass",
    "raise": f'raise ValueError("boom {SECRET}")',
    "slow": 'while state["n"] > 0:\n                state["n"] = state["n"] + 1',
    # CPU-heavy yet well inside the 0.1 s call deadline: at 3,000,000 the loop took
    # ~80 ms, so which side of the deadline it fell on depended on the machine's load
    # (seed 1848's regression failed under load).
    "busy": 'for _ in range(300_000):\n                pass',
    "unknown_instrument": f'return [{{"instrument_id": "{Z}", "side": "buy", "quantity": 1}}]',
    "negative_qty": 'return [{"instrument_id": iid, "side": "buy", "quantity": -1}]',
    "huge_qty": 'return [{"instrument_id": iid, "side": "buy", "quantity": 1e300}]',
    "string_qty": 'return [{"instrument_id": iid, "side": "buy", "quantity": "1"}]',
    "extra_key": 'return [{"instrument_id": iid, "side": "buy", "strategy": "base"}]',
    "many": 'return [{"instrument_id": iid, "side": "buy", "quantity": 1}] * 5',
    "cancel_unknown": f'return [{{"cancel": True, "instrument_id": "{Z}"}}]',
    "big_state": 'state["pad"] = "x" * 270000',
}
#: In-process stand-ins for a sandboxed version (built by the orchestrator in its place).
FAKE_KINDS = ("fake_start_oserror", "fake_start_sandbox", "fake_set_state",
              "fake_set_state_sandbox", "fake_wrong_slot", "fake_cancel_other",
              "fake_huge", "fake_good")
#: Kinds that fail once they trade (rolled back or rejected, said in the ledger).
FAILING = {k for k in FAULTS if k not in ("good",)} | {
    "fake_start_oserror", "fake_start_sandbox", "fake_set_state", "fake_set_state_sandbox"}


def version_source(tag: str, kind: str, k: int) -> str:
    """The module of version ``tag``."""
    fault = FAULTS.get(kind, "pass")
    return TEMPLATE.format(tag=tag, kind=kind, k=k, fault=fault, x=X)


_TAG = re.compile(r"Campaign version (\w+): kind (\w+)\.")


def tag_of(source: str) -> tuple[str, str]:
    """(tag, kind) of a campaign version's source."""
    m = _TAG.search(source)
    return (m.group(1), m.group(2)) if m else ("?", "?")


class FakeVersion(Strategy):
    """In-process stand-in for a sandboxed version: what a worker would do, cheaply, and
    the failures only an in-process strategy can show (raising ``OSError`` while starting
    or a plain ``ValueError`` from ``set_state``; intents for another slot; a cancel of
    another slot's orders; a huge quantity)."""

    def __init__(self, source: str, *, name: str = SLOT, policy: Any = None) -> None:
        self.tag, self.kind = tag_of(source)
        self.source = source
        self.name = name  # type: ignore[misc]
        self.state: dict[str, Any] = {}
        self.worker = None
        if self.kind == "fake_start_oserror":
            raise OSError(24, "Too many open files")
        if self.kind == "fake_start_sandbox":
            raise SandboxError("worker did not start")

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        """Trade X on every third bar; the kind's garbage on every fifth."""
        n = self.state["n"] = int(self.state.get("n", 0)) + 1
        iid = getattr(event, "instrument_id", "")
        if iid != X or type(event) is not Bar:
            return ()
        why = f"v:{self.tag}"
        if n % 5 == 0:
            if self.kind == "fake_wrong_slot":
                return (Intent("base", X, Side.BUY, quantity=Decimal(1), reason=why),)
            if self.kind == "fake_cancel_other":
                return (CancelIntent("base", Y, why),)
            if self.kind == "fake_huge":
                return (Intent(self.name, X, Side.BUY, quantity=Decimal("1e12"), reason=why),)
        held = ctx.portfolio.position(X).quantity
        if n % 3 == 0 and held <= 0:
            return (Intent(self.name, X, Side.BUY, quantity=Decimal(1), reason=why),)
        if n % 3 == 1 and held > 0:
            return (Intent(self.name, X, Side.SELL, quantity=held, reduce_only=True,
                           reason=why),)
        return ()

    def get_state(self) -> dict[str, Any]:
        """A copy of the state."""
        return json.loads(json.dumps(self.state))

    def set_state(self, state: dict[str, Any]) -> None:
        """Take the hand-over (or fail, by kind)."""
        if self.kind == "fake_set_state":
            raise ValueError("cannot take this state")
        if self.kind == "fake_set_state_sandbox":
            raise SandboxError("state to hand over is not JSON")
        self.state = json.loads(json.dumps(state))

    def close(self) -> None:
        """Nothing to stop."""


def _strategy_factory(source: str, **kwargs: Any) -> Strategy:
    """What the ladder builds for a version: a fake for fake kinds, else the sandbox."""
    if tag_of(source)[1].startswith("fake_"):
        return FakeVersion(source, **kwargs)
    return SandboxedStrategy(source, **kwargs)


def running_tag(runner: Runner) -> str:
    """The tag of the version object in the supervised slot (through its wrappers);
    ``muted`` for a slot resumed after a failed rollback (no version: the ledger names
    none)."""
    s: Any = runner.asm.strategies.get(SLOT)
    while s is not None and not hasattr(s, "source"):
        if isinstance(s, MutedSlot):
            return "muted"
        s = getattr(s, "inner", None)
    return tag_of(s.source)[0] if s is not None else "?"


# -- the plan ---------------------------------------------------------------------------------
@attrs.frozen
class Act:
    """Something done at a safe point (inside the director's ``on_event``, before the
    supervised slot sees that event)."""

    kind: str  # promote, promote2, unknown_slot, rollback, halt, reducing, resume,
    #            kill_worker, kill_mid, sigkill
    to: str = ""
    vkind: str = ""
    k: int = 1

    def __str__(self) -> str:
        return f"{self.kind}({self.vkind}->{self.to}, k={self.k})" if self.vkind else self.kind


@attrs.frozen
class Segment:
    """One process: ``n`` bars (X and Y alternating) and acts keyed by event number."""

    n: int
    acts: tuple[tuple[int, Act], ...]
    sigkill_at: int | None = None


@attrs.frozen
class Plan:
    """Everything one seed does."""

    seed: int
    segments: tuple[Segment, ...]
    trusted_seed: bool  # the seed is an installed plugin (else a sandboxed module)
    #: ``poll_every_events``: above 1 the ladder steps at events that read no request, so
    #: a person's rollback committed since the last poll meets the ladder's own writes.
    #: Drawn plans poll every event: the checker holds every order to the version the
    #: ledger names at its time, and a rollback is only heard at the next poll.
    poll: int = 1
    #: ``ladder.canary_min_fills``: 0 here, so the campaign's canaries (many never trade
    #: in their four canary events) still go full and fail on their way; a plan that
    #: tests the evidence rule sets it.
    canary_min_fills: int = 0

    def trace(self) -> str:
        """The plan as text."""
        lines = [f"seed {self.seed}: trusted seed {self.trusted_seed}"
                 + (f", poll every {self.poll} events" if self.poll != 1 else "")]
        for i, seg in enumerate(self.segments):
            lines.append(f"-- segment {i}: {seg.n} events"
                         + (f", SIGKILL at {seg.sigkill_at}" if seg.sigkill_at else ""))
            lines += [f"  @{n:3d} {act}" for n, act in seg.acts]
        return "\n".join(lines)


VKINDS = (*FAULTS, *FAKE_KINDS)


def _act(rng: random.Random) -> Act:
    r = rng.random()
    vkind = rng.choice(VKINDS)
    if vkind in ("slow", "busy"):  # a slow one costs a call deadline: rarer (as busy)
        vkind = rng.choice(VKINDS)
    k = rng.choice([1, 2, 4, 8, 30])
    to = rng.choice(["full", "full", "canary", "shadow"])
    if r < 0.5:
        return Act("promote", to, vkind, k)
    return Act(rng.choice(["promote2", "unknown_slot", "rollback", "rollback", "halt",
                           "reducing", "resume", "resume", "kill_worker", "kill_mid"]),
               to, vkind if r < 0.7 else "", k)


def make_plan(seed: int) -> Plan:
    """Seed ``seed``'s plan."""
    rng = random.Random(seed)
    segments = []
    for i in range(rng.choice([1, 2, 2, 3])):
        n = rng.randint(20, 45)
        acts = sorted(((rng.randint(2, n - 2), _act(rng)) for _ in range(rng.randint(1, 4))),
                      key=lambda a: a[0])
        sigkill = rng.randint(5, n - 1) if i == 0 and rng.random() < 0.3 else None
        segments.append(Segment(n, tuple(acts), sigkill))
    return Plan(seed, tuple(segments), rng.random() < 0.5)


BAR_NS = 60 * S  # one bar a minute, alternating X and Y


def _bars(seed: int, segment: int, n: int) -> list[Bar]:
    rng = random.Random(f"{seed}-{segment}")
    px = {X: 100.0, Y: 50.0}
    out = []
    t0 = (segment + 1) * 10_000 * S  # later segments after every earlier row
    for i in range(n):
        iid = X if i % 2 == 0 else Y
        px[iid] = max(1.0, px[iid] * (1 + rng.gauss(0, 0.01)))
        c = round(px[iid], 2)
        out.append(Bar(iid, t0 + (i + 1) * BAR_NS, c, c * 1.01, c * 0.99, c, 1000.0))
    return out


# -- the venue, the director and the trusted slot --------------------------------------------
class Campaign:
    """What the venue, the director and the checks share during one seed."""

    current: ClassVar[Campaign | None] = None

    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan, self.workdir = plan, workdir
        self.run_dir = workdir / "run"
        self.record = workdir / "record.jsonl"
        self.segment_index = 0
        self.orch: Orchestrator | None = None
        self.problems: list[str] = []
        self.base_calls = 0
        self.director_calls = 0
        self.n_versions = 0
        self.log_lines: list[str] = []
        self.kill_next_call = False  # the next worker call dies mid-call (kill_mid)
        #: A person's CLI commands waiting for the loop to be between transactions (see
        #: ``install``): the CLI is another process, whose writes land between the
        #: loop's commits, never inside its open transaction.
        self.person_commands: list[Callable[[], None]] = []
        #: Every sandbox worker this process started (pid), see ``install``.
        self.workers: list[int] = []

    def run_person_commands(self) -> None:
        """Run the person's queued commands (the loop is between transactions, or done)."""
        commands, self.person_commands = self.person_commands, []
        for command in commands:
            command()

    @property
    def segment(self) -> Segment:
        return self.plan.segments[self.segment_index]

    def write(self, kind: str, **data: Any) -> None:
        """Append to the record (survives a SIGKILLed child)."""
        with self.record.open("a") as f:
            f.write(json.dumps({"kind": kind, "segment": self.segment_index, **data}) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """The record."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]


class SwapVenue(Venue):
    """Streams the current segment's bars (paper orders fill on the next bar)."""

    name = VENUE
    default_stale_after_s = 1e9

    def __init__(self, settings: object = None) -> None:
        c = Campaign.current
        assert c is not None
        self.c = c

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument(VENUE, "X/USD"), Instrument(VENUE, "Y/USD")]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        c = self.c
        for bar in _bars(c.plan.seed, c.segment_index, c.segment.n):
            yield bar


class Base(Strategy):
    """The trusted slot beside: buys Y every fourth Y bar, exits the next; counted."""

    name = "base"

    def __init__(self, settings: object = None) -> None:
        self.n = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        c = Campaign.current
        if c is not None:
            c.base_calls += 1
        if getattr(event, "instrument_id", None) != Y:
            return ()
        self.n += 1
        held = ctx.portfolio.position(Y).quantity
        if self.n % 4 == 0 and held <= 0:
            return (Intent("base", Y, Side.BUY, quantity=Decimal(2), reason="base"),)
        if held > 0:
            return (Intent("base", Y, Side.SELL, quantity=held, reduce_only=True,
                           reason="base"),)
        return ()

    def get_state(self) -> dict[str, Any]:
        """Its counter."""
        return {"n": self.n}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore its counter."""
        self.n = int(state.get("n", 0))


class Director(Strategy):
    """Trades nothing: does the plan's acts for this event, on the loop's thread, at the
    same safe point the orchestrator acts at (the ``ai`` slot comes after it)."""

    name = "director"

    def __init__(self, settings: object = None) -> None:
        self.events = 0  # this process's: acts are keyed by the segment's event number

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        c = Campaign.current
        assert c is not None and c.orch is not None
        self.events += 1
        c.director_calls += 1
        runner = c.orch.runner
        alive = [pid for pid in c.workers if process_alive(pid)]
        if len(alive) > MAX_WORKERS:
            c.problems.append(f"segment {c.segment_index} event {self.events}: "
                              f"{len(alive)} sandbox workers alive (a swapped-out version's "
                              f"worker not stopped?)")
        if self.events == 2:  # the first event's checkpoint is committed
            led = _ledger_live(runner.ledger, runner.market.now_ns + 1)
            saved = runner.ledger.load_checkpoint("runner")
            c.write("first", running=running_tag(runner), ledger=led,
                    checkpoint=saved[2].get("versions", {}).get(SLOT) if saved else None)
        seg = c.segment
        if seg.sigkill_at == self.events:
            c.write("sigkill", at=self.events)
            os.kill(os.getpid(), signal.SIGKILL)
        for n, act in seg.acts:
            if n == self.events:
                try:
                    _do(c, runner, act)
                except Exception as exc:  # a harness act that cannot apply is said
                    c.problems.append(f"act {act} at {n} failed in the harness: {exc!r}")
        return ()

    def get_state(self) -> dict[str, Any]:
        """Nothing: a restarted process counts its own events."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


#: Sandbox workers alive at once at most: the slot's version, the candidate (shadow or
#: the one a person's request is starting), and a version swapped out after the last
#: event (stopped at the supervised slot's tick, after the director's).
MAX_WORKERS = 3


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, not reaped yet, has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _new_version(c: Campaign, store: VersionStore, vkind: str, k: int, slot: str = SLOT
                 ) -> str:
    c.n_versions += 1
    tag = f"s{c.segment_index}n{c.n_versions}x{c.plan.seed}"
    parent = store.active(SLOT)
    vid = store.add(slot=slot, source=version_source(tag, vkind, k),
                    parent_id=parent["version_id"] if parent else None, status="candidate",
                    reason=f"campaign {vkind}")
    c.write("version", vid=vid, tag=tag, vkind=vkind, k=k)
    return vid


def _do(c: Campaign, runner: Runner, act: Act) -> None:
    orch = c.orch
    assert orch is not None
    store = orch.versions
    c.write("act", act=str(act), ts=runner.market.now_ns)
    if act.kind in ("promote", "promote2"):
        vid = _new_version(c, store, act.vkind or "good", act.k)
        store.request(vid, act.to, "campaign", actor="person")
        if act.kind == "promote2":
            store.request(vid, "full", "campaign again", actor="person")
    elif act.kind == "unknown_slot":
        vid = _new_version(c, store, act.vkind or "good", act.k, slot="nope")
        store.request(vid, "full", "campaign", actor="person")
    elif act.kind == "rollback":
        c.person_commands.append(lambda: _cli_rollback(c))
    elif act.kind in ("halt", "reducing", "resume"):
        state = {"halt": TradingState.HALTED, "reducing": TradingState.REDUCING,
                 "resume": TradingState.ACTIVE}[act.kind]
        runner.set_trading_state(state, f"campaign {act.kind}", by_person=True)
    elif act.kind in ("kill_worker", "kill_mid"):
        s: Any = runner.asm.strategies.get(SLOT)
        while s is not None and not isinstance(s, SandboxedStrategy):
            s = getattr(s, "inner", None)
        worker = getattr(s, "worker", None)
        pid = getattr(worker, "pid", None)
        if pid:
            if act.kind == "kill_worker":
                os.kill(pid, signal.SIGKILL)
            else:  # during its next call: killed once the request is sent (see install)
                c.kill_next_call = True
    runner.request_commit()


def _cli_rollback(c: Campaign) -> None:
    """``argus strategies rollback`` as a person runs it: its own connection, its own
    transaction, stamped with the loop's clock (the replay's time)."""
    clock = c.orch.versions.clock if c.orch is not None else (lambda: 0)
    with Ledger.in_dir(c.run_dir) as ledger:
        store = VersionStore(ledger, clock)
        live = store.active(SLOT)
        if live is not None and live["parent_id"]:
            store.rollback(SLOT, "campaign rollback", actor="person")


# -- wiring and running -----------------------------------------------------------------------
class _LogTap(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        c = Campaign.current
        if c is not None:
            with contextlib.suppress(Exception):  # a record that cannot format is not ours
                c.log_lines.append(record.getMessage())


def install(monkeypatch: Any) -> None:
    """Register the venue and the two trusted strategies as plugin ``swp``; observe the
    runner's swaps and the paper broker's sends; build fakes where the ladder builds a
    sandboxed version."""
    module = types.ModuleType("argus_test_swap_campaign")

    def register_venues(register: Any) -> None:
        register(VENUE, SwapVenue)

    def register_strategies(register: Any) -> None:
        register("director", Director)
        register("base", Base)
        register(SLOT, _TrustedSeed)

    module.register_venues = hookimpl(register_venues)  # type: ignore[attr-defined]
    module.register_strategies = hookimpl(register_strategies)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "argus_test_swap_campaign", module)
    monkeypatch.setattr(core_plugins, "BUILTINS", (*core_plugins.BUILTINS,
                                                   (VENUE, "argus_test_swap_campaign")))
    monkeypatch.setattr(ladder, "SandboxedStrategy", _strategy_factory)
    real_attach = Orchestrator.attach

    def attach(self: Orchestrator, runner: Any) -> None:
        c = Campaign.current
        assert c is not None
        c.orch = self
        real_attach(self, runner)

    monkeypatch.setattr(Orchestrator, "attach", attach)
    real_apply = Runner._apply_swaps

    def apply_swaps(self: Runner) -> None:
        c = Campaign.current
        before = {slot: _book(self, slot) for slot in self.asm.strategies}
        old_state = _safe_state(self.asm.strategies.get(SLOT))
        real_apply(self)
        if c is not None:
            extra = sorted(set(self.asm.strategies) - set(before))
            c.write("swap", ts=self.market.now_ns, before=before,
                    after={slot: _book(self, slot) for slot in before}, new_slots=extra,
                    versions=dict(self.versions), running=running_tag(self),
                    old_state=old_state, new_state=_safe_state(self.asm.strategies.get(SLOT)))

    monkeypatch.setattr(Runner, "_apply_swaps", apply_swaps)
    real_submit = PaperBroker.submit

    def submit(self: PaperBroker, order: Order, ts_ns: int) -> Any:
        c = Campaign.current
        if c is not None:
            c.write("send", coid=order.client_order_id, iid=order.instrument_id,
                    qty=str(order.quantity), strategy=order.strategy, reason=order.reason,
                    reduce_only=order.reduce_only, ts=ts_ns)
        return real_submit(self, order, ts_ns)

    monkeypatch.setattr(PaperBroker, "submit", submit)
    real_begin = Ledger.begin

    def begin(self: Ledger) -> None:
        c = Campaign.current
        if c is not None and c.person_commands and c.orch is not None \
                and self is c.orch.versions.ledger:
            c.run_person_commands()  # the loop is between two transactions: now
        real_begin(self)

    monkeypatch.setattr(Ledger, "begin", begin)
    real_send = WorkerProcess._send

    def send(self: WorkerProcess, obj: dict[str, Any], deadline: float, *, during: str
             ) -> None:
        real_send(self, obj, deadline, during=during)
        c = Campaign.current
        if c is not None and c.kill_next_call and obj.get("op") == "call" and self.pid:
            c.kill_next_call = False
            os.kill(self.pid, signal.SIGKILL)  # the worker dies holding the event

    monkeypatch.setattr(WorkerProcess, "_send", send)
    real_init = WorkerProcess.__init__

    def init(self: WorkerProcess, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        c = Campaign.current
        if c is not None and self.pid:
            c.workers.append(self.pid)

    monkeypatch.setattr(WorkerProcess, "__init__", init)
    tap = _LogTap()
    logging.getLogger().addHandler(tap)
    monkeypatch.setattr(logging.getLogger(), "level", min(logging.getLogger().level,
                                                          logging.INFO))

    def untap() -> None:
        logging.getLogger().removeHandler(tap)

    monkeypatch.setattr(sys.modules[__name__], "_untap", untap, raising=False)


class _TrustedSeed(Strategy):
    """The seed as an installed (trusted) plugin: the template's good trader, in-process."""

    name = SLOT

    def __init__(self, settings: object = None) -> None:
        self.inner = FakeVersion(version_source("seed", "fake_good", 1))
        self.source = self.inner.source

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        """The template's trades."""
        return self.inner.on_event(event, ctx)

    def get_state(self) -> dict[str, Any]:
        """Its state."""
        return self.inner.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Take a state."""
        self.inner.set_state(state)


def _book(runner: Runner, slot: str) -> dict[str, Any]:
    book = runner.account.books.get(slot)
    working = sorted(f"{coid}:{w.remaining}" for coid, w in runner.broker.working.items()
                     if w.order.strategy == slot)
    if book is None:
        return {"cash": None, "held": [], "working": working}
    return {"cash": str(book.cash), "held": sorted((i, str(q)) for i, q in book.held),
            "working": working}


def _safe_state(strategy: Any) -> Any:
    try:
        return strategy.get_state() if strategy is not None else None
    except Exception as exc:
        return f"get_state raised {exc!r}"


def _config(c: Campaign) -> Path:
    plan = c.plan
    seed_path = c.workdir / "seed.py"
    seed_path.write_text(version_source("seed", "good", 1))
    (c.workdir / "cassette.json").write_text(json.dumps({"interactions": []}))
    strategies = ["director", "base", SLOT]
    slot = SLOT
    seed_line = "" if plan.trusted_seed else f'seed_source = "{seed_path}"'
    path = c.workdir / "swap.toml"
    path.write_text(f"""
[argus]
plugins = ["orchestrator", "lab"]
mode = "paper"
seed = {plan.seed}

[run]
venue = "{VENUE}"
strategies = {json.dumps(strategies)}
sizer = "kelly"
starting_cash = "30000"
checkpoint_every_events = 1

[plugins.orchestrator]
slot = "{slot}"
{seed_line}
transport = "recorded:cassette.json"
poll_every_events = {plan.poll}

[plugins.orchestrator.ladder]
shadow_events = 4
canary_events = 4
shadow_tolerance = "1000000000"
rollback_consecutive_losses = 3
canary_min_fills = {plan.canary_min_fills}

[plugins.orchestrator.sandbox]
call_timeout_s = 0.1
""")
    return path


def _run_segment(c: Campaign, config: Path) -> None:
    echoes: list[str] = []
    try:
        run_orchestrated(config, run_dir=c.run_dir, max_cycles=0, echo=echoes.append,
                         resume=(c.run_dir / "argus.db").exists())
    except Exception as exc:  # the invariant: no fault of a version ends the run
        c.problems.append(f"segment {c.segment_index}: the run crashed: "
                          f"{type(exc).__name__}: {exc}\n"
                          + "".join(traceback.format_exc(limit=-4)))
    c.log_lines += echoes
    left = [pid for pid in c.workers if process_alive(pid)]
    if left:
        c.problems.append(f"segment {c.segment_index}: {len(left)} sandbox worker(s) still "
                          f"running after the run returned")
    c.write("end", base_calls=c.base_calls, director_calls=c.director_calls,
            problems=c.problems)


def _run_killed(c: Campaign, config: Path) -> None:
    pid = os.fork()
    if pid == 0:  # the child: killed by its own director at the SIGKILL step
        try:
            _run_segment(c, config)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        c.problems.append(f"segment {c.segment_index}: the child was not SIGKILLed "
                          f"(status {status})")


@attrs.frozen
class Result:
    """One seed's outcome."""

    plan: Plan
    problems: tuple[str, ...]
    orders: int

    def report(self) -> str:
        """The failing seed, what broke and its trace."""
        return "\n".join(["", f"SEED {self.plan.seed} broke:", *self.problems, "",
                          self.plan.trace()])




@contextlib.contextmanager
def _current(c: Campaign) -> Iterator[None]:
    Campaign.current = c
    try:
        yield
    finally:
        Campaign.current = None


def run_seed(seed: int, workdir: Path, plan: Plan | None = None) -> Result:
    """Run seed ``seed`` (or ``plan``) in ``workdir`` and check every invariant."""
    plan = plan or make_plan(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    c = Campaign(plan, workdir)
    config = _config(c)
    with _current(c):
        for i, seg in enumerate(plan.segments):
            c.segment_index, c.base_calls, c.director_calls = i, 0, 0
            if seg.sigkill_at is not None:
                _run_killed(c, config)
            else:
                _run_segment(c, config)
                c.run_person_commands()  # asked at the run's last event: it ran after
    problems = [*c.problems, *check(c)]
    with Ledger.in_dir(c.run_dir) as ledger:
        n_orders = ledger.query("select count(*) as n from orders")[0]["n"]
    return Result(plan, tuple(dict.fromkeys(problems)), n_orders)


# -- the invariants ---------------------------------------------------------------------------
def _ledger_live(ledger: Ledger, ts: int) -> str | None:
    """The version the ledger says trades in the slot for an event stamped ``ts``, by
    the version store's own rule (:meth:`VersionStore.active`: the newest version whose
    status is canary or full) over the status changes written before it (a swap is
    applied after the event that asked for it), and a failed swap found at that event's
    own tick (the swap never happened)."""
    rows = ledger.query("select e.version_id, e.ts_ns, e.to_status, e.reason, v.rowid as n "
                        "from strategy_events e join strategy_versions v using (version_id) "
                        "where v.slot = ? order by e.id", (SLOT,))
    status: dict[str, tuple[int, str]] = {}
    for r in rows:
        failed_now = r["ts_ns"] == ts and r["to_status"] == "rejected" and \
            str(r["reason"]).startswith("hot-swap of")
        if r["ts_ns"] >= ts and not failed_now:
            break
        status[r["version_id"]] = (r["n"], r["to_status"])
    live = [(n, vid) for vid, (n, st) in status.items() if st in ("canary", "full")]
    return max(live)[1] if live else None


def check(c: Campaign) -> list[str]:
    """Every invariant of a finished seed, as a list of what broke:

    * every order the paper broker was sent has its order row, no client order id is sent
      twice (across restarts and a SIGKILL), none names an instrument the venue lacks or
      a quantity over 1e6, none of the supervised slot's lacks its maker's tag;
    * every order of the supervised slot was made by the version the ledger's history
      says traded in the slot at that event (none from a version after it was swapped
      out, none from a version before it was swapped in);
    * a swap changes no slot's cash, positions or working orders, adds no slot, and hands
      the old version's state to the new one as the contract documents;
    * no segment crashed; the trusted slot beside saw every event of every segment that
      ran to its end; every version rolled back or rejected says why, and every strategy
      error of an AI version trading in the slot rolled it back;
    * at the first event after a restart the slot runs the version the ledger's history
      and the runner's checkpoint name; at the end they agree too;
    * the seed is stored once (a restart finds a version full to resume);
    * at the end at most one version is full, and every person's request written before
      the last bars of a run that was not killed at its end was answered;
    * the key-shaped secret a version raised with is in neither the ledger nor the logs;
    * (checked as it runs) no more than ``MAX_WORKERS`` sandbox workers are alive at any
      event, and none is left running once a segment's run has returned.
    """
    problems: list[str] = []
    record = c.read()
    with Ledger.in_dir(c.run_dir) as ledger:
        orders = {r["client_order_id"]: r for r in ledger.query("select * from orders")}
        versions = {r["version_id"]: r for r in ledger.query("select * from strategy_versions")}
        tags = {tag_of(r["source"])[0]: vid for vid, r in versions.items()}
        # The seed: its module (a trusted seed's is this one, so read it by its place).
        tags["seed"] = next(vid for vid, r in versions.items() if r["parent_id"] is None
                            and r["slot"] == SLOT)
        sent: dict[str, int] = {}
        for e in (e for e in record if e["kind"] == "send"):
            if e["coid"] in sent:
                problems.append(f"order {e['coid']} sent twice")
            sent[e["coid"]] = e["segment"]
            if e["iid"] not in (X, Y) or Decimal(e["qty"]) > Decimal("1e6"):
                problems.append(f"garbage order sent: {e}")
            if e["coid"] not in orders and not _killed(c, e["segment"]):
                problems.append(f"order {e['coid']} sent without its ledger row")
        for coid, o in orders.items():
            if o["strategy"] != SLOT:
                continue
            m = re.search(r"v:(\w+)", o["reason"] or "")
            maker = tags.get(m.group(1)) if m else None
            if maker is None:
                problems.append(f"order {coid} of slot {SLOT!r} has no known maker: "
                                f"{o['reason']!r}")
                continue
            live = _ledger_live(ledger, o["ts_ns"])
            if live != maker:
                problems.append(f"order {coid} at {o['ts_ns'] / S:g}s was made by {maker} "
                                f"but the ledger says {live} traded then")
        for e in (e for e in record if e["kind"] == "swap"):
            if e["new_slots"]:
                problems.append(f"a swap added slot(s) {e['new_slots']} at {e['ts'] / S:g}s")
            for slot, was in e["before"].items():
                if e["after"].get(slot) != was:
                    problems.append(f"the swap at {e['ts'] / S:g}s changed slot {slot!r}: "
                                    f"{was} -> {e['after'].get(slot)}")
        for vid, v in versions.items():
            if v["status"] in ("rolled_back", "rejected") and not (v["reason"] or "").strip():
                problems.append(f"{vid} is {v['status']} without a reason")
        errors = ledger.query("select ts_ns, reason from risk_events where check_name = "
                              "'strategy_error' and reason like ?", (f"strategy {SLOT!r}%",))
        for err in errors:
            live = _ledger_live(ledger, err["ts_ns"])
            if live is not None and versions[live]["parent_id"] is not None:
                after = _ledger_live(ledger, err["ts_ns"] + 1)
                if after == live:
                    problems.append(f"{live} raised at {err['ts_ns'] / S:g}s "
                                    f"({err['reason'][:120]}) and was not rolled back")
        for e in record:
            if e["kind"] == "first" and e["segment"] > 0:
                running = tags.get(e["running"])
                if running != e["ledger"] or e["checkpoint"] not in (None, e["ledger"]):
                    problems.append(f"after the restart into segment {e['segment']} the slot "
                                    f"runs {running}, the ledger says {e['ledger']}, the "
                                    f"checkpoint {e['checkpoint']}")
            if e["kind"] == "end" and not _killed(c, e["segment"]):
                seg = c.plan.segments[e["segment"]]
                if e["base_calls"] != seg.n:
                    problems.append(f"segment {e['segment']}: the trusted slot saw "
                                    f"{e['base_calls']} of {seg.n} events")
        full = sorted(vid for vid, v in versions.items()
                      if v["slot"] == SLOT and v["status"] == "full")
        if len(full) > 1:
            problems.append(f"at the end {len(full)} versions are full: {full}")
        seeds = sorted(vid for vid, v in versions.items()
                       if v["slot"] == SLOT and v["parent_id"] is None)
        if len(seeds) > 1:  # a restart found no version full and wrote the seed again
            problems.append(f"the seed was stored {len(seeds)} times: {seeds}")
        # A request written a poll and a bar before the last bar was heard.
        last_bar = ledger.query("select max(ts_ns) as ts from equity")[0]["ts"] or 0
        heard_by = last_bar - (c.plan.poll + 1) * BAR_NS
        for vid, v in versions.items():
            if str(v["status"]).startswith("requested:") and v["slot"] == SLOT and \
                    v["updated_ns"] < heard_by and not _killed(c, -1):
                problems.append(f"{vid}'s request ({v['status']}) was never answered")
        rows = ledger.query("select state_json from checkpoints where name = 'runner'")
        if rows:
            final = json.loads(rows[0]["state_json"]).get("versions", {}).get(SLOT)
            end_live = _ledger_live(ledger, 10**20)
            if final not in (None, end_live):
                problems.append(f"at the end the checkpoint says {final} trades, the "
                                f"ledger {end_live}")
    blob = (c.run_dir / "argus.db").read_bytes()
    for extra in ("argus.db-wal",):
        if (c.run_dir / extra).exists():
            blob += (c.run_dir / extra).read_bytes()
    if SECRET.encode() in blob:
        problems.append("the secret a version raised with is in the ledger")
    if any(SECRET in line for line in c.log_lines):
        problems.append("the secret a version raised with is in the logs")
    return problems


def _killed(c: Campaign, segment: int) -> bool:
    return c.plan.segments[segment].sigkill_at is not None


def shrink(plan: Plan, workdir: Path) -> Plan:
    """Drop segments and acts while the seed still fails (greedy, a few rounds)."""
    n = 0

    def fails(p: Plan) -> bool:
        nonlocal n
        n += 1
        return bool(run_seed(p.seed, workdir / f"shrink{n}", p).problems)

    for _ in range(2):
        for i in range(len(plan.segments)):
            seg = plan.segments[i]
            for j in range(len(seg.acts)):
                acts = seg.acts[:j] + seg.acts[j + 1:]
                trial = attrs.evolve(plan, segments=(
                    *plan.segments[:i], attrs.evolve(seg, acts=acts), *plan.segments[i + 1:]))
                if fails(trial):
                    plan = trial
                    break
        while len(plan.segments) > 1:
            trial = attrs.evolve(plan, segments=plan.segments[:-1])
            if not fails(trial):
                break
            plan = trial
    return plan
