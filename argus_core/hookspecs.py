"""Hook specifications: the only contract between the Argus core and its plugins.

This module is the plugin author's reference.  A plugin is any importable
module (or object) with functions decorated by :data:`hookimpl` whose names
match the specs below; it is found through the ``argus`` entry-point group::

    [project.entry-points.argus]
    myplugin = "my_package.plugin"

Registration hooks follow the ``register(...)`` callback style: the plugin
hands the core a *name* and a *factory*; the core owns the registry, checks
for clashes and builds components when a run needs them.  Every factory is
called as ``factory(settings)`` where ``settings`` is the plugin's validated
``[plugins.NAME]`` table (see :func:`config_class`) or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from argus_core import interfaces
    from argus_core.config import Config
    from argus_core.migrations import Migrations
    from argus_core.models import Fill, Opportunity
    from argus_core.report import ReportData
    from argus_core.runtime import RunContext

hookspec = pluggy.HookspecMarker("argus")
hookimpl = pluggy.HookimplMarker("argus")

#: ``register(name, factory)``: the callback every ``register_*`` hook receives.  The
#: factory is called as ``factory(settings)`` and must build the hook's component type
#: (a class of that type is checked when it registers, anything else when it builds;
#: either way the error names the plugin).  The component types are forward references so
#: that ``from argus_core import hookimpl`` (every plugin module) imports no domain model.
Register = Callable[[str, Callable[[Any], Any]], None]
RegisterVenue = Callable[[str, Callable[[Any], "interfaces.Venue"]], None]
RegisterScanner = Callable[[str, Callable[[Any], "interfaces.Scanner"]], None]
RegisterStrategy = Callable[[str, Callable[[Any], "interfaces.Strategy"]], None]
RegisterRiskCheck = Callable[[str, Callable[[Any], "interfaces.RiskCheck"]], None]
RegisterSizer = Callable[[str, Callable[[Any], "interfaces.Sizer"]], None]
RegisterPricer = Callable[[str, Callable[[Any], "interfaces.Pricer"]], None]
RegisterForecaster = Callable[[str, Callable[[Any], "interfaces.Forecaster"]], None]


@hookspec
def config_class() -> type | None:
    """Return the attrs class that validates this plugin's ``[plugins.NAME]`` table.

    Called once per plugin at start-up.  Keys the class does not declare are
    errors; a missing table means every field takes its default.  Fields
    holding secrets must accept ``$env:VAR`` / ``$file:PATH`` references
    (see :mod:`argus_core.secrets`); inline secrets are refused.

    .. versionadded:: 0.1
    """


@hookspec
def register_venues(register: RegisterVenue) -> None:
    """Register venue factories: ``register("kraken", KrakenVenue)``.

    The factory returns an :class:`argus_core.interfaces.Venue` (market data
    stream, instruments, fees, optional live order entry).  Used by the
    runner and the CLI (``argus record``, ``argus scan``).

    .. versionadded:: 0.1
    """


@hookspec
def register_scanners(register: RegisterScanner) -> None:
    """Register scanner factories returning :class:`argus_core.interfaces.Scanner`.

    A scanner reads the whole market state once per cycle and returns
    opportunities; the runner calls :func:`on_opportunity` for each and routes the
    ``executable`` ones through risk, sizing and execution (``research`` ones, e.g. an
    unproven relation, are stored and shown, never traded).  Fees come from the market state:
    ``market.fee_schedule(instrument_id)`` is what fills there pay (price a fill with
    ``FeeSchedule.fee``, a per-unit estimate with ``FeeSchedule.unit_fee``).

    .. versionadded:: 0.1
    """


@hookspec
def register_strategies(register: RegisterStrategy) -> None:
    """Register strategy factories returning :class:`argus_core.interfaces.Strategy`.

    A strategy sees each market event and returns intents.  The AI
    orchestrator versions and hot-swaps strategies registered here.

    .. versionadded:: 0.1
    """


@hookspec
def register_risk_checks(register: RegisterRiskCheck) -> None:
    """Register pre-trade checks returning :class:`argus_core.interfaces.RiskCheck`.

    Every enabled check runs on every intent; any veto wins; the smallest
    shrink wins among the rest.  Builtin checks register through this hook
    too, so a plugin may replace one by disabling it in the config.  A check's own
    state (``get_state`` / ``set_state``) is checkpointed under the name it registers.

    .. versionadded:: 0.1
    """


@hookspec
def register_sizers(register: RegisterSizer) -> None:
    """Register sizing policies returning :class:`argus_core.interfaces.Sizer`.

    A sizer turns an intent without a quantity (usually carrying a
    :class:`argus_core.models.Forecast`) into a quantity; one whose ``size`` declares
    a ``fees`` parameter is handed the instrument's fee schedule.

    .. versionadded:: 0.1
    """


@hookspec
def register_pricers(register: RegisterPricer) -> None:
    """Register pricing engines returning :class:`argus_core.interfaces.Pricer`.

    Strategies look pricers up by name in their context (``ctx.pricers["heston"]``)
    and ask them only through the core protocol (``Pricer.price_option``,
    ``Pricer.probability_of_profit`` with :class:`argus_core.OptionLeg` and model
    parameters by name; ``Pricer.supports`` says which a pricer answers), falling
    back when none is installed or it cannot answer.

    .. versionadded:: 0.1
    """


@hookspec
def register_forecasters(register: RegisterForecaster) -> None:
    """Register probability models returning :class:`argus_core.interfaces.Forecaster`.

    Strategies and scanners find them by name on the market state
    (``market.forecasters["baseline"]``; a strategy's ``ctx.market``), built on first
    use, and ask ``Forecaster.forecast(instrument_id, market, ts_ns)`` for a
    :class:`argus_core.Forecast` (``p_win`` for a binary outcome) or None.

    .. versionadded:: 0.2
    """


@hookspec
def register_migrations(migrations: Migrations) -> None:
    """Add this plugin's ledger schema migrations.

    Each plugin owns a named migration set (``migrations.set("kraken")``), so
    plugins never collide over schema history.  Migrations run, in order and
    once, when a ledger is opened.

    .. versionadded:: 0.1
    """


@hookspec
def report_sections(config: Config, run_dir: Path,
                    report: ReportData) -> dict[str, str] | None:
    """Return extra HTML sections for a run's report, as ``{title: html}``.

    Used to state modelling assumptions plainly (e.g. how option quotes were
    synthesised) and to show plugin-specific results (e.g. a deploy-gate
    verdict).  Results of every plugin are collected.

    ``report`` is what the core's report already read from the run's ledger, in one
    read transaction (:class:`argus_core.report.ReportData`): the equity series as
    numpy arrays (``ts_ns`` int64, ``equity`` float64, ``exposed`` bool, ``stamps`` as
    ``datetime64[ns]``; read-only), ``final_equity``, ``starting_cash``, the ``runs``
    row, the core's ``metrics``, the ``fills`` and their ``plays``.  Take it rather than
    reading the equity rows again (700k of them cost more than the rest of a report);
    like every argument it is optional: a plugin names only the arguments it uses.

    A section titled ``Equity and drawdown`` (``argus_core.report.EQUITY_SECTION``)
    takes the place of the core's own equity and drawdown plots, at the top of the
    page, and the core then draws none (an interactive chart of the same series is not
    drawn twice).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 the ``report`` argument; the ``Equity and drawdown`` title
    """


@hookspec
def on_startup(ctx: RunContext) -> None:
    """Called once when a run starts, after the ledger is open and before the first event.

    Fenced: an exception stops the run before it trades, naming the plugin.

    .. versionadded:: 0.1
    """


@hookspec
def on_shutdown(ctx: RunContext) -> None:
    """Called once when a run stops (normally or on error), before the ledger closes.

    Fenced like every observer: an exception is logged and recorded as a risk event.
    The builtin ``journal`` logs a summary line here.

    .. versionadded:: 0.1
    """


@hookspec
def on_fill(fill: Fill, ctx: RunContext) -> None:
    """Called after each fill has been committed to the ledger.

    Fenced: an exception is logged and recorded as a risk event; the run goes on.
    The builtin ``journal`` logs each fill here.

    .. versionadded:: 0.1
    """


@hookspec
def on_opportunity(opportunity: Opportunity, ctx: RunContext) -> None:
    """Called for every opportunity a scanner reports, after it is stored.

    Fenced: an exception is logged and recorded as a risk event; the run goes on.
    Called once per opportunity id (a re-reported one is not stored again).  The
    builtin ``journal`` logs each opportunity here.

    .. versionadded:: 0.1
    """
