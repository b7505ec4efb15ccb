"""Model calls through the real ``anthropic`` SDK, with budgets, secret scans and the spool.

Every call, successful or not, becomes one row in the thought spool.  Before a
call: the prompt is scanned for key-shaped strings (a hit refuses the call:
secrets never enter a prompt) and the cycle's and day's token and cost budgets
are checked against the call's worst case (estimated input + ``max_tokens``
output).  After it: usage and cost are recorded exactly as the API reported them; an
answer of the wrong shape (no usage, a null text, a lone surrogate, a negative count) is a
spooled error charged its worst case, never a refund.  So is every attempt whose answer
never came back (a timeout, a connection cut after the request was sent): the server may
have done and billed the work, and the SDK's retry is a new request (it sends no
idempotency key), so a timed-out attempt followed by an answered one costs both.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import cast

import anthropic
import attrs
import httpx2

from argus_core import Ledger, find_key_shaped, redact
from argus_orchestrator.config import OrchestratorSettings
from argus_orchestrator.errors import BudgetExceeded, OrchestratorError
from argus_orchestrator.spool import Thought, ThoughtSpool
from argus_orchestrator.transport import RecordedTransport

#: Key placeholder for recorded transports: not key-shaped, never sent anywhere real.
RECORDED_KEY = "recorded-transport-no-key"
#: More tokens than any one call can be billed: a larger ``usage`` count is a broken answer.
MAX_TOKENS_PER_CALL = 100_000_000


@attrs.frozen
class ModelReply:
    """What a successful call returned."""

    text: str
    stop_reason: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    thought_id: str


def build_client(settings: OrchestratorSettings, base_dir: Path | None = None
                 ) -> tuple[anthropic.Anthropic, RecordedTransport | None]:
    """The SDK client the settings describe (and the recorded transport, if any)."""
    if settings.transport.startswith("recorded:"):
        path = Path(settings.transport.split(":", 1)[1]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        transport = RecordedTransport(path)
        client = anthropic.Anthropic(api_key=RECORDED_KEY, base_url=settings.base_url,
                                     max_retries=settings.max_retries,
                                     timeout=settings.timeout_s,
                                     http_client=httpx2.Client(transport=transport))
        return client, transport
    if settings.api_key is None:
        raise OrchestratorError("plugins.orchestrator.transport is 'live' but "
                                "plugins.orchestrator.api_key is not set; use "
                                "api_key = \"$env:ANTHROPIC_API_KEY\"")
    client = anthropic.Anthropic(api_key=settings.api_key.reveal(), base_url=settings.base_url,
                                 max_retries=settings.max_retries, timeout=settings.timeout_s)
    return client, None


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (about 3 characters per token) for budget checks."""
    return math.ceil(len(text) / 3) + 16


def _steady_ns() -> int:
    """A clock no wall-clock step moves (Linux's boot time counts a suspend too)."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    return time.monotonic_ns()


class SteadyWallClock:
    """The wall clock for the day budget of a live transport: read once, at the first
    call, then carried forward by a steady clock, so that no step of the wall clock
    moves the day.  Followed as it is, an NTP step back over midnight reopened the day
    before (its unspent budget paid again, in the same hours) and a step forward began
    the next day early (a second day's budget within the hour): each day is now 24 hours
    of elapsed time.

    ``anchor``: a ``(wall, steady)`` pair read by an earlier process of the run on the
    same boot (see :func:`live_day_clock`): carried on, so a restart does not read the
    wall clock again (a steady reading below its steady half, another boot's, is not
    used).  ``not_before``: the earliest time a fresh anchor may read (the run's latest
    charged call): a restart with the wall clock stepped back keeps that day's spend."""

    def __init__(self, wall: Callable[[], int] = time.time_ns,
                 steady: Callable[[], int] = _steady_ns, *,
                 anchor: tuple[int, int] | None = None, not_before: int | None = None
                 ) -> None:
        self._wall, self._steady = wall, steady
        self._anchor: tuple[int, int] | None = None  # (wall, steady) at the first reading
        self._given = anchor
        self._not_before = not_before
        self._lock = threading.Lock()  # (the cycle's thread and the loop's may both ask)

    @property
    def anchor(self) -> tuple[int, int] | None:
        """``(wall, steady)`` nanoseconds the clock counts from (None before its first
        reading)."""
        return self._anchor

    def __call__(self) -> int:
        """Nanoseconds since the epoch, as the wall clock said at the first reading plus
        the steady time elapsed since."""
        with self._lock:
            steady = self._steady()
            if self._anchor is None:
                if self._given is not None and steady >= self._given[1]:
                    self._anchor = self._given
                else:
                    wall = self._wall()
                    if self._not_before is not None and wall < self._not_before:
                        wall = self._not_before
                    self._anchor = (wall, steady)
            wall0, steady0 = self._anchor
            return wall0 + max(0, steady - steady0)


#: The checkpoint holding a live run's day clock anchor (see :func:`live_day_clock`).
DAY_CLOCK_CHECKPOINT = "orchestrator.day_clock"


def _boot_id() -> str | None:
    """This boot's id (Linux), or None: the steady clock's readings compare only within
    one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def live_day_clock(ledger: Ledger) -> SteadyWallClock:
    """The day budget's clock of a live run in ``ledger``'s run folder, anchored now and
    the anchor stored (checkpoint ``orchestrator.day_clock``).

    One anchor per process let a restart move the day: a restart after the wall clock
    stepped back over midnight reopened the day before (the day key read earlier, its
    unspent budget paid again within the minute), and one after a step forward began the
    next day early.  Now a restart on the same boot carries the stored anchor on (the
    steady clock counts across processes of one boot), and one on another boot anchors
    on the wall clock, never earlier than the latest call the budgets were charged at
    (:meth:`ThoughtSpool.latest_day_ns`): a step back across a reboot keeps that day's
    spend; a step forward across a reboot is still seen (nothing measured the time the
    machine was down)."""
    boot = _boot_id()
    anchor = None
    saved = ledger.load_checkpoint(DAY_CLOCK_CHECKPOINT)
    if saved is not None and boot is not None and saved[2].get("boot_id") == boot:
        wall0, steady0 = saved[2].get("wall_ns"), saved[2].get("steady_ns")
        if type(wall0) is int and type(steady0) is int:
            anchor = (wall0, steady0)
    clock = SteadyWallClock(anchor=anchor, not_before=ThoughtSpool(ledger).latest_day_ns())
    now = clock()
    wall0, steady0 = cast(tuple[int, int], clock.anchor)
    with ledger.transaction():
        ledger.save_checkpoint(DAY_CLOCK_CHECKPOINT, 0, now, {
            "boot_id": boot, "wall_ns": wall0, "steady_ns": steady0})
    return clock


class RunStopping(anthropic.APIError):
    """An attempt not sent: the run is stopping (the SDK does not retry it)."""


class _Attempts:
    """Counts the HTTP attempts the SDK's client sends and the error answers it gets back
    (hooks on its ``httpx2`` client: the SDK retries inside one ``create`` call)."""

    def __init__(self) -> None:
        self.sent = 0
        self.refused = 0  # complete error answers (429, 529, 4xx): the work was not done
        self.stopping = False  # see ModelClient.stop

    def on_request(self, request: httpx2.Request) -> None:
        # Once the run is stopping, no attempt more is sent: the SDK's retries of the call
        # in flight went on (up to max_retries + 1 attempts of timeout_s each, 22 minutes
        # at the limits, each maybe billed) while the process waited for the cycle.
        if self.stopping:
            raise RunStopping("the run is stopping: the SDK's next attempt was not sent",
                              request, body=None)
        self.sent += 1

    def on_response(self, response: httpx2.Response) -> None:
        if not response.is_success:
            self.refused += 1

    def install(self, client: anthropic.Anthropic) -> bool:
        """Hook onto ``client``'s HTTP client; False where it has none to hook."""
        http = getattr(client, "_client", None)  # the SDK keeps its httpx2 client there
        hooks = getattr(http, "event_hooks", None)
        if not isinstance(hooks, dict):
            return False
        http.event_hooks = {  # type: ignore[union-attr]
            "request": [*hooks.get("request", []), self.on_request],
            "response": [*hooks.get("response", []), self.on_response]}
        return True


class ModelClient:
    """Makes model calls for one run and spools every one of them."""

    def __init__(self, settings: OrchestratorSettings, ledger: Ledger, client: anthropic.Anthropic,
                 *, clock: Callable[[], int], day_clock: Callable[[], int] | None = None
                 ) -> None:
        self.settings = settings
        self.spool = ThoughtSpool(ledger)
        self.client = client
        self.clock = clock  # nanoseconds; the loop's clock keeps replays reproducible
        # The day a call's cost counts against (nanoseconds).  The loop's clock by default;
        # a live transport passes the wall clock: a replay's clock is the data's time, so
        # every replayed day had a day budget of its own, and a replay of months spent
        # real money at ``day_max_cost_usd`` per day of data, within minutes.
        self.day_clock = day_clock or clock
        self.attempts = _Attempts()
        self.attempts.install(client)
        self.stopping = False  # see stop

    def stop(self) -> None:
        """Make no more calls (the run is stopping): a cycle on its own thread went on
        calling, and paying, after the loop had been interrupted."""
        self.stopping = True
        self.attempts.stopping = True  # and the call in flight sends no retry

    def _unanswered(self, sent_before: int, refused_before: int, answered: int) -> int:
        """Attempts of this call that got no answer (timed out, cut off): billed, maybe."""
        sent = self.attempts.sent - sent_before
        refused = self.attempts.refused - refused_before
        return max(0, sent - refused - answered)

    def _day(self) -> str:
        return self._day_and_ns()[0]

    def _day_and_ns(self) -> tuple[str, int]:
        """The day a call now is charged to, and the day clock's reading it is of."""
        ns = self.day_clock()
        return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).date().isoformat(), ns

    def call(self, *, cycle_id: str, purpose: str, model: str, system: str, prompt: str,
             max_tokens: int) -> ModelReply:
        """One Messages API call; ``OrchestratorError`` (already spooled) when it fails."""
        if self.stopping:
            raise OrchestratorError(f"{purpose} call not made: the run is stopping")
        seq = self.spool.next_seq(cycle_id)
        thought_id = f"{cycle_id}-{seq:02d}-{purpose}"
        # The call's row before it is made; every outcome below records an evolved copy
        # (status "pending" is always replaced, never stored).
        base = Thought(thought_id=thought_id, cycle_id=cycle_id, seq=seq, purpose=purpose,
                       model=model, system_prompt=system, prompt=prompt,
                       response_text=None, response_json=None, stop_reason=None,
                       input_tokens=0, output_tokens=0, cost_usd=Decimal(0),
                       status="pending", error=None, request_id=None, ts_ns=self.clock())
        day, day_ns = self._day_and_ns()
        leaked = find_key_shaped(system + "\n" + prompt)
        if leaked:
            self.spool.record(attrs.evolve(base, status="refused",
                                           error=f"{len(leaked)} key-shaped string(s) in the "
                                                 f"prompt; call refused"),
                              day=day, day_ns=day_ns)
            raise OrchestratorError(f"{purpose} prompt contains {len(leaked)} key-shaped "
                                    f"string(s); refusing to send it")
        # The SDK retries inside one create(), and each attempt may be billed (one that
        # timed out is charged its worst case below): the retries are cut to what the
        # budgets have room for.  Checked for one attempt only, a call whose attempts
        # timed out spent up to (1 + max_retries) times the room the check saw.
        configured = int(getattr(self.client, "max_retries", 0))
        attempts = self._check_budget(cycle_id, day, model, system + prompt, max_tokens, base,
                                      wanted=1 + configured, day_ns=day_ns)
        worst_in = estimate_tokens(system + prompt)
        sent_before, refused_before = self.attempts.sent, self.attempts.refused
        retries = min(configured, attempts - 1)
        client = self.client if retries == configured else \
            self.client.with_options(max_retries=retries)
        try:
            message = client.messages.create(
                model=model, max_tokens=max_tokens, system=system,
                messages=[{"role": "user", "content": prompt}])
        except anthropic.APIError as exc:
            if isinstance(exc, anthropic.APIStatusError):
                error = f"{type(exc).__name__} (HTTP {exc.status_code}): {_api_message(exc)}"
                base = attrs.evolve(base, request_id=exc.request_id)
            else:
                error = f"{type(exc).__name__}: {exc}"
            # Attempts that timed out were maybe billed: charged their worst case (charged
            # nothing, a timed-out call lifted the budget by what the server billed).
            lost = self._unanswered(sent_before, refused_before, 0)
            if lost:
                error += f" ({lost} attempt(s) unanswered, each charged its worst case)"
            if retries < configured:
                error += (f" (retries cut to {retries} of {configured}: the budget had room "
                          f"for {attempts} attempt(s))")
            self.spool.record(attrs.evolve(
                base, status="error", error=error, input_tokens=lost * worst_in,
                output_tokens=lost * max_tokens,
                cost_usd=lost * self.settings.cost(model, worst_in, max_tokens)),
                day=day, day_ns=day_ns)
            raise OrchestratorError(f"{purpose} call failed: {redact(error)}") from None
        lost = self._unanswered(sent_before, refused_before, 1)
        if lost:  # timed out before the SDK's retry was answered: their own row
            self.spool.record(attrs.evolve(
                base, status="error", input_tokens=lost * worst_in,
                output_tokens=lost * max_tokens,
                cost_usd=lost * self.settings.cost(model, worst_in, max_tokens),
                error=f"{lost} attempt(s) unanswered before the SDK's retry was; each "
                      f"charged its worst case"), day=day, day_ns=day_ns)
            seq = self.spool.next_seq(cycle_id)
            thought_id = f"{cycle_id}-{seq:02d}-{purpose}"
            base = attrs.evolve(base, thought_id=thought_id, seq=seq)
        try:
            text, model_id, tokens_in, tokens_out = _read_message(message)
        except _Malformed as exc:
            # The call was made and its cost is unknown: charged its worst case, so a
            # broken or hostile answer (negative usage) never refunds a budget.
            error = f"malformed answer: {exc}"
            self.spool.record(attrs.evolve(
                base, status="error", error=error, input_tokens=worst_in,
                output_tokens=max_tokens,
                cost_usd=self.settings.cost(model, worst_in, max_tokens)),
                day=day, day_ns=day_ns)
            raise OrchestratorError(f"{purpose} call failed: {redact(error)}") from None
        cost = self.settings.cost(model_id, tokens_in, tokens_out)
        thought = attrs.evolve(base, response_text=text,
                               response_json=_dump(message),
                               stop_reason=message.stop_reason,
                               input_tokens=tokens_in, output_tokens=tokens_out,
                               cost_usd=cost,
                               request_id=getattr(message, "_request_id", None),
                               status="ok", error=None)
        self.spool.record(thought, day=day, day_ns=day_ns)
        return ModelReply(text, message.stop_reason, model_id, tokens_in, tokens_out, cost,
                          thought_id)

    def _check_budget(self, cycle_id: str, day: str, model: str, text: str, max_tokens: int,
                      base: Thought, *, wanted: int = 1, day_ns: int | None = None) -> int:
        """Refuse (``BudgetExceeded``, spooled) a call whose worst case does not fit a
        budget; otherwise how many attempts at that worst case fit every budget, from 1
        to ``wanted``."""
        b = self.settings.budget
        worst_in = estimate_tokens(text)
        worst_tokens = worst_in + max_tokens
        worst_cost = self.settings.cost(model, worst_in, max_tokens)
        cyc_tokens, cyc_cost = self.spool.cycle_totals(cycle_id)
        day_tokens, day_cost = self.spool.day_totals(day)
        problems = []
        if cyc_tokens + worst_tokens > b.cycle_max_tokens:
            problems.append(f"cycle tokens {cyc_tokens} + up to {worst_tokens} > "
                            f"{b.cycle_max_tokens}")
        if cyc_cost + worst_cost > b.cycle_max_cost_usd:
            problems.append(f"cycle cost ${cyc_cost} + up to ${worst_cost:.4f} > "
                            f"${b.cycle_max_cost_usd}")
        if day_tokens + worst_tokens > b.day_max_tokens:
            problems.append(f"day tokens {day_tokens} + up to {worst_tokens} > "
                            f"{b.day_max_tokens}")
        if day_cost + worst_cost > b.day_max_cost_usd:
            problems.append(f"day cost ${day_cost} + up to ${worst_cost:.4f} > "
                            f"${b.day_max_cost_usd}")
        if problems:
            reason = "budget: " + "; ".join(problems)
            self.spool.record(attrs.evolve(base, status="budget", error=reason), day=day,
                              day_ns=day_ns)
            raise BudgetExceeded(f"{base.purpose} call not made: {reason}")
        # Multiplied, never divided: a budget of 1e400 USD over a cent's call is a
        # quotient Decimal cannot hold (InvalidOperation).
        attempts = 1
        while attempts < wanted:
            n = attempts + 1
            if cyc_tokens + n * worst_tokens > b.cycle_max_tokens \
                    or day_tokens + n * worst_tokens > b.day_max_tokens \
                    or cyc_cost + n * worst_cost > b.cycle_max_cost_usd \
                    or day_cost + n * worst_cost > b.day_max_cost_usd:
                break
            attempts = n
        return attempts


class _Malformed(Exception):
    """A 200 answer that is not a Messages API message (what is wrong with it)."""


def _read_message(message: object) -> tuple[str, str, int, int]:
    """(text, model, input tokens, output tokens) of an answer, checked: the SDK builds its
    objects without validating them, so a null ``usage``, a string body or a lone
    surrogate (unstorable, unencodable) reached the arithmetic and the ledger raw."""
    content = getattr(message, "content", None)
    if not isinstance(content, list):
        raise _Malformed(f"'content' is {type(content).__name__}, not a list")
    texts = [getattr(block, "text", None) for block in content
             if getattr(block, "type", None) == "text"]
    if not all(isinstance(t, str) for t in texts):
        raise _Malformed("a text block's 'text' is not a string")
    text = _unicode("the text", "".join(cast(list[str], texts)))
    model = getattr(message, "model", None)
    if not isinstance(model, str) or not model:
        raise _Malformed("'model' is missing")
    _unicode("'model'", model)
    stop = getattr(message, "stop_reason", None)
    if stop is not None and not isinstance(stop, str):
        raise _Malformed("'stop_reason' is not a string")
    _unicode("'stop_reason'", stop or "")
    usage = getattr(message, "usage", None)
    tokens = []
    for field in ("input_tokens", "output_tokens"):
        value = getattr(usage, field, None)
        # bool is an int; a count past MAX_TOKENS_PER_CALL is no answer's (SQLite's
        # integers end at 2**63, and a negative count refunded the budget).
        if type(value) is not int or not 0 <= value <= MAX_TOKENS_PER_CALL:
            raise _Malformed(f"usage.{field} is {_shown(value)}, not a count of tokens")
        tokens.append(value)
    return text, model, tokens[0], tokens[1]


def _unicode(what: str, text: str) -> str:
    """``text``, where it can be stored (UTF-8): a lone surrogate cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Malformed(f"{what} is not valid Unicode ({exc.reason} at character "
                         f"{exc.start})") from None
    return text


def _shown(value: object) -> str:
    """``value`` for an error message, cut (it came from the answer)."""
    return repr(value)[:40]


def _dump(message: anthropic.types.Message) -> str | None:
    """The answer as JSON for the spool, or None where it cannot be written as JSON."""
    try:
        return message.model_dump_json(warnings=False)
    except Exception:  # a field the SDK cannot serialize: the text is stored anyway
        return None


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return f"{err.get('type')}: {err.get('message')}"
    return str(exc.message)
