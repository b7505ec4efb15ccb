"""The live-vs-backtest slippage drift monitor: the ``slippage_drift`` risk check.

Each taker fill is measured against its order's arrival price (the ledger's order row)
as the slippage *beyond the half-spread* (the quoted one when the order went into a
book, else ``bar_half_spread_bps``): the part ``[paper] slippage_bps`` models (see
:mod:`argus_portfolio.tca`).  Per strategy slot, over its last ``window`` such fills
(``n >= min_fills``), with mean ``m``, sample standard deviation ``sd`` and standard
error ``se = sd / sqrt(n)``, the strategy is moved to REDUCING when

    m - assumed > k x se   and   m - assumed > min_excess_bps

(``assumed``: ``strategy_slippage_bps[slot]``, else ``assumed_slippage_bps``, else the
run's ``[paper] slippage_bps x cost_multiplier``).  REDUCING is this check's, per
strategy: that strategy's intents that would add to or open a position *of its own*
(tracked from its fills) are vetoed with the reason; exits and every other strategy
trade as before, and the run's trading state is untouched.  It latches for the run (the
check's state is checkpointed and restored on resume).

Outliers: with ``k >= 1`` (enforced) a single fill, however extreme, cannot trip the
guard on its own: the t-statistic of one outlier among otherwise equal fills tends to 1
as it grows.  It does widen the standard error, so it masks real drift until it leaves
the window (``window`` fills later).

Where the fill is mapped to its order: in the check's own ``on_fill``, which the engine
calls inside the transaction that books the fill, before the checkpoint that stores the
check's state.  The order row is read from the run's ledger, which the plugin's
``on_startup`` hook hands to the check built from the same settings object (both come
from one run's validated settings, so several runs in one process never mix).  The
drift is recorded at detection as a ``slippage_drift`` / ``reducing`` risk event in that
same transaction; each vetoed intent afterwards is recorded by the core as usual.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections import deque
from decimal import Decimal
from typing import Any

from argus_core import (
    Fill,
    Intent,
    Ledger,
    Liquidity,
    Portfolio,
    RiskCheck,
    RiskContext,
    RiskDecision,
    busted_by,
)
from argus_portfolio.own_positions import OwnPositions
from argus_portfolio.settings import PortfolioSettings
from argus_portfolio.state import number, seq, table, text
from argus_portfolio.tca import half_spread_bps, is_offset, mean_std, slippage_bps

log = logging.getLogger(__name__)

#: Each live check by ``id`` of the settings object it was built from (the same object the
#: run's ``RunContext.settings`` holds).  The check keeps its settings alive, so an id here
#: is never a recycled one; a check that is gone drops out by itself.
_CHECKS: weakref.WeakValueDictionary[int, SlippageDrift] = weakref.WeakValueDictionary()


def check_for(settings: object) -> SlippageDrift | None:
    """The ``slippage_drift`` check built from ``settings`` (this very object), if any."""
    check = _CHECKS.get(id(settings))
    return check if check is not None and check.s is settings else None


class SlippageDrift(RiskCheck):
    """Moves a strategy to REDUCING when its live slippage drifts past the backtest's
    assumption (see the module docstring for the rule and its configuration)."""

    name = "slippage_drift"

    def __init__(self, settings: PortfolioSettings | None) -> None:
        self.s = settings or PortfolioSettings()
        self.d = self.s.drift
        self.ledger: Ledger | None = None
        self.paper_slippage_bps = 0.0  # the run's, set by attach()
        self.paper_half_spread_bps = 2.0
        self.windows: dict[str, deque[float]] = {}
        self.window_ids: dict[str, deque[str]] = {}  # each sample's fill id, in step
        self.reducing: dict[str, str] = {}  # strategy slot -> why
        self.positions = OwnPositions()
        self._warned = False
        if settings is not None:
            _CHECKS[id(settings)] = self

    # -- wiring ------------------------------------------------------------------------
    def attach(self, ledger: Ledger | None, paper: Any = None) -> None:
        """Give the check the run's ledger (to read order rows) and its ``[paper]``
        section (the default assumption: ``slippage_bps x cost_multiplier``, and the
        bar half-spread ``bar_spread_bps``)."""
        self.ledger = ledger
        if paper is not None:
            self.paper_slippage_bps = float(paper.slippage_bps * paper.cost_multiplier)
            self.paper_half_spread_bps = float(paper.bar_spread_bps)

    def assumed_bps(self, strategy: str) -> float:
        """The slippage the backtest assumed for ``strategy`` (bps beyond the spread)."""
        if strategy in self.d.strategy_slippage_bps:
            return self.d.strategy_slippage_bps[strategy]
        if self.d.assumed_slippage_bps is not None:
            return self.d.assumed_slippage_bps
        return self.paper_slippage_bps

    @property
    def bar_half_spread_bps(self) -> float:
        """Half-spread charged where no spread was quoted at arrival."""
        b = self.d.bar_half_spread_bps
        return b if b is not None else self.paper_half_spread_bps

    # -- the statistic -----------------------------------------------------------------
    def observe(self, strategy: str, beyond_spread_bps: float, fill_id: str = ""
                ) -> str | None:
        """Add one taker fill's slippage beyond the spread; returns the reason when this
        fill makes the strategy drift (None otherwise, or when it already had)."""
        window = self.windows.setdefault(strategy, deque(maxlen=self.d.window))
        ids = self._ids(strategy)
        window.append(beyond_spread_bps)
        ids.append(fill_id)
        if strategy in self.reducing or len(window) < self.d.min_fills:
            return None
        n = len(window)
        mean, sd = mean_std(list(window))
        assert mean is not None and sd is not None  # n >= min_fills >= 2
        se = sd / math.sqrt(n)
        assumed = self.assumed_bps(strategy)
        excess = mean - assumed
        if excess <= self.d.min_excess_bps or excess <= self.d.k * se:
            return None
        t = excess / se if se > 0 else math.inf
        reason = (f"slippage drift: strategy {strategy!r} paid {mean:.2f} bps beyond the "
                  f"half-spread over its last {n} taker fills, {excess:.2f} bps above the "
                  f"assumed {assumed:.2f} bps = {t:.1f} standard errors (SE {se:.2f} bps; "
                  f"limits {self.d.k:g} SE and {self.d.min_excess_bps:g} bps)")
        self.reducing[strategy] = reason
        return reason

    def _ids(self, strategy: str) -> deque[str]:
        """The fill id of each sample in ``strategy``'s window ("" when not known: a
        sample restored from a checkpoint written before ids were kept)."""
        window = self.windows.setdefault(strategy, deque(maxlen=self.d.window))
        ids = self.window_ids.get(strategy)
        if ids is None or len(ids) != len(window):
            ids = self.window_ids[strategy] = deque(
                [""] * len(window), maxlen=self.d.window)
        return ids

    def take_back(self, strategy: str, fill_id: str) -> None:
        """Drop the sample of fill ``fill_id`` (busted) from ``strategy``'s window, if it is
        still there.  A REDUCING already recorded stays: it latches for the run."""
        window = self.windows.get(strategy)
        if window is None or fill_id not in (ids := self._ids(strategy)):
            return
        k = list(ids).index(fill_id)
        del window[k]
        del ids[k]

    # -- RiskCheck -----------------------------------------------------------------------
    def on_fill(self, fill: Fill, portfolio: Portfolio, ctx: RiskContext) -> None:
        """Map the fill to its order (strategy, arrival) and update that strategy's
        position and slippage window; record the drift when it trips."""
        if self.ledger is None:
            if not self._warned:
                log.warning("%s: no run ledger attached (the portfolio plugin's on_startup "
                            "did not run); slippage is not monitored", self.name)
                self._warned = True
            return
        row = self.ledger.order_row(fill.client_order_id)
        if row is None:
            return
        strategy = str(row["strategy"])
        self.positions.add(strategy, fill)
        iid = fill.instrument_id
        arrival = row.get("arrival_price")
        if fill.liquidity is not Liquidity.TAKER or arrival is None:
            return  # the replay charges slippage on taker fills only
        if is_offset(fill.side, str(row["side"])):
            # a bust's offset takes a trade back: no slippage was paid, and the busted
            # fill's own sample goes too (as in TCA; a part's bust leaves the fill's)
            busted = busted_by(fill.fill_id)
            if busted is not None and not busted[1]:
                self.take_back(strategy, busted[0])
            return
        mid = Decimal(str(arrival))
        if mid <= 0:
            return
        spread = row.get("arrival_spread")
        half = half_spread_bps(mid, None if spread is None else Decimal(str(spread)))
        beyond = slippage_bps(fill.side, fill.price, mid) - (
            half if half is not None else self.bar_half_spread_bps)
        reason = self.observe(strategy, beyond, fill.fill_id)
        if reason is not None:
            log.warning(reason)
            self.ledger.record_risk_event(fill.ts_ns, self.name, "reducing", reason, iid,
                                          strategy)

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        """Veto a drifting strategy's intents that open or add to its own exposure."""
        reason = self.reducing.get(intent.strategy)
        if reason is None:
            return RiskDecision.allow(self.name)
        reduces, why = self.positions.judge(self.ledger, intent, quantity)
        if reduces:
            return RiskDecision.allow(self.name)
        return RiskDecision.veto(self.name, f"strategy {intent.strategy!r} is REDUCING "
                                            f"({reason}); only orders that reduce its own "
                                            f"position pass{why}")

    def get_state(self) -> dict[str, Any]:
        """Windows, REDUCING strategies and tracked positions (JSON-able)."""
        return {"windows": {k: list(v) for k, v in self.windows.items()},
                "window_ids": {k: list(self._ids(k)) for k in self.windows},
                "reducing": dict(self.reducing),
                "positions": self.positions.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (a changed ``window`` keeps the newest).  A
        damaged state is a ``ValueError`` naming the key (the core's restore names the
        ledger): a NaN sample, say, would have kept the strategy from ever drifting."""
        state = dict(table(state, self.name))
        key = f"{self.name}.windows"
        self.windows = {str(k): deque((number(x, f"{key}.{k}[{n}]") for n, x in
                                       enumerate(seq(v, f"{key}.{k}"))), maxlen=self.d.window)
                        for k, v in table(state.get("windows", {}), key).items()}
        key = f"{self.name}.window_ids"
        self.window_ids = {str(k): deque((text(x, f"{key}.{k}[{n}]") for n, x in
                                          enumerate(seq(v, f"{key}.{k}"))),
                                         maxlen=self.d.window)
                           for k, v in table(state.get("window_ids", {}), key).items()}
        key = f"{self.name}.reducing"
        self.reducing = {str(k): text(v, f"{key}.{k}")
                         for k, v in table(state.get("reducing", {}), key).items()}
        self.positions.set_state(state.get("positions", {}), f"{self.name}.positions")
