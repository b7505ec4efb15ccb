"""Argus core: hook specifications, domain model, ledger, runner and builtin plugins.

This package's namespace *is* the public API for plugin authors: everything a plugin
needs is importable from ``argus_core`` itself (``from argus_core import hookimpl,
Strategy, Intent``), and first-party plugins import nothing else from the core (a test
enforces it).  The submodules are the core's own business and may change; the names
in ``__all__`` are the contract.  The pytest fixtures for plugin tests live in the
``argus_core.testing`` pytest plugin (installed with the core).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from argus_core.backtest import (
        BacktestResult,
        run_backtest,
    )
    from argus_core.builtins.sizers import kelly_binary
    from argus_core.config import (
        AT_LEAST_ONE,
        BPS,
        FINITE,
        FRACTION,
        NON_NEGATIVE,
        POSITIVE,
        PROBABILITY,
        Config,
        RangeError,
        apply_overrides,
        canonical_json,
        in_range,
        load_config,
        optional,
        parse_overrides,
        plugin_settings,
        structure,
        url_scheme,
    )
    from argus_core.errors import (
        ArgusError,
        BasketIncomplete,
        ConfigError,
        DataError,
        LedgerError,
        OrderUnknown,
        PluginError,
        RiskHalted,
        VenueError,
    )
    from argus_core.hookspecs import (
        Register,
        RegisterPricer,
        RegisterRiskCheck,
        RegisterScanner,
        RegisterSizer,
        RegisterStrategy,
        RegisterVenue,
        hookimpl,
    )
    from argus_core.interfaces import (
        FeeSchedule,
        ModelParams,
        OptionLeg,
        Pricer,
        PricingResult,
        RiskCheck,
        RiskContext,
        Scanner,
        Sizer,
        Strategy,
        StrategyContext,
        Venue,
    )
    from argus_core.ledger import (
        LEDGER_FILE,
        Ledger,
    )
    from argus_core.market_state import (
        L2Book,
        MarketState,
    )
    from argus_core.migrations import (
        Migrations,
    )
    from argus_core.models import (
        Bar,
        BookDelta,
        BookStatus,
        CancelIntent,
        Event,
        Fill,
        Forecast,
        Instrument,
        Intent,
        KnownOrder,
        Leg,
        Liquidity,
        MarketEvent,
        Opportunity,
        Order,
        OrderBook,
        OrderStatus,
        OrderType,
        OrderUpdate,
        Outcome,
        Portfolio,
        Position,
        RiskAction,
        RiskDecision,
        Settlement,
        Side,
        Signal,
        TimeInForce,
        Trade,
        VenueResume,
        to_decimal,
    )
    from argus_core.risk import (
        TradingState,
    )
    from argus_core.runner import Runner
    from argus_core.runtime import build_venue
    from argus_core.secrets import (
        Secret,
        find_key_shaped,
        redact,
    )
    from argus_core.serde import (
        converter,
        dump_event,
    )

__version__ = "0.1.0"

#: Public name -> the module defining it.  Imported on first use (PEP 562), so that
#: ``import argus_core`` (every plugin module, ``argus --help``) costs almost nothing and
#: a plugin that needs only ``hookimpl`` never pays for numpy or the runner.
_EXPORTS: dict[str, str] = {
    "BacktestResult": "argus_core.backtest",
    "run_backtest": "argus_core.backtest",
    "kelly_binary": "argus_core.builtins.sizers",
    "AT_LEAST_ONE": "argus_core.config",
    "FINITE": "argus_core.config",
    "LEDGER_FILE": "argus_core.ledger",
    "Runner": "argus_core.runner",
    "build_venue": "argus_core.runtime",
    "BPS": "argus_core.config",
    "FRACTION": "argus_core.config",
    "NON_NEGATIVE": "argus_core.config",
    "POSITIVE": "argus_core.config",
    "PROBABILITY": "argus_core.config",
    "Config": "argus_core.config",
    "RangeError": "argus_core.config",
    "apply_overrides": "argus_core.config",
    "canonical_json": "argus_core.config",
    "in_range": "argus_core.config",
    "load_config": "argus_core.config",
    "optional": "argus_core.config",
    "parse_overrides": "argus_core.config",
    "plugin_settings": "argus_core.config",
    "structure": "argus_core.config",
    "url_scheme": "argus_core.config",
    "ArgusError": "argus_core.errors",
    "BasketIncomplete": "argus_core.errors",
    "ConfigError": "argus_core.errors",
    "DataError": "argus_core.errors",
    "LedgerError": "argus_core.errors",
    "OrderUnknown": "argus_core.errors",
    "PluginError": "argus_core.errors",
    "RiskHalted": "argus_core.errors",
    "VenueError": "argus_core.errors",
    "Register": "argus_core.hookspecs",
    "RegisterPricer": "argus_core.hookspecs",
    "RegisterRiskCheck": "argus_core.hookspecs",
    "RegisterScanner": "argus_core.hookspecs",
    "RegisterSizer": "argus_core.hookspecs",
    "RegisterStrategy": "argus_core.hookspecs",
    "RegisterVenue": "argus_core.hookspecs",
    "hookimpl": "argus_core.hookspecs",
    "FeeSchedule": "argus_core.interfaces",
    "ModelParams": "argus_core.interfaces",
    "OptionLeg": "argus_core.interfaces",
    "Pricer": "argus_core.interfaces",
    "PricingResult": "argus_core.interfaces",
    "RiskCheck": "argus_core.interfaces",
    "RiskContext": "argus_core.interfaces",
    "Scanner": "argus_core.interfaces",
    "Sizer": "argus_core.interfaces",
    "Strategy": "argus_core.interfaces",
    "StrategyContext": "argus_core.interfaces",
    "Venue": "argus_core.interfaces",
    "Ledger": "argus_core.ledger",
    "L2Book": "argus_core.market_state",
    "MarketState": "argus_core.market_state",
    "Migrations": "argus_core.migrations",
    "Bar": "argus_core.models",
    "BookDelta": "argus_core.models",
    "BookStatus": "argus_core.models",
    "CancelIntent": "argus_core.models",
    "Event": "argus_core.models",
    "Fill": "argus_core.models",
    "Forecast": "argus_core.models",
    "Instrument": "argus_core.models",
    "Intent": "argus_core.models",
    "KnownOrder": "argus_core.models",
    "Leg": "argus_core.models",
    "Liquidity": "argus_core.models",
    "MarketEvent": "argus_core.models",
    "Opportunity": "argus_core.models",
    "Order": "argus_core.models",
    "OrderBook": "argus_core.models",
    "OrderStatus": "argus_core.models",
    "OrderType": "argus_core.models",
    "OrderUpdate": "argus_core.models",
    "Outcome": "argus_core.models",
    "Portfolio": "argus_core.models",
    "Position": "argus_core.models",
    "RiskAction": "argus_core.models",
    "RiskDecision": "argus_core.models",
    "Settlement": "argus_core.models",
    "Side": "argus_core.models",
    "Signal": "argus_core.models",
    "TimeInForce": "argus_core.models",
    "Trade": "argus_core.models",
    "VenueResume": "argus_core.models",
    "to_decimal": "argus_core.models",
    "TradingState": "argus_core.risk",
    "Secret": "argus_core.secrets",
    "find_key_shaped": "argus_core.secrets",
    "redact": "argus_core.secrets",
    "converter": "argus_core.serde",
    "dump_event": "argus_core.serde",
}


#: Public submodules, used as namespaces (``from argus_core import metrics``).
_SUBMODULES = ("metrics",)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"argus_core.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'argus_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})


__all__ = [
    "AT_LEAST_ONE",
    "BPS",
    "FINITE",
    "FRACTION",
    "LEDGER_FILE",
    "NON_NEGATIVE",
    "POSITIVE",
    "PROBABILITY",
    "ArgusError",
    "BacktestResult",
    "Bar",
    "BasketIncomplete",
    "BookDelta",
    "BookStatus",
    "CancelIntent",
    "Config",
    "ConfigError",
    "DataError",
    "Event",
    "FeeSchedule",
    "Fill",
    "Forecast",
    "Instrument",
    "Intent",
    "KnownOrder",
    "L2Book",
    "Ledger",
    "LedgerError",
    "Leg",
    "Liquidity",
    "MarketEvent",
    "MarketState",
    "Migrations",
    "ModelParams",
    "Opportunity",
    "OptionLeg",
    "Order",
    "OrderBook",
    "OrderStatus",
    "OrderType",
    "OrderUnknown",
    "OrderUpdate",
    "Outcome",
    "PluginError",
    "Portfolio",
    "Position",
    "Pricer",
    "PricingResult",
    "RangeError",
    "Register",
    "RegisterPricer",
    "RegisterRiskCheck",
    "RegisterScanner",
    "RegisterSizer",
    "RegisterStrategy",
    "RegisterVenue",
    "RiskAction",
    "RiskCheck",
    "RiskContext",
    "RiskDecision",
    "RiskHalted",
    "Runner",
    "Scanner",
    "Secret",
    "Settlement",
    "Side",
    "Signal",
    "Sizer",
    "Strategy",
    "StrategyContext",
    "TimeInForce",
    "Trade",
    "TradingState",
    "Venue",
    "VenueError",
    "VenueResume",
    "__version__",
    "apply_overrides",
    "build_venue",
    "canonical_json",
    "converter",
    "dump_event",
    "find_key_shaped",
    "hookimpl",
    "in_range",
    "kelly_binary",
    "load_config",
    "metrics",
    "optional",
    "parse_overrides",
    "plugin_settings",
    "redact",
    "run_backtest",
    "structure",
    "to_decimal",
    "url_scheme",
]
