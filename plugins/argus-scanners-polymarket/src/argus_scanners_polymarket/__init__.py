"""Argus scanner plugin for Polymarket: resolution, correlation, stale-quote, spike and maker
scanners, and the ``pm_maker`` maker-lifecycle strategy (entry point ``pmscanners``).  Each
scanner's formula is in its module's docstring and in the plugin README."""
