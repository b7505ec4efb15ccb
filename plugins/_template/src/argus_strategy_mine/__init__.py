"""An Argus plugin: the ``breakout`` strategy (hooks in :mod:`argus_strategy_mine.plugin`)."""
