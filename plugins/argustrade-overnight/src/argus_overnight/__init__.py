"""Argus plugin: returns across trading-session transitions (BTC hourly bars) and the
``overnight_session`` strategy; SPY close-to-open versus open-to-close as research.

Modules: :mod:`~argus_overnight.sessions` (segment labels, UTC, DST-aware),
:mod:`~argus_overnight.analysis` (mean / t-stat per segment),
:mod:`~argus_overnight.strategy` (the strategy), :mod:`~argus_overnight.equity` (SPY),
:mod:`~argus_overnight.riskflow` (the optional risk-flow CSV contract),
:mod:`~argus_overnight.plugin` (hooks).
"""
