"""``[plugins.orchestrator]``: validated settings of the AI orchestrator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import attrs

from argus_core import (
    AT_LEAST_ONE,
    BPS,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Config,
    ConfigError,
    RangeError,
    Secret,
    apply_overrides,
    check_plugin_tables,
    in_range,
    structure,
)
from argus_orchestrator.sandbox import PROTECTIONS, WorkerPolicy

#: Default models: current (not deprecated) Messages API ids from Anthropic's models
#: overview (platform.claude.com/docs/en/about-claude/models/overview).  Generation is
#: agentic coding (Opus 5.5); the independent review is a different model (Sonnet 5.5).
#: Both are configurable; the SDK warns (DeprecationWarning) about deprecated ids.
DEFAULT_GENERATE_MODEL = "claude-opus-5-5"
DEFAULT_REVIEW_MODEL = "claude-sonnet-5-5"

#: Default prices in USD per million tokens (input, output) by model-name prefix (longest
#: prefix wins), from Anthropic's published base rates.  They are configuration, not
#: truth: override ``[plugins.orchestrator.prices]`` when they change.  A configured key
#: that matches a model wins over every key of this table, however long (see
#: :meth:`OrchestratorSettings.price`).
DEFAULT_PRICES: dict[str, tuple[Decimal, Decimal]] = {
    "claude-fable-5": (Decimal("10"), Decimal("50")),
    "claude-opus-5-5": (Decimal("4"), Decimal("20")),
    "claude-opus-5": (Decimal("5"), Decimal("25")),
    "claude-opus-4-5": (Decimal("5"), Decimal("25")),
    "claude-opus-4-6": (Decimal("5"), Decimal("25")),
    "claude-opus": (Decimal("15"), Decimal("75")),  # older Opus ids
    "claude-sonnet-5": (Decimal("2"), Decimal("10")),
    "claude-sonnet": (Decimal("3"), Decimal("15")),
    "claude-haiku-5-5": (Decimal("0.10"), Decimal("0.50")),  # prompts up to 100k tokens
    "claude-haiku": (Decimal("1"), Decimal("5")),
    "claude-3-5-haiku": (Decimal("0.8"), Decimal("4")),
}
#: The largest ``ladder.canary_notional`` (quote currency): see LadderSettings.
MAX_CANARY_NOTIONAL = Decimal("1e15")

#: The most events between two reads of persons' requests (``poll_every_events``): a
#: person's rollback is heard within this many events (past it, 10**12 never read one).
MAX_POLL_EVERY_EVENTS = 10_000

#: Charged for a model no price prefix matches (deliberately the most expensive).
FALLBACK_PRICE = (Decimal("15"), Decimal("75"))

#: The longest ``timeout_s`` (seconds, one attempt of one API call): the SDK's own default,
#: the longest it lets a non-streaming request take (past it the SDK requires streaming,
#: which the orchestrator does not use).  A stop waits for the call in flight, up to this
#: long; unbounded, ``1e12`` passed the start and every call then failed on the socket's
#: timeout (OverflowError past about 1e10 s), and a stop could wait for days.
MAX_API_TIMEOUT_S = 600
#: The longest ``sandbox.call_timeout_s``: the loop waits this long for a hung worker at
#: every event (every slot and risk check with it); past about 2.1e6 s the worker's poll()
#: overflowed at the first slow reply.
MAX_CALL_TIMEOUT_S = 60
#: The most ``sandbox.cpu_seconds`` (the worker's CPU-time limit, recycled at 80%): about
#: 11.6 days of CPU; a value past a C long failed every worker's start, a sandbox error.
MAX_CPU_SECONDS = 1_000_000


def _transport(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value != "live" and not value.startswith("recorded:"):
        raise ValueError(f"transport must be 'live' or 'recorded:PATH', got {value!r}")


def _base_url(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    # Checked here: a value httpx cannot parse raised InvalidURL from the SDK's client
    # (a traceback, exit 1) when the run started.  The value is not repeated: a key
    # pasted into the wrong setting stays unsaid.
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError("base_url is not an http(s) URL with a host (the default is "
                         "'https://api.anthropic.com')")


def _price_table(instance: Any, attribute: attrs.Attribute,
                 value: dict[str, list[Decimal]]) -> None:
    for model, pair in value.items():
        shown = "[" + ", ".join(str(p) for p in pair) + "]"
        if len(pair) != 2:
            raise ValueError(f"prices.{model} = {shown}: expected [input, output] USD per "
                             f"million tokens")
        for price in pair:
            if not NON_NEGATIVE.contains(price):
                raise RangeError(f"prices.{model}", shown, f"{NON_NEGATIVE} for each price")


@attrs.frozen
class BudgetSettings:
    """Token and cost ceilings; a call that could exceed one is not made."""

    cycle_max_tokens: int = attrs.field(default=60_000, validator=AT_LEAST_ONE)
    cycle_max_cost_usd: Decimal = attrs.field(default=Decimal("1.00"), validator=POSITIVE)
    day_max_tokens: int = attrs.field(default=500_000, validator=AT_LEAST_ONE)
    day_max_cost_usd: Decimal = attrs.field(default=Decimal("10.00"), validator=POSITIVE)


@attrs.frozen
class LadderSettings:
    """Promotion ladder and rollback triggers."""

    shadow_events: int = attrs.field(default=300, validator=AT_LEAST_ONE)
    canary_events: int = attrs.field(default=300, validator=AT_LEAST_ONE)
    # At most 1e15 (quote currency): past about 1e20 the cap's quantity (notional / price,
    # to 8 decimals) overflowed Decimal's precision, so every capped buy raised and the
    # canary was rolled back for a setting; past 1.8e308 the shadow books' P&L was NaN,
    # which no shadow judgement refused.
    canary_notional: Decimal = attrs.field(default=Decimal("2000"),
                                           validator=in_range(0, MAX_CANARY_NOTIONAL,
                                                              lo_open=True))
    shadow_fee_bps: Decimal = attrs.field(default=Decimal("40"), validator=BPS)
    # candidate shadow P&L >= incumbent's - this
    shadow_tolerance: Decimal = attrs.field(default=Decimal("0"), validator=NON_NEGATIVE)
    rollback_drawdown_fraction: Decimal = attrs.field(default=Decimal("0.05"),
                                                      validator=FRACTION)
    rollback_consecutive_losses: int = attrs.field(default=6, validator=AT_LEAST_ONE)
    # The fills a canary must have had in its canary events to go full; with fewer it is
    # rejected and the incumbent swapped back in (no evidence is not good evidence: a
    # canary that never traded went full).  0 promotes on events alone.
    canary_min_fills: int = attrs.field(default=1, validator=in_range(0, 1_000_000))


@attrs.frozen
class SandboxSettings:
    """The worker policy for AI-written strategies."""

    call_timeout_s: float = attrs.field(default=0.25,
                                        validator=in_range(0, MAX_CALL_TIMEOUT_S,
                                                           lo_open=True))
    # At most 1 TiB: the worker's address-space limit is memory_mb MiB in a C long (a
    # larger value failed in the worker, a sandbox error, not a config error).
    memory_mb: int = attrs.field(default=512, validator=in_range(1, 1 << 20))
    cpu_seconds: int = attrs.field(default=120, validator=in_range(1, MAX_CPU_SECONDS))
    max_intents: int = attrs.field(default=4, validator=AT_LEAST_ONE)
    require: list[str] = attrs.Factory(lambda: ["env_empty", "rlimits", "network_blocked"])

    def __attrs_post_init__(self) -> None:
        unknown = set(self.require) - set(PROTECTIONS)
        if unknown:
            raise ValueError(f"unknown protection(s) {sorted(unknown)}; known: "
                             f"{', '.join(PROTECTIONS)}")

    def policy(self) -> WorkerPolicy:
        """The :class:`WorkerPolicy` these settings describe."""
        return WorkerPolicy(call_timeout_s=self.call_timeout_s, memory_mb=self.memory_mb,
                            cpu_seconds=self.cpu_seconds, max_intents=self.max_intents,
                            require=tuple(self.require))


@attrs.frozen
class OrchestratorSettings:
    """``[plugins.orchestrator]`` of a config file."""

    slot: str = "ma_cross"
    seed_source: str | None = None  # AI-contract module of the first incumbent
    transport: str = attrs.field(default="live", validator=_transport)
    api_key: Secret | None = None
    base_url: str = attrs.field(default="https://api.anthropic.com", validator=_base_url)
    generate_model: str = DEFAULT_GENERATE_MODEL
    review_model: str = DEFAULT_REVIEW_MODEL
    max_tokens_generate: int = attrs.field(default=8000, validator=AT_LEAST_ONE)
    max_tokens_review: int = attrs.field(default=1500, validator=AT_LEAST_ONE)
    # The SDK's retries of one call (after a timeout, 429, 5xx); each may be billed and is
    # counted (see llm.ModelClient).  At most 10: with no bound, a call retried a 529 for
    # ever (the SDK waits up to 8 s between tries), parking a replay's loop with it.
    max_retries: int = attrs.field(default=2, validator=in_range(0, 10))
    # Per attempt (see MAX_API_TIMEOUT_S).
    timeout_s: float = attrs.field(default=120.0,
                                   validator=in_range(0, MAX_API_TIMEOUT_S, lo_open=True))
    first_cycle_after_events: int = attrs.field(default=500, validator=NON_NEGATIVE)
    cycle_every_events: int = attrs.field(default=1000, validator=AT_LEAST_ONE)
    # How often (in events) the loop reads persons' promote/rollback requests: every event
    # by default (a read only after some connection committed: ~2 us an event otherwise),
    # so a person's rollback stops the version at the next event.  At most
    # MAX_POLL_EVERY_EVENTS: a larger cadence left a person's rollback unread for the run.
    poll_every_events: int = attrs.field(default=1,
                                         validator=in_range(1, MAX_POLL_EVERY_EVENTS))
    family: str = ""  # lab trial family (default: "orchestrator:<slot>")
    # Variants of the family tried before this run (e.g. a person's offline search), as
    # written by examples/orchestrator/prior_trials.py: loaded into the lab's trial
    # registry before the first cycle, so the deflated Sharpe counts them too.
    prior_trials: str | None = None
    backtest: dict[str, Any] = attrs.Factory(dict)  # dotted overrides for the proving window
    min_trades: int = attrs.field(default=3, validator=NON_NEGATIVE)
    max_trades: int = attrs.field(default=2000, validator=AT_LEAST_ONE)
    # The robustness lab's absolute gates (cost stress, walk-forward, bootstrap, DSR, RC/SPA)
    # on top of the relative candidate-vs-incumbent gates.  On by default: safety first.
    lab_gates: bool = True
    budget: BudgetSettings = attrs.Factory(BudgetSettings)
    ladder: LadderSettings = attrs.Factory(LadderSettings)
    sandbox: SandboxSettings = attrs.Factory(SandboxSettings)
    # USD per million tokens, [input, output], by model-name prefix: see price()
    prices: dict[str, list[Decimal]] = attrs.field(factory=dict, validator=_price_table)

    def __attrs_post_init__(self) -> None:
        if self.min_trades > self.max_trades:
            raise ValueError(f"min_trades ({self.min_trades}) must not exceed max_trades "
                             f"({self.max_trades})")
        for budget, what in (("cycle_max_tokens", "no cycle"), ("day_max_tokens", "no day")):
            cap = getattr(self.budget, budget)
            for key in ("max_tokens_generate", "max_tokens_review"):
                # a call is made only when its worst case fits every budget: none ever would
                if getattr(self, key) > cap:
                    raise ValueError(f"{key} ({getattr(self, key)}) exceeds budget.{budget} "
                                     f"({cap}): {what} could pay for that call")
        # The same for money: a call is made only when its worst case fits, and its output
        # alone (max_tokens at the model's output price) is a floor of that worst case.
        # A cycle budget of $0.01 beside an 8000-token generate call at $20 per million
        # ($0.16) was accepted, and every cycle failed on its budget, unseen at start.
        for budget, what in (("cycle_max_cost_usd", "no cycle"),
                             ("day_max_cost_usd", "no day")):
            cap_usd = getattr(self.budget, budget)
            for key, model in (("max_tokens_generate", self.generate_model),
                               ("max_tokens_review", self.review_model)):
                tokens = getattr(self, key)
                floor = self.cost(model, 0, tokens)
                if floor > cap_usd:
                    raise ValueError(
                        f"budget.{budget} (${cap_usd}) is less than one call of {key} "
                        f"({tokens}) at {model}'s output price (${self.price(model)[1]} per "
                        f"million tokens): ${floor} of output alone; {what} could pay for "
                        f"that call (raise budget.{budget} or lower {key})")

    def price(self, model: str) -> tuple[Decimal, Decimal]:
        """(input, output) USD per million tokens for ``model``: the longest key of
        ``[plugins.orchestrator.prices]`` that the model's id starts with; only where none
        does, the longest key of :data:`DEFAULT_PRICES`; else :data:`FALLBACK_PRICE`.

        The configured table is searched first, not merged with the built-in one: merged,
        the longest key won across both, so a user's ``"claude-opus" = [1, 2]`` (every
        Opus model) lost to the built-in ``claude-opus-5-5`` for that model, and the
        price the user set was silently not the one charged."""
        for table in ({k: (v[0], v[1]) for k, v in self.prices.items()}, DEFAULT_PRICES):
            best = max((p for p in table if model.startswith(p)), key=len, default=None)
            if best is not None:
                return table[best]
        return FALLBACK_PRICE

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        """USD cost of one call."""
        pin, pout = self.price(model)
        return (pin * input_tokens + pout * output_tokens) / Decimal(1_000_000)

    @property
    def trial_family(self) -> str:
        """The lab family every variant of this slot counts against."""
        return self.family or f"orchestrator:{self.slot}"


def orchestrator_settings(config: Config) -> OrchestratorSettings:
    """Validate ``[plugins.orchestrator]``; errors name the file and the key.

    The proving window's overrides (``backtest``) are applied here once, so a key the
    config does not have or a value out of range is refused at start: found at the first
    cycle, it failed every cycle of the run."""
    where = str(config.path) if config.path else "<config>"
    settings = structure(config.plugins.get("orchestrator", {}), OrchestratorSettings, where,
                         prefix="plugins.orchestrator")
    if settings.slot not in config.run.strategies:
        raise ConfigError(f"{where}: plugins.orchestrator.slot {settings.slot!r} is not one of "
                          f"[run] strategies {config.run.strategies}")
    try:
        window = apply_overrides(config, settings.backtest,
                                 origin="plugins.orchestrator.backtest")
        _check_window_plugins(window, settings.backtest)
    except ConfigError as exc:
        said = str(exc).removeprefix(f"{where}: ")
        if not said.startswith("plugins.orchestrator.backtest"):  # (a plugin's names it)
            said = f"plugins.orchestrator.backtest: {said}"
        raise ConfigError(f"{where}: {said}") from None
    return settings


def _check_window_plugins(window: Config, overrides: dict[str, Any]) -> None:
    """Validate each plugin table the proving window's overrides touch with that plugin's
    own settings class (the core's :func:`argus_core.check_plugin_tables`).  ``[plugins.X]``
    tables are free-form to the core's config, so a typo there (``plugins.replay.strat``)
    or a value of the wrong type passed the start and raised in the first cycle's
    backtest, hours later, and in every cycle after it."""
    names = sorted({key.split(".")[1] for key in overrides
                    if key.split(".")[0] == "plugins" and key.count(".") >= 1})
    if names:  # (loads plugins: only when a table is touched)
        check_plugin_tables(window, names)
