"""Argus scanner plugin for Polymarket: resolution, correlation, stale-quote, spike and maker
scanners (entry point ``pmscanners``).  Each scanner's formula is in its module's docstring
and in the plugin README."""
