# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Raise the recursion limit and recurse until the C stack overflows (a segfault)."""
import sys


def down(n):
    return down(n + 1) + 1


class Strategy:
    def on_event(self, event, state, portfolio):
        sys.setrecursionlimit(10**7)
        return [down(0)]
