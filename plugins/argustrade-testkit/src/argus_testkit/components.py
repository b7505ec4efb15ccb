"""Contract checks for a plugin's strategies and risk checks, run in a unit test before
any backtest or live run: what the core would otherwise find mid-run (a strategy that
returns one ``Intent`` instead of a list, state a checkpoint cannot store or gives back
changed, a check that answers ``True``), or never (an import of the core's internals).

* :func:`check_strategy` feeds events (default: eight real hourly bars) to a strategy
  and checks every answer (a list of intents on the events' instruments), then its
  state;
* :func:`check_risk_check` asks a check about a buy and a reduce-only sell, tells it of a
  fill, then checks its state;
* :func:`core_private_imports` lists a package's imports of ``argus_core`` submodules
  other than the public ones, however written (``import argus_core.runner``, ``from
  argus_core import runner``, ``importlib.import_module("argus_core.runner")``): the
  names in ``argus_core.__all__`` are the contract.

Each raises :class:`~argus_core.errors.PluginError` naming the component, the method and
what to change.  A method that never returns is not caught (there is no timeout here, nor
in the core's loop: keep ``on_event`` and ``check`` free of network calls and waits).
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import argus_core
from argus_core.errors import PluginError
from argus_core.interfaces import RiskCheck, RiskContext, Strategy, StrategyContext
from argus_core.market_state import MarketState
from argus_core.models import (
    Bar,
    CancelIntent,
    Fill,
    Intent,
    Liquidity,
    MarketEvent,
    Portfolio,
    RiskAction,
    RiskDecision,
    Side,
)

__all__ = ["PUBLIC_CORE_MODULES", "PUBLIC_CORE_NAMES", "check_risk_check", "check_strategy",
           "core_private_imports", "sample_bars"]

#: The ``argus_core`` modules a plugin may import: the namespace itself, its public
#: submodules (``metrics``) and the old name of this kit.
PUBLIC_CORE_MODULES = frozenset({"argus_core", "argus_core.testing",
                                 *(f"argus_core.{m}" for m in argus_core._SUBMODULES)})
#: What ``from argus_core import NAME`` may name: the contract and the public submodules
#: (``from argus_core import runner`` imports a private module just as
#: ``import argus_core.runner`` does).
PUBLIC_CORE_NAMES = frozenset({*argus_core.__all__, "*", *(m.rpartition(".")[2] for m in
                                                           PUBLIC_CORE_MODULES)})

_INSTRUMENT = "kraken:XBT/USD"
_HOUR_NS = 3_600_000_000_000
# (open, high, low, close, volume): Kraken BTC/USD hourly bars with a dip and a rise.
_BARS = ((16541.8, 16554.0, 16532.9, 16548.8, 36.43), (16548.8, 16565.4, 16540.0, 16560.6, 44.39),
         (16560.6, 16572.1, 16349.3, 16353.2, 53.17), (16353.2, 16562.9, 16339.4, 16547.0, 38.62),
         (16547.0, 16755.5, 16536.1, 16740.6, 31.71), (16740.6, 16749.9, 16527.0, 16530.8, 41.05),
         (16530.8, 16547.3, 16522.4, 16543.2, 47.90), (16543.2, 16560.0, 16538.8, 16556.5, 52.36))


def sample_bars(instrument_id: str = _INSTRUMENT) -> list[Bar]:
    """Eight hourly bars of ``instrument_id`` from 2023-01-01 (one falls 1.3%, one rises
    1.2%): :func:`check_strategy`'s default events."""
    start = 1_672_531_200 * 1_000_000_000
    return [Bar(instrument_id, start + i * _HOUR_NS, *bar) for i, bar in enumerate(_BARS)]


def check_strategy(strategy: Strategy, events: Iterable[MarketEvent] | None = None, *,
                   cash: Decimal | str = "100000") -> list[Intent | CancelIntent]:
    """Run ``events`` (default :func:`sample_bars`) through ``strategy.on_event`` as the
    loop would (a market state that has seen each event, a flat account of ``cash``) and
    return every intent it asked for.  Refused, naming the strategy: a class that is not a
    :class:`Strategy`, an empty ``name``, an exception, an answer that is not a list of
    ``Intent`` / ``CancelIntent`` (a bare ``Intent``, a string, ``None``; one with a field
    of the wrong type, ``side="buy"``, is refused by the core where it is made), an intent
    that names an instrument none of ``events`` is about (a run skips it: no reference
    price), and a ``get_state`` that a checkpoint would refuse or give back changed
    (:func:`_check_state`)."""
    if not isinstance(strategy, Strategy):
        raise PluginError(f"{strategy!r} is not a Strategy: subclass argus_core.Strategy")
    who = f"strategy {_name(strategy)!r}"
    market = MarketState()
    portfolio = Portfolio(cash=Decimal(cash))
    asked: list[Intent | CancelIntent] = []
    events = sample_bars() if events is None else list(events)
    instruments = {i for i in (getattr(e, "instrument_id", None) for e in events) if i}
    for event in events:
        market.apply(event)
        ctx = StrategyContext(getattr(event, "ts_ns", 0), portfolio, market, orders=[])
        answer = _intents(who, "on_event", _call(who, "on_event", strategy.on_event, event,
                                                  ctx))
        for intent in answer:
            _check_intent(who, "on_event", intent, instruments)
        asked += answer
    _check_state(who, strategy)
    return asked


def check_risk_check(check: RiskCheck, *, price: Decimal | str = "16500",
                     quantity: Decimal | str = "0.01") -> list[RiskDecision]:
    """Ask ``check`` about a buy of ``quantity`` at ``price`` on a flat account and about a
    reduce-only sell of a held position, tell it of the buy's fill (``on_fill``), and
    return its decisions.  Refused, naming the check: a class that is not a
    :class:`RiskCheck`, an empty ``name``, an exception, an answer that is not a
    :class:`RiskDecision`, a shrink without a quantity or to more than was asked, and a
    ``get_state`` that a checkpoint would refuse or give back changed."""
    if not isinstance(check, RiskCheck):
        raise PluginError(f"{check!r} is not a RiskCheck: subclass argus_core.RiskCheck")
    who = f"risk check {_name(check)!r}"
    price, quantity = Decimal(price), Decimal(quantity)
    ts = sample_bars()[0].ts_ns
    ctx = RiskContext(ts_ns=ts, peak_equity=Decimal("100000"),
                      day_start_equity=Decimal("100000"), market=MarketState())
    flat = Portfolio(cash=Decimal("100000"))
    buy = Intent("conformance", _INSTRUMENT, Side.BUY, quantity=quantity)
    decisions = [_decision(who, _call(who, "check", check.check, buy, quantity, price, flat,
                                      ctx), quantity)]
    fill = Fill("conformance-1", "conformance-1", "kraken", _INSTRUMENT, Side.BUY, price,
                quantity, Decimal(0), Liquidity.TAKER, ts)
    position = flat.position(_INSTRUMENT).apply(fill)
    held = Portfolio(cash=flat.cash - fill.notional, positions={_INSTRUMENT: position},
                     marks={_INSTRUMENT: price})
    _call(who, "on_fill", check.on_fill, fill, held, ctx)
    sell = Intent("conformance", _INSTRUMENT, Side.SELL, quantity=quantity, reduce_only=True)
    decisions.append(_decision(who, _call(who, "check", check.check, sell, quantity, price,
                                          held, ctx), quantity))
    _check_state(who, check)
    return decisions


def core_private_imports(package: str | Path) -> list[str]:
    """``"file:line: module"`` for each import of an ``argus_core`` module outside
    :data:`PUBLIC_CORE_MODULES` in the ``.py`` files under ``package`` (a folder, or an
    importable package's name).  The core's submodules may change in any release; import
    from ``argus_core`` itself (``from argus_core import Strategy``).  Also listed:
    ``from argus_core import NAME`` of a name outside :data:`PUBLIC_CORE_NAMES` (``runner``,
    ``_SUBMODULES``) and ``importlib.import_module`` / ``__import__`` of a literal private
    module name."""
    root = Path(package) if isinstance(package, Path) or "/" in str(package) \
        else _package_dir(str(package))
    found = []
    for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom | ast.Call):
                continue
            found += [f"{path}:{node.lineno}: {m}" for m in _core_modules(node)
                      if (m == "argus_core" or m.startswith("argus_core."))
                      and m not in PUBLIC_CORE_MODULES]
    return found


def _core_modules(node: ast.Import | ast.ImportFrom | ast.Call) -> list[str]:
    """The modules ``node`` imports, as dotted names (``from argus_core import runner``:
    ``argus_core.runner``, unless ``runner`` is public)."""
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        if node.module != "argus_core":
            return [node.module]
        return [f"argus_core.{a.name}" for a in node.names if a.name not in PUBLIC_CORE_NAMES]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str) and _callee(node.func) in _IMPORTERS:
        return [node.args[0].value]
    return []


_IMPORTERS = frozenset({"import_module", "__import__"})


def _callee(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else \
        func.id if isinstance(func, ast.Name) else ""


# -- helpers ---------------------------------------------------------------------------------

def _name(component: Strategy | RiskCheck) -> str:
    name = getattr(component, "name", "")
    if not isinstance(name, str) or not name:
        raise PluginError(f"{type(component).__qualname__} has no name: set the class "
                          f"attribute name = \"...\" (the name it registers under)")
    return name


def _call(who: str, method: str, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:
        raise PluginError(f"{who}: {method} raised {type(exc).__name__}: {exc} (in a run "
                          f"this is logged as a risk event and the run goes REDUCING)") from exc


def _intents(who: str, method: str, answer: object) -> list[Intent | CancelIntent]:
    if isinstance(answer, Intent | CancelIntent | str | bytes) or \
            not isinstance(answer, Sequence | tuple):
        raise PluginError(f"{who}: {method} returned {type(answer).__name__} "
                          f"{str(answer)[:60]!r}; return a list of Intent / CancelIntent "
                          f"([] for none), e.g. return [Intent(...)]")
    wrong = [item for item in answer if not isinstance(item, Intent | CancelIntent)]
    if wrong:
        raise PluginError(f"{who}: {method} returned a list holding "
                          f"{type(wrong[0]).__name__} {str(wrong[0])[:60]!r}; every item "
                          f"must be an Intent or a CancelIntent")
    return list(answer)


#: Intent field -> (the types it takes, what to write instead).
def _check_intent(who: str, method: str, intent: Intent | CancelIntent,
                  instruments: set[str]) -> None:
    """Refuse an instrument none of the events is about (the core refuses fields of the
    wrong type where an intent is made: ``on_event`` raises)."""
    kind = type(intent).__name__
    instrument = intent.instrument_id
    if instrument is not None and instruments and instrument not in instruments:
        raise PluginError(f"{who}: {method} returned an {kind} for {instrument!r}, which "
                          f"no event was about (events: {', '.join(sorted(instruments))}); "
                          f"a run has no price for it and skips it: trade the event's "
                          f"instrument, or pass events of every instrument it trades "
                          f"(check_strategy(strategy, events=[...]))")


def _decision(who: str, answer: object, asked: Decimal) -> RiskDecision:
    if not isinstance(answer, RiskDecision):
        raise PluginError(f"{who}: check returned {type(answer).__name__} {answer!r}; "
                          f"return RiskDecision.allow(name), RiskDecision.veto(name, "
                          f"reason) or RiskDecision(RiskAction.SHRINK, name, reason, qty)")
    if answer.action is RiskAction.SHRINK and (answer.quantity is None
                                               or answer.quantity > asked):
        raise PluginError(f"{who}: check shrank {asked} to {answer.quantity}; a shrink "
                          f"names a quantity no larger than the one asked")
    return answer


def _check_state(who: str, component: Strategy | RiskCheck) -> None:
    """``get_state`` must be what a checkpoint stores and gives back unchanged (JSON:
    text keys, texts, finite numbers, lists, objects), and ``set_state`` must take it."""
    state = _call(who, "get_state", component.get_state)
    if not isinstance(state, dict):
        raise PluginError(f"{who}: get_state returned {type(state).__name__}; return a dict")
    problem = _not_json(state, "get_state()")
    if not problem:
        back = json.loads(json.dumps(state))
        if not _same(back, state):
            problem = ("get_state() changes when stored as JSON (a tuple comes back a list, "
                       "a number key a text)")
    if problem:
        raise PluginError(f"{who}: {problem}; a checkpoint stores state as JSON and "
                          f"set_state gets what JSON gives back")
    _call(who, "set_state", component.set_state, json.loads(json.dumps(state)))
    again = _call(who, "get_state", component.get_state)
    if not _same(again, state):
        raise PluginError(f"{who}: set_state(get_state()) changed the state: {state!r} "
                          f"became {again!r}")


def _same(a: Any, b: Any) -> bool:
    """``a == b``, but a NaN equals a NaN (a checkpoint keeps one; ``nan != nan``)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _not_json(value: Any, where: str) -> str:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has the key {key!r}, not a text"
            if found := _not_json(item, f"{where}[{key!r}]"):
                return found
    elif isinstance(value, list):
        return next(filter(None, (_not_json(v, f"{where}[{i}]") for i, v in
                                  enumerate(value))), "")
    elif isinstance(value, float) and not math.isfinite(value):
        return ""  # NaN passes a checkpoint (a warming indicator holds one)
    elif not isinstance(value, str | int | float | None):
        return f"{where} is {type(value).__name__} {str(value)[:40]!r}"
    return ""


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(f"no package named {name!r} is importable")
    return Path(next(iter(spec.submodule_search_locations)))
