"""Argus plugin ``portfolio``: the allocation engine (:mod:`argus_portfolio.allocation`),
its settings (:mod:`argus_portfolio.settings`) and their enforcement in the order path
(:mod:`argus_portfolio.enforcement`: the ``portfolio_caps`` risk check and the
``portfolio_weight`` sizer; hooks in :mod:`argus_portfolio.plugin`)."""
