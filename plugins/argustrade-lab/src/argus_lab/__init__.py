"""The robustness lab: sweeps, walk-forward, trade bootstrap, selection statistics, deploy gates.

The ``argustrade-lab`` distribution, an Argus plugin (entry point ``lab`` ->
:mod:`argus_lab.plugin`); it brings scipy, arch and numba, which the core does not need.

Modules:

- :mod:`argus_lab.stats` -- PSR / DSR / MinTRL (Bailey & Lopez de Prado) and
  White's Reality Check / Hansen's SPA (through ``arch``).
- :mod:`argus_lab.bootstrap` -- stationary and block bootstrap of trade P&L (numba).
- :mod:`argus_lab.walkforward` -- rolling / anchored splits with purging and embargo.
- :mod:`argus_lab.sweep` -- parameter grids, one full backtest per point, resumable.
- :mod:`argus_lab.executor` -- local process pool or a Dask cluster.
- :mod:`argus_lab.trials` -- the trial registry every strategy variant counts in.
- :mod:`argus_lab.gates` -- the deploy gates and their verdict.
- :mod:`argus_lab.regime` -- volatility regimes and BOCPD change detection (VRP reads them).
- :mod:`argus_lab.plugin` -- the ``argus lab`` commands, ledger tables and report section.
"""
