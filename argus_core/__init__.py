"""Argus core: hook specifications, domain model, ledger, runner and builtin plugins.

This package's namespace *is* the public API for plugin authors: everything a plugin
needs is importable from ``argus_core`` itself (``from argus_core import hookimpl,
Strategy, Intent``), and first-party plugins import nothing else from the core (a test
enforces it).  The submodules are the core's own business and may change; the names
in ``__all__`` are the contract.  The pytest fixtures for plugin tests live in the
``argus_core.testing`` pytest plugin (installed with the core).
"""

from typing import TYPE_CHECKING, Any

from argus_core.config import (
    AT_LEAST_ONE,
    BPS,
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
from argus_core.ledger import Ledger
from argus_core.market_state import L2Book, MarketState
from argus_core.migrations import Migrations
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
from argus_core.risk import TradingState
from argus_core.secrets import Secret, find_key_shaped, redact
from argus_core.serde import converter, dump_event

if TYPE_CHECKING:
    from argus_core.backtest import BacktestResult, run_backtest

__version__ = "0.1.0"

#: Public names imported on first use: a backtest pulls in the runner, which most
#: importers of ``argus_core`` (a plugin module at start-up) never need.
_LAZY = {"BacktestResult": "argus_core.backtest", "run_backtest": "argus_core.backtest"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'argus_core' has no attribute {name!r}")


__all__ = [
    "AT_LEAST_ONE",
    "BPS",
    "FRACTION",
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
    "canonical_json",
    "converter",
    "dump_event",
    "find_key_shaped",
    "hookimpl",
    "in_range",
    "load_config",
    "optional",
    "parse_overrides",
    "plugin_settings",
    "redact",
    "run_backtest",
    "structure",
    "to_decimal",
]
