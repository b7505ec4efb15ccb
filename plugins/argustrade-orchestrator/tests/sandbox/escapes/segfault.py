# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Crash the interpreter outright (null pointer read through ctypes)."""
import ctypes


class Strategy:
    def on_event(self, event, state, portfolio):
        return [ctypes.string_at(0)]
