"""Argus plugin: the volatility-risk-premium put-credit-spread strategy and its replay venue."""

__version__ = "0.1.0"
