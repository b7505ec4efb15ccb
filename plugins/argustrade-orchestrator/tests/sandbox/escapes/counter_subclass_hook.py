# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Subclass an allowed container so that the host's or worker's own calls run our code."""
from collections import Counter


class Evil(Counter):
    def __missing__(self, key):
        return open("/etc/passwd").read()


class Strategy:
    def on_event(self, event, state, portfolio):
        state["outcome"] = [Evil()["x"][:100]]
        return []
