"""Argus plugin ``ml``: the probability layer (hooks in :mod:`argus_ml.plugin`).

Modules, one job each: :mod:`~argus_ml.bars` (bar columns), :mod:`~argus_ml.features`
(the feature registry), :mod:`~argus_ml.leakage` (the point-in-time check),
:mod:`~argus_ml.labels`, :mod:`~argus_ml.outcomes` (resolution and trade P&L labels),
:mod:`~argus_ml.dataset` (NDJSON/Parquet export with a manifest),
:mod:`~argus_ml.scoring` (Brier and its decomposition, log loss, AUC, reliability),
:mod:`~argus_ml.calibration`, :mod:`~argus_ml.modelfile` (the safe model format),
:mod:`~argus_ml.training` (purged walk-forward CV), :mod:`~argus_ml.registry`
(models in the ledger, gates, promotions), :mod:`~argus_ml.drift`,
:mod:`~argus_ml.forecaster` (the ``ml`` forecaster and its status gate),
:mod:`~argus_ml.venue` (``updown_replay``: the stated binary market),
:mod:`~argus_ml.strategy` (``ml_updown``), :mod:`~argus_ml.near_expiry`
(``ml_near_expiry``) and :mod:`~argus_ml.report` (the backtest report's section).
"""

__version__ = "0.1.0"
