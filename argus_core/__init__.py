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
    from argus_core.account import HOUSE_SLOTS, book_shares
    from argus_core.backtest import (
        BacktestResult,
        run_backtest,
    )
    from argus_core.builtins.replay_venue import iter_bars_csv
    from argus_core.builtins.sizers import kelly_binary
    from argus_core.cli import FiniteFloat, PluginCommand, PluginGroup
    from argus_core.config import (
        AT_LEAST_ONE,
        BPS,
        FINITE,
        FRACTION,
        NON_NEGATIVE,
        POSITIVE,
        PROBABILITY,
        Config,
        Range,
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
    from argus_core.control import (
        MAX_REASON,
        changes_nothing,
        clean_reason,
        left_open_by_resume,
        left_open_text,
        request_trading_state,
        trading_latch,
        visible_text,
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
    from argus_core.execution import outcome_unknown
    from argus_core.hookspecs import (
        Register,
        RegisterForecaster,
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
        Forecaster,
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
        check_run_ledger,
        ledger_tables,
        open_read_only,
        read_untouched,
    )
    from argus_core.market_state import (
        L2Book,
        MarketState,
    )
    from argus_core.migrations import (
        Migrations,
    )
    from argus_core.models import (
        GRID_NOISE,
        Bar,
        BookDelta,
        BookStatus,
        CancelIntent,
        Event,
        Fill,
        FillCorrection,
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
        bust_id,
        busted_by,
        ticks_of,
        to_decimal,
    )
    from argus_core.report import EQUITY_SECTION, ReportData, write_atomically
    from argus_core.risk import (
        TradingState,
    )
    from argus_core.runlock import undo_refused_start
    from argus_core.runner import Runner
    from argus_core.runtime import build_pricer, build_venue, check_plugin_tables
    from argus_core.secrets import (
        Secret,
        find_key_shaped,
        redact,
        remember,
    )
    from argus_core.serde import (
        converter,
        dump_event,
        loads_frame,
    )

__version__ = "0.2.0"

#: Public name -> the module defining it.  Imported on first use (PEP 562), so that
#: ``import argus_core`` (every plugin module, ``argus --help``) costs almost nothing and
#: a plugin that needs only ``hookimpl`` never pays for numpy or the runner.
_EXPORTS: dict[str, str] = {name: f"argus_core.{module}" for module, names in {
    "account": "HOUSE_SLOTS book_shares",
    "backtest": "BacktestResult run_backtest",
    "builtins.replay_venue": "iter_bars_csv",
    "builtins.sizers": "kelly_binary",
    "config": ("AT_LEAST_ONE BPS Config FINITE FRACTION NON_NEGATIVE POSITIVE PROBABILITY "
        "Range RangeError apply_overrides canonical_json in_range load_config optional "
        "parse_overrides plugin_settings structure url_scheme"),
    "errors": ("ArgusError BasketIncomplete ConfigError DataError LedgerError OrderUnknown "
        "PluginError RiskHalted VenueError"),
    "hookspecs": ("Register RegisterForecaster RegisterPricer RegisterRiskCheck RegisterScanner "
        "RegisterSizer RegisterStrategy RegisterVenue hookimpl"),
    "interfaces": ("FeeSchedule Forecaster ModelParams OptionLeg Pricer PricingResult RiskCheck "
        "RiskContext Scanner Sizer Strategy StrategyContext Venue"),
    "control": ("MAX_REASON changes_nothing clean_reason left_open_by_resume left_open_text "
        "request_trading_state trading_latch visible_text"),
    "ledger": "LEDGER_FILE Ledger check_run_ledger ledger_tables open_read_only read_untouched",
    "market_state": "L2Book MarketState",
    "migrations": "Migrations",
    "models": ("GRID_NOISE Bar BookDelta BookStatus CancelIntent Event Fill FillCorrection "
        "Forecast Instrument Intent KnownOrder Leg Liquidity MarketEvent Opportunity Order "
        "OrderBook OrderStatus OrderType OrderUpdate Outcome Portfolio Position RiskAction "
        "RiskDecision Settlement Side Signal TimeInForce Trade VenueResume bust_id busted_by "
        "ticks_of to_decimal"),
    "report": "EQUITY_SECTION ReportData write_atomically",
    "risk": "TradingState",
    "execution": "outcome_unknown",
    "runner": "Runner",
    "cli": "FiniteFloat PluginCommand PluginGroup",
    "runlock": "undo_refused_start",
    "runtime": "build_pricer build_venue check_plugin_tables",
    "secrets": "Secret find_key_shaped redact remember",
    "serde": "converter dump_event loads_frame",
}.items() for name in names.split()}


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
    "AT_LEAST_ONE", "BPS", "EQUITY_SECTION", "FINITE", "FRACTION", "GRID_NOISE", "HOUSE_SLOTS",
    "LEDGER_FILE",
    "MAX_REASON",
    "NON_NEGATIVE",
    "POSITIVE",
    "PROBABILITY", "ArgusError", "BacktestResult", "Bar", "BasketIncomplete", "BookDelta",
    "BookStatus", "CancelIntent", "Config", "ConfigError", "DataError", "Event", "FeeSchedule",
    "Fill", "FillCorrection", "FiniteFloat", "Forecast", "Forecaster", "Instrument", "Intent",
    "KnownOrder",
    "L2Book", "Ledger",
    "LedgerError", "Leg", "Liquidity", "MarketEvent", "MarketState", "Migrations", "ModelParams",
    "Opportunity", "OptionLeg", "Order", "OrderBook", "OrderStatus", "OrderType", "OrderUnknown",
    "OrderUpdate", "Outcome", "PluginCommand", "PluginError", "PluginGroup", "Portfolio",
    "Position", "Pricer", "PricingResult",
    "Range", "RangeError", "Register", "RegisterForecaster", "RegisterPricer", "RegisterRiskCheck",
    "RegisterScanner", "RegisterSizer", "RegisterStrategy", "RegisterVenue", "ReportData",
    "RiskAction",
    "RiskCheck", "RiskContext", "RiskDecision", "RiskHalted", "Runner", "Scanner", "Secret",
    "Settlement", "Side", "Signal", "Sizer", "Strategy", "StrategyContext", "TimeInForce", "Trade",
    "TradingState", "Venue", "VenueError", "VenueResume", "__version__", "apply_overrides",
    "book_shares", "build_pricer", "build_venue", "bust_id", "busted_by", "canonical_json",
    "changes_nothing",
    "check_plugin_tables", "check_run_ledger",
    "clean_reason", "converter", "dump_event", "find_key_shaped",
    "hookimpl", "in_range", "iter_bars_csv", "kelly_binary", "ledger_tables",
    "left_open_by_resume", "left_open_text", "load_config",
    "loads_frame",
    "metrics", "open_read_only", "optional", "outcome_unknown",
    "parse_overrides", "plugin_settings", "read_untouched", "redact", "remember",
    "request_trading_state",
    "run_backtest", "structure",
    "ticks_of", "to_decimal", "trading_latch", "undo_refused_start",
    "url_scheme", "visible_text", "write_atomically",
]
