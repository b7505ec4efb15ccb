# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Catastrophic regex backtracking: C-level CPU burn that no Python-level check interrupts."""
import re


class Strategy:
    def on_event(self, event, state, portfolio):
        state["outcome"] = [bool(re.match(r"(a+)+$", "a" * 64 + "!"))]
        return []
