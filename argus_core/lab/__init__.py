"""The robustness lab: sweeps, walk-forward, trade bootstrap, selection statistics, deploy gates.

Modules:

- :mod:`argus_core.lab.stats` -- PSR / DSR / MinTRL (Bailey & Lopez de Prado) and
  White's Reality Check / Hansen's SPA (through ``arch``).
- :mod:`argus_core.lab.bootstrap` -- stationary and block bootstrap of trade P&L (numba).
- :mod:`argus_core.lab.walkforward` -- rolling / anchored splits with purging and embargo.
- :mod:`argus_core.lab.sweep` -- parameter grids, one full backtest per point, resumable.
- :mod:`argus_core.lab.executor` -- local process pool or a Dask cluster.
- :mod:`argus_core.lab.trials` -- the trial registry every strategy variant counts in.
- :mod:`argus_core.lab.gates` -- the deploy gates and their verdict.
"""
