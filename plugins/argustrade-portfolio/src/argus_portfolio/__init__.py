"""Argus plugin ``portfolio``: the allocation engine (:mod:`argus_portfolio.allocation`),
its settings (:mod:`argus_portfolio.settings`), their enforcement in the order path
(:mod:`argus_portfolio.enforcement`: the ``portfolio_caps`` risk check and the
``portfolio_weight`` sizer), transaction-cost analysis (:mod:`argus_portfolio.tca`, the
``argus tca`` commands in :mod:`argus_portfolio.commands`) and the slippage drift monitor
(:mod:`argus_portfolio.drift`: the ``slippage_drift`` risk check); hooks in
:mod:`argus_portfolio.plugin`."""
