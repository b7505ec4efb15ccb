# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Nested constant folding: ((1,)*99999,)*99999 is two small tuples, but a set of it hashes 10**10 items (checker and import hang)."""
WIDE = {((1,) * 99_999,) * 99_999} | {1}


class Strategy:
    def on_event(self, event, state, portfolio):
        return []
